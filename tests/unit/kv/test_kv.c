/*
 * test_kv.c — the kv conformance suite. Every case runs against every
 * backend built in (kv_engines()), so a new backend is checked by the same
 * rules as rocksdb.
 */
#include <pthread.h>

#include "kv/kv.h"

#include "test.h"

#define S(str) nb_slice_of((str), strlen(str))

typedef void (*engine_case)(const char *engine, const char *dir);

static void for_each_engine(const char *name, engine_case fn)
{
    for (const char *const *e = kv_engines(); *e; e++) {
        char *tname = nb_xasprintf("kv_%s_%s", name, *e);
        char *dir = nb_test_dir(tname);
        fn(*e, dir);
        nb_test_rmdir(dir);
        free(dir);
        free(tname);
    }
}

static kv_db *open_db(const char *engine, const char *dir)
{
    kv_db *db = NULL;
    ASSERT_OK(kv_open(engine, dir, NULL, &db));
    assert_non_null(db);
    assert_string_equal(kv_engine_name(db), engine);
    return db;
}

static void put(kv_db *db, const char *k, const char *v, unsigned flags)
{
    kv_batch *b = kv_batch_new();
    kv_batch_put(b, S(k), S(v));
    ASSERT_OK(kv_write(db, b, flags));
    kv_batch_free(b);
}

static void del(kv_db *db, const char *k)
{
    kv_batch *b = kv_batch_new();
    kv_batch_delete(b, S(k));
    ASSERT_OK(kv_write(db, b, 0));
    kv_batch_free(b);
}

static void expect(kv_db *db, const kv_snapshot *snap, const char *k, const char *want)
{
    nb_buf v = NB_BUF_INIT;
    int rc = kv_get(db, snap, S(k), &v);
    if (!want) {
        ASSERT_RC(rc, NB_ENOTFOUND);
    } else {
        ASSERT_OK(rc);
        assert_int_equal(v.len, strlen(want));
        assert_memory_equal(v.data, want, v.len);
    }
    nb_buf_free(&v);
}

/* ---- cases ---- */

static void c_basic(const char *engine, const char *dir)
{
    kv_db *db = open_db(engine, dir);
    expect(db, NULL, "a", NULL);
    put(db, "a", "1", 0);
    expect(db, NULL, "a", "1");
    put(db, "a", "22", KV_SYNC);
    expect(db, NULL, "a", "22");
    put(db, "empty", "", 0);
    expect(db, NULL, "empty", "");
    del(db, "a");
    expect(db, NULL, "a", NULL);
    del(db, "never-there");

    /* Binary keys with NUL and 0xff bytes. */
    const uint8_t k1[] = {0, 1, 0, 0xff}, k2[] = {0, 1, 0};
    kv_batch *b = kv_batch_new();
    kv_batch_put(b, nb_slice_of(k1, 4), S("k1"));
    kv_batch_put(b, nb_slice_of(k2, 3), S("k2"));
    ASSERT_OK(kv_write(db, b, 0));
    kv_batch_free(b);
    nb_buf v = NB_BUF_INIT;
    ASSERT_OK(kv_get(db, NULL, nb_slice_of(k1, 4), &v));
    assert_memory_equal(v.data, "k1", 2);
    ASSERT_OK(kv_get(db, NULL, nb_slice_of(k2, 3), &v));
    assert_memory_equal(v.data, "k2", 2);
    ASSERT_RC(kv_get(db, NULL, nb_slice_of(k2, 2), &v), NB_ENOTFOUND);

    /* A large value. */
    size_t n = 1u << 20;
    char *big = nb_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7 + 3);
    b = kv_batch_new();
    kv_batch_put(b, S("big"), nb_slice_of(big, n));
    ASSERT_OK(kv_write(db, b, KV_SYNC));
    kv_batch_free(b);
    ASSERT_OK(kv_get(db, NULL, S("big"), &v));
    assert_int_equal(v.len, n);
    assert_memory_equal(v.data, big, n);
    free(big);
    /* Group commit in two steps: the write is visible at once, and its
     * sequence grows with every write. */
    b = kv_batch_new();
    kv_batch_put(b, S("g1"), S("1"));
    uint64_t s1 = 0, s2 = 0;
    ASSERT_OK(kv_write_seq(db, b, &s1));
    expect(db, NULL, "g1", "1");
    kv_batch_clear(b);
    kv_batch_put(b, S("g2"), S("2"));
    ASSERT_OK(kv_write_seq(db, b, &s2));
    kv_batch_free(b);
    assert_true(s2 > s1);
    ASSERT_OK(kv_sync_to(db, s2));
    ASSERT_OK(kv_sync_to(db, s1));
    nb_buf_free(&v);
    ASSERT_OK(kv_sync(db));
    kv_close(db);
    kv_close(NULL);

    /* Everything survives a reopen. */
    db = open_db(engine, dir);
    expect(db, NULL, "a", NULL);
    expect(db, NULL, "empty", "");
    ASSERT_OK(kv_get(db, NULL, S("big"), &v));
    assert_int_equal(v.len, n);
    nb_buf_free(&v);
    kv_close(db);
}

static void c_open_errors(const char *engine, const char *dir)
{
    kv_db *db = (kv_db *)1;
    ASSERT_RC(kv_open("no-such-engine", dir, NULL, &db), NB_EUSAGE);
    assert_null(db);

    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = 0;
    char *sub = nb_xasprintf("%s/missing", dir);
    int rc = kv_open(engine, sub, &o, &db);
    assert_true(rc < 0);
    assert_null(db);

    db = open_db(engine, dir);
    /* A second open of the same directory is refused while the first lives. */
    kv_db *db2 = NULL;
    rc = kv_open(engine, dir, NULL, &db2);
    assert_true(rc < 0);
    assert_null(db2);
    kv_close(db);

    kv_options_init(&o);
    o.error_if_exists = 1;
    rc = kv_open(engine, dir, &o, &db2);
    assert_true(rc < 0);
    assert_null(db2);
    free(sub);
}

static void c_batch(const char *engine, const char *dir)
{
    kv_db *db = open_db(engine, dir);
    put(db, "x", "old", 0);
    kv_batch *b = kv_batch_new();
    assert_int_equal(kv_batch_count(b), 0);
    ASSERT_OK(kv_write(db, b, 0)); /* an empty batch is fine */
    kv_batch_put(b, S("p"), S("1"));
    kv_batch_delete(b, S("p")); /* later delete wins */
    kv_batch_delete(b, S("q"));
    kv_batch_put(b, S("q"), S("2")); /* later put wins */
    kv_batch_put(b, S("x"), S("new"));
    assert_int_equal(kv_batch_count(b), 5);
    assert_true(kv_batch_bytes(b) > 0);
    ASSERT_OK(kv_write(db, b, KV_SYNC));
    expect(db, NULL, "p", NULL);
    expect(db, NULL, "q", "2");
    expect(db, NULL, "x", "new");
    kv_batch_clear(b);
    assert_int_equal(kv_batch_count(b), 0);

    /* delete_range: [k03, k07) */
    char key[16];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        kv_batch_put(b, S(key), S(key));
    }
    ASSERT_OK(kv_write(db, b, 0));
    kv_batch_clear(b);
    kv_batch_delete_range(b, S("k03"), S("k07"));
    kv_batch_put(b, S("k05"), S("again")); /* after the range delete: visible */
    ASSERT_OK(kv_write(db, b, 0));
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        if (i == 5)
            expect(db, NULL, key, "again");
        else if (i >= 3 && i < 7)
            expect(db, NULL, key, NULL);
        else
            expect(db, NULL, key, key);
    }
    kv_batch_free(b);
    kv_batch_free(NULL);
    kv_close(db);
}

static void fill(kv_db *db, int n)
{
    kv_batch *b = kv_batch_new();
    char key[16];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%03d", i);
        kv_batch_put(b, S(key), S(key));
    }
    ASSERT_OK(kv_write(db, b, 0));
    kv_batch_free(b);
}

static void expect_key(kv_iter *it, const char *k)
{
    if (!k) {
        assert_false(kv_iter_valid(it));
        ASSERT_OK(kv_iter_status(it));
        return;
    }
    assert_true(kv_iter_valid(it));
    nb_slice key = kv_iter_key(it);
    if (key.len != strlen(k) || memcmp(key.ptr, k, key.len) != 0)
        fail_msg("iterator at '%.*s', want '%s'", (int)key.len, key.ptr, k);
    nb_slice v = kv_iter_value(it);
    assert_int_equal(v.len, strlen(k));
}

static void c_iter(const char *engine, const char *dir)
{
    kv_db *db = open_db(engine, dir);
    kv_iter *it = NULL;
    ASSERT_OK(kv_iter_new(db, NULL, &it));
    assert_false(kv_iter_valid(it));
    kv_iter_seek_first(it);
    expect_key(it, NULL); /* empty store */
    kv_iter_free(it);

    fill(db, 100);
    ASSERT_OK(kv_iter_new(db, NULL, &it));
    kv_iter_seek_first(it);
    int n = 0;
    for (; kv_iter_valid(it); kv_iter_next(it))
        n++;
    assert_int_equal(n, 100);
    ASSERT_OK(kv_iter_status(it));
    kv_iter_seek_last(it);
    expect_key(it, "k099");
    kv_iter_seek(it, S("k050"));
    expect_key(it, "k050");
    kv_iter_seek(it, S("k050x"));
    expect_key(it, "k051");
    kv_iter_prev(it);
    expect_key(it, "k050");
    kv_iter_seek_for_prev(it, S("k050x"));
    expect_key(it, "k050");
    kv_iter_seek_for_prev(it, S("k050"));
    expect_key(it, "k050");
    kv_iter_seek_for_prev(it, S("a"));
    expect_key(it, NULL);
    kv_iter_seek(it, S("z"));
    expect_key(it, NULL);
    kv_iter_seek(it, S("k098"));
    kv_iter_next(it);
    expect_key(it, "k099");
    kv_iter_next(it);
    expect_key(it, NULL);
    kv_iter_free(it);

    /* Bounds: [k010, k020). */
    kv_iter_options io = {0};
    io.lower = S("k010");
    io.upper = S("k020");
    ASSERT_OK(kv_iter_new(db, &io, &it));
    kv_iter_seek_first(it);
    expect_key(it, "k010");
    kv_iter_seek_last(it);
    expect_key(it, "k019");
    kv_iter_next(it);
    expect_key(it, NULL);
    kv_iter_seek(it, S("k000"));
    expect_key(it, "k010");
    kv_iter_seek_for_prev(it, S("k099"));
    expect_key(it, "k019");
    kv_iter_seek(it, S("k015"));
    n = 0;
    for (; kv_iter_valid(it); kv_iter_next(it))
        n++;
    assert_int_equal(n, 5);
    kv_iter_seek(it, S("k012"));
    kv_iter_prev(it);
    kv_iter_prev(it);
    expect_key(it, "k010");
    kv_iter_prev(it);
    expect_key(it, NULL);
    kv_iter_free(it);

    /* Prefix scan: "k05" → k050..k059, forward and backward. */
    memset(&io, 0, sizeof(io));
    io.prefix = S("k05");
    ASSERT_OK(kv_iter_new(db, &io, &it));
    n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        n++;
    assert_int_equal(n, 10);
    n = 0;
    for (kv_iter_seek_last(it); kv_iter_valid(it); kv_iter_prev(it))
        n++;
    assert_int_equal(n, 10);
    kv_iter_free(it);

    /* A prefix of all 0xff bytes has no upper bound. */
    const uint8_t ff[] = {0xff, 0xff};
    kv_batch *b = kv_batch_new();
    kv_batch_put(b, nb_slice_of(ff, 2), S("ff"));
    kv_batch_put(b, nb_slice_of(ff, 1), S("f"));
    ASSERT_OK(kv_write(db, b, 0));
    kv_batch_free(b);
    memset(&io, 0, sizeof(io));
    io.prefix = nb_slice_of(ff, 1);
    ASSERT_OK(kv_iter_new(db, &io, &it));
    n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        n++;
    assert_int_equal(n, 2);
    kv_iter_free(it);

    nb_buf pe = NB_BUF_INIT;
    ASSERT_OK(kv_prefix_end(S("ab\xff"), &pe));
    assert_int_equal(pe.len, 2);
    assert_memory_equal(pe.data, "ac", 2);
    ASSERT_RC(kv_prefix_end(nb_slice_of(ff, 2), &pe), NB_ENOTFOUND);
    nb_buf_free(&pe);
    kv_close(db);
}

static void c_snapshot(const char *engine, const char *dir)
{
    kv_db *db = open_db(engine, dir);
    fill(db, 10);
    put(db, "s", "before", 0);
    kv_snapshot *snap = NULL;
    ASSERT_OK(kv_snapshot_new(db, &snap));
    kv_iter *implicit = NULL;
    ASSERT_OK(kv_iter_new(db, NULL, &implicit));

    put(db, "s", "after", 0);
    put(db, "t", "new", 0);
    del(db, "k005");
    kv_batch *b = kv_batch_new();
    kv_batch_delete_range(b, S("k000"), S("k003"));
    ASSERT_OK(kv_write(db, b, 0));
    kv_batch_free(b);

    expect(db, snap, "s", "before");
    expect(db, snap, "t", NULL);
    expect(db, snap, "k005", "k005");
    expect(db, snap, "k001", "k001");
    expect(db, NULL, "s", "after");
    expect(db, NULL, "k005", NULL);
    expect(db, NULL, "k001", NULL);

    kv_iter_options io = {0};
    io.snap = snap;
    io.prefix = S("k");
    kv_iter *it = NULL;
    ASSERT_OK(kv_iter_new(db, &io, &it));
    int n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        n++;
    assert_int_equal(n, 10);
    kv_iter_free(it);

    /* An iterator without a snapshot sees the state of its creation. */
    n = 0;
    for (kv_iter_seek_first(implicit); kv_iter_valid(implicit); kv_iter_next(implicit))
        n++;
    assert_int_equal(n, 11); /* k000..k009 + s */
    kv_iter_free(implicit);

    io.snap = NULL;
    ASSERT_OK(kv_iter_new(db, &io, &it));
    n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        n++;
    assert_int_equal(n, 6);
    kv_iter_free(it);
    kv_snapshot_free(snap);
    kv_snapshot_free(NULL);
    kv_close(db);
}

static void c_properties(const char *engine, const char *dir)
{
    kv_db *db = open_db(engine, dir);
    fill(db, 50);
    nb_buf v = NB_BUF_INIT;
    ASSERT_OK(kv_property(db, "kv.engine", &v));
    assert_int_equal(v.len, strlen(engine));
    ASSERT_OK(kv_property(db, "kv.approx-bytes", &v));
    assert_true(v.len > 0);
    ASSERT_OK(kv_property(db, "kv.approx-keys", &v));
    assert_true(v.len > 0);
    ASSERT_RC(kv_property(db, "no.such.property", &v), NB_ENOTFOUND);
    nb_buf_free(&v);
    kv_close(db);
}

#ifdef NB_SANITIZED
#define THREAD_OPS 300
#else
#define THREAD_OPS 3000
#endif
#define NTHREADS 4

typedef struct tctx {
    kv_db *db;
    int id;
} tctx;

static void *writer(void *arg)
{
    tctx *t = arg;
    char key[32], val[32];
    nb_buf v = NB_BUF_INIT;
    for (int i = 0; i < THREAD_OPS; i++) {
        snprintf(key, sizeof(key), "t%d/%06d", t->id, i);
        snprintf(val, sizeof(val), "v%d", i);
        kv_batch *b = kv_batch_new();
        kv_batch_put(b, S(key), S(val));
        kv_batch_put(b, S("shared"), S(key));
        if (i % 20 == 10) {
            /* Group commit: concurrent kv_sync_to callers share syncs. */
            uint64_t seq = 0;
            if (kv_write_seq(t->db, b, &seq) != 0 || kv_sync_to(t->db, seq) != 0)
                abort();
        } else if (kv_write(t->db, b, (i % 100) == 0 ? KV_SYNC : 0) != 0) {
            abort();
        }
        kv_batch_free(b);
        if (kv_get(t->db, NULL, S(key), &v) != 0 || v.len != strlen(val))
            abort();
        if (i % 500 == 0) {
            kv_snapshot *s = NULL;
            if (kv_snapshot_new(t->db, &s) != 0)
                abort();
            kv_iter *it = NULL;
            kv_iter_options io = {.snap = s};
            snprintf(key, sizeof(key), "t%d/", t->id);
            io.prefix = S(key);
            if (kv_iter_new(t->db, &io, &it) != 0)
                abort();
            int n = 0;
            for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
                n++;
            if (n != i + 1)
                abort();
            kv_iter_free(it);
            kv_snapshot_free(s);
        }
    }
    nb_buf_free(&v);
    return NULL;
}

static void c_threads(const char *engine, const char *dir)
{
    kv_db *db = open_db(engine, dir);
    pthread_t th[NTHREADS];
    tctx t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        t[i].db = db;
        t[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, writer, &t[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    kv_iter *it = NULL;
    kv_iter_options io = {.prefix = S("t")};
    ASSERT_OK(kv_iter_new(db, &io, &it));
    int n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        n++;
    assert_int_equal(n, NTHREADS * THREAD_OPS);
    kv_iter_free(it);
    kv_close(db);
}

#define CASE(name)                                                                                 \
    static void test_##name(void **state)                                                          \
    {                                                                                              \
        (void)state;                                                                               \
        for_each_engine(#name, c_##name);                                                          \
    }
CASE(basic)
CASE(open_errors)
CASE(batch)
CASE(iter)
CASE(snapshot)
CASE(properties)
CASE(threads)

int main(void)
{
    nb_log_set_level(NB_LOG_OFF);
    fprintf(stderr, "kv engines:");
    for (const char *const *e = kv_engines(); *e; e++)
        fprintf(stderr, " %s", *e);
    fprintf(stderr, "\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),    cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_batch),    cmocka_unit_test(test_iter),
        cmocka_unit_test(test_snapshot), cmocka_unit_test(test_properties),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
