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
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/mem.h"
#include "data/data_int.h"
#include "disk/disk.h"

#define NO_RA_FDS 1024u

typedef struct bs_disk {
    data_bs base;
    disk_env *e;
    _Atomic unsigned char no_ra[NO_RA_FDS]; /* descriptors set to POSIX_FADV_RANDOM */
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

static int dk_get(data_bs *bs, data_key k, uint64_t off, size_t len, void *buf, size_t *got)
{
    no_readahead_key((bs_disk *)bs, k);
    int rc = disk_read(env_of(bs), id_of(k), off, len, buf, got);
    if (rc == NB_EUSAGE) {
        /* Past the end: like pread, nothing to read, as long as the block
         * exists. */
        uint64_t blen;
        rc = disk_exists(env_of(bs), id_of(k), &blen);
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
    no_readahead_key((bs_disk *)bs, k);
    uint8_t *p = nb_xmalloc(blen ? blen : 1);
    size_t got = 0;
    rc = disk_read(env_of(bs), id_of(k), 0, blen, p, &got);
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
 * pieces into a small buffer that stays in the CPU cache, where the CRC
 * pass finds them: no copy of the whole blob into a fresh buffer (the
 * engine's DISK_REF_VERIFY: page faults, clearing, copying 4 MiB cost most
 * of a first zero-copy GET), no mapping to set up and tear down (its page
 * table work cost more than the copy). The pages stay in the page cache,
 * where the sender or a stream's reader takes them from. The blob's pages
 * come in as one exact read submitted at once (readahead(2) reads just the
 * range asked, without readahead marks; the descriptor has no readahead of
 * its own, see no_readahead), so no neighbour's page enters the page cache
 * unverified through this check. 1 if it cannot read (then the engine
 * checks). */
#define VERIFY_PIECE (128u << 10)
static int verify_read(const disk_ref *ref, data_key k)
{
    if (ref->len == 0)
        return 0;
    (void)readahead(ref->fd, (off_t)ref->off, (size_t)ref->len);
    uint8_t buf[VERIFY_PIECE];
    uint32_t crc = 0;
    for (uint64_t done = 0; done < ref->len;) {
        size_t want = ref->len - done < VERIFY_PIECE ? (size_t)(ref->len - done) : VERIFY_PIECE;
        ssize_t n = pread(ref->fd, buf, want, (off_t)(ref->off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 1;
        crc = nb_crc32c(crc, buf, (size_t)n);
        done += (uint64_t)n;
    }
    if (crc == ref->crc32c)
        return 0;
    NB_ERROR("disk: block %016llx.%08x (%llu bytes at offset %llu): checksum mismatch (stored "
             "%08x, computed %08x)",
             (unsigned long long)k.slice_id, k.block, (unsigned long long)ref->len,
             (unsigned long long)ref->off, ref->crc32c, crc);
    return NB_ECHECKSUM;
}

static int dk_read_fd(data_bs *bs, data_key k, uint64_t off, size_t len, unsigned flags,
                      data_fdref *out)
{
    if (!(flags & DATA__FD_NOVERIFY))
        no_readahead_key((bs_disk *)bs, k); /* before the verifying read */
    disk_ref ref;
    int rc = disk_read_ref(env_of(bs), id_of(k), 0, &ref);
    if (rc == 0 && !(flags & DATA__FD_NOVERIFY)) {
        rc = verify_read(&ref, k);
        if (rc == 1) {
            disk_unpin(env_of(bs), &ref);
            rc = disk_read_ref(env_of(bs), id_of(k), DISK_REF_VERIFY, &ref);
        } else if (rc != 0) {
            disk_unpin(env_of(bs), &ref);
        }
    }
    if (rc)
        return rc;
    no_readahead((bs_disk *)bs, ref.fd);
    uint64_t o = off < ref.len ? off : ref.len;
    out->fd = ref.fd;
    out->off = ref.off + o;
    out->len = (size_t)(ref.len - o < len ? ref.len - o : len);
    out->priv[0] = ref.pin;
    out->priv[1] = ref.off;
    out->priv[2] = ref.len;
    return 0;
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
    .cheap_ranges = false,
    .put = dk_put,
    .sync = dk_sync,
    .get = dk_get,
    .get_all = dk_get_all,
    .stat = dk_stat,
    .del = dk_del,
    .read_fd = dk_read_fd,
    .release_fd = dk_release_fd,
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
