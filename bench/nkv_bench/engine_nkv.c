/*
 * engine_nkv.c — nkv_bench's engine table over our own engine, through its
 * public header src/nkv/nkv.h only (library target nb_nkv).
 *
 * Settings (see the table atop nkv_bench.c): nkv_options_init() defaults,
 * then write_buffer_size, block_size, block_cache_bytes = cache_size (nkv's
 * 8 MiB default when cache_size < 0), bloom_bits_per_key = bloom_bits (0 =
 * no filter when bloom_bits < 0), compression none/snappy/zstd,
 * target_file_size = max_file_size and max_open_files when given. Everything
 * else stays at nkv's defaults (nkv.h): L0 triggers 4/20/36, L1 256 MiB,
 * 64 MiB tables, 2 write buffers, one compaction thread plus a flush thread.
 *
 * nkv_get returns an owned copy of the value (like leveldb_get), freed here
 * with nkv_free().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "nkv/nkv.h"

#include "nkv_bench.h"

typedef struct ndb {
    nkv_db *db;
    nkv_read_options ro;
    nkv_write_options wo;
    nkv_write_options wo_sync;
} ndb;

typedef struct niter {
    nkv_iter *it;
} niter;

static int fail(int rc, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "nkv %s: %s (%d)", what, nkv_strerror(rc), rc);
    return -1;
}

static const char *ndb_describe(void)
{
    static char buf[64];
    snprintf(buf, sizeof(buf), "nkv %d.%d.%d (src/nkv)", NKV_VERSION_MAJOR, NKV_VERSION_MINOR,
             NKV_VERSION_PATCH);
    return buf;
}

static void make_options(const nkvb_settings *s, nkv_options *o)
{
    nkv_options_init(o);
    o->create_if_missing = s->create_if_missing;
    o->write_buffer_size = (size_t)s->write_buffer_size;
    o->block_size = (size_t)s->block_size;
    if (s->cache_size >= 0) {
        o->block_cache_bytes = (size_t)s->cache_size;
    }
    o->bloom_bits_per_key = s->bloom_bits >= 0 ? s->bloom_bits : 0;
    switch (s->compression) {
    case NKVB_COMP_NONE:
        o->compression = NKV_COMPRESSION_NONE;
        break;
    case NKVB_COMP_SNAPPY:
        o->compression = NKV_COMPRESSION_SNAPPY;
        break;
    case NKVB_COMP_ZSTD:
        o->compression = NKV_COMPRESSION_ZSTD;
        break;
    }
    if (s->max_file_size > 0) {
        o->target_file_size = (uint64_t)s->max_file_size;
    }
    if (s->open_files > 0) {
        o->max_open_files = s->open_files;
    }
}

static void ndb_close(void *h)
{
    ndb *n = h;
    if (n == NULL) {
        return;
    }
    /* NKV_BENCH_STATS=1: the engine's own counters (write amplification,
     * compactions, stalls) on stderr, to explain a result. */
    const char *want = getenv("NKV_BENCH_STATS");
    char *st = NULL;
    if (want && *want && *want != '0' && nkv_property(n->db, "nkv.stats", &st) == 0) {
        fprintf(stderr, "%s", st);
        nkv_free(st);
    }
    int rc = nkv_close(n->db);
    if (rc != 0) {
        fprintf(stderr, "nkv close: %s (%d)\n", nkv_strerror(rc), rc);
    }
    free(n);
}

static int ndb_open(const nkvb_settings *s, const char *dir, void **out, char *err, size_t errlen)
{
    *out = NULL;
    ndb *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    nkv_options o;
    make_options(s, &o);
    int rc = nkv_open(&o, dir, &n->db);
    if (rc != 0) {
        free(n);
        return fail(rc, "open", err, errlen);
    }
    nkv_read_options_init(&n->ro);
    n->wo.sync = false;
    n->wo_sync.sync = true;
    *out = n;
    return 0;
}

static int ndb_destroy(const nkvb_settings *s, const char *dir, char *err, size_t errlen)
{
    nkv_options o;
    make_options(s, &o);
    int rc = nkv_destroy(&o, dir);
    /* A directory that was never a database is fine to "destroy". */
    if (rc != 0 && rc != -ENOENT) {
        return fail(rc, "destroy", err, errlen);
    }
    return 0;
}

static int ndb_put(void *h, bool sync, const char *k, size_t klen, const char *v, size_t vlen,
                   char *err, size_t errlen)
{
    ndb *n = h;
    int rc = nkv_put(n->db, sync ? &n->wo_sync : &n->wo, k, klen, v, vlen);
    return rc != 0 ? fail(rc, "put", err, errlen) : 0;
}

static int ndb_del(void *h, bool sync, const char *k, size_t klen, char *err, size_t errlen)
{
    ndb *n = h;
    int rc = nkv_delete(n->db, sync ? &n->wo_sync : &n->wo, k, klen);
    return rc != 0 ? fail(rc, "delete", err, errlen) : 0;
}

static int ndb_get(void *h, const char *k, size_t klen, size_t *vlen, char *err, size_t errlen)
{
    ndb *n = h;
    void *v = NULL;
    int rc = nkv_get(n->db, &n->ro, k, klen, &v, vlen);
    if (rc == NKV_ENOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return fail(rc, "get", err, errlen);
    }
    nkv_free(v);
    return 1;
}

static int ndb_compact(void *h, char *err, size_t errlen)
{
    ndb *n = h;
    int rc = nkv_compact_range(n->db, NULL, 0, NULL, 0);
    return rc != 0 ? fail(rc, "compact_range", err, errlen) : 0;
}

static void *ndb_iter_new(void *h)
{
    ndb *n = h;
    nkv_iter *it = NULL;
    int rc = nkv_iter_new(n->db, &n->ro, &it);
    if (rc != 0) {
        fprintf(stderr, "nkv iter_new: %s (%d)\n", nkv_strerror(rc), rc);
        exit(1);
    }
    return it;
}

static void ndb_iter_free(void *it)
{
    nkv_iter_free(it);
}

static void ndb_iter_seek(void *it, const char *k, size_t klen)
{
    nkv_iter_seek(it, k, klen);
}

static void ndb_iter_first(void *it)
{
    nkv_iter_seek_first(it);
}

static void ndb_iter_last(void *it)
{
    nkv_iter_seek_last(it);
}

static void ndb_iter_next(void *it)
{
    nkv_iter_next(it);
}

static void ndb_iter_prev(void *it)
{
    nkv_iter_prev(it);
}

static bool ndb_iter_valid(void *it)
{
    return nkv_iter_valid(it);
}

static const char *ndb_iter_key(void *it, size_t *klen)
{
    return nkv_iter_key(it, klen);
}

static const char *ndb_iter_value(void *it, size_t *vlen)
{
    return nkv_iter_value(it, vlen);
}

static int ndb_iter_status(void *it, char *err, size_t errlen)
{
    int rc = nkv_iter_status(it);
    return rc != 0 ? fail(rc, "iterator", err, errlen) : 0;
}

const nkvb_engine nkvb_engine_nkv = {
    .name = "nkv",
    .describe = ndb_describe,
    .open = ndb_open,
    .close = ndb_close,
    .destroy = ndb_destroy,
    .put = ndb_put,
    .del = ndb_del,
    .get = ndb_get,
    .compact = ndb_compact,
    .iter_new = ndb_iter_new,
    .iter_free = ndb_iter_free,
    .iter_seek = ndb_iter_seek,
    .iter_first = ndb_iter_first,
    .iter_last = ndb_iter_last,
    .iter_next = ndb_iter_next,
    .iter_prev = ndb_iter_prev,
    .iter_valid = ndb_iter_valid,
    .iter_key = ndb_iter_key,
    .iter_value = ndb_iter_value,
    .iter_status = ndb_iter_status,
};
