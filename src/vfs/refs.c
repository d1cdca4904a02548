/*
 * refs.c — zero-copy reads for the S3 gateway: a file range as verified
 * block-store pieces (docs/vfs.md, docs/data.md §4) that the gateway sends
 * with sendfile or from a mapping instead of copying through vfs_read.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/common.h"
#include "vfs/vfs_int.h"

struct vfs_refs {
    vfs *v;
    data_fdref *refs;
    size_t n, cap;
    vfs_piece *pieces;
};

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
    r->pieces = nb_xmalloc((r->n ? r->n : 1) * sizeof *r->pieces);
    for (size_t i = 0; i < r->n; i++)
        r->pieces[i] = (vfs_piece){r->refs[i].fd, r->refs[i].off, r->refs[i].len};
    *out = r;
    return 0;
}

const vfs_piece *vfs_refs_pieces(const vfs_refs *r, size_t *n)
{
    *n = r->n;
    return r->pieces;
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
