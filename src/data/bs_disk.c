/*
 * bs_disk.c — the `disk` block store: blocks as blobs of the disk engine
 * (src/disk, docs/disk.md), blob id {hi = slice id, lo = block index}.
 *
 * A plain put returns once data and WAL record are durable (fsyncs shared
 * among concurrent writers by group commit). DATA_PUT_DEFER_SYNC and
 * DATA_PUT_NO_SYNC puts go in without any fsync (DISK_PUT_NOSYNC), and
 * data_bs_sync / data_bs_sync_full make them all durable with one
 * disk_sync(): the data files and one WAL record, whatever the number of
 * keys (a no-op when there was no such put since the last one). The engine
 * verifies a blob's CRC32C on every read.
 *
 * Differences from `dir` that callers may notice:
 *  - A read of any part of a block reads and verifies the whole block (the
 *    engine keeps one CRC per blob), so small random reads cost a block;
 *    the reader therefore sends them through the cache (cheap_ranges).
 *  - The engine records no write time: iteration reports mtime_ns 0, so the
 *    collector's grace period does not apply and holds alone protect
 *    unpublished slices (which they do on their own; see gc.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/mem.h"
#include "data/data_int.h"
#include "disk/disk.h"

#define NO_RA_FDS 1024u

/* Trust epochs (docs/data.md §4.3): one counter per EPOCH_REGION of each
 * data file, hashed into EPOCH_SLOTS (a collision only costs a needless
 * check). The low EPOCH_FLIGHT bits count reads in flight that may bring
 * pages of the region in unverified, the bits above count such reads
 * begun and ended. A block's epoch is the sum over its regions. */
#define EPOCH_SLOTS  65536u
#define EPOCH_REGION (2ull << 20)
#define EPOCH_FLIGHT 0xffffull
#define EPOCH_PRE    ((1ull << 16) + 1) /* a read begins */
#define EPOCH_POST   ((1ull << 16) - 1) /* it ended: the rise stays */

typedef struct bs_disk {
    data_bs base;
    disk_env *e;
    _Atomic unsigned char no_ra[NO_RA_FDS]; /* descriptors set to POSIX_FADV_RANDOM */
    /* Per engine descriptor: a second descriptor of the same data file,
     * with kernel readahead, for verifying loads (large folios): fd + 1,
     * 0 not tried yet, -1 none. ra_reach: how far past the end of a read
     * through it the kernel's readahead may reach. */
    pthread_mutex_t ra_mu;
    _Atomic int ra_fd[NO_RA_FDS];
    uint64_t ra_reach[NO_RA_FDS];
    bool io_acct; /* /proc/self/io exists: ru_inblock counts a thread's reads */
    _Atomic uint64_t epoch[EPOCH_SLOTS];
} bs_disk;

static disk_env *env_of(data_bs *bs)
{
    return ((bs_disk *)bs)->e;
}

static disk_id id_of(data_key k)
{
    disk_id id = {k.slice_id, k.block};
    return id;
}

/* The data layer trusts a verified block's pages while they stay in the
 * page cache (refs.c, read.c). Kernel readahead on the engine's buffered
 * descriptor would break that: reading one blob would bring a neighbour's
 * evicted pages back from the device unverified. So before any read
 * through a data file's descriptor it is told to read exactly what is
 * asked (POSIX_FADV_RANDOM: no readahead, no readahead marks); the data
 * layer does its own readahead. Descriptors beyond NO_RA_FDS are advised
 * on every read. */
static void no_readahead(bs_disk *d, int fd)
{
    if (fd < 0 || ((unsigned)fd < NO_RA_FDS && atomic_load(&d->no_ra[fd])))
        return;
    if (posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM) == 0 && (unsigned)fd < NO_RA_FDS)
        atomic_store(&d->no_ra[fd], 1);
}

/* no_readahead for the data file holding k (a lookup, no read). */
static void no_readahead_key(bs_disk *d, data_key k)
{
    disk_ref ref;
    if (disk_read_ref(d->e, id_of(k), 0, &ref) != 0)
        return;
    no_readahead(d, ref.fd);
    disk_unpin(d->e, &ref);
}

/* ---- trust epochs and the readahead descriptor ---------------------------------------- */

static _Atomic uint64_t *epoch_slot(bs_disk *d, int fd, uint64_t region)
{
    uint64_t h = (region ^ ((uint64_t)(unsigned)fd << 44)) * 0x9E3779B97F4A7C15ull;
    return &d->epoch[h >> 48 & (EPOCH_SLOTS - 1)];
}

/* The epoch of fd's [off, off+len): the sum of its regions' counters. */
static uint64_t epoch_sum(bs_disk *d, int fd, uint64_t off, uint64_t len)
{
    uint64_t sum = 0, last = len ? (off + len - 1) / EPOCH_REGION : off / EPOCH_REGION;
    for (uint64_t r = off / EPOCH_REGION; r <= last; r++)
        sum += atomic_load(epoch_slot(d, fd, r));
    return sum;
}

/* Adds v to the counter of every region of fd's [lo, hi); returns how
 * much that raised the epoch of [off, off+len) (regions shared, slots
 * shared by collision). */
static uint64_t epoch_add(bs_disk *d, int fd, uint64_t lo, uint64_t hi, uint64_t v, uint64_t off,
                          uint64_t len)
{
    uint64_t rise = 0;
    uint64_t b0 = off / EPOCH_REGION, b1 = len ? (off + len - 1) / EPOCH_REGION : b0;
    for (uint64_t r = lo / EPOCH_REGION; r <= (hi - 1) / EPOCH_REGION; r++) {
        _Atomic uint64_t *c = epoch_slot(d, fd, r);
        atomic_fetch_add(c, v);
        for (uint64_t b = b0; b <= b1; b++)
            if (epoch_slot(d, fd, b) == c)
                rise += v;
    }
    return rise;
}

/* read_ahead_kb of the device under st_dev (the disk's for a partition);
 * 0 if not found. */
static uint64_t read_ahead_bytes(dev_t dev)
{
    unsigned ma = major(dev), mi = minor(dev);
    for (int i = 0; i < 3; i++) {
        char path[128];
        if (i == 0)
            snprintf(path, sizeof path, "/sys/dev/block/%u:%u/queue/read_ahead_kb", ma, mi);
        else if (i == 1) /* a partition: its disk's */
            snprintf(path, sizeof path, "/sys/dev/block/%u:%u/../queue/read_ahead_kb", ma, mi);
        else
            snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb", ma, mi);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        unsigned long long kb = 0;
        int n = fscanf(f, "%llu", &kb);
        fclose(f);
        if (n == 1)
            return kb << 10;
    }
    return 0;
}

#define VERIFY_PIECE (128u << 10)

/* The readahead descriptor for engine descriptor fd (opened on first use),
 * or -1: then loads read exactly the blob (order-0 folios, slower copies
 * later, but nothing to account for). Only regular files on a device
 * whose read_ahead_kb is known get one: the kernel sets a descriptor's
 * readahead window from it when the descriptor is opened. */
static int ra_fd_of(bs_disk *d, int fd, uint64_t *reach)
{
    if (fd < 0 || (unsigned)fd >= NO_RA_FDS)
        return -1;
    int v = atomic_load(&d->ra_fd[fd]);
    if (v == 0) {
        pthread_mutex_lock(&d->ra_mu);
        v = atomic_load(&d->ra_fd[fd]);
        if (v == 0) {
            v = -1;
            struct stat st, st2;
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
            uint64_t ra0 =
                fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read_ahead_bytes(st.st_dev) : 0;
            int rfd = ra0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
            uint64_t ra1 = rfd >= 0 ? read_ahead_bytes(st.st_dev) : 0;
            if (rfd >= 0 && ra1 && fstat(rfd, &st2) == 0 && st2.st_ino == st.st_ino &&
                st2.st_dev == st.st_dev) {
                uint64_t win = ra0 > ra1 ? ra0 : ra1;
                if (win < VERIFY_PIECE)
                    win = VERIFY_PIECE; /* a read larger than the window is read whole */
                /* A read's own window, then the next one started from a
                 * mark inside it, and a region for rounding. */
                d->ra_reach[fd] = 2 * win + EPOCH_REGION;
                v = rfd + 1;
            } else if (rfd >= 0) {
                close(rfd);
            }
            atomic_store(&d->ra_fd[fd], v);
        }
        pthread_mutex_unlock(&d->ra_mu);
    }
    if (v <= 0)
        return -1;
    *reach = d->ra_reach[fd];
    return v - 1;
}

/* Blocks read from the device by this thread so far (its I/O accounting). */
static long thread_inblock(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        return -1;
    return ru.ru_inblock;
}

/* Brackets a read through the page cache of engine descriptor fd's
 * [off, off+len) that may start kernel readahead past it (on the
 * readahead descriptor always, on the engine's when it meets a page that
 * readahead marked). guard_begin raises the epochs of the regions the
 * readahead may reach; guard_end keeps the rise if this thread read from
 * the device meanwhile (pages may have come in unverified) and takes it
 * back otherwise (nothing came in: a warm re-check of a block leaves its
 * neighbours trusted). */
typedef struct guard {
    int fd;
    uint64_t lo, hi, off, len;
    long inblock;
    uint64_t rise; /* of [off, off+len)'s epoch, by this guard */
} guard;

static void guard_begin(bs_disk *d, guard *g, int fd, uint64_t off, uint64_t len, uint64_t reach)
{
    g->fd = fd;
    g->off = off;
    g->len = len;
    g->lo = off + len;
    g->hi = off + len + reach;
    g->rise = epoch_add(d, fd, g->lo, g->hi, EPOCH_PRE, off, len);
    g->inblock = thread_inblock();
}

static void guard_end(bs_disk *d, guard *g)
{
    long now = thread_inblock();
    if (d->io_acct && g->inblock >= 0 && now == g->inblock) {
        epoch_add(d, g->fd, g->lo, g->hi, (uint64_t)0 - EPOCH_PRE, g->off, g->len);
        g->rise = 0;
    } else {
        g->rise += epoch_add(d, g->fd, g->lo, g->hi, EPOCH_POST, g->off, g->len);
    }
}

/* The epoch a block verified between s0 (read before its verifying read)
 * and now is known good at, or DATA__EPOCH_NONE. own: the rise its own
 * guard left. Guards in flight at either end are left out: each ends by
 * taking its rise back (it read nothing from the device, so brought
 * nothing in) or by keeping it and a bit more, which moves the epoch away
 * from the one recorded here for good. A guard that began and ended
 * between the two, keeping its rise, makes the check count for nothing. */
static uint64_t epoch_after(bs_disk *d, int fd, uint64_t off, uint64_t len, uint64_t s0,
                            uint64_t own)
{
    uint64_t s1 = epoch_sum(d, fd, off, len);
    uint64_t b0 = s0 - (s0 & EPOCH_FLIGHT) * EPOCH_PRE;
    uint64_t b1 = s1 - (s1 & EPOCH_FLIGHT) * EPOCH_PRE;
    return b1 == b0 + own ? b1 : DATA__EPOCH_NONE;
}

static int dk_put(data_bs *bs, data_key k, const void *buf, size_t len, unsigned flags)
{
    unsigned f = flags & (DATA_PUT_DEFER_SYNC | DATA_PUT_NO_SYNC) ? DISK_PUT_NOSYNC : 0;
    return disk_put_flags(env_of(bs), id_of(k), buf, len, f);
}

/* One sync for every unsynced put, whichever keys the caller names. */
static int dk_sync(data_bs *bs, const data_key *keys, size_t n)
{
    (void)keys;
    (void)n;
    return disk_sync(env_of(bs));
}

/* A read of block k through the engine: its exact read may still meet a
 * page that a load's readahead marked (on the engine's descriptor too that
 * starts readahead past it), so it is guarded like a load. */
static int dk_get(data_bs *bs, data_key k, uint64_t off, size_t len, void *buf, size_t *got)
{
    bs_disk *d = (bs_disk *)bs;
    disk_ref ref;
    bool pinned = disk_read_ref(d->e, id_of(k), 0, &ref) == 0;
    uint64_t reach = 0;
    guard g = {0};
    bool guarded = pinned && ra_fd_of(d, ref.fd, &reach) >= 0;
    if (pinned)
        no_readahead(d, ref.fd);
    if (guarded)
        guard_begin(d, &g, ref.fd, ref.off, ref.len, reach);
    int rc = disk_read(d->e, id_of(k), off, len, buf, got);
    if (guarded)
        guard_end(d, &g);
    if (pinned)
        disk_unpin(d->e, &ref);
    if (rc == NB_EUSAGE) {
        /* Past the end: like pread, nothing to read, as long as the block
         * exists. */
        uint64_t blen;
        rc = disk_exists(d->e, id_of(k), &blen);
        *got = 0;
    }
    return rc;
}

static int dk_get_all(data_bs *bs, data_key k, uint8_t **out, size_t *len)
{
    uint64_t blen;
    int rc = disk_exists(env_of(bs), id_of(k), &blen);
    if (rc)
        return rc;
    uint8_t *p = nb_xmalloc(blen ? blen : 1);
    size_t got = 0;
    rc = dk_get(bs, k, 0, blen, p, &got);
    if (rc == 0 && got != blen)
        rc = NB_EAGAIN; /* replaced between the two calls: the caller retries */
    if (rc) {
        free(p);
        return rc;
    }
    if (!blen) {
        free(p);
        p = NULL;
    }
    *out = p;
    *len = got;
    return 0;
}

static int dk_stat(data_bs *bs, data_key k, size_t *len)
{
    uint64_t blen = 0;
    int rc = disk_exists(env_of(bs), id_of(k), &blen);
    *len = (size_t)blen;
    return rc;
}

static int dk_del(data_bs *bs, data_key k)
{
    return disk_delete(env_of(bs), id_of(k));
}

/* Checks a pinned blob's CRC32C by reading it through the page cache in
 * pieces, into dst (the caller's block buffer: a verified load) or into a
 * small buffer that stays in the CPU cache, where the CRC pass finds them:
 * no copy of the whole blob into a fresh buffer (the engine's
 * DISK_REF_VERIFY: page faults, clearing, copying 4 MiB cost most of a
 * first zero-copy GET), no mapping to set up and tear down. The pages stay
 * in the page cache, where the sender or a stream's reader takes them.
 *
 * Where the data file has a readahead descriptor the pieces are read
 * through it: the kernel's readahead brings the blob in as large folios
 * (copying or sending from single-page folios costs about 1.8x, docs/data.md
 * §4.3), and may bring in pages past the blob unverified, which the guard
 * accounts for. Elsewhere one exact read of the extent is submitted first
 * (readahead(2): just that range, no marks). *epoch: what the block is
 * known good at (DATA__EPOCH_NONE: not to be trusted later). 1 if it
 * cannot read (then the engine checks). */
static int verify_read(bs_disk *d, const disk_ref *ref, data_key k, uint8_t *dst, uint64_t *epoch)
{
    uint64_t s0 = epoch_sum(d, ref->fd, ref->off, ref->len);
    *epoch = DATA__EPOCH_NONE;
    if (ref->len == 0) {
        *epoch = s0;
        return 0;
    }
    uint64_t reach = 0;
    int rfd = ra_fd_of(d, ref->fd, &reach);
    guard g = {0};
    if (rfd >= 0)
        guard_begin(d, &g, ref->fd, ref->off, ref->len, reach);
    else
        (void)readahead(ref->fd, (off_t)ref->off, (size_t)ref->len);
    uint8_t sbuf[VERIFY_PIECE];
    uint32_t crc = 0;
    int rc = 0;
    for (uint64_t done = 0; done < ref->len;) {
        /* A load reads the blob in one call: the kernel then reads it
         * (and its readahead) in a few large requests, where 128 KiB
         * pieces from several loads at once came out as many small ones
         * (docs/data.md §4.3, session 7). */
        size_t want =
            ref->len - done < VERIFY_PIECE || dst ? (size_t)(ref->len - done) : VERIFY_PIECE;
        uint8_t *p = dst ? dst + done : sbuf;
        ssize_t n = pread(rfd >= 0 ? rfd : ref->fd, p, want, (off_t)(ref->off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = 1;
            break;
        }
        crc = nb_crc32c(crc, p, (size_t)n);
        done += (uint64_t)n;
    }
    if (rfd >= 0)
        guard_end(d, &g);
    if (rc)
        return rc;
    if (crc == ref->crc32c) {
        *epoch = epoch_after(d, ref->fd, ref->off, ref->len, s0, g.rise);
        return 0;
    }
    NB_ERROR("disk: block %016llx.%08x (%llu bytes at offset %llu): checksum mismatch (stored "
             "%08x, computed %08x)",
             (unsigned long long)k.slice_id, k.block, (unsigned long long)ref->len,
             (unsigned long long)ref->off, ref->crc32c, crc);
    return NB_ECHECKSUM;
}

static int dk_read_fd(data_bs *bs, data_key k, uint64_t off, size_t len, unsigned flags,
                      data_fdref *out)
{
    bs_disk *d = (bs_disk *)bs;
    if (!(flags & DATA__FD_NOVERIFY))
        no_readahead_key(d, k); /* before the verifying read */
    disk_ref ref;
    uint64_t epoch = DATA__EPOCH_NONE;
    int rc = disk_read_ref(d->e, id_of(k), 0, &ref);
    if (rc == 0 && (flags & DATA__FD_NOVERIFY)) {
        epoch = epoch_sum(d, ref.fd, ref.off, ref.len);
    } else if (rc == 0) {
        rc = verify_read(d, &ref, k, NULL, &epoch);
        if (rc == 1) {
            disk_unpin(d->e, &ref);
            rc = disk_read_ref(d->e, id_of(k), DISK_REF_VERIFY, &ref);
            epoch = DATA__EPOCH_NONE; /* verified for this read only */
        } else if (rc != 0) {
            disk_unpin(d->e, &ref);
        }
    }
    if (rc)
        return rc;
    no_readahead(d, ref.fd);
    uint64_t o = off < ref.len ? off : ref.len;
    out->fd = ref.fd;
    out->off = ref.off + o;
    out->len = (size_t)(ref.len - o < len ? ref.len - o : len);
    out->priv[0] = ref.pin;
    out->priv[1] = ref.off;
    out->priv[2] = ref.len;
    out->priv[3] = epoch;
    return 0;
}

/* The epoch of a ref's whole blob now. */
static uint64_t dk_epoch(data_bs *bs, const data_fdref *fr)
{
    return epoch_sum((bs_disk *)bs, fr->fd, fr->priv[1], fr->priv[2]);
}

/* A neighbour's load overlapped the check of ref (a stream loads several
 * blocks at once, and each one's readahead reaches the next ones). Its
 * pages are in the page cache now, so once the loads before it have ended
 * (in a stream no new ones begin there) checking them again costs a CRC
 * pass rather than a whole load on the next read. */
static int recheck(bs_disk *d, const disk_ref *ref, data_key k, uint64_t *epoch)
{
    int rc = 0;
    for (int again = 0; rc == 0 && *epoch == DATA__EPOCH_NONE && again < 3; again++) {
        for (int wait = 0; wait < 500; wait++) { /* at most 100 ms */
            if (!(epoch_sum(d, ref->fd, ref->off, ref->len) & EPOCH_FLIGHT))
                break;
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
        rc = verify_read(d, ref, k, NULL, epoch);
    }
    return rc;
}

/* The settle op: recheck for a load made with later. */
static int dk_settle(data_bs *bs, data_key k, uint64_t *epoch)
{
    bs_disk *d = (bs_disk *)bs;
    *epoch = DATA__EPOCH_NONE;
    disk_ref ref;
    int rc = disk_read_ref(d->e, id_of(k), 0, &ref);
    if (rc)
        return rc;
    rc = recheck(d, &ref, k, epoch);
    disk_unpin(d->e, &ref);
    if (rc == 1) { /* cannot read it here: not trusted later */
        *epoch = DATA__EPOCH_NONE;
        rc = 0;
    }
    return rc;
}

/* A verified load of block k into buf (a stream's or the cache's). */
static int dk_get_verified(data_bs *bs, data_key k, uint8_t *buf, size_t cap, size_t *got,
                           uint64_t *epoch, bool later)
{
    bs_disk *d = (bs_disk *)bs;
    *got = 0;
    *epoch = DATA__EPOCH_NONE;
    disk_ref ref;
    int rc = disk_read_ref(d->e, id_of(k), 0, &ref);
    if (rc)
        return rc;
    no_readahead(d, ref.fd);
    if (ref.len > cap) {
        disk_unpin(d->e, &ref);
        return NB_CORRUPT("block %016llx.%08x: %llu bytes, larger than a block",
                          (unsigned long long)k.slice_id, k.block, (unsigned long long)ref.len);
    }
    rc = verify_read(d, &ref, k, buf, epoch);
    if (rc == 0 && !later)
        rc = recheck(d, &ref, k, epoch);
    size_t len = (size_t)ref.len;
    disk_unpin(d->e, &ref);
    if (rc == 1) { /* cannot read it here: the engine reads and checks */
        *epoch = DATA__EPOCH_NONE;
        return dk_get(bs, k, 0, cap, buf, got);
    }
    if (rc == 0)
        *got = len;
    return rc;
}

static void dk_release_fd(data_bs *bs, data_fdref *fr)
{
    disk_ref ref;
    memset(&ref, 0, sizeof ref);
    ref.fd = fr->fd;
    ref.pin = fr->priv[0];
    ref.off = fr->priv[1];
    ref.len = fr->priv[2];
    disk_unpin(env_of(bs), &ref);
}

typedef struct iter_ctx {
    data_bs_iter_fn fn;
    void *arg;
} iter_ctx;

static int dk_iter_one(void *arg, disk_id id, uint64_t len)
{
    iter_ctx *c = arg;
    if (id.lo > UINT32_MAX)
        return 0; /* not a block of ours */
    data_bs_entry e = {{id.hi, (uint32_t)id.lo}, len, 0};
    return c->fn(c->arg, &e);
}

static int dk_iterate(data_bs *bs, data_bs_iter_fn fn, void *arg)
{
    iter_ctx c = {fn, arg};
    return disk_iterate(env_of(bs), dk_iter_one, &c);
}

static int dk_space(data_bs *bs, uint64_t *capacity, uint64_t *free_bytes)
{
    disk_stats st;
    disk_stats_get(env_of(bs), &st);
    *capacity = st.capacity;
    *free_bytes = st.bytes_free;
    return 0;
}

static void dk_close(data_bs *bs)
{
    bs_disk *d = (bs_disk *)bs;
    for (unsigned i = 0; i < NO_RA_FDS; i++)
        if (atomic_load(&d->ra_fd[i]) > 0)
            close(atomic_load(&d->ra_fd[i]) - 1);
    pthread_mutex_destroy(&d->ra_mu);
    int rc = disk_close(d->e);
    if (rc)
        NB_ERROR("data: closing the disk engine: %s", nb_strerror(rc));
    free(d);
}

const data_bs_ops data__bs_disk_ops = {
    .name = "disk",
    .cheap_ranges = false,
    .put = dk_put,
    .sync = dk_sync,
    .get = dk_get,
    .get_all = dk_get_all,
    .stat = dk_stat,
    .del = dk_del,
    .read_fd = dk_read_fd,
    .release_fd = dk_release_fd,
    .epoch = dk_epoch,
    .get_verified = dk_get_verified,
    .settle = dk_settle,
    .iterate = dk_iterate,
    .space = dk_space,
    .close = dk_close,
};

int data_bs_open_disk(const char *dir, const struct disk_options *opts, data_bs **out)
{
    *out = NULL;
    disk_options o;
    if (opts) {
        o = *opts;
    } else {
        disk_options_init(&o);
    }
    if (o.max_blob < DATA_BLOCK_SIZE)
        return NB_EUSAGE;
    disk_env *e;
    int rc = disk_open(&o, dir, &e);
    if (rc)
        return rc;
    bs_disk *d = nb_xcalloc(1, sizeof *d);
    d->base.ops = &data__bs_disk_ops;
    d->e = e;
    pthread_mutex_init(&d->ra_mu, NULL);
    d->io_acct = access("/proc/self/io", R_OK) == 0;
    *out = &d->base;
    return 0;
}
