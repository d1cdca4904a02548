/* Block store conformance: the same behaviour from every backend (dir and
 * disk) — round trips, ranges, missing keys, deletes, iteration, zero-copy
 * refs that survive a delete, stats. */
#include "data/data_int.h"
#include "disk/disk.h"

#include "data_test.h"

typedef struct conf {
    const char *backend;
    char *dir;
    data_bs *bs;
} conf;

static int open_backend(conf *c)
{
    if (strcmp(c->backend, "dir") == 0)
        return data_bs_open_dir(c->dir, &c->bs);
    disk_options o;
    disk_options_init(&o);
    o.capacity = 96u << 20;
    return data_bs_open_disk(c->dir, &o, &c->bs);
}

static int setup(void **state)
{
    conf *c = *state;
    nb_log_set_level(NB_LOG_OFF);
    char name[64];
    snprintf(name, sizeof name, "data_conf_%s", c->backend);
    c->dir = nb_test_dir(name);
    return open_backend(c);
}

static int teardown(void **state)
{
    conf *c = *state;
    data_bs_close(c->bs);
    c->bs = NULL;
    nb_test_rmdir(c->dir);
    free(c->dir);
    return 0;
}

static void put_gen(data_bs *bs, data_key k, size_t len)
{
    uint8_t *buf = nb_xmalloc(len ? len : 1);
    dt_fill(k.slice_id * 7 + k.block, 0, buf, len);
    ASSERT_OK(data_bs_put(bs, k, buf, len, 0));
    free(buf);
}

static void test_roundtrip_ranges(void **state)
{
    conf *c = *state;
    uint64_t seed = nb_test_seed();
    size_t sizes[] = {0, 1, 4096, 65537, 1000000, DATA_BLOCK_SIZE};
    uint8_t *buf = nb_xmalloc(DATA_BLOCK_SIZE);
    uint8_t *want = nb_xmalloc(DATA_BLOCK_SIZE);
    for (size_t i = 0; i < NB_ARRAY_LEN(sizes); i++) {
        data_key k = {100 + i, (uint32_t)(i * 3)};
        put_gen(c->bs, k, sizes[i]);
        dt_fill(k.slice_id * 7 + k.block, 0, want, sizes[i]);
        size_t len;
        ASSERT_OK(data_bs_stat(c->bs, k, &len));
        assert_int_equal(len, sizes[i]);
        uint8_t *all;
        ASSERT_OK(data_bs_get_all(c->bs, k, &all, &len));
        assert_int_equal(len, sizes[i]);
        if (len)
            assert_memory_equal(all, want, len);
        free(all);
        for (int q = 0; q < 20; q++) {
            uint64_t off = dt_below(&seed, sizes[i] + 2);
            size_t n = 1 + (size_t)dt_below(&seed, sizes[i] + 1);
            size_t got = 77;
            ASSERT_OK(data_bs_get(c->bs, k, off, n, buf, &got));
            size_t expect = off >= sizes[i] ? 0 : (sizes[i] - off < n ? sizes[i] - off : n);
            assert_int_equal(got, expect);
            if (got)
                assert_memory_equal(buf, want + off, got);
        }
    }
    free(buf);
    free(want);
}

static void test_missing_delete(void **state)
{
    conf *c = *state;
    data_key k = {5, 5};
    uint8_t b[8];
    size_t got;
    ASSERT_RC(data_bs_get(c->bs, k, 0, 8, b, &got), NB_ENOTFOUND);
    ASSERT_RC(data_bs_stat(c->bs, k, NULL), NB_ENOTFOUND);
    ASSERT_RC(data_bs_delete(c->bs, k), NB_ENOTFOUND);
    put_gen(c->bs, k, 100);
    ASSERT_OK(data_bs_stat(c->bs, k, NULL));
    ASSERT_OK(data_bs_delete(c->bs, k));
    ASSERT_RC(data_bs_stat(c->bs, k, NULL), NB_ENOTFOUND);
}

static int count_fn(void *arg, const data_bs_entry *e)
{
    (void)e;
    (*(int *)arg)++;
    return 0;
}

static void test_iterate_refs_stats(void **state)
{
    conf *c = *state;
    data_key keys[20];
    for (int i = 0; i < 20; i++) {
        keys[i].slice_id = 1 + (uint64_t)i / 4;
        keys[i].block = (uint32_t)(i % 4);
        put_gen(c->bs, keys[i], 5000 + (size_t)i);
    }
    ASSERT_OK(data_bs_sync(c->bs, keys, 20));
    int n = 0;
    ASSERT_OK(data_bs_iterate(c->bs, count_fn, &n));
    assert_int_equal(n, 20);

    /* A zero-copy ref stays readable after the block is deleted. */
    data_key k = keys[3];
    size_t blen = 5003;
    uint8_t *want = nb_xmalloc(blen);
    dt_fill(k.slice_id * 7 + k.block, 0, want, blen);
    data_fdref fr;
    ASSERT_OK(data_bs_read_fd(c->bs, k, 1000, 10000, &fr));
    assert_int_equal(fr.len, blen - 1000);
    ASSERT_OK(data_bs_delete(c->bs, k));
    uint8_t *got = nb_xmalloc(fr.len);
    assert_int_equal(pread(fr.fd, got, fr.len, (off_t)fr.off), (ssize_t)fr.len);
    assert_memory_equal(got, want + 1000, fr.len);
    data_fdref_release(c->bs, &fr);
    data_fdref_release(c->bs, &fr); /* released refs are no-ops */
    free(got);
    free(want);

    data_bs_stats st;
    ASSERT_OK(data_bs_stats_get(c->bs, &st));
    assert_int_equal(st.puts, 20);
    assert_int_equal(st.deletes, 1);
    assert_true(st.capacity_bytes >= st.free_bytes);
    assert_true(st.free_bytes > 0);

    /* Blocks survive a reopen. */
    data_bs_close(c->bs);
    ASSERT_OK(open_backend(c));
    n = 0;
    ASSERT_OK(data_bs_iterate(c->bs, count_fn, &n));
    assert_int_equal(n, 19);
    size_t len;
    ASSERT_OK(data_bs_stat(c->bs, keys[19], &len));
    assert_int_equal(len, 5019);
}

int main(void)
{
    static conf dir = {"dir", NULL, NULL}, disk = {"disk", NULL, NULL};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_roundtrip_ranges, setup, teardown, &dir),
        cmocka_unit_test_prestate_setup_teardown(test_missing_delete, setup, teardown, &dir),
        cmocka_unit_test_prestate_setup_teardown(test_iterate_refs_stats, setup, teardown, &dir),
        cmocka_unit_test_prestate_setup_teardown(test_roundtrip_ranges, setup, teardown, &disk),
        cmocka_unit_test_prestate_setup_teardown(test_missing_delete, setup, teardown, &disk),
        cmocka_unit_test_prestate_setup_teardown(test_iterate_refs_stats, setup, teardown, &disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
