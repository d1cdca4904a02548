/*
 * kv_rocksdb.c — the "rocksdb" backend: Debian's librocksdb through its C
 * API (rocksdb/c.h). RocksDB is thread-safe for everything we call
 * concurrently; iterators see an implicit snapshot taken when created.
 *
 * RocksDB reports errors as malloc'd strings; map_err() turns them into
 * our codes by their documented prefixes ("Corruption:", "IO error:", ...).
 */
#include <errno.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "kv/kv_int.h"

typedef struct rdb {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *topts;
    rocksdb_cache_t *cache;
    rocksdb_filterpolicy_t *filter; /* owned by topts once set */
    rocksdb_readoptions_t *ro;      /* shared, read-only: latest-state reads */
    rocksdb_writeoptions_t *wo_sync;
    rocksdb_writeoptions_t *wo_nosync;
    /* Group commit for r_sync_to: one FlushWAL(sync) at a time; callers
     * whose sequence a finished sync covered return without syncing. */
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    int syncing;
    uint64_t synced; /* every write up to this sequence is durable */
} rdb;

typedef struct riter {
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ro;
    int err; /* sticky status from rocksdb_iter_get_error */
} riter;

static int map_err(char *err, const char *what)
{
    int rc = -EIO;
    if (strstr(err, "Corruption"))
        rc = NB_ECORRUPT;
    else if (strstr(err, "lock") && strstr(err, "unavailable"))
        rc = NB_ELOCKED;
    else if (strstr(err, "does not exist"))
        rc = -ENOENT;
    else if (strstr(err, "exists (error_if_exists"))
        rc = NB_EEXIST;
    else if (strstr(err, "No space"))
        rc = -ENOSPC;
    else if (strstr(err, "Invalid argument"))
        rc = -EINVAL;
    if (rc == NB_ECORRUPT)
        NB_CORRUPT("rocksdb %s: %s", what, err);
    else
        NB_WARN("rocksdb %s: %s", what, err);
    rocksdb_free(err);
    return rc;
}

static void rdb_free(rdb *r)
{
    if (r->db)
        rocksdb_close(r->db);
    if (r->ro)
        rocksdb_readoptions_destroy(r->ro);
    if (r->wo_sync)
        rocksdb_writeoptions_destroy(r->wo_sync);
    if (r->wo_nosync)
        rocksdb_writeoptions_destroy(r->wo_nosync);
    if (r->opts)
        rocksdb_options_destroy(r->opts);
    if (r->topts)
        rocksdb_block_based_options_destroy(r->topts);
    if (r->cache)
        rocksdb_cache_destroy(r->cache);
    pthread_cond_destroy(&r->sync_cv);
    pthread_mutex_destroy(&r->sync_mu);
    free(r);
}

static int r_open(const char *dir, const kv_options *o, void **impl)
{
    rdb *r = nb_xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->sync_mu, NULL);
    pthread_cond_init(&r->sync_cv, NULL);
    r->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(r->opts, o->create_if_missing ? 1 : 0);
    rocksdb_options_set_error_if_exists(r->opts, o->error_if_exists ? 1 : 0);
    rocksdb_options_set_paranoid_checks(r->opts, o->paranoid_checks ? 1 : 0);
    rocksdb_options_set_max_background_jobs(r->opts, 2);
    rocksdb_options_set_info_log_level(r->opts, 3 /* ERROR_LEVEL */);
    rocksdb_options_set_keep_log_file_num(r->opts, 2);
    if (o->write_buffer)
        rocksdb_options_set_write_buffer_size(r->opts, o->write_buffer);
    r->topts = rocksdb_block_based_options_create();
    r->cache = rocksdb_cache_create_lru(o->cache_bytes ? o->cache_bytes : (32u << 20));
    rocksdb_block_based_options_set_block_cache(r->topts, r->cache);
    r->filter = rocksdb_filterpolicy_create_bloom(10);
    rocksdb_block_based_options_set_filter_policy(r->topts, r->filter);
    rocksdb_options_set_block_based_table_factory(r->opts, r->topts);

    r->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(r->ro, o->paranoid_checks ? 1 : 0);
    r->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(r->wo_sync, 1);
    r->wo_nosync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(r->wo_nosync, 0);

    char *err = NULL;
    r->db = rocksdb_open(r->opts, dir, &err);
    if (err) {
        int rc = map_err(err, "open");
        r->db = NULL;
        rdb_free(r);
        return rc;
    }
    *impl = r;
    return 0;
}

static void r_close(void *impl)
{
    rdb_free(impl);
}

static rocksdb_readoptions_t *snap_ro(rdb *r, void *snap)
{
    if (!snap)
        return r->ro;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, snap);
    return ro;
}

static int r_get(void *impl, void *snap, nb_slice key, nb_buf *val)
{
    rdb *r = impl;
    rocksdb_readoptions_t *ro = snap_ro(r, snap);
    char *err = NULL;
    rocksdb_pinnableslice_t *ps =
        rocksdb_get_pinned(r->db, ro, (const char *)key.ptr, key.len, &err);
    if (ro != r->ro)
        rocksdb_readoptions_destroy(ro);
    if (err)
        return map_err(err, "get");
    if (!ps)
        return NB_ENOTFOUND;
    size_t n = 0;
    const char *v = rocksdb_pinnableslice_value(ps, &n);
    int rc = nb_buf_reserve(val, n + 1);
    if (rc == 0)
        rc = nb_buf_append(val, v, n);
    rocksdb_pinnableslice_destroy(ps);
    return rc;
}

static int r_write(void *impl, const kv_batch *b, int sync)
{
    rdb *r = impl;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    size_t pos = 0;
    kv__op op;
    while (kv__batch_next(b, &pos, &op)) {
        switch (op.type) {
        case KV__OP_PUT:
            rocksdb_writebatch_put(wb, (const char *)op.a.ptr, op.a.len, (const char *)op.b.ptr,
                                   op.b.len);
            break;
        case KV__OP_DEL:
            rocksdb_writebatch_delete(wb, (const char *)op.a.ptr, op.a.len);
            break;
        case KV__OP_DELRANGE:
            rocksdb_writebatch_delete_range(wb, (const char *)op.a.ptr, op.a.len,
                                            (const char *)op.b.ptr, op.b.len);
            break;
        default:
            NB_ASSERT(!"bad batch op");
        }
    }
    char *err = NULL;
    rocksdb_write(r->db, sync ? r->wo_sync : r->wo_nosync, wb, &err);
    rocksdb_writebatch_destroy(wb);
    if (err)
        return map_err(err, "write");
    return 0;
}

static int r_sync(void *impl)
{
    rdb *r = impl;
    char *err = NULL;
    rocksdb_flush_wal(r->db, 1, &err);
    if (err)
        return map_err(err, "flush_wal");
    return 0;
}

static uint64_t r_last_seq(void *impl)
{
    return rocksdb_get_latest_sequence_number(((rdb *)impl)->db);
}

/* RocksDB has no "sync up to": FlushWAL(sync) syncs everything written.
 * A write's sequence is published only after its WAL append, so a sync
 * that starts after reading the latest sequence covers every write up to
 * it. Concurrent callers wait for the sync in progress, then return if it
 * covered them, instead of each syncing in turn. */
static int r_sync_to(void *impl, uint64_t seq)
{
    rdb *r = impl;
    int rc = 0;
    pthread_mutex_lock(&r->sync_mu);
    while (r->synced < seq) {
        if (r->syncing) {
            pthread_cond_wait(&r->sync_cv, &r->sync_mu);
            continue;
        }
        r->syncing = 1;
        uint64_t target = r_last_seq(r);
        pthread_mutex_unlock(&r->sync_mu);
        rc = r_sync(r);
        pthread_mutex_lock(&r->sync_mu);
        r->syncing = 0;
        if (rc == 0 && target > r->synced)
            r->synced = target;
        pthread_cond_broadcast(&r->sync_cv);
        if (rc)
            break; /* waiters retry with their own sync */
    }
    pthread_mutex_unlock(&r->sync_mu);
    return rc;
}

static int r_snapshot_new(void *impl, void **snap)
{
    rdb *r = impl;
    *snap = (void *)rocksdb_create_snapshot(r->db);
    return 0;
}

static void r_snapshot_free(void *impl, void *snap)
{
    rdb *r = impl;
    rocksdb_release_snapshot(r->db, snap);
}

static int r_iter_new(void *impl, void *snap, nb_slice lower, nb_slice upper, void **out)
{
    rdb *r = impl;
    riter *it = nb_xcalloc(1, sizeof(*it));
    it->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(it->ro, 1);
    if (snap)
        rocksdb_readoptions_set_snapshot(it->ro, snap);
    if (lower.ptr)
        rocksdb_readoptions_set_iterate_lower_bound(it->ro, (const char *)lower.ptr, lower.len);
    if (upper.ptr)
        rocksdb_readoptions_set_iterate_upper_bound(it->ro, (const char *)upper.ptr, upper.len);
    it->it = rocksdb_create_iterator(r->db, it->ro);
    *out = it;
    return 0;
}

static void r_iter_free(void *p)
{
    riter *it = p;
    rocksdb_iter_destroy(it->it);
    rocksdb_readoptions_destroy(it->ro);
    free(it);
}

static void check(riter *it)
{
    if (rocksdb_iter_valid(it->it) || it->err)
        return;
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    if (err)
        it->err = map_err(err, "iterate");
}

static void r_iter_seek(void *p, nb_slice key)
{
    riter *it = p;
    rocksdb_iter_seek(it->it, (const char *)key.ptr, key.len);
    check(it);
}

static void r_iter_seek_for_prev(void *p, nb_slice key)
{
    riter *it = p;
    rocksdb_iter_seek_for_prev(it->it, (const char *)key.ptr, key.len);
    check(it);
}

static void r_iter_seek_first(void *p)
{
    riter *it = p;
    rocksdb_iter_seek_to_first(it->it);
    check(it);
}

static void r_iter_seek_last(void *p)
{
    riter *it = p;
    rocksdb_iter_seek_to_last(it->it);
    check(it);
}

static void r_iter_next(void *p)
{
    riter *it = p;
    rocksdb_iter_next(it->it);
    check(it);
}

static void r_iter_prev(void *p)
{
    riter *it = p;
    rocksdb_iter_prev(it->it);
    check(it);
}

static int r_iter_valid(const void *p)
{
    const riter *it = p;
    return !it->err && rocksdb_iter_valid(it->it);
}

static nb_slice r_iter_key(const void *p)
{
    const riter *it = p;
    size_t n = 0;
    const char *k = rocksdb_iter_key(it->it, &n);
    return nb_slice_of(k, n);
}

static nb_slice r_iter_value(const void *p)
{
    const riter *it = p;
    size_t n = 0;
    const char *v = rocksdb_iter_value(it->it, &n);
    return nb_slice_of(v, n);
}

static int r_iter_status(const void *p)
{
    const riter *it = p;
    return it->err;
}

static int prop_u64(rdb *r, const char *name, uint64_t *v)
{
    char *s = rocksdb_property_value(r->db, name);
    if (!s)
        return NB_ENOTFOUND;
    *v = strtoull(s, NULL, 10);
    rocksdb_free(s);
    return 0;
}

static int r_property(void *impl, const char *name, nb_buf *out)
{
    rdb *r = impl;
    uint64_t a = 0, b = 0;
    if (strcmp(name, "kv.approx-bytes") == 0) {
        int rc = prop_u64(r, "rocksdb.total-sst-files-size", &a);
        if (rc == 0)
            rc = prop_u64(r, "rocksdb.cur-size-all-mem-tables", &b);
        return rc ? rc : nb_buf_appendf(out, "%llu", (unsigned long long)(a + b));
    }
    if (strcmp(name, "kv.approx-keys") == 0) {
        int rc = prop_u64(r, "rocksdb.estimate-num-keys", &a);
        return rc ? rc : nb_buf_appendf(out, "%llu", (unsigned long long)a);
    }
    if (strncmp(name, "rocksdb.", 8) != 0)
        return NB_ENOTFOUND;
    char *s = rocksdb_property_value(r->db, name);
    if (!s)
        return NB_ENOTFOUND;
    int rc = nb_buf_append_str(out, s);
    rocksdb_free(s);
    return rc;
}

const kv__ops kv__rocksdb_ops = {
    .name = "rocksdb",
    .open = r_open,
    .close = r_close,
    .get = r_get,
    .write = r_write,
    .sync = r_sync,
    .last_seq = r_last_seq,
    .sync_to = r_sync_to,
    .snapshot_new = r_snapshot_new,
    .snapshot_free = r_snapshot_free,
    .iter_new = r_iter_new,
    .iter_free = r_iter_free,
    .iter_seek = r_iter_seek,
    .iter_seek_for_prev = r_iter_seek_for_prev,
    .iter_seek_first = r_iter_seek_first,
    .iter_seek_last = r_iter_seek_last,
    .iter_next = r_iter_next,
    .iter_prev = r_iter_prev,
    .iter_valid = r_iter_valid,
    .iter_key = r_iter_key,
    .iter_value = r_iter_value,
    .iter_status = r_iter_status,
    .property = r_property,
};
