/* Status codes: messages, names, and that our range stays clear of errno. */
#include <errno.h>

#include "test.h"

static void test_names_and_messages(void **state)
{
    (void)state;
    assert_string_equal(nb_errname(0), "OK");
    assert_string_equal(nb_errname(NB_ENOTFOUND), "NB_ENOTFOUND");
    assert_string_equal(nb_errname(NB_ECORRUPT), "NB_ECORRUPT");
    assert_string_equal(nb_errname(-ENOENT), "ENOENT");
    assert_string_equal(nb_strerror(NB_ENOTFOUND), "not found");
    assert_string_equal(nb_strerror(-ENOSPC), "No space left on device");
    assert_string_equal(nb_strerror(-29999), "unknown error");
    assert_non_null(nb_strerror(12345));
}

static void test_codes_distinct_and_outside_errno(void **state)
{
    (void)state;
    static const int codes[] = {
#define XX(name, value, msg) NB_##name,
        NB_ERR_MAP(XX)
#undef XX
    };
    for (size_t i = 0; i < NB_ARRAY_LEN(codes); i++) {
        assert_true(codes[i] < -4095);
        for (size_t j = i + 1; j < NB_ARRAY_LEN(codes); j++)
            assert_int_not_equal(codes[i], codes[j]);
    }
}

static void test_corrupt_returns_code(void **state)
{
    (void)state;
    nb_log_set_level(NB_LOG_OFF);
    assert_int_equal(NB_CORRUPT("block %d", 7), NB_ECORRUPT);
    nb_log_set_level(NB_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_messages),
        cmocka_unit_test(test_codes_distinct_and_outside_errno),
        cmocka_unit_test(test_corrupt_returns_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
