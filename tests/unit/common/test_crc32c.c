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

/* The hardware path runs three streams over long inputs (3 x 4 KiB and
 * 3 x 256 B runs) and combines them: it must equal the software path at
 * every length around those run sizes and at every alignment. */
static void test_three_way_lengths(void **state)
{
    (void)state;
    if (!nb_crc32c_has_hw())
        skip();
    enum { MAX = 3 * 3 * 4096 + 64 };
    uint8_t *data = nb_xmalloc(MAX + 8);
    uint64_t x = nb_test_seed();
    for (size_t i = 0; i < MAX + 8; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        data[i] = (uint8_t)(x >> 56);
    }
    const size_t lens[] = {0,     1,     767,   768,   769,   1535,  1536,  4096,  4101,
                           12287, 12288, 12289, 13056, 24575, 24576, 24577, 36863, MAX};
    for (size_t a = 0; a < 8; a++)
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
            assert_int_equal(nb_crc32c_hw(7, data + a, lens[i]),
                             nb_crc32c_sw(7, data + a, lens[i]));
    free(data);
}

/* The carry-less paths run chunks of 80 or 8 iterations (xmm: 64 + 72
 * bytes each, ymm: 128 + 72) and hand the rest to the 3-way path: every
 * length up to a few short chunks, and windows around every mix of long and
 * short chunks, at every alignment, must equal the software path. */
static void check_against_sw(crc_fn f, size_t vstep)
{
    size_t iter = vstep + 72, lng = 80 * iter, shrt = 8 * iter;
    size_t max = 2 * lng + 9 * shrt + 64;
    uint8_t *data = nb_xmalloc(max + 8);
    uint64_t x = nb_test_seed();
    for (size_t i = 0; i < max + 8; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        data[i] = (uint8_t)(x >> 56);
    }
    for (size_t a = 0; a < 8; a++)
        for (size_t n = 0; n <= 3 * shrt + 16; n++)
            assert_int_equal(f(7, data + a, n), nb_crc32c_sw(7, data + a, n));
    for (size_t l = 0; l <= 2; l++)
        for (size_t s = 0; s <= 9; s++) {
            size_t mid = l * lng + s * shrt;
            for (size_t n = mid < 40 ? 0 : mid - 40; n <= mid + 40; n++) {
                size_t a = n & 7;
                assert_int_equal(f(0xffffffffu, data + a, n),
                                 nb_crc32c_sw(0xffffffffu, data + a, n));
            }
        }
    /* A single flipped bit anywhere in a long input changes the CRC the
     * same way on both paths. */
    size_t n = lng + shrt + 13;
    for (size_t i = 0; i < n; i += 97) {
        data[i] ^= 0x10;
        assert_int_equal(f(0, data, n), nb_crc32c_sw(0, data, n));
        data[i] ^= 0x10;
    }
    free(data);
}

static void test_clmul_against_sw(void **state)
{
    (void)state;
    if (!nb_crc32c_has_clmul())
        skip();
    check_vectors(nb_crc32c_clmul);
    check_against_sw(nb_crc32c_clmul, 64);
}

static void test_vclmul_against_sw(void **state)
{
    (void)state;
    if (!nb_crc32c_has_vclmul())
        skip();
    check_vectors(nb_crc32c_vclmul);
    check_against_sw(nb_crc32c_vclmul, 128);
}

/* Whatever nb_crc32c picked agrees with the software path. */
static void test_dispatch_against_sw(void **state)
{
    (void)state;
    check_vectors(nb_crc32c);
    check_against_sw(nb_crc32c, nb_crc32c_has_vclmul() ? 128 : 64);
}

/* crc(A || B) from crc(A), crc(B) and |B|, at every split of a buffer
 * (an empty A or B included) and for a B of 64 KiB, the disk engine's
 * segment. */
static void test_combine(void **state)
{
    (void)state;
    enum { N = 70000 };
    uint8_t *b = malloc(N);
    assert_non_null(b);
    for (size_t i = 0; i < N; i++)
        b[i] = (uint8_t)(i * 131u + (i >> 9));
    const size_t lens[] = {0, 1, 7, 300, 4096, 65536, N};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        uint32_t whole = nb_crc32c_sw(0, b, n);
        for (size_t a = 0; a <= n; a += n > 600 ? 4093 : 1)
            assert_int_equal(
                nb_crc32c_combine(nb_crc32c_sw(0, b, a), nb_crc32c_sw(0, b + a, n - a), n - a),
                whole);
        assert_int_equal(nb_crc32c_combine(nb_crc32c_sw(0, b, n - n / 3),
                                           nb_crc32c_sw(0, b + n - n / 3, n / 3), n / 3),
                         whole);
    }
    free(b);
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
    // clang-format off
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sw_vectors),
        cmocka_unit_test(test_hw_vectors),
        cmocka_unit_test(test_extend_and_agree),
        cmocka_unit_test(test_three_way_lengths),
        cmocka_unit_test(test_clmul_against_sw),
        cmocka_unit_test(test_vclmul_against_sw),
        cmocka_unit_test(test_dispatch_against_sw),
        cmocka_unit_test(test_combine),
        cmocka_unit_test(test_mask),
    };
    // clang-format on
    return cmocka_run_group_tests(tests, NULL, NULL);
}
