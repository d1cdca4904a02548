/*
 * mpu.c — S3 multipart uploads on meta's upload records (docs/vfs.md
 * "Multipart"). A part's bytes are written as slices of at most 64 MiB
 * each (held while written, then recorded with meta_part_put, which keeps
 * them alive for the collector: meta_slice_scan reports part slices).
 * Complete lays the chosen parts' slices end to end into the chunk maps
 * of an unnamed file — pieces split at chunk boundaries, no data copied —
 * and meta_upload_complete installs it at the key and drops the upload in
 * one batch.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "vfs/vfs_int.h"

int vfs_mpu_create(vfs *v, const vfs_cred *c, const char *bucket, const char *key,
                   const char *owner, nb_slice rec, uint64_t *upload_id)
{
    int rc = vfs__ro(v);
    if (rc == 0)
        rc = vfs_s3_key_check(key);
    if (rc == 0 && key[strlen(key) - 1] == '/')
        rc = -EINVAL;
    uint64_t bino = 0;
    if (rc == 0)
        rc = vfs__bucket_ino(v, c, bucket, &bino);
    if (rc == 0)
        rc = vfs__errno(meta_access(v->m, c, bino, 03)); /* W_OK | X_OK */
    if (rc != 0)
        return rc;
    meta_upload u;
    memset(&u, 0, sizeof(u));
    u.bucket = bino;
    u.key = (char *)key;
    u.owner = (char *)owner;
    if (rec.ptr) {
        u.objrec.data = (uint8_t *)rec.ptr;
        u.objrec.len = rec.len;
    }
    rc = meta_upload_create(v->m, &u);
    if (rc == 0)
        *upload_id = u.id;
    return rc;
}

int vfs_mpu_get(vfs *v, uint64_t upload_id, vfs_upload *u)
{
    return meta_upload_get(v->m, upload_id, u);
}

void vfs_upload_free(vfs_upload *u)
{
    meta_upload_free(u);
}

int vfs_mpu_list(vfs *v, const vfs_cred *c, const char *bucket, const char *after_key,
                 uint64_t after_id, int (*cb)(void *arg, const vfs_upload *u), void *arg)
{
    uint64_t bino;
    int rc = vfs__bucket_ino(v, c, bucket, &bino);
    if (rc != 0)
        return rc;
    return meta_upload_list(v->m, bino, after_key, after_id, cb, arg);
}

int vfs_mpu_abort(vfs *v, uint64_t upload_id)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    return meta_upload_abort(v->m, upload_id);
}

int vfs_part_list(vfs *v, uint64_t upload_id, uint32_t after,
                  int (*cb)(void *arg, const vfs_part_info *p), void *arg)
{
    return meta_part_list(v->m, upload_id, after, cb, arg);
}

/* ---- UploadPart ------------------------------------------------------------------------------ */

struct vfs_part {
    vfs *v;
    uint64_t upload;
    uint32_t number;
    data_writer *w;
    uint64_t w_id;
    meta_slice *slices;
    size_t n, cap;
    uint64_t size;
    int err;
};

int vfs_part_begin(vfs *v, uint64_t upload_id, uint32_t number, vfs_part **out)
{
    *out = NULL;
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    if (number < 1 || number > 10000)
        return -EINVAL;
    meta_upload u;
    rc = meta_upload_get(v->m, upload_id, &u);
    if (rc != 0)
        return rc;
    meta_upload_free(&u);
    vfs_part *p = nb_xcalloc(1, sizeof(*p));
    p->v = v;
    p->upload = upload_id;
    p->number = number;
    *out = p;
    return 0;
}

static int part_finish_writer(vfs_part *p)
{
    if (!p->w)
        return 0;
    uint64_t len = 0;
    int rc = vfs__errno(data_writer_finish(p->w, &len));
    p->w = NULL;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->slices = nb_xrealloc(p->slices, p->cap * sizeof(*p->slices));
    }
    /* recorded even on failure, so that abort/commit unhold it */
    p->slices[p->n++] = (meta_slice){
        .id = p->w_id, .size = (uint32_t)len, .off = 0, .len = (uint32_t)len, .pos = 0};
    return rc;
}

int vfs_part_write(vfs_part *p, const void *buf, size_t len)
{
    if (p->err)
        return p->err;
    const uint8_t *b = buf;
    int rc = 0;
    while (rc == 0 && len > 0) {
        if (!p->w) {
            rc = vfs__errno(meta_id_alloc(p->v->m, META_ID_SLICE, 1, &p->w_id));
            if (rc == 0)
                rc = vfs__errno(data_writer_new(p->v->ds, p->w_id, &p->w));
            if (rc != 0)
                break;
        }
        uint64_t room = META_CHUNK_SIZE - data_writer_len(p->w);
        size_t n = len < room ? len : (size_t)room;
        rc = vfs__errno(data_writer_append(p->w, b, n));
        b += n;
        len -= n;
        p->size += n;
        if (rc == 0 && data_writer_len(p->w) == META_CHUNK_SIZE)
            rc = part_finish_writer(p);
    }
    if (rc != 0)
        p->err = rc;
    return rc;
}

int vfs_part_commit(vfs_part *p, const char *etag)
{
    int rc = p->err;
    if (rc == 0)
        rc = part_finish_writer(p);
    /* an empty part has no slice */
    size_t n = p->n;
    while (n > 0 && p->slices[n - 1].len == 0)
        n--;
    if (rc == 0) {
        meta_part mp;
        memset(&mp, 0, sizeof(mp));
        mp.number = p->number;
        mp.etag = (char *)(etag ? etag : "");
        mp.size = p->size;
        mp.mtime_ns = (int64_t)nb_wall_ns();
        mp.nslices = n;
        mp.slices = p->slices;
        rc = meta_part_put(p->v->m, p->upload, &mp);
        if (rc == 0)
            rc = vfs__errno(meta_sync(p->v->m));
    }
    vfs_part_abort(p);
    return rc;
}

void vfs_part_abort(vfs_part *p)
{
    if (!p)
        return;
    if (p->w)
        data_writer_abort(p->w);
    for (size_t i = 0; i < p->n; i++)
        data_slice_unhold(p->v->ds, p->slices[i].id);
    free(p->slices);
    free(p);
}

/* ---- Complete ------------------------------------------------------------------------------ */

typedef struct parts_acc {
    meta_part *v;
    size_t n, cap;
} parts_acc;

static int part_cb(void *arg, const meta_part *p)
{
    parts_acc *a = arg;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = nb_xrealloc(a->v, a->cap * sizeof(*a->v));
    }
    meta_part *c = &a->v[a->n++];
    *c = *p;
    c->etag = p->etag ? nb_xstrdup(p->etag) : NULL;
    c->slices = nb_xmalloc((p->nslices ? p->nslices : 1) * sizeof(*c->slices));
    if (p->nslices)
        memcpy(c->slices, p->slices, p->nslices * sizeof(*c->slices));
    return 0;
}

static void add_write(meta_write **w, size_t *nw, size_t *cap, const meta_slice *s, uint64_t at)
{
    uint64_t soff = s->off, left = s->len;
    while (left > 0) {
        uint32_t pos = (uint32_t)(at % META_CHUNK_SIZE);
        uint64_t l = META_CHUNK_SIZE - pos;
        if (l > left)
            l = left;
        if (*nw == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *w = nb_xrealloc(*w, *cap * sizeof(**w));
        }
        meta_write *x = &(*w)[(*nw)++];
        x->chunk = (uint32_t)(at / META_CHUNK_SIZE);
        x->slice = (meta_slice){
            .id = s->id, .size = s->size, .off = (uint32_t)soff, .len = (uint32_t)l, .pos = pos};
        at += l;
        soff += l;
        left -= l;
    }
}

int vfs_mpu_complete(vfs *v, const vfs_cred *c, uint64_t upload_id, const uint32_t *numbers,
                     size_t n, nb_slice rec, vfs_attr *out)
{
    return vfs_mpu_complete_ver(v, c, upload_id, numbers, n, rec, VFS_VER_OFF, out);
}

int vfs_mpu_complete_ver(vfs *v, const vfs_cred *c, uint64_t upload_id, const uint32_t *numbers,
                         size_t n, nb_slice rec, int versioning, vfs_attr *out)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    meta_upload u;
    rc = meta_upload_get(v->m, upload_id, &u);
    if (rc != 0)
        return rc;
    parts_acc parts = {0};
    rc = meta_part_list(v->m, upload_id, 0, part_cb, &parts);
    meta_write *w = NULL;
    size_t nw = 0, cap = 0;
    uint64_t size = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const meta_part *p = NULL;
        for (size_t k = 0; k < parts.n && !p; k++)
            if (parts.v[k].number == numbers[i])
                p = &parts.v[k];
        if (!p) {
            rc = NB_ENOTFOUND; /* InvalidPart */
            break;
        }
        for (size_t k = 0; k < p->nslices; k++) {
            add_write(&w, &nw, &cap, &p->slices[k], size);
            size += p->slices[k].len;
        }
    }
    if (rc == 0 && size > VFS_MAX_FILE_SIZE)
        rc = -EFBIG;
    meta_attr tmp;
    uint64_t ino = 0;
    if (rc == 0) {
        rc = vfs__errno(meta_tmpfile(v->m, c, u.bucket, S_IFREG | 0644, &tmp));
        if (rc == 0)
            ino = tmp.ino;
    }
    /* The record's ETag belongs to the mtime the object gets here: stamped
     * before the install, which writes it once, in its batch (as a PUT's
     * commit does), not rewritten after. */
    int64_t mtime = (int64_t)nb_wall_ns();
    nb_buf stamped = NB_BUF_INIT;
    if (!rec.ptr)
        rec = nb_buf_slice(&u.objrec);
    if (rc == 0 && rec.ptr && rec.len) {
        vfs_objrec r;
        memset(&r, 0, sizeof(r));
        rc = vfs__errno(meta_objrec_decode(rec, &r));
        if (rc == 0) {
            r.etag_mtime_ns = mtime;
            rc = vfs__errno(meta_objrec_encode(&r, &stamped));
            rec = nb_buf_slice(&stamped);
        }
        meta_objrec_free(&r);
    }
    /* The object's map refers to the parts' slices; meta_upload_complete
     * drops the parts in the same batch as the install. */
    if (rc == 0)
        rc = vfs__errno(meta_publish(v->m, ino, w, nw, size, META_PUBLISH_SIZE, mtime,
                                     nb_slice_of(NULL, 0), 0, NULL));
    if (rc == 0)
        rc = vfs__install_key(v, c, u.bucket, u.key, ino, upload_id, rec, versioning, out);
    nb_buf_free(&stamped);
    if (rc == 0)
        rc = vfs__errno(meta_sync(v->m));
    if (ino)
        VFS__IGNORE(meta_release(v->m, ino));
    for (size_t k = 0; k < parts.n; k++)
        meta_part_free(&parts.v[k]);
    free(parts.v);
    free(w);
    meta_upload_free(&u);
    return rc;
}

int vfs_mpu_part_sizes(vfs *v, uint64_t ino, uint64_t size, uint32_t parts, uint64_t *sizes)
{
    uint64_t nchunks = (size + META_CHUNK_SIZE - 1) / META_CHUNK_SIZE;
    uint64_t cur_id = 0, cur_end = 0; /* the run: its slice and where it got to */
    uint32_t runs = 0;
    int rc = parts ? 0 : NB_ENOTFOUND;
    for (uint64_t c = 0; rc == 0 && c < nchunks; c++) {
        meta_slice *s = NULL;
        size_t n = 0;
        rc = meta_chunk_read(v->m, ino, (uint32_t)c, &s, &n);
        uint64_t want = size - c * META_CHUNK_SIZE, pos = 0;
        if (want > META_CHUNK_SIZE)
            want = META_CHUNK_SIZE;
        /* Only maps that tile the chunk in order, as Complete writes them. */
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (s[i].pos != pos || s[i].id == 0) {
                rc = NB_ENOTFOUND;
                break;
            }
            pos += s[i].len;
            if (s[i].id == cur_id && s[i].off == cur_end) {
                sizes[runs - 1] += s[i].len;
            } else if (runs == parts) {
                rc = NB_ENOTFOUND; /* more runs than parts */
            } else {
                sizes[runs++] = s[i].len;
                cur_id = s[i].id;
            }
            cur_end = (uint64_t)s[i].off + s[i].len;
        }
        if (rc == 0 && pos != want)
            rc = NB_ENOTFOUND;
        free(s);
    }
    return rc == 0 && runs != parts ? NB_ENOTFOUND : rc;
}
