/*
 * kv_nkv.c — the "nkv" backend: NebulaStore's own LSM engine (src/nkv).
 *
 * nkv's codes are NebulaStore's NB_E* codes, so errors pass through. Two
 * things nkv does not have are built here:
 *  - range deletes: expanded at write time into point deletes of the keys
 *    present then (atomic as one batch, but a key put by a concurrent
 *    writer after the scan survives; meta never relies on range deletes);
 *  - kv_sync (and a synced empty batch) is nkv_sync_wal up to the last
 *    sequence: concurrent syncs share one fdatasync and a sync that an
 *    earlier one covered costs nothing.
 */
#include <nkv/nkv.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "kv/kv_int.h"

typedef struct niter {
    nkv_iter *it;
} niter;

static int n_open(const char *dir, const kv_options *o, void **impl)
{
    nkv_options no;
    nkv_options_init(&no);
    no.create_if_missing = o->create_if_missing != 0;
    no.error_if_exists = o->error_if_exists != 0;
    if (o->cache_bytes)
        no.block_cache_bytes = o->cache_bytes;
    if (o->write_buffer)
        no.write_buffer_size = o->write_buffer;
    nkv_db *db = NULL;
    int rc = nkv_open(&no, dir, &db);
    if (rc != 0)
        return rc;
    *impl = db;
    return 0;
}

static void n_close(void *impl)
{
    int rc = nkv_close(impl);
    if (rc != 0)
        NB_WARN("nkv close: %s", nb_strerror(rc));
}

static int n_get(void *impl, void *snap, nb_slice key, nb_buf *val)
{
    nkv_read_options ro;
    nkv_read_options_init(&ro);
    ro.snapshot = snap;
    void *v = NULL;
    size_t n = 0;
    int rc = nkv_get(impl, &ro, key.ptr, key.len, &v, &n);
    if (rc != 0)
        return rc;
    rc = nb_buf_reserve(val, n + 1);
    if (rc == 0)
        rc = nb_buf_append(val, v, n);
    nkv_free(v);
    return rc;
}

/* Adds a delete of every key in [a, b) to nb. */
static int expand_range(nkv_db *db, nkv_batch *nb, nb_slice a, nb_slice b)
{
    nkv_read_options ro;
    nkv_read_options_init(&ro);
    ro.lower_bound = a.ptr;
    ro.lower_bound_len = a.len;
    ro.upper_bound = b.ptr;
    ro.upper_bound_len = b.len;
    ro.fill_cache = false;
    nkv_iter *it = NULL;
    int rc = nkv_iter_new(db, &ro, &it);
    if (rc != 0)
        return rc;
    for (nkv_iter_seek(it, a.ptr, a.len); nkv_iter_valid(it) && rc == 0; nkv_iter_next(it)) {
        size_t kl;
        const void *k = nkv_iter_key(it, &kl);
        rc = nkv_batch_delete(nb, k, kl);
    }
    if (rc == 0)
        rc = nkv_iter_status(it);
    nkv_iter_free(it);
    return rc;
}

static int n_write(void *impl, const kv_batch *b, int sync)
{
    nkv_batch *nb = NULL;
    int rc = nkv_batch_new(&nb);
    if (rc != 0)
        return rc;
    size_t pos = 0;
    kv__op op;
    while (rc == 0 && kv__batch_next(b, &pos, &op)) {
        switch (op.type) {
        case KV__OP_PUT:
            rc = nkv_batch_put(nb, op.a.ptr, op.a.len, op.b.ptr, op.b.len);
            break;
        case KV__OP_DEL:
            rc = nkv_batch_delete(nb, op.a.ptr, op.a.len);
            break;
        case KV__OP_DELRANGE:
            rc = expand_range(impl, nb, op.a, op.b);
            break;
        default:
            NB_ASSERT(!"bad batch op");
        }
    }
    if (rc == 0 && sync && nkv_batch_count(nb) == 0)
        rc = nkv_sync_wal(impl, nkv_last_sequence(impl));
    else if (rc == 0) {
        nkv_write_options wo = {.sync = sync != 0};
        rc = nkv_write(impl, &wo, nb);
    }
    nkv_batch_free(nb);
    return rc;
}

static int n_sync(void *impl)
{
    return nkv_sync_wal(impl, nkv_last_sequence(impl));
}

static uint64_t n_last_seq(void *impl)
{
    return nkv_last_sequence(impl);
}

static int n_sync_to(void *impl, uint64_t seq)
{
    return nkv_sync_wal(impl, seq);
}

static int n_snapshot_new(void *impl, void **snap)
{
    nkv_snapshot *s = NULL;
    int rc = nkv_snapshot_new(impl, &s);
    if (rc == 0)
        *snap = s;
    return rc;
}

static void n_snapshot_free(void *impl, void *snap)
{
    nkv_snapshot_free(impl, snap);
}

static int n_iter_new(void *impl, void *snap, nb_slice lower, nb_slice upper, void **out)
{
    nkv_read_options ro;
    nkv_read_options_init(&ro);
    ro.snapshot = snap;
    if (lower.ptr) {
        ro.lower_bound = lower.ptr;
        ro.lower_bound_len = lower.len;
    }
    if (upper.ptr) {
        ro.upper_bound = upper.ptr;
        ro.upper_bound_len = upper.len;
    }
    niter *it = nb_xcalloc(1, sizeof(*it));
    int rc = nkv_iter_new(impl, &ro, &it->it);
    if (rc != 0) {
        free(it);
        return rc;
    }
    *out = it;
    return 0;
}

static void n_iter_free(void *p)
{
    niter *it = p;
    nkv_iter_free(it->it);
    free(it);
}

static void n_iter_seek(void *p, nb_slice key)
{
    nkv_iter_seek(((niter *)p)->it, key.ptr, key.len);
}

static void n_iter_seek_for_prev(void *p, nb_slice key)
{
    nkv_iter_seek_for_prev(((niter *)p)->it, key.ptr, key.len);
}

static void n_iter_seek_first(void *p)
{
    nkv_iter_seek_first(((niter *)p)->it);
}

static void n_iter_seek_last(void *p)
{
    nkv_iter_seek_last(((niter *)p)->it);
}

static void n_iter_next(void *p)
{
    nkv_iter_next(((niter *)p)->it);
}

static void n_iter_prev(void *p)
{
    nkv_iter_prev(((niter *)p)->it);
}

static int n_iter_valid(const void *p)
{
    return nkv_iter_valid(((const niter *)p)->it);
}

static nb_slice n_iter_key(const void *p)
{
    size_t n = 0;
    const void *k = nkv_iter_key(((const niter *)p)->it, &n);
    return nb_slice_of(k, n);
}

static nb_slice n_iter_value(const void *p)
{
    size_t n = 0;
    const void *v = nkv_iter_value(((const niter *)p)->it, &n);
    return nb_slice_of(v, n);
}

static int n_iter_status(const void *p)
{
    return nkv_iter_status(((const niter *)p)->it);
}

static int prop_u64(nkv_db *db, const char *name, uint64_t *v)
{
    char *s = NULL;
    int rc = nkv_property(db, name, &s);
    if (rc != 0)
        return rc;
    *v = strtoull(s, NULL, 10);
    nkv_free(s);
    return 0;
}

static int n_property(void *impl, const char *name, nb_buf *out)
{
    nkv_db *db = impl;
    if (strcmp(name, "kv.approx-bytes") == 0) {
        uint64_t a = 0, b = 0;
        int rc = prop_u64(db, "nkv.total-sst-bytes", &a);
        if (rc == 0)
            rc = prop_u64(db, "nkv.mem-bytes", &b);
        return rc ? rc : nb_buf_appendf(out, "%llu", (unsigned long long)(a + b));
    }
    if (strcmp(name, "kv.approx-keys") == 0) {
        /* nkv keeps no estimate: count (a diagnostic, O(keys)). */
        nkv_iter *it = NULL;
        int rc = nkv_iter_new(db, NULL, &it);
        if (rc != 0)
            return rc;
        uint64_t n = 0;
        for (nkv_iter_seek_first(it); nkv_iter_valid(it); nkv_iter_next(it))
            n++;
        rc = nkv_iter_status(it);
        nkv_iter_free(it);
        return rc ? rc : nb_buf_appendf(out, "%llu", (unsigned long long)n);
    }
    if (strncmp(name, "nkv.", 4) != 0)
        return NB_ENOTFOUND;
    char *s = NULL;
    int rc = nkv_property(db, name, &s);
    if (rc != 0)
        return rc;
    rc = nb_buf_append_str(out, s);
    nkv_free(s);
    return rc;
}

const kv__ops kv__nkv_ops = {
    .name = "nkv",
    .open = n_open,
    .close = n_close,
    .get = n_get,
    .write = n_write,
    .sync = n_sync,
    .last_seq = n_last_seq,
    .sync_to = n_sync_to,
    .snapshot_new = n_snapshot_new,
    .snapshot_free = n_snapshot_free,
    .iter_new = n_iter_new,
    .iter_free = n_iter_free,
    .iter_seek = n_iter_seek,
    .iter_seek_for_prev = n_iter_seek_for_prev,
    .iter_seek_first = n_iter_seek_first,
    .iter_seek_last = n_iter_seek_last,
    .iter_next = n_iter_next,
    .iter_prev = n_iter_prev,
    .iter_valid = n_iter_valid,
    .iter_key = n_iter_key,
    .iter_value = n_iter_value,
    .iter_status = n_iter_status,
    .property = n_property,
};
