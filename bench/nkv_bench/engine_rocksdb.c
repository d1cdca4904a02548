/*
 * engine_rocksdb.c — nkv_bench's engine table over Debian's librocksdb C API
 * (rocksdb/c.h, RocksDB 7.8).
 *
 * Settings (see the table atop nkv_bench.c): write_buffer_size, a
 * block-based table with block_size, an LRU block cache of cache_size with
 * the default sharding (16 shards for 8 MiB, as db_bench's
 * --cache_numshardbits=-1), a full bloom filter of bloom_bits bits per key
 * (rocksdb_filterpolicy_create_bloom_full, what db_bench's --bloom_bits
 * builds in 7.8), compression none, snappy or zstd on every level,
 * enable_pipelined_write (db_bench's default, not Options'), perf level
 * kDisable in every benchmark thread (db_bench's --perf_level=1),
 * target_file_size_base = max_file_size and max_open_files when given.
 * Everything else stays at RocksDB's defaults, which are also db_bench's:
 * max_background_jobs 2, max_write_buffer_number 2, 64 MiB tables, L1
 * 256 MiB, L0 triggers 4/20/36, WAL on, no sync by default.
 *
 * Gets use rocksdb_get_pinned, which pins the value in the block cache
 * instead of copying it (db_bench reads into a PinnableSlice too); the C
 * API still allocates the small PinnableSlice wrapper per call.
 */
#include <dlfcn.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nkv_bench.h"

/* librocksdb is loaded only when this engine runs (dlopen), so the
 * other engines' processes do not map it: mapped in every nkv_bench
 * process, librocksdb and the libraries it pulls in were ~8 MiB of
 * resident pages (relocations, static initialisers) in each engine's peak
 * RSS. Calls go through p_<name>, resolved at the first open or destroy. */
#define RDB_FUNCS(X)                                                                               \
    X(rocksdb_block_based_options_create)                                                          \
    X(rocksdb_block_based_options_destroy)                                                         \
    X(rocksdb_block_based_options_set_block_cache)                                                 \
    X(rocksdb_block_based_options_set_block_size)                                                  \
    X(rocksdb_block_based_options_set_filter_policy)                                               \
    X(rocksdb_cache_create_lru)                                                                    \
    X(rocksdb_cache_destroy)                                                                       \
    X(rocksdb_close)                                                                               \
    X(rocksdb_compact_range)                                                                       \
    X(rocksdb_create_iterator)                                                                     \
    X(rocksdb_delete)                                                                              \
    X(rocksdb_destroy_db)                                                                          \
    X(rocksdb_filterpolicy_create_bloom_full)                                                      \
    X(rocksdb_free)                                                                                \
    X(rocksdb_get_pinned)                                                                          \
    X(rocksdb_iter_destroy)                                                                        \
    X(rocksdb_iter_get_error)                                                                      \
    X(rocksdb_iter_key)                                                                            \
    X(rocksdb_iter_next)                                                                           \
    X(rocksdb_iter_prev)                                                                           \
    X(rocksdb_iter_seek)                                                                           \
    X(rocksdb_iter_seek_to_first)                                                                  \
    X(rocksdb_iter_seek_to_last)                                                                   \
    X(rocksdb_iter_valid)                                                                          \
    X(rocksdb_iter_value)                                                                          \
    X(rocksdb_open)                                                                                \
    X(rocksdb_options_create)                                                                      \
    X(rocksdb_options_destroy)                                                                     \
    X(rocksdb_options_set_block_based_table_factory)                                               \
    X(rocksdb_options_set_compression)                                                             \
    X(rocksdb_options_set_create_if_missing)                                                       \
    X(rocksdb_options_set_enable_pipelined_write)                                                  \
    X(rocksdb_options_set_max_open_files)                                                          \
    X(rocksdb_options_set_target_file_size_base)                                                   \
    X(rocksdb_options_set_write_buffer_size)                                                       \
    X(rocksdb_pinnableslice_destroy)                                                               \
    X(rocksdb_pinnableslice_value)                                                                 \
    X(rocksdb_put)                                                                                 \
    X(rocksdb_readoptions_create)                                                                  \
    X(rocksdb_readoptions_destroy)                                                                 \
    X(rocksdb_set_perf_level)                                                                      \
    X(rocksdb_writeoptions_create)                                                                 \
    X(rocksdb_writeoptions_destroy)                                                                \
    X(rocksdb_writeoptions_set_sync)
#define X(f) static __typeof__(f) *p_##f;
RDB_FUNCS(X)
#undef X

static int rdb_load(char *err, size_t errlen)
{
    static void *lib;
    if (lib != NULL) {
        return 0;
    }
    void *h = dlopen(NKVB_ROCKSDB_LIB, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(err, errlen, "dlopen %s: %s", NKVB_ROCKSDB_LIB, dlerror());
        return -1;
    }
    /* POSIX's way to store a function pointer from dlsym. */
#define X(f)                                                                                       \
    if ((*(void **)&p_##f = dlsym(h, #f)) == NULL) {                                               \
        snprintf(err, errlen, "dlsym %s: %s", #f, dlerror());                                      \
        return -1;                                                                                 \
    }
    RDB_FUNCS(X)
#undef X
    lib = h;
    return 0;
}

#ifndef NKVB_ROCKSDB_VERSION
#define NKVB_ROCKSDB_VERSION "unknown"
#endif

typedef struct rdb {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_cache_t *cache;
    rocksdb_readoptions_t *ro;
    rocksdb_writeoptions_t *wo;
    rocksdb_writeoptions_t *wo_sync;
} rdb;

/* Copies a RocksDB error string into err and frees it; returns -1. */
static int take_err(char *rerr, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "rocksdb %s: %s", what, rerr);
    p_rocksdb_free(rerr);
    return -1;
}

static const char *rdb_describe(void)
{
    return "librocksdb " NKVB_ROCKSDB_VERSION " (C API)";
}

static int comp_type(nkvb_compression c)
{
    switch (c) {
    case NKVB_COMP_SNAPPY:
        return rocksdb_snappy_compression;
    case NKVB_COMP_ZSTD:
        return rocksdb_zstd_compression;
    case NKVB_COMP_NONE:
        break;
    }
    return rocksdb_no_compression;
}

/* Builds the options for s. With r, the block cache is created into r. */
static rocksdb_options_t *make_options(const nkvb_settings *s, rdb *r)
{
    rocksdb_options_t *o = p_rocksdb_options_create();
    p_rocksdb_options_set_create_if_missing(o, s->create_if_missing);
    p_rocksdb_options_set_write_buffer_size(o, (size_t)s->write_buffer_size);
    p_rocksdb_options_set_compression(o, comp_type(s->compression));
    /* db_bench's default (--enable_pipelined_write=true); Options' is false. */
    p_rocksdb_options_set_enable_pipelined_write(o, 1);
    if (s->max_file_size > 0) {
        p_rocksdb_options_set_target_file_size_base(o, (uint64_t)s->max_file_size);
    }
    if (s->open_files > 0) {
        p_rocksdb_options_set_max_open_files(o, s->open_files);
    }
    rocksdb_block_based_table_options_t *bbo = p_rocksdb_block_based_options_create();
    p_rocksdb_block_based_options_set_block_size(bbo, (size_t)s->block_size);
    if (r != NULL && s->cache_size >= 0) {
        r->cache = p_rocksdb_cache_create_lru((size_t)s->cache_size);
        /* The table options keep their own reference to the cache. */
        p_rocksdb_block_based_options_set_block_cache(bbo, r->cache);
    }
    if (s->bloom_bits >= 0) {
        /* The table options take ownership of the policy. */
        p_rocksdb_block_based_options_set_filter_policy(
            bbo, p_rocksdb_filterpolicy_create_bloom_full(s->bloom_bits));
    }
    /* The factory copies the table options. */
    p_rocksdb_options_set_block_based_table_factory(o, bbo);
    p_rocksdb_block_based_options_destroy(bbo);
    return o;
}

static void rdb_close(void *h)
{
    rdb *r = h;
    if (r == NULL) {
        return;
    }
    if (r->db != NULL) {
        p_rocksdb_close(r->db);
    }
    if (r->opts != NULL) {
        p_rocksdb_options_destroy(r->opts);
    }
    if (r->cache != NULL) {
        p_rocksdb_cache_destroy(r->cache);
    }
    if (r->ro != NULL) {
        p_rocksdb_readoptions_destroy(r->ro);
    }
    if (r->wo != NULL) {
        p_rocksdb_writeoptions_destroy(r->wo);
    }
    if (r->wo_sync != NULL) {
        p_rocksdb_writeoptions_destroy(r->wo_sync);
    }
    free(r);
}

static int rdb_open(const nkvb_settings *s, const char *dir, void **out, char *err, size_t errlen)
{
    *out = NULL;
    if (rdb_load(err, errlen) != 0) {
        return -1;
    }
    rdb *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->opts = make_options(s, r);
    char *rerr = NULL;
    r->db = p_rocksdb_open(r->opts, dir, &rerr);
    if (rerr != NULL) {
        take_err(rerr, "open", err, errlen);
        rdb_close(r);
        return -1;
    }
    r->ro = p_rocksdb_readoptions_create();
    r->wo = p_rocksdb_writeoptions_create();
    r->wo_sync = p_rocksdb_writeoptions_create();
    p_rocksdb_writeoptions_set_sync(r->wo_sync, 1);
    *out = r;
    return 0;
}

static int rdb_destroy(const nkvb_settings *s, const char *dir, char *err, size_t errlen)
{
    if (rdb_load(err, errlen) != 0) {
        return -1;
    }
    rocksdb_options_t *o = make_options(s, NULL);
    char *rerr = NULL;
    p_rocksdb_destroy_db(o, dir, &rerr);
    p_rocksdb_options_destroy(o);
    return rerr != NULL ? take_err(rerr, "destroy", err, errlen) : 0;
}

static int rdb_put(void *h, bool sync, const char *k, size_t klen, const char *v, size_t vlen,
                   char *err, size_t errlen)
{
    rdb *r = h;
    char *rerr = NULL;
    p_rocksdb_put(r->db, sync ? r->wo_sync : r->wo, k, klen, v, vlen, &rerr);
    return rerr != NULL ? take_err(rerr, "put", err, errlen) : 0;
}

static int rdb_del(void *h, bool sync, const char *k, size_t klen, char *err, size_t errlen)
{
    rdb *r = h;
    char *rerr = NULL;
    p_rocksdb_delete(r->db, sync ? r->wo_sync : r->wo, k, klen, &rerr);
    return rerr != NULL ? take_err(rerr, "delete", err, errlen) : 0;
}

static int rdb_get(void *h, const char *k, size_t klen, size_t *vlen, char *err, size_t errlen)
{
    rdb *r = h;
    char *rerr = NULL;
    rocksdb_pinnableslice_t *ps = p_rocksdb_get_pinned(r->db, r->ro, k, klen, &rerr);
    if (rerr != NULL) {
        return take_err(rerr, "get", err, errlen);
    }
    if (ps == NULL) {
        return 0;
    }
    (void)p_rocksdb_pinnableslice_value(ps, vlen);
    p_rocksdb_pinnableslice_destroy(ps);
    return 1;
}

/* db_bench sets --perf_level=1 (kDisable) in every benchmark thread; the
 * library's thread-local default, kEnableCount, bumps perf counters on
 * every operation. */
static void rdb_thread_init(void)
{
    if (p_rocksdb_set_perf_level == NULL) {
        return; /* not loaded: open failed */
    }
    p_rocksdb_set_perf_level(rocksdb_disable);
}

static int rdb_compact(void *h, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    rdb *r = h;
    p_rocksdb_compact_range(r->db, NULL, 0, NULL, 0);
    return 0;
}

static void *rdb_iter_new(void *h)
{
    rdb *r = h;
    return p_rocksdb_create_iterator(r->db, r->ro);
}

static void rdb_iter_free(void *it)
{
    p_rocksdb_iter_destroy(it);
}

static void rdb_iter_seek(void *it, const char *k, size_t klen)
{
    p_rocksdb_iter_seek(it, k, klen);
}

static void rdb_iter_first(void *it)
{
    p_rocksdb_iter_seek_to_first(it);
}

static void rdb_iter_last(void *it)
{
    p_rocksdb_iter_seek_to_last(it);
}

static void rdb_iter_next(void *it)
{
    p_rocksdb_iter_next(it);
}

static void rdb_iter_prev(void *it)
{
    p_rocksdb_iter_prev(it);
}

static bool rdb_iter_valid(void *it)
{
    return p_rocksdb_iter_valid(it) != 0;
}

static const char *rdb_iter_key(void *it, size_t *klen)
{
    return p_rocksdb_iter_key(it, klen);
}

static const char *rdb_iter_value(void *it, size_t *vlen)
{
    return p_rocksdb_iter_value(it, vlen);
}

static int rdb_iter_status(void *it, char *err, size_t errlen)
{
    char *rerr = NULL;
    p_rocksdb_iter_get_error(it, &rerr);
    return rerr != NULL ? take_err(rerr, "iterator", err, errlen) : 0;
}

const nkvb_engine nkvb_engine_rocksdb = {
    .name = "rocksdb",
    .describe = rdb_describe,
    .open = rdb_open,
    .close = rdb_close,
    .destroy = rdb_destroy,
    .put = rdb_put,
    .del = rdb_del,
    .get = rdb_get,
    .thread_init = rdb_thread_init,
    .compact = rdb_compact,
    .iter_new = rdb_iter_new,
    .iter_free = rdb_iter_free,
    .iter_seek = rdb_iter_seek,
    .iter_first = rdb_iter_first,
    .iter_last = rdb_iter_last,
    .iter_next = rdb_iter_next,
    .iter_prev = rdb_iter_prev,
    .iter_valid = rdb_iter_valid,
    .iter_key = rdb_iter_key,
    .iter_value = rdb_iter_value,
    .iter_status = rdb_iter_status,
};
