/* nkv public API: put/get/delete, batches, iterators with bounds,
 * snapshots, reopen, flush, compaction, properties, lock, destroy. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nkv/nkv.h"

#include "test.h"

static nkv_db *open_db(const char *dir, size_t wbuf)
{
    nkv_options o;
    nkv_options_init(&o);
    if (wbuf)
        o.write_buffer_size = wbuf;
    nkv_db *db;
    ASSERT_OK(nkv_open(&o, dir, &db));
    return db;
}

static void expect(nkv_db *db, const char *k, const char *v)
{
    void *val;
    size_t len;
    int rc = nkv_get(db, NULL, k, strlen(k), &val, &len);
    if (!v) {
        ASSERT_RC(rc, NKV_ENOTFOUND);
        return;
    }
    ASSERT_OK(rc);
    assert_int_equal(len, strlen(v));
    assert_memory_equal(val, v, len);
    nkv_free(val);
}

static void put(nkv_db *db, const char *k, const char *v)
{
    ASSERT_OK(nkv_put(db, NULL, k, strlen(k), v, strlen(v)));
}

/* Counts the keys an iterator over db sees with ro (may be NULL). */
static long count_keys(nkv_db *db, const nkv_read_options *ro)
{
    nkv_iter *it;
    ASSERT_OK(nkv_iter_new(db, ro, &it));
    long n = 0;
    for (nkv_iter_seek_first(it); nkv_iter_valid(it); nkv_iter_next(it))
        n++;
    ASSERT_OK(nkv_iter_status(it));
    nkv_iter_free(it);
    return n;
}

static void test_basic(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_basic");
    nkv_db *db = open_db(dir, 0);
    put(db, "a", "1");
    put(db, "b", "2");
    put(db, "a", "3");
    expect(db, "a", "3");
    expect(db, "b", "2");
    expect(db, "c", NULL);
    ASSERT_OK(nkv_delete(db, NULL, "b", 1));
    expect(db, "b", NULL);
    ASSERT_OK(nkv_put(db, NULL, "empty", 5, "", 0));
    expect(db, "empty", "");

    nkv_batch *b;
    ASSERT_OK(nkv_batch_new(&b));
    ASSERT_OK(nkv_batch_put(b, "x", 1, "10", 2));
    ASSERT_OK(nkv_batch_put(b, "y", 1, "20", 2));
    ASSERT_OK(nkv_batch_delete(b, "a", 1));
    assert_int_equal(nkv_batch_count(b), 3);
    nkv_write_options wo = {.sync = true};
    ASSERT_OK(nkv_write(db, &wo, b));
    nkv_batch_free(b);
    expect(db, "a", NULL);
    expect(db, "x", "10");

    /* Reopen replays the WAL. */
    ASSERT_OK(nkv_close(db));
    db = open_db(dir, 0);
    expect(db, "x", "10");
    expect(db, "y", "20");
    expect(db, "a", NULL);
    expect(db, "empty", "");
    /* Flush, then read from the table. */
    ASSERT_OK(nkv_flush(db, true));
    expect(db, "x", "10");
    expect(db, "a", NULL);
    ASSERT_OK(nkv_close(db));
    db = open_db(dir, 0);
    expect(db, "y", "20");
    char *p;
    ASSERT_OK(nkv_property(db, "nkv.level-files", &p));
    assert_non_null(strstr(p, "L0:"));
    nkv_free(p);
    ASSERT_RC(nkv_property(db, "nkv.nope", &p), NKV_ENOTFOUND);
    ASSERT_OK(nkv_close(db));
    ASSERT_OK(nkv_destroy(NULL, dir));
    nb_test_rmdir(dir);
    free(dir);
}

static void test_iter_bounds_snapshots(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_iter");
    nkv_db *db = open_db(dir, 0);
    char k[16], v[16];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "k%03d", i);
        snprintf(v, sizeof v, "v%d", i);
        put(db, k, v);
    }
    nkv_snapshot *snap;
    ASSERT_OK(nkv_snapshot_new(db, &snap));
    for (int i = 0; i < 100; i += 2) {
        snprintf(k, sizeof k, "k%03d", i);
        ASSERT_OK(nkv_delete(db, NULL, k, strlen(k)));
    }
    ASSERT_OK(nkv_flush(db, true));
    nkv_read_options ro;
    nkv_read_options_init(&ro);
    ro.lower_bound = "k010";
    ro.lower_bound_len = 4;
    ro.upper_bound = "k020";
    ro.upper_bound_len = 4;
    nkv_iter *it;
    ASSERT_OK(nkv_iter_new(db, &ro, &it));
    int n = 0;
    for (nkv_iter_seek_first(it); nkv_iter_valid(it); nkv_iter_next(it)) {
        size_t kl;
        const char *key = nkv_iter_key(it, &kl);
        snprintf(k, sizeof k, "k%03d", 11 + 2 * n);
        assert_int_equal(kl, 4);
        assert_memory_equal(key, k, 4);
        n++;
    }
    assert_int_equal(n, 5);
    n = 0;
    for (nkv_iter_seek_last(it); nkv_iter_valid(it); nkv_iter_prev(it)) {
        size_t kl;
        const char *key = nkv_iter_key(it, &kl);
        snprintf(k, sizeof k, "k%03d", 19 - 2 * n);
        assert_memory_equal(key, k, 4);
        n++;
    }
    assert_int_equal(n, 5);
    ASSERT_OK(nkv_iter_status(it));
    nkv_iter_free(it);

    /* The snapshot still sees every key. */
    nkv_read_options_init(&ro);
    ro.snapshot = snap;
    ASSERT_OK(nkv_iter_new(db, &ro, &it));
    n = 0;
    for (nkv_iter_seek(it, "k050", 4); nkv_iter_valid(it); nkv_iter_next(it))
        n++;
    assert_int_equal(n, 50);
    nkv_iter_seek_for_prev(it, "k0505", 5);
    assert_true(nkv_iter_valid(it));
    size_t kl;
    assert_memory_equal(nkv_iter_key(it, &kl), "k050", 4);
    nkv_iter_free(it);
    void *val;
    size_t vl;
    ASSERT_OK(nkv_get(db, &ro, "k000", 4, &val, &vl));
    nkv_free(val);
    ASSERT_RC(nkv_get(db, NULL, "k000", 4, &val, &vl), NKV_ENOTFOUND);
    /* Compaction keeps what the snapshot needs. */
    ASSERT_OK(nkv_compact_range(db, NULL, 0, NULL, 0));
    ASSERT_OK(nkv_get(db, &ro, "k000", 4, &val, &vl));
    nkv_free(val);
    nkv_snapshot_free(db, snap);
    ASSERT_OK(nkv_compact_range(db, NULL, 0, NULL, 0));
    ASSERT_RC(nkv_get(db, NULL, "k000", 4, &val, &vl), NKV_ENOTFOUND);
    expect(db, "k001", "v1");
    ASSERT_OK(nkv_close(db));
    nb_test_rmdir(dir);
    free(dir);
}

static void test_many_flushes_and_compaction(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_many");
    nkv_options o;
    nkv_options_init(&o);
    o.write_buffer_size = 64 << 10;
    o.target_file_size = 64 << 10;
    o.max_bytes_for_level_base = 1 << 20;
    nkv_db *db;
    ASSERT_OK(nkv_open(&o, dir, &db));
    char k[32], v[128];
    int N = 20000;
    for (int i = 0; i < N; i++) {
        int x = (int)((i * 7919u) % (unsigned)N);
        snprintf(k, sizeof k, "key%08d", x);
        snprintf(v, sizeof v, "value-%d-%0100d", x, i);
        ASSERT_OK(nkv_put(db, NULL, k, strlen(k), v, strlen(v)));
    }
    ASSERT_OK(nkv_flush(db, true));
    for (int i = 0; i < N; i += 97) {
        snprintf(k, sizeof k, "key%08d", i);
        void *val;
        size_t vl;
        ASSERT_OK(nkv_get(db, NULL, k, strlen(k), &val, &vl));
        snprintf(v, sizeof v, "value-%d-", i);
        assert_memory_equal(val, v, strlen(v));
        nkv_free(val);
    }
    ASSERT_OK(nkv_close(db));
    ASSERT_OK(nkv_open(&o, dir, &db));
    nkv_iter *it;
    ASSERT_OK(nkv_iter_new(db, NULL, &it));
    int n = 0;
    for (nkv_iter_seek_first(it); nkv_iter_valid(it); nkv_iter_next(it)) {
        size_t kl;
        const char *key = nkv_iter_key(it, &kl);
        snprintf(k, sizeof k, "key%08d", n);
        assert_memory_equal(key, k, kl);
        n++;
    }
    ASSERT_OK(nkv_iter_status(it));
    assert_int_equal(n, N);
    nkv_iter_free(it);
    ASSERT_OK(nkv_compact_range(db, NULL, 0, NULL, 0));
    char *p;
    ASSERT_OK(nkv_property(db, "nkv.stats", &p));
    fprintf(stderr, "%s", p);
    nkv_free(p);
    ASSERT_OK(nkv_close(db));
    nb_test_rmdir(dir);
    free(dir);
}

static void test_lock(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_lock");
    nkv_db *db = open_db(dir, 0);
    pid_t child = fork();
    if (child == 0) {
        nkv_db *db2;
        int rc = nkv_open(NULL, dir, &db2);
        _exit(rc == NKV_ELOCKED ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_OK(nkv_close(db));
    nkv_options o;
    nkv_options_init(&o);
    o.error_if_exists = true;
    ASSERT_RC(nkv_open(&o, dir, &db), NKV_EEXIST);
    o.error_if_exists = false;
    o.create_if_missing = false;
    char *missing = nb_xasprintf("%s/missing", dir);
    ASSERT_RC(nkv_open(&o, missing, &db), -ENOENT);
    free(missing);
    nb_test_rmdir(dir);
    free(dir);
}

/* Keys longer than the lookup fast path's buffers, in memtables and tables. */
static void test_long_keys(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_longkeys");
    nkv_db *db = open_db(dir, 0);
    char *k = nb_xmalloc(2000);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 300; i++) {
            size_t kl = 200 + (size_t)(i * 37) % 1500;
            memset(k, 'a' + i % 26, kl);
            snprintf(k, 16, "%06d", i);
            k[6] = '-';
            if (round == 0) {
                ASSERT_OK(nkv_put(db, NULL, k, kl, k, kl / 2));
            } else {
                void *v;
                size_t vl;
                ASSERT_OK(nkv_get(db, NULL, k, kl, &v, &vl));
                assert_int_equal(vl, kl / 2);
                assert_memory_equal(v, k, vl);
                nkv_free(v);
                ASSERT_RC(nkv_get(db, NULL, k, kl - 1, &v, &vl), NKV_ENOTFOUND);
            }
        }
        ASSERT_OK(nkv_flush(db, true));
    }
    free(k);
    ASSERT_OK(nkv_close(db));
    nb_test_rmdir(dir);
    free(dir);
}

typedef struct conc {
    nkv_db *db;
    int id;
    int n;
    _Atomic int *stop;
} conc;

static void *conc_writer(void *arg)
{
    conc *c = arg;
    char k[32], v[64];
    nkv_batch *b;
    nkv_batch_new(&b);
    for (int i = 0; i < c->n; i++) {
        snprintf(k, sizeof k, "t%d-%06d", c->id, i);
        snprintf(v, sizeof v, "v%d", i);
        nkv_write_options wo = {.sync = i % 500 == 0};
        if (i % 3 == 0) {
            nkv_batch_clear(b);
            nkv_batch_put(b, k, strlen(k), v, strlen(v));
            if (nkv_write(c->db, &wo, b) != 0)
                fail_msg("batch write failed");
        } else if (nkv_put(c->db, &wo, k, strlen(k), v, strlen(v)) != 0) {
            fail_msg("put failed");
        }
    }
    nkv_batch_free(b);
    return NULL;
}

static void *conc_reader(void *arg)
{
    conc *c = arg;
    while (!atomic_load(c->stop)) {
        nkv_iter *it;
        if (nkv_iter_new(c->db, NULL, &it) != 0)
            fail_msg("iter_new failed");
        int n = 0;
        for (nkv_iter_seek_first(it); nkv_iter_valid(it) && n < 2000; nkv_iter_next(it))
            n++;
        if (nkv_iter_status(it) != 0)
            fail_msg("iterator error");
        nkv_iter_free(it);
        void *v;
        size_t vl;
        if (nkv_get(c->db, NULL, "t0-000000", 9, &v, &vl) == 0)
            nkv_free(v);
    }
    return NULL;
}

/* A database that switches memtables and compacts often: small buffers
 * and files, two background threads. */
static void busy_options(nkv_options *o)
{
    nkv_options_init(o);
    o->write_buffer_size = 64 << 10;
    o->max_bytes_for_level_base = 1 << 20;
    o->target_file_size = 128 << 10;
    o->background_threads = 2;
}

/* Group commit: concurrent writers (some synced) while readers iterate. */
static void test_concurrent_writers(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_conc");
    nkv_options o;
    busy_options(&o);
    nkv_db *db;
    ASSERT_OK(nkv_open(&o, dir, &db));
    enum { W = 4, R = 2 };
    int n = 3000;
#ifdef NB_SANITIZED
    n = 1000;
#endif
    _Atomic int stop = 0;
    pthread_t tw[W], tr[R];
    conc cw[W], cr[R];
    for (int i = 0; i < R; i++) {
        cr[i] = (conc){db, i, 0, &stop};
        pthread_create(&tr[i], NULL, conc_reader, &cr[i]);
    }
    for (int i = 0; i < W; i++) {
        cw[i] = (conc){db, i, n, &stop};
        pthread_create(&tw[i], NULL, conc_writer, &cw[i]);
    }
    for (int i = 0; i < W; i++)
        pthread_join(tw[i], NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < R; i++)
        pthread_join(tr[i], NULL);
    for (int pass = 0; pass < 2; pass++) {
        char k[32], v[64];
        for (int t = 0; t < W; t++) {
            for (int i = 0; i < n; i++) {
                snprintf(k, sizeof k, "t%d-%06d", t, i);
                snprintf(v, sizeof v, "v%d", i);
                expect(db, k, v);
            }
        }
        ASSERT_OK(nkv_close(db));
        ASSERT_OK(nkv_open(&o, dir, &db));
    }
    ASSERT_OK(nkv_close(db));
    nb_test_rmdir(dir);
    free(dir);
}

/* Readers pin the memtables and version without the db mutex (a per-thread
 * slot caching the current SuperVersion). Each writer's batch sets
 * w<t>-<i> and last<t> = i together; readers, more of them than there are
 * slots so that some share one, check that last<t> is at least the last
 * write that returned and never goes back, that
 * the key written with it is there, and that a snapshot sees exactly the
 * keys up to its last<t>, while tiny memtables make flushes and
 * compactions replace the SuperVersion all the time. */
typedef struct svr {
    nkv_db *db;
    int id;
    _Atomic int *stop;
    _Atomic long *acked; /* per writer: the last i whose write returned */
    _Atomic long checks;
} svr;

enum { SV_WRITERS = 2 };

static long get_num(nkv_db *db, const nkv_read_options *ro, const char *k)
{
    void *v;
    size_t vl;
    int rc = nkv_get(db, ro, k, strlen(k), &v, &vl);
    if (rc == NKV_ENOTFOUND)
        return -1;
    if (rc != 0)
        fail_msg("get %s: %d", k, rc);
    char buf[32];
    if (vl >= sizeof buf)
        fail_msg("get %s: %zu bytes", k, vl);
    memcpy(buf, v, vl);
    buf[vl] = 0;
    nkv_free(v);
    return atol(buf);
}

static void *sv_writer(void *arg)
{
    svr *c = arg;
    nkv_batch *b;
    nkv_batch_new(&b);
    char k[32], lk[32], v[32];
    snprintf(lk, sizeof lk, "last%d", c->id);
    int n = 4000;
#ifdef NB_SANITIZED
    n = 1500;
#endif
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "w%d-%06d", c->id, i);
        snprintf(v, sizeof v, "%d", i);
        nkv_batch_clear(b);
        nkv_batch_put(b, k, strlen(k), v, strlen(v));
        nkv_batch_put(b, lk, strlen(lk), v, strlen(v));
        nkv_write_options wo = {.sync = i % 700 == 0};
        if (nkv_write(c->db, &wo, b) != 0)
            fail_msg("write failed");
        atomic_store(&c->acked[c->id], i);
    }
    nkv_batch_free(b);
    return NULL;
}

static void *sv_reader(void *arg)
{
    svr *c = arg;
    long seen[SV_WRITERS] = {-1, -1};
    char k[32], lk[32];
    for (unsigned loop = 0; !atomic_load(c->stop); loop++) {
        int t = (int)(loop % SV_WRITERS);
        snprintf(lk, sizeof lk, "last%d", t);
        long acked = atomic_load(&c->acked[t]);
        long last = get_num(c->db, NULL, lk);
        if (last < acked)
            fail_msg("last%d = %ld, but write %ld had returned", t, last, acked);
        if (last < seen[t])
            fail_msg("last%d went back from %ld to %ld", t, seen[t], last);
        seen[t] = last;
        if (last >= 0) {
            snprintf(k, sizeof k, "w%d-%06ld", t, last);
            if (get_num(c->db, NULL, k) != last)
                fail_msg("%s missing though last%d = %ld", k, t, last);
        }
        if (c->id >= 3 || loop % 8)
            continue;
        nkv_snapshot *snap;
        ASSERT_OK(nkv_snapshot_new(c->db, &snap));
        nkv_read_options ro;
        nkv_read_options_init(&ro);
        ro.snapshot = snap;
        last = get_num(c->db, &ro, lk);
        snprintf(k, sizeof k, "w%d-%06ld", t, last + 1);
        if (get_num(c->db, &ro, k) != -1)
            fail_msg("snapshot at last%d = %ld sees %s", t, last, k);
        char lo[8], hi[8];
        snprintf(lo, sizeof lo, "w%d-", t);
        snprintf(hi, sizeof hi, "w%d.", t);
        ro.lower_bound = lo;
        ro.lower_bound_len = strlen(lo);
        ro.upper_bound = hi;
        ro.upper_bound_len = strlen(hi);
        long cnt = count_keys(c->db, &ro);
        nkv_snapshot_free(c->db, snap);
        if (cnt != last + 1)
            fail_msg("snapshot at last%d = %ld iterates %ld keys", t, last, cnt);
        atomic_fetch_add(&c->checks, 1);
    }
    return NULL;
}

static void test_reads_without_mutex(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_svreads");
    nkv_options o;
    busy_options(&o);
    nkv_db *db;
    ASSERT_OK(nkv_open(&o, dir, &db));
    enum { R = 34 }; /* more than NKV_SV_SLOTS (32): some share a slot */
    _Atomic int stop = 0;
    _Atomic long acked[SV_WRITERS] = {-1, -1};
    pthread_t tw[SV_WRITERS], tr[R];
    svr cw[SV_WRITERS], cr[R];
    for (int i = 0; i < R; i++) {
        cr[i] = (svr){.db = db, .id = i, .stop = &stop, .acked = acked};
        assert_int_equal(pthread_create(&tr[i], NULL, sv_reader, &cr[i]), 0);
    }
    for (int i = 0; i < SV_WRITERS; i++) {
        cw[i] = (svr){.db = db, .id = i, .stop = &stop, .acked = acked};
        assert_int_equal(pthread_create(&tw[i], NULL, sv_writer, &cw[i]), 0);
    }
    for (int i = 0; i < SV_WRITERS; i++)
        pthread_join(tw[i], NULL);
    atomic_store(&stop, 1);
    long checks = 0;
    for (int i = 0; i < R; i++) {
        pthread_join(tr[i], NULL);
        checks += atomic_load(&cr[i].checks);
    }
    assert_true(checks > 0);
    for (int t = 0; t < SV_WRITERS; t++) {
        char lk[16];
        snprintf(lk, sizeof lk, "last%d", t);
        long last = get_num(db, NULL, lk);
        assert_true(last > 0);
        for (long i = 0; i <= last; i++) {
            char k[32];
            snprintf(k, sizeof k, "w%d-%06ld", t, i);
            assert_int_equal(get_num(db, NULL, k), i);
        }
    }
    ASSERT_OK(nkv_close(db));
    nb_test_rmdir(dir);
    free(dir);
}

/* Resident memory of this process (kB), from /proc. */
static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* Reads keep at most the block cache's capacity of table data in memory:
 * a 16 MiB database read in full (gets in random order and a scan, while
 * an iterator pins a block) grows the resident set by far less than its
 * size, and the cache's usage stays within its capacity. */
static void test_reads_resident_bounded(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_mapped");
    nkv_options o;
    nkv_options_init(&o);
    o.compression = NKV_COMPRESSION_NONE;
    o.block_cache_bytes = 1u << 20;
    o.write_buffer_size = 4u << 20;
    nkv_db *db;
    ASSERT_OK(nkv_open(&o, dir, &db));
    enum { NK = 40000, VL = 400 };
    char k[32], v[VL];
    for (int i = 0; i < NK; i++) {
        snprintf(k, sizeof k, "k%08d", i);
        memset(v, 'a' + i % 26, sizeof v);
        memcpy(v, k, 9);
        ASSERT_OK(nkv_put(db, NULL, k, 9, v, sizeof v));
    }
    ASSERT_OK(nkv_flush(db, true));
    ASSERT_OK(nkv_close(db));
    ASSERT_OK(nkv_open(&o, dir, &db));
    long before = rss_kb();
    nkv_iter *pin;
    ASSERT_OK(nkv_iter_new(db, NULL, &pin));
    nkv_iter_seek_first(pin); /* holds its block across the evictions */
    assert_true(nkv_iter_valid(pin));
    uint64_t x = 1;
    for (int n = 0; n < NK; n++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int i = (int)((x >> 33) % NK);
        snprintf(k, sizeof k, "k%08d", i);
        void *val;
        size_t len;
        ASSERT_OK(nkv_get(db, NULL, k, 9, &val, &len));
        assert_int_equal(len, VL);
        assert_memory_equal(val, k, 9);
        assert_int_equal(((char *)val)[VL - 1], 'a' + i % 26);
        nkv_free(val);
    }
    assert_int_equal(count_keys(db, NULL), NK);
    size_t klen;
    const char *pk = nkv_iter_key(pin, &klen);
    assert_int_equal(klen, 9);
    assert_memory_equal(pk, "k00000000", 9);
    nkv_iter_free(pin);
    long grown = rss_kb() - before;
    char *usage;
    ASSERT_OK(nkv_property(db, "nkv.cache-usage", &usage));
    print_message("VmRSS +%ld kB, cache usage %s\n", grown, usage);
    assert_true(atoll(usage) <= (long long)o.block_cache_bytes);
    /* Mapping the tables made this the whole 16 MiB; allow the capacity,
     * scan read-ahead and pages of our binary and libraries. (ASan keeps
     * freed memory resident in its quarantine: no RSS bound there.) */
#ifndef NB_SANITIZED
    assert_true(grown < 4 * 1024);
#endif
    nkv_free(usage);
    ASSERT_OK(nkv_close(db));
    nb_test_rmdir(dir);
    free(dir);
}

/* A seek that lands on a key of one level leaves the levels whose filters
 * rule the key out unpositioned until the iterator moves; every move from
 * there must still see every level. Even keys at the bottom, odd keys in
 * an L0 table, every tenth key overwritten in the memtable. */
/* Open table files of this process: *open counts them, *deleted those
 * whose file is already unlinked. */
static void count_sst_fds(int *open, int *deleted)
{
    *open = *deleted = 0;
    for (int fd = 0; fd < 4096; fd++) {
        char link[64], target[512];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = 0;
        if (!strstr(target, ".sst"))
            continue;
        (*open)++;
        if (strstr(target, "(deleted)"))
            (*deleted)++;
    }
}

/* Reads pin each table in its metadata (no table-cache lookup per read),
 * yet the open tables stay bounded by max_open_files (at most half of it
 * pinned, the rest evicted as before; pins spread over the cache's shards
 * by hash, so the bound allows half as much again), and a table replaced
 * by a compaction is closed once no version lists it: no descriptor is
 * left on a deleted file. */
static void test_open_tables_bounded(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_open_tables");
    nkv_options o;
    nkv_options_init(&o);
    o.compression = NKV_COMPRESSION_NONE;
    o.write_buffer_size = 64u << 10;
    o.target_file_size = 64u << 10;
    o.max_open_files = 32;
    nkv_db *db;
    ASSERT_OK(nkv_open(&o, dir, &db));
    enum { NK = 20000, VL = 200 };
    char k[32], v[VL];
    for (int i = 0; i < NK; i++) {
        snprintf(k, sizeof k, "k%08d", i);
        memset(v, 'a' + i % 26, sizeof v);
        ASSERT_OK(nkv_put(db, NULL, k, 9, v, sizeof v));
    }
    ASSERT_OK(nkv_compact_range(db, NULL, 0, NULL, 0));
    char *files;
    ASSERT_OK(nkv_property(db, "nkv.total-sst-bytes", &files));
    assert_true(atoll(files) > 40 * (64 << 10)); /* more tables than max_open_files */
    nkv_free(files);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < NK; i += 7) {
            snprintf(k, sizeof k, "k%08d", i);
            void *val;
            size_t len;
            ASSERT_OK(nkv_get(db, NULL, k, 9, &val, &len));
            assert_int_equal(len, VL);
            nkv_free(val);
        }
        assert_int_equal(count_keys(db, NULL), NK);
        int open, deleted;
        count_sst_fds(&open, &deleted);
        print_message("round %d: %d tables open, %d deleted\n", round, open, deleted);
        assert_true(open > 0);
        assert_true(open <= o.max_open_files + o.max_open_files / 2);
        assert_int_equal(deleted, 0);
        /* Rewrites every table (new numbers); the old ones must close. */
        ASSERT_OK(nkv_compact_range(db, NULL, 0, NULL, 0));
    }
    ASSERT_OK(nkv_close(db));
    nb_test_rmdir(dir);
    free(dir);
}

static void check_key(nkv_iter *it, int i)
{
    char k[16];
    snprintf(k, sizeof k, "k%03d", i);
    assert_true(nkv_iter_valid(it));
    size_t kl;
    const char *key = nkv_iter_key(it, &kl);
    assert_int_equal(kl, 4);
    assert_memory_equal(key, k, 4);
}

static void test_seek_across_levels(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_seek_levels");
    nkv_db *db = open_db(dir, 0);
    char k[16];
    for (int i = 0; i < 200; i += 2) {
        snprintf(k, sizeof k, "k%03d", i);
        put(db, k, "bottom");
    }
    ASSERT_OK(nkv_compact_range(db, NULL, 0, NULL, 0));
    for (int i = 1; i < 200; i += 2) {
        snprintf(k, sizeof k, "k%03d", i);
        put(db, k, "l0");
    }
    ASSERT_OK(nkv_flush(db, true));
    for (int i = 0; i < 200; i += 10) {
        snprintf(k, sizeof k, "k%03d", i);
        put(db, k, "mem");
    }
    snprintf(k, sizeof k, "k%03d", 57);
    ASSERT_OK(nkv_delete(db, NULL, k, strlen(k)));
    nkv_iter *it;
    ASSERT_OK(nkv_iter_new(db, NULL, &it));
    for (int i = 0; i < 200; i++) {
        if (i == 57)
            continue;
        snprintf(k, sizeof k, "k%03d", i);
        nkv_iter_seek(it, k, 4);
        check_key(it, i);
        size_t vl;
        const char *v = nkv_iter_value(it, &vl);
        const char *want = i % 10 == 0 ? "mem" : i % 2 ? "l0" : "bottom";
        assert_int_equal(vl, strlen(want));
        assert_memory_equal(v, want, vl);
        nkv_iter_next(it);
        int next = i + 1 == 57 ? 58 : i + 1;
        if (next == 200) {
            assert_false(nkv_iter_valid(it));
            continue;
        }
        check_key(it, next);
        nkv_iter_seek(it, k, 4);
        nkv_iter_prev(it);
        int prev = i - 1 == 57 ? 56 : i - 1;
        if (prev < 0)
            assert_false(nkv_iter_valid(it));
        else
            check_key(it, prev);
    }
    nkv_iter_seek(it, "k057", 4);
    check_key(it, 58);
    ASSERT_OK(nkv_iter_status(it));
    nkv_iter_free(it);
    ASSERT_OK(nkv_close(db));
    nb_test_rmdir(dir);
    free(dir);
}

/* Versions of one key in every tier (bottom level, two L0 tables, the
 * memtable): a seek that lands on the newest visible version leaves the
 * older tiers unpositioned (mg_seek); every snapshot must still see its own
 * version, and next/prev must skip the older ones. */
static const char *tier_version(int i, int stage)
{
    static const char *names[] = {"v0", "v1", "v2", "v3"};
    for (int s = stage; s >= 0; s--) {
        bool has =
            s == 0 || (s == 1 && i % 3 == 0) || (s == 2 && i % 6 == 0) || (s == 3 && i % 5 == 0);
        if (s == 2 && i == 12)
            return NULL; /* deleted in the second L0 table */
        if (has)
            return names[s];
    }
    return NULL;
}

static void test_seek_versions_across_tiers(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_seek_tiers");
    nkv_db *db = open_db(dir, 0);
    char k[16];
    nkv_snapshot *snap[4];
    for (int stage = 0; stage < 4; stage++) {
        for (int i = 0; i < 100; i++) {
            const char *v = tier_version(i, stage);
            if (v == tier_version(i, stage - 1 < 0 ? 0 : stage - 1) && stage)
                continue; /* unchanged at this stage */
            snprintf(k, sizeof k, "k%03d", i);
            if (v)
                put(db, k, v);
            else
                ASSERT_OK(nkv_delete(db, NULL, k, strlen(k)));
        }
        if (stage == 0)
            ASSERT_OK(nkv_compact_range(db, NULL, 0, NULL, 0));
        else if (stage < 3)
            ASSERT_OK(nkv_flush(db, true));
        ASSERT_OK(nkv_snapshot_new(db, &snap[stage]));
    }
    for (int stage = 0; stage < 4; stage++) {
        nkv_read_options ro;
        nkv_read_options_init(&ro);
        ro.snapshot = snap[stage];
        nkv_iter *it;
        ASSERT_OK(nkv_iter_new(db, &ro, &it));
        for (int i = 0; i < 100; i++) {
            snprintf(k, sizeof k, "k%03d", i);
            nkv_iter_seek(it, k, 4);
            int at = tier_version(i, stage) ? i : i + 1;
            check_key(it, at);
            size_t vl;
            const char *v = nkv_iter_value(it, &vl);
            const char *want = tier_version(at, stage);
            assert_int_equal(vl, strlen(want));
            assert_memory_equal(v, want, vl);
            nkv_iter_next(it);
            int next = tier_version(at + 1, stage) ? at + 1 : at + 2;
            if (next >= 100)
                assert_false(nkv_iter_valid(it));
            else
                check_key(it, next);
            nkv_iter_seek(it, k, 4);
            nkv_iter_prev(it);
            int prev = i - 1;
            if (prev >= 0 && !tier_version(prev, stage))
                prev--;
            if (prev < 0)
                assert_false(nkv_iter_valid(it));
            else
                check_key(it, prev);
        }
        ASSERT_OK(nkv_iter_status(it));
        nkv_iter_free(it);
    }
    for (int stage = 0; stage < 4; stage++)
        nkv_snapshot_free(db, snap[stage]);
    ASSERT_OK(nkv_close(db));
    nb_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_iter_bounds_snapshots),
        cmocka_unit_test(test_seek_across_levels),
        cmocka_unit_test(test_seek_versions_across_tiers),
        cmocka_unit_test(test_many_flushes_and_compaction),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_reads_without_mutex),
        cmocka_unit_test(test_long_keys),
        cmocka_unit_test(test_reads_resident_bounded),
        cmocka_unit_test(test_open_tables_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
