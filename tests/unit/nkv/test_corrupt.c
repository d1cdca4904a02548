/*
 * Corruption: flipped bytes in an SST, the WAL and the MANIFEST are
 * detected and reported as a status (never a crash or wrong data), and
 * nkv_repair salvages what is intact.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "nkv/nkv.h"

#include "test.h"

#define N 3000

static void key_of(int i, char *k)
{
    snprintf(k, 32, "key%06d", i);
}

static size_t val_of(int i, char *v)
{
    size_t len = 50 + (size_t)(i % 50);
    for (size_t j = 0; j < len; j++)
        v[j] = (char)('a' + (i + (int)j) % 26);
    return len;
}

static nkv_options opts(void)
{
    nkv_options o;
    nkv_options_init(&o);
    o.compression = NKV_COMPRESSION_NONE;
    o.block_cache_bytes = 0;
    return o;
}

static void fill(const char *dir, bool flush)
{
    nkv_options o = opts();
    nkv_db *db;
    ASSERT_OK(nkv_open(&o, dir, &db));
    char k[32], v[128];
    for (int i = 0; i < N; i++) {
        key_of(i, k);
        size_t vl = val_of(i, v);
        ASSERT_OK(nkv_put(db, NULL, k, strlen(k), v, vl));
    }
    if (flush)
        ASSERT_OK(nkv_flush(db, true));
    ASSERT_OK(nkv_close(db));
}

/* Flips one byte at `frac` of the first file named *suffix / prefix*. */
static char *find_file(const char *dir, const char *prefix, const char *suffix)
{
    char *cmd = nb_xasprintf("ls %s | grep '^%s.*%s$' | head -1", dir, prefix, suffix);
    FILE *p = popen(cmd, "r");
    free(cmd);
    char name[256] = "";
    if (!fgets(name, sizeof name, p))
        name[0] = 0;
    pclose(p);
    name[strcspn(name, "\n")] = 0;
    if (!name[0])
        fail_msg("no %s*%s file in %s", prefix, suffix, dir);
    return nb_xasprintf("%s/%s", dir, name);
}

static void flip(const char *path, double frac)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    fstat(fd, &st);
    off_t off = (off_t)((double)st.st_size * frac);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* Counts readable keys; returns how many reads failed with a corruption
 * status. Wrong data fails the test. */
static int scan_gets(nkv_db *db, int *ok)
{
    char k[32], v[128];
    int bad = 0;
    *ok = 0;
    for (int i = 0; i < N; i++) {
        key_of(i, k);
        void *val;
        size_t vl;
        int rc = nkv_get(db, NULL, k, strlen(k), &val, &vl);
        if (rc == NKV_ECHECKSUM || rc == NKV_ECORRUPT) {
            bad++;
            continue;
        }
        if (rc == NKV_ENOTFOUND)
            continue;
        ASSERT_OK(rc);
        size_t wl = val_of(i, v);
        if (wl != vl || memcmp(v, val, vl))
            fail_msg("wrong value for %s", k);
        nkv_free(val);
        (*ok)++;
    }
    return bad;
}

/* Reads of a mapped table verify each block's checksum on first use only:
 * a damaged block must fail on every later read too, with and without a
 * block cache, and intact blocks keep answering. */
static void check_sst(const char *name, size_t cache)
{
    char *dir = nb_test_dir(name);
    fill(dir, true);
    char *sst = find_file(dir, "0", ".sst");
    flip(sst, 0.3);
    nkv_options o = opts();
    o.block_cache_bytes = cache;
    nkv_db *db;
    ASSERT_OK(nkv_open(&o, dir, &db));
    int ok;
    int bad = scan_gets(db, &ok);
    assert_true(bad > 0);
    assert_true(ok > N / 2);
    int ok_again;
    assert_int_equal(scan_gets(db, &ok_again), bad);
    assert_int_equal(ok_again, ok);
    nkv_iter *it;
    ASSERT_OK(nkv_iter_new(db, NULL, &it));
    for (nkv_iter_seek_first(it); nkv_iter_valid(it); nkv_iter_next(it)) {
    }
    int rc = nkv_iter_status(it);
    assert_true(rc == NKV_ECHECKSUM || rc == NKV_ECORRUPT);
    nkv_iter_free(it);
    ASSERT_OK(nkv_close(db));
    /* Repair keeps every intact block. */
    ASSERT_OK(nkv_repair(&o, dir));
    ASSERT_OK(nkv_open(&o, dir, &db));
    int ok2;
    assert_int_equal(scan_gets(db, &ok2), 0);
    assert_true(ok2 >= ok && ok2 < N);
    ASSERT_OK(nkv_close(db));
    free(sst);
    nb_test_rmdir(dir);
    free(dir);
}

/* Every read of a block from the file verifies its checksum (the cache
 * holds verified blocks only): damage made on disk while the database is
 * open is reported once the block is read again, never returned. With a
 * 64 KiB cache (4 KiB per shard) a block leaves the cache as soon as it is
 * released, so the second scan reads every block again. */
static void test_sst_damaged_while_open(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_corrupt_open");
    fill(dir, true);
    nkv_options o = opts();
    o.block_cache_bytes = 64u << 10;
    nkv_db *db;
    ASSERT_OK(nkv_open(&o, dir, &db));
    int ok;
    assert_int_equal(scan_gets(db, &ok), 0);
    assert_int_equal(ok, N);
    char *sst = find_file(dir, "0", ".sst");
    flip(sst, 0.3);
    assert_true(scan_gets(db, &ok) > 0);
    assert_true(ok > N / 2);
    ASSERT_OK(nkv_close(db));
    free(sst);
    nb_test_rmdir(dir);
    free(dir);
}

static void test_sst(void **state)
{
    (void)state;
    check_sst("nkv_corrupt_sst", 0);
}

static void test_sst_cached(void **state)
{
    (void)state;
    check_sst("nkv_corrupt_sst_cached", 8u << 20);
}

static void test_wal(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_corrupt_wal");
    fill(dir, false);
    char *log = find_file(dir, "0", ".log");
    flip(log, 0.5);
    nkv_options o = opts();
    o.paranoid_checks = true;
    nkv_db *db;
    int rc = nkv_open(&o, dir, &db);
    assert_true(rc == NKV_ECHECKSUM || rc == NKV_ECORRUPT);
    /* Without paranoid checks the damaged block is skipped. */
    o.paranoid_checks = false;
    ASSERT_OK(nkv_open(&o, dir, &db));
    int ok;
    assert_int_equal(scan_gets(db, &ok), 0);
    assert_true(ok > N / 2 && ok < N);
    ASSERT_OK(nkv_close(db));
    free(log);
    nb_test_rmdir(dir);
    free(dir);
}

static void test_manifest(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_corrupt_manifest");
    fill(dir, true);
    char *man = find_file(dir, "MANIFEST-", "");
    flip(man, 0.5);
    nkv_options o = opts();
    nkv_db *db;
    int rc = nkv_open(&o, dir, &db);
    assert_true(rc == NKV_ECHECKSUM || rc == NKV_ECORRUPT);
    ASSERT_OK(nkv_repair(&o, dir));
    ASSERT_OK(nkv_open(&o, dir, &db));
    int ok;
    assert_int_equal(scan_gets(db, &ok), 0);
    assert_int_equal(ok, N);
    ASSERT_OK(nkv_close(db));
    free(man);
    nb_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sst),        cmocka_unit_test(test_sst_damaged_while_open),
        cmocka_unit_test(test_sst_cached), cmocka_unit_test(test_wal),
        cmocka_unit_test(test_manifest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
