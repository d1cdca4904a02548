/* Blocks, bloom filters, the LRU cache, tables and version edits. */
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nkv_int.h"
#include "test.h"

static void ikey(nb_buf *b, int i, uint64_t seq)
{
    char k[32];
    snprintf(k, sizeof k, "key%06d", i);
    nkv__ikey_build(b, nb_slice_str(k), seq, NKV_TYPE_VALUE);
}

static void test_block_roundtrip(void **state)
{
    (void)state;
    for (int ri = 1; ri <= 16; ri *= 4) {
        nkv_block_builder bb;
        nkv__bb_init(&bb, ri);
        nb_buf k = NB_BUF_INIT;
        for (int i = 0; i < 500; i++) {
            ikey(&k, i * 2, 5);
            char v[16];
            snprintf(v, sizeof v, "v%d", i);
            nkv__bb_add(&bb, nb_buf_slice(&k), nb_slice_str(v));
        }
        nb_slice raw = nkv__bb_finish(&bb);
        uint8_t *copy = nb_xmalloc(raw.len);
        memcpy(copy, raw.ptr, raw.len);
        nkv_block *b;
        ASSERT_OK(nkv__block_new(copy, raw.len, &b));
        nkv__it *it = nkv__block_iter(b, true, NULL, NULL, NULL);
        int n = 0;
        for (IT_FIRST(it); IT_VALID(it); IT_NEXT(it))
            n++;
        assert_int_equal(n, 500);
        n = 0;
        for (IT_LAST(it); IT_VALID(it); IT_PREV(it))
            n++;
        assert_int_equal(n, 500);
        /* Seek to an absent odd key lands on the next even one. */
        ikey(&k, 301, 5);
        IT_SEEK(it, nb_buf_slice(&k));
        assert_true(IT_VALID(it));
        assert_memory_equal(IT_KEY(it).ptr, "key000302", 9);
        IT_PREV(it);
        assert_memory_equal(IT_KEY(it).ptr, "key000300", 9);
        ikey(&k, 2000, 5);
        IT_SEEK(it, nb_buf_slice(&k));
        assert_false(IT_VALID(it));
        IT_FREE(it);
        nkv__block_free(b);
        nb_buf_free(&k);
        nkv__bb_free(&bb);
    }
    /* Malformed blocks are rejected, not read. */
    nkv_block *b;
    uint8_t *junk = nb_xcalloc(1, 8);
    nb_put_u32le(junk + 4, 1000);
    ASSERT_RC(nkv__block_new(junk, 8, &b), NB_ECORRUPT);
}

/* Keys longer than a block iterator's inline buffer, iterators in caller
 * storage, find's entry index, and the one-restart-per-entry check that
 * gates the mapped-table fast path. */
static void test_block_long_keys(void **state)
{
    (void)state;
    for (int ri = 1; ri <= 16; ri *= 16) {
        nkv_block_builder bb;
        nkv__bb_init(&bb, ri);
        nb_buf k = NB_BUF_INIT;
        char uk[400];
        for (int i = 0; i < 200; i++) {
            int len = 10 + (i * 37) % 380; /* 10..389 bytes, across the inline size */
            memset(uk, 'a' + i % 3, sizeof uk);
            snprintf(uk, sizeof uk, "k%05d", i);
            uk[6] = '.';
            nkv__ikey_build(&k, nb_slice_of(uk, (size_t)len), 7, NKV_TYPE_VALUE);
            nkv__bb_add(&bb, nb_buf_slice(&k), nb_slice_of(&i, sizeof i));
        }
        nb_slice raw = nkv__bb_finish(&bb);
        nkv_block blk;
        ASSERT_OK(nkv__block_init_ref(&blk, raw.ptr, raw.len));
        assert_int_equal(nkv__block_restart_each(&blk), ri == 1);
        nkv_block_it it;
        nkv__block_iter_init(&it, &blk, true, NULL, NULL, NULL);
        int n = 0;
        for (IT_FIRST(&it.base); IT_VALID(&it.base); IT_NEXT(&it.base), n++) {
            nb_slice key = IT_KEY(&it.base);
            int len = 10 + (n * 37) % 380;
            assert_int_equal(key.len, (size_t)len + 8);
            snprintf(uk, sizeof uk, "k%05d", n);
            assert_memory_equal(key.ptr, uk, 6);
            assert_int_equal(key.ptr[len - 1], 'a' + n % 3);
            int v;
            memcpy(&v, IT_VAL(&it.base).ptr, sizeof v);
            assert_int_equal(v, n);
        }
        assert_int_equal(n, 200);
        for (int i = 0; i < 200; i += 7) {
            int len = 10 + (i * 37) % 380;
            memset(uk, 'a' + i % 3, sizeof uk);
            snprintf(uk, sizeof uk, "k%05d", i);
            uk[6] = '.';
            nkv__ikey_build(&k, nb_slice_of(uk, (size_t)len), 9, NKV_TYPE_VALUE);
            IT_SEEK(&it.base, nb_buf_slice(&k));
            assert_true(IT_VALID(&it.base));
            assert_int_equal(IT_KEY(&it.base).len, (size_t)len + 8);
            if (ri == 1)
                assert_int_equal(nkv__block_iter_restart(&it.base), (uint32_t)i);
            uint8_t kb[512];
            nb_slice fk, fv;
            uint32_t ord = 999;
            assert_int_equal(
                nkv__block_find(&blk, nb_buf_slice(&k), true, kb, sizeof kb, &fk, &fv, &ord), 1);
            assert_int_equal(fk.len, (size_t)len + 8);
            if (ri == 1)
                assert_int_equal(ord, (uint32_t)i);
            /* Too small a buffer asks for the iterator path. */
            assert_int_equal(nkv__block_find(&blk, nb_buf_slice(&k), true, kb, 16, &fk, &fv, NULL),
                             2);
        }
        nkv__block_iter_fini(&it);
        nb_buf_free(&k);
        nkv__bb_free(&bb);
    }
}

/* The inline key comparison orders like memcmp, then by length. */
static void test_ucmp(void **state)
{
    (void)state;
    uint64_t rnd = 12345;
    for (int t = 0; t < 20000; t++) {
        uint8_t a[24], b[24];
        rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
        size_t la = (rnd >> 33) % 24, lb = (rnd >> 40) % 24;
        for (size_t i = 0; i < 24; i++) {
            rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
            a[i] = (uint8_t)(rnd >> 60); /* few symbols: long common prefixes */
            b[i] = (rnd >> 59) & 1 ? a[i] : (uint8_t)(rnd >> 52);
        }
        size_t m = la < lb ? la : lb;
        int want = m ? memcmp(a, b, m) : 0;
        if (want == 0)
            want = la < lb ? -1 : la > lb ? 1 : 0;
        int got = nkv__ucmp(nb_slice_of(a, la), nb_slice_of(b, lb));
        assert_int_equal(got < 0 ? -1 : got > 0, want < 0 ? -1 : want > 0);
    }
}

static void test_bloom_fp_rate(void **state)
{
    (void)state;
    int n = 20000;
    uint64_t *h = nb_xmalloc((size_t)n * sizeof *h);
    char k[32];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "in%08d", i);
        h[i] = nkv__bloom_hash(nb_slice_str(k));
    }
    nb_buf f = NB_BUF_INIT;
    nkv__bloom_build(&f, h, (size_t)n, 10);
    for (int i = 0; i < n; i++)
        assert_true(nkv__bloom_may_match(nb_buf_slice(&f), h[i]));
    int fp = 0, probes = 100000;
    for (int i = 0; i < probes; i++) {
        snprintf(k, sizeof k, "out%08d", i);
        fp += nkv__bloom_may_match(nb_buf_slice(&f), nkv__bloom_hash(nb_slice_str(k)));
    }
    double rate = (double)fp / probes;
    fprintf(stderr, "bloom: %zu bytes for %d keys, false-positive rate %.4f\n", f.len, n, rate);
    assert_true(rate < 0.02);
    nkv__buf_free(&f);
    free(h);
}

static int deleted;
static void del(const void *k, size_t kl, void *v)
{
    (void)k;
    (void)kl;
    free(v);
    deleted++;
}

static void test_cache(void **state)
{
    (void)state;
    nkv_cache *c = nkv__cache_new(16 * 100); /* 100 bytes per shard */
    deleted = 0;
    char k[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "k%d", i);
        nkv_cache_handle *h = nkv__cache_insert(c, k, strlen(k), nb_xmalloc(4), 10, del);
        nkv__cache_release(c, h);
    }
    assert_true(nkv__cache_usage(c) <= 16 * 100);
    assert_true(deleted >= 1000 - 160);
    /* A pinned entry survives eviction pressure and is freed at release. */
    nkv_cache_handle *pinned = nkv__cache_insert(c, "pin", 3, nb_xmalloc(4), 10, del);
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "x%d", i);
        nkv__cache_release(c, nkv__cache_insert(c, k, strlen(k), nb_xmalloc(4), 10, del));
    }
    assert_non_null(nkv__cache_value(pinned));
    nkv__cache_release(c, pinned);
    nkv_cache_handle *h = nkv__cache_insert(c, "dup", 3, nb_xmalloc(4), 1, del);
    nkv_cache_handle *h2 = nkv__cache_insert(c, "dup", 3, nb_xmalloc(4), 1, del);
    nkv__cache_release(c, h);
    nkv_cache_handle *l = nkv__cache_lookup(c, "dup", 3);
    assert_ptr_equal(l, h2);
    nkv__cache_release(c, l);
    nkv__cache_release(c, h2);
    nkv__cache_erase(c, "dup", 3);
    assert_null(nkv__cache_lookup(c, "dup", 3));
    uint64_t hits, misses;
    nkv__cache_stats(c, &hits, &misses);
    assert_true(hits >= 1 && misses >= 1);
    nkv__cache_free(c);
}

/* Values inside their entries (nkv__cache_alloc/publish, as cached blocks
 * are): the bytes stay valid while pinned though evicted and replaced (ASan
 * sees a use after free otherwise), lookups find the published value, and
 * an abandoned entry is simply freed. */
static void test_cache_inline_values(void **state)
{
    (void)state;
    nkv_cache *c = nkv__cache_new(16 * 1024); /* 1 KiB per shard */
    void *mem;
    nkv_cache_handle *e = nkv__cache_alloc("pinned", 6, 600, &mem);
    assert_int_equal((uintptr_t)mem % 16, 0);
    memset(mem, 0xab, 600);
    nkv_cache_handle *pinned = nkv__cache_publish(c, e, mem, 600, NULL);
    nkv__cache_abandon(nkv__cache_alloc("never", 5, 100, &mem));
    char k[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "k%d", i % 500);
        e = nkv__cache_alloc(k, strlen(k), 300, &mem);
        memset(mem, i & 0xff, 300);
        nkv__cache_release(c, nkv__cache_publish(c, e, mem, 300, NULL));
        if (i == 1000) { /* replace the pinned key: the old value lives on */
            e = nkv__cache_alloc("pinned", 6, 8, &mem);
            nkv__cache_release(c, nkv__cache_publish(c, e, mem, 8, NULL));
        }
    }
    assert_true(nkv__cache_usage(c) <= 16 * 1024);
    const uint8_t *v = nkv__cache_value(pinned);
    for (int i = 0; i < 600; i++)
        assert_int_equal(v[i], 0xab);
    nkv__cache_release(c, pinned);
    nkv_cache_handle *l = nkv__cache_lookup(c, "k499", 4);
    assert_non_null(l);
    assert_int_equal(((uint8_t *)nkv__cache_value(l))[299], 1999 & 0xff);
    nkv__cache_release(c, l);
    nkv__cache_free(c);
}

static void test_table(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_table");
    const nkv_env *env = nkv_env_default();
    for (int comp = 0; comp < 3; comp++) {
        char *path = nb_xasprintf("%s/%06d.sst", dir, comp + 1);
        nkv_file *f;
        ASSERT_OK(env->open_write(env->ctx, path, &f));
        nkv_table_opts to = {.block_size = 1024,
                             .restart_interval = 16,
                             .bloom_bits_per_key = 10,
                             .compression = (nkv_compression)comp,
                             .zstd_level = 1};
        nkv_table_builder *tb = nkv__tb_new(&to, env, f);
        nb_buf k = NB_BUF_INIT;
        for (int i = 0; i < 5000; i++) {
            ikey(&k, i, 10);
            ASSERT_OK(nkv__tb_add(tb, nb_buf_slice(&k), nb_slice_str("value value value value")));
        }
        ASSERT_OK(nkv__tb_finish(tb));
        uint64_t size = nkv__tb_size(tb);
        nkv__tb_free(tb);
        ASSERT_OK(env->close(env->ctx, f));
        ASSERT_OK(env->open_read(env->ctx, path, &f));
        nkv_cache *cache = nkv__cache_new(1 << 20);
        nkv_table *t;
        ASSERT_OK(nkv__table_open(env, f, path, size, cache, &t));
        assert_int_equal(nkv__table_entries(t), 5000);
        uint64_t entries;
        ASSERT_OK(nkv__table_check(t, &entries));
        assert_int_equal(entries, 5000);
        nb_buf v = NB_BUF_INIT;
        bool found;
        int type;
        uint64_t seq;
        for (int i = 0; i < 5000; i += 37) {
            ikey(&k, i, 20);
            ASSERT_OK(nkv__table_get(t, nb_buf_slice(&k), true, &found, &type, &seq, &v));
            assert_true(found);
            assert_int_equal(seq, 10);
            ikey(&k, i, 5); /* older snapshot than the entry */
            ASSERT_OK(nkv__table_get(t, nb_buf_slice(&k), true, &found, &type, &seq, &v));
            assert_false(found);
        }
        ikey(&k, 99999, 20);
        ASSERT_OK(nkv__table_get(t, nb_buf_slice(&k), true, &found, &type, &seq, &v));
        assert_false(found);
        nkv__it *it = nkv__table_iter(t, true, NULL, NULL, NULL);
        int n = 0;
        for (IT_LAST(it); IT_VALID(it); IT_PREV(it))
            n++;
        assert_int_equal(n, 5000);
        IT_FREE(it);
        fprintf(stderr, "table compression %d: %llu bytes\n", comp, (unsigned long long)size);
        nkv__table_free(t);
        nkv__cache_free(cache);
        nb_buf_free(&v);
        nb_buf_free(&k);
        free(path);
    }
    nb_test_rmdir(dir);
    free(dir);
}

/* Value i of test_table_chunks: one value is larger than both the
 * builder's write chunk and the scan read-ahead window (256 KiB). */
static size_t big_val(int i, uint8_t *v)
{
    size_t len = i == 700 ? (600u << 10) : 200 + (size_t)(i % 300);
    for (size_t j = 0; j < len; j++)
        v[j] = (uint8_t)(i * 7 + j);
    return len;
}

/* Tables larger than the write chunk and the read-ahead window: written in
 * chunks, read back by scans that bypass the map (fill_cache=false, as
 * compaction) forward, backward and after a seek, and by cached scans,
 * whose window grows from 64 to 256 KiB as a run of blocks goes on (a
 * scan of 600 entries after a seek crosses ~60 blocks, then turns back). */
static void test_table_chunks(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_table_chunks");
    const nkv_env *env = nkv_env_default();
    enum { N = 3000 };
    uint8_t *v = nb_xmalloc(600u << 10);
    for (int comp = 0; comp < 2; comp++) {
        char *path = nb_xasprintf("%s/%06d.sst", dir, comp + 1);
        nkv_file *f;
        ASSERT_OK(env->open_write(env->ctx, path, &f));
        nkv_table_opts to = {.block_size = 4096,
                             .restart_interval = 16,
                             .bloom_bits_per_key = 10,
                             .compression = (nkv_compression)comp};
        nkv_table_builder *tb = nkv__tb_new(&to, env, f);
        nb_buf k = NB_BUF_INIT;
        for (int i = 0; i < N; i++) {
            ikey(&k, i, 10);
            ASSERT_OK(nkv__tb_add(tb, nb_buf_slice(&k), nb_slice_of(v, big_val(i, v))));
        }
        ASSERT_OK(nkv__tb_finish(tb));
        uint64_t size = nkv__tb_size(tb);
        nkv__tb_free(tb);
        ASSERT_OK(env->close(env->ctx, f));
        uint64_t disk;
        ASSERT_OK(env->file_size(env->ctx, path, &disk));
        assert_int_equal(disk, size);
        if (comp == 0) /* snappy shrinks these patterned values a lot */
            assert_true(size > (1u << 20));
        ASSERT_OK(env->open_read(env->ctx, path, &f));
        nkv_table *t;
        ASSERT_OK(nkv__table_open(env, f, path, size, NULL, &t));
        uint64_t entries;
        ASSERT_OK(nkv__table_check(t, &entries));
        assert_int_equal(entries, N);
        for (int fill = 0; fill < 2; fill++) {
            nkv__it *it = nkv__table_iter(t, fill, NULL, NULL, NULL);
            int i = 0;
            for (IT_FIRST(it); IT_VALID(it); IT_NEXT(it), i++) {
                ikey(&k, i, 10);
                assert_true(nb_slice_eq(IT_KEY(it), nb_buf_slice(&k)));
                size_t len = big_val(i, v);
                assert_int_equal(IT_VAL(it).len, len);
                assert_memory_equal(IT_VAL(it).ptr, v, len);
            }
            assert_int_equal(i, N);
            ASSERT_OK(IT_STATUS(it));
            i = N - 1;
            for (IT_LAST(it); IT_VALID(it); IT_PREV(it), i--) {
                ikey(&k, i, 10);
                assert_true(nb_slice_eq(IT_KEY(it), nb_buf_slice(&k)));
                assert_int_equal(IT_VAL(it).len, big_val(i, v));
            }
            assert_int_equal(i, -1);
            for (int s = 0; s < N; s += 293) {
                ikey(&k, s, 20);
                IT_SEEK(it, nb_buf_slice(&k));
                for (int j = s; j < s + 600 && j < N - 1; j++, IT_NEXT(it)) {
                    assert_true(IT_VALID(it));
                    size_t len = big_val(j, v);
                    assert_int_equal(IT_VAL(it).len, len);
                    assert_memory_equal(IT_VAL(it).ptr, v, len);
                }
                IT_PREV(it); /* turn around inside a read-ahead window */
                assert_true(IT_VALID(it));
            }
            ASSERT_OK(IT_STATUS(it));
            IT_FREE(it);
        }
        nkv__table_free(t);
        nb_buf_free(&k);
        free(path);
    }
    free(v);
    nb_test_rmdir(dir);
    free(dir);
}

/* The default env opens files for reading with O_NOATIME, which only the
 * file's owner may ask for: anyone else still opens and reads them. Run
 * as root, a child drops to nobody to be "anyone else". */
static void test_open_read_not_owner(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_noatime");
    char *path = nb_xasprintf("%s/000001.sst", dir);
    const nkv_env *env = nkv_env_default();
    nkv_file *f;
    ASSERT_OK(env->open_write(env->ctx, path, &f));
    ASSERT_OK(env->append(env->ctx, f, "hello", 5));
    ASSERT_OK(env->close(env->ctx, f));
    ASSERT_OK(env->open_read(env->ctx, path, &f)); /* ours: O_NOATIME */
    char buf[8];
    size_t got = 0;
    ASSERT_OK(env->read_at(env->ctx, f, 0, buf, 5, &got));
    assert_int_equal(got, 5);
    ASSERT_OK(env->close(env->ctx, f));
    if (geteuid() == 0) {
        assert_int_equal(chmod(dir, 0755), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(2);
            got = 0;
            if (env->open_read(env->ctx, path, &f) != 0)
                _exit(3);
            if (env->read_at(env->ctx, f, 0, buf, 5, &got) != 0 || got != 5 ||
                memcmp(buf, "hello", 5) != 0)
                _exit(4);
            _exit(0);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    free(path);
    nb_test_rmdir(dir);
    free(dir);
}

static void test_version_edit(void **state)
{
    (void)state;
    nkv_edit e;
    nkv__edit_init(&e);
    e.has_log = e.has_next_file = e.has_last_seq = true;
    e.log_number = 7;
    e.next_file = 42;
    e.last_seq = 123456789;
    nkv__edit_delete(&e, 3, 17);
    nkv_fmeta *f = nkv__fmeta_new();
    f->num = 40;
    f->size = 4096;
    f->entries = 99;
    f->smallest_seq = 5;
    f->largest_seq = 9;
    nkv__ikey_build(&f->smallest, nb_slice_str("aaa"), 5, NKV_TYPE_VALUE);
    nkv__ikey_build(&f->largest, nb_slice_str("zzz"), 9, NKV_TYPE_DELETE);
    nkv__edit_add(&e, 2, f);
    nkv__fmeta_unref(f);
    nkv__ikey_build(&e.compact_ptr[2], nb_slice_str("mmm"), 1, NKV_TYPE_VALUE);
    nb_buf enc = NB_BUF_INIT;
    nkv__edit_encode(&e, &enc);
    nkv_edit d;
    nkv__edit_init(&d);
    ASSERT_OK(nkv__edit_decode(&d, enc.data, enc.len));
    assert_int_equal(d.log_number, 7);
    assert_int_equal(d.next_file, 42);
    assert_int_equal(d.last_seq, 123456789);
    assert_int_equal(d.ndeleted, 1);
    assert_int_equal(d.deleted[0].level, 3);
    assert_int_equal(d.deleted[0].num, 17);
    assert_int_equal(d.nadded, 1);
    assert_int_equal(d.added[0].level, 2);
    assert_int_equal(d.added[0].f->size, 4096);
    assert_int_equal(d.added[0].f->entries, 99);
    assert_int_equal(nkv__icmp(nb_buf_slice(&d.added[0].f->largest), nb_buf_slice(&f->largest)), 0);
    assert_int_equal(d.compact_ptr[2].len, 11);
    char *s = nkv__edit_describe(&d);
    assert_non_null(strstr(s, "+L2:40"));
    free(s);
    nkv__edit_free(&d);
    /* Truncations never decode into garbage. */
    for (size_t cut = 1; cut < enc.len; cut++) {
        nkv__edit_init(&d);
        int rc = nkv__edit_decode(&d, enc.data, cut);
        nkv__edit_free(&d);
        (void)rc;
    }
    nkv__edit_free(&e);
    nb_buf_free(&enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_roundtrip),
        cmocka_unit_test(test_block_long_keys),
        cmocka_unit_test(test_ucmp),
        cmocka_unit_test(test_bloom_fp_rate),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_cache_inline_values),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_table_chunks),
        cmocka_unit_test(test_open_read_not_owner),
        cmocka_unit_test(test_version_edit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
