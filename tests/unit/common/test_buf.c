/* Growable buffers, slices, caps and encodings. */
#include "test.h"

static void test_append_and_take(void **state)
{
    (void)state;
    nb_buf b = NB_BUF_INIT;
    for (int i = 0; i < 1000; i++)
        ASSERT_OK(nb_buf_appendf(&b, "%d,", i));
    assert_true(b.len > 1000);
    assert_memory_equal(b.data, "0,1,2,", 6);
    ASSERT_OK(nb_buf_nul_terminate(&b));
    assert_int_equal(strlen((char *)b.data), b.len);
    size_t len;
    uint8_t *p = nb_buf_take(&b, &len);
    assert_non_null(p);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(p);
    nb_buf_free(&b);
}

static void test_cap_leaves_buffer_unchanged(void **state)
{
    (void)state;
    nb_buf b;
    nb_buf_init(&b, 10);
    ASSERT_OK(nb_buf_append(&b, "0123456789", 10));
    ASSERT_RC(nb_buf_append(&b, "x", 1), NB_ETOOBIG);
    assert_int_equal(b.len, 10);
    nb_buf_reset(&b);
    ASSERT_RC(nb_buf_appendf(&b, "%s", "this is longer than ten"), NB_ETOOBIG);
    assert_int_equal(b.len, 0);
    nb_buf_free(&b);
}

static void test_encodings_roundtrip(void **state)
{
    (void)state;
    nb_buf b = NB_BUF_INIT;
    static const uint64_t vals[] = {
        0, 1, 127, 128, 300, 16383, 16384, (1ull << 32) - 1, 1ull << 32, UINT64_MAX};
    for (size_t i = 0; i < NB_ARRAY_LEN(vals); i++) {
        ASSERT_OK(nb_buf_put_varint(&b, vals[i]));
        ASSERT_OK(nb_buf_put_u64le(&b, vals[i]));
        ASSERT_OK(nb_buf_put_u64be(&b, vals[i]));
    }
    const uint8_t *p = b.data, *end = b.data + b.len;
    for (size_t i = 0; i < NB_ARRAY_LEN(vals); i++) {
        uint64_t v;
        const uint8_t *q = nb_varint_decode(p, end, &v);
        assert_non_null(q);
        assert_int_equal(q - p, nb_varint_len(vals[i]));
        assert_true(v == vals[i]);
        assert_true(nb_get_u64le(q) == vals[i]);
        assert_true(nb_get_u64be(q + 8) == vals[i]);
        p = q + 16;
    }
    assert_ptr_equal(p, end);
    /* Truncated and over-long varints are refused. */
    uint8_t bad[11];
    memset(bad, 0x80, sizeof bad);
    uint64_t v;
    assert_null(nb_varint_decode(bad, bad + 3, &v));
    assert_null(nb_varint_decode(bad, bad + 11, &v));
    /* Big-endian keys sort as numbers. */
    uint8_t a[8], c[8];
    nb_put_u64be(a, 255);
    nb_put_u64be(c, 256);
    assert_true(memcmp(a, c, 8) < 0);
    nb_buf_free(&b);
}

static void test_slices(void **state)
{
    (void)state;
    assert_true(nb_slice_cmp(nb_slice_str("abc"), nb_slice_str("abd")) < 0);
    assert_true(nb_slice_cmp(nb_slice_str("ab"), nb_slice_str("abc")) < 0);
    assert_true(nb_slice_cmp(nb_slice_str("abc"), nb_slice_str("ab")) > 0);
    assert_int_equal(nb_slice_cmp(nb_slice_str(""), nb_slice_str("")), 0);
    assert_true(nb_slice_eq(nb_slice_str("x"), nb_slice_of("xy", 1)));
    nb_buf b = NB_BUF_INIT;
    ASSERT_OK(nb_buf_put_lenprefixed(&b, nb_slice_str("hello")));
    assert_int_equal(b.len, 6);
    assert_int_equal(b.data[0], 5);
    nb_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_take),
        cmocka_unit_test(test_cap_leaves_buffer_unchanged),
        cmocka_unit_test(test_encodings_roundtrip),
        cmocka_unit_test(test_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
