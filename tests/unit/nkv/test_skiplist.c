/* The memtable skiplist: order, point reads at sequences, iteration both
 * ways, and readers racing one writer without locks. */
#include <pthread.h>

#include "nkv_int.h"
#include "test.h"

static void test_order_and_get(void **state)
{
    (void)state;
    nkv_mem *m = nkv__mem_new();
    char k[32];
    for (int i = 0; i < 5000; i++) {
        int x = (i * 7919) % 5000;
        snprintf(k, sizeof k, "k%05d", x);
        nkv__mem_add(m, (uint64_t)i + 1, NKV_TYPE_VALUE, nb_slice_str(k), nb_slice_str(k));
    }
    /* A newer version and a tombstone. */
    nkv__mem_add(m, 6000, NKV_TYPE_VALUE, nb_slice_str("k00010"), nb_slice_str("new"));
    nkv__mem_add(m, 6001, NKV_TYPE_DELETE, nb_slice_str("k00011"), nb_slice_of(NULL, 0));
    nb_buf v = NB_BUF_INIT;
    bool del;
    ASSERT_OK(nkv__mem_get(m, nb_slice_str("k00010"), 7000, &v, &del));
    assert_false(del);
    assert_memory_equal(v.data, "new", 3);
    ASSERT_OK(nkv__mem_get(m, nb_slice_str("k00010"), 5999, &v, &del));
    assert_memory_equal(v.data, "k00010", 6);
    ASSERT_OK(nkv__mem_get(m, nb_slice_str("k00011"), 7000, &v, &del));
    assert_true(del);
    ASSERT_RC(nkv__mem_get(m, nb_slice_str("zzz"), 7000, &v, &del), NB_ENOTFOUND);
    ASSERT_RC(nkv__mem_get(m, nb_slice_str("k00010"), 0, &v, &del), NB_ENOTFOUND);
    nb_buf_free(&v);

    nkv__it *it = nkv__mem_iter(m);
    int n = 0;
    nb_buf prev = NB_BUF_INIT;
    for (IT_FIRST(it); IT_VALID(it); IT_NEXT(it)) {
        if (prev.len)
            assert_true(nkv__icmp(nb_buf_slice(&prev), IT_KEY(it)) < 0);
        nb_buf_reset(&prev);
        assert_int_equal(nb_buf_append(&prev, IT_KEY(it).ptr, IT_KEY(it).len), 0);
        n++;
    }
    assert_int_equal(n, 5002);
    n = 0;
    for (IT_LAST(it); IT_VALID(it); IT_PREV(it))
        n++;
    assert_int_equal(n, 5002);
    nb_buf ik = NB_BUF_INIT;
    nkv__ikey_build(&ik, nb_slice_str("k02500"), NKV_MAX_SEQ, NKV_TYPE_VALUE);
    IT_SEEK(it, nb_buf_slice(&ik));
    assert_true(IT_VALID(it));
    assert_memory_equal(IT_KEY(it).ptr, "k02500", 6);
    IT_PREV(it);
    assert_memory_equal(IT_KEY(it).ptr, "k02499", 6);
    IT_FREE(it);
    nb_buf_free(&ik);
    nb_buf_free(&prev);
    nkv__mem_unref(m);
}

typedef struct race {
    nkv_mem *m;
    _Atomic int done;
    _Atomic uint64_t published;
} race;

static void *reader(void *arg)
{
    race *r = arg;
    uint64_t checks = 0;
    while (!atomic_load(&r->done)) {
        uint64_t pub = atomic_load(&r->published);
        nkv__it *it = nkv__mem_iter(r->m);
        uint64_t n = 0;
        nb_slice prev = nb_slice_of(NULL, 0);
        for (IT_FIRST(it); IT_VALID(it); IT_NEXT(it)) {
            nb_slice k = IT_KEY(it);
            if (prev.ptr && nkv__icmp(prev, k) >= 0)
                fail_msg("order broken under concurrent insert");
            prev = k;
            n++;
        }
        /* Everything published before we started must be visible. */
        if (n < pub)
            fail_msg("reader saw %llu entries, %llu published", (unsigned long long)n,
                     (unsigned long long)pub);
        IT_FREE(it);
        checks++;
    }
    return (void *)(uintptr_t)checks;
}

static void test_concurrent_readers(void **state)
{
    (void)state;
    race r = {.m = nkv__mem_new()};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, reader, &r);
    char k[32];
    int n = 20000;
#ifdef NB_SANITIZED
    n = 5000;
#endif
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "%08x", (unsigned)(i * 2654435761u));
        nkv__mem_add(r.m, (uint64_t)i + 1, NKV_TYPE_VALUE, nb_slice_str(k), nb_slice_str("v"));
        atomic_store(&r.published, (uint64_t)i + 1);
    }
    atomic_store(&r.done, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    nkv__mem_unref(r.m);
}

/* The memtable's user-key filter: never a false negative (every key added,
 * tombstones too, is found through it), few false positives at the fill
 * the database gives it (~17 bits per key). */
static void test_filter(void **state)
{
    (void)state;
    nkv_mem *m = nkv__mem_new_filtered(16384); /* 131,072 bits for 7,500 keys */
    char k[32];
    for (int i = 0; i < 7500; i++) {
        snprintf(k, sizeof k, "%016d", i * 2);
        nkv__mem_add(m, (uint64_t)i + 1, i % 10 ? NKV_TYPE_VALUE : NKV_TYPE_DELETE, nb_slice_str(k),
                     nb_slice_str("v"));
    }
    nb_buf v = NB_BUF_INIT;
    int fp = 0;
    for (int i = 0; i < 15000; i++) {
        snprintf(k, sizeof k, "%016d", i);
        bool may = nkv__mem_may_contain(m, nb_slice_str(k));
        if (i % 2 == 0) {
            assert_true(may);
            bool del;
            ASSERT_OK(nkv__mem_get(m, nb_slice_str(k), 1u << 20, &v, &del));
            assert_int_equal(del, (i / 2) % 10 == 0);
        } else {
            fp += may;
            bool del;
            ASSERT_RC(nkv__mem_get(m, nb_slice_str(k), 1u << 20, &v, &del), NB_ENOTFOUND);
        }
    }
    assert_true(fp < 7500 / 20); /* < 5 % */
    nb_buf_free(&v);
    nkv__mem_unref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_get),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
