/* env.c — the default POSIX I/O environment and path helpers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nkv_int.h"

struct nkv_file {
    int fd;
    uint64_t logged; /* the largest size a sync log line gave */
    /* Files opened for writing: appends go to `end` with pwrite; the file
     * may hold zeros past it up to `zend` (see px_append). */
    _Atomic uint64_t end;
    uint64_t zend;
    atomic_bool synced;
    bool no_reserve; /* a zero fill failed: plain appends from then on */
};

static int px_open(const char *path, int flags, nkv_file **out)
{
    int fd;
    do {
        fd = open(path, flags | O_CLOEXEC, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -errno;
    nkv_file *f = nb_xcalloc(1, sizeof *f);
    f->fd = fd;
    *out = f;
    return 0;
}

/* For the crash tests: with $NB_KV_SYNC_LOG set, every file opened for
 * writing appends "O dev ino size" and every sync "S dev ino size" (the size
 * before the sync, all of it durable after), so a test can cut each file
 * back to what a power loss would leave of it (docs/vfs.md, "Durability"). */
static pthread_once_t synclog_once = PTHREAD_ONCE_INIT;
static int synclog_fd = -1;
/* Syncs of one file can overlap (nkv_sync_wal and a synced writer group):
 * the log never goes back to a smaller size than a sync already gave. */
static pthread_mutex_t synclog_mu = PTHREAD_MUTEX_INITIALIZER;

static void synclog_open(void)
{
    const char *p = getenv("NB_KV_SYNC_LOG");
    if (p && *p)
        synclog_fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static void synclog(char what, const struct stat *st)
{
    char line[96];
    int n = snprintf(line, sizeof line, "%c %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", what,
                     (uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size);
    if (write(synclog_fd, line, (size_t)n) != n)
        NB_WARN("nkv: writing the sync log failed");
}

static bool synclog_on(void)
{
    pthread_once(&synclog_once, synclog_open);
    return synclog_fd >= 0;
}

/* Reads do not update the access time: with O_NOATIME the kernel skips
 * touch_atime() on every pread (atime_needs_update and its clock read
 * were ~1.3 % of a seek's samples under relatime). Only the file's owner
 * (or CAP_FOWNER) may ask for it; anyone else opens it plainly. */
static int px_open_read(void *ctx, const char *path, nkv_file **out)
{
    (void)ctx;
    int rc = px_open(path, O_RDONLY | O_NOATIME, out);
    if (rc == -EPERM)
        rc = px_open(path, O_RDONLY, out);
    return rc;
}

static int px_open_write(void *ctx, const char *path, nkv_file **out)
{
    (void)ctx;
    int rc = px_open(path, O_WRONLY | O_CREAT | O_TRUNC, out);
    struct stat st;
    if (rc == 0 && synclog_on() && fstat((*out)->fd, &st) == 0)
        synclog('O', &st);
    return rc;
}

static int px_read_at(void *ctx, nkv_file *f, uint64_t off, void *buf, size_t n, size_t *got)
{
    (void)ctx;
    return nb_pread_full(f->fd, buf, n, (off_t)off, got);
}

/*
 * A file synced again and again (a WAL under synced writes, the MANIFEST)
 * keeps zeros written ahead of its end. An fdatasync after an append that
 * grows the file must commit the new size and blocks through ext4's
 * journal (a second device write and flush); one after a write into
 * blocks that already exist, below the file's size, writes only the data.
 * So once a file has been synced, an append that comes within
 * RESERVE_SLACK of the zeros' end first writes the next stretch of zeros
 * (as long as the file, 64 KiB to 1 MiB); the next sync makes both
 * durable, and the syncs after it, until the end reaches the zeros, need
 * no journal commit. Readers of the log formats stop at a tail of zeros
 * (wal.c); close cuts the zeros off again. Appends to one file come from
 * one thread at a time; a sync may run alongside (nkv_sync_wal).
 */
#define RESERVE_MIN   (64u << 10)
#define RESERVE_MAX   (1u << 20)
#define RESERVE_SLACK (16u << 10)

/* Zeros from past the n bytes about to be appended at end. */
static void reserve(nkv_file *f, uint64_t end, size_t n)
{
    static const uint8_t zeros[64 << 10];
    uint64_t len = end < RESERVE_MIN ? RESERVE_MIN : end > RESERVE_MAX ? RESERVE_MAX : end;
    uint64_t size = f->zend > end ? f->zend : end;
    uint64_t from = size > end + n ? size : end + n;
    uint64_t to = (end + n + len + 4095) & ~(uint64_t)4095;
    for (uint64_t off = from; off < to;) {
        size_t k = to - off < sizeof zeros ? (size_t)(to - off) : sizeof zeros;
        if (nb_pwrite_full(f->fd, zeros, k, (off_t)off) != 0) {
            /* Out of space (say): give the zeros back, append plainly. */
            if (ftruncate(f->fd, (off_t)size) != 0)
                NB_WARN("nkv: cutting a failed zero fill: %s", strerror(errno));
            f->no_reserve = true;
            return;
        }
        off += k;
    }
    f->zend = to;
}

static int px_append(void *ctx, nkv_file *f, const void *buf, size_t n)
{
    (void)ctx;
    uint64_t end = atomic_load_explicit(&f->end, memory_order_relaxed);
    if (atomic_load_explicit(&f->synced, memory_order_relaxed) && !f->no_reserve &&
        end + n + RESERVE_SLACK > f->zend)
        reserve(f, end, n);
    int rc = nb_pwrite_full(f->fd, buf, n, (off_t)end);
    if (rc == 0)
        atomic_store_explicit(&f->end, end + n, memory_order_relaxed);
    return rc;
}

static int px_sync(void *ctx, nkv_file *f)
{
    (void)ctx;
    struct stat st;
    bool log = synclog_on() && fstat(f->fd, &st) == 0;
    uint64_t end = atomic_load_explicit(&f->end, memory_order_relaxed);
    if (fdatasync(f->fd) != 0)
        return -errno;
    atomic_store_explicit(&f->synced, true, memory_order_relaxed);
    if (log) {
        /* The size the data is durable up to, not the zeros past it. */
        pthread_mutex_lock(&synclog_mu);
        if (end > f->logged)
            f->logged = end;
        st.st_size = (off_t)f->logged;
        synclog('S', &st);
        pthread_mutex_unlock(&synclog_mu);
    }
    return 0;
}

static int px_close(void *ctx, nkv_file *f)
{
    (void)ctx;
    int rc = 0;
    if (f->zend > f->end && ftruncate(f->fd, (off_t)f->end) != 0)
        rc = -errno;
    if (close(f->fd) != 0 && rc == 0)
        rc = -errno;
    free(f);
    return rc;
}

static int px_file_size(void *ctx, const char *path, uint64_t *size)
{
    (void)ctx;
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

static int px_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return rename(from, to) == 0 ? 0 : -errno;
}

static int px_unlink(void *ctx, const char *path)
{
    (void)ctx;
    return unlink(path) == 0 ? 0 : -errno;
}

static int px_sync_dir(void *ctx, const char *dir)
{
    (void)ctx;
    return nb_fsync_dir(dir);
}

static int px_mkdir(void *ctx, const char *dir)
{
    (void)ctx;
    return nb_mkdir_p(dir, 0755);
}

static int px_list_dir(void *ctx, const char *dir, char ***names, size_t *n)
{
    (void)ctx;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    size_t cap = 16, cnt = 0;
    char **v = nb_xmalloc(cap * sizeof *v);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (cnt == cap) {
            cap *= 2;
            v = nb_xrealloc(v, cap * sizeof *v);
        }
        v[cnt++] = nb_xstrdup(de->d_name);
    }
    closedir(d);
    *names = v;
    *n = cnt;
    return 0;
}

static int px_lock(void *ctx, const char *path, int *token)
{
    (void)ctx;
    pid_t holder = 0;
    int rc = nb_lock_file(path, token, &holder);
    if (rc == NB_ELOCKED)
        NB_WARN("nkv: %s is held by pid %d", path, (int)holder);
    return rc;
}

static void px_unlock(void *ctx, int token)
{
    (void)ctx;
    nb_unlock_file(token);
}

static const nkv_env posix_env = {
    .ctx = NULL,
    .open_read = px_open_read,
    .open_write = px_open_write,
    .read_at = px_read_at,
    .append = px_append,
    .sync = px_sync,
    .close = px_close,
    .file_size = px_file_size,
    .rename = px_rename,
    .unlink = px_unlink,
    .sync_dir = px_sync_dir,
    .mkdir = px_mkdir,
    .list_dir = px_list_dir,
    .lock = px_lock,
    .unlock = px_unlock,
};

const nkv_env *nkv_env_default(void)
{
    return &posix_env;
}

char *nkv__path(const char *dir, uint64_t num, const char *ext)
{
    return nb_xasprintf("%s/%06llu.%s", dir, (unsigned long long)num, ext);
}

int nkv__env_read_all(const nkv_env *env, const char *path, uint8_t **out, size_t *len)
{
    uint64_t size;
    *out = NULL;
    *len = 0;
    int rc = env->file_size(env->ctx, path, &size);
    if (rc)
        return rc;
    nkv_file *f;
    rc = env->open_read(env->ctx, path, &f);
    if (rc)
        return rc;
    uint8_t *buf = nb_xmalloc(size + 1);
    size_t got = 0;
    rc = env->read_at(env->ctx, f, 0, buf, size, &got);
    env->close(env->ctx, f);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = got;
    return 0;
}

int nkv__env_write_all_sync(const nkv_env *env, const char *path, const void *p, size_t n)
{
    nkv_file *f;
    int rc = env->open_write(env->ctx, path, &f);
    if (rc)
        return rc;
    rc = env->append(env->ctx, f, p, n);
    if (!rc)
        rc = env->sync(env->ctx, f);
    int rc2 = env->close(env->ctx, f);
    return rc ? rc : rc2;
}

void nkv__ikey_build(nb_buf *buf, nb_slice ukey, uint64_t seq, int type)
{
    nb_buf_reset(buf);
    NB_ASSERT(nb_buf_reserve(buf, ukey.len + 8) == 0);
    buf->len = nkv__ikey_put(buf->data, ukey, seq, type);
}
