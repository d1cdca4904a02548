/* memfs.c — see memfs.h. */
#include "memfs.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"

#define SECTOR 512
#define MAXFD  256

typedef struct op {
    int resize; /* else a write */
    uint64_t off;
    size_t n;
    uint8_t *data;
} op;

typedef struct image {
    uint8_t *p;
    uint64_t len;
} image;

typedef struct inode {
    image cur, dur;
    op *ops;
    size_t n_ops, cap_ops;
} inode;

typedef struct name {
    char *path;
    inode *ino;
} name;

typedef struct names {
    name *v;
    size_t n;
} names;

struct memfs {
    pthread_mutex_t mu;
    inode **inodes;
    size_t n_inodes;
    names cur, dur;
    inode *fds[MAXFD];
    uint64_t ops, arm_at;
    int down;
    uint64_t rng;
};

static uint64_t rnd(memfs *fs)
{
    uint64_t z = (fs->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void img_resize(image *m, uint64_t len)
{
    m->p = nb_xrealloc(m->p, len ? len : 1);
    if (len > m->len)
        memset(m->p + m->len, 0, len - m->len);
    m->len = len;
}

static void img_write(image *m, uint64_t off, const uint8_t *d, size_t n)
{
    if (off + n > m->len)
        img_resize(m, off + n);
    memcpy(m->p + off, d, n);
}

static void img_copy(image *dst, const image *src)
{
    dst->len = 0;
    img_resize(dst, src->len);
    if (src->len)
        memcpy(dst->p, src->p, src->len);
}

static void clear_ops(inode *in)
{
    for (size_t i = 0; i < in->n_ops; i++)
        free(in->ops[i].data);
    in->n_ops = 0;
}

static void add_op(inode *in, int resize, uint64_t off, const void *d, size_t n)
{
    if (in->n_ops == in->cap_ops) {
        in->cap_ops = in->cap_ops ? in->cap_ops * 2 : 16;
        in->ops = nb_xrealloc(in->ops, in->cap_ops * sizeof *in->ops);
    }
    op *o = &in->ops[in->n_ops++];
    o->resize = resize;
    o->off = off;
    o->n = n;
    o->data = NULL;
    if (d) {
        o->data = nb_xmalloc(n ? n : 1);
        memcpy(o->data, d, n);
    }
}

static void names_free(names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i].path);
    free(ns->v);
    ns->v = NULL;
    ns->n = 0;
}

static void names_copy(names *dst, const names *src)
{
    names_free(dst);
    dst->v = nb_xmalloc((src->n ? src->n : 1) * sizeof *dst->v);
    for (size_t i = 0; i < src->n; i++) {
        dst->v[i].path = nb_xstrdup(src->v[i].path);
        dst->v[i].ino = src->v[i].ino;
    }
    dst->n = src->n;
}

static name *find(names *ns, const char *path)
{
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->v[i].path, path) == 0)
            return &ns->v[i];
    return NULL;
}

static void remove_name(names *ns, name *nm)
{
    free(nm->path);
    *nm = ns->v[--ns->n];
}

memfs *memfs_new(uint64_t seed)
{
    memfs *fs = nb_xcalloc(1, sizeof *fs);
    pthread_mutex_init(&fs->mu, NULL);
    fs->rng = seed;
    return fs;
}

void memfs_free(memfs *fs)
{
    if (!fs)
        return;
    for (size_t i = 0; i < fs->n_inodes; i++) {
        inode *in = fs->inodes[i];
        clear_ops(in);
        free(in->ops);
        free(in->cur.p);
        free(in->dur.p);
        free(in);
    }
    free(fs->inodes);
    names_free(&fs->cur);
    names_free(&fs->dur);
    pthread_mutex_destroy(&fs->mu);
    free(fs);
}

void memfs_arm(memfs *fs, uint64_t n)
{
    pthread_mutex_lock(&fs->mu);
    fs->arm_at = n ? fs->ops + n : 0;
    pthread_mutex_unlock(&fs->mu);
}

uint64_t memfs_ops_done(const memfs *fs)
{
    return fs->ops;
}

/* Counts an operation; -EIO once the power is off. Under mu. */
static int tick(memfs *fs)
{
    if (fs->down)
        return -EIO;
    fs->ops++;
    if (fs->arm_at && fs->ops >= fs->arm_at) {
        fs->down = 1;
        return -EIO;
    }
    return 0;
}

static void survive(memfs *fs, inode *in)
{
    int subset = rnd(fs) & 1;
    size_t k = in->n_ops ? (size_t)(rnd(fs) % (in->n_ops + 1)) : 0;
    for (size_t i = 0; i < in->n_ops; i++) {
        op *o = &in->ops[i];
        if (o->resize) {
            if (subset ? (rnd(fs) & 1) : i < k)
                img_resize(&in->dur, o->off);
            continue;
        }
        if (!subset && i < k) {
            img_write(&in->dur, o->off, o->data, o->n);
            continue;
        }
        if (!subset && i > k)
            break;
        /* Sector by sector: a subset, or (prefix mode) the first few
         * sectors of the write at the cut, the next one half written. */
        uint64_t end = o->off + o->n;
        uint64_t cut = subset ? 0 : o->off + (rnd(fs) % (o->n + 1));
        for (uint64_t s = o->off; s < end;) {
            uint64_t next = (s / SECTOR + 1) * SECTOR;
            if (next > end)
                next = end;
            size_t len = (size_t)(next - s);
            const uint8_t *d = o->data + (s - o->off);
            if (subset) {
                uint64_t r = rnd(fs) % 4;
                if (r == 1)
                    img_write(&in->dur, s, d, len);
                else if (r == 2)
                    img_write(&in->dur, s, d, len / 2); /* torn */
            } else if (next <= cut) {
                img_write(&in->dur, s, d, len);
            } else if (s < cut) {
                img_write(&in->dur, s, d, (size_t)(cut - s)); /* torn */
            }
            s = next;
        }
    }
}

/* keep: 0 nothing unsynced, 1 a random part, 2 everything written */
static void power_cut(memfs *fs, int keep)
{
    pthread_mutex_lock(&fs->mu);
    for (size_t i = 0; i < fs->n_inodes; i++) {
        inode *in = fs->inodes[i];
        if (keep == 2)
            img_copy(&in->dur, &in->cur);
        else if (keep)
            survive(fs, in);
        clear_ops(in);
        img_copy(&in->cur, &in->dur);
    }
    names_copy(&fs->cur, &fs->dur);
    memset(fs->fds, 0, sizeof fs->fds);
    fs->down = 0;
    fs->arm_at = 0;
    pthread_mutex_unlock(&fs->mu);
}

void memfs_power_cut(memfs *fs)
{
    power_cut(fs, 1);
}

void memfs_power_cut_sync_only(memfs *fs)
{
    power_cut(fs, 0);
}

void memfs_power_cut_keep_all(memfs *fs)
{
    power_cut(fs, 2);
}

int memfs_corrupt(memfs *fs, const char *path, uint64_t off)
{
    pthread_mutex_lock(&fs->mu);
    name *nm = find(&fs->cur, path);
    int rc = -ENOENT;
    if (nm && nm->ino->cur.len) {
        inode *in = nm->ino;
        off %= in->cur.len;
        in->cur.p[off] ^= 0x5a;
        if (off < in->dur.len)
            in->dur.p[off] ^= 0x5a;
        rc = 0;
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int fs_open(void *ctx, const char *path, unsigned flags, int *fd)
{
    memfs *fs = ctx;
    pthread_mutex_lock(&fs->mu);
    int rc = tick(fs);
    name *nm = rc ? NULL : find(&fs->cur, path);
    if (!rc && !nm && !(flags & DISK_O_CREAT))
        rc = -ENOENT;
    if (!rc && !nm) {
        inode *in = nb_xcalloc(1, sizeof *in);
        fs->inodes = nb_xrealloc(fs->inodes, (fs->n_inodes + 1) * sizeof *fs->inodes);
        fs->inodes[fs->n_inodes++] = in;
        fs->cur.v = nb_xrealloc(fs->cur.v, (fs->cur.n + 1) * sizeof *fs->cur.v);
        fs->cur.v[fs->cur.n] = (name){nb_xstrdup(path), in};
        nm = &fs->cur.v[fs->cur.n++];
    }
    int f = -1;
    for (int i = 3; !rc && i < MAXFD; i++) {
        if (!fs->fds[i]) {
            f = i;
            break;
        }
    }
    if (!rc && f < 0)
        rc = -EMFILE;
    if (!rc) {
        fs->fds[f] = nm->ino;
        if ((flags & DISK_O_TRUNC) && nm->ino->cur.len) {
            img_resize(&nm->ino->cur, 0);
            add_op(nm->ino, 1, 0, NULL, 0);
        }
        *fd = f;
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static inode *get_fd(memfs *fs, int fd)
{
    return fd >= 0 && fd < MAXFD ? fs->fds[fd] : NULL;
}

static int fs_close(void *ctx, int fd)
{
    memfs *fs = ctx;
    pthread_mutex_lock(&fs->mu);
    if (fd >= 0 && fd < MAXFD)
        fs->fds[fd] = NULL;
    pthread_mutex_unlock(&fs->mu);
    return 0;
}

static int fs_pread(void *ctx, int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    memfs *fs = ctx;
    pthread_mutex_lock(&fs->mu);
    int rc = tick(fs);
    inode *in = get_fd(fs, fd);
    if (!rc && !in)
        rc = -EBADF;
    if (!rc) {
        size_t k = off >= in->cur.len ? 0 : (size_t)(in->cur.len - off < n ? in->cur.len - off : n);
        if (k)
            memcpy(buf, in->cur.p + off, k);
        *got = k;
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int fs_pwrite(void *ctx, int fd, const void *buf, size_t n, uint64_t off)
{
    memfs *fs = ctx;
    pthread_mutex_lock(&fs->mu);
    int rc = tick(fs);
    inode *in = get_fd(fs, fd);
    if (!rc && !in)
        rc = -EBADF;
    if (!rc) {
        img_write(&in->cur, off, buf, n);
        add_op(in, 0, off, buf, n);
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int fs_sync(void *ctx, int fd)
{
    memfs *fs = ctx;
    pthread_mutex_lock(&fs->mu);
    int rc = tick(fs);
    inode *in = get_fd(fs, fd);
    if (!rc && !in)
        rc = -EBADF;
    if (!rc) {
        img_copy(&in->dur, &in->cur);
        clear_ops(in);
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

/* The WAL (fd2) first, so that a cut between the two leaves WAL records
 * durable whose data is not: the case recovery must catch. The pause
 * between them lets other writers put the next batch in flight meanwhile,
 * as a slow device flush would. */
static int fs_sync2(void *ctx, int fd1, int fd2)
{
    int rc = fs_sync(ctx, fd2);
    if (!rc)
        usleep(20);
    return rc ? rc : fs_sync(ctx, fd1);
}

static int fs_size(void *ctx, int fd, uint64_t *size)
{
    memfs *fs = ctx;
    pthread_mutex_lock(&fs->mu);
    int rc = tick(fs);
    inode *in = get_fd(fs, fd);
    if (!rc && !in)
        rc = -EBADF;
    if (!rc)
        *size = in->cur.len;
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int fs_resize(void *ctx, int fd, uint64_t size)
{
    memfs *fs = ctx;
    pthread_mutex_lock(&fs->mu);
    int rc = tick(fs);
    inode *in = get_fd(fs, fd);
    if (!rc && !in)
        rc = -EBADF;
    if (!rc) {
        img_resize(&in->cur, size);
        add_op(in, 1, size, NULL, 0);
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int fs_rename(void *ctx, const char *from, const char *to)
{
    memfs *fs = ctx;
    pthread_mutex_lock(&fs->mu);
    int rc = tick(fs);
    name *src = rc ? NULL : find(&fs->cur, from);
    if (!rc && !src)
        rc = -ENOENT;
    if (!rc) {
        inode *in = src->ino;
        remove_name(&fs->cur, src);
        name *dst = find(&fs->cur, to);
        if (dst) {
            dst->ino = in;
        } else {
            fs->cur.v = nb_xrealloc(fs->cur.v, (fs->cur.n + 1) * sizeof *fs->cur.v);
            fs->cur.v[fs->cur.n++] = (name){nb_xstrdup(to), in};
        }
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int fs_unlink(void *ctx, const char *path)
{
    memfs *fs = ctx;
    pthread_mutex_lock(&fs->mu);
    int rc = tick(fs);
    name *nm = rc ? NULL : find(&fs->cur, path);
    if (!rc && !nm)
        rc = -ENOENT;
    if (!rc)
        remove_name(&fs->cur, nm);
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

static int fs_sync_dir(void *ctx, const char *dir)
{
    (void)dir;
    memfs *fs = ctx;
    pthread_mutex_lock(&fs->mu);
    int rc = tick(fs);
    if (!rc)
        names_copy(&fs->dur, &fs->cur);
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

const disk_io_ops memfs_ops = {
    .open = fs_open,
    .close = fs_close,
    .pread = fs_pread,
    .pwrite = fs_pwrite,
    .sync = fs_sync,
    .sync2 = fs_sync2,
    .size = fs_size,
    .resize = fs_resize,
    .rename = fs_rename,
    .unlink = fs_unlink,
    .sync_dir = fs_sync_dir,
};
