/*
 * s3.c — S3 semantics mapped onto the namespace, once, for the gateway:
 * key rules, object lookup, the atomic whole-object PUT, DELETE with
 * removal of implicit directories, and ListObjects in key order over the
 * directory tree. The rules are in docs/vfs.md "S3 <-> POSIX".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "vfs/vfs_int.h"

int vfs_s3_key_check(const char *key)
{
    size_t n = strlen(key);
    if (n == 0)
        return -EINVAL;
    if (n > VFS_KEY_MAX)
        return -ENAMETOOLONG;
    const char *p = key;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (!e && l == 0)
            return 0; /* a trailing '/': a directory marker */
        if (l == 0)
            return -EINVAL; /* "//" or a leading '/' */
        if (l > VFS_NAME_MAX)
            return -ENAMETOOLONG;
        if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
            return -EINVAL;
        if (!e)
            return 0;
        p = e + 1;
    }
}

bool vfs_s3_file_cold(vfs_file *f, uint64_t off, uint64_t len)
{
    if (len == 0 || !f->rd)
        return false;
    vfs *v = f->v;
    uint32_t idx = (uint32_t)(off / META_CHUNK_SIZE);
    uint32_t coff = (uint32_t)(off % META_CHUNK_SIZE);
    uint64_t n = META_CHUNK_SIZE - coff;
    if (n > len)
        n = len;
    /* The pin keeps the map's blocks from going while they are looked at. */
    data_pin pin = data_pin_begin(v->ds);
    meta_slice *ms = NULL;
    size_t nms = 0;
    bool cold = false;
    if (meta_chunk_read(v->m, f->ino, idx, &ms, &nms) == 0 && nms > 0) {
        bool inl = false;
        for (size_t i = 0; i < nms; i++)
            inl |= (ms[i].id & META_SLICE_INLINE) != 0;
        if (!inl) {
            data_slice *ds = nb_xmalloc(nms * sizeof *ds);
            vfs__to_data(ms, nms, ds);
            cold = data_chunk_cold(v->ds, ds, nms, coff, (size_t)n);
            free(ds);
        }
    }
    free(ms);
    data_pin_end(v->ds, pin);
    return cold;
}

int vfs__bucket_ino(vfs *v, const vfs_cred *c, const char *bucket, uint64_t *ino)
{
    meta_attr a;
    if (!bucket || !*bucket || strchr(bucket, '/'))
        return -EINVAL;
    int rc = vfs__errno(meta_lookup(v->m, c, VFS_ROOT_INO, bucket, &a));
    if (rc != 0)
        return rc;
    if (!S_ISDIR(a.mode))
        return -ENOENT;
    *ino = a.ino;
    return 0;
}

/* Splits off the next segment of *p into name; returns its length, and
 * sets *last when no '/' follows. */
static size_t next_seg(const char **p, char name[VFS_NAME_MAX + 1], bool *last)
{
    const char *e = strchr(*p, '/');
    size_t l = e ? (size_t)(e - *p) : strlen(*p);
    memcpy(name, *p, l);
    name[l] = 0;
    *last = e == NULL;
    *p = e ? e + 1 : *p + l;
    return l;
}

/* Walks the directories of key (every segment but the last) from dir;
 * *dir gets the last directory and *leaf the last segment ("" for a
 * marker). create: make missing ones (implicit). */
int vfs__walk_parents(vfs *v, const vfs_cred *c, const char *key, bool create, uint64_t *dir,
                      char leaf[VFS_NAME_MAX + 1])
{
    const char *p = key;
    char name[VFS_NAME_MAX + 1];
    bool last = false;
    for (;;) {
        next_seg(&p, name, &last);
        if (last) {
            memcpy(leaf, name, strlen(name) + 1);
            return 0;
        }
        meta_attr a;
        int rc = vfs__errno(meta_lookup(v->m, c, *dir, name, &a));
        if (rc == -ENOENT && create) {
            rc = vfs__errno(meta_mkdir(v->m, c, *dir, name, 0755, &a));
            if (rc == 0) {
                nb_slice one = nb_slice_of("1", 1);
                VFS__IGNORE(meta_xattr_set(v->m, NULL, a.ino, VFS__IMPLICIT_XATTR, one, 0));
                vfs__notify(v, VFS_NOTIFY_ENTRY, *dir, name, 0);
            } else if (rc == -EEXIST) {
                rc = vfs__errno(meta_lookup(v->m, c, *dir, name, &a));
            }
        }
        if (rc != 0)
            return rc;
        if (!S_ISDIR(a.mode))
            return create ? -ENOTDIR : -ENOENT;
        *dir = a.ino;
    }
}

int vfs_s3_lookup(vfs *v, const vfs_cred *c, const char *bucket, const char *key, vfs_attr *out)
{
    int rc = vfs_s3_key_check(key);
    uint64_t dir = 0;
    if (rc == 0)
        rc = vfs__bucket_ino(v, c, bucket, &dir);
    char leaf[VFS_NAME_MAX + 1];
    if (rc == 0)
        rc = vfs__walk_parents(v, c, key, false, &dir, leaf);
    if (rc != 0)
        return rc == -ENOTDIR ? -ENOENT : rc;
    meta_attr a;
    if (!leaf[0]) {
        rc = vfs__errno(meta_getattr(v->m, dir, &a));
        if (rc == 0 && dir == VFS_ROOT_INO)
            rc = -ENOENT;
    } else {
        rc = vfs__errno(meta_lookup(v->m, c, dir, leaf, &a));
        if (rc == 0 && !S_ISREG(a.mode))
            rc = -ENOENT;
    }
    if (rc == 0 && out)
        return vfs_getattr(v, a.ino, out);
    return rc;
}

int vfs_s3_open(vfs *v, const vfs_cred *c, const char *bucket, const char *key, vfs_file **out)
{
    *out = NULL;
    meta_attr a;
    int rc = vfs_s3_lookup(v, c, bucket, key, &a);
    if (rc != 0)
        return rc;
    if (S_ISDIR(a.mode))
        return -EISDIR; /* a marker: the gateway answers with an empty body */
    return vfs_file_open(v, c, a.ino, O_RDONLY, out);
}

/* ---- PUT ------------------------------------------------------------------------------------- */

struct vfs_put {
    vfs *v;
    meta_cred cred;
    uint32_t *groups;
    char *bucket, *key;
    uint64_t bucket_ino;
    uint64_t ino; /* the unnamed file; 0 for a marker */
    data_writer *w;
    uint64_t w_id, w_off;
    meta_write *pw;
    size_t npw, cappw;
    uint64_t *held;
    size_t nheld, capheld;
    /* The first VFS__INLINE_MAX bytes wait here: a body that ends within
     * them is stored inline in metadata, not as a block (like a small
     * file). */
    uint8_t *inl;
    uint64_t size;
    int err;
    int versioning; /* VFS_VER_* */
};

int vfs_put_begin(vfs *v, const vfs_cred *c, const char *bucket, const char *key, uint32_t mode,
                  vfs_put **out)
{
    *out = NULL;
    int rc = vfs__ro(v);
    if (rc == 0)
        rc = vfs_s3_key_check(key);
    uint64_t bino = 0;
    if (rc == 0)
        rc = vfs__bucket_ino(v, c, bucket, &bino);
    if (rc != 0)
        return rc;
    vfs_put *p = nb_xcalloc(1, sizeof(*p));
    p->v = v;
    if (c) {
        p->cred = *c;
        if (c->ngroups) {
            p->groups = nb_xmalloc(c->ngroups * sizeof(uint32_t));
            memcpy(p->groups, c->groups, c->ngroups * sizeof(uint32_t));
        }
        p->cred.groups = p->groups;
    }
    p->bucket = nb_xstrdup(bucket);
    p->key = nb_xstrdup(key);
    p->bucket_ino = bino;
    if (key[strlen(key) - 1] != '/') {
        meta_attr a;
        rc =
            vfs__errno(meta_tmpfile(v->m, c ? &p->cred : NULL, bino, S_IFREG | (mode & 07777), &a));
        if (rc != 0) {
            vfs_put_abort(p);
            return rc;
        }
        p->ino = a.ino;
    }
    *out = p;
    return 0;
}

static void put_pw_add(vfs_put *p, uint32_t chunk, meta_slice s)
{
    if (p->npw == p->cappw) {
        p->cappw = p->cappw ? p->cappw * 2 : 16;
        p->pw = nb_xrealloc(p->pw, p->cappw * sizeof(*p->pw));
    }
    p->pw[p->npw].chunk = chunk;
    p->pw[p->npw].slice = s;
    p->npw++;
}

static int put_finish_writer(vfs_put *p)
{
    if (!p->w)
        return 0;
    uint64_t len = 0;
    int rc = data_writer_finish(p->w, &len);
    p->w = NULL;
    if (p->nheld == p->capheld) {
        p->capheld = p->capheld ? p->capheld * 2 : 8;
        p->held = nb_xrealloc(p->held, p->capheld * sizeof(*p->held));
    }
    p->held[p->nheld++] = p->w_id;
    if (rc != 0)
        return vfs__errno(rc);
    if (len > 0) {
        meta_slice s = {.id = p->w_id,
                        .size = (uint32_t)len,
                        .off = 0,
                        .len = (uint32_t)len,
                        .pos = (uint32_t)(p->w_off % META_CHUNK_SIZE)};
        put_pw_add(p, (uint32_t)(p->w_off / META_CHUNK_SIZE), s);
    }
    return 0;
}

/* The body outgrew the inline buffer: its bytes start the first slice. */
static int put_spill_inline(vfs_put *p)
{
    int rc = vfs__errno(meta_id_alloc(p->v->m, META_ID_SLICE, 1, &p->w_id));
    if (rc == 0)
        rc = vfs__errno(data_writer_new(p->v->ds, p->w_id, &p->w));
    if (rc == 0) {
        p->w_off = 0;
        rc = vfs__errno(data_writer_append(p->w, p->inl, (size_t)p->size));
    }
    free(p->inl);
    p->inl = NULL;
    return rc;
}

int vfs_put_write(vfs_put *p, const void *buf, size_t len)
{
    if (p->err)
        return p->err;
    if (!p->ino)
        return len ? -EINVAL : 0; /* a directory marker has no bytes */
    const uint8_t *b = buf;
    int rc = 0;
    if (p->size > VFS_MAX_FILE_SIZE || len > VFS_MAX_FILE_SIZE - p->size)
        rc = -EFBIG;
    if (rc == 0 && !p->w && p->size + len <= VFS__INLINE_MAX) {
        if (!p->inl)
            p->inl = nb_xmalloc(VFS__INLINE_MAX);
        memcpy(p->inl + p->size, b, len);
        p->size += len;
        return 0;
    }
    if (rc == 0 && p->inl)
        rc = put_spill_inline(p);
    while (rc == 0 && len > 0) {
        if (!p->w) {
            rc = vfs__errno(meta_id_alloc(p->v->m, META_ID_SLICE, 1, &p->w_id));
            if (rc == 0)
                rc = vfs__errno(data_writer_new(p->v->ds, p->w_id, &p->w));
            if (rc != 0)
                break;
            p->w_off = p->size;
        }
        /* One slice per chunk: a slice never crosses a chunk boundary. */
        uint64_t room = META_CHUNK_SIZE - p->size % META_CHUNK_SIZE;
        size_t n = len < room ? len : (size_t)room;
        rc = vfs__errno(data_writer_append(p->w, b, n));
        if (rc != 0)
            break;
        b += n;
        len -= n;
        p->size += n;
        if (p->size % META_CHUNK_SIZE == 0)
            rc = put_finish_writer(p);
    }
    if (rc != 0)
        p->err = rc;
    return rc;
}

static int put_marker(vfs_put *p, nb_slice rec, vfs_attr *out)
{
    vfs *v = p->v;
    const meta_cred *c = p->cred.uid || p->cred.gid || p->groups ? &p->cred : NULL;
    uint64_t dir = p->bucket_ino;
    char leaf[VFS_NAME_MAX + 1];
    /* The marker's own directory is the last segment before the '/'. */
    char *k = nb_xstrndup(p->key, strlen(p->key) - 1);
    int rc = vfs__walk_parents(v, c, k, true, &dir, leaf);
    meta_attr a;
    if (rc == 0) {
        rc = vfs__errno(meta_mkdir(v->m, c, dir, leaf, 0755, &a));
        if (rc == 0)
            vfs__notify(v, VFS_NOTIFY_ENTRY, dir, leaf, 0);
        if (rc == -EEXIST) {
            rc = vfs__errno(meta_lookup(v->m, c, dir, leaf, &a));
            if (rc == 0 && !S_ISDIR(a.mode))
                rc = -ENOTDIR;
            if (rc == 0) /* now an explicit directory */
                VFS__IGNORE(meta_xattr_remove(v->m, NULL, a.ino, VFS__IMPLICIT_XATTR));
        }
    }
    free(k);
    if (rc == 0 && rec.ptr)
        rc = vfs__errno(meta_objrec_set(v->m, a.ino, rec));
    if (rc == 0)
        rc = vfs__errno(meta_sync(v->m));
    if (rc == 0 && out)
        rc = vfs_getattr(v, a.ino, out);
    return rc;
}

int vfs_put_commit(vfs_put *p, nb_slice rec, vfs_attr *out)
{
    vfs *v = p->v;
    int rc = p->err;
    if (!p->ino) {
        if (rc == 0)
            rc = put_marker(p, rec, out);
        vfs_put_abort(p);
        return rc;
    }
    const meta_cred *c = p->cred.uid || p->cred.gid || p->groups ? &p->cred : NULL;
    /* The record's ETag belongs to the mtime this commit gives the file:
     * stamped here, in the same batch as the object, so a later write
     * through the mount (which changes the mtime) marks it stale. */
    int64_t mtime = (int64_t)nb_wall_ns();
    nb_buf stamped = NB_BUF_INIT;
    if (rc == 0 && rec.ptr) {
        vfs_objrec r;
        memset(&r, 0, sizeof(r));
        rc = meta_objrec_decode(rec, &r);
        if (rc == 0) {
            r.etag_mtime_ns = mtime;
            rc = meta_objrec_encode(&r, &stamped);
        }
        meta_objrec_free(&r);
        rec = nb_buf_slice(&stamped);
        rc = vfs__errno(rc);
    }
    if (rc == 0)
        rc = put_finish_writer(p);
    meta_inline inl = {0};
    if (rc == 0 && p->inl && p->size > 0) {
        /* A small body: one inline slice, its bytes in the publish's batch. */
        rc = vfs__errno(meta_id_alloc(v->m, META_ID_SLICE, 1, &inl.id));
        inl.id |= META_SLICE_INLINE;
        inl.bytes = nb_slice_of(p->inl, (size_t)p->size);
        meta_slice s = {.id = inl.id, .size = (uint32_t)p->size, .len = (uint32_t)p->size};
        if (rc == 0)
            put_pw_add(p, 0, s);
    }
    if (rc == 0)
        rc = vfs__errno(meta_publish_inline(v->m, p->ino, p->pw, p->npw, p->size, META_PUBLISH_SIZE,
                                            mtime, nb_slice_of(NULL, 0), 0, &inl, inl.id ? 1 : 0,
                                            NULL));
    if (rc == 0)
        rc = vfs__install_key(v, c, p->bucket_ino, p->key, p->ino, 0, rec, p->versioning, out);
    /* No sync of our own: the blocks are durable (synced writers) and the
     * install is a synced kv write, which covers the unsynced publish
     * before it; concurrent PUTs share its WAL sync (nkv group commit). */
    nb_buf_free(&stamped);
    vfs_put_abort(p);
    return rc;
}

void vfs_put_versioning(vfs_put *p, int versioning)
{
    p->versioning = versioning;
}

void vfs_put_abort(vfs_put *p)
{
    if (!p)
        return;
    if (p->w) {
        data_writer_abort(p->w);
        p->w = NULL;
    }
    for (size_t i = 0; i < p->nheld; i++)
        data_slice_unhold(p->v->ds, p->held[i]);
    /* Installed or not, our open goes; an uninstalled file is reclaimed. */
    if (p->ino)
        VFS__IGNORE(meta_release(p->v->m, p->ino));
    free(p->pw);
    free(p->held);
    free(p->inl);
    free(p->groups);
    free(p->bucket);
    free(p->key);
    free(p);
}

/* ---- DELETE ---------------------------------------------------------------------------------- */

int vfs_s3_delete(vfs *v, const vfs_cred *c, const char *bucket, const char *key)
{
    int rc = vfs__ro(v);
    if (rc == 0)
        rc = vfs_s3_key_check(key);
    uint64_t bino = 0;
    if (rc == 0)
        rc = vfs__bucket_ino(v, c, bucket, &bino);
    if (rc != 0)
        return rc;
    size_t kl = strlen(key);
    bool marker = key[kl - 1] == '/';
    char *k = nb_xstrndup(key, marker ? kl - 1 : kl);
    /* Remember the directory chain to clean up afterwards. */
    uint64_t chain[VFS_KEY_MAX / 2 + 2];
    char *names[VFS_KEY_MAX / 2 + 2];
    size_t depth = 0;
    uint64_t dir = bino;
    const char *p = k;
    char name[VFS_NAME_MAX + 1];
    bool last = false;
    for (;;) {
        next_seg(&p, name, &last);
        if (last)
            break;
        meta_attr a;
        rc = vfs__errno(meta_lookup(v->m, c, dir, name, &a));
        if (rc == 0 && !S_ISDIR(a.mode))
            rc = -ENOENT;
        if (rc != 0)
            break;
        chain[depth] = dir;
        names[depth] = nb_xstrdup(name);
        depth++;
        dir = a.ino;
    }
    if (rc == 0) {
        meta_attr a;
        rc = vfs__errno(meta_lookup(v->m, c, dir, name, &a));
        if (rc == 0 && marker) {
            if (!S_ISDIR(a.mode))
                rc = -ENOENT;
            else {
                rc = vfs__errno(meta_rmdir(v->m, c, dir, name));
                if (rc == -ENOTEMPTY)
                    rc = 0; /* the marker of a non-empty directory is not an object */
                else if (rc == 0)
                    vfs__notify(v, VFS_NOTIFY_ENTRY, dir, name, a.ino);
            }
        } else if (rc == 0) {
            rc = S_ISREG(a.mode) ? vfs__errno(meta_unlink(v->m, c, dir, name)) : -ENOENT;
            if (rc == 0)
                vfs__notify(v, VFS_NOTIFY_ENTRY, dir, name, a.ino);
        }
    }
    /* Implicit parents left empty go too, deepest first. */
    size_t ndepth = depth;
    while (rc == 0 && depth > 0) {
        depth--;
        meta_attr a;
        if (meta_lookup(v->m, NULL, chain[depth], names[depth], &a) != 0)
            break;
        nb_buf x = NB_BUF_INIT;
        int xrc = meta_xattr_get(v->m, NULL, a.ino, VFS__IMPLICIT_XATTR, &x);
        nb_buf_free(&x);
        if (xrc != 0 || meta_rmdir(v->m, c, chain[depth], names[depth]) != 0)
            break;
        vfs__notify(v, VFS_NOTIFY_ENTRY, chain[depth], names[depth], a.ino);
    }
    for (size_t i = 0; i < ndepth; i++)
        free(names[i]);
    free(k);
    if (rc == 0 && v->o.sync)
        rc = vfs__errno(meta_sync(v->m));
    return rc;
}

/* ---- Objects and buckets ------------------------------------------------------------------- */

int vfs_objrec_encode(const vfs_objrec *r, nb_buf *out)
{
    return meta_objrec_encode(r, out);
}

int vfs_objrec_decode(nb_slice in, vfs_objrec *r)
{
    return meta_objrec_decode(in, r);
}

void vfs_objrec_free(vfs_objrec *r)
{
    meta_objrec_free(r);
}

int vfs_objrec_get(vfs *v, uint64_t ino, nb_buf *out)
{
    return meta_objrec_get(v->m, ino, out);
}

int vfs_objrec_set(vfs *v, uint64_t ino, nb_slice rec)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    return meta_objrec_set(v->m, ino, rec);
}

int vfs_bucket_create(vfs *v, const vfs_cred *c, const char *name, uint32_t mode, vfs_bucket *b)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    rc = vfs__errno(meta_bucket_create(v->m, c, name, mode, b));
    if (rc == 0)
        vfs__notify(v, VFS_NOTIFY_ENTRY, VFS_ROOT_INO, name, 0);
    return rc;
}

int vfs_bucket_get(vfs *v, const char *name, vfs_bucket *b)
{
    return meta_bucket_get(v->m, name, b);
}

int vfs_bucket_update(vfs *v, const char *name, const vfs_bucket *b)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    return meta_bucket_update(v->m, name, b);
}

void vfs_bucket_free(vfs_bucket *b)
{
    meta_bucket_free(b);
}

int vfs_bucket_delete(vfs *v, const vfs_cred *c, const char *name)
{
    int rc = vfs__ro(v);
    uint64_t bino = 0;
    if (rc == 0)
        rc = vfs__bucket_ino(v, c, name, &bino);
    /* Noncurrent versions and delete markers are objects too. */
    if (rc == 0)
        rc = meta_version_any(v->m, bino);
    if (rc > 0)
        rc = -ENOTEMPTY;
    if (rc != 0)
        return rc;
    rc = vfs__errno(meta_rmdir(v->m, c, VFS_ROOT_INO, name));
    if (rc == 0)
        vfs__notify(v, VFS_NOTIFY_ENTRY, VFS_ROOT_INO, name, 0);
    return rc;
}

/* ---- ListObjects ----------------------------------------------------------------------------- */

/* A directory's entries are visited in key order, which is not name
 * order: directory "a" has key "a/", which sorts after "a.txt" ('.' <
 * '/'). Entries come from meta_list in name order; each goes into a small
 * sorted queue under its key suffix (name, or name + "/" for a directory)
 * and leaves it once the next name read is larger than that key: every
 * later entry's key is at least its name. */
typedef struct lent {
    char *suffix; /* name or name + "/" */
    uint64_t ino;
    bool dir;
    meta_attr attr;
} lent;

typedef struct lister {
    vfs *v;
    const vfs_cred *c;
    const char *prefix;
    size_t plen;
    const char *delim;
    size_t dlen;
    const char *after;
    size_t max, count;
    bool truncated, stop;
    int err;
    nb_buf last; /* last key or prefix emitted */
    bool last_is_prefix;
    vfs_list_cb cb;
    void *arg;
    nb_buf key; /* the key being built */
} lister;

static bool starts_with(const char *s, size_t sl, const char *p, size_t pl)
{
    return sl >= pl && memcmp(s, p, pl) == 0;
}

static int keycmp(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int r = memcmp(a, b, n);
    if (r != 0)
        return r;
    return al < bl ? -1 : al > bl;
}

static int emit(lister *L, const char *k, size_t kl, bool is_prefix, const meta_attr *a)
{
    if (L->after && keycmp(k, kl, L->after, strlen(L->after)) <= 0)
        return 0;
    if (is_prefix && L->last_is_prefix && L->last.len == kl && memcmp(L->last.data, k, kl) == 0)
        return 0;
    if (L->count == L->max) {
        L->truncated = true;
        L->stop = true;
        return 0;
    }
    vfs_list_entry e = {.key = k, .key_len = kl, .is_prefix = is_prefix, .attr = a};
    nb_buf_reset(&L->last);
    int rc = nb_buf_append(&L->last, k, kl);
    if (rc != 0)
        return rc;
    L->last_is_prefix = is_prefix;
    L->count++;
    if (L->cb(L->arg, &e) != 0)
        L->stop = true;
    return 0;
}

/* The common prefix of key k (length kl) if the delimiter occurs after the
 * prefix within the first lim bytes; its length, or 0. */
static size_t common_prefix(lister *L, const char *k, size_t kl, size_t lim)
{
    if (!L->dlen || kl < L->plen)
        return 0;
    for (size_t i = L->plen; i + L->dlen <= kl && i + L->dlen <= lim; i++)
        if (memcmp(k + i, L->delim, L->dlen) == 0)
            return i + L->dlen;
    return 0;
}

static int walk_dir(lister *L, uint64_t dir);

typedef struct dirbatch {
    lent *e;
    size_t n, cap;
    char last[VFS_NAME_MAX + 1];
    bool more;
} dirbatch;

static int batch_cb(void *arg, const meta_dirent *d)
{
    dirbatch *b = arg;
    if (b->n == b->cap) {
        b->more = true;
        return 1;
    }
    lent *e = &b->e[b->n++];
    bool dir = d->type == S_IFDIR;
    e->suffix = nb_xasprintf("%s%s", d->name, dir ? "/" : "");
    e->ino = d->ino;
    e->dir = dir;
    if (d->attr)
        e->attr = *d->attr;
    else
        memset(&e->attr, 0, sizeof(e->attr));
    memcpy(b->last, d->name, d->name_len + 1);
    return 0;
}

static int first_cb(void *arg, const meta_dirent *d)
{
    (void)d;
    *(bool *)arg = true;
    return 1;
}

/* Handles one entry popped from the queue, in key order. */
static int visit(lister *L, lent *e)
{
    size_t base = L->key.len;
    int rc = nb_buf_append_str(&L->key, e->suffix);
    if (rc != 0)
        return rc;
    const char *k = (const char *)L->key.data;
    size_t kl = L->key.len;
    bool match = starts_with(k, kl, L->prefix, L->plen);
    if (!e->dir) {
        if (match && S_ISREG(e->attr.mode)) {
            size_t cp = common_prefix(L, k, kl, kl);
            rc = cp ? emit(L, k, cp, true, NULL) : emit(L, k, kl, false, &e->attr);
        }
    } else if (match || starts_with(L->prefix, L->plen, k, kl)) {
        size_t al = L->after ? strlen(L->after) : 0;
        bool before =
            L->after && keycmp(k, kl, L->after, al) <= 0 && !starts_with(L->after, al, k, kl);
        size_t cp = match ? common_prefix(L, k, kl, kl) : 0;
        if (before) {
            /* every key under it sorts before start_after */
        } else if (cp && cp < kl) {
            rc = emit(L, k, cp, true, NULL); /* the whole subtree shares this prefix */
        } else {
            bool nonempty = false;
            rc = vfs__errno(meta_list(L->v->m, e->ino, NULL, 0, first_cb, &nonempty));
            if (rc == 0 && !nonempty && match)
                rc = cp ? emit(L, k, cp, true, NULL) : emit(L, k, kl, false, &e->attr);
            else if (rc == 0 && nonempty) {
                if (cp == kl && match)
                    rc = emit(L, k, cp, true, NULL);
                else
                    rc = walk_dir(L, e->ino);
            }
        }
    }
    L->key.len = base;
    return rc;
}

static int walk_dir(lister *L, uint64_t dir)
{
    const char *k = L->key.data ? (const char *)L->key.data : "";
    size_t kl = L->key.len;
    /* Where to start: names before the relevant segment of the prefix and
     * of start_after cannot produce keys we want. */
    char start[VFS_NAME_MAX + 1] = "";
    const char *bounds[2] = {L->prefix, L->after};
    for (int i = 0; i < 2; i++) {
        const char *b = bounds[i];
        if (!b || strlen(b) <= kl || memcmp(b, k, kl) != 0)
            continue;
        const char *seg = b + kl;
        size_t sl = strcspn(seg, "/");
        if (i == 1) {
            /* A directory d with d + "/" after seg can hide behind a
             * shorter name: start before seg's first byte below '/'. */
            for (size_t j = 0; j < sl; j++)
                if ((unsigned char)seg[j] < '/') {
                    sl = j; /* the name seg[0, j) itself must be listed */
                    break;
                }
        }
        if (sl == 0)
            continue;
        if (sl - 1 > VFS_NAME_MAX)
            sl = VFS_NAME_MAX + 1;
        char cand[VFS_NAME_MAX + 1];
        memcpy(cand, seg, sl - 1);
        cand[sl - 1] = 0;
        if (strcmp(cand, start) > 0)
            memcpy(start, cand, sl);
    }
    /* Entries whose names pass the prefix's segment end the scan. */
    const char *pseg = NULL;
    size_t pslen = 0;
    if (L->plen > kl && memcmp(L->prefix, k, kl) == 0) {
        pseg = L->prefix + kl;
        pslen = strcspn(pseg, "/");
    }

    size_t qcap = 16, qn = 0;
    lent *q = nb_xmalloc(qcap * sizeof(*q));
    dirbatch b;
    memset(&b, 0, sizeof(b));
    b.cap = 1024;
    b.e = nb_xmalloc(b.cap * sizeof(*b.e));
    int rc = 0;
    bool first = true, done = false;
    while (rc == 0 && !L->stop && !done) {
        b.n = 0;
        b.more = false;
        rc = vfs__errno(meta_list(L->v->m, dir, first ? (start[0] ? start : NULL) : b.last,
                                  META_READDIR_ATTRS, batch_cb, &b));
        first = false;
        if (rc != 0)
            break;
        for (size_t i = 0; i < b.n; i++) {
            lent *e = &b.e[i];
            if (done || L->stop || rc != 0) {
                free(e->suffix);
                continue;
            }
            size_t nl = strlen(e->suffix) - (e->dir ? 1 : 0);
            if (pseg && keycmp(e->suffix, nl, pseg, pslen) > 0 &&
                !starts_with(e->suffix, nl, pseg, pslen)) {
                done = true;
                free(e->suffix);
                continue;
            }
            /* Pop queued keys below this name. */
            while (qn > 0 && rc == 0 && !L->stop &&
                   keycmp(q[0].suffix, strlen(q[0].suffix), e->suffix, nl) < 0) {
                rc = visit(L, &q[0]);
                free(q[0].suffix);
                memmove(q, q + 1, --qn * sizeof(*q));
            }
            if (qn == qcap) {
                qcap *= 2;
                q = nb_xrealloc(q, qcap * sizeof(*q));
            }
            size_t at = qn;
            while (at > 0 && strcmp(q[at - 1].suffix, e->suffix) > 0)
                at--;
            memmove(q + at + 1, q + at, (qn - at) * sizeof(*q));
            q[at] = *e;
            qn++;
        }
        if (!b.more)
            break;
    }
    for (size_t i = 0; i < qn; i++) {
        if (rc == 0 && !L->stop)
            rc = visit(L, &q[i]);
        free(q[i].suffix);
    }
    free(q);
    free(b.e);
    return rc;
}

int vfs_s3_list(vfs *v, const vfs_cred *c, const char *bucket, const vfs_list_opts *o,
                vfs_list_cb cb, void *arg, bool *truncated, char **next)
{
    *truncated = false;
    *next = NULL;
    uint64_t bino;
    int rc = vfs__bucket_ino(v, c, bucket, &bino);
    if (rc != 0)
        return rc;
    rc = vfs__errno(meta_access(v->m, c, bino, 05)); /* R_OK | X_OK */
    if (rc != 0)
        return rc;
    lister L;
    memset(&L, 0, sizeof(L));
    L.v = v;
    L.c = c;
    L.prefix = o && o->prefix ? o->prefix : "";
    L.plen = strlen(L.prefix);
    L.delim = o && o->delimiter && *o->delimiter ? o->delimiter : NULL;
    L.dlen = L.delim ? strlen(L.delim) : 0;
    L.after = o && o->start_after && *o->start_after ? o->start_after : NULL;
    L.max = o && o->max_keys ? o->max_keys : 1000;
    L.cb = cb;
    L.arg = arg;
    rc = walk_dir(&L, bino);
    if (rc == 0 && L.truncated) {
        *truncated = true;
        *next = nb_xstrndup((const char *)L.last.data, L.last.len);
    }
    nb_buf_free(&L.last);
    nb_buf_free(&L.key);
    return rc;
}
