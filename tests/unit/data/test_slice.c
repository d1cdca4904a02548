/* Slices and chunk reads: the writer's block layout, reads of random
 * overlapping slice lists against a model (newest wins, holes are zeros),
 * planning, readahead, a corrupted block surfacing as an error, small
 * random reads on the disk store, and compaction equivalence. */
#include <fcntl.h>
#include <sys/mman.h>
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

/* The disk store verifies a whole blob at once, so small random reads
 * verify it on their first read and then read just their range from the
 * page cache; a flipped byte anywhere in the blob fails the first read,
 * whichever range it asks for. */
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
    /* Flip a byte of the first block in the data file itself, through
     * the descriptor the store hands out for zero-copy reads. */
    data_fdref r;
    ASSERT_OK(data_bs_read_fd(data_store_bs(st), (data_key){800, 0}, 0, 1, &r));
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", r.fd);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t x = (uint8_t)~want[1000000];
    assert_int_equal(pwrite(fd, &x, 1, (off_t)r.off + 1000000), 1);
    close(fd);
    data_fdref_release(data_store_bs(st), &r);
    data_store_close(st);
    ASSERT_OK(open_store(64u << 20));
    ASSERT_RC(data_chunk_read(st, NULL, &sl, 1, 3000000, 4096, got), NB_ECHECKSUM);
    ASSERT_RC(data_chunk_read(st, NULL, &sl, 1, 5000, 100, got), NB_ECHECKSUM);
    /* The other block is whole. */
    ASSERT_OK(data_chunk_read(st, NULL, &sl, 1, DATA_BLOCK_SIZE + 1000, 4096, got));
    assert_memory_equal(got, want + DATA_BLOCK_SIZE + 1000, 4096);
    free(want);
}

/* A zero-copy answer of several blocks on the disk store starts the device
 * reads of all of them before it verifies the first; a block it reads
 * ahead that was known good but left the page cache, and was damaged on
 * the device meanwhile, is checked again and fails: the read ahead must
 * not make its fresh, unverified pages look like the verified ones. */
static void test_disk_refs_read_ahead(void **state)
{
    (void)state;
    const size_t len = 3 * DATA_BLOCK_SIZE;
    ASSERT_OK(dt_write_slice(st, 950, len));
    data_slice sl = {950, 0, (uint32_t)len, 0, NULL};
    data_fdref *refs = NULL;
    size_t nrefs = 0, cap = 0;
    ASSERT_OK(data_chunk_refs(st, &sl, 1, 0, len, &refs, &nrefs, &cap));
    assert_int_equal(nrefs, 3);
    data_chunk_refs_release(st, refs, nrefs);
    nrefs = 0;
    /* Again: all known good and cached. */
    ASSERT_OK(data_chunk_refs(st, &sl, 1, 0, len, &refs, &nrefs, &cap));
    data_chunk_refs_release(st, refs, nrefs);
    nrefs = 0;

    /* Damage block 1 on the device and push the data file out of the
     * page cache. */
    data_fdref r;
    ASSERT_OK(data_bs_read_fd(data_store_bs(st), (data_key){950, 1}, 0, 1, &r));
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", r.fd);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t x = 0;
    assert_int_equal(pread(r.fd, &x, 1, (off_t)r.off + 4242), 1);
    x = (uint8_t)~x;
    assert_int_equal(pwrite(fd, &x, 1, (off_t)r.off + 4242), 1);
    assert_int_equal(fdatasync(fd), 0);
    /* No background load or re-check may read the pages back meanwhile. */
    data__bg_wait(st);
    assert_int_equal(posix_fadvise(r.fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
    data_fdref_release(data_store_bs(st), &r);

    ASSERT_RC(data_chunk_refs(st, &sl, 1, 0, len, &refs, &nrefs, &cap), NB_ECHECKSUM);
    assert_int_equal(nrefs, 0);
    /* The blocks around it are whole. */
    ASSERT_OK(data_chunk_refs(st, &sl, 1, 0, DATA_BLOCK_SIZE, &refs, &nrefs, &cap));
    data_chunk_refs_release(st, refs, nrefs);
    nrefs = 0;
    ASSERT_OK(
        data_chunk_refs(st, &sl, 1, 2 * DATA_BLOCK_SIZE, DATA_BLOCK_SIZE, &refs, &nrefs, &cap));
    data_chunk_refs_release(st, refs, nrefs);
    free(refs);
}

/* Sequential streams on the disk store: a stream longer than the cache
 * leaves a hot block in it (scan resistance); a second pass takes known-good
 * blocks from the page cache without loading them into the block cache;
 * and a block damaged on the device after it left the page cache is
 * checked again and fails, never returns wrong bytes. */
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
    ASSERT_OK(dt_write_slice(st, 901, DATA_BLOCK_SIZE));
    data_slice sl = {900, 0, (uint32_t)len, 0, NULL};
    data_slice hot = {901, 0, DATA_BLOCK_SIZE, 0, NULL};
    uint8_t *hbuf = nb_xmalloc(DATA_BLOCK_SIZE);
    ASSERT_OK(data_chunk_read(st, NULL, &hot, 1, 0, DATA_BLOCK_SIZE, hbuf));

    data_ra *ra = data_ra_new();
    read_stream(ra, &sl, len, want, got);
    data_block *b = data__cache_peek(st->cache, (data_key){901, 0});
    assert_non_null(b); /* the stream did not evict the hot block */
    data__block_unref(st->cache, b);

    /* The first pass loads several blocks at once, and a load whose
     * readahead read from the device leaves the blocks after it to be
     * checked again (docs/data.md §4.3): a pass that checks them from the
     * page cache settles that. */
    data_ra_free(ra);
    ra = data_ra_new();
    read_stream(ra, &sl, len, want, got);
    data_cache_stats before, after;
    data_store_cache_stats(st, &before);
    data_ra_free(ra);
    ra = data_ra_new();
    read_stream(ra, &sl, len, want, got);
    data_store_cache_stats(st, &after);
    /* All from the page cache but the first read of the pass, which is
     * not yet known to be sequential. */
    assert_true(after.misses <= before.misses + 1);

    /* Damage block 2 on the device and push it out of the page cache. */
    data_fdref r;
    ASSERT_OK(data_bs_read_fd(data_store_bs(st), (data_key){900, 2}, 0, 1, &r));
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", r.fd);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t x = (uint8_t)~want[2 * DATA_BLOCK_SIZE + 777];
    assert_int_equal(pwrite(fd, &x, 1, (off_t)r.off + 777), 1);
    assert_int_equal(fdatasync(fd), 0);
    /* No background load or re-check may read the pages back meanwhile. */
    data__bg_wait(st);
    assert_int_equal(posix_fadvise(r.fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    /* The flipped byte's page is gone from memory: the stream must get
     * it from the device (else this tests a write into the page cache,
     * which the memo does not cover). */
    long pg = sysconf(_SC_PAGESIZE);
    off_t at = (off_t)(r.off + 777) / pg * pg;
    void *map = mmap(NULL, (size_t)pg, PROT_READ, MAP_SHARED, r.fd, at);
    assert_true(map != MAP_FAILED);
    unsigned char inmem = 1;
    assert_int_equal(mincore(map, (size_t)pg, &inmem), 0);
    munmap(map, (size_t)pg);
    assert_int_equal(inmem & 1, 0);
    close(fd);
    data_fdref_release(data_store_bs(st), &r);
    data_ra_free(ra);
    ra = data_ra_new();
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += 1u << 20) {
        size_t n = len - off < (1u << 20) ? len - off : (1u << 20);
        rc = data_chunk_read(st, ra, &sl, 1, (uint32_t)off, n, got);
        if (rc == 0)
            assert_memory_equal(got, want + off, n);
        else
            assert_true(off >= 2 * DATA_BLOCK_SIZE && off < 3 * DATA_BLOCK_SIZE);
    }
    assert_int_equal(rc, NB_ECHECKSUM);
    data_ra_free(ra);
    free(hbuf);
    free(got);
    free(want);
}

/* Writes byte x at block k's offset at, on the device, and empties the
 * page cache of the whole data file: the next read of any of it comes
 * from the device. */
static void poke_block(data_key k, uint32_t at, uint8_t x)
{
    data_fdref r;
    ASSERT_OK(data__bs_read_fd(data_store_bs(st), k, 0, 1, DATA__FD_NOVERIFY, &r));
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", r.fd);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &x, 1, (off_t)r.off + at), 1);
    assert_int_equal(fdatasync(fd), 0);
    /* No background load or re-check may read the pages back meanwhile. */
    data__bg_wait(st);
    assert_int_equal(posix_fadvise(r.fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
    data_fdref_release(data_store_bs(st), &r);
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

/* The block store's verified loads read through kernel readahead (large
 * folios), which brings the blocks after the one loaded into the page
 * cache unverified. A neighbour verified earlier whose pages left the
 * cache and came back that way must be checked again, by every path
 * that trusts the memo: a small read, a zero-copy ref, a stream. */
static void test_disk_readahead_neighbour(void **state)
{
    (void)state;
    const size_t len = 6 * DATA_BLOCK_SIZE;
    uint8_t *want = nb_xmalloc(len), *got = nb_xmalloc(1u << 20);
    dt_fill(920, 0, want, len);
    ASSERT_OK(dt_write_slice(st, 920, len));
    data_slice sl = {920, 0, (uint32_t)len, 0, NULL};
    /* Blocks are put in parallel, so their order in the data file is not
     * theirs: load one (block a) and damage the one right after it in the
     * file (block b). */
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
    const data_key k2 = {920, a}, k3 = {920, b};
    const uint32_t at = 5000; /* the damaged byte, in block b */
    const uint8_t good = want[(size_t)b * DATA_BLOCK_SIZE + at];
    for (int path = 0; path < 3; path++) {
        /* Every block verified and remembered, in file order (a load's
         * readahead makes the blocks after it untrusted). */
        uint32_t order[6] = {0, 1, 2, 3, 4, 5};
        for (uint32_t x = 0; x < 6; x++)
            for (uint32_t y = x + 1; y < 6; y++)
                if (pos[order[y]] < pos[order[x]]) {
                    uint32_t t = order[x];
                    order[x] = order[y];
                    order[y] = t;
                }
        for (uint32_t n = 0; n < 6; n++) {
            uint32_t i = order[n];
            ASSERT_OK(data_chunk_read(st, NULL, &sl, 1, i * DATA_BLOCK_SIZE + at, 4096, got));
            assert_memory_equal(got, want + i * DATA_BLOCK_SIZE + at, 4096);
        }
        assert_true(data__range_known_cached(st, k3, 0, 4096));
        /* Block 3 damaged on the device, nothing of the file in memory;
         * then a load of block 2, whose readahead brings block 3 back. */
        poke_block(k3, at, (uint8_t)~good);
        assert_false(byte_resident(k3, at));
        data_fdref r;
        ASSERT_OK(data_bs_read_fd(data_store_bs(st), k2, 0, 1, &r));
        data_fdref_release(data_store_bs(st), &r);
        assert_true(byte_resident(k3, at));
        if (path == 0) { /* a small read */
            ASSERT_RC(data_chunk_read(st, NULL, &sl, 1, b * DATA_BLOCK_SIZE + at, 4096, got),
                      NB_ECHECKSUM);
        } else if (path == 1) { /* a zero-copy ref */
            data_fdref *refs = NULL;
            size_t nrefs = 0, cap = 0;
            ASSERT_RC(data_chunk_refs(st, &sl, 1, b * DATA_BLOCK_SIZE, 65536, &refs, &nrefs, &cap),
                      NB_ECHECKSUM);
            assert_int_equal(nrefs, 0);
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
        poke_block(k3, at, good);
    }
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
        cmocka_unit_test_setup_teardown(test_disk_stream_warm, setup_disk, teardown),
        cmocka_unit_test_setup_teardown(test_disk_refs_read_ahead, setup_disk, teardown),
        cmocka_unit_test_setup_teardown(test_disk_readahead_neighbour, setup_disk, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_equivalence, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
