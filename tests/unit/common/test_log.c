/* Logging: level filter and the line format. */
#include <errno.h>

#include "test.h"

static void test_format_and_filter(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    nb_log_set_fd(fds[1]);
    nb_log_set_level(NB_LOG_WARN);
    NB_INFO("hidden %d", 1);
    NB_WARN("shown %d", 2);
    nb_log_set_fd(2);
    close(fds[1]);
    char buf[512] = {0};
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    assert_true(n > 0);
    assert_null(strstr(buf, "hidden"));
    assert_non_null(strstr(buf, "WARN "));
    assert_non_null(strstr(buf, "test_log.c:"));
    assert_non_null(strstr(buf, "shown 2\n"));
    assert_true(buf[4] == '-' && buf[10] == 'T' && buf[23] == 'Z');
    nb_log_level l;
    ASSERT_OK(nb_log_level_parse("debug", &l));
    assert_int_equal(l, NB_LOG_DEBUG);
    ASSERT_RC(nb_log_level_parse("loud", &l), NB_EUSAGE);
    nb_log_set_level(NB_LOG_INFO);
}

static void test_clock(void **state)
{
    (void)state;
    uint64_t a = nb_mono_ns();
    nb_sleep_ns(2 * NB_NS_PER_MS);
    uint64_t b = nb_mono_ns();
    assert_true(b - a >= 2 * NB_NS_PER_MS);
    assert_true(nb_wall_ns() > 1700000000ull * NB_NS_PER_SEC);
    char ts[32];
    nb_time_iso8601(0, ts, sizeof ts);
    assert_string_equal(ts, "1970-01-01T00:00:00.000Z");
}

/* A timed wait on a monotonic condvar lasts at least what was asked: the
 * deadline is on the clock the condvar waits on (a REALTIME deadline given
 * to a MONOTONIC condvar would be decades away, the reverse long past). */
static void test_mono_timed_wait(void **state)
{
    (void)state;
    struct timespec t = nb_mono_timespec(3 * NB_NS_PER_SEC + 5);
    assert_int_equal(t.tv_sec, 3);
    assert_int_equal(t.tv_nsec, 5);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    nb_cond_init_mono(&cv);
    pthread_mutex_lock(&mu);
    uint64_t a = nb_mono_ns();
    struct timespec until = nb_mono_timespec_in(3 * NB_NS_PER_MS);
    int rc;
    while ((rc = pthread_cond_timedwait(&cv, &mu, &until)) == 0)
        ; /* spurious wake-ups */
    uint64_t waited = nb_mono_ns() - a;
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(waited >= 3 * NB_NS_PER_MS);
}

static void test_hash(void **state)
{
    (void)state;
    assert_true(nb_hash64("a", 1, 0) != nb_hash64("b", 1, 0));
    assert_true(nb_hash64("a", 1, 0) != nb_hash64("a", 1, 1));
    assert_true(nb_hash64("abc", 3, 7) == nb_hash64("abc", 3, 7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_filter),
        cmocka_unit_test(test_clock),
        cmocka_unit_test(test_mono_timed_wait),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
