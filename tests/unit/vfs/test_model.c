/*
 * test_model.c — the model-based randomized test: one random sequence of
 * namespace and data operations (create, write at offsets, truncate,
 * read, stat, mkdir, unlink, rmdir, rename with flags, link, symlink,
 * chmod) runs against vfs and, through syscalls, against a real local
 * directory in lock-step. Every result and errno must match, and at the
 * end the two trees (names, types, sizes, contents, modes, link counts,
 * symlink targets) must be identical.
 *
 * test_single runs one thread over a small name pool (many collisions);
 * test_concurrent runs threads on disjoint subtrees plus create/unlink/
 * rename traffic in one shared directory. Scale: NB_MODEL_OPS (default
 * 3000), reduced under sanitizers, x20 with NB_SOAK=1. Seed: NB_TEST_SEED.
 */
#include <dirent.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vfs_test.h"

static const vfs_cred root_cred = {0, 0, 0, NULL};
static vfs *g_v;
static char *g_local; /* the local directory's path */
static bool g_have_exchange;
static int g_ops = 3000;

/* ---- Both sides of each operation ------------------------------------------------------------ */

static char *lp(const char *path)
{
    return nb_xasprintf("%s/%s", g_local, path);
}

static int sys_rc(long r)
{
    return r < 0 ? -errno : 0;
}

static int v_parent(const char *path, uint64_t *parent, const char **leaf)
{
    return vfs_resolve_parent(g_v, &root_cred, path, parent, leaf);
}

static int v_mkdir(const char *path, uint32_t mode)
{
    uint64_t p;
    const char *leaf;
    int rc = v_parent(path, &p, &leaf);
    return rc ? rc : vfs_mkdir(g_v, &root_cred, p, leaf, mode, NULL);
}

static int l_mkdir(const char *path, uint32_t mode)
{
    char *p = lp(path);
    int rc = sys_rc(mkdir(p, mode));
    free(p);
    return rc;
}

static int v_unlink(const char *path)
{
    uint64_t p;
    const char *leaf;
    int rc = v_parent(path, &p, &leaf);
    return rc ? rc : vfs_unlink(g_v, &root_cred, p, leaf);
}

static int l_unlink(const char *path)
{
    char *p = lp(path);
    int rc = sys_rc(unlink(p));
    free(p);
    return rc;
}

static int v_rmdir(const char *path)
{
    uint64_t p;
    const char *leaf;
    int rc = v_parent(path, &p, &leaf);
    return rc ? rc : vfs_rmdir(g_v, &root_cred, p, leaf);
}

static int l_rmdir(const char *path)
{
    char *p = lp(path);
    int rc = sys_rc(rmdir(p));
    free(p);
    return rc;
}

static int v_rename(const char *a, const char *b, unsigned flags)
{
    uint64_t pa, pb;
    const char *la, *lb;
    int rc = v_parent(a, &pa, &la);
    if (rc == 0)
        rc = v_parent(b, &pb, &lb);
    return rc ? rc : vfs_rename(g_v, &root_cred, pa, la, pb, lb, flags);
}

static int l_rename(const char *a, const char *b, unsigned flags)
{
    char *pa = lp(a), *pb = lp(b);
    int rc = sys_rc(syscall(SYS_renameat2, AT_FDCWD, pa, AT_FDCWD, pb, flags));
    free(pa);
    free(pb);
    return rc;
}

static int v_link(const char *a, const char *b)
{
    vfs_attr at;
    int rc = vfs_resolve(g_v, &root_cred, a, 0, &at);
    uint64_t pb;
    const char *lb;
    if (rc == 0)
        rc = v_parent(b, &pb, &lb);
    return rc ? rc : vfs_link(g_v, &root_cred, at.ino, pb, lb, NULL);
}

static int l_link(const char *a, const char *b)
{
    char *pa = lp(a), *pb = lp(b);
    int rc = sys_rc(link(pa, pb));
    free(pa);
    free(pb);
    return rc;
}

static int v_symlink(const char *target, const char *path)
{
    uint64_t p;
    const char *leaf;
    int rc = v_parent(path, &p, &leaf);
    return rc ? rc : vfs_symlink(g_v, &root_cred, p, leaf, target, NULL);
}

static int l_symlink(const char *target, const char *path)
{
    char *p = lp(path);
    int rc = sys_rc(symlink(target, p));
    free(p);
    return rc;
}

static int v_chmod(const char *path, uint32_t mode)
{
    vfs_attr a;
    int rc = vfs_resolve(g_v, &root_cred, path, VFS_RESOLVE_FOLLOW, &a);
    vfs_sattr sa;
    memset(&sa, 0, sizeof sa);
    sa.valid = VFS_SET_MODE;
    sa.mode = mode;
    return rc ? rc : vfs_setattr(g_v, &root_cred, a.ino, NULL, &sa, NULL);
}

static int l_chmod(const char *path, uint32_t mode)
{
    char *p = lp(path);
    int rc = sys_rc(chmod(p, mode));
    free(p);
    return rc;
}

static int v_truncate(const char *path, uint64_t size)
{
    vfs_attr a;
    int rc = vfs_resolve(g_v, &root_cred, path, VFS_RESOLVE_FOLLOW, &a);
    if (rc == 0 && S_ISDIR(a.mode))
        return -EISDIR;
    vfs_sattr sa;
    memset(&sa, 0, sizeof sa);
    sa.valid = VFS_SET_SIZE;
    sa.size = size;
    return rc ? rc : vfs_setattr(g_v, &root_cred, a.ino, NULL, &sa, NULL);
}

static int l_truncate(const char *path, uint64_t size)
{
    char *p = lp(path);
    int rc = sys_rc(truncate(p, (off_t)size));
    free(p);
    return rc;
}

/* open(path, flags, mode) on the vfs side as the kernel does it. */
static int v_openf(const char *path, int flags, uint32_t mode, vfs_file **f)
{
    vfs_attr a;
    int rc = vfs_resolve(g_v, &root_cred, path, VFS_RESOLVE_FOLLOW, &a);
    if (rc == 0) {
        if ((flags & O_CREAT) && (flags & O_EXCL))
            return -EEXIST;
        if (S_ISDIR(a.mode) && (flags & O_ACCMODE) == O_RDONLY)
            return -EISDIR; /* reads of a directory fail with EISDIR locally too */
        return vfs_file_open(g_v, &root_cred, a.ino, flags & ~(O_CREAT | O_EXCL), f);
    }
    if (rc != -ENOENT || !(flags & O_CREAT))
        return rc;
    uint64_t p;
    const char *leaf;
    rc = v_parent(path, &p, &leaf);
    if (rc == 0 && leaf[strlen(leaf) - 1] == '/')
        return -EISDIR;
    return rc ? rc : vfs_create(g_v, &root_cred, p, leaf, mode, flags, NULL, f);
}

static int v_write(const char *path, int flags, uint64_t off, const uint8_t *buf, size_t len)
{
    vfs_file *f;
    int rc = v_openf(path, O_WRONLY | flags, 0644, &f);
    if (rc != 0)
        return rc;
    if (len)
        rc = vfs_write(f, off, buf, len, NULL);
    int rrc = vfs_release(f);
    return rc ? rc : rrc;
}

static int l_write(const char *path, int flags, uint64_t off, const uint8_t *buf, size_t len)
{
    char *p = lp(path);
    int fd = open(p, O_WRONLY | flags, 0644);
    free(p);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (len) {
        ssize_t w = (flags & O_APPEND) ? write(fd, buf, len) : pwrite(fd, buf, len, (off_t)off);
        rc = w < 0 ? -errno : 0;
    }
    close(fd);
    return rc;
}

static int v_read(const char *path, uint64_t off, uint8_t *buf, size_t len, size_t *got)
{
    vfs_file *f;
    *got = 0;
    int rc = v_openf(path, O_RDONLY, 0, &f);
    if (rc != 0)
        return rc;
    rc = vfs_read(f, off, buf, len, got);
    int rrc = vfs_release(f);
    return rc ? rc : rrc;
}

static int l_read(const char *path, uint64_t off, uint8_t *buf, size_t len, size_t *got)
{
    char *p = lp(path);
    *got = 0;
    int fd = open(p, O_RDONLY);
    free(p);
    if (fd < 0)
        return -errno;
    int rc = 0;
    size_t total = 0;
    while (total < len) {
        ssize_t r = pread(fd, buf + total, len - total, (off_t)(off + total));
        if (r < 0) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        total += (size_t)r;
    }
    *got = total;
    close(fd);
    return rc;
}

static int v_copy(const char *a, const char *b, uint64_t oi, uint64_t oo, size_t len, size_t *n)
{
    vfs_file *fi, *fo;
    *n = 0;
    int rc = v_openf(a, O_RDONLY, 0, &fi);
    if (rc == -EISDIR) {
        /* open(2) of a directory succeeds; copy_file_range then fails,
         * but the local side never calls it for a length of 0 */
        rc = v_openf(b, O_WRONLY | O_CREAT, 0644, &fo);
        if (rc == 0)
            VFS_TEST_IGNORE(vfs_release(fo));
        return rc ? rc : len ? -EISDIR : 0;
    }
    if (rc != 0)
        return rc;
    rc = v_openf(b, O_WRONLY | O_CREAT, 0644, &fo);
    if (rc == 0) {
        /* the same loop as the local side: until done or end of file */
        while (rc == 0 && *n < len) {
            size_t k = 0;
            rc = vfs_copy_range(fi, oi + *n, fo, oo + *n, len - *n, &k);
            if (k == 0)
                break;
            *n += k;
        }
        int r2 = vfs_release(fo);
        rc = rc ? rc : r2;
    }
    int r1 = vfs_release(fi);
    return rc ? rc : r1;
}

static int l_copy(const char *a, const char *b, uint64_t oi, uint64_t oo, size_t len, size_t *n)
{
    char *pa = lp(a), *pb = lp(b);
    *n = 0;
    int rc = 0;
    int fi = open(pa, O_RDONLY), fo = -1;
    if (fi < 0)
        rc = -errno;
    if (rc == 0) {
        fo = open(pb, O_WRONLY | O_CREAT, 0644);
        if (fo < 0)
            rc = -errno;
    }
    while (rc == 0 && *n < len) {
        loff_t i = (loff_t)(oi + *n), o = (loff_t)(oo + *n);
        ssize_t r = copy_file_range(fi, &i, fo, &o, len - *n, 0);
        if (r < 0)
            rc = -errno;
        if (r <= 0)
            break;
        *n += (size_t)r;
    }
    if (fo >= 0)
        close(fo);
    if (fi >= 0)
        close(fi);
    free(pa);
    free(pb);
    return rc;
}

static int v_fallocate(const char *a, int mode, uint64_t off, uint64_t len)
{
    vfs_file *f;
    int rc = v_openf(a, O_WRONLY, 0, &f);
    if (rc != 0)
        return rc;
    rc = vfs_fallocate(f, mode, off, len);
    int r2 = vfs_release(f);
    return rc ? rc : r2;
}

static int l_fallocate(const char *a, int mode, uint64_t off, uint64_t len)
{
    char *p = lp(a);
    int fd = open(p, O_WRONLY);
    free(p);
    if (fd < 0)
        return -errno;
    int rc = fallocate(fd, mode, (off_t)off, (off_t)len) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* ---- The random sequence -----------------------------------------------------------------------
 */

typedef struct worker {
    uint64_t rng;
    const char *base; /* subtree of this worker ("" = everywhere) */
    const char *shared;
    int id;
    int nops;
    uint8_t *buf, *buf2;
    char *fail;   /* first mismatch (owned) */
    int ok, errs; /* operations that succeeded / failed on both sides */
} worker;

static const char *names[] = {"a", "b", "c", "d", "e.txt", "a!"};

static void rand_path(worker *w, char *out, size_t n)
{
    unsigned r = (unsigned)vt_below(&w->rng, 100);
    int depth = r < 45 ? 1 : r < 85 ? 2 : 3;
    size_t len = (size_t)snprintf(out, n, "%s", w->base);
    for (int i = 0; i < depth; i++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", len ? "/" : "",
                                names[vt_below(&w->rng, NB_ARRAY_LEN(names))]);
}

static bool leaf_is_symlink(const char *path)
{
    char *p = lp(path);
    struct stat st;
    bool r = lstat(p, &st) == 0 && S_ISLNK(st.st_mode);
    free(p);
    return r;
}

#define CHECK(w, what, vr, lr)                                                                     \
    do {                                                                                           \
        int vr_ = (vr), lr_ = (lr);                                                                \
        if (vr_ == 0)                                                                              \
            (w)->ok++;                                                                             \
        else                                                                                       \
            (w)->errs++;                                                                           \
        if (getenv("NB_MODEL_TRACE"))                                                              \
            fprintf(stderr, "%s -> %s\n", what, nb_errname(vr_));                                  \
        if (vr_ != lr_ && !(w)->fail)                                                              \
            (w)->fail = nb_xasprintf("op %d %s: vfs %s, local %s", i, what, nb_errname(vr_),       \
                                     nb_errname(lr_));                                             \
    } while (0)

static void run_ops(worker *w)
{
    char a[256], b[256], what[600];
    for (int i = 0; i < w->nops && !w->fail; i++) {
        rand_path(w, a, sizeof a);
        rand_path(w, b, sizeof b);
        unsigned op = (unsigned)vt_below(&w->rng, 100);
        if (op < 8) {
            uint32_t mode = vt_below(&w->rng, 4) ? 0755 : 0700;
            snprintf(what, sizeof what, "mkdir %s", a);
            CHECK(w, what, v_mkdir(a, mode), l_mkdir(a, mode));
        } else if (op < 36) {
            if (leaf_is_symlink(a))
                continue; /* O_CREAT through a symlink: not modelled */
            uint64_t off = vt_below(&w->rng, 4) ? vt_below(&w->rng, 70000) : 0;
            size_t len = (size_t)vt_below(&w->rng, vt_below(&w->rng, 8) ? 5000 : 300000);
            int flags = O_CREAT;
            unsigned f = (unsigned)vt_below(&w->rng, 10);
            if (f == 0)
                flags |= O_TRUNC;
            else if (f == 1)
                flags |= O_EXCL;
            else if (f == 2)
                flags |= O_APPEND;
            vt_fill(vt_rand(&w->rng), w->buf, len);
            snprintf(what, sizeof what, "write %s off %llu len %zu flags %x", a,
                     (unsigned long long)off, len, flags);
            CHECK(w, what, v_write(a, flags, off, w->buf, len),
                  l_write(a, flags, off, w->buf, len));
        } else if (op < 48) {
            uint64_t off = vt_below(&w->rng, 80000);
            size_t len = (size_t)vt_below(&w->rng, 100000);
            size_t g1 = 0, g2 = 0;
            snprintf(what, sizeof what, "read %s off %llu len %zu", a, (unsigned long long)off,
                     len);
            CHECK(w, what, v_read(a, off, w->buf, len, &g1), l_read(a, off, w->buf2, len, &g2));
            if (!w->fail && (g1 != g2 || memcmp(w->buf, w->buf2, g1) != 0))
                w->fail = nb_xasprintf("op %d %s: vfs read %zu bytes, local %zu, or bytes differ",
                                       i, what, g1, g2);
        } else if (op < 54) {
            uint64_t size = vt_below(&w->rng, 3) ? vt_below(&w->rng, 90000) : 0;
            snprintf(what, sizeof what, "truncate %s %llu", a, (unsigned long long)size);
            CHECK(w, what, v_truncate(a, size), l_truncate(a, size));
        } else if (op < 64) {
            snprintf(what, sizeof what, "unlink %s", a);
            CHECK(w, what, v_unlink(a), l_unlink(a));
        } else if (op < 68) {
            snprintf(what, sizeof what, "rmdir %s", a);
            CHECK(w, what, v_rmdir(a), l_rmdir(a));
        } else if (op < 80) {
            unsigned flags = 0;
            unsigned f = (unsigned)vt_below(&w->rng, 6);
            if (f == 0)
                flags = RENAME_NOREPLACE;
            else if (f == 1 && g_have_exchange)
                flags = RENAME_EXCHANGE;
            snprintf(what, sizeof what, "rename %s %s flags %u", a, b, flags);
            CHECK(w, what, v_rename(a, b, flags), l_rename(a, b, flags));
        } else if (op < 85) {
            snprintf(what, sizeof what, "link %s %s", a, b);
            CHECK(w, what, v_link(a, b), l_link(a, b));
        } else if (op < 88) {
            /* targets relative to the link's directory, inside the tree */
            const char *t = names[vt_below(&w->rng, NB_ARRAY_LEN(names))];
            char target[64];
            if (vt_below(&w->rng, 2))
                snprintf(target, sizeof target, "%s", t);
            else
                snprintf(target, sizeof target, "%s/%s", t,
                         names[vt_below(&w->rng, NB_ARRAY_LEN(names))]);
            snprintf(what, sizeof what, "symlink %s -> %s", a, target);
            CHECK(w, what, v_symlink(target, a), l_symlink(target, a));
        } else if (op < 91) {
            if (leaf_is_symlink(b))
                continue;
            uint64_t oi = vt_below(&w->rng, 60000), oo = vt_below(&w->rng, 60000);
            size_t len = (size_t)vt_below(&w->rng, 70000), n1, n2;
            snprintf(what, sizeof what, "copy %s@%llu %s@%llu %zu", a, (unsigned long long)oi, b,
                     (unsigned long long)oo, len);
            CHECK(w, what, v_copy(a, b, oi, oo, len, &n1), l_copy(a, b, oi, oo, len, &n2));
            if (!w->fail && n1 != n2)
                w->fail = nb_xasprintf("op %d %s: vfs copied %zu, local %zu", i, what, n1, n2);
        } else if (op < 93) {
            static const int modes[] = {
                0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE};
            int mode = modes[vt_below(&w->rng, NB_ARRAY_LEN(modes))];
            uint64_t off = vt_below(&w->rng, 80000), len = vt_below(&w->rng, 40000);
            snprintf(what, sizeof what, "fallocate %s mode %x off %llu len %llu", a, mode,
                     (unsigned long long)off, (unsigned long long)len);
            CHECK(w, what, v_fallocate(a, mode, off, len), l_fallocate(a, mode, off, len));
        } else if (op < 96) {
            uint32_t mode = (uint32_t)(vt_below(&w->rng, 2) ? 0644 : 0755) |
                            (vt_below(&w->rng, 4) == 0 ? 01000 : 0);
            snprintf(what, sizeof what, "chmod %s %o", a, mode);
            CHECK(w, what, v_chmod(a, mode), l_chmod(a, mode));
        } else if (w->shared) {
            /* traffic in one directory shared by every worker */
            char s1[128], s2[128];
            snprintf(s1, sizeof s1, "%s/w%d-%d", w->shared, w->id, (int)vt_below(&w->rng, 8));
            snprintf(s2, sizeof s2, "%s/w%d-%d", w->shared, w->id, (int)vt_below(&w->rng, 8));
            unsigned k = (unsigned)vt_below(&w->rng, 3);
            if (k == 0) {
                snprintf(what, sizeof what, "shared write %s", s1);
                vt_fill(vt_rand(&w->rng), w->buf, 100);
                CHECK(w, what, v_write(s1, O_CREAT, 0, w->buf, 100),
                      l_write(s1, O_CREAT, 0, w->buf, 100));
            } else if (k == 1) {
                snprintf(what, sizeof what, "shared unlink %s", s1);
                CHECK(w, what, v_unlink(s1), l_unlink(s1));
            } else {
                snprintf(what, sizeof what, "shared rename %s %s", s1, s2);
                CHECK(w, what, v_rename(s1, s2, 0), l_rename(s1, s2, 0));
            }
        }
    }
}

/* ---- Comparing the trees -----------------------------------------------------------------------
 */

static void compare_file(const char *path, uint64_t ino, uint64_t size)
{
    vfs_file *f;
    ASSERT_OK(vfs_file_open(g_v, NULL, ino, O_RDONLY, &f));
    uint8_t *a = nb_xmalloc(size + 1), *b = nb_xmalloc(size + 1);
    size_t got = 0, lgot = 0;
    ASSERT_OK(vfs_read(f, 0, a, size + 1, &got));
    ASSERT_OK(vfs_release(f));
    ASSERT_OK(l_read(path, 0, b, size + 1, &lgot));
    if (got != lgot || memcmp(a, b, got) != 0)
        fail_msg("%s: contents differ (%zu vs %zu bytes)", path, got, lgot);
    free(a);
    free(b);
}

typedef struct names_acc {
    char **v;
    size_t n, cap;
} names_acc;

static void acc_add(names_acc *acc, const char *name)
{
    if (acc->n == acc->cap) {
        acc->cap = acc->cap ? acc->cap * 2 : 16;
        acc->v = nb_xrealloc(acc->v, acc->cap * sizeof(char *));
    }
    acc->v[acc->n++] = nb_xstrdup(name);
}

static int acc_cb(void *arg, const vfs_dirent *e)
{
    acc_add(arg, e->name);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void compare_tree(const char *rel, uint64_t ino)
{
    names_acc vn = {0}, ln = {0};
    ASSERT_OK(vfs_readdir(g_v, ino, 0, 0, acc_cb, &vn));
    char *p = lp(rel);
    DIR *d = opendir(p);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            acc_add(&ln, de->d_name);
    closedir(d);
    free(p);
    if (vn.n)
        qsort(vn.v, vn.n, sizeof(char *), cmp_str);
    if (ln.n)
        qsort(ln.v, ln.n, sizeof(char *), cmp_str);
    if (vn.n != ln.n)
        fail_msg("%s: vfs has %zu entries, local %zu", rel, vn.n, ln.n);
    for (size_t i = 0; i < vn.n; i++) {
        if (strcmp(vn.v[i], ln.v[i]) != 0)
            fail_msg("%s: entry %zu is %s in vfs, %s locally", rel, i, vn.v[i], ln.v[i]);
        char *child = rel[0] ? nb_xasprintf("%s/%s", rel, vn.v[i]) : nb_xstrdup(vn.v[i]);
        vfs_attr a;
        ASSERT_OK(vfs_lookup(g_v, NULL, ino, vn.v[i], &a));
        char *cp = lp(child);
        struct stat st;
        assert_int_equal(lstat(cp, &st), 0);
        free(cp);
        if (a.mode != (uint32_t)st.st_mode || a.nlink != (uint32_t)st.st_nlink ||
            (!S_ISDIR(a.mode) && a.size != (uint64_t)st.st_size))
            fail_msg("%s: vfs mode %o nlink %u size %llu, local mode %o nlink %u size %llu", child,
                     a.mode, a.nlink, (unsigned long long)a.size, (unsigned)st.st_mode,
                     (unsigned)st.st_nlink, (unsigned long long)st.st_size);
        if (S_ISDIR(a.mode))
            compare_tree(child, a.ino);
        else if (S_ISREG(a.mode))
            compare_file(child, a.ino, a.size);
        else if (S_ISLNK(a.mode)) {
            nb_buf t = NB_BUF_INIT;
            ASSERT_OK(vfs_readlink(g_v, a.ino, &t));
            char lt[512];
            char *cp2 = lp(child);
            ssize_t n = readlink(cp2, lt, sizeof lt - 1);
            free(cp2);
            assert_true(n >= 0);
            lt[n] = 0;
            assert_string_equal((char *)t.data, lt);
            nb_buf_free(&t);
        }
        free(child);
    }
    for (size_t i = 0; i < vn.n; i++)
        free(vn.v[i]);
    for (size_t i = 0; i < ln.n; i++)
        free(ln.v[i]);
    free(vn.v);
    free(ln.v);
}

/* ---- Tests ----------------------------------------------------------------------------------- */

static char *g_vdir;

static void setup_dirs(const char *name)
{
    umask(0);
    if (g_v)
        vfs_close(g_v); /* a failed test left it open */
    g_v = NULL;
    if (g_local)
        nb_test_rmdir(g_local);
    if (g_vdir)
        nb_test_rmdir(g_vdir);
    free(g_local);
    free(g_vdir);
    char *n1 = nb_xasprintf("%s_local", name), *n2 = nb_xasprintf("%s_vfs", name);
    g_local = nb_test_dir(n1);
    g_vdir = nb_test_dir(n2);
    free(n1);
    free(n2);
    g_v = vt_open(g_vdir);
    /* Does the local file system support RENAME_EXCHANGE? */
    char *x = lp("x1"), *y = lp("x2");
    assert_int_equal(mkdir(x, 0755), 0);
    assert_int_equal(mkdir(y, 0755), 0);
    g_have_exchange = syscall(SYS_renameat2, AT_FDCWD, x, AT_FDCWD, y, RENAME_EXCHANGE) == 0;
    assert_int_equal(rmdir(x), 0);
    assert_int_equal(rmdir(y), 0);
    free(x);
    free(y);
    const char *s = getenv("NB_MODEL_OPS");
    g_ops = s ? atoi(s) : 3000;
#ifdef NB_SANITIZED
    g_ops /= 3;
#endif
    if (getenv("NB_SOAK"))
        g_ops *= 20;
}

static void finish(void)
{
    compare_tree("", VFS_ROOT_INO);
    vfs_close(g_v);
    g_v = NULL;
    /* After a reopen the tree is the same and fsck is clean. */
    g_v = vt_open(g_vdir);
    compare_tree("", VFS_ROOT_INO);
    vfs_maint_report r;
    ASSERT_OK(vfs_maintain(g_v, &r));
    compare_tree("", VFS_ROOT_INO);
    vfs_close(g_v);
    g_v = NULL;
    ASSERT_OK(vfs_fsck(g_vdir, false, stderr));
    nb_test_rmdir(g_local);
    nb_test_rmdir(g_vdir);
}

static void test_single(void **state)
{
    (void)state;
    setup_dirs("vfs_model1");
    worker w;
    memset(&w, 0, sizeof w);
    w.rng = nb_test_seed();
    w.base = "";
    w.nops = g_ops;
    w.buf = nb_xmalloc(300000);
    w.buf2 = nb_xmalloc(300000);
    run_ops(&w);
    fprintf(stderr, "%d operations succeeded, %d failed alike on both sides\n", w.ok, w.errs);
    free(w.buf);
    free(w.buf2);
    if (w.fail) {
        char *f = w.fail;
        fail_msg("%s", f);
    }
    finish();
}

static void *worker_main(void *arg)
{
    run_ops(arg);
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    setup_dirs("vfs_model4");
    enum { NT = 4 };
    worker w[NT];
    pthread_t th[NT];
    char bases[NT][16];
    uint64_t seed = nb_test_seed();
    assert_int_equal(l_mkdir("shared", 0755), 0);
    ASSERT_OK(v_mkdir("shared", 0755));
    for (int t = 0; t < NT; t++) {
        snprintf(bases[t], sizeof bases[t], "t%d", t);
        assert_int_equal(l_mkdir(bases[t], 0755), 0);
        ASSERT_OK(v_mkdir(bases[t], 0755));
        memset(&w[t], 0, sizeof w[t]);
        w[t].rng = seed + (uint64_t)t * 7919;
        w[t].base = bases[t];
        w[t].shared = "shared";
        w[t].id = t;
        w[t].nops = g_ops / NT;
        w[t].buf = nb_xmalloc(300000);
        w[t].buf2 = nb_xmalloc(300000);
        assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    }
    char *fail = NULL;
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        free(w[t].buf);
        free(w[t].buf2);
        if (w[t].fail && !fail)
            fail = w[t].fail;
        else
            free(w[t].fail);
    }
    if (fail)
        fail_msg("%s", fail);
    finish();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single),
        cmocka_unit_test(test_concurrent),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (g_v)
        vfs_close(g_v);
    if (g_local)
        nb_test_rmdir(g_local);
    if (g_vdir)
        nb_test_rmdir(g_vdir);
    free(g_local);
    free(g_vdir);
    return rc;
}
