/*
 * The allocator and the index on their own, plus the fragmentation
 * measurement quoted in docs/disk.md: fill a region with a mix of 4 MiB
 * and small extents, then churn (free random extents, allocate new ones)
 * and report how full the region was when an allocation first failed.
 */
#include "disk/disk_int.h"

#include "disk_test.h"

static void test_map(void **state)
{
    (void)state;
    disk__map m;
    disk__map_init(&m, 0);
    uint64_t rng = 5;
    enum { N = 20000 };
    static uint8_t in[N];
    for (int round = 0; round < 200000 / DT_SCALE; round++) {
        uint64_t k = dt_rand(&rng) % N;
        if (dt_rand(&rng) % 3) {
            disk__ent e = {k * 7, k, k + 1, (uint32_t)k, 0}, old;
            assert_int_equal(disk__map_put(&m, &e, &old), in[k]);
            in[k] = 1;
        } else {
            assert_int_equal(disk__map_del(&m, k * 7, k, NULL), in[k]);
            in[k] = 0;
        }
    }
    uint64_t n = 0;
    for (uint64_t k = 0; k < N; k++) {
        disk__ent *e = disk__map_get(&m, k * 7, k);
        assert_int_equal(e != NULL, in[k]);
        if (e) {
            assert_int_equal(e->off, k + 1);
            n++;
        }
    }
    assert_int_equal(m.n, n);
    disk__map_free(&m);
}

static void test_alloc_basic(void **state)
{
    (void)state;
    disk__alloc a;
    disk__alloc_init(&a, 1000);
    uint64_t x, y;
    ASSERT_OK(disk__alloc_get(&a, 10, &x));
    ASSERT_OK(disk__alloc_get(&a, 500, &y));
    assert_true(y >= 500 || y + 500 <= x || y >= x + 10);
    ASSERT_RC(disk__alloc_mark(&a, x, 1), NB_ECORRUPT);
    ASSERT_RC(disk__alloc_mark(&a, 999, 2), NB_ECORRUPT);
    ASSERT_RC(disk__alloc_get(&a, 600, &y), NB_ENOSPACE);
    assert_int_equal(a.used, 510);
    disk__alloc_put(&a, x, 10);
    assert_int_equal(a.used, 500);
    ASSERT_OK(disk__alloc_mark(&a, x, 10));
    disk__alloc_free_all(&a);
    /* Every AU can be handed out, one at a time. */
    disk__alloc_init(&a, 130);
    for (int i = 0; i < 130; i++)
        ASSERT_OK(disk__alloc_get(&a, 1, &x));
    ASSERT_RC(disk__alloc_get(&a, 1, &x), NB_ENOSPACE);
    assert_int_equal(disk__alloc_largest_free(&a), 0);
    disk__alloc_free_all(&a);
}

typedef struct ext {
    uint64_t au, n;
} ext;

/* Churns a region of n_au AUs with blobs of `small_pct`% small (1-16 AUs)
 * and the rest 1024 AUs (4 MiB); returns the fill (used/total) at the
 * first failed allocation after the warm-up. */
static double churn(uint64_t n_au, int small_pct, uint64_t seed)
{
    disk__alloc a;
    disk__alloc_init(&a, n_au);
    ext *live = malloc(n_au * sizeof *live);
    size_t n_live = 0;
    uint64_t rng = seed;
    double fill = 1.0;
    for (int step = 0; step < 200000; step++) {
        uint64_t want = (int)(dt_rand(&rng) % 100) < small_pct ? 1 + dt_rand(&rng) % 16 : 1024;
        uint64_t au;
        if (disk__alloc_get(&a, want, &au) == 0) {
            live[n_live++] = (ext){au, want};
            continue;
        }
        if (step > 20000) { /* past warm-up: measure the first failure */
            fill = (double)a.used / (double)n_au;
            break;
        }
        /* Full: free random extents until 30% is free, then go on. */
        while (a.used > n_au * 7 / 10) {
            size_t i = (size_t)(dt_rand(&rng) % n_live);
            disk__alloc_put(&a, live[i].au, live[i].n);
            live[i] = live[--n_live];
        }
    }
    free(live);
    disk__alloc_free_all(&a);
    return fill;
}

static void test_fragmentation(void **state)
{
    (void)state;
    uint64_t n_au = 256 * 1024; /* 1 GiB of 4 KiB AUs */
    int mixes[] = {0, 50, 90, 99};
    for (size_t i = 0; i < NB_ARRAY_LEN(mixes); i++) {
        double f = churn(n_au, mixes[i], 11 + i);
        fprintf(stderr, "fragmentation: %2d%% small blobs: first failure at %.1f%% full\n",
                mixes[i], f * 100);
        assert_true(f > 0.80);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_alloc_basic),
        cmocka_unit_test(test_fragmentation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
