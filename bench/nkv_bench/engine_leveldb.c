/*
 * engine_leveldb.c — nkv_bench's engine table over Debian's libleveldb C API
 * (leveldb/c.h, LevelDB 1.23).
 *
 * Settings (see the table atop nkv_bench.c): write_buffer_size, block_size,
 * an LRU block cache of cache_size (leveldb_cache_create_lru; LevelDB's own
 * 8 MiB cache when cache_size < 0), the built-in bloom filter policy with
 * bloom_bits bits per key, compression none or snappy, max_file_size and
 * max_open_files when given. Everything else stays at LevelDB's defaults:
 * one background thread for flushes and compactions, 2 MiB tables, L0
 * triggers 4/8/12. LevelDB 1.23's C API has no zstd, so zstd fails at open.
 *
 * Costs the C API adds over db_bench's C++ calls: leveldb_get returns a
 * malloc'd copy of the value (db_bench copies into a reused std::string),
 * and each error is a malloc'd string (only on failure).
 */
#include <dlfcn.h>
#include <leveldb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nkv_bench.h"

/* libleveldb is loaded only when this engine runs (dlopen), as librocksdb
 * is (engine_rocksdb.c says why). Calls go through p_<name>, resolved at
 * the first open or destroy. */
#define LDB_FUNCS(X)                                                                               \
    X(leveldb_cache_create_lru)                                                                    \
    X(leveldb_cache_destroy)                                                                       \
    X(leveldb_close)                                                                               \
    X(leveldb_compact_range)                                                                       \
    X(leveldb_create_iterator)                                                                     \
    X(leveldb_delete)                                                                              \
    X(leveldb_destroy_db)                                                                          \
    X(leveldb_filterpolicy_create_bloom)                                                           \
    X(leveldb_filterpolicy_destroy)                                                                \
    X(leveldb_free)                                                                                \
    X(leveldb_get)                                                                                 \
    X(leveldb_iter_destroy)                                                                        \
    X(leveldb_iter_get_error)                                                                      \
    X(leveldb_iter_key)                                                                            \
    X(leveldb_iter_next)                                                                           \
    X(leveldb_iter_prev)                                                                           \
    X(leveldb_iter_seek)                                                                           \
    X(leveldb_iter_seek_to_first)                                                                  \
    X(leveldb_iter_seek_to_last)                                                                   \
    X(leveldb_iter_valid)                                                                          \
    X(leveldb_iter_value)                                                                          \
    X(leveldb_major_version)                                                                       \
    X(leveldb_minor_version)                                                                       \
    X(leveldb_open)                                                                                \
    X(leveldb_options_create)                                                                      \
    X(leveldb_options_destroy)                                                                     \
    X(leveldb_options_set_block_size)                                                              \
    X(leveldb_options_set_cache)                                                                   \
    X(leveldb_options_set_compression)                                                             \
    X(leveldb_options_set_create_if_missing)                                                       \
    X(leveldb_options_set_filter_policy)                                                           \
    X(leveldb_options_set_max_file_size)                                                           \
    X(leveldb_options_set_max_open_files)                                                          \
    X(leveldb_options_set_write_buffer_size)                                                       \
    X(leveldb_put)                                                                                 \
    X(leveldb_readoptions_create)                                                                  \
    X(leveldb_readoptions_destroy)                                                                 \
    X(leveldb_writeoptions_create)                                                                 \
    X(leveldb_writeoptions_destroy)                                                                \
    X(leveldb_writeoptions_set_sync)
#define X(f) static __typeof__(f) *p_##f;
LDB_FUNCS(X)
#undef X

static int ldb_load(char *err, size_t errlen)
{
    static void *lib;
    if (lib != NULL) {
        return 0;
    }
    void *h = dlopen(NKVB_LEVELDB_LIB, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(err, errlen, "dlopen %s: %s", NKVB_LEVELDB_LIB, dlerror());
        return -1;
    }
    /* POSIX's way to store a function pointer from dlsym. */
#define X(f)                                                                                       \
    if ((*(void **)&p_##f = dlsym(h, #f)) == NULL) {                                               \
        snprintf(err, errlen, "dlsym %s: %s", #f, dlerror());                                      \
        return -1;                                                                                 \
    }
    LDB_FUNCS(X)
#undef X
    lib = h;
    return 0;
}

typedef struct ldb {
    leveldb_t *db;
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    leveldb_readoptions_t *ro;
    leveldb_writeoptions_t *wo;
    leveldb_writeoptions_t *wo_sync;
} ldb;

/* Copies a LevelDB error string into err and frees it; returns -1. */
static int take_err(char *lerr, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "leveldb %s: %s", what, lerr);
    p_leveldb_free(lerr);
    return -1;
}

static const char *ldb_describe(void)
{
    static char buf[256];
    if (ldb_load(buf, sizeof(buf)) != 0) {
        return buf; /* the dlopen error */
    }
    snprintf(buf, sizeof(buf), "libleveldb %d.%d (C API)", p_leveldb_major_version(),
             p_leveldb_minor_version());
    return buf;
}

/* Builds an options object for s; returns NULL with a message in err when a
 * setting cannot be honoured. The cache and filter go into l. */
static leveldb_options_t *make_options(const nkvb_settings *s, ldb *l, char *err, size_t errlen)
{
    if (s->compression == NKVB_COMP_ZSTD) {
        snprintf(err, errlen, "leveldb %d.%d's C API has no zstd compression",
                 p_leveldb_major_version(), p_leveldb_minor_version());
        return NULL;
    }
    leveldb_options_t *o = p_leveldb_options_create();
    p_leveldb_options_set_create_if_missing(o, s->create_if_missing);
    p_leveldb_options_set_write_buffer_size(o, (size_t)s->write_buffer_size);
    p_leveldb_options_set_block_size(o, (size_t)s->block_size);
    p_leveldb_options_set_compression(o, s->compression == NKVB_COMP_SNAPPY
                                             ? leveldb_snappy_compression
                                             : leveldb_no_compression);
    if (s->max_file_size > 0) {
        p_leveldb_options_set_max_file_size(o, (size_t)s->max_file_size);
    }
    if (s->open_files > 0) {
        p_leveldb_options_set_max_open_files(o, s->open_files);
    }
    if (l != NULL && s->cache_size >= 0) {
        l->cache = p_leveldb_cache_create_lru((size_t)s->cache_size);
        p_leveldb_options_set_cache(o, l->cache);
    }
    if (l != NULL && s->bloom_bits >= 0) {
        l->filter = p_leveldb_filterpolicy_create_bloom(s->bloom_bits);
        p_leveldb_options_set_filter_policy(o, l->filter);
    }
    return o;
}

static void ldb_close(void *h)
{
    ldb *l = h;
    if (l == NULL) {
        return;
    }
    if (l->db != NULL) {
        p_leveldb_close(l->db);
    }
    if (l->opts != NULL) {
        p_leveldb_options_destroy(l->opts);
    }
    if (l->cache != NULL) {
        p_leveldb_cache_destroy(l->cache);
    }
    if (l->filter != NULL) {
        p_leveldb_filterpolicy_destroy(l->filter);
    }
    if (l->ro != NULL) {
        p_leveldb_readoptions_destroy(l->ro);
    }
    if (l->wo != NULL) {
        p_leveldb_writeoptions_destroy(l->wo);
    }
    if (l->wo_sync != NULL) {
        p_leveldb_writeoptions_destroy(l->wo_sync);
    }
    free(l);
}

static int ldb_open(const nkvb_settings *s, const char *dir, void **out, char *err, size_t errlen)
{
    if (ldb_load(err, errlen) != 0) {
        *out = NULL;
        return -1;
    }
    *out = NULL;
    ldb *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    l->opts = make_options(s, l, err, errlen);
    if (l->opts == NULL) {
        ldb_close(l);
        return -1;
    }
    char *lerr = NULL;
    l->db = p_leveldb_open(l->opts, dir, &lerr);
    if (lerr != NULL) {
        take_err(lerr, "open", err, errlen);
        ldb_close(l);
        return -1;
    }
    l->ro = p_leveldb_readoptions_create();
    l->wo = p_leveldb_writeoptions_create();
    l->wo_sync = p_leveldb_writeoptions_create();
    p_leveldb_writeoptions_set_sync(l->wo_sync, 1);
    *out = l;
    return 0;
}

static int ldb_destroy(const nkvb_settings *s, const char *dir, char *err, size_t errlen)
{
    if (ldb_load(err, errlen) != 0) {
        return -1;
    }
    nkvb_settings plain = *s;
    plain.compression = NKVB_COMP_NONE; /* destroying needs no codec */
    leveldb_options_t *o = make_options(&plain, NULL, err, errlen);
    char *lerr = NULL;
    p_leveldb_destroy_db(o, dir, &lerr);
    p_leveldb_options_destroy(o);
    return lerr != NULL ? take_err(lerr, "destroy", err, errlen) : 0;
}

static int ldb_put(void *h, bool sync, const char *k, size_t klen, const char *v, size_t vlen,
                   char *err, size_t errlen)
{
    ldb *l = h;
    char *lerr = NULL;
    p_leveldb_put(l->db, sync ? l->wo_sync : l->wo, k, klen, v, vlen, &lerr);
    return lerr != NULL ? take_err(lerr, "put", err, errlen) : 0;
}

static int ldb_del(void *h, bool sync, const char *k, size_t klen, char *err, size_t errlen)
{
    ldb *l = h;
    char *lerr = NULL;
    p_leveldb_delete(l->db, sync ? l->wo_sync : l->wo, k, klen, &lerr);
    return lerr != NULL ? take_err(lerr, "delete", err, errlen) : 0;
}

static int ldb_get(void *h, const char *k, size_t klen, size_t *vlen, char *err, size_t errlen)
{
    ldb *l = h;
    char *lerr = NULL;
    char *v = p_leveldb_get(l->db, l->ro, k, klen, vlen, &lerr);
    if (lerr != NULL) {
        return take_err(lerr, "get", err, errlen);
    }
    if (v == NULL) {
        return 0;
    }
    p_leveldb_free(v);
    return 1;
}

static int ldb_compact(void *h, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    ldb *l = h;
    p_leveldb_compact_range(l->db, NULL, 0, NULL, 0);
    return 0;
}

static void *ldb_iter_new(void *h)
{
    ldb *l = h;
    return p_leveldb_create_iterator(l->db, l->ro);
}

static void ldb_iter_free(void *it)
{
    p_leveldb_iter_destroy(it);
}

static void ldb_iter_seek(void *it, const char *k, size_t klen)
{
    p_leveldb_iter_seek(it, k, klen);
}

static void ldb_iter_first(void *it)
{
    p_leveldb_iter_seek_to_first(it);
}

static void ldb_iter_last(void *it)
{
    p_leveldb_iter_seek_to_last(it);
}

static void ldb_iter_next(void *it)
{
    p_leveldb_iter_next(it);
}

static void ldb_iter_prev(void *it)
{
    p_leveldb_iter_prev(it);
}

static bool ldb_iter_valid(void *it)
{
    return p_leveldb_iter_valid(it) != 0;
}

static const char *ldb_iter_key(void *it, size_t *klen)
{
    return p_leveldb_iter_key(it, klen);
}

static const char *ldb_iter_value(void *it, size_t *vlen)
{
    return p_leveldb_iter_value(it, vlen);
}

static int ldb_iter_status(void *it, char *err, size_t errlen)
{
    char *lerr = NULL;
    p_leveldb_iter_get_error(it, &lerr);
    return lerr != NULL ? take_err(lerr, "iterator", err, errlen) : 0;
}

const nkvb_engine nkvb_engine_leveldb = {
    .name = "leveldb",
    .describe = ldb_describe,
    .open = ldb_open,
    .close = ldb_close,
    .destroy = ldb_destroy,
    .put = ldb_put,
    .del = ldb_del,
    .get = ldb_get,
    .compact = ldb_compact,
    .iter_new = ldb_iter_new,
    .iter_free = ldb_iter_free,
    .iter_seek = ldb_iter_seek,
    .iter_first = ldb_iter_first,
    .iter_last = ldb_iter_last,
    .iter_next = ldb_iter_next,
    .iter_prev = ldb_iter_prev,
    .iter_valid = ldb_iter_valid,
    .iter_key = ldb_iter_key,
    .iter_value = ldb_iter_value,
    .iter_status = ldb_iter_status,
};
