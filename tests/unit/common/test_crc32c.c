/* CRC32C against the RFC 3720 (iSCSI) vectors, hardware and software. */
#include "test.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_vectors(crc_fn f)
{
    uint8_t buf[32];
    memset(buf, 0, sizeof buf);
    assert_int_equal(f(0, buf, 32), 0x8A9136AA);
    memset(buf, 0xff, sizeof buf);
    assert_int_equal(f(0, buf, 32), 0x62A8AB43);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(f(0, buf, 32), 0x46DD794E);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(f(0, buf, 32), 0x113FDB5C);
    assert_int_equal(f(0, "123456789", 9), 0xE3069283);
    assert_int_equal(f(0, "", 0), 0);
}

static void test_sw_vectors(void **state)
{
    (void)state;
    check_vectors(nb_crc32c_sw);
}

static void test_hw_vectors(void **state)
{
    (void)state;
    if (!nb_crc32c_has_hw())
        skip();
    check_vectors(nb_crc32c_hw);
}

/* Extending in pieces at every alignment equals one pass, and both paths
 * agree on random data. */
static void test_extend_and_agree(void **state)
{
    (void)state;
    uint8_t data[4099];
    uint64_t x = nb_test_seed();
    for (size_t i = 0; i < sizeof data; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        data[i] = (uint8_t)(x >> 56);
    }
    uint32_t whole = nb_crc32c(0, data, sizeof data);
    assert_int_equal(whole, nb_crc32c_sw(0, data, sizeof data));
    for (size_t cut = 0; cut < 17; cut++) {
        uint32_t c = nb_crc32c(0, data, cut);
        c = nb_crc32c(c, data + cut, sizeof data - cut);
        assert_int_equal(c, whole);
        assert_int_equal(nb_crc32c_sw(0, data + cut, 100), nb_crc32c(0, data + cut, 100));
    }
}

static void test_mask(void **state)
{
    (void)state;
    uint32_t c = nb_crc32c(0, "foo", 3);
    assert_int_not_equal(nb_crc32c_mask(c), c);
    assert_int_equal(nb_crc32c_unmask(nb_crc32c_mask(c)), c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sw_vectors),
        cmocka_unit_test(test_hw_vectors),
        cmocka_unit_test(test_extend_and_agree),
        cmocka_unit_test(test_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
