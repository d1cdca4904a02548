/*
 * test_meta_user.c — S3 user records ('K'): the byte layout of
 * docs/metadata-format.md, add/get/remove/list with their errors, a reopen,
 * meta_check on a store with users; and the object record's part sizes.
 */
#include <errno.h>
#include <string.h>

#include "kv/kv.h"
#include "meta/meta.h"
#include "meta/meta_format.h"

#include "meta_test.h"

static void test_user_layout(void **state)
{
    (void)state;
    meta_user u = {
        .access_key = "AK1", .secret_key = "sec", .ctime_ns = 0x0102030405060708, .name = "al"};
    nb_buf b = NB_BUF_INIT;
    ASSERT_OK(meta_user_encode(&u, &b));
    static const uint8_t want[] = {1,                                  /* version */
                                   1, 3, 's', 'e', 'c',                /* secret */
                                   2, 8, 8,   7,   6,   5, 4, 3, 2, 1, /* created */
                                   3, 2, 'a', 'l'};                    /* name */
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    meta_user d;
    ASSERT_OK(meta_user_decode(nb_slice_str("AK1"), nb_buf_slice(&b), &d));
    assert_string_equal(d.access_key, "AK1");
    assert_string_equal(d.secret_key, "sec");
    assert_string_equal(d.name, "al");
    assert_int_equal(d.ctime_ns, 0x0102030405060708);
    meta_user_free(&d);
    /* Unknown fields are skipped; newer versions, truncation, no secret refused. */
    ASSERT_OK(nb_buf_append(&b, "\x09\x01x", 3));
    ASSERT_OK(meta_user_decode(nb_slice_str("AK1"), nb_buf_slice(&b), &d));
    meta_user_free(&d);
    b.data[0] = 2;
    ASSERT_RC(meta_user_decode(nb_slice_str("AK1"), nb_buf_slice(&b), &d), NB_EVERSION);
    b.data[0] = 0;
    ASSERT_RC(meta_user_decode(nb_slice_str("AK1"), nb_buf_slice(&b), &d), NB_ECORRUPT);
    b.data[0] = 1;
    ASSERT_RC(meta_user_decode(nb_slice_str("AK1"), nb_slice_of(b.data, b.len - 2), &d),
              NB_ECORRUPT);
    ASSERT_RC(meta_user_decode(nb_slice_str("AK1"), nb_slice_of(want + 6, 0), &d), NB_ECORRUPT);
    static const uint8_t nosecret[] = {1, 3, 1, 'x'};
    ASSERT_RC(meta_user_decode(nb_slice_str("AK1"), nb_slice_of(nosecret, 4), &d), NB_ECORRUPT);
    static const uint8_t badtime[] = {1, 1, 1, 's', 2, 1, 0};
    ASSERT_RC(meta_user_decode(nb_slice_str("AK1"), nb_slice_of(badtime, 7), &d), NB_ECORRUPT);
    meta_user nos = {.access_key = "AK1", .secret_key = ""};
    ASSERT_RC(meta_user_encode(&nos, &b), NB_EUSAGE);
    nb_buf_free(&b);
}

static int collect(void *arg, const meta_user *u)
{
    nb_buf *b = arg;
    ASSERT_OK(nb_buf_appendf(b, "%s=%s,", u->access_key, u->name ? u->name : ""));
    return 0;
}

static int stop_at_first(void *arg, const meta_user *u)
{
    (void)u;
    ++*(int *)arg;
    return 7;
}

static void test_user_ops(void **state)
{
    (void)state;
    meta *m = fresh("meta_users");
    assert_int_equal(meta_user_key_check("AKIA234567ABCDEFGHIJ"), 0);
    assert_int_equal(meta_user_key_check("a.b-c_d"), 0);
    static const char *const bad_keys[] = {"", "ab", "a/b", "a b", "a:b"};
    for (size_t i = 0; i < NB_ARRAY_LEN(bad_keys); i++)
        ASSERT_RC(meta_user_key_check(bad_keys[i]), NB_EUSAGE);
    char longk[130];
    memset(longk, 'A', 129);
    longk[129] = 0;
    ASSERT_RC(meta_user_key_check(longk), NB_EUSAGE);
    longk[128] = 0;
    assert_int_equal(meta_user_key_check(longk), 0);

    meta_user bob = {.access_key = "BOBKEY", .secret_key = "bs", .ctime_ns = 2, .name = "bob"};
    meta_user al = {.access_key = "ALKEY", .secret_key = "as", .ctime_ns = 1};
    ASSERT_OK(meta_user_add(m, &bob));
    ASSERT_OK(meta_user_add(m, &al));
    ASSERT_RC(meta_user_add(m, &al), -EEXIST);
    meta_user bad = {.access_key = "a/b", .secret_key = "x"};
    ASSERT_RC(meta_user_add(m, &bad), NB_EUSAGE);
    meta_user g;
    ASSERT_OK(meta_user_get(m, "BOBKEY", &g));
    assert_string_equal(g.secret_key, "bs");
    assert_string_equal(g.name, "bob");
    assert_int_equal(g.ctime_ns, 2);
    meta_user_free(&g);
    ASSERT_RC(meta_user_get(m, "NOBODY", &g), NB_ENOTFOUND);
    ASSERT_RC(meta_user_get(m, "a/b", &g), NB_ENOTFOUND);
    nb_buf l = NB_BUF_INIT;
    ASSERT_OK(meta_user_list(m, collect, &l));
    ASSERT_OK(nb_buf_nul_terminate(&l));
    assert_string_equal((char *)l.data, "ALKEY=,BOBKEY=bob,"); /* access-key order */
    int calls = 0;
    ASSERT_RC(meta_user_list(m, stop_at_first, &calls), 7);
    assert_int_equal(calls, 1);

    /* Durable across a reopen; meta_check knows nothing wrong with them. */
    m = reopen(m);
    ASSERT_OK(meta_user_get(m, "ALKEY", &g));
    meta_user_free(&g);
    meta_check_report rep;
    ASSERT_OK(meta_check(m, 0, NULL, NULL, &rep));
    assert_int_equal(rep.problems, 0);

    /* A damaged record is reported by meta_check (and left alone). */
    meta_close(m);
    kv_db *db = NULL;
    ASSERT_OK(kv_open(getenv("NB_KV_ENGINE"), g_dir, NULL, &db));
    kv_batch *b = kv_batch_new();
    static const uint8_t badval[] = {1, 1, 0}; /* an empty secret */
    kv_batch_put(b, nb_slice_str("KBADREC"), nb_slice_of(badval, sizeof badval));
    kv_batch_put(b, nb_slice_str("Ka/b"), nb_slice_of(badval, sizeof badval));
    ASSERT_OK(kv_write(db, b, KV_SYNC));
    kv_batch_clear(b);
    kv_close(db);
    ASSERT_OK(meta_open(g_dir, opts(), &m));
    ASSERT_OK(meta_check(m, META_CHECK_REPAIR, NULL, NULL, &rep));
    assert_int_equal(rep.problems, 2);
    assert_int_equal(rep.repaired, 0);
    ASSERT_RC(meta_user_get(m, "BADREC", &g), NB_ECORRUPT);
    ASSERT_RC(meta_user_list(m, collect, &l), NB_ECORRUPT);
    meta_close(m);
    ASSERT_OK(kv_open(getenv("NB_KV_ENGINE"), g_dir, NULL, &db));
    kv_batch_delete(b, nb_slice_str("KBADREC"));
    kv_batch_delete(b, nb_slice_str("Ka/b"));
    ASSERT_OK(kv_write(db, b, KV_SYNC));
    kv_batch_free(b);
    kv_close(db);
    ASSERT_OK(meta_open(g_dir, opts(), &m));
    nb_buf_reset(&l);

    ASSERT_OK(meta_user_remove(m, "BOBKEY"));
    ASSERT_RC(meta_user_remove(m, "BOBKEY"), NB_ENOTFOUND);
    ASSERT_RC(meta_user_get(m, "BOBKEY", &g), NB_ENOTFOUND);
    nb_buf_reset(&l);
    ASSERT_OK(meta_user_list(m, collect, &l));
    ASSERT_OK(nb_buf_nul_terminate(&l));
    assert_string_equal((char *)l.data, "ALKEY=,");
    nb_buf_free(&l);
    meta_close(m);
}

static void test_part_sizes(void **state)
{
    (void)state;
    uint64_t sizes[3] = {5u << 20, (5u << 20) + 7, 4};
    meta_objrec r = {.etag = "\"e-3\"", .parts = 3, .part_sizes = sizes};
    nb_buf b = NB_BUF_INIT;
    ASSERT_OK(meta_objrec_encode(&r, &b));
    /* ... tag 13 (4 bytes), then tag 14 with 3 x u64 LE. */
    static const uint8_t tail[] = {13, 4, 3,    0, 0, 0, 14, 24, 0, 0, 0x50, 0, 0, 0, 0, 0,
                                   7,  0, 0x50, 0, 0, 0, 0,  0,  4, 0, 0,    0, 0, 0, 0, 0};
    assert_true(b.len > sizeof tail);
    assert_memory_equal(b.data + b.len - sizeof tail, tail, sizeof tail);
    meta_objrec d;
    ASSERT_OK(meta_objrec_decode(nb_buf_slice(&b), &d));
    assert_int_equal(d.parts, 3);
    assert_non_null(d.part_sizes);
    assert_int_equal(d.part_sizes[1], (5u << 20) + 7);
    assert_int_equal(d.part_sizes[2], 4);
    meta_objrec_free(&d);
    /* A count that disagrees with the part count, or a ragged field. */
    r.parts = 2;
    nb_buf_reset(&b);
    ASSERT_OK(meta_objrec_encode(&r, &b));
    ASSERT_OK(meta_objrec_decode(nb_buf_slice(&b), &d)); /* 2 sizes written for 2 parts */
    assert_int_equal(d.part_sizes[1], (5u << 20) + 7);
    meta_objrec_free(&d);
    ASSERT_OK(nb_buf_append(&b, "\x0d\x04\x05\x00\x00\x00", 6)); /* parts = 5 */
    ASSERT_RC(meta_objrec_decode(nb_buf_slice(&b), &d), NB_ECORRUPT);
    nb_buf_reset(&b);
    ASSERT_OK(nb_buf_append(&b, "\x01\x0e\x03\x01\x02\x03", 6));
    ASSERT_RC(meta_objrec_decode(nb_buf_slice(&b), &d), NB_ECORRUPT);
    /* Without sizes (records from before): parts alone. */
    r.part_sizes = NULL;
    nb_buf_reset(&b);
    ASSERT_OK(meta_objrec_encode(&r, &b));
    ASSERT_OK(meta_objrec_decode(nb_buf_slice(&b), &d));
    assert_int_equal(d.parts, 2);
    assert_null(d.part_sizes);
    meta_objrec_free(&d);
    nb_buf_free(&b);
}

int main(void)
{
    nb_log_set_level(NB_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_layout),
        cmocka_unit_test(test_user_ops),
        cmocka_unit_test(test_part_sizes),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (g_dir)
        nb_test_rmdir(g_dir);
    free(g_dir);
    return rc;
}
