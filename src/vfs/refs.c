/*
 * refs.c — reads for the S3 gateway: a file range as block-store pieces
 * (docs/vfs.md, docs/data.md §4) that the gateway sends with sendfile or
 * from a mapping it checks (vfs_refs_check) instead of copying through
 * vfs_read; and a
 * GET or HEAD answered from one metadata snapshot without opening the file
 * (vfs_s3_get): what a 4 KiB GET costs is mostly metadata reads.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "vfs/vfs_int.h"

struct vfs_refs {
    vfs *v;
    data_fdref *refs;
    size_t n, cap;
    vfs_piece *pieces;
};

/* The gateway's view of r's refs. */
static void refs_pieces(vfs_refs *r)
{
    r->pieces = nb_xmalloc((r->n ? r->n : 1) * sizeof *r->pieces);
    for (size_t i = 0; i < r->n; i++)
        r->pieces[i] = (vfs_piece){r->refs[i].fd, r->refs[i].off, r->refs[i].len};
}

int vfs_read_refs(vfs_file *f, uint64_t off, uint64_t len, vfs_refs **out)
{
    *out = NULL;
    if (!f->rd)
        return -EBADF;
    vfs *v = f->v;
    pthread_mutex_lock(&f->mu);
    int rc = f->w || f->nsegs || f->npw ? -EAGAIN : 0;
    meta_attr a;
    if (rc == 0)
        rc = vfs__errno(meta_getattr(v->m, f->ino, &a));
    pthread_mutex_unlock(&f->mu);
    if (rc != 0)
        return rc;
    if (off >= a.size)
        len = 0;
    else if (len > a.size - off)
        len = a.size - off;
    vfs_refs *r = nb_xcalloc(1, sizeof *r);
    r->v = v;
    /* The pin covers the map reads until every block is held by a ref. */
    data_pin pin = data_pin_begin(v->ds);
    uint64_t pos = off, end = off + len;
    while (rc == 0 && pos < end) {
        uint32_t idx = (uint32_t)(pos / META_CHUNK_SIZE);
        uint32_t coff = (uint32_t)(pos % META_CHUNK_SIZE);
        uint64_t n = META_CHUNK_SIZE - coff;
        if (n > end - pos)
            n = end - pos;
        meta_slice *ms = NULL;
        size_t nms = 0;
        rc = vfs__errno(meta_chunk_read(v->m, f->ino, idx, &ms, &nms));
        /* Inline slices have no block to send from: the caller copies. */
        for (size_t i = 0; rc == 0 && i < nms; i++)
            if (ms[i].id & META_SLICE_INLINE)
                rc = -EAGAIN;
        data_slice *ds = rc == 0 && nms ? nb_xmalloc(nms * sizeof *ds) : NULL;
        if (ds)
            vfs__to_data(ms, nms, ds);
        if (rc == 0)
            rc = vfs__errno(
                data_chunk_refs(v->ds, ds, nms, coff, (size_t)n, &r->refs, &r->n, &r->cap));
        free(ds);
        free(ms);
        pos += n;
    }
    data_pin_end(v->ds, pin);
    if (rc != 0) {
        vfs_refs_free(r);
        return rc;
    }
    refs_pieces(r);
    *out = r;
    return 0;
}

const vfs_piece *vfs_refs_pieces(const vfs_refs *r, size_t *n)
{
    *n = r->n;
    return r->pieces;
}

bool vfs_refs_check_span(const vfs_refs *r, size_t i, uint64_t *lo, uint64_t *hi)
{
    return i < r->n && data_fdref_check_span(r->v->ds, &r->refs[i], lo, hi);
}

int vfs_refs_check(const vfs_refs *r, size_t i, const void *map, uint64_t map_off, size_t map_len)
{
    if (i >= r->n)
        return -EINVAL;
    int rc = data_fdref_check(r->v->ds, &r->refs[i], map, map_off, map_len);
    return rc == NB_EUSAGE ? -EINVAL : vfs__errno(rc);
}

void vfs_refs_free(vfs_refs *r)
{
    if (!r)
        return;
    data_chunk_refs_release(r->v->ds, r->refs, r->n);
    free(r->refs);
    free(r->pieces);
    free(r);
}

/* ---- GET without an open file ---------------------------------------------------------------- */

struct vfs_s3_obj {
    vfs *v;
    meta_obj m;
    vfs_attr attr;
    bool pinned, data_ok, has_inline;
    data_pin pin;
    data_slice *ds; /* chunk 0, inline bytes pointing into m.inl */
    size_t nds;
    data_ra *ra; /* vfs_s3_obj_stream's, made on its first read */
};

/* The snapshot's chunk 0 as data slices, inline ones pointing at their
 * bytes in the snapshot's records. */
static int obj_data(vfs_s3_obj *o)
{
    o->nds = o->m.nmap;
    o->ds = nb_xmalloc((o->nds ? o->nds : 1) * sizeof *o->ds);
    vfs__to_data(o->m.map, o->nds, o->ds);
    for (size_t i = 0; i < o->nds; i++) {
        data_slice *d = &o->ds[i];
        if (!(d->id & META_SLICE_INLINE))
            continue;
        o->has_inline = true;
        const nb_buf *b = &o->m.inl[i];
        for (size_t j = 0; j < i && b->len == 0; j++)
            if (o->m.map[j].id == d->id)
                b = &o->m.inl[j];
        if (b->len < d->slice_off + d->len) {
            NB_ERROR("vfs: inline slice %llu of inode %llu: shorter than its map says",
                     (unsigned long long)(d->id & ~META_SLICE_INLINE),
                     (unsigned long long)o->attr.ino);
            return -EIO;
        }
        d->bytes = b->data;
    }
    return 0;
}

int vfs_s3_get(vfs *v, const char *bucket, const char *key, bool data, vfs_s3_obj **out)
{
    *out = NULL;
    if (!bucket || !*bucket || strchr(bucket, '/'))
        return -EINVAL;
    int rc = vfs_s3_key_check(key);
    if (rc != 0)
        return rc;
    vfs_s3_obj *o = nb_xcalloc(1, sizeof *o);
    o->v = v;
    if (data) {
        o->pin = data_pin_begin(v->ds);
        o->pinned = true;
    }
    rc = vfs__errno(meta_obj_get(v->m, bucket, key, data ? META_OBJ_DATA : 0, &o->m));
    if (rc == 0) {
        o->attr = o->m.a;
        uint64_t end = S_ISREG(o->attr.mode) ? vfs__pending_end(v, o->attr.ino) : 0;
        if (end > o->attr.size)
            o->attr.size = end;
        o->data_ok = data && end == 0 && S_ISREG(o->attr.mode) && o->attr.size <= META_CHUNK_SIZE;
        if (o->data_ok)
            rc = obj_data(o);
    }
    if (rc != 0) {
        vfs_s3_obj_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

const vfs_attr *vfs_s3_obj_attr(const vfs_s3_obj *o)
{
    return &o->attr;
}

nb_slice vfs_s3_obj_rec(const vfs_s3_obj *o)
{
    return nb_buf_slice(&o->m.rec);
}

static int obj_read(vfs_s3_obj *o, data_ra *ra, uint64_t off, void *buf, size_t len)
{
    if (!o->data_ok)
        return -EAGAIN;
    if (off > o->attr.size || len > o->attr.size - off)
        return -EINVAL;
    if (len == 0)
        return 0;
    return vfs__errno(data_chunk_read(o->v->ds, ra, o->ds, o->nds, (uint32_t)off, len, buf));
}

int vfs_s3_obj_read(vfs_s3_obj *o, uint64_t off, void *buf, size_t len)
{
    return obj_read(o, NULL, off, buf, len);
}

int vfs_s3_obj_stream(vfs_s3_obj *o, uint64_t off, void *buf, size_t len)
{
    if (!o->ra)
        o->ra = data_ra_new();
    return obj_read(o, o->ra, off, buf, len);
}

bool vfs_s3_obj_cold(vfs_s3_obj *o, uint64_t off, uint64_t len)
{
    return o->data_ok && !o->has_inline && off <= o->attr.size && len <= o->attr.size - off &&
           len && data_chunk_cold(o->v->ds, o->ds, o->nds, (uint32_t)off, (size_t)len);
}

int vfs_s3_obj_refs(vfs_s3_obj *o, uint64_t off, uint64_t len, vfs_refs **out)
{
    *out = NULL;
    if (!o->data_ok || o->has_inline)
        return -EAGAIN;
    if (off > o->attr.size || len > o->attr.size - off)
        return -EINVAL;
    vfs_refs *r = nb_xcalloc(1, sizeof *r);
    r->v = o->v;
    int rc = len ? vfs__errno(data_chunk_refs(o->v->ds, o->ds, o->nds, (uint32_t)off, (size_t)len,
                                              &r->refs, &r->n, &r->cap))
                 : 0;
    if (rc != 0) {
        vfs_refs_free(r);
        return rc;
    }
    refs_pieces(r);
    *out = r;
    return 0;
}

const uint8_t *vfs_s3_obj_inline(const vfs_s3_obj *o, uint64_t off, uint64_t len)
{
    if (!o->data_ok || !o->has_inline || o->nds == 0 || off > o->attr.size ||
        len > o->attr.size - off || len == 0)
        return NULL;
    /* The newest slice wins where slices overlap: what it covers is its. */
    const data_slice *d = &o->ds[o->nds - 1];
    if (!(d->id & META_SLICE_INLINE) || !d->bytes || off < d->chunk_off ||
        off + len > (uint64_t)d->chunk_off + d->len)
        return NULL;
    return d->bytes + d->slice_off + (off - d->chunk_off);
}

void vfs_s3_obj_free(vfs_s3_obj *o)
{
    if (!o)
        return;
    meta_obj_free(&o->m);
    free(o->ds);
    data_ra_free(o->ra);
    if (o->pinned)
        data_pin_end(o->v->ds, o->pin);
    free(o);
}
