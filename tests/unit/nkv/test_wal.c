/* WAL records: sizes across 32 KiB block boundaries, torn tails, damaged
 * records in the middle. */
#include <signal.h>
#include <sys/resource.h>

#include "nkv_int.h"
#include "test.h"

static size_t sizes[] = {0, 1, 100, 32760, 32761, 32768, 32768 * 2 + 5, 1000, 7, 100000, 3};

static void fill(uint8_t *p, size_t n, size_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + seed);
}

static void write_log(const char *path, uint64_t *offsets)
{
    const nkv_env *env = nkv_env_default();
    nkv_file *f;
    ASSERT_OK(env->open_write(env->ctx, path, &f));
    nkv_wal_writer w;
    nkv__wal_writer_init(&w, env, f, 0);
    uint8_t *buf = nb_xmalloc(200000);
    for (size_t i = 0; i < NB_ARRAY_LEN(sizes); i++) {
        offsets[i] = w.size;
        fill(buf, sizes[i], i);
        ASSERT_OK(nkv__wal_add(&w, buf, sizes[i]));
    }
    ASSERT_OK(nkv__wal_sync(&w));
    ASSERT_OK(nkv__wal_close(&w));
    free(buf);
}

/* Reads all records; returns how many matched, and the first error. */
static int read_log(const uint8_t *data, size_t len, int *err)
{
    nkv_wal_reader r;
    nkv__wal_reader_init(&r, data, len, "test.log");
    nb_slice rec;
    int n = 0, got;
    *err = 0;
    uint8_t *want = nb_xmalloc(200000);
    size_t idx = 0;
    while ((got = nkv__wal_read(&r, &rec)) != 0) {
        if (got < 0) {
            if (!*err)
                *err = got;
            continue;
        }
        /* Find which record this is (damage may skip some). */
        while (idx < NB_ARRAY_LEN(sizes) && sizes[idx] != rec.len)
            idx++;
        assert_true(idx < NB_ARRAY_LEN(sizes));
        fill(want, rec.len, idx);
        assert_memory_equal(rec.ptr, want, rec.len);
        idx++;
        n++;
    }
    free(want);
    nkv__wal_reader_free(&r);
    return n;
}

static void test_roundtrip_and_tails(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_wal");
    char *path = nb_xasprintf("%s/000001.log", dir);
    uint64_t offs[NB_ARRAY_LEN(sizes)];
    write_log(path, offs);
    uint8_t *data;
    size_t len;
    ASSERT_OK(nkv__env_read_all(nkv_env_default(), path, &data, &len));
    int err;
    assert_int_equal(read_log(data, len, &err), (int)NB_ARRAY_LEN(sizes));
    ASSERT_OK(err);
    /* Every truncation is a clean torn tail: a prefix of the records. */
    for (size_t cut = 0; cut < len; cut += 997) {
        int n = read_log(data, cut, &err);
        ASSERT_OK(err);
        int want = 0;
        for (size_t i = 0; i < NB_ARRAY_LEN(sizes); i++) {
            /* record i is complete if the next one starts at or before cut */
            uint64_t end = i + 1 < NB_ARRAY_LEN(sizes) ? offs[i + 1] : len;
            if (end <= cut)
                want++;
        }
        /* A record ending exactly before padding may be complete earlier. */
        assert_true(n >= want && n <= want + 1);
    }
    /* An append torn inside zeros written ahead (env.c): everything from
     * the cut on reads as zeros, and the log still ends cleanly there. */
    uint8_t *torn = nb_xmalloc(len + 5000);
    for (size_t cut = 0; cut < len; cut += 997) {
        memcpy(torn, data, cut);
        memset(torn + cut, 0, len + 5000 - cut);
        int n = read_log(torn, len + 5000, &err);
        ASSERT_OK(err);
        int want = 0;
        for (size_t i = 0; i < NB_ARRAY_LEN(sizes); i++) {
            uint64_t end = i + 1 < NB_ARRAY_LEN(sizes) ? offs[i + 1] : len;
            if (end <= cut)
                want++;
        }
        assert_true(n >= want && n <= want + 1);
    }
    free(torn);
    /* Zeros appended after the log (preallocation) are a clean end. */
    uint8_t *z = nb_xcalloc(1, len + 5000);
    memcpy(z, data, len);
    assert_int_equal(read_log(z, len + 5000, &err), (int)NB_ARRAY_LEN(sizes));
    ASSERT_OK(err);
    free(z);
    /* A flipped byte in an early record is reported; later blocks survive. */
    data[offs[1] + 10] ^= 1;
    int n = read_log(data, len, &err);
    assert_true(err == NB_ECHECKSUM || err == NB_ECORRUPT);
    assert_true(n >= 3 && n < (int)NB_ARRAY_LEN(sizes));
    free(data);
    free(path);
    nb_test_rmdir(dir);
    free(dir);
}

/* The log at path holds exactly n records, record i being fill(i) of
 * WAL_FILL_LEN bytes, and ends cleanly after them. */
#define WAL_FILL_LEN 3000
static void expect_filled_records(const nkv_env *env, const char *path, int n)
{
    uint8_t buf[WAL_FILL_LEN];
    uint8_t *data;
    size_t len;
    ASSERT_OK(nkv__env_read_all(env, path, &data, &len));
    nkv_wal_reader r;
    nkv__wal_reader_init(&r, data, len, path);
    nb_slice rec;
    int i = 0, got;
    while ((got = nkv__wal_read(&r, &rec)) != 0) {
        ASSERT_OK(got < 0 ? got : 0);
        fill(buf, sizeof buf, (size_t)i);
        assert_int_equal(rec.len, sizeof buf);
        assert_memory_equal(rec.ptr, buf, sizeof buf);
        i++;
    }
    assert_int_equal(i, n);
    nkv__wal_reader_free(&r);
    free(data);
}

/* The default env writes zeros ahead of a file it has synced (its later
 * syncs then need no journal commit) and cuts them off at close; a log
 * read before the close, as after a crash, ends cleanly at the zeros. */
static void test_env_zeros_ahead(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_wal_zeros");
    char *path = nb_xasprintf("%s/000001.log", dir);
    const nkv_env *env = nkv_env_default();
    nkv_file *f;
    ASSERT_OK(env->open_write(env->ctx, path, &f));
    nkv_wal_writer w;
    nkv__wal_writer_init(&w, env, f, 0);
    uint8_t buf[WAL_FILL_LEN];
    for (int i = 0; i < 200; i++) {
        fill(buf, sizeof buf, (size_t)i);
        ASSERT_OK(nkv__wal_add(&w, buf, sizeof buf));
        ASSERT_OK(nkv__wal_sync(&w));
    }
    uint64_t size;
    ASSERT_OK(env->file_size(env->ctx, path, &size));
    assert_true(size > w.size); /* zeros past the records */
    expect_filled_records(env, path, 200);
    uint64_t logical = w.size;
    ASSERT_OK(nkv__wal_close(&w));
    ASSERT_OK(env->file_size(env->ctx, path, &size));
    assert_int_equal(size, logical);
    free(path);
    nb_test_rmdir(dir);
    free(dir);
}

/* When the zeros cannot be written (here: past RLIMIT_FSIZE, as on a full
 * disk), they are cut off and the file appends plainly: every record is
 * kept and the file ends at the last one. */
static void test_env_zeros_fail(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_wal_zeros_fail");
    char *path = nb_xasprintf("%s/000001.log", dir);
    const nkv_env *env = nkv_env_default();
    nkv_file *f;
    ASSERT_OK(env->open_write(env->ctx, path, &f));
    nkv_wal_writer w;
    nkv__wal_writer_init(&w, env, f, 0);
    uint8_t buf[WAL_FILL_LEN];
    fill(buf, sizeof buf, 0);
    ASSERT_OK(nkv__wal_add(&w, buf, sizeof buf));
    ASSERT_OK(nkv__wal_sync(&w));
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 32768; /* room for the records, not for 64 KiB of zeros */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (int i = 1; i < 8; i++) {
        fill(buf, sizeof buf, (size_t)i);
        ASSERT_OK(nkv__wal_add(&w, buf, sizeof buf));
        ASSERT_OK(nkv__wal_sync(&w));
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_sig);
    uint64_t size;
    ASSERT_OK(env->file_size(env->ctx, path, &size));
    assert_int_equal(size, w.size);
    expect_filled_records(env, path, 8);
    ASSERT_OK(nkv__wal_close(&w));
    free(path);
    nb_test_rmdir(dir);
    free(dir);
}

static void test_batch_encoding(void **state)
{
    (void)state;
    nkv_batch *b;
    ASSERT_OK(nkv_batch_new(&b));
    ASSERT_OK(nkv_batch_put(b, "a", 1, "1", 1));
    ASSERT_OK(nkv_batch_delete(b, "b", 1));
    ASSERT_OK(nkv_batch_put(b, "", 0, "", 0));
    nkv__batch_set_seq(b, 100);
    assert_int_equal(nkv_batch_count(b), 3);
    assert_int_equal(nkv__batch_seq(b), 100);
    nkv_mem *m = nkv__mem_new();
    ASSERT_OK(nkv__batch_insert_mem(b->rep.data, b->rep.len, m));
    nb_buf v = NB_BUF_INIT;
    bool del;
    ASSERT_OK(nkv__mem_get(m, nb_slice_str("b"), 200, &v, &del));
    assert_true(del);
    ASSERT_OK(nkv__mem_get(m, nb_slice_str("a"), 100, &v, &del));
    assert_false(del);
    /* Truncated batches are rejected. */
    assert_int_equal(nkv__batch_iterate(b->rep.data, b->rep.len - 1, NULL, NULL), NB_ECORRUPT);
    nb_put_u32le(b->rep.data + 8, 5);
    assert_int_equal(nkv__batch_iterate(b->rep.data, b->rep.len, NULL, NULL), NB_ECORRUPT);
    nb_buf_free(&v);
    nkv__mem_unref(m);
    nkv_batch_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_tails),
        cmocka_unit_test(test_env_zeros_ahead),
        cmocka_unit_test(test_env_zeros_fail),
        cmocka_unit_test(test_batch_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
