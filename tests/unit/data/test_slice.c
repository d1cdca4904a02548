/* Slices and chunk reads: the writer's block layout, reads of random
 * overlapping slice lists against a model (newest wins, holes are zeros),
 * planning, readahead, a corrupted block surfacing as an error, the disk
 * store's checks of every read (small reads, segment edges, streams,
 * zero-copy refs checked by their sender, damage brought back from the
 * device), and compaction equivalence. */
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "data/data_int.h"
#include "disk/disk.h"

#include "data_test.h"

static char *dir;
static data_store *st;

static bool on_disk; /* the disk store instead of dir */

static int open_store(size_t cache_bytes)
{
    data_bs *bs;
    int rc = on_disk ? data_bs_open_disk(dir, NULL, &bs) : data_bs_open_dir(dir, &bs);
    if (rc)
        return rc;
    data_store_options o = {0};
    o.cache_bytes = cache_bytes;
    o.read_threads = 4;
    o.write_threads = 3;
    return data_store_open(bs, &o, &st);
}

static int setup(void **state)
{
    (void)state;
    nb_log_set_level(NB_LOG_OFF);
    dir = nb_test_dir("data_slice");
    return open_store(64u << 20);
}

static int setup_disk(void **state)
{
    on_disk = true;
    return setup(state);
}

static int teardown(void **state)
{
    (void)state;
    on_disk = false;
    data_store_close(st);
    st = NULL;
    nb_test_rmdir(dir);
    free(dir);
    return 0;
}

static void test_writer_blocks(void **state)
{
    (void)state;
    size_t len = 2 * DATA_BLOCK_SIZE + 1000;
    uint8_t *buf = nb_xmalloc(len);
    dt_fill(7, 0, buf, len);
    data_writer *w;
    ASSERT_OK(data_writer_new(st, 7, &w));
    /* Odd-sized appends cross block boundaries. */
    for (size_t off = 0; off < len;) {
        size_t n = len - off < 999999 ? len - off : 999999;
        ASSERT_OK(data_writer_append(w, buf + off, n));
        off += n;
    }
    assert_int_equal(data_writer_len(w), len);
    uint64_t got_len = 0;
    ASSERT_OK(data_writer_finish(w, &got_len));
    assert_int_equal(got_len, len);
    assert_int_equal(data_slice_blocks(len), 3);
    size_t blen;
    data_key k0 = {7, 0}, k2 = {7, 2}, k3 = {7, 3};
    ASSERT_OK(data_bs_stat(data_store_bs(st), k0, &blen));
    assert_int_equal(blen, DATA_BLOCK_SIZE);
    ASSERT_OK(data_bs_stat(data_store_bs(st), k2, &blen));
    assert_int_equal(blen, 1000);
    ASSERT_RC(data_bs_stat(data_store_bs(st), k3, &blen), NB_ENOTFOUND);
    /* Reading the slice back as a chunk. */
    data_slice sl = {7, 0, (uint32_t)len, 0, NULL};
    uint8_t *out = nb_xmalloc(len);
    ASSERT_OK(data_chunk_read(st, NULL, &sl, 1, 0, len, out));
    assert_memory_equal(out, buf, len);
    free(out);
    free(buf);
    data_slice_unhold(st, 7);

    /* An aborted writer leaves nothing. */
    ASSERT_OK(data_writer_new(st, 8, &w));
    uint8_t *big = nb_xcalloc(1, DATA_BLOCK_SIZE + 5);
    ASSERT_OK(data_writer_append(w, big, DATA_BLOCK_SIZE + 5));
    data_writer_abort(w);
    data_key k8 = {8, 0};
    ASSERT_RC(data_bs_stat(data_store_bs(st), k8, NULL), NB_ENOTFOUND);
    free(big);
    data_writer_abort(NULL);
    ASSERT_RC(data_writer_new(st, 0, &w), NB_EUSAGE);
}

static void test_plan(void **state)
{
    (void)state;
    /* Old slice 1 over [0, 10 MiB), newer 2 over [1 MiB, 2 MiB), a hole at
     * [12, 13) MiB, and 3 at [13 MiB, 14 MiB) read from 5 MiB into it. */
    const uint32_t M = 1u << 20;
    data_slice sl[] = {{1, 0, 10 * M, 0, NULL}, {2, M, M, 0, NULL}, {3, 13 * M, M, 5 * M, NULL}};
    data_piece *p;
    size_t n;
    ASSERT_OK(data_chunk_plan(sl, 3, 0, 14 * M, &p, &n));
    /* 1:[0,1) 2:[1,2) 1:[2,4) 1:[4,8) 1:[8,10) hole:[10,13) 3:[13,14) */
    assert_int_equal(n, 7);
    assert_int_equal(p[0].key.slice_id, 1);
    assert_int_equal(p[1].key.slice_id, 2);
    assert_int_equal(p[2].key.slice_id, 1);
    assert_int_equal(p[2].chunk_off, 2 * M);
    assert_int_equal(p[2].len, 2 * M);
    assert_int_equal(p[2].key.block, 0);
    assert_int_equal(p[2].block_off, 2 * M);
    assert_int_equal(p[3].key.block, 1);
    assert_int_equal(p[3].len, 4 * M);
    assert_int_equal(p[5].key.slice_id, 0);
    assert_int_equal(p[5].chunk_off, 10 * M);
    assert_int_equal(p[5].len, 3 * M);
    assert_int_equal(p[6].key.slice_id, 3);
    assert_int_equal(p[6].key.block, 1);
    assert_int_equal(p[6].block_off, M);
    free(p);
    ASSERT_RC(data_chunk_plan(sl, 3, DATA_CHUNK_SIZE - 1, 2, &p, &n), NB_EUSAGE);
    ASSERT_OK(data_chunk_plan(NULL, 0, 100, 50, &p, &n));
    assert_int_equal(n, 1);
    assert_int_equal(p[0].key.slice_id, 0);
    free(p);
}

/* Random slice lists over the first `span` bytes of a chunk, checked
 * against the model. Slices are written whole and referenced through
 * random windows, as truncation and overlap trimming would leave them. */
static void random_lists(uint64_t seed, int rounds, uint32_t span)
{
    uint64_t next_id = 1000;
    uint8_t *got = nb_xmalloc(span);
    uint8_t *want = nb_xmalloc(span);
    data_ra *ra = data_ra_new();
    for (int r = 0; r < rounds; r++) {
        size_t n = 1 + (size_t)dt_below(&seed, 12);
        data_slice *sl = nb_xcalloc(n, sizeof *sl);
        for (size_t i = 0; i < n; i++) {
            uint32_t a = (uint32_t)dt_below(&seed, span);
            uint32_t len = 1 + (uint32_t)dt_below(&seed, dt_below(&seed, 4) ? span / 8 : span - a);
            if (a + len > span)
                len = span - a;
            uint32_t lead = dt_below(&seed, 3) == 0 ? (uint32_t)dt_below(&seed, 300000) : 0;
            sl[i].id = dt_below(&seed, 10) == 0 ? 0 : next_id++;
            sl[i].chunk_off = a;
            sl[i].len = len;
            sl[i].slice_off = lead;
            if (sl[i].id)
                ASSERT_OK(dt_write_slice(st, sl[i].id, lead + len + dt_below(&seed, 1000)));
        }
        for (int q = 0; q < 6; q++) {
            uint32_t off = (uint32_t)dt_below(&seed, span);
            size_t len = 1 + (size_t)dt_below(&seed, q & 1 ? 4096 : span - off);
            if (off + len > span)
                len = span - off;
            ASSERT_OK(data_chunk_read(st, q < 3 ? NULL : ra, sl, n, off, len, got));
            dt_model(sl, n, off, len, want);
            if (memcmp(got, want, len) != 0)
                fail_msg("round %d query %d: off %u len %zu differs", r, q, off, len);
        }
        /* And a sequential scan through the readahead path. */
        for (uint32_t off = 0; off < span; off += 1 << 20) {
            size_t len = span - off < (1u << 20) ? span - off : 1u << 20;
            ASSERT_OK(data_chunk_read(st, ra, sl, n, off, len, got));
            dt_model(sl, n, off, len, want);
            assert_memory_equal(got, want, len);
        }
        for (size_t i = 0; i < n; i++)
            if (sl[i].id)
                data_slice_unhold(st, sl[i].id);
        free(sl);
    }
    data_ra_free(ra);
    free(got);
    free(want);
}

static void test_random_overlaps(void **state)
{
    (void)state;
    uint64_t seed = nb_test_seed();
    random_lists(seed, dt_sanitized() ? 5 : 12, 10u << 20);
}

static void test_readahead(void **state)
{
    (void)state;
    /* A 24 MiB slice read sequentially in 256 KiB pieces. */
    size_t len = 24u << 20;
    ASSERT_OK(dt_write_slice(st, 500, len));
    data_slice sl = {500, 0, (uint32_t)len, 0, NULL};
    data_ra *ra = data_ra_new();
    uint8_t *got = nb_xmalloc(256u << 10);
    uint8_t *want = nb_xmalloc(256u << 10);
    for (uint32_t off = 0; off < len; off += 256u << 10) {
        ASSERT_OK(data_chunk_read(st, ra, &sl, 1, off, 256u << 10, got));
        dt_fill(500, off, want, 256u << 10);
        assert_memory_equal(got, want, 256u << 10);
    }
    data_cache_stats cs;
    data_store_cache_stats(st, &cs);
    /* Blocks beyond the first were announced by readahead, and readers
     * found them loaded (or loading). */
    assert_true(cs.readahead_issued >= 3);
    assert_true(cs.readahead_hits >= 1);
    /* A random small read bypasses the cache when the block is not in it. */
    ASSERT_OK(dt_write_slice(st, 501, DATA_BLOCK_SIZE));
    data_slice s2 = {501, 0, DATA_BLOCK_SIZE, 0, NULL};
    data_store_cache_stats(st, &cs);
    uint64_t misses = cs.misses;
    data_ra *ra2 = data_ra_new();
    ASSERT_OK(data_chunk_read(st, ra2, &s2, 1, 1000000, 4096, got));
    dt_fill(501, 1000000, want, 4096);
    assert_memory_equal(got, want, 4096);
    data_store_cache_stats(st, &cs);
    assert_int_equal(cs.misses, misses);
    /* A stream that runs off the end of one chunk into the next stays
     * sequential: the second chunk's first read triggers readahead. */
    data_ra *ra3 = data_ra_new();
    ASSERT_OK(dt_write_slice(st, 502, 12u << 20));
    data_slice tail = {501, DATA_CHUNK_SIZE - DATA_BLOCK_SIZE, DATA_BLOCK_SIZE, 0, NULL};
    data_slice next = {502, 0, 12u << 20, 0, NULL};
    ASSERT_OK(data_chunk_read(st, ra3, &tail, 1, DATA_CHUNK_SIZE - (512u << 10), 256u << 10, got));
    ASSERT_OK(data_chunk_read(st, ra3, &tail, 1, DATA_CHUNK_SIZE - (256u << 10), 256u << 10, got));
    /* Its window reaches into the next chunk: the caller, who has that
     * chunk's map, starts loading it before the stream gets there. */
    size_t spill = data_ra_next_chunk(ra3);
    assert_true(spill >= DATA_BLOCK_SIZE);
    data_store_cache_stats(st, &cs);
    uint64_t issued = cs.readahead_issued;
    data_chunk_prefetch(st, &next, 1, 0, spill);
    data_store_cache_stats(st, &cs);
    assert_true(cs.readahead_issued > issued);
    /* The prefetch loads block 0 in the background. */
    data_key k0 = {502, 0};
    data_block *b0 = NULL;
    for (int i = 0; i < 20000 && !b0; i++) {
        b0 = data__cache_peek(st->cache, k0);
        if (!b0)
            usleep(1000);
    }
    assert_non_null(b0);
    data__block_unref(st->cache, b0);
    issued = cs.readahead_issued;
    ASSERT_OK(data_chunk_read(st, ra3, &next, 1, 0, 256u << 10, got));
    dt_fill(502, 0, want, 256u << 10);
    assert_memory_equal(got, want, 256u << 10);
    data_store_cache_stats(st, &cs);
    assert_true(cs.readahead_issued > issued);    /* and the window moves on */
    assert_int_equal(data_ra_next_chunk(ra3), 0); /* far from this chunk's end */
    /* A random read wants nothing of the next chunk. */
    ASSERT_OK(data_chunk_read(st, ra3, &tail, 1, DATA_CHUNK_SIZE - 4096, 4096, got));
    assert_int_equal(data_ra_next_chunk(ra3), 0);
    data_ra_free(ra3);
    /* Prefetch of a range loads it into the cache. */
    data_chunk_prefetch(st, &s2, 1, 0, DATA_BLOCK_SIZE);
    data_store_close(st); /* waits for the background load */
    st = NULL;
    ASSERT_OK(open_store(64u << 20));
    data_ra_free(ra);
    data_ra_free(ra2);
    free(got);
    free(want);
}

/* Block buffers go round between writers and the cache (buf.c): with a
 * cache of two blocks, every read evicts and every writer reuses what was
 * evicted. A buffer handed out twice would show as wrong bytes. */
static void test_buffer_reuse(void **state)
{
    (void)state;
    data_store_close(st);
    ASSERT_OK(open_store(2 * DATA_BLOCK_SIZE));
    size_t len = 3 * DATA_BLOCK_SIZE + 100;
    uint8_t *got = nb_xmalloc(1u << 20), *want = nb_xmalloc(1u << 20);
    for (uint64_t id = 800; id < 803; id++) {
        ASSERT_OK(dt_write_slice(st, id, len));
        data_slice_unhold(st, id);
        /* Every slice so far, read back whole, the older ones after the
         * newer writers took the buffers the cache let go. */
        for (uint64_t r = 800; r <= id; r++) {
            data_slice sl = {r, 0, (uint32_t)len, 0, NULL};
            data_ra *ra = data_ra_new();
            for (size_t off = 0; off < len; off += 1u << 20) {
                size_t n = len - off < (1u << 20) ? len - off : 1u << 20;
                ASSERT_OK(data_chunk_read(st, ra, &sl, 1, (uint32_t)off, n, got));
                dt_fill(r, off, want, n);
                assert_memory_equal(got, want, n);
            }
            data_ra_free(ra);
        }
    }
    data_cache_stats cs;
    data_store_cache_stats(st, &cs);
    assert_true(cs.evictions > 0);
    assert_true(cs.bytes <= 2 * DATA_BLOCK_SIZE);
    free(got);
    free(want);
}

static void test_corrupt_block_is_error(void **state)
{
    (void)state;
    ASSERT_OK(dt_write_slice(st, 600, 100000));
    data_slice sl[] = {{600, 0, 100000, 0, NULL}, {0, 10, 10, 0, NULL}};
    uint8_t *got = nb_xmalloc(100000);
    ASSERT_OK(data_chunk_read(st, NULL, sl, 2, 0, 100000, got));
    assert_int_equal(got[15], 0); /* id 0 is explicit zeros */
    char *cmd = nb_xasprintf("f=$(find '%s/blocks' -name '0000000000000258.00000000'); "
                             "printf 'X' | dd of=$f bs=1 seek=5000 conv=notrunc status=none",
                             dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    /* The cache may hold the good copy; a fresh store must see the flip. */
    data_store_close(st);
    ASSERT_OK(open_store(64u << 20));
    ASSERT_RC(data_chunk_read(st, NULL, sl, 2, 0, 100000, got), NB_ECHECKSUM);
    /* Bytes far from the flipped segment still read. */
    ASSERT_OK(data_chunk_read(st, NULL, sl, 2, 90000, 1000, got));
    /* A slice list that claims more than the block holds. */
    data_slice bad = {600, 0, 200000, 0, NULL};
    ASSERT_RC(data_chunk_read(st, NULL, &bad, 1, 150000, 10, got), NB_ECORRUPT);
    /* A missing slice. */
    data_slice gone = {601, 0, 100, 0, NULL};
    ASSERT_RC(data_chunk_read(st, NULL, &gone, 1, 0, 100, got), NB_ENOTFOUND);
    free(got);
}

/* Writes byte x at block k's offset at into the data file. With evict the
 * file's pages then leave the page cache, so the next read of any of it
 * comes from the device; without, the write lands in the page cache
 * (where a read must catch it just the same). */
static void poke_block_evict(data_key k, uint32_t at, uint8_t x, bool evict)
{
    data_fdref r;
    ASSERT_OK(data__bs_read_fd(data_store_bs(st), k, 0, 1, DATA__FD_NOVERIFY, &r));
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", r.fd);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &x, 1, (off_t)r.off + at), 1);
    assert_int_equal(fdatasync(fd), 0);
    /* No background readahead may read the pages back meanwhile. */
    data__bg_wait(st);
    if (evict)
        assert_int_equal(posix_fadvise(r.fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
    data_fdref_release(data_store_bs(st), &r);
}

static void poke_block(data_key k, uint32_t at, uint8_t x)
{
    poke_block_evict(k, at, x, true);
}

/* Block k's byte at is in the page cache. */
static bool byte_resident(data_key k, uint32_t at)
{
    data_fdref r;
    ASSERT_OK(data__bs_read_fd(data_store_bs(st), k, 0, 1, DATA__FD_NOVERIFY, &r));
    long pg = sysconf(_SC_PAGESIZE);
    off_t o = (off_t)(r.off + at) / pg * pg;
    void *map = mmap(NULL, (size_t)pg, PROT_READ, MAP_SHARED, r.fd, o);
    assert_true(map != MAP_FAILED);
    unsigned char in = 0;
    assert_int_equal(mincore(map, (size_t)pg, &in), 0);
    munmap(map, (size_t)pg);
    data_fdref_release(data_store_bs(st), &r);
    return in & 1;
}

/* What a sender does with zero-copy refs: map each piece (the range its
 * check needs), check it there, and compare what it would send with want
 * (the chunk's bytes from chunk offset 0). The first error. */
static int send_refs(const data_fdref *refs, size_t n, uint32_t off, const uint8_t *want)
{
    long pg = sysconf(_SC_PAGESIZE);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const data_fdref *r = &refs[i];
        if (r->fd >= 0) {
            uint64_t lo = r->off, hi = r->off + r->len;
            assert_true(data_fdref_check_span(st, r, &lo, &hi)); /* disk: the sender checks */
            assert_true(lo <= r->off && hi >= r->off + r->len);
            uint64_t start = lo / (uint64_t)pg * (uint64_t)pg;
            void *map = mmap(NULL, hi - start, PROT_READ, MAP_SHARED, r->fd, (off_t)start);
            assert_true(map != MAP_FAILED);
            /* A mapping that misses the edge segments is refused. */
            if (lo + 1 < hi)
                assert_int_equal(
                    data_fdref_check(st, r, (uint8_t *)map + (lo + 1 - start), lo + 1, hi - lo - 1),
                    NB_EUSAGE);
            rc = data_fdref_check(st, r, map, start, hi - start);
            if (rc == 0)
                assert_memory_equal((uint8_t *)map + (r->off - start), want + off, r->len);
            munmap(map, hi - start);
        }
        off += (uint32_t)r->len;
    }
    return rc;
}

/* The disk store checks the 64 KiB segments a read touches, on every
 * read: small random reads anywhere read right, and a byte flipped on the
 * device fails every read that touches its segment, whichever range it
 * asks for, while the rest of the block still reads. */
static void test_disk_small_reads(void **state)
{
    (void)state;
    const size_t len = DATA_BLOCK_SIZE + 300000; /* two blocks, the second short */
    uint8_t *want = nb_xmalloc(len);
    dt_fill(800, 0, want, len);
    ASSERT_OK(dt_write_slice(st, 800, len));
    data_slice sl = {800, 0, (uint32_t)len, 0, NULL};
    uint8_t got[8192];
    uint64_t seed = nb_test_seed();
    for (int i = 0; i < 300; i++) {
        size_t n = 1 + (size_t)dt_below(&seed, sizeof got);
        uint32_t off = (uint32_t)dt_below(&seed, len - n);
        if (i == 0)
            off = DATA_BLOCK_SIZE - 100; /* across the block boundary */
        ASSERT_OK(data_chunk_read(st, NULL, &sl, 1, off, n, got));
        assert_memory_equal(got, want + off, n);
    }
    poke_block((data_key){800, 0}, 1000000, (uint8_t)~want[1000000]);
    /* 1000000 lies in segment 15, [983040, 1048576). */
    ASSERT_RC(data_chunk_read(st, NULL, &sl, 1, 1000000 - 10, 100, got), NB_ECHECKSUM);
    ASSERT_RC(data_chunk_read(st, NULL, &sl, 1, 983040, 1, got), NB_ECHECKSUM);
    ASSERT_OK(data_chunk_read(st, NULL, &sl, 1, 3000000, 4096, got));
    assert_memory_equal(got, want + 3000000, 4096);
    ASSERT_OK(data_chunk_read(st, NULL, &sl, 1, 5000, 100, got));
    assert_memory_equal(got, want + 5000, 100);
    /* The other block is whole. */
    ASSERT_OK(data_chunk_read(st, NULL, &sl, 1, DATA_BLOCK_SIZE + 1000, 4096, got));
    assert_memory_equal(got, want + DATA_BLOCK_SIZE + 1000, 4096);
    free(want);
}

/* Reads that end or start exactly at the edges of a damaged segment, or
 * touch it by one byte, through every read path (block store, small and
 * large random reads, a stream, zero-copy refs), with the damage on the
 * device and in the page cache: a read that touches the segment fails
 * and leaves no blob bytes in the caller's buffer; one that stops at its
 * edge reads right. */
static void test_disk_segment_edges(void **state)
{
    (void)state;
    const uint32_t seg = 64u << 10;
    const size_t len = 2 * DATA_BLOCK_SIZE + 3 * seg + 777; /* the last block short */
    uint8_t *want = nb_xmalloc(len), *got = nb_xmalloc(DATA_BLOCK_SIZE);
    dt_fill(810, 0, want, len);
    ASSERT_OK(dt_write_slice(st, 810, len));
    data_slice sl = {810, 0, (uint32_t)len, 0, NULL};
    data_bs *bs = data_store_bs(st);
    for (int evict = 0; evict < 2; evict++) {
        /* Segment 5 of block 1 (payload [5 seg, 6 seg)) damaged at its
         * second byte; and the short last segment of block 2. */
        const uint32_t bad = 5 * seg + 1, tail = 3 * seg + 700;
        poke_block_evict((data_key){810, 1}, bad, (uint8_t)~want[DATA_BLOCK_SIZE + bad],
                         evict != 0);
        poke_block_evict((data_key){810, 2}, tail,
                         (uint8_t)~want[2 * (size_t)DATA_BLOCK_SIZE + tail], evict != 0);
        struct {
            uint32_t off, n;
            bool ok;
        } cases[] = {
            {4 * seg, seg, true},            /* ends at the segment's start */
            {6 * seg, seg, true},            /* starts at its end */
            {4 * seg + 3, seg - 3, true},    /* unaligned start, ends at its edge */
            {6 * seg, 1, true},              /* one byte after it */
            {5 * seg - 1, 1, true},          /* one byte before it */
            {4 * seg + 3, seg - 2, false},   /* one byte into it */
            {6 * seg - 1, 5, false},         /* its last byte */
            {5 * seg + 1, 1, false},         /* the damaged byte alone */
            {5 * seg + 2, 10, false},        /* near it */
            {3 * seg + 100, 3 * seg, false}, /* across it, both ends unaligned */
            {0, DATA_BLOCK_SIZE, false},     /* the whole block */
        };
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            uint32_t off = cases[c].off, n = cases[c].n;
            const uint8_t *w = want + DATA_BLOCK_SIZE + off;
            size_t g = 0;
            memset(got, 0xA5, n);
            int rc = data_bs_get(bs, (data_key){810, 1}, off, n, got, &g);
            if (cases[c].ok) {
                ASSERT_OK(rc);
                assert_int_equal(g, n);
                assert_memory_equal(got, w, n);
            } else {
                assert_int_equal(rc, NB_ECHECKSUM);
                /* No blob bytes reach the caller. */
                for (uint32_t i = 0; i < n; i++)
                    assert_true(got[i] == 0 || got[i] == 0xA5);
            }
            /* Through the chunk reader: small or large random reads. */
            rc = data_chunk_read(st, NULL, &sl, 1, DATA_BLOCK_SIZE + off, n, got);
            if (cases[c].ok) {
                ASSERT_OK(rc);
                assert_memory_equal(got, w, n);
            } else {
                assert_int_equal(rc, NB_ECHECKSUM);
            }
            /* Zero-copy refs, checked by their sender. */
            data_fdref *refs = NULL;
            size_t nrefs = 0, cap = 0;
            ASSERT_OK(data_chunk_refs(st, &sl, 1, DATA_BLOCK_SIZE + off, n, &refs, &nrefs, &cap));
            rc = send_refs(refs, nrefs, DATA_BLOCK_SIZE + off, want);
            assert_int_equal(rc, cases[c].ok ? 0 : NB_ECHECKSUM);
            data_chunk_refs_release(st, refs, nrefs);
            free(refs);
        }
        /* The short last segment of the last block, at its edges. */
        size_t g = 0;
        ASSERT_OK(data_bs_get(bs, (data_key){810, 2}, 2 * seg, seg, got, &g));
        assert_memory_equal(got, want + 2 * (size_t)DATA_BLOCK_SIZE + 2 * seg, seg);
        ASSERT_RC(data_bs_get(bs, (data_key){810, 2}, 3 * seg + 776, 10, got, &g), NB_ECHECKSUM);
        ASSERT_RC(data_bs_get(bs, (data_key){810, 2}, 2 * seg, seg + 1, got, &g), NB_ECHECKSUM);
        /* A stream over the block: fails inside block 1, never wrong bytes. */
        data_ra *ra = data_ra_new();
        int rc = 0;
        size_t off = 0;
        for (; off < len && rc == 0; off += 1u << 20) {
            size_t n = len - off < (1u << 20) ? len - off : (1u << 20);
            rc = data_chunk_read(st, ra, &sl, 1, (uint32_t)off, n, got);
            if (rc == 0)
                assert_memory_equal(got, want + off, n);
        }
        assert_int_equal(rc, NB_ECHECKSUM);
        off -= 1u << 20;
        assert_true(off <= DATA_BLOCK_SIZE + bad && off + (1u << 20) > DATA_BLOCK_SIZE + bad);
        data_ra_free(ra);
        poke_block_evict((data_key){810, 1}, bad, want[DATA_BLOCK_SIZE + bad], evict != 0);
        poke_block_evict((data_key){810, 2}, tail, want[2 * (size_t)DATA_BLOCK_SIZE + tail],
                         evict != 0);
        ASSERT_OK(data_chunk_read(st, NULL, &sl, 1, DATA_BLOCK_SIZE, DATA_BLOCK_SIZE, got));
        assert_memory_equal(got, want + DATA_BLOCK_SIZE, DATA_BLOCK_SIZE);
    }
    free(got);
    free(want);
}

/* Zero-copy refs on the disk store are handed out unchecked and checked
 * by their sender on the mapping it sends from: an answer of three
 * blocks whose middle one was damaged on the device after it had been
 * read fails that block's check, and the blocks around it pass. The
 * verifying data_bs_read_fd fails it too. */
static void test_disk_refs_check(void **state)
{
    (void)state;
    const size_t len = 3 * DATA_BLOCK_SIZE;
    uint8_t *want = nb_xmalloc(len);
    dt_fill(950, 0, want, len);
    ASSERT_OK(dt_write_slice(st, 950, len));
    data_slice sl = {950, 0, (uint32_t)len, 0, NULL};
    data_fdref *refs = NULL;
    size_t nrefs = 0, cap = 0;
    for (int pass = 0; pass < 2; pass++) { /* cold, then warm */
        ASSERT_OK(data_chunk_refs(st, &sl, 1, 0, len, &refs, &nrefs, &cap));
        assert_int_equal(nrefs, 3);
        ASSERT_OK(send_refs(refs, nrefs, 0, want));
        data_chunk_refs_release(st, refs, nrefs);
        nrefs = 0;
    }
    assert_false(data_chunk_cold(st, &sl, 1, 0, (uint32_t)len));
    poke_block((data_key){950, 1}, 4242, (uint8_t)~want[DATA_BLOCK_SIZE + 4242]);
    assert_true(data_chunk_cold(st, &sl, 1, 0, (uint32_t)len));
    ASSERT_OK(data_chunk_refs(st, &sl, 1, 0, len, &refs, &nrefs, &cap));
    assert_int_equal(nrefs, 3);
    ASSERT_OK(send_refs(refs, 1, 0, want));
    ASSERT_RC(send_refs(refs + 1, 1, DATA_BLOCK_SIZE, want), NB_ECHECKSUM);
    ASSERT_OK(send_refs(refs + 2, 1, 2 * DATA_BLOCK_SIZE, want));
    /* Again, with the damaged pages in the page cache now. */
    ASSERT_RC(send_refs(refs + 1, 1, DATA_BLOCK_SIZE, want), NB_ECHECKSUM);
    data_chunk_refs_release(st, refs, nrefs);
    free(refs);
    data_fdref r;
    ASSERT_RC(data_bs_read_fd(data_store_bs(st), (data_key){950, 1}, 4000, 1000, &r), NB_ECHECKSUM);
    ASSERT_OK(data_bs_read_fd(data_store_bs(st), (data_key){950, 1}, 65536, 1000, &r));
    data_fdref_release(data_store_bs(st), &r);
    free(want);
}

/* Sequential streams on the disk store read straight from the page cache
 * and check what they copy: they leave the block cache alone (nothing is
 * inserted or read ahead into it), every pass reads right, and a byte
 * damaged in a block — on the device after its pages left the page
 * cache, or in the page cache itself — fails the stream in that block
 * with NB_ECHECKSUM, never wrong bytes. */
static void read_stream(data_ra *ra, const data_slice *sl, size_t len, const uint8_t *want,
                        uint8_t *got)
{
    for (size_t off = 0; off < len; off += 1u << 20) {
        size_t n = len - off < (1u << 20) ? len - off : (1u << 20);
        ASSERT_OK(data_chunk_read(st, ra, sl, 1, (uint32_t)off, n, got));
        assert_memory_equal(got, want + off, n);
    }
}

static void test_disk_stream_warm(void **state)
{
    (void)state;
    data_store_close(st);
    ASSERT_OK(open_store(3 * DATA_BLOCK_SIZE)); /* three blocks */
    const size_t len = 6 * DATA_BLOCK_SIZE + 12345;
    uint8_t *want = nb_xmalloc(len), *got = nb_xmalloc(1u << 20);
    dt_fill(900, 0, want, len);
    ASSERT_OK(dt_write_slice(st, 900, len));
    data_slice sl = {900, 0, (uint32_t)len, 0, NULL};
    data_cache_stats before, after;
    data_store_cache_stats(st, &before);
    for (int pass = 0; pass < 3; pass++) {
        data_ra *ra = data_ra_new();
        read_stream(ra, &sl, len, want, got);
        data_ra_free(ra);
    }
    data_store_cache_stats(st, &after);
    assert_int_equal(after.inserts, before.inserts);
    assert_int_equal(after.entries, 0);
    assert_int_equal(after.readahead_issued, before.readahead_issued); /* the kernel's */

    for (int evict = 1; evict >= 0; evict--) {
        poke_block_evict((data_key){900, 2}, 777, (uint8_t)~want[2 * DATA_BLOCK_SIZE + 777],
                         evict != 0);
        if (evict)
            assert_false(byte_resident((data_key){900, 2}, 777));
        data_ra *ra = data_ra_new();
        int rc = 0;
        for (size_t off = 0; off < len && rc == 0; off += 1u << 20) {
            size_t n = len - off < (1u << 20) ? len - off : (1u << 20);
            rc = data_chunk_read(st, ra, &sl, 1, (uint32_t)off, n, got);
            if (rc == 0)
                assert_memory_equal(got, want + off, n);
            else
                assert_true(off == 2 * DATA_BLOCK_SIZE);
        }
        assert_int_equal(rc, NB_ECHECKSUM);
        data_ra_free(ra);
        poke_block_evict((data_key){900, 2}, 777, want[2 * DATA_BLOCK_SIZE + 777], true);
    }
    free(got);
    free(want);
}

/* Kernel readahead of one block's read may bring the next block of the
 * data file into the page cache from the device: nothing trusts those
 * pages, so a block damaged on the device and brought back that way fails
 * a small read, a zero-copy ref's check and a stream. */
static void test_disk_readahead_neighbour(void **state)
{
    (void)state;
    const size_t len = 6 * DATA_BLOCK_SIZE;
    uint8_t *want = nb_xmalloc(len), *got = nb_xmalloc(1u << 20);
    dt_fill(920, 0, want, len);
    ASSERT_OK(dt_write_slice(st, 920, len));
    data_slice sl = {920, 0, (uint32_t)len, 0, NULL};
    /* Blocks are put in parallel, so their order in the data file is not
     * theirs: block b lies right after block a in the file. */
    uint64_t pos[6];
    for (uint32_t i = 0; i < 6; i++) {
        data_fdref r;
        ASSERT_OK(
            data__bs_read_fd(data_store_bs(st), (data_key){920, i}, 0, 1, DATA__FD_NOVERIFY, &r));
        pos[i] = r.off;
        data_fdref_release(data_store_bs(st), &r);
    }
    uint32_t a = 6, b = 6;
    for (uint32_t i = 0; i < 6 && b == 6; i++)
        for (uint32_t j = 0; j < 6; j++)
            if (pos[j] > pos[i] && pos[j] - pos[i] <= DATA_BLOCK_SIZE + (64u << 10)) {
                a = i;
                b = j;
            }
    assert_true(b < 6);
    const uint32_t at = 5000; /* the damaged byte, in block b */
    const uint8_t good = want[(size_t)b * DATA_BLOCK_SIZE + at];
    for (int path = 0; path < 3; path++) {
        for (uint32_t i = 0; i < 6; i++) {
            ASSERT_OK(data_chunk_read(st, NULL, &sl, 1, i * DATA_BLOCK_SIZE + at, 4096, got));
            assert_memory_equal(got, want + i * DATA_BLOCK_SIZE + at, 4096);
        }
        poke_block((data_key){920, b}, at, (uint8_t)~good);
        /* A whole read of block a, sequential in the file. */
        ASSERT_OK(data_chunk_read(st, NULL, &sl, 1, a * DATA_BLOCK_SIZE, 1u << 20, got));
        if (path == 0) { /* a small read */
            ASSERT_RC(data_chunk_read(st, NULL, &sl, 1, b * DATA_BLOCK_SIZE + at, 4096, got),
                      NB_ECHECKSUM);
        } else if (path == 1) { /* a zero-copy ref */
            data_fdref *refs = NULL;
            size_t nrefs = 0, cap = 0;
            ASSERT_OK(data_chunk_refs(st, &sl, 1, b * DATA_BLOCK_SIZE, 65536, &refs, &nrefs, &cap));
            ASSERT_RC(send_refs(refs, nrefs, b * DATA_BLOCK_SIZE, want), NB_ECHECKSUM);
            data_chunk_refs_release(st, refs, nrefs);
            free(refs);
        } else { /* a stream through block b */
            data_ra *ra = data_ra_new();
            int rc = 0;
            size_t from = b ? (size_t)(b - 1) * DATA_BLOCK_SIZE : 0;
            for (size_t off = from; off < len && rc == 0; off += 1u << 20) {
                rc = data_chunk_read(st, ra, &sl, 1, (uint32_t)off, 1u << 20, got);
                if (rc == 0)
                    assert_memory_equal(got, want + off, 1u << 20);
            }
            assert_int_equal(rc, NB_ECHECKSUM);
            data_ra_free(ra);
        }
        poke_block((data_key){920, b}, at, good);
    }
    free(got);
    free(want);
}

/* Session 9's hole (commit 8ce2339's test): a block read and checked
 * once, then pushed out of the page cache and damaged on the device. On
 * Linux 6.x a RWF_NOWAIT read of pages not in memory fails but starts
 * reading them, and readahead marks start more: the device's bytes come
 * back into the page cache unverified, and the verified-block memo then
 * returned them with status 0. Every read must check what it returns: a
 * small read, a large one, a stream and a zero-copy ref fail with
 * NB_ECHECKSUM on every try, and each failure logs a line. */
static void test_memo_evicted_damage(void **state)
{
    (void)state;
    const size_t len = 2 * DATA_BLOCK_SIZE;
    uint8_t *want = nb_xmalloc(len), *got = nb_xmalloc(1u << 20);
    dt_fill(940, 0, want, len);
    ASSERT_OK(dt_write_slice(st, 940, len));
    data_slice sl = {940, 0, (uint32_t)len, 0, NULL};
    const data_key k = {940, 1};
    const uint32_t at = 70000; /* the damaged byte, in block 1's second segment */
    const uint8_t good = want[DATA_BLOCK_SIZE + at];
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(data_chunk_read(st, NULL, &sl, 1, DATA_BLOCK_SIZE + 65536, 65536, got));
        assert_memory_equal(got, want + DATA_BLOCK_SIZE + 65536, 65536);
    }
    poke_block(k, at, (uint8_t)~good);
    assert_false(byte_resident(k, at));
    /* The log lines go to a file. */
    char *logp = nb_xasprintf("%s/log", dir);
    int lfd = open(logp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(lfd >= 0);
    nb_log_set_fd(lfd);
    nb_log_set_level(NB_LOG_ERROR);
    for (int i = 0; i < 4; i++) {
        ASSERT_RC(data_chunk_read(st, NULL, &sl, 1, DATA_BLOCK_SIZE + 65536, 65536, got),
                  NB_ECHECKSUM);
        ASSERT_RC(data_chunk_read(st, NULL, &sl, 1, DATA_BLOCK_SIZE + at, 1, got), NB_ECHECKSUM);
        ASSERT_RC(data_chunk_read(st, NULL, &sl, 1, DATA_BLOCK_SIZE, 1u << 20, got), NB_ECHECKSUM);
        data_fdref *refs = NULL;
        size_t nrefs = 0, cap = 0;
        ASSERT_OK(data_chunk_refs(st, &sl, 1, DATA_BLOCK_SIZE + 65536, 65536, &refs, &nrefs, &cap));
        ASSERT_RC(send_refs(refs, nrefs, DATA_BLOCK_SIZE + 65536, want), NB_ECHECKSUM);
        data_chunk_refs_release(st, refs, nrefs);
        free(refs);
        struct timespec ts = {0, 20 * 1000 * 1000}; /* a device read's time */
        nanosleep(&ts, NULL);
    }
    data_ra *ra = data_ra_new();
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += 1u << 20)
        rc = data_chunk_read(st, ra, &sl, 1, (uint32_t)off, 1u << 20, got);
    assert_int_equal(rc, NB_ECHECKSUM);
    data_ra_free(ra);
    nb_log_set_level(NB_LOG_OFF);
    nb_log_set_fd(2);
    char text[4096];
    ssize_t tl = pread(lfd, text, sizeof text - 1, 0);
    assert_true(tl > 0);
    text[tl] = 0;
    assert_non_null(strstr(text, "block 00000000000003ac.00000001: segment 1"));
    assert_non_null(strstr(text, "checksum mismatch"));
    close(lfd);
    free(logp);
    /* Mended, it reads again. */
    poke_block(k, at, good);
    ASSERT_OK(data_chunk_read(st, NULL, &sl, 1, DATA_BLOCK_SIZE + 65536, 65536, got));
    assert_memory_equal(got, want + DATA_BLOCK_SIZE + 65536, 65536);
    free(got);
    free(want);
}

static void test_compaction_equivalence(void **state)
{
    (void)state;
    uint64_t seed = nb_test_seed();
    const uint32_t span = 9u << 20;
    uint8_t *before = nb_xmalloc(DATA_CHUNK_SIZE);
    uint8_t *after = nb_xmalloc(DATA_CHUNK_SIZE);
    uint64_t id = 10000;
    for (int r = 0; r < (dt_sanitized() ? 2 : 5); r++) {
        size_t n = 2 + (size_t)dt_below(&seed, 10);
        data_slice *sl = nb_xcalloc(n, sizeof *sl);
        for (size_t i = 0; i < n; i++) {
            uint32_t a = 1000 + (uint32_t)dt_below(&seed, span);
            uint32_t len = 1 + (uint32_t)dt_below(&seed, span / 3);
            sl[i].id = id++;
            sl[i].chunk_off = a;
            sl[i].len = len;
            sl[i].slice_off = dt_below(&seed, 5000);
            ASSERT_OK(dt_write_slice(st, sl[i].id, sl[i].slice_off + len));
            data_slice_unhold(st, sl[i].id);
        }
        ASSERT_OK(data_chunk_read(st, NULL, sl, n, 0, DATA_CHUNK_SIZE, before));
        data_slice c;
        data_pin pin = data_pin_begin(st);
        ASSERT_OK(data_chunk_compact(st, sl, n, id++, &c));
        data_pin_end(st, pin);
        data_slice_unhold(st, c.id);
        for (size_t i = 0; i < n; i++)
            data_slice_release(st, sl[i].id, sl[i].slice_off + sl[i].len);
        ASSERT_OK(data_chunk_read(st, NULL, &c, 1, 0, DATA_CHUNK_SIZE, after));
        assert_memory_equal(before, after, DATA_CHUNK_SIZE);
        /* The old slices are gone (no pins were active). */
        data_key k0 = {sl[0].id, 0};
        ASSERT_RC(data_bs_stat(data_store_bs(st), k0, NULL), NB_ENOTFOUND);
        free(sl);
    }
    data_slice hole = {0, 0, 100, 0, NULL};
    data_slice out;
    ASSERT_RC(data_chunk_compact(st, &hole, 1, id, &out), NB_ENOTFOUND);
    free(before);
    free(after);
}

/* Inline slices: bytes the caller passes, laid over block slices like any
 * other slice, and kept by compaction. */
static void test_inline_slices(void **state)
{
    (void)state;
    const uint32_t len = 300000;
    uint8_t *blk = nb_xmalloc(len), *got = nb_xmalloc(len), *want = nb_xmalloc(len);
    for (uint32_t i = 0; i < len; i++)
        blk[i] = (uint8_t)(i * 7 + 1);
    ASSERT_OK(data_slice_write(st, 700, blk, len));
    data_slice_unhold(st, 700);
    static const uint8_t small[] = "inline bytes, not in the block store";
    uint64_t iid = DATA_SLICE_INLINE | 701;
    /* block slice 700 over [0, len); inline bytes [6, 6+20) of 701 at 1000 */
    data_slice sl[] = {{700, 0, len, 0, NULL}, {iid, 1000, 20, 6, small}};
    memcpy(want, blk, len);
    memcpy(want + 1000, small + 6, 20);
    ASSERT_OK(data_chunk_read(st, NULL, sl, 2, 0, len, got));
    assert_memory_equal(got, want, len);
    ASSERT_OK(data_chunk_read(st, NULL, sl, 2, 1010, 5, got));
    assert_memory_equal(got, small + 16, 5);
    /* without its bytes an inline slice is a usage error, never zeros */
    data_slice nobytes[] = {{iid, 0, 10, 0, NULL}};
    ASSERT_RC(data_chunk_read(st, NULL, nobytes, 1, 0, 10, got), NB_EUSAGE);
    /* compaction copies the inline bytes into the new block slice */
    data_slice c;
    data_pin pin = data_pin_begin(st);
    ASSERT_OK(data_chunk_compact(st, sl, 2, 702, &c));
    data_pin_end(st, pin);
    data_slice_unhold(st, c.id);
    ASSERT_OK(data_chunk_read(st, NULL, &c, 1, 0, len, got));
    assert_memory_equal(got, want, len);
    free(blk);
    free(got);
    free(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writer_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_slices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_overlaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffer_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_block_is_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_small_reads, setup_disk, teardown),
        cmocka_unit_test_setup_teardown(test_disk_segment_edges, setup_disk, teardown),
        cmocka_unit_test_setup_teardown(test_disk_stream_warm, setup_disk, teardown),
        cmocka_unit_test_setup_teardown(test_disk_refs_check, setup_disk, teardown),
        cmocka_unit_test_setup_teardown(test_disk_readahead_neighbour, setup_disk, teardown),
        cmocka_unit_test_setup_teardown(test_memo_evicted_damage, setup_disk, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_equivalence, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
