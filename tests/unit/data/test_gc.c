/* The collector and released slices: never frees referenced, held or
 * pinned blocks; frees crash leftovers and blocks past a live slice's
 * end; honours the grace period; waits for (or defers to) old pins. */
#include <pthread.h>

#include "data/data_int.h"

#include "data_test.h"

static char *dir;
static data_store *st;

static int open_store(void)
{
    data_bs *bs;
    int rc = data_bs_open_dir(dir, &bs);
    if (rc)
        return rc;
    data_store_options o = {0};
    o.cache_bytes = 32u << 20;
    o.read_threads = 2;
    o.write_threads = 2;
    return data_store_open(bs, &o, &st);
}

static int setup(void **state)
{
    (void)state;
    nb_log_set_level(NB_LOG_OFF);
    dir = nb_test_dir("data_gc");
    return open_store();
}

static int teardown(void **state)
{
    (void)state;
    data_store_close(st);
    st = NULL;
    nb_test_rmdir(dir);
    free(dir);
    return 0;
}

static bool present(uint64_t id, uint32_t b)
{
    data_key k = {id, b};
    return data_bs_stat(data_store_bs(st), k, NULL) == 0;
}

typedef struct live_arg {
    const uint64_t *ids;
    const uint32_t *counts;
    size_t n;
    uint64_t unhold_after; /* unhold this slice once the live set is read */
} live_arg;

static int live_fn(void *arg, data_live *l)
{
    live_arg *a = arg;
    for (size_t i = 0; i < a->n; i++)
        data_live_add(l, a->ids[i], a->counts[i]);
    if (a->unhold_after)
        data_slice_unhold(st, a->unhold_after);
    return 0;
}

static const data_collect_opts now_opts = {.grace_ns = 1, .wait_ns = 50 * NB_NS_PER_MS};

static void test_collect_rules(void **state)
{
    (void)state;
    /* 1: live. 2: a leftover (written, never published). 3: held (not yet
     * published). 4: live with 1 block, but 2 blocks stored. */
    ASSERT_OK(dt_write_slice(st, 1, 3 * DATA_BLOCK_SIZE / 2));
    ASSERT_OK(dt_write_slice(st, 2, 1000));
    ASSERT_OK(dt_write_slice(st, 3, 1000));
    ASSERT_OK(dt_write_slice(st, 4, DATA_BLOCK_SIZE + 10));
    data_slice_unhold(st, 1);
    data_slice_unhold(st, 2);
    data_slice_unhold(st, 4);
    uint64_t ids[] = {1, 4, 1};
    uint32_t counts[] = {2, 1, 1};
    live_arg la = {ids, counts, 3, 0};

    /* Young blocks are left alone under the default grace period. */
    data_collect_report rep;
    ASSERT_OK(data_collect(st, live_fn, &la, NULL, &rep));
    assert_int_equal(rep.blocks_seen, 6);
    assert_int_equal(rep.blocks_live, 3);
    assert_int_equal(rep.blocks_young, 3);
    assert_int_equal(rep.blocks_freed, 0);
    assert_true(present(2, 0));

    /* Dry run reports, deletes nothing. */
    data_collect_opts dry = now_opts;
    dry.dry_run = 1;
    ASSERT_OK(data_collect(st, live_fn, &la, &dry, &rep));
    assert_int_equal(rep.blocks_freed, 2);
    assert_true(present(2, 0));

    ASSERT_OK(data_collect(st, live_fn, &la, &now_opts, &rep));
    assert_int_equal(rep.blocks_seen, 6);
    assert_int_equal(rep.blocks_live, 3);
    assert_int_equal(rep.blocks_held, 1);
    assert_int_equal(rep.blocks_freed, 2);
    assert_true(rep.bytes_freed > 1000);
    assert_true(present(1, 0) && present(1, 1));
    assert_false(present(2, 0));
    assert_true(present(3, 0));
    assert_true(present(4, 0));
    assert_false(present(4, 1));
    /* Held no more and still unreferenced: now it goes. */
    data_slice_unhold(st, 3);
    ASSERT_OK(data_collect(st, live_fn, &la, &now_opts, &rep));
    assert_int_equal(rep.blocks_freed, 1);
    assert_false(present(3, 0));
}

static void test_hold_ended_during_collection(void **state)
{
    (void)state;
    /* Slice 9 is published right after the collector read the live set:
     * the live set misses it, but it must survive this collection. */
    ASSERT_OK(dt_write_slice(st, 9, 100));
    live_arg la = {NULL, NULL, 0, 9};
    data_collect_report rep;
    ASSERT_OK(data_collect(st, live_fn, &la, &now_opts, &rep));
    assert_int_equal(rep.blocks_held, 1);
    assert_true(present(9, 0));
    /* The next collection no longer protects it (it is not live). */
    la.unhold_after = 0;
    ASSERT_OK(data_collect(st, live_fn, &la, &now_opts, &rep));
    assert_false(present(9, 0));
}

typedef struct pin_ender {
    data_pin pin;
    uint64_t delay_ns;
} pin_ender;

static void *end_pin_later(void *arg)
{
    pin_ender *pe = arg;
    nb_sleep_ns(pe->delay_ns);
    data_pin_end(st, pe->pin);
    return NULL;
}

static void test_pins(void **state)
{
    (void)state;
    ASSERT_OK(dt_write_slice(st, 20, 100));
    data_slice_unhold(st, 20);
    live_arg la = {NULL, NULL, 0, 0};
    data_collect_report rep;
    /* A reader pinned before the collection: deferred. */
    data_pin p = data_pin_begin(st);
    ASSERT_OK(data_collect(st, live_fn, &la, &now_opts, &rep));
    assert_int_equal(rep.blocks_deferred, 1);
    assert_int_equal(rep.blocks_freed, 0);
    assert_true(present(20, 0));
    /* The reader finishes while the collector waits: freed in the run. */
    pin_ender pe = {p, 30 * NB_NS_PER_MS};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, end_pin_later, &pe), 0);
    data_collect_opts o = now_opts;
    o.wait_ns = 10 * NB_NS_PER_SEC;
    ASSERT_OK(data_collect(st, live_fn, &la, &o, &rep));
    pthread_join(th, NULL);
    assert_int_equal(rep.blocks_freed, 1);
    assert_false(present(20, 0));

    /* Released slices wait for older pins, then go by themselves. */
    ASSERT_OK(dt_write_slice(st, 21, DATA_BLOCK_SIZE + 1));
    data_slice_unhold(st, 21);
    data_pin p1 = data_pin_begin(st);
    data_slice_release(st, 21, DATA_BLOCK_SIZE + 1);
    data_pin p2 = data_pin_begin(st); /* newer than the release */
    assert_true(present(21, 0) && present(21, 1));
    uint64_t freed = 99;
    ASSERT_OK(data_store_reclaim(st, &freed));
    assert_int_equal(freed, 0);
    data_pin_end(st, p1); /* the last pin that could see 21 */
    /* The deletes run in the background. */
    for (int i = 0; i < 500 && present(21, 1); i++)
        nb_sleep_ns(10 * NB_NS_PER_MS);
    assert_false(present(21, 0));
    assert_false(present(21, 1));
    data_pin_end(st, p2);
    /* No pins: a release deletes at once. */
    ASSERT_OK(dt_write_slice(st, 22, 10));
    data_slice_unhold(st, 22);
    data_slice_release(st, 22, 10);
    assert_false(present(22, 0));
}

static void test_crash_leftovers(void **state)
{
    (void)state;
    /* A writer that died after putting blocks and before publishing:
     * blocks are in the store, nobody holds them, nothing references them. */
    for (uint32_t b = 0; b < 3; b++) {
        data_key k = {77, b};
        ASSERT_OK(data_bs_put(data_store_bs(st), k, "leftover", 8, 0));
    }
    ASSERT_OK(dt_write_slice(st, 78, 10));
    data_store_close(st);
    ASSERT_OK(open_store());
    uint64_t ids[] = {78};
    uint32_t counts[] = {1};
    live_arg la = {ids, counts, 1, 0};
    data_collect_report rep;
    ASSERT_OK(data_collect(st, live_fn, &la, &now_opts, &rep));
    assert_int_equal(rep.blocks_freed, 3);
    assert_int_equal(rep.blocks_live, 1);
    assert_false(present(77, 0));
    assert_true(present(78, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_collect_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_ended_during_collection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_leftovers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
