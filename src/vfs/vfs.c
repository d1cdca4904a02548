/*
 * vfs.c — opening and closing a namespace, the namespace operations, path
 * resolution, statfs and extended attributes. Namespace operations are
 * one meta call each (meta makes each one atomic and serializes it against
 * others on the same inodes); vfs adds the read-only rule, the handles'
 * buffered sizes and the mapping of internal codes to errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "disk/disk.h"
#include "vfs/vfs_int.h"

void vfs_options_init(vfs_options *o)
{
    memset(o, 0, sizeof(*o));
}

int vfs__errno(int rc)
{
    if (rc >= 0 || rc > -4096)
        return rc;
    switch (rc) {
    case NB_ENOSPACE:
        return -ENOSPC;
    case NB_ETOOBIG:
        return -EFBIG;
    case NB_EUSAGE:
        return -EINVAL;
    case NB_EAGAIN:
    case NB_ECONFLICT:
        return -EAGAIN;
    default:
        return -EIO;
    }
}

int vfs__ro(vfs *v)
{
    return v->o.read_only ? -EROFS : 0;
}

/* The engine to open DIR/meta with: as recorded in DIR/meta-engine, else
 * as asked, else meta's default. A metadata store that predates the
 * record was made when rocksdb was the default. Asking for another engine
 * than the one recorded is -EINVAL: a store is never opened by the wrong
 * backend. *out is always a name. */
static int meta_engine_choose(const char *dir, const char *want, char **out)
{
    char *path = nb_xasprintf("%s/meta-engine", dir);
    char *text = NULL;
    size_t len = 0;
    int rc = nb_read_file(path, 64, &text, &len);
    free(path);
    *out = NULL;
    if (rc == -ENOENT) {
        char *mdir = nb_xasprintf("%s/meta", dir);
        struct stat st;
        bool legacy = stat(mdir, &st) == 0;
        free(mdir);
        if (want && *want)
            *out = nb_xstrdup(want);
        else
            *out = nb_xstrdup(legacy ? "rocksdb" : meta_default_engine());
        return 0;
    }
    if (rc != 0)
        return rc;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = 0;
    if (want && *want && strcmp(want, text) != 0) {
        NB_ERROR("vfs: %s holds a %s metadata store, not %s", dir, text, want);
        free(text);
        return -EINVAL;
    }
    *out = text;
    return 0;
}

/* Records the engine the store was made with, once. */
static int meta_engine_record(const char *dir, const char *engine)
{
    char *path = nb_xasprintf("%s/meta-engine", dir);
    struct stat st;
    int rc = 0;
    if (stat(path, &st) != 0) {
        char *line = nb_xasprintf("%s\n", engine);
        rc = nb_write_file_atomic(path, line, strlen(line), 0644);
        free(line);
    }
    free(path);
    return rc;
}

int vfs__open_stores(const vfs_options *o, meta **mout, data_store **dsout)
{
    *mout = NULL;
    *dsout = NULL;
    if (!o || !o->data_dir || !*o->data_dir)
        return NB_EUSAGE;
    int rc = nb_mkdir_p(o->data_dir, 0755);
    if (rc != 0)
        return rc;
    /* The backend: what the directory already holds, else as asked, else dir. */
    char *mdir = nb_xasprintf("%s/meta", o->data_dir);
    char *bdir = nb_xasprintf("%s/blocks", o->data_dir);
    char *ddir = nb_xasprintf("%s/disk", o->data_dir);
    const char *kind = o->block_store && *o->block_store ? o->block_store : "dir";
    struct stat st;
    if (stat(ddir, &st) == 0)
        kind = "disk";
    else if (stat(bdir, &st) == 0)
        kind = "dir";
    data_bs *bs = NULL;
    if (strcmp(kind, "dir") == 0) {
        rc = nb_mkdir_p(bdir, 0755);
        if (rc == 0)
            rc = data_bs_open_dir(bdir, &bs);
    } else if (strcmp(kind, "disk") == 0) {
        rc = nb_mkdir_p(ddir, 0755);
        disk_options dko;
        disk_options_init(&dko);
        dko.capacity = o->disk_size;
        if (o->disk_reserve)
            dko.reserve = o->disk_reserve;
        char *list = o->disk_files && *o->disk_files ? nb_xstrdup(o->disk_files) : NULL;
        const char *files[DISK_MAX_FILES];
        unsigned n = 0;
        for (char *save = NULL, *t = list ? strtok_r(list, ",", &save) : NULL;
             t && n < DISK_MAX_FILES; t = strtok_r(NULL, ",", &save))
            files[n++] = t;
        dko.files = n ? files : NULL;
        dko.n_files = n;
        if (rc == 0)
            rc = data_bs_open_disk(ddir, &dko, &bs);
        free(list);
    } else {
        rc = -EINVAL;
    }
    free(ddir);
    if (rc == 0) {
        data_store_options dso;
        memset(&dso, 0, sizeof(dso));
        dso.cache_bytes = o->cache_bytes;
        dso.read_threads = o->threads;
        dso.write_threads = o->threads;
        dso.collect_grace_ns = o->collect_grace_ns;
        rc = data_store_open(bs, &dso, dsout);
    }
    /* The kv engine is recorded in DIR/meta-engine when the store is made,
     * so that later opens (and fsck, dump, load) pick the same one. */
    char *engine = NULL;
    if (rc == 0)
        rc = meta_engine_choose(o->data_dir, o->meta_engine, &engine);
    if (rc == 0) {
        meta_options mo;
        meta_options_init(&mo);
        mo.engine = engine;
        mo.sync = o->sync ? 1 : 0;
        mo.max_bytes = o->capacity_bytes;
        mo.max_inodes = o->capacity_inodes;
        mo.kv_cache_bytes = o->kv_cache_bytes;
        rc = meta_open(mdir, &mo, mout);
        if (rc == 0 && !o->read_only)
            rc = meta_engine_record(o->data_dir, engine);
        /* Slices published but maybe not synced before a crash. */
        if (rc == 0 && !o->read_only)
            rc = vfs__recover_unsynced(*mout, *dsout, NULL);
        if (rc != 0) {
            meta_close(*mout);
            *mout = NULL;
        }
    }
    free(engine);
    if (rc != 0 && *dsout) {
        data_store_close(*dsout);
        *dsout = NULL;
    }
    free(mdir);
    free(bdir);
    return rc;
}

int vfs_open(const vfs_options *o, vfs **out)
{
    *out = NULL;
    meta *m;
    data_store *ds;
    int rc = vfs__open_stores(o, &m, &ds);
    if (rc != 0)
        return rc;
    vfs *v = nb_xcalloc(1, sizeof(*v));
    v->o = *o;
    v->data_dir = nb_xstrdup(o->data_dir);
    v->o.data_dir = v->data_dir;
    v->o.meta_engine = NULL;
    v->o.block_store = NULL;
    if (!v->o.write_buffer_bytes)
        v->o.write_buffer_bytes = 8u << 20;
    v->m = m;
    v->ds = ds;
    v->collect_grace_ns = o->collect_grace_ns ? o->collect_grace_ns : 3600ull * NB_NS_PER_SEC;
    pthread_mutex_init(&v->itab_mu, NULL);
    pthread_mutex_init(&v->maint_mu, NULL);
    pthread_rwlock_init(&v->share_lk, NULL);
    pthread_mutex_init(&v->timer_mu, NULL);
    nb_cond_init_mono(&v->timer_cv);
    vfs__sync_init(v);
    if (o->maintain_interval_ms >= 0 && !o->read_only) {
        rc = vfs__maint_start(v);
        if (rc != 0) {
            vfs_close(v);
            return rc;
        }
    }
    *out = v;
    return 0;
}

void vfs_close(vfs *v)
{
    if (!v)
        return;
    vfs__maint_stop(v);
    for (;;) {
        pthread_mutex_lock(&v->itab_mu);
        vfs_file *f = v->files;
        pthread_mutex_unlock(&v->itab_mu);
        if (!f)
            break;
        NB_WARN("vfs_close: inode %llu still open; releasing it", (unsigned long long)f->ino);
        (void)vfs_release(f);
    }
    if (!v->o.read_only && vfs__sync(v) != 0)
        NB_WARN("vfs_close: sync failed");
    meta_close(v->m);
    data_store_close(v->ds);
    pthread_mutex_destroy(&v->itab_mu);
    pthread_mutex_destroy(&v->maint_mu);
    pthread_rwlock_destroy(&v->share_lk);
    pthread_mutex_destroy(&v->timer_mu);
    pthread_cond_destroy(&v->timer_cv);
    vfs__sync_destroy(v);
    free(v->data_dir);
    free(v);
}

void vfs_set_notify(vfs *v, vfs_notify_cb cb, void *arg)
{
    v->notify = cb;
    v->notify_arg = arg;
}

void vfs__notify(vfs *v, int kind, uint64_t parent, const char *name, uint64_t ino)
{
    if (!v->notify)
        return;
    vfs_notify n = {kind, parent, name, ino};
    v->notify(v->notify_arg, &n);
}

int vfs_sync(vfs *v)
{
    if (v->o.read_only)
        return 0;
    return vfs__errno(vfs__sync(v));
}

/* ---- Open-inode table ---------------------------------------------------------------------- */

static size_t ibucket(uint64_t ino)
{
    return (size_t)(ino * 0x9E3779B97F4A7C15ull >> 54) % VFS__IBUCKETS;
}

vfs__inode *vfs__inode_find(vfs *v, uint64_t ino)
{
    vfs__inode *in = v->itab[ibucket(ino)];
    while (in && in->ino != ino)
        in = in->next;
    return in;
}

vfs__inode *vfs__inode_get(vfs *v, uint64_t ino)
{
    size_t b = ibucket(ino);
    pthread_mutex_lock(&v->itab_mu);
    vfs__inode *in = vfs__inode_find(v, ino);
    if (!in) {
        in = nb_xcalloc(1, sizeof(*in));
        in->ino = ino;
        pthread_mutex_init(&in->mu, NULL);
        in->next = v->itab[b];
        v->itab[b] = in;
    }
    in->refs++;
    pthread_mutex_unlock(&v->itab_mu);
    return in;
}

void vfs__inode_put(vfs *v, vfs__inode *in)
{
    size_t b = ibucket(in->ino);
    pthread_mutex_lock(&v->itab_mu);
    if (--in->refs == 0) {
        vfs__inode **pp = &v->itab[b];
        while (*pp != in)
            pp = &(*pp)->next;
        *pp = in->next;
        pthread_mutex_destroy(&in->mu);
        free(in);
    }
    pthread_mutex_unlock(&v->itab_mu);
}

/* The furthest end of unpublished writes of any handle on ino (0: none),
 * and the time of the latest of them in *mtime_ns (0: none) when asked. */
static uint64_t pending_end(vfs *v, uint64_t ino, int64_t *mtime_ns)
{
    uint64_t end = 0;
    int64_t t = 0;
    /* No handle open anywhere (the common case for lookups and stats):
     * nothing is buffered, skip the table lock. A handle opened right now
     * has buffered nothing yet. */
    if (__atomic_load_n(&v->nfiles, __ATOMIC_ACQUIRE) != 0) {
        pthread_mutex_lock(&v->itab_mu);
        vfs__inode *in = vfs__inode_find(v, ino);
        for (vfs_file *f = in ? in->files : NULL; f; f = f->inext) {
            uint64_t e = __atomic_load_n(&f->pend_end, __ATOMIC_RELAXED);
            if (e > end)
                end = e;
            int64_t m = __atomic_load_n(&f->pend_mtime_ns, __ATOMIC_RELAXED);
            if (m > t)
                t = m;
        }
        pthread_mutex_unlock(&v->itab_mu);
    }
    if (mtime_ns)
        *mtime_ns = t;
    return end;
}

uint64_t vfs__pending_end(vfs *v, uint64_t ino)
{
    return pending_end(v, ino, NULL);
}

/* A regular file's attributes with its unpublished writes: the size they
 * reach, and their time as mtime and ctime (a write marks both; the
 * publish records its own, later, time). */
static void add_pending(vfs *v, vfs_attr *a)
{
    if (!S_ISREG(a->mode))
        return;
    int64_t t;
    uint64_t end = pending_end(v, a->ino, &t);
    if (end > a->size)
        a->size = end;
    if (t > a->mtime_ns)
        a->mtime_ns = t;
    if (t > a->ctime_ns)
        a->ctime_ns = t;
}

/* ---- Attributes ---------------------------------------------------------------------------- */

int vfs_lookup(vfs *v, const vfs_cred *c, uint64_t parent, const char *name, vfs_attr *out)
{
    int rc = meta_lookup(v->m, c, parent, name, out);
    if (rc == 0 && out)
        add_pending(v, out);
    return vfs__errno(rc);
}

int vfs_getattr(vfs *v, uint64_t ino, vfs_attr *out)
{
    int rc = meta_getattr(v->m, ino, out);
    if (rc == 0)
        add_pending(v, out);
    return vfs__errno(rc);
}

int vfs_access(vfs *v, const vfs_cred *c, uint64_t ino, int mask)
{
    if ((mask & W_OK) && v->o.read_only) {
        meta_attr a;
        int rc = meta_getattr(v->m, ino, &a);
        if (rc != 0)
            return rc;
        return -EROFS;
    }
    return vfs__errno(meta_access(v->m, c, ino, mask));
}

int vfs_setattr(vfs *v, const vfs_cred *c, uint64_t ino, vfs_file *f, const vfs_sattr *sa,
                vfs_attr *out)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    meta_sattr s = *sa;
    if (f && f->ino != ino)
        return -EBADF;
    if (!(s.valid & META_SET_SIZE)) {
        rc = meta_setattr(v->m, c, ino, &s, out);
        if (rc == 0 && out && S_ISREG(out->mode)) {
            if (s.valid & (META_SET_MTIME | META_SET_MTIME_NOW)) {
                uint64_t end = pending_end(v, ino, NULL); /* the time just set stands */
                if (end > out->size)
                    out->size = end;
            } else {
                add_pending(v, out);
            }
        }
        return vfs__errno(rc);
    }
    if (s.size > VFS_MAX_FILE_SIZE)
        return -EFBIG;
    if (f) {
        if (!f->wr)
            return -EINVAL; /* ftruncate on a read-only descriptor */
        s.valid |= META_SET_HANDLE;
        pthread_mutex_lock(&f->mu);
        rc = vfs__file_publish(f, false);
        if (rc == 0) {
            pthread_mutex_lock(&f->in->mu);
            rc = meta_setattr(v->m, c, ino, &s, out);
            if (rc == 0 && f->in->append_end > s.size)
                f->in->append_end = s.size;
            pthread_mutex_unlock(&f->in->mu);
        }
        pthread_mutex_unlock(&f->mu);
        return vfs__errno(rc);
    }
    vfs__inode *in = vfs__inode_get(v, ino);
    pthread_mutex_lock(&in->mu);
    rc = meta_setattr(v->m, c, ino, &s, out);
    if (rc == 0 && in->append_end > s.size)
        in->append_end = s.size;
    pthread_mutex_unlock(&in->mu);
    vfs__inode_put(v, in);
    return vfs__errno(rc);
}

/* ---- Namespace ----------------------------------------------------------------------------- */

int vfs_mknod(vfs *v, const vfs_cred *c, uint64_t parent, const char *name, uint32_t mode,
              uint64_t rdev, vfs_attr *out)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    uint32_t t = mode & S_IFMT;
    if (t == S_IFDIR || t == S_IFLNK)
        return -EINVAL; /* mkdir and symlink have their own calls */
    return vfs__errno(meta_mknod(v->m, c, parent, name, mode, rdev, out));
}

int vfs_mkdir(vfs *v, const vfs_cred *c, uint64_t parent, const char *name, uint32_t mode,
              vfs_attr *out)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    return vfs__errno(meta_mkdir(v->m, c, parent, name, mode & 07777, out));
}

int vfs_symlink(vfs *v, const vfs_cred *c, uint64_t parent, const char *name, const char *target,
                vfs_attr *out)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    size_t tl = strlen(target);
    if (tl == 0)
        return -ENOENT;
    if (tl > META_SYMLINK_MAX)
        return -ENAMETOOLONG;
    return vfs__errno(meta_symlink(v->m, c, parent, name, target, out));
}

int vfs_link(vfs *v, const vfs_cred *c, uint64_t ino, uint64_t newparent, const char *newname,
             vfs_attr *out)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    return vfs__errno(meta_link(v->m, c, ino, newparent, newname, out));
}

int vfs_unlink(vfs *v, const vfs_cred *c, uint64_t parent, const char *name)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    return vfs__errno(meta_unlink(v->m, c, parent, name));
}

int vfs_rmdir(vfs *v, const vfs_cred *c, uint64_t parent, const char *name)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    return vfs__errno(meta_rmdir(v->m, c, parent, name));
}

int vfs_rename(vfs *v, const vfs_cred *c, uint64_t parent, const char *name, uint64_t newparent,
               const char *newname, unsigned flags)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    if (flags & ~(VFS_RENAME_NOREPLACE | VFS_RENAME_EXCHANGE))
        return -EINVAL;
    if ((flags & VFS_RENAME_NOREPLACE) && (flags & VFS_RENAME_EXCHANGE))
        return -EINVAL;
    return vfs__errno(meta_rename(v->m, c, parent, name, newparent, newname, flags));
}

int vfs_readlink(vfs *v, uint64_t ino, nb_buf *out)
{
    int rc = meta_readlink(v->m, ino, out);
    if (rc == 0)
        rc = nb_buf_nul_terminate(out);
    return vfs__errno(rc);
}

/* ---- Path resolution ----------------------------------------------------------------------- */

/* Walks path from dir `start`. *links counts symlinks followed so far. */
static int walk(vfs *v, const vfs_cred *c, uint64_t start, const char *path, bool follow_last,
                int *links, meta_attr *out)
{
    meta_attr cur;
    int rc = meta_getattr(v->m, path[0] == '/' ? VFS_ROOT_INO : start, &cur);
    if (rc != 0)
        return vfs__errno(rc);
    const char *p = path;
    char name[VFS_NAME_MAX + 1];
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > VFS_NAME_MAX)
            return -ENAMETOOLONG;
        memcpy(name, p, n);
        name[n] = 0;
        p += n;
        bool last = true;
        for (const char *q = p; *q; q++)
            if (*q != '/') {
                last = false;
                break;
            }
        if (!S_ISDIR(cur.mode))
            return -ENOTDIR;
        meta_attr next;
        rc = meta_lookup(v->m, c, cur.ino, name, &next);
        if (rc != 0)
            return vfs__errno(rc);
        /* A trailing slash forces the last component to be followed too. */
        bool trailing = last && *p == '/';
        if (S_ISLNK(next.mode) && (!last || follow_last || trailing)) {
            if (++*links > VFS_SYMLOOP_MAX)
                return -ELOOP;
            nb_buf t = NB_BUF_INIT;
            rc = vfs_readlink(v, next.ino, &t);
            if (rc == 0)
                rc = walk(v, c, cur.ino, (const char *)t.data, true, links, &next);
            nb_buf_free(&t);
            if (rc != 0)
                return rc;
        }
        if (trailing && !S_ISDIR(next.mode))
            return -ENOTDIR;
        cur = next;
    }
    if (out)
        *out = cur;
    return 0;
}

int vfs_resolve(vfs *v, const vfs_cred *c, const char *path, unsigned flags, vfs_attr *out)
{
    int links = 0;
    meta_attr a;
    int rc = walk(v, c, VFS_ROOT_INO, path, (flags & VFS_RESOLVE_FOLLOW) != 0, &links, &a);
    if (rc == 0 && out) {
        *out = a;
        add_pending(v, out);
    }
    return rc;
}

int vfs_resolve_parent(vfs *v, const vfs_cred *c, const char *path, uint64_t *parent,
                       const char **leaf)
{
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] == '/')
        n--;
    if (n == 0)
        return -EINVAL;
    size_t s = n;
    while (s > 0 && path[s - 1] != '/')
        s--;
    char *dir = nb_xstrndup(path, s);
    meta_attr a;
    int rc = vfs_resolve(v, c, dir, VFS_RESOLVE_FOLLOW, &a);
    free(dir);
    if (rc != 0)
        return rc;
    if (!S_ISDIR(a.mode))
        return -ENOTDIR;
    *parent = a.ino;
    *leaf = path + s;
    return 0;
}

/* ---- Directories ----------------------------------------------------------------------------- */

int vfs_opendir(vfs *v, const vfs_cred *c, uint64_t ino)
{
    meta_attr a;
    int rc = meta_getattr(v->m, ino, &a);
    if (rc != 0)
        return vfs__errno(rc);
    if (!S_ISDIR(a.mode))
        return -ENOTDIR;
    return vfs__errno(meta_access(v->m, c, ino, R_OK));
}

int vfs_readdir(vfs *v, uint64_t ino, uint64_t off, unsigned flags, vfs_dirent_cb cb, void *arg)
{
    return vfs__errno(meta_readdir(v->m, ino, off, flags, cb, arg));
}

/* ---- statfs --------------------------------------------------------------------------------- */

int vfs_statfs_get(vfs *v, vfs_statfs *out)
{
    meta_statfs ms;
    meta_statfs_get(v->m, &ms);
    memset(out, 0, sizeof(*out));
    out->bsize = 4096;
    out->namemax = VFS_NAME_MAX;
    uint64_t total = ms.bytes_total;
    data_bs_stats bst;
    if (data_bs_stats_get(data_store_bs(v->ds), &bst) == 0 && bst.capacity_bytes) {
        uint64_t devfree = bst.free_bytes;
        if (!total)
            total = ms.bytes_used + devfree;
        out->blocks = total / out->bsize;
        uint64_t freeb = total > ms.bytes_used ? total - ms.bytes_used : 0;
        if (freeb > devfree)
            freeb = devfree;
        out->bfree = out->bavail = freeb / out->bsize;
    } else {
        if (!total)
            total = 1ull << 50;
        out->blocks = total / out->bsize;
        uint64_t freeb = total > ms.bytes_used ? total - ms.bytes_used : 0;
        out->bfree = out->bavail = freeb / out->bsize;
    }
    uint64_t itotal = ms.inodes_total ? ms.inodes_total : (1ull << 32);
    out->files = itotal;
    out->ffree = itotal > ms.inodes_used ? itotal - ms.inodes_used : 0;
    return 0;
}

/* ---- Extended attributes -------------------------------------------------------------------- */

static bool reserved_xattr(const char *name)
{
    return strncmp(name, VFS__RESERVED_XATTR, strlen(VFS__RESERVED_XATTR)) == 0;
}

int vfs_xattr_get(vfs *v, const vfs_cred *c, uint64_t ino, const char *name, nb_buf *out)
{
    if (reserved_xattr(name))
        return -ENODATA;
    return vfs__errno(meta_xattr_get(v->m, c, ino, name, out));
}

int vfs_xattr_set(vfs *v, const vfs_cred *c, uint64_t ino, const char *name, nb_slice value,
                  int flags)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    if (reserved_xattr(name))
        return -EPERM;
    return vfs__errno(meta_xattr_set(v->m, c, ino, name, value, flags));
}

int vfs_xattr_list(vfs *v, const vfs_cred *c, uint64_t ino, nb_buf *out)
{
    nb_buf all = NB_BUF_INIT;
    int rc = meta_xattr_list(v->m, c, ino, &all);
    nb_buf_reset(out);
    for (size_t i = 0; rc == 0 && i < all.len;) {
        const char *n = (const char *)all.data + i;
        size_t l = strnlen(n, all.len - i);
        if (!reserved_xattr(n)) {
            rc = nb_buf_append(out, n, l);
            if (rc == 0)
                rc = nb_buf_put_u8(out, 0);
        }
        i += l + 1;
    }
    nb_buf_free(&all);
    return vfs__errno(rc);
}

int vfs_xattr_remove(vfs *v, const vfs_cred *c, uint64_t ino, const char *name)
{
    int rc = vfs__ro(v);
    if (rc != 0)
        return rc;
    if (reserved_xattr(name))
        return -ENODATA;
    return vfs__errno(meta_xattr_remove(v->m, c, ino, name));
}
