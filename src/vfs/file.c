/*
 * file.c — open files: the per-handle write buffer, publishing, reads
 * that see the handle's own writes, fallocate, SEEK_DATA/SEEK_HOLE and
 * copy_file_range.
 *
 * Write path (docs/vfs.md "Write path"). A handle buffers writes in three
 * stages, oldest first:
 *
 *   pw[]    pieces of slices already written and synced, not yet published
 *   w       the slice being streamed: sequential writes append to it and
 *           its full 4 MiB blocks go out in the background
 *   segs[]  small random writes kept in memory, coalesced when contiguous
 *
 * Invariant: w and segs are never both non-empty, so their order is
 * clear. A non-contiguous write finishes w into pw; starting w spills segs
 * into one slice (all segments concatenated, each a piece of it) first.
 * Publishing finishes w, spills segs and hands pw to meta_publish as one
 * batch, so a published write is atomic. A read finishes w (its last block
 * is not in the store yet), reads published slices plus pw from the block
 * store and lays segs over the result.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "vfs/vfs_int.h"

void vfs__to_data(const meta_slice *s, size_t n, data_slice *out)
{
    for (size_t i = 0; i < n; i++) {
        out[i].id = s[i].id;
        out[i].chunk_off = s[i].pos;
        out[i].len = s[i].len;
        out[i].slice_off = s[i].off;
        out[i].bytes = NULL;
    }
}

int vfs__inline_load(vfs *v, vfs_file *f, data_slice *out, size_t n, nb_buf *bufs)
{
    for (size_t i = 0; i < n; i++) {
        if (!(out[i].id & META_SLICE_INLINE))
            continue;
        for (size_t j = 0; f && j < f->ninl && !out[i].bytes; j++)
            if (f->inl[j].id == out[i].id)
                out[i].bytes = f->inl[j].bytes.ptr;
        for (size_t j = 0; j < i && !out[i].bytes; j++)
            if (out[j].id == out[i].id)
                out[i].bytes = out[j].bytes;
        if (out[i].bytes)
            continue;
        int rc = meta_inline_get(v->m, out[i].id, &bufs[i]);
        if (rc != 0 || bufs[i].len < out[i].slice_off + out[i].len) {
            NB_ERROR("vfs: inline slice %llu: %s",
                     (unsigned long long)(out[i].id & ~META_SLICE_INLINE),
                     rc ? nb_strerror(rc) : "shorter than its map says");
            return -EIO;
        }
        out[i].bytes = bufs[i].data;
    }
    return 0;
}

void vfs__bufs_free(nb_buf *bufs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        nb_buf_free(&bufs[i]);
    free(bufs);
}

static void inl_free(vfs_file *f)
{
    for (size_t i = 0; i < f->ninl; i++)
        free((void *)f->inl[i].bytes.ptr);
    f->ninl = 0;
}

static void pw_add(vfs_file *f, uint32_t chunk, meta_slice s)
{
    if (f->npw == f->cappw) {
        f->cappw = f->cappw ? f->cappw * 2 : 16;
        f->pw = nb_xrealloc(f->pw, f->cappw * sizeof(*f->pw));
    }
    f->pw[f->npw].chunk = chunk;
    f->pw[f->npw].slice = s;
    f->npw++;
}

static void held_add(vfs_file *f, uint64_t id, uint64_t size)
{
    if (f->nheld == f->capheld) {
        f->capheld = f->capheld ? f->capheld * 2 : 8;
        f->held = nb_xrealloc(f->held, f->capheld * sizeof(*f->held));
        f->held_size = nb_xrealloc(f->held_size, f->capheld * sizeof(*f->held_size));
    }
    f->held_size[f->nheld] = size;
    f->held[f->nheld++] = id;
}

/* Slices of open files are written lazily (no fsync until vfs__sync, see
 * sync.c), except with o.sync, where every publish is durable at once. */
static unsigned writer_flags(const vfs *v)
{
    return v->o.sync ? 0 : DATA_WRITER_LAZY;
}

/* Adds pieces for [file_off, file_off+len) stored at slice_off of slice id
 * (of total size ssize), split at chunk boundaries. */
static void pw_add_range(vfs_file *f, uint64_t id, uint32_t ssize, uint64_t slice_off,
                         uint64_t file_off, uint64_t len)
{
    while (len > 0) {
        uint32_t chunk = (uint32_t)(file_off / META_CHUNK_SIZE);
        uint32_t pos = (uint32_t)(file_off % META_CHUNK_SIZE);
        uint64_t n = META_CHUNK_SIZE - pos;
        if (n > len)
            n = len;
        meta_slice s = {
            .id = id, .size = ssize, .off = (uint32_t)slice_off, .len = (uint32_t)n, .pos = pos};
        pw_add(f, chunk, s);
        file_off += n;
        slice_off += n;
        len -= n;
    }
}

static int new_slice_id(vfs *v, uint64_t *id)
{
    return meta_id_alloc(v->m, META_ID_SLICE, 1, id);
}

/* Finishes the streamed slice into pw. */
static int writer_finish(vfs_file *f)
{
    if (!f->w)
        return 0;
    uint64_t len = 0;
    int rc = data_writer_finish(f->w, &len);
    f->w = NULL;
    if (rc != 0) {
        data_slice_unhold(f->v->ds, f->w_id);
        return vfs__errno(rc);
    }
    held_add(f, f->w_id, len);
    if (len > 0)
        pw_add_range(f, f->w_id, (uint32_t)len, 0, f->w_off, len);
    return 0;
}

static void segs_free(vfs_file *f)
{
    for (size_t i = 0; i < f->nsegs; i++)
        free(f->segs[i].buf);
    f->nsegs = 0;
    f->seg_bytes = 0;
}

/* The segments now live, in order, in slice id of len bytes: each becomes a
 * pending-write range of it, and their buffers are freed. */
static void segs_to_pw(vfs_file *f, uint64_t id, uint64_t len)
{
    uint64_t soff = 0;
    for (size_t i = 0; i < f->nsegs; i++) {
        pw_add_range(f, id, (uint32_t)len, soff, f->segs[i].off, f->segs[i].len);
        soff += f->segs[i].len;
    }
    segs_free(f);
}

/* Small spills become inline slices: their bytes go into the publish's
 * metadata batch, no block is written. */
static int segs_spill_inline(vfs_file *f, uint64_t id)
{
    uint8_t *buf = nb_xmalloc(f->seg_bytes ? f->seg_bytes : 1);
    uint64_t len = 0;
    for (size_t i = 0; i < f->nsegs; i++) {
        memcpy(buf + len, f->segs[i].buf, f->segs[i].len);
        len += f->segs[i].len;
    }
    if (f->ninl == f->capinl) {
        f->capinl = f->capinl ? f->capinl * 2 : 4;
        f->inl = nb_xrealloc(f->inl, f->capinl * sizeof(*f->inl));
    }
    id |= META_SLICE_INLINE;
    f->inl[f->ninl].id = id;
    f->inl[f->ninl].bytes = nb_slice_of(buf, len);
    f->ninl++;
    segs_to_pw(f, id, len);
    return 0;
}

/* Writes every in-memory segment into one new slice and moves them to pw. */
static int segs_spill(vfs_file *f)
{
    if (f->nsegs == 0)
        return 0;
    vfs *v = f->v;
    uint64_t id;
    int rc = new_slice_id(v, &id);
    if (rc != 0)
        return vfs__errno(rc);
    if (f->seg_bytes <= VFS__INLINE_MAX)
        return segs_spill_inline(f, id);
    data_writer *w;
    rc = data_writer_new_flags(v->ds, id, writer_flags(v), &w);
    if (rc != 0)
        return vfs__errno(rc);
    for (size_t i = 0; i < f->nsegs && rc == 0; i++)
        rc = data_writer_append(w, f->segs[i].buf, f->segs[i].len);
    if (rc != 0) {
        data_writer_abort(w);
        return vfs__errno(rc);
    }
    uint64_t len;
    rc = data_writer_finish(w, &len);
    if (rc != 0) {
        data_slice_unhold(v->ds, id);
        return vfs__errno(rc);
    }
    held_add(f, id, len);
    segs_to_pw(f, id, len);
    return 0;
}

int vfs__file_publish(vfs_file *f, bool sync)
{
    vfs *v = f->v;
    int rc = writer_finish(f);
    if (rc == 0)
        rc = segs_spill(f);
    bool lazy = writer_flags(v) != 0 && f->nheld > 0;
    bool full = false;
    if (rc == 0 && f->npw > 0) {
        pthread_mutex_lock(&f->in->mu);
        rc = meta_publish_inline(v->m, f->ino, f->pw, f->npw, 0, lazy ? META_PUBLISH_UNSYNCED : 0,
                                 0, nb_slice_of(NULL, 0), 0, f->inl, f->ninl, NULL);
        pthread_mutex_unlock(&f->in->mu);
        if (rc == 0 && lazy)
            full = vfs__unsynced_add(v, f->held, f->held_size, f->nheld);
        rc = vfs__errno(rc);
    }
    inl_free(f);
    /* fsync: this handle's blocks and metadata, and with them everything
     * published before, by any handle (group commit). A full unsynced list
     * is synced by the publisher that filled it. */
    if (rc == 0 && (sync || full))
        rc = vfs__errno(vfs__sync(v));
    /* Published or failed, the buffered data is done with: a failed publish
     * is a write-back error reported now (the blocks become garbage). */
    for (size_t i = 0; i < f->nheld; i++)
        data_slice_unhold(v->ds, f->held[i]);
    f->nheld = 0;
    f->npw = 0;
    if (rc != 0) {
        if (f->w) {
            data_writer_abort(f->w);
            f->w = NULL;
        }
        segs_free(f);
    }
    __atomic_store_n(&f->pend_end, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&f->pend_mtime_ns, 0, __ATOMIC_RELAXED);
    if (rc == 0 && f->wb_err) {
        rc = f->wb_err;
        f->wb_err = 0;
    }
    return rc;
}

/* ---- Open and close -------------------------------------------------------------------------- */

static int file_new(vfs *v, const meta_attr *a, int flags, vfs_file **out)
{
    vfs_file *f = nb_xcalloc(1, sizeof(*f));
    f->v = v;
    f->ino = a->ino;
    f->open_attr = *a;
    uint64_t ino = a->ino;
    f->flags = flags;
    int acc = flags & O_ACCMODE;
    f->rd = acc == O_RDONLY || acc == O_RDWR;
    f->wr = acc == O_WRONLY || acc == O_RDWR;
    f->append = (flags & O_APPEND) != 0;
    pthread_mutex_init(&f->mu, NULL);
    f->ra = data_ra_new();
    f->in = vfs__inode_get(v, ino);
    pthread_mutex_lock(&v->itab_mu);
    f->next = v->files;
    if (v->files)
        v->files->prev = f;
    v->files = f;
    f->inext = f->in->files;
    if (f->in->files)
        f->in->files->iprev = f;
    f->in->files = f;
    __atomic_store_n(&v->nfiles, v->nfiles + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&v->itab_mu);
    *out = f;
    return 0;
}

static void file_free(vfs_file *f)
{
    vfs *v = f->v;
    pthread_mutex_lock(&v->itab_mu);
    if (f->prev)
        f->prev->next = f->next;
    else
        v->files = f->next;
    if (f->next)
        f->next->prev = f->prev;
    if (f->iprev)
        f->iprev->inext = f->inext;
    else
        f->in->files = f->inext;
    if (f->inext)
        f->inext->iprev = f->iprev;
    __atomic_store_n(&v->nfiles, v->nfiles - 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&v->itab_mu);
    vfs__inode_put(v, f->in);
    data_ra_free(f->ra);
    segs_free(f);
    free(f->segs);
    free(f->pw);
    free(f->held);
    free(f->held_size);
    inl_free(f);
    free(f->inl);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static int check_open(vfs *v, const vfs_cred *c, const meta_attr *a, int flags)
{
    int acc = flags & O_ACCMODE;
    if (acc == 3)
        return -EINVAL;
    bool wr = acc != O_RDONLY || (flags & O_TRUNC);
    if (S_ISDIR(a->mode))
        return wr ? -EISDIR : 0;
    if (S_ISLNK(a->mode))
        return -ELOOP;
    if (!S_ISREG(a->mode))
        return -EINVAL;
    if (wr && v->o.read_only)
        return -EROFS;
    int mask = 0;
    if (acc == O_RDONLY || acc == O_RDWR)
        mask |= R_OK;
    if (wr)
        mask |= W_OK;
    return vfs__errno(meta_perm(c, a, mask));
}

static int truncate_on_open(vfs *v, const vfs_cred *c, uint64_t ino)
{
    meta_sattr sa;
    memset(&sa, 0, sizeof(sa));
    sa.valid = META_SET_SIZE | META_SET_HANDLE;
    sa.size = 0;
    (void)c;
    vfs__inode *in = vfs__inode_get(v, ino);
    pthread_mutex_lock(&in->mu);
    int rc = meta_setattr(v->m, NULL, ino, &sa, NULL);
    in->append_end = 0;
    pthread_mutex_unlock(&in->mu);
    vfs__inode_put(v, in);
    return vfs__errno(rc);
}

int vfs_file_open(vfs *v, const vfs_cred *c, uint64_t ino, int flags, vfs_file **out)
{
    *out = NULL;
    meta_attr a;
    /* One inode read: the open is counted together with the attributes it
     * is checked against; a refused open drops its count again. */
    int rc = vfs__errno(meta_open_attr(v->m, ino, &a));
    if (rc != 0)
        return rc;
    rc = check_open(v, c, &a, flags);
    if (rc == 0 && S_ISDIR(a.mode))
        rc = -EISDIR; /* directories are read through vfs_readdir */
    if (rc == 0 && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY && a.size > 0) {
        rc = truncate_on_open(v, c, ino);
        a.size = 0;
    }
    if (rc != 0) {
        VFS__IGNORE(meta_release(v->m, ino));
        return rc;
    }
    return file_new(v, &a, flags, out);
}

int vfs_create(vfs *v, const vfs_cred *c, uint64_t parent, const char *name, uint32_t mode,
               int flags, vfs_attr *attr, vfs_file **out)
{
    *out = NULL;
    int rc = vfs__ro(v);
    meta_attr a;
    if (rc == 0)
        rc = vfs__errno(meta_create(v->m, c, parent, name, S_IFREG | (mode & 07777), &a));
    if (rc == -EROFS || rc == -EEXIST || rc == -EACCES) {
        /* An existing name is opened unless O_EXCL (Linux checks existence
         * before write permission on the directory). */
        int lrc = vfs__errno(meta_lookup(v->m, c, parent, name, &a));
        if (lrc != 0)
            return lrc == -ENOENT ? rc : lrc;
        if (flags & O_EXCL)
            return -EEXIST;
        rc = vfs_file_open(v, c, a.ino, flags, out);
        if (rc == 0 && attr)
            rc = vfs_getattr(v, a.ino, attr);
        return rc;
    }
    if (rc != 0)
        return rc;
    rc = file_new(v, &a, flags, out);
    if (rc != 0) {
        VFS__IGNORE(meta_release(v->m, a.ino));
        return rc;
    }
    if (attr)
        *attr = a;
    return 0;
}

int vfs_release(vfs_file *f)
{
    if (!f)
        return 0;
    vfs *v = f->v;
    pthread_mutex_lock(&f->mu);
    int rc = 0;
    if (f->wr)
        rc = vfs__file_publish(f, false);
    pthread_mutex_unlock(&f->mu);
    int rrc = vfs__errno(meta_release(v->m, f->ino));
    if (rc == 0)
        rc = rrc;
    file_free(f);
    return rc;
}

uint64_t vfs_file_ino(const vfs_file *f)
{
    return f->ino;
}

const vfs_attr *vfs_file_open_attr(const vfs_file *f)
{
    return &f->open_attr;
}

int vfs_flush(vfs_file *f)
{
    if (!f->wr)
        return 0;
    pthread_mutex_lock(&f->mu);
    int rc = vfs__file_publish(f, false);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

int vfs_fsync(vfs_file *f, bool datasync)
{
    (void)datasync; /* publishing is a metadata change either way */
    if (f->v->o.read_only)
        return 0;
    pthread_mutex_lock(&f->mu);
    int rc = vfs__file_publish(f, true);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* ---- Writes ---------------------------------------------------------------------------------- */

static void seg_append(vfs_file *f, uint64_t off, const void *buf, size_t len)
{
    if (f->nsegs > 0) {
        vfs__seg *s = &f->segs[f->nsegs - 1];
        if (s->off + s->len == off) {
            if (s->len + len > s->cap) {
                s->cap = (s->len + len) * 2;
                s->buf = nb_xrealloc(s->buf, s->cap);
            }
            memcpy(s->buf + s->len, buf, len);
            s->len += len;
            f->seg_bytes += len;
            return;
        }
    }
    if (f->nsegs == f->capsegs) {
        f->capsegs = f->capsegs ? f->capsegs * 2 : 8;
        f->segs = nb_xrealloc(f->segs, f->capsegs * sizeof(*f->segs));
    }
    vfs__seg *s = &f->segs[f->nsegs++];
    s->off = off;
    s->len = len;
    s->cap = len < 4096 ? 4096 : len;
    s->buf = nb_xmalloc(s->cap);
    memcpy(s->buf, buf, len);
    f->seg_bytes += len;
}

static int writer_start(vfs_file *f, uint64_t off)
{
    int rc = segs_spill(f);
    if (rc != 0)
        return rc;
    uint64_t id;
    rc = new_slice_id(f->v, &id);
    if (rc != 0)
        return vfs__errno(rc);
    rc = data_writer_new_flags(f->v->ds, id, writer_flags(f->v), &f->w);
    if (rc != 0)
        return vfs__errno(rc);
    f->w_id = id;
    f->w_off = off;
    return 0;
}

static int write_locked(vfs_file *f, uint64_t off, const void *buf, size_t len)
{
    int rc = 0;
    if (f->w && f->w_off + data_writer_len(f->w) == off &&
        data_writer_len(f->w) + len <= VFS__WRITER_MAX)
        return vfs__errno(data_writer_append(f->w, buf, len));
    if (f->w) {
        rc = writer_finish(f);
        if (rc != 0)
            return rc;
    }
    if (len >= VFS__WRITER_MIN) {
        rc = writer_start(f, off);
        if (rc == 0)
            rc = vfs__errno(data_writer_append(f->w, buf, len));
        return rc;
    }
    seg_append(f, off, buf, len);
    /* One segment that keeps growing is a sequential writer in disguise. */
    if (f->nsegs == 1 && f->segs[0].len >= VFS__SEG_TO_WR) {
        vfs__seg s = f->segs[0];
        f->nsegs = 0;
        f->seg_bytes = 0;
        rc = writer_start(f, s.off);
        if (rc == 0)
            rc = vfs__errno(data_writer_append(f->w, s.buf, s.len));
        free(s.buf);
        return rc;
    }
    if (f->seg_bytes >= f->v->o.write_buffer_bytes || f->nsegs >= 4096)
        rc = segs_spill(f);
    return rc;
}

int vfs_write(vfs_file *f, uint64_t off, const void *buf, size_t len, uint64_t *end_off)
{
    if (!f->wr)
        return -EBADF;
    int rc = vfs__ro(f->v);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&f->mu);
    if (f->append) {
        meta_attr a;
        pthread_mutex_lock(&f->in->mu);
        rc = vfs__errno(meta_getattr(f->v->m, f->ino, &a));
        if (rc == 0) {
            off = a.size;
            if (f->in->append_end > off)
                off = f->in->append_end;
            if (f->pend_end > off)
                off = f->pend_end;
            f->in->append_end = off + len;
        }
        pthread_mutex_unlock(&f->in->mu);
    }
    if (rc == 0 && (off > VFS_MAX_FILE_SIZE || len > VFS_MAX_FILE_SIZE - off))
        rc = -EFBIG;
    if (rc == 0 && len > 0) {
        rc = write_locked(f, off, buf, len);
        if (rc == 0 && off + len > f->pend_end)
            __atomic_store_n(&f->pend_end, off + len, __ATOMIC_RELAXED);
        if (rc == 0)
            __atomic_store_n(&f->pend_mtime_ns, (int64_t)nb_wall_ns(), __ATOMIC_RELAXED);
        if (rc == 0 && f->npw >= VFS__MAX_PENDING)
            rc = vfs__file_publish(f, false);
    }
    pthread_mutex_unlock(&f->mu);
    if (rc == 0 && end_off)
        *end_off = off + len;
    return rc;
}

/* ---- Reads ----------------------------------------------------------------------------------- */

/* The slice list of chunk idx as the handle sees it: the published map
 * with the handle's written pieces on top. *out is owned (NULL when the
 * chunk is empty), *nout its length. */
static int chunk_slices(vfs_file *f, uint32_t idx, data_slice **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    meta_slice *ms = NULL;
    size_t n = 0;
    int rc = meta_chunk_read(f->v->m, f->ino, idx, &ms, &n);
    if (rc != 0)
        return vfs__errno(rc);
    size_t extra = 0;
    for (size_t i = 0; i < f->npw; i++)
        if (f->pw[i].chunk == idx)
            extra++;
    if (n + extra == 0) {
        free(ms);
        return 0;
    }
    data_slice *ds = nb_xmalloc((n + extra) * sizeof(*ds));
    vfs__to_data(ms, n, ds);
    size_t k = n;
    for (size_t i = 0; i < f->npw; i++)
        if (f->pw[i].chunk == idx)
            vfs__to_data(&f->pw[i].slice, 1, &ds[k++]);
    free(ms);
    *out = ds;
    *nout = k;
    return 0;
}

/* Reads [off, off+len) of chunk idx (off, len within the chunk). */
static int read_chunk(vfs_file *f, uint32_t idx, uint32_t off, size_t len, uint8_t *buf)
{
    vfs *v = f->v;
    data_slice *ds;
    size_t k;
    int rc = chunk_slices(f, idx, &ds, &k);
    if (rc != 0)
        return rc;
    if (k == 0) {
        memset(buf, 0, len);
        return 0;
    }
    nb_buf *bufs = nb_xcalloc(k, sizeof(*bufs));
    rc = vfs__inline_load(v, f, ds, k, bufs);
    if (rc == 0)
        rc = vfs__errno(data_chunk_read(v->ds, f->ra, ds, k, off, len, buf));
    vfs__bufs_free(bufs, k);
    free(ds);
    return rc;
}

/* A sequential stream whose readahead window reaches into chunk idx:
 * start loading its first want bytes (once per chunk and length). */
static void read_ahead_chunk(vfs_file *f, uint32_t idx, uint64_t want, uint64_t size)
{
    if ((uint64_t)idx * META_CHUNK_SIZE >= size)
        return;
    if (f->ra_chunk == idx + 1 && f->ra_len >= want)
        return;
    data_slice *ds;
    size_t k;
    if (chunk_slices(f, idx, &ds, &k) != 0)
        return; /* best effort: the read itself will report it */
    if (k > 0)
        data_chunk_prefetch(f->v->ds, ds, k, 0, want);
    free(ds);
    f->ra_chunk = idx + 1;
    f->ra_len = want;
}

int vfs_read(vfs_file *f, uint64_t off, void *buf, size_t len, size_t *got)
{
    *got = 0;
    if (!f->rd)
        return -EBADF;
    vfs *v = f->v;
    pthread_mutex_lock(&f->mu);
    int rc = writer_finish(f);
    meta_attr a;
    if (rc == 0)
        rc = vfs__errno(meta_getattr(v->m, f->ino, &a));
    if (rc != 0) {
        pthread_mutex_unlock(&f->mu);
        return rc;
    }
    uint64_t size = a.size > f->pend_end ? a.size : f->pend_end;
    if (off >= size || len == 0) {
        pthread_mutex_unlock(&f->mu);
        return 0;
    }
    if (len > size - off)
        len = (size_t)(size - off);
    data_pin pin = data_pin_begin(v->ds);
    uint8_t *p = buf;
    uint64_t pos = off;
    size_t left = len;
    while (rc == 0 && left > 0) {
        uint32_t idx = (uint32_t)(pos / META_CHUNK_SIZE);
        uint32_t coff = (uint32_t)(pos % META_CHUNK_SIZE);
        size_t n = META_CHUNK_SIZE - coff;
        if (n > left)
            n = left;
        rc = read_chunk(f, idx, coff, n, p);
        p += n;
        pos += n;
        left -= n;
        size_t want = data_ra_next_chunk(f->ra);
        if (rc == 0 && left == 0 && want > 0)
            read_ahead_chunk(f, idx + 1, want, size);
    }
    data_pin_end(v->ds, pin);
    if (rc == 0) {
        for (size_t i = 0; i < f->nsegs; i++) {
            const vfs__seg *s = &f->segs[i];
            uint64_t lo = s->off > off ? s->off : off;
            uint64_t hi = s->off + s->len < off + len ? s->off + s->len : off + len;
            if (lo < hi)
                memcpy((uint8_t *)buf + (lo - off), s->buf + (lo - s->off), hi - lo);
        }
        *got = len;
    } else if (rc == -EIO) {
        NB_ERROR("vfs: read of inode %llu at %llu failed: I/O error", (unsigned long long)f->ino,
                 (unsigned long long)off);
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* ---- fallocate, lseek, copy_file_range --------------------------------------------------------
 */

/* Publishes holes (slice id 0) over [off, off+len) and sets the size. */
static int publish_zeros(vfs_file *f, uint64_t off, uint64_t len, uint64_t size)
{
    size_t cap = (size_t)(len / META_CHUNK_SIZE + 2);
    meta_write *w = nb_xcalloc(cap, sizeof(*w));
    size_t n = 0;
    while (len > 0) {
        uint32_t pos = (uint32_t)(off % META_CHUNK_SIZE);
        uint64_t l = META_CHUNK_SIZE - pos;
        if (l > len)
            l = len;
        w[n].chunk = (uint32_t)(off / META_CHUNK_SIZE);
        w[n].slice.id = 0;
        w[n].slice.size = (uint32_t)l;
        w[n].slice.off = 0;
        w[n].slice.len = (uint32_t)l;
        w[n].slice.pos = pos;
        n++;
        off += l;
        len -= l;
    }
    int rc = meta_publish(f->v->m, f->ino, w, n, size, META_PUBLISH_SIZE, 0, nb_slice_of(NULL, 0),
                          0, NULL);
    free(w);
    return vfs__errno(rc);
}

int vfs_fallocate(vfs_file *f, int mode, uint64_t off, uint64_t len)
{
    vfs *v = f->v;
    if (!f->wr)
        return -EBADF;
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    if (len == 0)
        return -EINVAL;
    if (off > VFS_MAX_FILE_SIZE || len > VFS_MAX_FILE_SIZE - off)
        return -EFBIG;
    int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
    if (mode & ~known)
        return -EOPNOTSUPP;
    if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
        return -EOPNOTSUPP;
    if ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE))
        return -EOPNOTSUPP;
    pthread_mutex_lock(&f->mu);
    rc = vfs__file_publish(f, false);
    if (rc == 0) {
        pthread_mutex_lock(&f->in->mu);
        meta_attr a;
        rc = vfs__errno(meta_getattr(v->m, f->ino, &a));
        bool keep = (mode & FALLOC_FL_KEEP_SIZE) != 0;
        uint64_t end = off + len;
        uint64_t newsize = (!keep && end > a.size) ? end : a.size;
        if (rc == 0 && (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))) {
            uint64_t zend = keep && end > a.size ? a.size : end;
            if (zend > off)
                rc = publish_zeros(f, off, zend - off, newsize);
            else if (newsize != a.size)
                rc = publish_zeros(f, off, 0, newsize);
        } else if (rc == 0 && newsize != a.size) {
            meta_sattr sa;
            memset(&sa, 0, sizeof(sa));
            sa.valid = META_SET_SIZE | META_SET_HANDLE;
            sa.size = newsize;
            rc = vfs__errno(meta_setattr(v->m, NULL, f->ino, &sa, NULL));
        }
        pthread_mutex_unlock(&f->in->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

int vfs_lseek(vfs_file *f, uint64_t off, int whence, uint64_t *out)
{
    if (whence != SEEK_DATA && whence != SEEK_HOLE)
        return -EINVAL;
    vfs *v = f->v;
    pthread_mutex_lock(&f->mu);
    int rc = f->wr ? vfs__file_publish(f, false) : 0;
    meta_attr a;
    if (rc == 0)
        rc = vfs__errno(meta_getattr(v->m, f->ino, &a));
    if (rc == 0 && off >= a.size)
        rc = -ENXIO;
    uint64_t pos = off;
    bool found = false;
    while (rc == 0 && !found && pos < a.size) {
        uint32_t idx = (uint32_t)(pos / META_CHUNK_SIZE);
        uint64_t cbase = (uint64_t)idx * META_CHUNK_SIZE;
        uint64_t climit = a.size - cbase < META_CHUNK_SIZE ? a.size - cbase : META_CHUNK_SIZE;
        meta_slice *ms = NULL, *res = NULL;
        size_t n = 0, nres = 0;
        rc = vfs__errno(meta_chunk_read(v->m, f->ino, idx, &ms, &n));
        if (rc != 0)
            break;
        meta_chunk_resolve(ms, n, (uint32_t)climit, &res, &nres);
        for (size_t i = 0; i < nres && !found; i++) {
            uint64_t lo = cbase + res[i].pos, hi = lo + res[i].len;
            if (hi <= pos)
                continue;
            bool data = res[i].id != 0;
            if (data == (whence == SEEK_DATA)) {
                *out = lo > pos ? lo : pos;
                found = true;
            }
        }
        free(ms);
        free(res);
        pos = cbase + META_CHUNK_SIZE;
    }
    if (rc == 0 && !found) {
        if (whence == SEEK_HOLE)
            *out = a.size; /* the implicit hole at end of file */
        else
            rc = -ENXIO;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* Adds pieces mapping source bytes [src, src+n) — bytes [soff, soff+n)
 * of slice s (id 0: zeros) — to target offset dst, split at the target's
 * chunk boundaries. */
static void share_piece(meta_write **w, size_t *nw, size_t *cap, const meta_slice *s, uint64_t soff,
                        uint64_t dst, uint64_t n)
{
    while (n > 0) {
        uint32_t pos = (uint32_t)(dst % META_CHUNK_SIZE);
        uint64_t l = META_CHUNK_SIZE - pos;
        if (l > n)
            l = n;
        if (*nw == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *w = nb_xrealloc(*w, *cap * sizeof(**w));
        }
        meta_write *x = &(*w)[(*nw)++];
        x->chunk = (uint32_t)(dst / META_CHUNK_SIZE);
        x->slice.id = s->id;
        x->slice.size = s->id ? s->size : (uint32_t)l;
        x->slice.off = s->id ? (uint32_t)soff : 0;
        x->slice.len = (uint32_t)l;
        x->slice.pos = pos;
        soff += l;
        dst += l;
        n -= l;
    }
}

/* Copies source chunk idx's bytes [lo, hi) (file offsets) to dst by
 * sharing its slices: one publish on the target. */
static int share_chunk(vfs_file *fin, vfs_file *fout, uint32_t idx, uint64_t lo, uint64_t hi,
                       uint64_t dst)
{
    vfs *v = fin->v;
    uint64_t base = (uint64_t)idx * META_CHUNK_SIZE;
    meta_slice *ms = NULL, *res = NULL;
    size_t n = 0, nres = 0;
    int rc = meta_chunk_read(v->m, fin->ino, idx, &ms, &n);
    if (rc != 0)
        return vfs__errno(rc);
    meta_chunk_resolve(ms, n, (uint32_t)(hi - base), &res, &nres);
    meta_write *w = NULL;
    size_t nw = 0, cap = 0;
    for (size_t i = 0; i < nres; i++) {
        uint64_t a = base + res[i].pos, b = a + res[i].len;
        if (a < lo)
            a = lo;
        if (b > hi)
            b = hi;
        if (a >= b)
            continue;
        uint64_t soff = res[i].off + (a - (base + res[i].pos));
        share_piece(&w, &nw, &cap, &res[i], soff, dst + (a - lo), b - a);
    }
    if (nw > 0) {
        pthread_mutex_lock(&fout->in->mu);
        rc = vfs__errno(
            meta_publish(v->m, fout->ino, w, nw, 0, 0, 0, nb_slice_of(NULL, 0), 0, NULL));
        pthread_mutex_unlock(&fout->in->mu);
    }
    free(w);
    free(ms);
    free(res);
    return rc;
}

int vfs_copy_range(vfs_file *fin, uint64_t off_in, vfs_file *fout, uint64_t off_out, size_t len,
                   size_t *copied)
{
    *copied = 0;
    vfs *v = fin->v;
    if (!fin->rd || !fout->wr || fout->append)
        return -EBADF;
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    /* Both handles' buffered writes first, so the maps hold everything. */
    if (fin->wr) {
        pthread_mutex_lock(&fin->mu);
        rc = vfs__file_publish(fin, false);
        pthread_mutex_unlock(&fin->mu);
    }
    if (rc == 0 && fin != fout) {
        pthread_mutex_lock(&fout->mu);
        rc = vfs__file_publish(fout, false);
        pthread_mutex_unlock(&fout->mu);
    }
    meta_attr a;
    if (rc == 0)
        rc = vfs__errno(meta_getattr(v->m, fin->ino, &a));
    if (rc != 0 || off_in >= a.size)
        return rc;
    if (len > a.size - off_in)
        len = (size_t)(a.size - off_in);
    /* As Linux: the overlap check uses the length clipped at end of file. */
    if (fin->ino == fout->ino && off_out + len > off_in && off_out < off_in + len)
        return -EINVAL;
    if (off_out > VFS_MAX_FILE_SIZE || len > VFS_MAX_FILE_SIZE - off_out)
        return -EFBIG;
    /* Metadata only: the target's map points at the source's slices. The
     * read lock keeps the collector from deciding a slice is unreferenced
     * between our map read and our publish. */
    uint64_t pos = off_in, end = off_in + len;
    while (rc == 0 && pos < end) {
        uint32_t idx = (uint32_t)(pos / META_CHUNK_SIZE);
        uint64_t cend = ((uint64_t)idx + 1) * META_CHUNK_SIZE;
        uint64_t hi = cend < end ? cend : end;
        pthread_rwlock_rdlock(&v->share_lk);
        rc = share_chunk(fin, fout, idx, pos, hi, off_out + (pos - off_in));
        pthread_rwlock_unlock(&v->share_lk);
        if (rc == 0) {
            *copied += (size_t)(hi - pos);
            pos = hi;
        }
    }
    return *copied > 0 ? 0 : rc;
}
