/* Thread pool: every task runs once, wait() sees them all, tasks may submit. */
#include <stdatomic.h>

#include "test.h"

static _Atomic int counter;
static nb_pool *pool;

static void incr(void *arg)
{
    (void)arg;
    atomic_fetch_add(&counter, 1);
}

static void spawn_more(void *arg)
{
    intptr_t n = (intptr_t)arg;
    atomic_fetch_add(&counter, 1);
    if (n > 0)
        nb_pool_submit(pool, spawn_more, (void *)(n - 1));
}

static void test_runs_every_task(void **state)
{
    (void)state;
    ASSERT_OK(nb_pool_new(4, "t", &pool));
    assert_int_equal(nb_pool_threads(pool), 4);
    atomic_store(&counter, 0);
    for (int i = 0; i < 10000; i++)
        nb_pool_submit(pool, incr, NULL);
    nb_pool_wait(pool);
    assert_int_equal(atomic_load(&counter), 10000);
    assert_int_equal(nb_pool_pending(pool), 0);

    atomic_store(&counter, 0);
    nb_pool_submit(pool, spawn_more, (void *)99);
    /* The chain re-submits from inside tasks; pending never hits zero
     * until the last link runs. */
    nb_pool_wait(pool);
    assert_int_equal(atomic_load(&counter), 100);
    nb_pool_free(pool);
}

static void test_free_drains_queue(void **state)
{
    (void)state;
    ASSERT_OK(nb_pool_new(1, "t", &pool));
    atomic_store(&counter, 0);
    for (int i = 0; i < 500; i++)
        nb_pool_submit(pool, incr, NULL);
    nb_pool_free(pool);
    assert_int_equal(atomic_load(&counter), 500);
    nb_pool_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_every_task),
        cmocka_unit_test(test_free_drains_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
