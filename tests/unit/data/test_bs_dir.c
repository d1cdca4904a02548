/* The dir block store: round trips, ranges, missing keys, corruption
 * detected (never wrong bytes), crash leftovers removed on open, iteration,
 * zero-copy descriptors, locking. */
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "data/data_format.h"
#include "data/data_int.h"

#include "data_test.h"

static char *dir;
static data_bs *bs;

static int setup(void **state)
{
    (void)state;
    dir = nb_test_dir("data_bs_dir");
    nb_log_set_level(NB_LOG_OFF);
    return data_bs_open_dir(dir, &bs);
}

static int teardown(void **state)
{
    (void)state;
    data_bs_close(bs);
    bs = NULL;
    nb_test_rmdir(dir);
    free(dir);
    return 0;
}

static void put_gen(data_key k, size_t len, unsigned flags)
{
    uint8_t *buf = nb_xmalloc(len ? len : 1);
    dt_fill(k.slice_id ^ k.block, 0, buf, len);
    ASSERT_OK(data_bs_put(bs, k, buf, len, flags));
    free(buf);
}

/* The path of a block file, found by iteration-independent means. */
static char *find_block_file(data_key k)
{
    char *cmd = nb_xasprintf("find '%s/blocks' -name '%016llx.%08x'", dir,
                             (unsigned long long)k.slice_id, k.block);
    FILE *f = popen(cmd, "r");
    free(cmd);
    char line[PATH_MAX] = {0};
    assert_non_null(fgets(line, sizeof line, f));
    pclose(f);
    line[strcspn(line, "\n")] = 0;
    return nb_xstrdup(line);
}

static void test_roundtrip(void **state)
{
    (void)state;
    size_t sizes[] = {
        0, 1, 100, DATA_SEG_SIZE - 1, DATA_SEG_SIZE, DATA_SEG_SIZE + 1, 1000000, DATA_BLOCK_SIZE};
    for (size_t i = 0; i < NB_ARRAY_LEN(sizes); i++) {
        data_key k = {1000 + i, (uint32_t)i};
        put_gen(k, sizes[i], 0);
        size_t len = 99;
        ASSERT_OK(data_bs_stat(bs, k, &len));
        assert_int_equal(len, sizes[i]);
        uint8_t *got;
        ASSERT_OK(data_bs_get_all(bs, k, &got, &len));
        assert_int_equal(len, sizes[i]);
        uint8_t *want = nb_xmalloc(sizes[i] + 1);
        dt_fill(k.slice_id ^ k.block, 0, want, sizes[i]);
        if (sizes[i])
            assert_memory_equal(got, want, sizes[i]);
        free(got);
        free(want);
    }
    /* Overwrite replaces. */
    data_key k = {1000, 0};
    ASSERT_OK(data_bs_put(bs, k, "abc", 3, 0));
    uint8_t *got;
    size_t len;
    ASSERT_OK(data_bs_get_all(bs, k, &got, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(got, "abc", 3);
    free(got);
    /* Bad arguments. */
    data_key zero = {0, 0};
    ASSERT_RC(data_bs_put(bs, zero, "x", 1, 0), NB_EUSAGE);
    ASSERT_RC(data_bs_put(bs, k, "x", DATA_BLOCK_SIZE + 1, 0), NB_EUSAGE);
    assert_string_equal(data_bs_name(bs), "dir");
}

static void test_ranges(void **state)
{
    (void)state;
    uint64_t seed = nb_test_seed();
    data_key k = {77, 3};
    size_t blen = 3 * DATA_SEG_SIZE + 12345;
    put_gen(k, blen, 0);
    uint8_t *want = nb_xmalloc(blen);
    dt_fill(k.slice_id ^ k.block, 0, want, blen);
    uint8_t *buf = nb_xmalloc(DATA_BLOCK_SIZE);
    for (int i = 0; i < 300; i++) {
        uint64_t off = dt_below(&seed, blen + 10);
        size_t len = (size_t)dt_below(&seed, i % 3 == 0 ? blen : 3 * DATA_SEG_SIZE / 2) + 1;
        size_t got = 12345;
        ASSERT_OK(data_bs_get(bs, k, off, len, buf, &got));
        size_t expect = off >= blen ? 0 : (blen - off < len ? blen - off : len);
        assert_int_equal(got, expect);
        if (got)
            assert_memory_equal(buf, want + off, got);
    }
    free(buf);
    free(want);
}

static void test_missing(void **state)
{
    (void)state;
    data_key k = {424242, 0};
    uint8_t buf[16];
    size_t got;
    ASSERT_RC(data_bs_get(bs, k, 0, sizeof buf, buf, &got), NB_ENOTFOUND);
    uint8_t *p;
    size_t len;
    ASSERT_RC(data_bs_get_all(bs, k, &p, &len), NB_ENOTFOUND);
    ASSERT_RC(data_bs_stat(bs, k, NULL), NB_ENOTFOUND);
    ASSERT_RC(data_bs_delete(bs, k), NB_ENOTFOUND);
    data_fdref fr;
    ASSERT_RC(data_bs_read_fd(bs, k, 0, 1, &fr), NB_ENOTFOUND);
    put_gen(k, 10, 0);
    ASSERT_OK(data_bs_delete(bs, k));
    ASSERT_RC(data_bs_stat(bs, k, NULL), NB_ENOTFOUND);
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void test_corruption(void **state)
{
    (void)state;
    data_key k = {5, 1};
    size_t blen = 3 * DATA_SEG_SIZE;
    put_gen(k, blen, 0);
    char *path = find_block_file(k);
    uint32_t hlen = data_blk_hdr_len((uint32_t)blen);
    /* A flipped payload bit in segment 1. */
    flip_byte(path, hlen + DATA_SEG_SIZE + 17);
    uint8_t *buf = nb_xmalloc(blen);
    size_t got = 0;
    /* Segment 0 alone still reads: per-segment CRCs. */
    ASSERT_OK(data_bs_get(bs, k, 0, 100, buf, &got));
    assert_int_equal(got, 100);
    ASSERT_RC(data_bs_get(bs, k, DATA_SEG_SIZE, 10, buf, &got), NB_ECHECKSUM);
    assert_int_equal(got, 0);
    ASSERT_RC(data_bs_get(bs, k, 0, blen, buf, &got), NB_ECHECKSUM);
    uint8_t *p = NULL;
    size_t len = 0;
    ASSERT_RC(data_bs_get_all(bs, k, &p, &len), NB_ECHECKSUM);
    assert_null(p);
    data_fdref fr;
    ASSERT_RC(data_bs_read_fd(bs, k, DATA_SEG_SIZE + 5, 10, &fr), NB_ECHECKSUM);
    assert_int_equal(fr.fd, -1);
    flip_byte(path, hlen + DATA_SEG_SIZE + 17); /* repaired */
    ASSERT_OK(data_bs_get(bs, k, 0, blen, buf, &got));

    /* A flipped header bit (the length field). */
    flip_byte(path, 21);
    ASSERT_RC(data_bs_get(bs, k, 0, 10, buf, &got), NB_ECORRUPT);
    flip_byte(path, 21);
    /* A flipped segment CRC. */
    flip_byte(path, DATA_BLK_FIXED + 1);
    ASSERT_RC(data_bs_get(bs, k, 0, 10, buf, &got), NB_ECHECKSUM);
    flip_byte(path, DATA_BLK_FIXED + 1);
    /* A torn (truncated) file. */
    assert_int_equal(truncate(path, hlen + DATA_SEG_SIZE), 0);
    ASSERT_OK(data_bs_get(bs, k, 0, 10, buf, &got));
    ASSERT_RC(data_bs_get(bs, k, 2 * DATA_SEG_SIZE, 10, buf, &got), NB_ECORRUPT);
    ASSERT_RC(data_bs_get_all(bs, k, &p, &len), NB_ECORRUPT);
    ASSERT_RC(data_bs_read_fd(bs, k, 0, 10, &fr), NB_ECORRUPT);
    /* A file under the wrong name. */
    data_key k2 = {6, 0};
    put_gen(k2, 10, 0);
    char *path2 = find_block_file(k2);
    data_key k3 = {5, 2};
    put_gen(k3, 10, 0);
    char *path3 = find_block_file(k3);
    assert_int_equal(rename(path2, path3), 0);
    ASSERT_RC(data_bs_get(bs, k3, 0, 10, buf, &got), NB_ECORRUPT);
    data_bs_stats st;
    ASSERT_OK(data_bs_stats_get(bs, &st));
    assert_true(st.checksum_errors >= 8);
    assert_true(st.capacity_bytes > 0);
    free(path);
    free(path2);
    free(path3);
    free(buf);
}

static void test_read_fd(void **state)
{
    (void)state;
    data_key k = {99, 7};
    size_t blen = 200000;
    put_gen(k, blen, 0);
    uint8_t *want = nb_xmalloc(blen);
    dt_fill(k.slice_id ^ k.block, 0, want, blen);
    data_fdref fr;
    ASSERT_OK(data_bs_read_fd(bs, k, 70000, 100000, &fr));
    assert_true(fr.fd >= 0);
    assert_int_equal(fr.len, 100000);
    uint8_t *buf = nb_xmalloc(fr.len);
    assert_int_equal(pread(fr.fd, buf, fr.len, (off_t)fr.off), (ssize_t)fr.len);
    assert_memory_equal(buf, want + 70000, fr.len);
    data_fdref_release(bs, &fr);
    /* Clipped at the end. */
    ASSERT_OK(data_bs_read_fd(bs, k, blen - 10, 100, &fr));
    assert_int_equal(fr.len, 10);
    data_fdref_release(bs, &fr);
    ASSERT_OK(data_bs_read_fd(bs, k, blen + 10, 100, &fr));
    assert_int_equal(fr.len, 0);
    data_fdref_release(bs, &fr);
    free(buf);
    free(want);
}

typedef struct iter_state {
    int count;
    uint64_t sum;
} iter_state;

static int count_fn(void *arg, const data_bs_entry *e)
{
    iter_state *st = arg;
    st->count++;
    st->sum += e->key.slice_id * 1000 + e->key.block;
    assert_true(e->mtime_ns > 0);
    return 0;
}

static int stop_fn(void *arg, const data_bs_entry *e)
{
    (void)arg;
    (void)e;
    return 42;
}

static void test_iterate_and_defer(void **state)
{
    (void)state;
    data_key keys[50];
    uint64_t sum = 0;
    for (int i = 0; i < 50; i++) {
        keys[i].slice_id = 1 + (uint64_t)i / 5;
        keys[i].block = (uint32_t)(i % 5);
        sum += keys[i].slice_id * 1000 + keys[i].block;
        put_gen(keys[i], 100, DATA_PUT_DEFER_SYNC);
    }
    ASSERT_OK(data_bs_sync(bs, keys, 50));
    iter_state st = {0, 0};
    ASSERT_OK(data_bs_iterate(bs, count_fn, &st));
    assert_int_equal(st.count, 50);
    assert_true(st.sum == sum);
    ASSERT_RC(data_bs_iterate(bs, stop_fn, NULL), 42);
}

static void test_reopen_cleans_tmp(void **state)
{
    (void)state;
    data_key k = {12, 0};
    put_gen(k, 5000, 0);
    /* A crash mid-put leaves a file in tmp/. */
    char *tmp = nb_xasprintf("%s/tmp/000000000000000d.00000000.7", dir);
    int fd = open(tmp, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "NBLKjunk", 8), 8);
    close(fd);
    /* A second open of a locked store fails. */
    data_bs *other = NULL;
    ASSERT_RC(data_bs_open_dir(dir, &other), NB_ELOCKED);
    assert_null(other);
    data_bs_close(bs);
    ASSERT_OK(data_bs_open_dir(dir, &bs));
    struct stat st;
    assert_int_not_equal(stat(tmp, &st), 0);
    ASSERT_OK(data_bs_stat(bs, k, NULL));
    free(tmp);
    /* A newer format is refused. */
    data_bs_close(bs);
    char *fmt = nb_xasprintf("%s/%s", dir, DATA_DIR_FORMAT_FILE);
    ASSERT_OK(nb_write_file_atomic(fmt, "nebula-data-dir 9\n", 18, 0644));
    ASSERT_RC(data_bs_open_dir(dir, &bs), NB_EVERSION);
    ASSERT_OK(nb_write_file_atomic(fmt, DATA_DIR_FORMAT_TEXT, strlen(DATA_DIR_FORMAT_TEXT), 0644));
    ASSERT_OK(data_bs_open_dir(dir, &bs));
    free(fmt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iterate_and_defer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_cleans_tmp, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
