/* The block cache: LRU eviction by bytes, refcounted entries outliving
 * eviction, one load per block under concurrency, failed loads, transient
 * blocks settling. */
#include <pthread.h>

#include "data/data_int.h"

#include "data_test.h"

static uint8_t *block_bytes(size_t n, uint8_t v)
{
    uint8_t *p = nb_xmalloc(n);
    memset(p, v, n);
    return p;
}

/* Inserts k with n bytes; returns the caller's reference. */
static data_block *insert(data_cache *c, uint64_t id, size_t n)
{
    bool owner;
    int rc;
    data_key k = {id, 0};
    data_block *b = data__cache_acquire(c, k, true, &owner, &rc);
    assert_non_null(b);
    assert_true(owner);
    data__cache_fill(c, b, 0, block_bytes(n, (uint8_t)id), n);
    return b;
}

static void test_lru_eviction(void **state)
{
    (void)state;
    data_cache *c = data__cache_new(10000);
    for (uint64_t id = 1; id <= 5; id++)
        data__block_unref(c, insert(c, id, 2000));
    data_cache_stats st;
    data__cache_stats(c, &st);
    assert_int_equal(st.bytes, 10000);
    assert_int_equal(st.entries, 5);
    /* Touch 1 so that 2 is the coldest. */
    data_key k1 = {1, 0};
    data_block *b = data__cache_peek(c, k1);
    assert_non_null(b);
    data__block_unref(c, b);
    data__block_unref(c, insert(c, 6, 2000));
    data_key k2 = {2, 0};
    assert_null(data__cache_peek(c, k2));
    b = data__cache_peek(c, k1);
    assert_non_null(b);
    data__block_unref(c, b);
    data__cache_stats(c, &st);
    assert_int_equal(st.evictions, 1);
    assert_true(st.bytes <= st.capacity);
    /* A block bigger than the cache serves its reader but is not kept. */
    b = insert(c, 7, 20000);
    assert_int_equal(b->len, 20000);
    data__block_unref(c, b);
    data_key k7 = {7, 0};
    assert_null(data__cache_peek(c, k7));
    data__cache_stats(c, &st);
    assert_true(st.bytes <= st.capacity);
    data__cache_free(c);
}

static void test_refcount_outlives_eviction(void **state)
{
    (void)state;
    data_cache *c = data__cache_new(4096);
    data_block *held = insert(c, 1, 4096);
    /* Evict it while we hold it: the bytes stay valid (ASan would catch a
     * use after free). */
    data__block_unref(c, insert(c, 2, 4096));
    data_key k1 = {1, 0};
    assert_null(data__cache_peek(c, k1));
    for (size_t i = 0; i < held->len; i++)
        assert_int_equal(held->data[i], 1);
    data__block_unref(c, held);
    /* Dropping a block others hold: same. */
    data_key k2 = {2, 0};
    data_block *b2 = data__cache_peek(c, k2);
    assert_non_null(b2);
    data__cache_drop(c, k2);
    assert_null(data__cache_peek(c, k2));
    assert_int_equal(b2->data[0], 2);
    data__block_unref(c, b2);
    data__cache_free(c);
}

typedef struct racer {
    data_cache *c;
    _Atomic int *loads;
    int result;
} racer;

static void *race_main(void *arg)
{
    racer *r = arg;
    data_key k = {9, 9};
    bool owner;
    int rc;
    data_block *b = data__cache_acquire(r->c, k, true, &owner, &rc);
    if (owner) {
        atomic_fetch_add(r->loads, 1);
        usleep(20000); /* a slow load: the others must wait, not load */
        data__cache_fill(r->c, b, 0, block_bytes(100, 9), 100);
    }
    r->result = b && b->len == 100 && b->data[50] == 9;
    data__block_unref(r->c, b);
    return NULL;
}

static void test_single_load(void **state)
{
    (void)state;
    data_cache *c = data__cache_new(1 << 20);
    _Atomic int loads = 0;
    pthread_t th[8];
    racer r[8];
    for (int i = 0; i < 8; i++) {
        r[i].c = c;
        r[i].loads = &loads;
        r[i].result = 0;
        assert_int_equal(pthread_create(&th[i], NULL, race_main, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_true(r[i].result);
    }
    assert_int_equal(atomic_load(&loads), 1);
    data_cache_stats st;
    data__cache_stats(c, &st);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.hits, 7);
    data__cache_free(c);
}

static void test_failed_load(void **state)
{
    (void)state;
    data_cache *c = data__cache_new(1 << 20);
    data_key k = {3, 0};
    bool owner;
    int rc;
    data_block *b = data__cache_acquire(c, k, true, &owner, &rc);
    assert_true(owner);
    /* While loading, a non-waiting acquire backs off. */
    bool owner2;
    assert_null(data__cache_acquire(c, k, false, &owner2, &rc));
    assert_int_equal(rc, NB_EAGAIN);
    data__cache_fill(c, b, NB_ECHECKSUM, NULL, 0);
    assert_int_equal(b->state, DATA_BLK_FAILED);
    data__block_unref(c, b);
    /* Not cached: the next acquire loads again. */
    b = data__cache_acquire(c, k, true, &owner, &rc);
    assert_true(owner);
    data__cache_fill(c, b, 0, block_bytes(10, 3), 10);
    data__block_unref(c, b);
    data_cache_stats st;
    data__cache_stats(c, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.bytes, 10);
    data__cache_free(c);
}

int main(void)
{
    nb_log_set_level(NB_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_refcount_outlives_eviction),
        cmocka_unit_test(test_single_load),
        cmocka_unit_test(test_failed_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
