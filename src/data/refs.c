/*
 * refs.c — zero-copy reads: a chunk range as a list of (fd, offset,
 * length) pieces that a sender hands to sendfile or maps, each verified by
 * the block store before it is handed out (docs/data.md §4).
 *
 * Verifying the CRCs on every read is a full pass over the bytes (a third
 * of the server's CPU on 1 MiB GETs), while the kernel sends the bytes
 * from the page cache. So a range is verified on its first zero-copy read
 * and remembered (the "memo"); later reads of it skip the CRC pass as long
 * as every page of it is still in the page cache (cachestat, else mincore). Pages that
 * left the cache come back from the device, so the next read verifies
 * them again. Not covered: a page evicted and read back by the kernel
 * while a send is in progress (memory pressure inside that window), and
 * writes into block files by anything but the block store.
 *
 * Small random reads on a store without cheap ranges (disk: any read of a
 * blob reads and verifies all of it, 4 MiB for a 4 KiB read) use the same
 * memo: the first one verifies the whole blob, which leaves its pages in
 * the page cache, and later ones read just their range with
 * preadv2(RWF_NOWAIT), which fails rather than go to the device, so a
 * range that left the page cache is verified again.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/common.h"
#include "data/data_int.h"

/* ---- the memo: direct-mapped, a collision forgets the older range ------------------------ */

#define VMEMO_SLOTS 8192u

typedef struct vmemo_slot {
    data_key key;    /* slice_id 0: empty */
    uint32_t lo, hi; /* verified payload bytes [lo, hi) */
    uint64_t gen;    /* changes whenever the slot is set anew */
    uint64_t epoch;  /* the block store's trust epoch it was verified at */
} vmemo_slot;

struct data__vmemo {
    pthread_mutex_t mu;
    uint64_t gen;
    vmemo_slot slot[VMEMO_SLOTS];
};

data__vmemo *data__vmemo_new(void)
{
    data__vmemo *m = nb_xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void data__vmemo_free(data__vmemo *m)
{

    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static vmemo_slot *slot_of(data__vmemo *m, data_key k)
{
    uint64_t h = (k.slice_id ^ ((uint64_t)k.block << 40)) * 0x9E3779B97F4A7C15ull;
    return &m->slot[h >> 51 & (VMEMO_SLOTS - 1)];
}

static bool memo_covers_gen(data__vmemo *m, data_key k, uint64_t off, size_t len, uint64_t *gen,
                            uint64_t *epoch)
{
    pthread_mutex_lock(&m->mu);
    vmemo_slot *s = slot_of(m, k);
    bool yes = s->key.slice_id == k.slice_id && s->key.block == k.block && s->lo <= off &&
               off + len <= s->hi;
    *gen = s->gen;
    *epoch = s->epoch;
    pthread_mutex_unlock(&m->mu);
    return yes;
}

/* k is still remembered as it was when memo_covers_gen gave gen: no load
 * of it started since (a load forgets it first, see data__vmemo_bad). */
static bool memo_same(data__vmemo *m, data_key k, uint64_t gen)
{
    pthread_mutex_lock(&m->mu);
    vmemo_slot *s = slot_of(m, k);
    bool yes = s->key.slice_id == k.slice_id && s->key.block == k.block && s->gen == gen;
    pthread_mutex_unlock(&m->mu);
    return yes;
}

static void memo_forget(data__vmemo *m, data_key k);

/* Block k's [off, off+len) was verified, its pages known good while the
 * store's trust epoch of the block stays epoch. */
static void memo_add(data__vmemo *m, data_key k, uint64_t off, size_t len, uint64_t epoch)
{
    if (epoch == DATA__EPOCH_NONE) {
        memo_forget(m, k);
        return;
    }
    pthread_mutex_lock(&m->mu);
    vmemo_slot *s = slot_of(m, k);
    if (s->key.slice_id == k.slice_id && s->key.block == k.block && s->epoch == epoch &&
        off <= s->hi && off + len >= s->lo) { /* overlapping or adjacent: one range */
        s->lo = s->lo < off ? s->lo : (uint32_t)off;
        s->hi = s->hi > off + len ? s->hi : (uint32_t)(off + len);
    } else {
        s->key = k;
        s->lo = (uint32_t)off;
        s->hi = (uint32_t)(off + len);
        s->gen = ++m->gen;
        s->epoch = epoch;
    }
    pthread_mutex_unlock(&m->mu);
}

static void memo_forget(data__vmemo *m, data_key k)
{
    pthread_mutex_lock(&m->mu);
    vmemo_slot *s = slot_of(m, k);
    if (s->key.slice_id == k.slice_id && s->key.block == k.block)
        memset(s, 0, sizeof *s);
    pthread_mutex_unlock(&m->mu);
}

/* The store's trust epoch of r's block now (0 on stores without one). A
 * remembered range is good only while it is what the memo recorded: no
 * read that may have brought the block's pages in unverified has started
 * since its check. Asked after the pages were found resident or copied,
 * so such a read that began before either shows. */
static bool epoch_holds(data_store *s, const data_fdref *r, uint64_t epoch)
{
    uint64_t now = s->bs->ops->epoch ? s->bs->ops->epoch(s->bs, r) : 0;
    return epoch != DATA__EPOCH_NONE && now == epoch;
}

/* cachestat(2) (Linux 6.5; Debian 12's headers predate it): how many
 * pages of a file range are in the page cache, in one call, where mincore
 * needs a mapping made and torn down around it. */
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

/* 1 every page is cached, 0 not, -1 cachestat unavailable. */
static int resident_cachestat(int fd, uint64_t off, size_t len, uint64_t page)
{
    if (atomic_load_explicit(&no_cachestat, memory_order_relaxed))
        return -1;
    uint64_t start = off & ~(page - 1);
    uint64_t end = (off + len + page - 1) & ~(page - 1);
    struct nb_cachestat_range r = {start, end - start};
    struct nb_cachestat cs;
    memset(&cs, 0, sizeof cs);
    if (syscall(__NR_cachestat, fd, &r, &cs, 0) != 0) {
        /* ENOSYS, or refused (seccomp, a file system without it) */
        atomic_store_explicit(&no_cachestat, 1, memory_order_relaxed);
        return -1;
    }
    return cs.nr_cache == (end - start) / page;
}

/* Every page of fd's [off, off+len) is in the page cache. */
static bool resident(int fd, uint64_t off, size_t len)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    int yes = resident_cachestat(fd, off, len, page);
    if (yes >= 0)
        return yes == 1;
    uint64_t start = off & ~(page - 1);
    size_t mlen = (size_t)(off + len - start);
    void *p = mmap(NULL, mlen, PROT_READ, MAP_SHARED, fd, (off_t)start);
    if (p == MAP_FAILED)
        return false;
    size_t npages = (mlen + page - 1) / page;
    unsigned char vec[1024];
    bool all = true;
    for (size_t i = 0; all && i < npages; i += sizeof vec) {
        size_t n = npages - i < sizeof vec ? npages - i : sizeof vec;
        size_t bytes = i + n == npages ? mlen - i * page : n * page;
        if (mincore((uint8_t *)p + i * page, bytes, vec) != 0)
            all = false;
        for (size_t j = 0; all && j < n; j++)
            all = (vec[j] & 1) != 0;
    }
    munmap(p, mlen);
    return all;
}

/* A zero-copy ref to a block range: verified now, or known good and still
 * in the page cache. */
static int ref_block(data_store *s, data_key k, uint32_t off, size_t len, data_fdref *r)
{
    uint64_t gen, epoch;
    if (len && memo_covers_gen(s->vmemo, k, off, len, &gen, &epoch)) {
        int rc = data__bs_read_fd(s->bs, k, off, len, DATA__FD_NOVERIFY, r);
        if (rc != 0 || r->len != len ||
            (resident(r->fd, r->off, r->len) && epoch_holds(s, r, epoch)))
            return rc;
        data_fdref_release(s->bs, r);
    }
    int rc = data__bs_read_fd(s->bs, k, off, len, 0, r);
    if (rc == 0 && r->len)
        memo_add(s->vmemo, k, off, r->len, r->priv[3]);
    else if (rc == NB_ECHECKSUM || rc == NB_ECORRUPT)
        memo_forget(s->vmemo, k); /* its pages are in the cache now, bad */
    return rc;
}

/* Starts reading block k's [off, off+len) from the device unless it is
 * known good and cached: the reads of a large answer's blocks overlap
 * each other and the verification of the ones before (readahead(2) reads
 * exactly the range and returns once the reads are submitted). */
static void read_ahead_block(data_store *s, data_key k, uint32_t off, size_t len)
{
    /* A store that loads through kernel readahead (disk) reads ahead as
     * it checks, in large folios; readahead(2) here would bring the
     * blocks in as single pages, which cost more to send every time. */
    if (s->bs->ops->get_verified)
        return;
    data_fdref r;
    if (data__bs_read_fd(s->bs, k, off, len, DATA__FD_NOVERIFY, &r) != 0)
        return;
    uint64_t gen, epoch;
    bool known = r.len && memo_covers_gen(s->vmemo, k, off, r.len, &gen, &epoch) &&
                 resident(r.fd, r.off, r.len) && epoch_holds(s, &r, epoch);
    data_fdref_release(s->bs, &r);
    if (known)
        return;
    /* Pages read now are not verified: the block is checked again before
     * it is trusted. */
    memo_forget(s->vmemo, k);
    /* Where ranges are not cheap the check reads the whole block. */
    if (!s->bs->ops->cheap_ranges) {
        off = 0;
        len = DATA_BLOCK_SIZE;
    }
    if (data__bs_read_fd(s->bs, k, off, len, DATA__FD_NOVERIFY, &r) != 0)
        return;
    if (r.len)
        (void)readahead(r.fd, (off_t)r.off, r.len);
    data_fdref_release(s->bs, &r);
}

int data_chunk_refs(data_store *s, const data_slice *slices, size_t n, uint32_t off, size_t len,
                    data_fdref **refs, size_t *nrefs, size_t *cap)
{
    data_piece *pc = NULL;
    size_t npc = 0, first = *nrefs;
    int rc = data_chunk_plan(slices, n, off, len, &pc, &npc);
    /* More than one block: each is verified before the answer starts, one
     * after the other, so start every device read first. */
    for (size_t i = 0; rc == 0 && npc > 1 && i < npc; i++)
        if (pc[i].key.slice_id != 0 && !(pc[i].key.slice_id & DATA_SLICE_INLINE))
            read_ahead_block(s, pc[i].key, pc[i].block_off, pc[i].len);
    for (size_t i = 0; rc == 0 && i < npc; i++) {
        if (*nrefs == *cap) {
            *cap = *cap ? *cap * 2 : 8;
            *refs = nb_xrealloc(*refs, *cap * sizeof **refs);
        }
        data_fdref *r = &(*refs)[*nrefs];
        memset(r, 0, sizeof *r);
        r->fd = -1;
        r->len = pc[i].len;
        if (pc[i].key.slice_id & DATA_SLICE_INLINE) {
            rc = NB_EUSAGE; /* its bytes are the caller's, not in a block: no descriptor */
            break;
        }
        if (pc[i].key.slice_id != 0) {
            rc = ref_block(s, pc[i].key, pc[i].block_off, pc[i].len, r);
            if (rc == 0 && r->len != pc[i].len) {
                data_fdref_release(s->bs, r);
                rc = NB_CORRUPT("block %016llx.%08x: shorter than the chunk map says",
                                (unsigned long long)pc[i].key.slice_id, pc[i].key.block);
            }
            if (rc != 0)
                break;
        }
        (*nrefs)++;
    }
    free(pc);
    if (rc != 0) {
        data_chunk_refs_release(s, *refs + first, *nrefs - first);
        *nrefs = first;
    }
    return rc;
}

void data_chunk_refs_release(data_store *s, data_fdref *refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (refs[i].fd >= 0)
            data_fdref_release(s->bs, &refs[i]);
}

/* Reads all of r's range without waiting for the device: false if any of
 * it is not in the page cache. */
static bool read_cached(const data_fdref *r, uint8_t *dst)
{
    size_t done = 0;
    while (done < r->len) {
        struct iovec iov = {dst + done, r->len - done};
        ssize_t n = preadv2(r->fd, &iov, 1, (off_t)(r->off + done), RWF_NOWAIT);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            return false;
        if (n > 0)
            done += (size_t)n;
    }
    return true;
}

static int read_all(const data_fdref *r, uint8_t *dst)
{
    size_t done = 0;
    while (done < r->len) {
        ssize_t n = pread(r->fd, dst + done, r->len - done, (off_t)(r->off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return NB_CORRUPT("block file ends inside a block");
        done += (size_t)n;
    }
    return 0;
}

void data__vmemo_verified(data_store *s, data_key k, size_t len, uint64_t epoch)
{
    if (len)
        memo_add(s->vmemo, k, 0, len, epoch);
}

void data__vmemo_bad(data_store *s, data_key k)
{
    memo_forget(s->vmemo, k);
}

bool data__range_known_cached(data_store *s, data_key k, uint32_t off, size_t len)
{
    uint64_t gen, epoch;
    if (!len || !memo_covers_gen(s->vmemo, k, off, len, &gen, &epoch))
        return false;
    data_fdref r;
    if (data__bs_read_fd(s->bs, k, off, len, DATA__FD_NOVERIFY, &r) != 0)
        return false;
    /* A probe of the first and last byte without waiting for the device:
     * mincore looks up every page and costs about as much as copying
     * them. A page in between that left the cache is found by the read,
     * which then loads and verifies the block itself. */
    uint8_t b;
    struct iovec iov = {&b, 1};
    bool yes = r.len == len && preadv2(r.fd, &iov, 1, (off_t)r.off, RWF_NOWAIT) == 1 &&
               preadv2(r.fd, &iov, 1, (off_t)(r.off + r.len - 1), RWF_NOWAIT) == 1 &&
               epoch_holds(s, &r, epoch);
    data_fdref_release(s->bs, &r);
    return yes;
}

bool data__block_resident(data_store *s, data_key k)
{
    data_fdref r;
    if (data__bs_read_fd(s->bs, k, 0, DATA_BLOCK_SIZE, DATA__FD_NOVERIFY, &r) != 0)
        return false;
    bool yes = r.len == 0 || resident(r.fd, r.off, r.len);
    data_fdref_release(s->bs, &r);
    return yes;
}

bool data__range_read_cached(data_store *s, data_key k, uint32_t off, size_t len, uint8_t *dst)
{
    uint64_t gen, epoch;
    if (!len || !memo_covers_gen(s->vmemo, k, off, len, &gen, &epoch))
        return false;
    data_fdref r;
    if (data__bs_read_fd(s->bs, k, off, len, DATA__FD_NOVERIFY, &r) != 0)
        return false;
    /* RWF_NOWAIT never starts I/O for the range: only pages in memory are
     * read. They are good if no load of the block began meanwhile (a load
     * that fails its check leaves bad pages in the cache) and no read
     * that may have brought them in unverified began since the check (the
     * epoch). A page with a readahead mark is read too, and starts
     * readahead past it: marks lie only where a guarded read's readahead
     * reached (docs/data.md §4.3). */
    bool hit = r.len == len && read_cached(&r, dst) && memo_same(s->vmemo, k, gen) &&
               epoch_holds(s, &r, epoch);
    data_fdref_release(s->bs, &r);
    return hit;
}

int data__range_read(data_store *s, data_key k, uint32_t off, size_t len, uint8_t *dst, size_t *got)
{
    data_fdref r;
    *got = 0;
    uint64_t gen, epoch;
    if (memo_covers_gen(s->vmemo, k, off, len, &gen, &epoch)) {
        int rc = data__bs_read_fd(s->bs, k, off, len, DATA__FD_NOVERIFY, &r);
        if (rc != 0)
            return rc;
        bool hit = read_cached(&r, dst) && memo_same(s->vmemo, k, gen) && epoch_holds(s, &r, epoch);
        data_fdref_release(s->bs, &r);
        if (hit) {
            *got = r.len;
            return 0;
        }
    }
    int rc = data__bs_read_fd(s->bs, k, off, len, 0, &r);
    if (rc == NB_ECHECKSUM || rc == NB_ECORRUPT)
        memo_forget(s->vmemo, k);
    if (rc != 0)
        return rc;
    /* The store verified the whole blob, not just this range. */
    memo_add(s->vmemo, k, 0, DATA_BLOCK_SIZE, r.priv[3]);
    rc = read_all(&r, dst);
    data_fdref_release(s->bs, &r);
    if (rc == 0)
        *got = r.len;
    return rc;
}
