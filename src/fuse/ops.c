/*
 * ops.c — the FUSE low-level operations, each one vfs call.
 *
 * Requests carry the caller's uid/gid; supplementary groups are read from
 * /proc by libfuse, which costs a file read, so only operations that check
 * permissions ask for them, and never for root.
 *
 * Every FUSE handle of an inode shares one read-write vfs handle
 * (opens.c), so the caller's open mode is checked with vfs_access first
 * (a read-only open checks it in the open of its own reader). Small files
 * opened for reading are preloaded into the kernel's page cache.
 * With the kernel's write-back cache the kernel reads pages around partial
 * writes through any handle and positions O_APPEND writes itself; without
 * it, an O_APPEND write is placed at the end here.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/common.h"
#include "fuse/fuse_int.h"

#define MAX_GROUPS 64

typedef struct req_cred {
    vfs_cred c;
    uint32_t groups[MAX_GROUPS];
} req_cred;

static nbfuse *self_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static vfs *vfs_of(fuse_req_t req)
{
    return self_of(req)->v;
}

static const vfs_cred *cred_of(fuse_req_t req, req_cred *rc, bool with_groups)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    rc->c.uid = ctx->uid;
    rc->c.gid = ctx->gid;
    rc->c.ngroups = 0;
    rc->c.groups = rc->groups;
    if (with_groups && ctx->uid != 0) {
        gid_t g[MAX_GROUPS];
        int n = fuse_req_getgroups(req, MAX_GROUPS, g);
        if (n > MAX_GROUPS)
            n = MAX_GROUPS; /* more groups than we keep: the first ones count */
        for (int i = 0; i < n; i++)
            rc->groups[i] = (uint32_t)g[i];
        rc->c.ngroups = n > 0 ? (uint32_t)n : 0;
    }
    return &rc->c;
}

/* Our status codes become the errno the kernel passes to the program. */
static int to_errno(int rc)
{
    if (rc < 0 && rc > -4096)
        return -rc;
    switch (rc) {
    case NB_ENOTFOUND:
        return ENOENT;
    case NB_EEXIST:
        return EEXIST;
    case NB_ENOSPACE:
        return ENOSPC;
    case NB_ETOOBIG:
        return EFBIG;
    case NB_EAGAIN:
        return EAGAIN;
    default:
        return EIO; /* corruption, checksum failures, internal errors */
    }
}

static void reply_err(fuse_req_t req, int rc)
{
    fuse_reply_err(req, rc ? to_errno(rc) : 0);
}

static void fill_stat(const vfs_attr *a, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = a->ino;
    st->st_mode = a->mode;
    st->st_nlink = a->nlink;
    st->st_uid = a->uid;
    st->st_gid = a->gid;
    st->st_rdev = a->rdev;
    st->st_size = (off_t)a->size;
    st->st_blksize = 1 << 20; /* programs size their buffers by this */
    st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
    st->st_atim.tv_sec = a->atime_ns / (int64_t)NB_NS_PER_SEC;
    st->st_atim.tv_nsec = a->atime_ns % (int64_t)NB_NS_PER_SEC;
    st->st_mtim.tv_sec = a->mtime_ns / (int64_t)NB_NS_PER_SEC;
    st->st_mtim.tv_nsec = a->mtime_ns % (int64_t)NB_NS_PER_SEC;
    st->st_ctim.tv_sec = a->ctime_ns / (int64_t)NB_NS_PER_SEC;
    st->st_ctim.tv_nsec = a->ctime_ns % (int64_t)NB_NS_PER_SEC;
}

static void fill_entry(fuse_req_t req, const vfs_attr *a, struct fuse_entry_param *e)
{
    nbfuse *f = self_of(req);
    memset(e, 0, sizeof *e);
    e->ino = a->ino;
    e->generation = a->generation;
    fill_stat(a, &e->attr);
    e->attr_timeout = f->opts.attr_timeout;
    e->entry_timeout = f->opts.entry_timeout;
}

static void reply_entry(fuse_req_t req, int rc, const vfs_attr *a)
{
    if (rc) {
        reply_err(req, rc);
        return;
    }
    struct fuse_entry_param e;
    fill_entry(req, a, &e);
    fuse_reply_entry(req, &e);
}

static nbfuse_handle *handle_of(struct fuse_file_info *fi)
{
    return (nbfuse_handle *)(uintptr_t)fi->fh;
}

static nbfuse_open *open_of(struct fuse_file_info *fi)
{
    return handle_of(fi)->o;
}

/* The handle through which h sees its file, buffered writes included:
 * the shared one if it exists, else h's reader (nothing is buffered). */
static int current_vf(nbfuse *f, nbfuse_handle *h, vfs_file **out)
{
    *out = atomic_load(&h->o->vf);
    if (*out)
        return 0;
    int rc = 0;
    *out = nbfuse__reader(f, h, &rc);
    return rc;
}

/* With FUSE_HANDLE_KILLPRIV_V2 (io.c) clearing setuid/setgid is ours: a
 * write, truncate or O_TRUNC open by a caller without CAP_FSETID clears
 * setuid, and setgid when the group may execute, as Linux's VFS does
 * (chown is meta's). Costs an inode read; a setattr only when a bit is
 * set. *a, if given, holds ino's current attributes and is updated. */
static void kill_suidgid(nbfuse *f, uint64_t ino, vfs_attr *a)
{
    vfs_attr cur;
    if (!a) {
        if (vfs_getattr(f->v, ino, &cur) != 0)
            return;
        a = &cur;
    }
    uint32_t mode = a->mode & 07777, keep = mode & ~(uint32_t)S_ISUID;
    if ((keep & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
        keep &= ~(uint32_t)S_ISGID;
    if (keep == mode)
        return;
    vfs_sattr sa;
    memset(&sa, 0, sizeof sa);
    sa.valid = VFS_SET_MODE;
    sa.mode = keep;
    vfs_cred root; /* the kernel's doing, not the caller's: no owner check */
    memset(&root, 0, sizeof root);
    if (vfs_setattr(f->v, &root, ino, NULL, &sa, a) == 0)
        (void)fuse_lowlevel_notify_inval_inode(f->se, ino, -1, 0); /* its cached mode */
}

/* Whether the caller of req holds CAP_FSETID, as the kernel's VFS asks
 * before it clears setuid/setgid: bit CAP_FSETID of the effective set of
 * the calling thread (the request's pid is its thread id), read from
 * /proc/<tid>/status. If the thread is gone or out of our pid namespace
 * (pid 0), root stands in for "capable". */
static bool caller_has_fsetid(fuse_req_t req)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    bool has = ctx->uid == 0;
    if (ctx->pid <= 0)
        return has;
    char path[48], line[128];
    snprintf(path, sizeof path, "/proc/%d/status", (int)ctx->pid);
    FILE *fp = fopen(path, "re");
    if (!fp)
        return has;
    while (fgets(line, sizeof line, fp)) {
        unsigned long long eff;
        if (sscanf(line, "CapEff: %llx", &eff) == 1) {
            has = (eff >> CAP_FSETID) & 1;
            break;
        }
    }
    fclose(fp);
    return has;
}

/* For calls whose request has no kill bit (fallocate, copy_file_range):
 * with FUSE_HANDLE_KILLPRIV_V2 the kernel drops its own clearing of
 * setuid/setgid (fuse_setattr) and leaves it to us, so we ask what it
 * would: a caller without CAP_FSETID kills. The capability is read only
 * when a bit is set. */
static void kill_if_no_fsetid(fuse_req_t req, uint64_t ino)
{
    nbfuse *f = self_of(req);
    vfs_attr a;
    if (!atomic_load(&f->killpriv_v2) || vfs_getattr(f->v, ino, &a) != 0 ||
        !(a.mode & (S_ISUID | S_ISGID)))
        return;
    if (!caller_has_fsetid(req))
        kill_suidgid(f, ino, &a);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    nbfuse *f = userdata;
    unsigned want = FUSE_CAP_READDIRPLUS | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_ASYNC_READ |
                    FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_ASYNC_DIO;
    if (f->opts.writeback_cache)
        want |= FUSE_CAP_WRITEBACK_CACHE;
    conn->want |= want & conn->capable;
    if (!f->opts.writeback_cache)
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    /* Requests spliced from /dev/fuse would bypass io.c's read, which
     * notes the kernel's kill bits (FUSE_HANDLE_KILLPRIV_V2). */
    conn->want &= ~FUSE_CAP_SPLICE_READ;
    conn->max_write = 1u << 20; /* 1 MiB writes: fewer, larger slices */
    conn->max_readahead = 1u << 20;
    conn->time_gran = 1; /* we keep nanoseconds */
    if (!(conn->capable & FUSE_CAP_WRITEBACK_CACHE))
        f->opts.writeback_cache = false;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    req_cred rc;
    vfs_attr a;
    int r = vfs_lookup(vfs_of(req), cred_of(req, &rc, true), parent, name, &a);
    if (r == -ENOENT) {
        /* A negative entry the kernel may cache for entry_timeout. */
        struct fuse_entry_param e;
        memset(&e, 0, sizeof e);
        e.entry_timeout = self_of(req)->opts.entry_timeout;
        fuse_reply_entry(req, &e);
        return;
    }
    reply_entry(req, r, &a);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    /* Inode numbers are stable and vfs counts opens itself: nothing to do. */
    NB_UNUSED(ino);
    NB_UNUSED(nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    NB_UNUSED(count);
    NB_UNUSED(forgets);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    NB_UNUSED(fi);
    vfs_attr a;
    int r = vfs_getattr(vfs_of(req), ino, &a);
    if (r) {
        reply_err(req, r);
        return;
    }
    struct stat st;
    fill_stat(&a, &st);
    fuse_reply_attr(req, &st, self_of(req)->opts.attr_timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    vfs_sattr sa;
    memset(&sa, 0, sizeof sa);
    if (to_set & FUSE_SET_ATTR_MODE) {
        sa.valid |= VFS_SET_MODE;
        sa.mode = attr->st_mode & 07777;
    }
    if (to_set & FUSE_SET_ATTR_UID) {
        sa.valid |= VFS_SET_UID;
        sa.uid = attr->st_uid;
    }
    if (to_set & FUSE_SET_ATTR_GID) {
        sa.valid |= VFS_SET_GID;
        sa.gid = attr->st_gid;
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
        sa.valid |= VFS_SET_SIZE;
        sa.size = (uint64_t)attr->st_size;
    }
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
        sa.valid |= VFS_SET_ATIME_NOW;
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
        sa.valid |= VFS_SET_ATIME;
        sa.atime_ns = attr->st_atim.tv_sec * (int64_t)NB_NS_PER_SEC + attr->st_atim.tv_nsec;
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
        sa.valid |= VFS_SET_MTIME_NOW;
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
        sa.valid |= VFS_SET_MTIME;
        sa.mtime_ns = attr->st_mtim.tv_sec * (int64_t)NB_NS_PER_SEC + attr->st_mtim.tv_nsec;
    }
    if (to_set & FUSE_SET_ATTR_CTIME) {
        sa.valid |= VFS_SET_CTIME;
        sa.ctime_ns = attr->st_ctim.tv_sec * (int64_t)NB_NS_PER_SEC + attr->st_ctim.tv_nsec;
    }
    /* A truncate by path still goes through the inode's open handle, if
     * any: its buffered writes are published first, not after (which would
     * bring cut-off bytes back). */
    nbfuse *f = self_of(req);
    nbfuse_open *held = NULL;
    nbfuse_open *o = fi ? open_of(fi) : NULL;
    if (!o && (sa.valid & VFS_SET_SIZE))
        o = held = nbfuse__open_find(f, ino);
    /* Without a shared handle nothing is buffered, so none is needed. */
    vfs_file *vf = o ? atomic_load(&o->vf) : NULL;
    /* A size change without a shared handle may race with a preload, up
     * to the kernel cutting its pages after our reply. */
    bool change = (sa.valid & VFS_SET_SIZE) && !vf;
    if (change)
        nbfuse__change_begin(f);
    req_cred rc;
    vfs_attr a;
    bool kill = nbfuse__req_kill();
    int r = vfs_setattr(f->v, cred_of(req, &rc, true), ino, vf, &sa, &a);
    if (r == 0 && kill)
        kill_suidgid(f, ino, &a);
    if (held)
        (void)nbfuse__open_put(f, held);
    if (r) {
        reply_err(req, r);
    } else {
        struct stat st;
        fill_stat(&a, &st);
        fuse_reply_attr(req, &st, self_of(req)->opts.attr_timeout);
    }
    if (change)
        nbfuse__change_end(f);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    nb_buf b = NB_BUF_INIT;
    int r = vfs_readlink(vfs_of(req), ino, &b);
    if (r)
        reply_err(req, r);
    else
        fuse_reply_readlink(req, (const char *)b.data);
    nb_buf_free(&b);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    req_cred rc;
    vfs_attr a;
    int r = vfs_mknod(vfs_of(req), cred_of(req, &rc, true), parent, name, mode, rdev, &a);
    reply_entry(req, r, &a);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    req_cred rc;
    vfs_attr a;
    int r = vfs_mkdir(vfs_of(req), cred_of(req, &rc, true), parent, name, mode, &a);
    reply_entry(req, r, &a);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    req_cred rc;
    reply_err(req, vfs_unlink(vfs_of(req), cred_of(req, &rc, true), parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    req_cred rc;
    reply_err(req, vfs_rmdir(vfs_of(req), cred_of(req, &rc, true), parent, name));
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    req_cred rc;
    vfs_attr a;
    int r = vfs_symlink(vfs_of(req), cred_of(req, &rc, true), parent, name, link, &a);
    reply_entry(req, r, &a);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    unsigned vflags = 0;
    if (flags & RENAME_NOREPLACE)
        vflags |= VFS_RENAME_NOREPLACE;
    if (flags & RENAME_EXCHANGE)
        vflags |= VFS_RENAME_EXCHANGE;
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
        fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT is for overlay file systems */
        return;
    }
    req_cred rc;
    reply_err(req, vfs_rename(vfs_of(req), cred_of(req, &rc, true), parent, name, newparent,
                              newname, vflags));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    req_cred rc;
    vfs_attr a;
    int r = vfs_link(vfs_of(req), cred_of(req, &rc, true), ino, newparent, newname, &a);
    reply_entry(req, r, &a);
}

static int access_mask(int flags)
{
    int acc = flags & O_ACCMODE;
    int mask = acc == O_RDONLY ? R_OK : acc == O_WRONLY ? W_OK : R_OK | W_OK;
    if (flags & O_TRUNC)
        mask |= W_OK;
    return mask;
}

/* After the caller's mode was checked: takes a reference on ino's shared
 * handle and applies O_TRUNC (atomic with the open, FUSE_CAP_ATOMIC_O_TRUNC). */
static int open_checked(fuse_req_t req, const vfs_cred *c, uint64_t ino, int flags,
                        nbfuse_open **out)
{
    nbfuse *f = self_of(req);
    bool rw = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
    int r = nbfuse__open_get(f, ino, rw, out);
    if (r || !(flags & O_TRUNC) || (flags & O_ACCMODE) == O_RDONLY)
        return r;
    vfs_attr a;
    r = vfs_getattr(f->v, ino, &a);
    if (r == 0 && a.size > 0) {
        vfs_sattr sa;
        memset(&sa, 0, sizeof sa);
        sa.valid = VFS_SET_SIZE;
        r = vfs_setattr(f->v, c, ino, atomic_load(&(*out)->vf), &sa, &a);
    }
    if (r) {
        (void)nbfuse__open_put(f, *out);
        *out = NULL;
    }
    return r;
}

/* Ends a FUSE handle: its reader, then its reference on the shared open
 * (the last one publishes and returns that result). */
static int handle_free(nbfuse *f, nbfuse_handle *h)
{
    vfs_file *rd = atomic_load(&h->rd);
    if (rd)
        (void)vfs_release(rd); /* read-only: nothing to publish */
    int r = nbfuse__open_put(f, h->o);
    free(h);
    return r;
}

bool nbfuse__release_quick(nbfuse *f, uint64_t fh)
{
    nbfuse_handle *h = (nbfuse_handle *)(uintptr_t)fh;
    /* A shared handle is only ever created by a holder of a reference on
     * the open, so without one now, ours cannot be the last reference of
     * an open with a handle to publish. */
    if (atomic_load(&h->o->vf))
        return false;
    (void)handle_free(f, h);
    return true;
}

static void setup_fi(struct fuse_file_info *fi, nbfuse_open *o)
{
    nbfuse_handle *h = nb_xcalloc(1, sizeof *h);
    h->o = o;
    fi->fh = (uint64_t)(uintptr_t)h;
    /* Keep the page cache across opens: changes made outside the mount
     * invalidate it explicitly (nbfuse_invalidate_inode). */
    fi->keep_cache = 1;
    /* A descriptor that cannot write has nothing to publish at close: no
     * FLUSH round trip (op_flush would answer at once anyway). */
    if ((fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC))
        fi->noflush = 1;
}

/* ---- Preloading small files ----------------------------------------------------------------
 *
 * A program that opens a small file for reading almost always reads all
 * of it next (a DataLoader sample, a source file, a config). With a cold
 * page cache that read is one more round trip (READ) after OPEN. So a
 * read-only open of a file up to PRELOAD_MAX bytes reads it here and
 * stores it in the kernel's page cache (fuse_lowlevel_notify_store)
 * before answering: the program's read is then served by the kernel.
 *
 * A store must never put older bytes over newer ones:
 * - Writers under the mount may hold dirty pages in the kernel (the
 *   write-back cache) that we have not seen. Those exist only while a
 *   writable handle is open, i.e. while the inode's shared vfs handle
 *   exists; the preload runs under o->vf_mu with no shared handle, and a
 *   writable open waits on vf_mu, so its writes come after the store.
 * - Other changes (truncate by path here, any S3 change) are counted:
 *   change_begin/_end around a truncate, change_gen bumped before every
 *   S3 invalidation. A preload that starts while a change is in flight is
 *   skipped; one that overlapped a change drops what it stored
 *   (notify_inval_inode), since it may have read the old contents.
 * At most half the worker threads preload at once: a store waits on page
 * locks held by reads that other workers must be free to answer. */
#define PRELOAD_MAX (128u << 10)

void nbfuse__change_begin(nbfuse *f)
{
    atomic_fetch_add(&f->changing, 1);
}

void nbfuse__change_end(nbfuse *f)
{
    atomic_fetch_add(&f->change_gen, 1);
    atomic_fetch_sub(&f->changing, 1);
}

static void preload(nbfuse *f, nbfuse_handle *h, uint64_t ino)
{
    unsigned threads = f->opts.max_threads ? f->opts.max_threads : 16;
    if (atomic_fetch_add(&f->preloading, 1) >= (threads + 1) / 2)
        goto out;
    nbfuse_open *o = h->o;
    pthread_mutex_lock(&o->vf_mu);
    uint64_t gen = atomic_load(&f->change_gen);
    /* The size the reader's open read (no second inode read): only a bound,
     * since vfs_read stops at the current end and reads current bytes; a
     * file grown since is stored in part. */
    vfs_file *rd = atomic_load(&h->rd);
    uint64_t size = vfs_file_open_attr(rd)->size;
    if (atomic_load(&o->vf) || atomic_load(&f->changing) || size == 0 || size > PRELOAD_MAX)
        goto unlock;
    char *buf = nb_xmalloc((size_t)size);
    size_t got = 0;
    if (vfs_read(rd, 0, buf, (size_t)size, &got) == 0 && got > 0) {
        struct fuse_bufvec bv = FUSE_BUFVEC_INIT(got);
        bv.buf[0].mem = buf;
        if (fuse_lowlevel_notify_store(f->se, ino, 0, &bv, 0) == 0 &&
            (atomic_load(&f->changing) || atomic_load(&f->change_gen) != gen))
            (void)fuse_lowlevel_notify_inval_inode(f->se, ino, 0, 0);
    }
    free(buf);
unlock:
    pthread_mutex_unlock(&o->vf_mu);
out:
    atomic_fetch_sub(&f->preloading, 1);
}

/* A read-only open: the caller's read permission is checked by the open
 * of this descriptor's reader (one inode read fewer than vfs_access plus
 * an unchecked open), and a small file is preloaded. */
static void open_reading(fuse_req_t req, const vfs_cred *c, fuse_ino_t ino,
                         struct fuse_file_info *fi)
{
    nbfuse *f = self_of(req);
    vfs_file *rd = NULL;
    int r = vfs_file_open(f->v, c, ino, O_RDONLY, &rd);
    if (r) {
        reply_err(req, r);
        return;
    }
    nbfuse_open *o = NULL;
    (void)nbfuse__open_get(f, ino, false, &o); /* without rw it cannot fail */
    setup_fi(fi, o);
    nbfuse_handle *h = handle_of(fi);
    atomic_store(&h->rd, rd);
    preload(f, h, ino);
    if (fuse_reply_open(req, fi) != 0)
        (void)handle_free(f, h); /* the kernel gave up on the request */
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    req_cred rc;
    const vfs_cred *c = cred_of(req, &rc, true);
    if ((fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC)) {
        open_reading(req, c, ino, fi);
        return;
    }
    nbfuse_open *o = NULL;
    bool kill = nbfuse__req_kill();
    int r = vfs_access(vfs_of(req), c, ino, access_mask(fi->flags));
    if (r == 0)
        r = open_checked(req, c, ino, fi->flags, &o);
    if (r) {
        reply_err(req, r);
        return;
    }
    if (kill && (fi->flags & O_TRUNC))
        kill_suidgid(self_of(req), ino, NULL);
    setup_fi(fi, o);
    if (fuse_reply_open(req, fi) != 0)
        (void)handle_free(self_of(req), handle_of(fi)); /* the kernel gave up on the request */
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    nbfuse *f = self_of(req);
    req_cred rc;
    const vfs_cred *c = cred_of(req, &rc, true);
    vfs_attr a;
    nbfuse_open *o = NULL;
    /* Exclusive at vfs, so a name made since the kernel's lookup (by S3)
     * comes back -EEXIST and is opened below; the usual case, a new name,
     * costs no lookup of its own. A name that is gone again by the lookup
     * is created after all. */
    int r;
    for (int tries = 0;; tries++) {
        vfs_file *vf = NULL;
        r = vfs_create(f->v, c, parent, name, mode, O_RDWR | O_EXCL | (fi->flags & O_TRUNC), &a,
                       &vf);
        if (r == 0)
            o = nbfuse__open_adopt(f, a.ino, vf);
        if (r != -EEXIST || (fi->flags & O_EXCL))
            break;
        r = vfs_lookup(f->v, c, parent, name, &a);
        if (r == -ENOENT && tries < 3)
            continue;
        if (r != 0)
            break;
        /* An existing file: an open. */
        bool kill = nbfuse__req_kill() && (fi->flags & O_TRUNC);
        r = vfs_access(f->v, c, a.ino, access_mask(fi->flags));
        if (r == 0)
            r = open_checked(req, c, a.ino, fi->flags, &o);
        if (r == 0)
            r = vfs_getattr(f->v, a.ino, &a);
        if (r == 0 && kill)
            kill_suidgid(f, a.ino, &a);
        break;
    }
    if (r) {
        if (o)
            (void)nbfuse__open_put(f, o);
        reply_err(req, r);
        return;
    }
    struct fuse_entry_param e;
    fill_entry(req, &a, &e);
    setup_fi(fi, o);
    if (fuse_reply_create(req, &e, fi) != 0)
        (void)handle_free(f, handle_of(fi));
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    NB_UNUSED(ino);
    nbfuse_handle *h = handle_of(fi);
    vfs_file *vf = NULL;
    int r = 0;
    if (nbfuse__clean(h->o))
        vf = nbfuse__reader(self_of(req), h, NULL);
    if (!vf)
        r = nbfuse__vf(self_of(req), h->o, &vf); /* unpublished writes: only it sees them */
    if (r) {
        reply_err(req, r);
        return;
    }
    char *buf = nb_xmalloc(size);
    size_t got = 0;
    r = vfs_read(vf, (uint64_t)off, buf, size, &got);
    if (r)
        reply_err(req, r);
    else
        fuse_reply_buf(req, buf, got);
    free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    NB_UNUSED(ino);
    nbfuse_open *o = open_of(fi);
    vfs_file *vf;
    int r = nbfuse__vf(self_of(req), o, &vf);
    if (r) {
        reply_err(req, r);
        return;
    }
    nbfuse__write_begin(o);
    if ((fi->flags & O_APPEND) && !self_of(req)->opts.writeback_cache) {
        /* The kernel's idea of the end may be stale (an S3 change); the
         * shared handle knows the real one, buffered writes included. */
        vfs_attr a;
        pthread_mutex_lock(&o->append_mu);
        r = vfs_getattr(vfs_of(req), o->ino, &a);
        if (r == 0)
            r = vfs_write(vf, a.size, buf, size, NULL);
        pthread_mutex_unlock(&o->append_mu);
        /* The kernel grew its size from its own offset: have it re-read. */
        if (r == 0 && a.size != (uint64_t)off)
            (void)fuse_lowlevel_notify_inval_inode(self_of(req)->se, o->ino, -1, 0);
    } else {
        r = vfs_write(vf, (uint64_t)off, buf, size, NULL);
    }
    nbfuse__write_end(o);
    if (r == 0 && nbfuse__req_kill())
        kill_suidgid(self_of(req), o->ino, NULL);
    if (r)
        reply_err(req, r);
    else
        fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    NB_UNUSED(ino);
    nbfuse_open *o = open_of(fi);
    vfs_file *vf = atomic_load(&o->vf);
    if (!vf) {
        fuse_reply_err(req, 0); /* never written through: nothing to publish */
        return;
    }
    uint64_t gen = nbfuse__publish_begin(o);
    int r = vfs_flush(vf);
    nbfuse__publish_end(o, gen, r);
    reply_err(req, r);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    int r = handle_free(self_of(req), handle_of(fi));
    if (r)
        NB_WARN("release of inode %llu: %s", (unsigned long long)ino, nb_strerror(r));
    reply_err(req, r);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    NB_UNUSED(ino);
    nbfuse_open *o = open_of(fi);
    vfs_file *vf;
    int r = nbfuse__vf(self_of(req), o, &vf); /* fsync also syncs earlier publishes */
    if (r) {
        reply_err(req, r);
        return;
    }
    uint64_t gen = nbfuse__publish_begin(o);
    r = vfs_fsync(vf, datasync != 0);
    nbfuse__publish_end(o, gen, r);
    reply_err(req, r);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    req_cred rc;
    int r = vfs_opendir(vfs_of(req), cred_of(req, &rc, true), ino);
    if (r) {
        reply_err(req, r);
        return;
    }
    fi->fh = 0;
    fi->cache_readdir = 0;
    fuse_reply_open(req, fi);
}

typedef struct dir_fill {
    fuse_req_t req;
    char *buf;
    size_t size;
    size_t used;
    bool plus;
} dir_fill;

static int fill_dirent(void *arg, const vfs_dirent *d)
{
    dir_fill *df = arg;
    size_t room = df->size - df->used;
    size_t n;
    if (df->plus) {
        struct fuse_entry_param e;
        if (d->attr) {
            fill_entry(df->req, d->attr, &e);
        } else {
            /* Vanished (or "." / ".."): a plain entry the kernel won't cache. */
            memset(&e, 0, sizeof e);
            e.attr.st_ino = d->ino;
            e.attr.st_mode = d->type;
        }
        n = fuse_add_direntry_plus(df->req, df->buf + df->used, room, d->name, &e,
                                   (off_t)d->next_off);
    } else {
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_ino = d->ino;
        st.st_mode = d->type;
        n = fuse_add_direntry(df->req, df->buf + df->used, room, d->name, &st, (off_t)d->next_off);
    }
    if (n > room)
        return 1; /* full: the kernel asks again from this entry's offset */
    df->used += n;
    return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
    dir_fill df = {req, nb_xmalloc(size), size, 0, plus};
    unsigned flags = VFS_READDIR_DOTS | (plus ? VFS_READDIR_ATTRS : 0);
    int r = vfs_readdir(vfs_of(req), ino, (uint64_t)off, flags, fill_dirent, &df);
    if (r)
        reply_err(req, r);
    else
        fuse_reply_buf(req, df.buf, df.used);
    free(df.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    NB_UNUSED(fi);
    do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    NB_UNUSED(fi);
    do_readdir(req, ino, size, off, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    NB_UNUSED(ino);
    NB_UNUSED(fi);
    fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    NB_UNUSED(ino);
    NB_UNUSED(datasync);
    NB_UNUSED(fi);
    reply_err(req, vfs_sync(vfs_of(req)));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    NB_UNUSED(ino);
    vfs_statfs s;
    int r = vfs_statfs_get(vfs_of(req), &s);
    if (r) {
        reply_err(req, r);
        return;
    }
    struct statvfs st;
    memset(&st, 0, sizeof st);
    st.f_bsize = s.bsize;
    st.f_frsize = s.bsize;
    st.f_blocks = s.blocks;
    st.f_bfree = s.bfree;
    st.f_bavail = s.bavail;
    st.f_files = s.files;
    st.f_ffree = s.ffree;
    st.f_favail = s.ffree;
    st.f_namemax = s.namemax;
    fuse_reply_statfs(req, &st);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    req_cred rc;
    int vflags = 0;
    if (flags & XATTR_CREATE)
        vflags |= VFS_XATTR_CREATE;
    if (flags & XATTR_REPLACE)
        vflags |= VFS_XATTR_REPLACE;
    reply_err(req, vfs_xattr_set(vfs_of(req), cred_of(req, &rc, true), ino, name,
                                 nb_slice_of(value, size), vflags));
}

/* getxattr/listxattr: size 0 asks for the length; a short buffer is ERANGE. */
static void reply_xattr_buf(fuse_req_t req, int r, const nb_buf *b, size_t size)
{
    if (r)
        reply_err(req, r);
    else if (size == 0)
        fuse_reply_xattr(req, b->len);
    else if (b->len > size)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, (const char *)b->data, b->len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    req_cred rc;
    nb_buf b = NB_BUF_INIT;
    int r = vfs_xattr_get(vfs_of(req), cred_of(req, &rc, true), ino, name, &b);
    reply_xattr_buf(req, r, &b, size);
    nb_buf_free(&b);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    req_cred rc;
    nb_buf b = NB_BUF_INIT;
    int r = vfs_xattr_list(vfs_of(req), cred_of(req, &rc, true), ino, &b);
    reply_xattr_buf(req, r, &b, size);
    nb_buf_free(&b);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    req_cred rc;
    reply_err(req, vfs_xattr_remove(vfs_of(req), cred_of(req, &rc, true), ino, name));
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    req_cred rc;
    reply_err(req, vfs_access(vfs_of(req), cred_of(req, &rc, true), ino, mask));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
    NB_UNUSED(ino);
    nbfuse_open *o = open_of(fi);
    vfs_file *vf;
    int r = nbfuse__vf(self_of(req), o, &vf);
    if (r) {
        reply_err(req, r);
        return;
    }
    nbfuse__write_begin(o); /* conservatively: reads go through the shared handle until a flush */
    r = vfs_fallocate(vf, mode, (uint64_t)offset, (uint64_t)length);
    nbfuse__write_end(o);
    if (r == 0)
        kill_if_no_fsetid(req, o->ino);
    reply_err(req, r);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
    NB_UNUSED(ino);
    uint64_t out = 0;
    vfs_file *vf;
    int r = current_vf(self_of(req), handle_of(fi), &vf);
    if (r == 0)
        r = vfs_lseek(vf, (uint64_t)off, whence, &out);
    if (r)
        reply_err(req, r);
    else
        fuse_reply_lseek(req, (off_t)out);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                               struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                               struct fuse_file_info *fi_out, size_t len, int flags)
{
    NB_UNUSED(ino_in);
    NB_UNUSED(ino_out);
    if (flags) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    size_t copied = 0;
    nbfuse *f = self_of(req);
    nbfuse_open *out = open_of(fi_out);
    vfs_file *in_vf, *out_vf;
    int r = nbfuse__vf(f, out, &out_vf);
    if (r == 0)
        r = current_vf(f, handle_of(fi_in), &in_vf);
    if (r) {
        reply_err(req, r);
        return;
    }
    nbfuse__write_begin(out);
    r = vfs_copy_range(in_vf, (uint64_t)off_in, out_vf, (uint64_t)off_out, len, &copied);
    nbfuse__write_end(out);
    if (r == 0 && copied > 0)
        kill_if_no_fsetid(req, out->ino);
    if (r)
        reply_err(req, r);
    else
        fuse_reply_write(req, copied);
}

/* No getlk/setlk/flock: without them the kernel keeps POSIX and BSD locks
 * itself, which is exact for the one mount a server has. */
const struct fuse_lowlevel_ops nbfuse__ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .access = op_access,
    .create = op_create,
    .fallocate = op_fallocate,
    .lseek = op_lseek,
    .copy_file_range = op_copy_file_range,
};
