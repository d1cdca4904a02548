/*
 * io_uring.c — reads and writes through io_uring (Debian's liburing).
 *
 * A small pool of rings, each guarded by a mutex: a caller takes a free
 * ring, cuts its transfer into chunks of up to 1 MiB, submits them all in
 * one system call so the device sees them in parallel (a 4 MiB blob becomes
 * four concurrent writes), and reaps the completions. A short transfer (end
 * of file) is finished with pread/pwrite, and so is a transfer that finds
 * every ring busy. A write can checksum its buffer (or run other work)
 * between submitting and reaping, so the CRC costs the put no time of its
 * own. sync2 submits both
 * fdatasyncs at once on its own ring.
 * Everything else is the posix table's.
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/fsutil.h"
#include "common/mem.h"

#include "disk_int.h"

#define RINGS      10
#define SYNC_RINGS 2 /* = DISK__COMMIT_DEPTH: one per batch in flight */
#define DEPTH      32
#define CHUNK      (1u << 20)

struct ring {
    pthread_mutex_t mu;
    struct io_uring r;
};

struct disk__uring {
    struct ring rings[RINGS];
    unsigned next;
};

/* The first SYNC_RINGS rings belong to sync2, called by the group-commit
 * leaders (at most DISK__COMMIT_DEPTH at once), so a commit never waits
 * behind data transfers. The others serve transfers; when all are busy the
 * caller does a plain pread/pwrite instead of queueing behind another
 * thread's I/O. */
static struct ring *take_ring(disk__uring *u)
{
    unsigned start = __atomic_fetch_add(&u->next, 1, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < RINGS - SYNC_RINGS; i++) {
        struct ring *g = &u->rings[SYNC_RINGS + (start + i) % (RINGS - SYNC_RINGS)];
        if (pthread_mutex_trylock(&g->mu) == 0)
            return g;
    }
    return NULL;
}

static int wait_cqe(struct io_uring *r, struct io_uring_cqe **cqe)
{
    int rc;
    do {
        rc = io_uring_wait_cqe(r, cqe);
    } while (rc == -EINTR);
    return rc;
}

/* Waits until n completions are there, in one system call rather than
 * one per completion; the caller then reaps them without waiting. */
static void wait_all(struct io_uring *r, unsigned n)
{
    struct io_uring_cqe *cqe;
    if (n > 1)
        while (io_uring_wait_cqe_nr(r, &cqe, n) == -EINTR)
            ;
}

/* What a write does while it is in flight: checksum crc_len bytes at
 * crc_buf into *crc, or call fn(arg). Each runs once. Then, when tail_n is
 * set, a second write (tail_n bytes at tail_off), submitted beside the
 * first's chunks once fn has filled it. */
typedef struct crc_job {
    const void *buf;
    size_t len;
    uint32_t *crc;
    void (*fn)(void *);
    void *arg;
    const void *tail;
    size_t tail_n;
    uint64_t tail_off;
} crc_job;

#define TAIL_TAG UINT64_MAX /* user_data of the tail write */

static void crc_run(crc_job *c)
{
    if (c && c->crc) {
        *c->crc = nb_crc32c(0, c->buf, c->len);
        c->crc = NULL;
    }
    if (c && c->fn) {
        void (*fn)(void *) = c->fn;
        c->fn = NULL;
        fn(c->arg);
    }
}

/* The tail write the plain way, when it was not submitted (no ring free,
 * no SQE, a failed submission) or came back short. */
static int tail_plain(int fd, crc_job *cj, size_t done)
{
    if (!cj || done >= cj->tail_n)
        return 0;
    return nb_pwrite_full(fd, (const uint8_t *)cj->tail + done, cj->tail_n - done,
                          (off_t)(cj->tail_off + done));
}

static int rw(disk__uring *u, int write, int fd, uint8_t *buf, size_t n, uint64_t off, size_t *got,
              crc_job *cj)
{
    struct ring *g = take_ring(u);
    if (!g && write) {
        crc_run(cj);
        int rc = nb_pwrite_full(fd, buf, n, (off_t)off);
        return rc ? rc : tail_plain(fd, cj, 0);
    }
    if (!g) {
        size_t g2 = 0;
        int rc = nb_pread_full(fd, buf, n, (off_t)off, &g2);
        if (got)
            *got = g2;
        return rc;
    }
    size_t done = 0;
    int err = 0;
    size_t short_at = SIZE_MAX;
    /* The tail: not yet submitted (SIZE_MAX), or the bytes it wrote. */
    size_t tail_done = SIZE_MAX;
    while (done < n && !err && short_at == SIZE_MAX) {
        unsigned k = 0;
        size_t pos = done;
        while (k < DEPTH && pos < n) {
            size_t len = n - pos < CHUNK ? n - pos : CHUNK;
            struct io_uring_sqe *sqe = io_uring_get_sqe(&g->r);
            if (!sqe)
                break;
            if (write)
                io_uring_prep_write(sqe, fd, buf + pos, (unsigned)len, off + pos);
            else
                io_uring_prep_read(sqe, fd, buf + pos, (unsigned)len, off + pos);
            sqe->user_data = pos;
            k++;
            pos += len;
        }
        int rc;
        do {
            rc = io_uring_submit(&g->r);
        } while (rc == -EINTR);
        if (rc < 0) {
            err = rc;
            break;
        }
        crc_run(cj); /* the device is busy with the write meanwhile */
        unsigned expect = (unsigned)rc;
        if (cj && cj->tail_n && tail_done == SIZE_MAX) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&g->r);
            int trc = -EBUSY;
            if (sqe) {
                io_uring_prep_write(sqe, fd, cj->tail, (unsigned)cj->tail_n, cj->tail_off);
                sqe->user_data = TAIL_TAG;
                do {
                    trc = io_uring_submit(&g->r);
                } while (trc == -EINTR);
            }
            if (trc == 1) {
                expect++;
                tail_done = 0;
            } else if (sqe) {
                /* Left in the queue: make it harmless, fail the write. */
                io_uring_prep_nop(sqe);
                err = trc < 0 ? trc : -EIO;
            }
        }
        wait_all(&g->r, expect);
        for (unsigned i = 0; i < expect; i++) {
            struct io_uring_cqe *cqe;
            int wrc = wait_cqe(&g->r, &cqe);
            if (wrc < 0) {
                err = wrc;
                break;
            }
            if (cqe->user_data == TAIL_TAG) {
                if (cqe->res < 0)
                    err = err ? err : cqe->res;
                else
                    tail_done = (size_t)cqe->res;
                io_uring_cqe_seen(&g->r, cqe);
                continue;
            }
            size_t at = (size_t)cqe->user_data;
            size_t want = n - at < CHUNK ? n - at : CHUNK;
            if (cqe->res < 0)
                err = err ? err : cqe->res;
            else if ((size_t)cqe->res < want && at + (size_t)cqe->res < short_at)
                short_at = at + (size_t)cqe->res;
            io_uring_cqe_seen(&g->r, cqe);
        }
        if ((unsigned)rc < k && !err)
            err = -EIO; /* the kernel took fewer than we prepared */
        done = pos;
    }
    pthread_mutex_unlock(&g->mu);
    crc_run(cj); /* not yet when the first submission failed */
    if (err)
        return err;
    if (write && cj && cj->tail_n) {
        /* Submitted or not, the tail is written before we return. */
        int trc = tail_plain(fd, cj, tail_done == SIZE_MAX ? 0 : tail_done);
        if (trc)
            return trc;
    }
    if (short_at != SIZE_MAX) {
        /* Finish (or find the end of file) the plain way. */
        if (write)
            return nb_pwrite_full(fd, buf + short_at, n - short_at, (off_t)(off + short_at));
        size_t g2 = 0;
        int rc = nb_pread_full(fd, buf + short_at, n - short_at, (off_t)(off + short_at), &g2);
        if (got)
            *got = short_at + g2;
        return rc;
    }
    if (got)
        *got = n;
    return 0;
}

static int ur_pread(void *ctx, int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    return rw(ctx, 0, fd, buf, n, off, got, NULL);
}

static int ur_pwrite(void *ctx, int fd, const void *buf, size_t n, uint64_t off)
{
    return rw(ctx, 1, fd, (uint8_t *)buf, n, off, NULL, NULL);
}

static int ur_pwrite_crc(void *ctx, int fd, const void *buf, size_t n, uint64_t off,
                         const void *crc_buf, size_t crc_len, uint32_t *crc)
{
    crc_job cj = {.buf = crc_buf, .len = crc_len, .crc = crc};
    return rw(ctx, 1, fd, (uint8_t *)buf, n, off, NULL, &cj);
}

static int ur_pwrite_fn(void *ctx, int fd, const void *buf, size_t n, uint64_t off,
                        void (*fn)(void *), void *arg)
{
    crc_job cj = {.fn = fn, .arg = arg};
    return rw(ctx, 1, fd, (uint8_t *)buf, n, off, NULL, &cj);
}

static int ur_pwrite_fn2(void *ctx, int fd, const void *buf, size_t n, uint64_t off,
                         void (*fn)(void *), void *arg, const void *buf2, size_t n2, uint64_t off2)
{
    crc_job cj = {.fn = fn, .arg = arg, .tail = buf2, .tail_n = n2, .tail_off = off2};
    return rw(ctx, 1, fd, (uint8_t *)buf, n, off, NULL, &cj);
}

static int ur_open(void *ctx, const char *path, unsigned flags, int *fd)
{
    (void)ctx;
    return disk__io_posix.open(NULL, path, flags, fd);
}
static int ur_close(void *ctx, int fd)
{
    (void)ctx;
    return disk__io_posix.close(NULL, fd);
}
static int ur_sync(void *ctx, int fd)
{
    (void)ctx;
    return disk__io_posix.sync(NULL, fd);
}
/* Both fdatasyncs in one submission: the device sees the two flushes
 * together (the block layer merges concurrent flushes), so a group commit
 * waits for about one flush instead of two. */
static int ur_sync2(void *ctx, int fd1, int fd2)
{
    disk__uring *u = ctx;
    struct ring *g = &u->rings[0];
    if (pthread_mutex_trylock(&g->mu) != 0) {
        g = &u->rings[1];
        pthread_mutex_lock(&g->mu);
    }
    int err = 0;
    struct io_uring_sqe *a = io_uring_get_sqe(&g->r), *b = io_uring_get_sqe(&g->r);
    if (!a || !b) {
        pthread_mutex_unlock(&g->mu);
        return -EBUSY;
    }
    io_uring_prep_fsync(a, fd1, IORING_FSYNC_DATASYNC);
    io_uring_prep_fsync(b, fd2, IORING_FSYNC_DATASYNC);
    int rc;
    do {
        rc = io_uring_submit(&g->r);
    } while (rc == -EINTR);
    if (rc < 0)
        err = rc;
    if (rc > 0)
        wait_all(&g->r, (unsigned)rc);
    for (int i = 0; i < (rc > 0 ? rc : 0); i++) {
        struct io_uring_cqe *cqe;
        int wrc = wait_cqe(&g->r, &cqe);
        if (wrc < 0) {
            err = err ? err : wrc;
            break;
        }
        if (cqe->res < 0)
            err = err ? err : cqe->res;
        io_uring_cqe_seen(&g->r, cqe);
    }
    if (!err && rc != 2)
        err = -EIO;
    pthread_mutex_unlock(&g->mu);
    return err;
}

static int ur_size(void *ctx, int fd, uint64_t *size)
{
    (void)ctx;
    return disk__io_posix.size(NULL, fd, size);
}
static int ur_resize(void *ctx, int fd, uint64_t size)
{
    (void)ctx;
    return disk__io_posix.resize(NULL, fd, size);
}
static int ur_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return disk__io_posix.rename(NULL, from, to);
}
static int ur_unlink(void *ctx, const char *path)
{
    (void)ctx;
    return disk__io_posix.unlink(NULL, path);
}
static int ur_sync_dir(void *ctx, const char *dir)
{
    (void)ctx;
    return disk__io_posix.sync_dir(NULL, dir);
}

static const disk_io_ops uring_ops = {
    .open = ur_open,
    .close = ur_close,
    .pread = ur_pread,
    .pwrite = ur_pwrite,
    .pwrite_crc = ur_pwrite_crc,
    .pwrite_fn = ur_pwrite_fn,
    .pwrite_fn2 = ur_pwrite_fn2,
    .sync = ur_sync,
    .sync2 = ur_sync2,
    .size = ur_size,
    .resize = ur_resize,
    .rename = ur_rename,
    .unlink = ur_unlink,
    .sync_dir = ur_sync_dir,
};

int disk__uring_new(disk__uring **out, const disk_io_ops **ops)
{
    *out = NULL;
    disk__uring *u = nb_xcalloc(1, sizeof *u);
    for (int i = 0; i < RINGS; i++) {
        int rc = io_uring_queue_init(DEPTH, &u->rings[i].r, 0);
        if (rc < 0) {
            for (int j = 0; j < i; j++) {
                io_uring_queue_exit(&u->rings[j].r);
                pthread_mutex_destroy(&u->rings[j].mu);
            }
            free(u);
            return rc;
        }
        pthread_mutex_init(&u->rings[i].mu, NULL);
    }
    *out = u;
    *ops = &uring_ops;
    return 0;
}

void disk__uring_free(disk__uring *u)
{
    if (!u)
        return;
    for (int i = 0; i < RINGS; i++) {
        io_uring_queue_exit(&u->rings[i].r);
        pthread_mutex_destroy(&u->rings[i].mu);
    }
    free(u);
}
