/*
 * test_meta_model.c — model-based randomized test of meta against the
 * kernel's own file system.
 *
 * The same random sequence of namespace operations (mkdir, create with
 * O_EXCL, mkfifo, unlink, rmdir, rename/renameat2 with NOREPLACE and
 * EXCHANGE, link, symlink, chmod, truncate, writes, stat, readlink, and
 * open-unlink-write-close) runs against meta and, through syscalls,
 * against a real directory under nb_test_dir(). Every result and errno
 * must match. At the end the two trees must be identical: names, types,
 * modes, sizes, link counts, symlink targets, and file contents (writes
 * are published to meta as slices whose bytes are a function of the slice
 * id, so meta's chunk maps can be checked byte for byte against the real
 * file, holes included).
 *
 * Paths are 1-3 components over a 4-name alphabet so that operations
 * collide often. Symlink targets never resolve, so walking through a
 * symlink is ENOENT on both sides.
 *
 * Scale: NB_MODEL_OPS (default 4000; 1500 under sanitizers), NB_SOAK=1 or
 * the "soak" argument for a long run over many seeds. NB_TEST_SEED
 * replays a failure.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/fs.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "meta/meta.h"

#include "test.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE  (1 << 1)
#endif

typedef struct model {
    meta *m;
    char *dir;
    char *real;
    int rootfd;
    meta_cred cred;
    uint32_t groups[64];
    uint64_t rng;
    long step;
    uint64_t seed;
    long ok, errs[160]; /* results by -errno, for NB_MODEL_VERBOSE */
    meta_cred self;     /* the process's own credentials */
    int switch_creds;   /* root: each step runs as a random user (setfsuid) */
} model;

/* Users the steps run as when the process is root: the kernel checks
 * permissions with the thread's fsuid/fsgid and groups, meta with the
 * same meta_cred. */
static const uint32_t alice_groups[] = {1000, 1002};
static const uint32_t bob_groups[] = {1001};
static const meta_cred users[] = {
    {0, 0, 0, NULL},
    {1000, 1000, 2, alice_groups},
    {1001, 1001, 1, bob_groups},
};

static void become(const meta_cred *c)
{
    gid_t g[8];
    for (uint32_t i = 0; i < c->ngroups; i++)
        g[i] = c->groups[i];
    /* Order matters: groups and fsgid need the capabilities fsuid 0 has. */
    setfsuid(0);
    if (setgroups(c->ngroups, g) != 0)
        fail_msg("setgroups: %s", strerror(errno));
    setfsgid(c->gid);
    setfsuid(c->uid);
    if ((uint32_t)setfsuid((uid_t)-1) != c->uid)
        fail_msg("setfsuid(%u) did not take", c->uid);
}

static uint64_t rnd(model *M)
{
    /* xorshift64* */
    M->rng ^= M->rng >> 12;
    M->rng ^= M->rng << 25;
    M->rng ^= M->rng >> 27;
    return M->rng * 2685821657736338717ull;
}

static uint32_t pick(model *M, uint32_t n)
{
    return (uint32_t)(rnd(M) % n);
}

static const char *const names[] = {"a", "b", "c", "d"};

static void rand_path(model *M, char *out, size_t cap)
{
    int depth = 1 + (int)pick(M, 3);
    out[0] = 0;
    for (int i = 0; i < depth; i++) {
        if (i)
            strncat(out, "/", cap - strlen(out) - 1);
        strncat(out, names[pick(M, 4)], cap - strlen(out) - 1);
    }
}

/* A path under an existing directory: descends through real directories
 * at random, then appends a random name. Keeps the success rate up once
 * files block the short paths. */
static void rand_path_in_tree(model *M, char *out, size_t cap)
{
    out[0] = 0;
    for (int depth = 0; depth < 3 && pick(M, 3) != 0; depth++) {
        int fd = openat(M->rootfd, out[0] ? out : ".", O_RDONLY | O_DIRECTORY);
        if (fd < 0)
            break;
        DIR *d = fdopendir(fd);
        char dirs[16][8];
        int n = 0;
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL && n < 16) {
            if (de->d_type == DT_DIR && de->d_name[0] != '.' && strlen(de->d_name) < 8)
                memcpy(dirs[n++], de->d_name, strlen(de->d_name) + 1);
        }
        if (d)
            closedir(d);
        if (n == 0)
            break;
        if (out[0])
            strncat(out, "/", cap - strlen(out) - 1);
        strncat(out, dirs[pick(M, (uint32_t)n)], cap - strlen(out) - 1);
    }
    if (out[0])
        strncat(out, "/", cap - strlen(out) - 1);
    strncat(out, names[pick(M, 4)], cap - strlen(out) - 1);
}

static uint8_t pat(uint64_t id, uint64_t j)
{
    return (uint8_t)(1 + (id * 131 + j) % 251);
}

#define CHECK_RC(what, real, mine)                                                                 \
    do {                                                                                           \
        int r_ = (real), m_ = (mine);                                                              \
        if (getenv("NB_MODEL_TRACE"))                                                              \
            fprintf(stderr, "%ld uid %u: %s -> %s / %s\n", M->step, M->cred.uid, what,             \
                    nb_errname(r_), nb_errname(m_));                                               \
        if (r_ == 0)                                                                               \
            M->ok++;                                                                               \
        else if (r_ > -160)                                                                        \
            M->errs[-r_]++;                                                                        \
        if (r_ != m_)                                                                              \
            fail_msg("seed %llu step %ld: %s: kernel %s, meta %s", (unsigned long long)M->seed,    \
                     M->step, what, nb_errname(r_), nb_errname(m_));                               \
    } while (0)

/* ---- path resolution on the meta side ---- */

/* Walks all but the last component. *last points into buf. */
static int resolve_parent(model *M, char *buf, uint64_t *parent, char **last)
{
    uint64_t cur = META_ROOT_INO;
    char *p = buf;
    for (;;) {
        char *slash = strchr(p, '/');
        if (!slash) {
            /* The kernel's path walk checks search permission on the
             * last directory too, before any operation looks at the name. */
            *parent = cur;
            *last = p;
            return meta_access(M->m, &M->cred, cur, X_OK);
        }
        *slash = 0;
        meta_attr a;
        int rc = meta_lookup(M->m, &M->cred, cur, p, &a);
        if (rc != 0)
            return rc;
        if (S_ISLNK(a.mode))
            return -ENOENT; /* targets never resolve */
        if (!S_ISDIR(a.mode))
            return -ENOTDIR;
        cur = a.ino;
        p = slash + 1;
    }
}

static int resolve(model *M, const char *path, int follow, meta_attr *out)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", path);
    uint64_t parent;
    char *last;
    int rc = resolve_parent(M, buf, &parent, &last);
    if (rc == 0)
        rc = meta_lookup(M->m, &M->cred, parent, last, out);
    if (rc == 0 && follow && S_ISLNK(out->mode))
        rc = -ENOENT;
    return rc;
}

static int sys(int r)
{
    return r < 0 ? -errno : 0;
}

/* ---- operations ---- */

static uint32_t rand_mode(model *M, int dir)
{
    static const uint32_t fm[] = {0644, 0600, 0755, 0444, 0777, 04755, 02755, 0640};
    static const uint32_t dm[] = {0755, 0700, 0777, 0555, 01777, 0750};
    return dir ? dm[pick(M, NB_ARRAY_LEN(dm))] : fm[pick(M, NB_ARRAY_LEN(fm))];
}

static void op_make(model *M, const char *p, int kind)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", p);
    uint32_t mode = rand_mode(M, kind == 0);
    int r;
    if (kind == 0) {
        r = sys(mkdirat(M->rootfd, p, mode));
    } else if (kind == 1) {
        int fd = openat(M->rootfd, p, O_CREAT | O_EXCL | O_WRONLY, mode);
        r = sys(fd);
        if (fd >= 0)
            close(fd);
    } else {
        r = sys(mkfifoat(M->rootfd, p, mode));
    }
    uint64_t parent;
    char *last;
    int mr = resolve_parent(M, buf, &parent, &last);
    meta_attr a;
    if (mr == 0) {
        if (kind == 0) {
            mr = meta_mkdir(M->m, &M->cred, parent, last, mode, &a);
        } else if (kind == 1) {
            mr = meta_create(M->m, &M->cred, parent, last, mode, &a);
            if (mr == 0)
                ASSERT_OK(meta_release(M->m, a.ino));
        } else {
            mr = meta_mknod(M->m, &M->cred, parent, last, S_IFIFO | mode, 0, &a);
        }
    }
    CHECK_RC(kind == 0 ? "mkdir" : kind == 1 ? "create" : "mkfifo", r, mr);
}

static void op_remove(model *M, const char *p, int isdir)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", p);
    int r = sys(unlinkat(M->rootfd, p, isdir ? AT_REMOVEDIR : 0));
    uint64_t parent;
    char *last;
    int mr = resolve_parent(M, buf, &parent, &last);
    if (mr == 0)
        mr = isdir ? meta_rmdir(M->m, &M->cred, parent, last)
                   : meta_unlink(M->m, &M->cred, parent, last);
    CHECK_RC(isdir ? "rmdir" : "unlink", r, mr);
}

static void op_rename(model *M, const char *p1, const char *p2, unsigned flags)
{
    char b1[64], b2[64];
    snprintf(b1, sizeof(b1), "%s", p1);
    snprintf(b2, sizeof(b2), "%s", p2);
    int r = sys((int)syscall(SYS_renameat2, M->rootfd, p1, M->rootfd, p2, flags));
    uint64_t d1, d2;
    char *l1, *l2;
    int mr = resolve_parent(M, b1, &d1, &l1);
    if (mr == 0)
        mr = resolve_parent(M, b2, &d2, &l2);
    if (mr == 0)
        mr = meta_rename(M->m, &M->cred, d1, l1, d2, l2, flags);
    char what[160];
    snprintf(what, sizeof(what), "rename(%s, %s, %u)", p1, p2, flags);
    CHECK_RC(what, r, mr);
}

static void op_link(model *M, const char *p1, const char *p2)
{
    char b2[64];
    snprintf(b2, sizeof(b2), "%s", p2);
    int r = sys(linkat(M->rootfd, p1, M->rootfd, p2, 0));
    meta_attr a;
    uint64_t d2;
    char *l2;
    int mr = resolve(M, p1, 0, &a);
    if (mr == 0)
        mr = resolve_parent(M, b2, &d2, &l2);
    if (mr == 0)
        mr = meta_link(M->m, &M->cred, a.ino, d2, l2, &a);
    char what[160];
    snprintf(what, sizeof(what), "link(%s, %s)", p1, p2);
    CHECK_RC(what, r, mr);
}

static void op_symlink(model *M, const char *p)
{
    char target[32], buf[64];
    snprintf(target, sizeof(target), "zz/nowhere-%u", pick(M, 1000));
    snprintf(buf, sizeof(buf), "%s", p);
    int r = sys(symlinkat(target, M->rootfd, p));
    uint64_t parent;
    char *last;
    meta_attr a;
    int mr = resolve_parent(M, buf, &parent, &last);
    if (mr == 0)
        mr = meta_symlink(M->m, &M->cred, parent, last, target, &a);
    CHECK_RC("symlink", r, mr);
}

static void op_chmod(model *M, const char *p)
{
    meta_attr a;
    int mr = resolve(M, p, 1, &a);
    uint32_t mode = rand_mode(M, mr == 0 && S_ISDIR(a.mode));
    int r = sys(fchmodat(M->rootfd, p, mode, 0));
    if (mr == 0) {
        meta_sattr sa = {.valid = META_SET_MODE, .mode = mode};
        mr = meta_setattr(M->m, &M->cred, a.ino, &sa, &a);
    }
    CHECK_RC("chmod", r, mr);
}

static void op_truncate(model *M, const char *p)
{
    static const uint64_t sizes[] = {
        0, 1, 100, 4096, 5000, 1 << 20, (64u << 20) - 1, (64u << 20) + 3, 130u << 20};
    uint64_t size = sizes[pick(M, NB_ARRAY_LEN(sizes))];
    char full[512];
    snprintf(full, sizeof(full), "%s/%s", M->real, p);
    int r = sys(truncate(full, (off_t)size));
    meta_attr a;
    int mr = resolve(M, p, 1, &a);
    if (mr == 0) {
        meta_sattr sa = {.valid = META_SET_SIZE, .size = size};
        mr = meta_setattr(M->m, &M->cred, a.ino, &sa, &a);
    }
    CHECK_RC("truncate", r, mr);
}

static void op_chown(model *M, const char *p)
{
    static const int uids[] = {-1, 0, 1000, 1001};
    static const int gids[] = {-1, 0, 1000, 1001, 1002};
    int u = uids[pick(M, 4)], g = gids[pick(M, 5)];
    if (u == -1 && g == -1)
        g = 1002;
    int r = sys(fchownat(M->rootfd, p, (uid_t)u, (gid_t)g, AT_SYMLINK_NOFOLLOW));
    meta_attr a;
    int mr = resolve(M, p, 0, &a);
    if (mr == 0) {
        meta_sattr sa = {0};
        if (u != -1) {
            sa.valid |= META_SET_UID;
            sa.uid = (uint32_t)u;
        }
        if (g != -1) {
            sa.valid |= META_SET_GID;
            sa.gid = (uint32_t)g;
        }
        mr = meta_setattr(M->m, &M->cred, a.ino, &sa, &a);
    }
    char what[96];
    snprintf(what, sizeof(what), "chown(%s, %d, %d) as %u", p, u, g, M->cred.uid);
    CHECK_RC(what, r, mr);
}

static void op_utimes(model *M, const char *p)
{
    int now = pick(M, 2);
    struct timespec ts[2] = {{1000, 5}, {2000, 7}};
    int r = sys(utimensat(M->rootfd, p, now ? NULL : ts, 0));
    meta_attr a;
    int mr = resolve(M, p, 1, &a);
    if (mr == 0) {
        meta_sattr sa = {0};
        if (now) {
            sa.valid = META_SET_ATIME_NOW | META_SET_MTIME_NOW;
        } else {
            sa.valid = META_SET_ATIME | META_SET_MTIME;
            sa.atime_ns = 1000 * 1000000000ll + 5;
            sa.mtime_ns = 2000 * 1000000000ll + 7;
        }
        mr = meta_setattr(M->m, &M->cred, a.ino, &sa, &a);
    }
    CHECK_RC(now ? "utimes(now)" : "utimes(times)", r, mr);
}

static void op_xattr(model *M, const char *p)
{
    static const char *const xn[] = {"user.a", "user.b", "trusted.t"};
    const char *name = xn[pick(M, M->cred.uid == 0 ? 3 : 2)];
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", M->real, p);
    meta_attr a;
    int mr = resolve(M, p, 0, &a);
    char what[96];
    switch (pick(M, 3)) {
    case 0: {
        static const int fl[] = {0, XATTR_CREATE, XATTR_REPLACE};
        int f = fl[pick(M, 3)];
        char val[16];
        int n = snprintf(val, sizeof(val), "v%u", pick(M, 1000));
        int r = sys(lsetxattr(path, name, val, (size_t)n, f));
        if (mr == 0)
            mr = meta_xattr_set(M->m, &M->cred, a.ino, name, nb_slice_of(val, (size_t)n), f);
        snprintf(what, sizeof(what), "setxattr(%s, %s, %d)", p, name, f);
        CHECK_RC(what, r, mr);
        break;
    }
    case 1: {
        char val[64];
        ssize_t n = lgetxattr(path, name, val, sizeof(val));
        int r = n < 0 ? -errno : 0;
        nb_buf b = NB_BUF_INIT;
        if (mr == 0)
            mr = meta_xattr_get(M->m, &M->cred, a.ino, name, &b);
        snprintf(what, sizeof(what), "getxattr(%s, %s)", p, name);
        CHECK_RC(what, r, mr);
        if (r == 0 && ((size_t)n != b.len || memcmp(val, b.data, b.len) != 0))
            fail_msg("seed %llu step %ld: %s: values differ", (unsigned long long)M->seed, M->step,
                     what);
        nb_buf_free(&b);
        break;
    }
    default: {
        int r = sys(lremovexattr(path, name));
        if (mr == 0)
            mr = meta_xattr_remove(M->m, &M->cred, a.ino, name);
        snprintf(what, sizeof(what), "removexattr(%s, %s)", p, name);
        CHECK_RC(what, r, mr);
        break;
    }
    }
}

/* Publishes [off, off+len) of a new slice, split at chunk boundaries. */
static int meta_write_range(model *M, uint64_t ino, uint64_t off, uint32_t len, uint64_t *id_out)
{
    uint64_t id;
    ASSERT_OK(meta_id_alloc(M->m, META_ID_SLICE, 1, &id));
    meta_write w[2];
    size_t n = 0;
    for (uint64_t o = off; o < off + len;) {
        uint32_t pos = (uint32_t)(o % META_CHUNK_SIZE);
        uint64_t room = META_CHUNK_SIZE - pos, left = off + len - o;
        uint32_t k = (uint32_t)(left < room ? left : room);
        w[n].chunk = (uint32_t)(o / META_CHUNK_SIZE);
        w[n].slice =
            (meta_slice){.id = id, .size = len, .off = (uint32_t)(o - off), .len = k, .pos = pos};
        n++;
        o += k;
    }
    *id_out = id;
    /* A write by anyone but root drops setuid/setgid, as Linux does. */
    unsigned flags = M->cred.uid != 0 ? META_PUBLISH_KILLPRIV : 0;
    return meta_publish(M->m, ino, w, n, 0, flags, 0, nb_slice_of(NULL, 0), 0, NULL);
}

static uint64_t rand_off(model *M)
{
    switch (pick(M, 4)) {
    case 0:
        return pick(M, 20000);
    case 1:
        return (64u << 20) - pick(M, 9000); /* across the chunk boundary */
    case 2:
        return pick(M, 140u << 20);
    default:
        return pick(M, 4096) * 4096ull;
    }
}

static void real_write(model *M, int fd, uint64_t id, uint64_t off, uint32_t len)
{
    uint8_t *buf = nb_xmalloc(len);
    for (uint32_t j = 0; j < len; j++)
        buf[j] = pat(id, j);
    ASSERT_OK(nb_pwrite_full(fd, buf, len, (off_t)off));
    free(buf);
    (void)M;
}

static void op_write(model *M, const char *p)
{
    uint64_t off = rand_off(M);
    uint32_t len = 1 + pick(M, 8192);
    int fd = openat(M->rootfd, p, O_WRONLY | O_NONBLOCK);
    int r = sys(fd);
    meta_attr a;
    int mr = resolve(M, p, 1, &a);
    if (mr == 0 && S_ISDIR(a.mode))
        mr = -EISDIR;
    if (mr == 0)
        mr = meta_access(M->m, &M->cred, a.ino, W_OK);
    if (mr == 0 && (S_ISFIFO(a.mode) || S_ISSOCK(a.mode)))
        mr = -ENXIO;
    CHECK_RC("open for write", r, mr);
    if (fd < 0)
        return;
    uint64_t id;
    ASSERT_OK(meta_write_range(M, a.ino, off, len, &id));
    real_write(M, fd, id, off, len);
    close(fd);
}

static void compare_stat(model *M, const char *what, const struct stat *st, const meta_attr *a)
{
    if ((st->st_mode & S_IFMT) != (a->mode & S_IFMT) ||
        (st->st_mode & 07777) != (a->mode & 07777) || st->st_nlink != a->nlink ||
        ((S_ISREG(st->st_mode) || S_ISLNK(st->st_mode)) && (uint64_t)st->st_size != a->size))
        fail_msg("seed %llu step %ld: %s: kernel mode %o nlink %lu size %lld, meta mode %o nlink "
                 "%u size %llu",
                 (unsigned long long)M->seed, M->step, what, st->st_mode,
                 (unsigned long)st->st_nlink, (long long)st->st_size, a->mode, a->nlink,
                 (unsigned long long)a->size);
}

static void op_stat(model *M, const char *p)
{
    struct stat st;
    int r = sys(fstatat(M->rootfd, p, &st, AT_SYMLINK_NOFOLLOW));
    meta_attr a;
    int mr = resolve(M, p, 0, &a);
    CHECK_RC("stat", r, mr);
    if (r == 0)
        compare_stat(M, p, &st, &a);
    if (r == 0 && S_ISLNK(st.st_mode)) {
        char t[128];
        ssize_t n = readlinkat(M->rootfd, p, t, sizeof(t));
        nb_buf b = NB_BUF_INIT;
        ASSERT_OK(meta_readlink(M->m, a.ino, &b));
        assert_true(n >= 0 && (size_t)n == b.len && memcmp(t, b.data, b.len) == 0);
        nb_buf_free(&b);
    }
}

/* Open a regular file, unlink it, write through the open file, close. */
static void op_open_unlink(model *M, const char *p)
{
    struct stat st;
    if (fstatat(M->rootfd, p, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
        return;
    int fd = openat(M->rootfd, p, O_RDWR);
    if (fd < 0)
        return; /* not ours to write */
    meta_attr a;
    ASSERT_OK(resolve(M, p, 0, &a));
    ASSERT_OK(meta_open_inode(M->m, a.ino));
    op_remove(M, p, 0);
    uint64_t off = rand_off(M), id;
    uint32_t len = 1 + pick(M, 4096);
    ASSERT_OK(meta_write_range(M, a.ino, off, len, &id));
    real_write(M, fd, id, off, len);
    ASSERT_OK(fstat(fd, &st));
    ASSERT_OK(meta_getattr(M->m, a.ino, &a));
    compare_stat(M, "open-unlinked file", &st, &a);
    close(fd);
    ASSERT_OK(meta_release(M->m, a.ino));
    if (st.st_nlink == 0)
        ASSERT_RC(meta_getattr(M->m, a.ino, &a), -ENOENT);
}

static void step(model *M)
{
    char p1[64], p2[64];
    if (pick(M, 2))
        rand_path(M, p1, sizeof(p1));
    else
        rand_path_in_tree(M, p1, sizeof(p1));
    if (pick(M, 2))
        rand_path(M, p2, sizeof(p2));
    else
        rand_path_in_tree(M, p2, sizeof(p2));
    if (M->switch_creds) {
        uint32_t u = pick(M, 4);
        M->cred = users[u < 2 ? 0 : u - 1];
        become(&M->cred);
    }
    uint32_t w = pick(M, 114);
    if (w >= 100) {
        if (w < 104)
            op_chown(M, p1);
        else if (w < 108)
            op_utimes(M, p1);
        else
            op_xattr(M, p1);
    } else if (w < 12)
        op_make(M, p1, 0);
    else if (w < 24)
        op_make(M, p1, 1);
    else if (w < 27)
        op_make(M, p1, 2);
    else if (w < 36)
        op_remove(M, p1, 0);
    else if (w < 44)
        op_remove(M, p1, 1);
    else if (w < 54)
        op_rename(M, p1, p2, 0);
    else if (w < 58)
        op_rename(M, p1, p2, RENAME_NOREPLACE);
    else if (w < 63)
        op_rename(M, p1, p2, RENAME_EXCHANGE);
    else if (w < 70)
        op_link(M, p1, p2);
    else if (w < 75)
        op_symlink(M, p1);
    else if (w < 80)
        op_chmod(M, p1);
    else if (w < 85)
        op_truncate(M, p1);
    else if (w < 93)
        op_write(M, p1);
    else if (w < 98)
        op_stat(M, p1);
    else
        op_open_unlink(M, p1);
    if (M->switch_creds) {
        M->cred = M->self;
        become(&M->self);
    }
}

/* ---- final comparison ---- */

typedef struct namelist {
    char n[16][8];
    int count;
} namelist;

static int list_cb(void *arg, const meta_dirent *e)
{
    namelist *l = arg;
    NB_ASSERT(l->count < 16 && e->name_len < 8);
    snprintf(l->n[l->count++], 8, "%s", e->name);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Fills buf with meta's view of bytes [off, off+len) of ino. */
static void meta_fill(model *M, uint64_t ino, uint64_t off, size_t len, uint8_t *buf)
{
    memset(buf, 0, len);
    for (uint64_t c = off / META_CHUNK_SIZE; c * META_CHUNK_SIZE < off + len; c++) {
        meta_slice *s, *r;
        size_t n, nr;
        ASSERT_OK(meta_chunk_read(M->m, ino, (uint32_t)c, &s, &n));
        meta_chunk_resolve(s, n, (uint32_t)META_CHUNK_SIZE, &r, &nr);
        for (size_t i = 0; i < nr; i++) {
            if (!r[i].id)
                continue;
            uint64_t a = c * META_CHUNK_SIZE + r[i].pos, b = a + r[i].len;
            uint64_t lo = a > off ? a : off, hi = b < off + len ? b : off + len;
            for (uint64_t x = lo; x < hi; x++)
                buf[x - off] = pat(r[i].id, r[i].off + (x - a));
        }
        free(s);
        free(r);
    }
}

static void compare_range(model *M, int fd, uint64_t ino, uint64_t off, uint64_t end,
                          const char *path)
{
    size_t win = 1 << 20;
    uint8_t *a = nb_xmalloc(win), *b = nb_xmalloc(win);
    for (uint64_t o = off; o < end; o += win) {
        size_t n = end - o < win ? (size_t)(end - o) : win, got;
        ASSERT_OK(nb_pread_full(fd, a, n, (off_t)o, &got));
        assert_int_equal(got, n);
        meta_fill(M, ino, o, n, b);
        if (memcmp(a, b, n) != 0) {
            size_t i = 0;
            while (a[i] == b[i])
                i++;
            fail_msg("seed %llu: %s: byte %llu is %u on disk, %u in meta",
                     (unsigned long long)M->seed, path, (unsigned long long)(o + i), a[i], b[i]);
        }
    }
    free(a);
    free(b);
}

static void compare_content(model *M, const char *path, uint64_t ino, uint64_t size)
{
    int fd = openat(M->rootfd, path, O_RDONLY);
    assert_true(fd >= 0);
    /* Every data extent of the real file matches meta (zeros where meta
     * shows a hole)... */
    off_t pos = 0;
    while ((uint64_t)pos < size) {
        off_t d = lseek(fd, pos, SEEK_DATA);
        if (d < 0)
            break;
        off_t h = lseek(fd, d, SEEK_HOLE);
        uint64_t e = (uint64_t)h < size ? (uint64_t)h : size;
        compare_range(M, fd, ino, (uint64_t)d, e, path);
        pos = h;
    }
    /* ...and every byte meta shows from a slice matches the real file. */
    for (uint64_t c = 0; c * META_CHUNK_SIZE < size; c++) {
        meta_slice *s, *r;
        size_t n, nr;
        ASSERT_OK(meta_chunk_read(M->m, ino, (uint32_t)c, &s, &n));
        meta_chunk_resolve(s, n, (uint32_t)META_CHUNK_SIZE, &r, &nr);
        for (size_t i = 0; i < nr; i++) {
            uint64_t a = c * META_CHUNK_SIZE + r[i].pos, b = a + r[i].len;
            if (!r[i].id || a >= size)
                continue;
            compare_range(M, fd, ino, a, b < size ? b : size, path);
        }
        free(s);
        free(r);
    }
    close(fd);
}

typedef struct inoset {
    uint64_t *v;
    int n, cap;
} inoset;

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts a "a\0b\0" list into "a,b," for comparison. */
static void canon_list(const char *l, size_t n, char *out, size_t cap)
{
    const char *v[16];
    int k = 0;
    for (size_t i = 0; i < n && k < 16; i += strlen(l + i) + 1)
        v[k++] = l + i;
    qsort(v, (size_t)k, sizeof(v[0]), cmp_cstr);
    out[0] = 0;
    for (int i = 0; i < k; i++) {
        strncat(out, v[i], cap - strlen(out) - 1);
        strncat(out, ",", cap - strlen(out) - 1);
    }
}

static void compare_xattrs(model *M, const char *path, uint64_t ino)
{
    char full[4200], kl[512], a[512], b[512];
    snprintf(full, sizeof(full), "%s/%s", M->real, path);
    ssize_t n = llistxattr(full, kl, sizeof(kl));
    assert_true(n >= 0);
    nb_buf ml = NB_BUF_INIT;
    ASSERT_OK(meta_xattr_list(M->m, &M->cred, ino, &ml));
    canon_list(kl, (size_t)n, a, sizeof(a));
    canon_list((const char *)ml.data, ml.len, b, sizeof(b));
    if (strcmp(a, b) != 0)
        fail_msg("seed %llu: %s: xattrs on disk [%s], in meta [%s]", (unsigned long long)M->seed,
                 path, a, b);
    nb_buf_free(&ml);
}

static void compare_tree(model *M, const char *rel, uint64_t ino, inoset *seen)
{
    namelist real = {0}, mine = {0};
    int fd = openat(M->rootfd, rel[0] ? rel : ".", O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    DIR *d = fdopendir(fd);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        NB_ASSERT(real.count < 16 && strlen(de->d_name) < 8);
        memcpy(real.n[real.count++], de->d_name, strlen(de->d_name) + 1);
    }
    closedir(d);
    qsort(real.n, (size_t)real.count, sizeof(real.n[0]), cmp_str);
    ASSERT_OK(meta_list(M->m, ino, NULL, 0, list_cb, &mine));
    if (real.count != mine.count)
        fail_msg("seed %llu: /%s: %d names on disk, %d in meta", (unsigned long long)M->seed, rel,
                 real.count, mine.count);
    for (int i = 0; i < real.count; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", real.n[i]) >=
            sizeof(path))
            fail_msg("seed %llu: the tree is too deep to compare", (unsigned long long)M->seed);
        if (strcmp(real.n[i], mine.n[i]) != 0)
            fail_msg("seed %llu: /%s: name %s on disk, %s in meta", (unsigned long long)M->seed,
                     rel, real.n[i], mine.n[i]);
        struct stat st;
        meta_attr a;
        ASSERT_OK(sys(fstatat(M->rootfd, path, &st, AT_SYMLINK_NOFOLLOW)));
        ASSERT_OK(meta_lookup(M->m, &M->cred, ino, mine.n[i], &a));
        compare_stat(M, path, &st, &a);
        compare_xattrs(M, path, a.ino);
        int dup = 0;
        for (int k = 0; k < seen->n; k++)
            dup |= seen->v[k] == a.ino;
        if (!dup) {
            if (seen->n == seen->cap) {
                seen->cap = seen->cap ? seen->cap * 2 : 256;
                seen->v = nb_xrealloc(seen->v, (size_t)seen->cap * sizeof(*seen->v));
            }
            seen->v[seen->n++] = a.ino;
        }
        if (S_ISDIR(a.mode))
            compare_tree(M, path, a.ino, seen);
        else if (S_ISREG(a.mode) && !dup)
            compare_content(M, path, a.ino, a.size);
        else if (S_ISLNK(a.mode)) {
            char t[128];
            ssize_t n = readlinkat(M->rootfd, path, t, sizeof(t));
            nb_buf b = NB_BUF_INIT;
            ASSERT_OK(meta_readlink(M->m, a.ino, &b));
            if (n < 0 || (size_t)n != b.len || memcmp(t, b.data, b.len) != 0)
                fail_msg("seed %llu: %s: symlink targets differ", (unsigned long long)M->seed,
                         path);
            nb_buf_free(&b);
        }
    }
}

static void run(uint64_t seed, long ops)
{
    model M0 = {0}, *M = &M0;
    M->seed = seed;
    M->rng = seed ? seed : 1;
    M->dir = nb_test_dir("meta_model");
    M->real = nb_xasprintf("%s/real", M->dir);
    char *mdir = nb_xasprintf("%s/meta", M->dir);
    ASSERT_OK(nb_mkdir_p(M->real, 0755));
    struct stat st;
    ASSERT_OK(sys(stat(M->real, &st)));
    M->rootfd = open(M->real, O_RDONLY | O_DIRECTORY);
    assert_true(M->rootfd >= 0);
    M->cred.uid = geteuid();
    M->cred.gid = getegid();
    int ng = getgroups(64, (gid_t *)M->groups);
    M->cred.ngroups = ng > 0 ? (uint32_t)ng : 0;
    M->cred.groups = M->groups;
    M->self = M->cred;
    M->switch_creds = geteuid() == 0;
    if (M->switch_creds) {
        /* Let every user play at the top: a sticky, world-writable root. */
        ASSERT_OK(sys(chmod(M->real, 01777)));
        ASSERT_OK(sys(stat(M->real, &st)));
        M->self = users[0];
        M->cred = users[0];
        become(&M->self);
    }
    meta_options o;
    meta_options_init(&o);
    o.engine = getenv("NB_KV_ENGINE");
    o.root_mode = st.st_mode & 07777;
    o.root_uid = st.st_uid;
    o.root_gid = st.st_gid;
    int fd = open("/proc/sys/fs/protected_hardlinks", O_RDONLY);
    char ph = '1';
    if (fd >= 0) {
        if (read(fd, &ph, 1) != 1)
            ph = '1';
        close(fd);
    }
    o.protected_hardlinks = ph != '0';
    ASSERT_OK(meta_open(mdir, &o, &M->m));

    for (M->step = 0; M->step < ops; M->step++) {
        step(M);
        if (M->step == ops / 2) {
            /* Reopen midway: everything must survive. */
            meta_close(M->m);
            ASSERT_OK(meta_open(mdir, &o, &M->m));
        }
    }
    inoset *seen = nb_xcalloc(1, sizeof(*seen));
    compare_tree(M, "", META_ROOT_INO, seen);
    meta_statfs sf;
    meta_statfs_get(M->m, &sf);
    if (sf.inodes_used != (uint64_t)seen->n + 1)
        fail_msg("seed %llu: statfs says %llu inodes, the tree has %d", (unsigned long long)seed,
                 (unsigned long long)sf.inodes_used, seen->n + 1);
    meta_check_report cr;
    ASSERT_OK(meta_check(M->m, 0, NULL, NULL, &cr));
    if (cr.problems)
        fail_msg("seed %llu: meta_check found %llu problems", (unsigned long long)seed,
                 (unsigned long long)cr.problems);
    if (getenv("NB_MODEL_VERBOSE")) {
        fprintf(stderr, "seed %llu: %ld ops, %ld ok, %d inodes at the end;",
                (unsigned long long)seed, ops, M->ok, seen->n);
        for (int i = 1; i < 160; i++) {
            if (M->errs[i])
                fprintf(stderr, " %s:%ld", nb_errname(-i), M->errs[i]);
        }
        fprintf(stderr, "\n");
    }
    free(seen->v);
    free(seen);
    meta_close(M->m);
    close(M->rootfd);
    /* Modes like 0555 must not stop the clean-up. */
    char *cmd = nb_xasprintf("chmod -R u+rwx '%s' 2>/dev/null", M->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: chmod failed\n");
    free(cmd);
    nb_test_rmdir(M->dir);
    free(M->dir);
    free(M->real);
    free(mdir);
}

static int g_soak;

static void test_model(void **state)
{
    (void)state;
    umask(0);
    long ops = 4000;
#ifdef NB_SANITIZED
    ops = 1500;
#endif
    const char *e = getenv("NB_MODEL_OPS");
    if (e)
        ops = atol(e);
    uint64_t seed = nb_test_seed();
    int rounds = 3;
    if (g_soak) {
        ops *= 10;
        rounds = 30;
    }
    for (int i = 0; i < rounds; i++)
        run(seed + (uint64_t)i * 7919, ops / (g_soak ? 1 : rounds) + 1);
}

int main(int argc, char **argv)
{
    nb_log_set_level(NB_LOG_OFF);
    const char *s = getenv("NB_SOAK");
    g_soak = (s && *s && strcmp(s, "0") != 0) || (argc > 1 && strcmp(argv[1], "soak") == 0);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_model)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
