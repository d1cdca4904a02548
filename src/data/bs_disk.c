/*
 * bs_disk.c — the `disk` block store: blocks as blobs of the disk engine
 * (src/disk, docs/disk.md), blob id {hi = slice id, lo = block index}.
 *
 * A plain put returns once data and WAL record are durable (fsyncs shared
 * among concurrent writers by group commit). DATA_PUT_DEFER_SYNC and
 * DATA_PUT_NO_SYNC puts go in without any fsync (DISK_PUT_NOSYNC), and
 * data_bs_sync / data_bs_sync_full make them all durable with one
 * disk_sync(): the data files and one WAL record, whatever the number of
 * keys (a no-op when there was no such put since the last one).
 *
 * Every read checks exactly what it returns, in one pass: the blob's
 * 64 KiB segments that a read touches are read from the engine's buffered
 * descriptor (the page cache) and their CRC32Cs (the engine's segment
 * table, format 4) checked on the bytes just read (read_checked). Nothing
 * is trusted between reads: the kernel may drop a page and read it back
 * from the device at any time.
 *
 * Differences from `dir` that callers may notice:
 *  - Zero-copy pieces for senders are handed out unchecked
 *    (DATA__FD_SENDER_CHECKS): the sender checks the mapped bytes it sends
 *    (dk_check).
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
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/mem.h"
#include "data/data_int.h"
#include "disk/disk.h"

/* The largest segment table of a block (DATA_BLOCK_SIZE / DISK_SEG_SIZE). */
#define MAX_SEGS (DATA_BLOCK_SIZE / DISK_SEG_SIZE)
/* Whole segments read into the caller's buffer per pread: the CRC pass
 * over them follows while they are still in the CPU cache. */
#define RUN_BYTES (4u * DISK_SEG_SIZE)

typedef struct bs_disk {
    data_bs base;
    disk_env *e;
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

/* The ref a data_fdref of this store was made from (read_fd: priv[0] the
 * pin, priv[1] and priv[2] the blob's offset and length, the low 32 bits
 * of priv[3] its CRC32C; bit 32 of priv[3]: handed out unchecked). */
#define FD_UNCHECKED (1ull << 32)
static disk_ref ref_of(const data_fdref *fr)
{
    disk_ref ref;
    memset(&ref, 0, sizeof ref);
    ref.fd = fr->fd;
    ref.pin = fr->priv[0];
    ref.off = fr->priv[1];
    ref.len = fr->priv[2];
    ref.crc32c = (uint32_t)fr->priv[3];
    return ref;
}

/* The segment CRCs of a pinned blob into crcs[MAX_SEGS]. */
static int seg_crcs(bs_disk *d, data_key k, const disk_ref *ref, uint32_t *crcs)
{
    if (ref->len > DATA_BLOCK_SIZE)
        return NB_CORRUPT("disk: block %016llx.%08x: %llu bytes, larger than a block",
                          (unsigned long long)k.slice_id, k.block, (unsigned long long)ref->len);
    return disk_ref_seg_crcs(d->e, ref, crcs);
}

/* Segment sg of the blob is [*a, *b). */
static void seg_bounds(const disk_ref *ref, uint64_t sg, uint64_t *a, uint64_t *b)
{
    *a = sg * DISK_SEG_SIZE;
    *b = *a + DISK_SEG_SIZE < ref->len ? *a + DISK_SEG_SIZE : ref->len;
}

/* One segment's check; a mismatch is logged (block, segment, where in the
 * data file) and is NB_ECHECKSUM. */
static int seg_check(data_key k, const disk_ref *ref, uint64_t sg, const uint8_t *p, size_t n,
                     uint32_t want)
{
    uint32_t c = nb_crc32c(0, p, n);
    if (c == want)
        return 0;
    NB_ERROR("disk: block %016llx.%08x: segment %llu (payload bytes %llu-%llu, offset %llu of the "
             "data file): checksum mismatch (stored %08x, computed %08x)",
             (unsigned long long)k.slice_id, k.block, (unsigned long long)sg,
             (unsigned long long)(sg * DISK_SEG_SIZE),
             (unsigned long long)(sg * DISK_SEG_SIZE + n - 1),
             (unsigned long long)(ref->off + sg * DISK_SEG_SIZE), want, c);
    return NB_ECHECKSUM;
}

/* Reads n bytes of the data file at off into p. */
static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, p + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return NB_CORRUPT("disk: data file ends inside a block");
        done += (size_t)r;
    }
    return 0;
}

/* Reads payload bytes [off, off+n) of pinned blob ref into dst (NULL: just
 * check them), checking the CRC of every segment they touch on the bytes
 * just read: whole segments are read straight into dst and checked there
 * while in the CPU cache (one copy, one pass); a segment the range covers
 * only in part is read whole into a scratch buffer, checked, and the part
 * copied. On an error dst holds no blob bytes. docs/data.md §4. */
static int read_checked(bs_disk *d, data_key k, const disk_ref *ref, uint64_t off, size_t n,
                        uint8_t *dst)
{
    if (n == 0)
        return 0;
    uint32_t crcs[MAX_SEGS];
    int rc = seg_crcs(d, k, ref, crcs);
    uint8_t scratch[DISK_SEG_SIZE];
    uint64_t end = off + n;
    for (uint64_t sg = off / DISK_SEG_SIZE; rc == 0 && sg * DISK_SEG_SIZE < end;) {
        uint64_t a, b;
        seg_bounds(ref, sg, &a, &b);
        if (dst && a >= off && b <= end) {
            /* A run of whole segments. */
            uint64_t sg1 = sg + 1, rb = b;
            while (rb - a < RUN_BYTES && sg1 * DISK_SEG_SIZE < end) {
                uint64_t a1, b1;
                seg_bounds(ref, sg1, &a1, &b1);
                if (b1 > end)
                    break;
                rb = b1;
                sg1++;
            }
            rc = pread_all(ref->fd, dst + (a - off), (size_t)(rb - a), ref->off + a);
            for (uint64_t s = sg; rc == 0 && s < sg1; s++) {
                uint64_t sa, sb;
                seg_bounds(ref, s, &sa, &sb);
                rc = seg_check(k, ref, s, dst + (sa - off), (size_t)(sb - sa), crcs[s]);
            }
            sg = sg1;
            continue;
        }
        rc = pread_all(ref->fd, scratch, (size_t)(b - a), ref->off + a);
        if (rc == 0)
            rc = seg_check(k, ref, sg, scratch, (size_t)(b - a), crcs[sg]);
        if (rc == 0 && dst) {
            uint64_t lo = a > off ? a : off, hi = b < end ? b : end;
            memcpy(dst + (lo - off), scratch + (lo - a), (size_t)(hi - lo));
        }
        sg++;
    }
    if (rc && dst)
        memset(dst, 0, n);
    return rc;
}

/* cachestat(2) (Linux 6.5; Debian 12's headers predate it): how many
 * pages of a file range are in the page cache, in one call. */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct nb_cachestat_range {
    uint64_t off, len;
};
struct nb_cachestat {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};
static _Atomic int no_cachestat;

/* Every page of fd's [off, off+len) is in the page cache (a hint: the
 * pages may leave the next moment; nothing is trusted on it). */
static bool resident(int fd, uint64_t off, uint64_t len)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t start = off & ~(page - 1);
    uint64_t end = (off + len + page - 1) & ~(page - 1);
    if (end == start)
        return true;
    if (!atomic_load_explicit(&no_cachestat, memory_order_relaxed)) {
        struct nb_cachestat_range r = {start, end - start};
        struct nb_cachestat cs;
        memset(&cs, 0, sizeof cs);
        if (syscall(__NR_cachestat, fd, &r, &cs, 0) == 0)
            return cs.nr_cache == (end - start) / page;
        atomic_store_explicit(&no_cachestat, 1, memory_order_relaxed);
    }
    void *p = mmap(NULL, (size_t)(end - start), PROT_READ, MAP_SHARED, fd, (off_t)start);
    if (p == MAP_FAILED)
        return false;
    size_t npages = (size_t)((end - start) / page);
    unsigned char vec[1024];
    bool all = true;
    for (size_t i = 0; all && i < npages; i += sizeof vec) {
        size_t m = npages - i < sizeof vec ? npages - i : sizeof vec;
        if (mincore((uint8_t *)p + i * page, m * page, vec) != 0)
            all = false;
        for (size_t j = 0; all && j < m; j++)
            all = (vec[j] & 1) != 0;
    }
    munmap(p, (size_t)(end - start));
    return all;
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

/* A range read: the segments it touches are read and checked. */
static int dk_get(data_bs *bs, data_key k, uint64_t off, size_t len, void *buf, size_t *got)
{
    bs_disk *d = (bs_disk *)bs;
    *got = 0;
    disk_ref ref;
    int rc = disk_read_ref(d->e, id_of(k), 0, &ref);
    if (rc)
        return rc;
    size_t n = off < ref.len ? (size_t)(ref.len - off < len ? ref.len - off : len) : 0;
    rc = read_checked(d, k, &ref, off, n, buf);
    disk_unpin(d->e, &ref);
    if (rc == 0)
        *got = n;
    return rc;
}

static int dk_get_all(data_bs *bs, data_key k, uint8_t **out, size_t *len)
{
    bs_disk *d = (bs_disk *)bs;
    disk_ref ref;
    int rc = disk_read_ref(d->e, id_of(k), 0, &ref);
    if (rc)
        return rc;
    uint8_t *p = ref.len ? nb_xmalloc((size_t)ref.len) : NULL;
    rc = ref.len > DATA_BLOCK_SIZE ? NB_CORRUPT("disk: block %016llx.%08x: larger than a block",
                                                (unsigned long long)k.slice_id, k.block)
                                   : read_checked(d, k, &ref, 0, (size_t)ref.len, p);
    size_t n = (size_t)ref.len;
    disk_unpin(d->e, &ref);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    *len = n;
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

/* A pinned range of block k. Checked before it is handed out (the
 * segments it touches, read through a scratch buffer), unless the caller
 * passes DATA__FD_NOVERIFY or DATA__FD_SENDER_CHECKS: then it is marked
 * unchecked and the sender checks the bytes it sends (dk_check). */
static int dk_read_fd(data_bs *bs, data_key k, uint64_t off, size_t len, unsigned flags,
                      data_fdref *out)
{
    bs_disk *d = (bs_disk *)bs;
    disk_ref ref;
    int rc = disk_read_ref(d->e, id_of(k), 0, &ref);
    if (rc)
        return rc;
    uint64_t o = off < ref.len ? off : ref.len;
    size_t n = (size_t)(ref.len - o < len ? ref.len - o : len);
    bool check = !(flags & (DATA__FD_NOVERIFY | DATA__FD_SENDER_CHECKS));
    if (check)
        rc = read_checked(d, k, &ref, o, n, NULL);
    if (rc) {
        disk_unpin(d->e, &ref);
        return rc;
    }
    out->fd = ref.fd;
    out->off = ref.off + o;
    out->len = n;
    out->priv[0] = ref.pin;
    out->priv[1] = ref.off;
    out->priv[2] = ref.len;
    out->priv[3] = ref.crc32c | (check ? 0 : FD_UNCHECKED);
    out->priv[4] = k.slice_id;
    out->priv[5] = k.block;
    return 0;
}

/* The data file range a check of an unchecked ref reads: the segments
 * its bytes touch. */
static bool dk_check_span(data_bs *bs, const data_fdref *fr, uint64_t *lo, uint64_t *hi)
{
    (void)bs;
    if (!(fr->priv[3] & FD_UNCHECKED) || fr->len == 0)
        return false;
    uint64_t boff = fr->priv[1], blen = fr->priv[2];
    uint64_t a = (fr->off - boff) / DISK_SEG_SIZE * DISK_SEG_SIZE;
    uint64_t e = fr->off - boff + fr->len;
    uint64_t b = (e + DISK_SEG_SIZE - 1) / DISK_SEG_SIZE * DISK_SEG_SIZE;
    *lo = boff + a;
    *hi = boff + (b < blen ? b : blen);
    return true;
}

/* Checks the segments an unchecked ref's bytes touch on a mapping of the
 * data file (map holds file bytes [map_off, map_off + map_len)): the
 * sender then sends from that mapping the bytes just checked. */
static int dk_check(data_bs *bs, const data_fdref *fr, const uint8_t *map, uint64_t map_off,
                    size_t map_len)
{
    uint64_t lo, hi;
    if (!dk_check_span(bs, fr, &lo, &hi))
        return 0;
    if (lo < map_off || hi > map_off + map_len)
        return NB_EUSAGE;
    bs_disk *d = (bs_disk *)bs;
    disk_ref ref = ref_of(fr);
    data_key k = {fr->priv[4], (uint32_t)fr->priv[5]};
    uint32_t crcs[MAX_SEGS];
    int rc = seg_crcs(d, k, &ref, crcs);
    for (uint64_t at = lo; rc == 0 && at < hi; at += DISK_SEG_SIZE) {
        uint64_t sg = (at - ref.off) / DISK_SEG_SIZE;
        size_t n = (size_t)(hi - at < DISK_SEG_SIZE ? hi - at : DISK_SEG_SIZE);
        rc = seg_check(k, &ref, sg, map + (at - map_off), n, crcs[sg]);
    }
    return rc;
}

/* Block k's [off, off+len) is in the page cache now (a hint). */
static bool dk_resident(data_bs *bs, data_key k, uint32_t off, size_t len)
{
    bs_disk *d = (bs_disk *)bs;
    disk_ref ref;
    if (disk_read_ref(d->e, id_of(k), 0, &ref) != 0)
        return false;
    uint64_t o = off < ref.len ? off : ref.len;
    uint64_t n = ref.len - o < len ? ref.len - o : len;
    bool yes = resident(ref.fd, ref.off + o, n);
    disk_unpin(d->e, &ref);
    return yes;
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
    int rc = disk_close(d->e);
    if (rc)
        NB_ERROR("data: closing the disk engine: %s", nb_strerror(rc));
    free(d);
}

const data_bs_ops data__bs_disk_ops = {
    .name = "disk",
    .cheap_ranges = true,
    .page_cache = true,
    .put = dk_put,
    .sync = dk_sync,
    .get = dk_get,
    .get_all = dk_get_all,
    .stat = dk_stat,
    .del = dk_del,
    .read_fd = dk_read_fd,
    .release_fd = dk_release_fd,
    .check_span = dk_check_span,
    .check = dk_check,
    .resident = dk_resident,
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
    *out = &d->base;
    return 0;
}
