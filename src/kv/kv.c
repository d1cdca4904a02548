/*
 * kv.c — backend selection, write batches and the dispatch to the ops
 * table. Everything a backend would otherwise repeat lives here.
 */
#include "kv/kv.h"

#include <string.h>

#include "common/coding.h"
#include "common/mem.h"
#include "kv/kv_int.h"

static const kv__ops *const engines[] = {
    &kv__rocksdb_ops,
#ifdef NB_KV_HAVE_NKV
    &kv__nkv_ops,
#endif
};

static const char *const engine_names[] = {
#ifdef NB_KV_HAVE_NKV
    "nkv",
#endif
    "rocksdb",
    NULL,
};

const char *kv_default_engine(void)
{
    return engine_names[0];
}

const char *const *kv_engines(void)
{
    return engine_names;
}

void kv_options_init(kv_options *o)
{
    memset(o, 0, sizeof(*o));
    o->create_if_missing = 1;
    o->paranoid_checks = 1;
}

int kv_open(const char *engine, const char *dir, const kv_options *o, kv_db **out)
{
    *out = NULL;
    if (!engine || !*engine)
        engine = kv_default_engine();
    const kv__ops *ops = NULL;
    for (size_t i = 0; i < NB_ARRAY_LEN(engines); i++) {
        if (strcmp(engines[i]->name, engine) == 0)
            ops = engines[i];
    }
    if (!ops)
        return NB_EUSAGE;
    kv_options def;
    if (!o) {
        kv_options_init(&def);
        o = &def;
    }
    void *impl = NULL;
    int rc = ops->open(dir, o, &impl);
    if (rc != 0)
        return rc;
    kv_db *db = nb_xcalloc(1, sizeof(*db));
    db->magic = KV__MAGIC_DB;
    db->ops = ops;
    db->impl = impl;
    *out = db;
    return 0;
}

void kv_close(kv_db *db)
{
    if (!db)
        return;
    NB_ASSERT(db->magic == KV__MAGIC_DB);
    db->ops->close(db->impl);
    db->magic = 0;
    free(db);
}

const char *kv_engine_name(const kv_db *db)
{
    return db->ops->name;
}

int kv_get(kv_db *db, const kv_snapshot *snap, nb_slice key, nb_buf *val)
{
    nb_buf_reset(val);
    return db->ops->get(db->impl, snap ? snap->impl : NULL, key, val);
}

/* ---- batches ---- */

kv_batch *kv_batch_new(void)
{
    kv_batch *b = nb_xcalloc(1, sizeof(*b));
    nb_buf_init(&b->rec, 0);
    return b;
}

void kv_batch_free(kv_batch *b)
{
    if (!b)
        return;
    nb_buf_free(&b->rec);
    free(b);
}

void kv_batch_clear(kv_batch *b)
{
    nb_buf_reset(&b->rec);
    b->count = 0;
}

static void batch_add(kv_batch *b, int type, nb_slice a, nb_slice v)
{
    /* The buffer has no cap, so appends can only fail by aborting on OOM. */
    int rc = nb_buf_put_u8(&b->rec, (uint8_t)type);
    rc |= nb_buf_put_lenprefixed(&b->rec, a);
    rc |= nb_buf_put_lenprefixed(&b->rec, v);
    NB_ASSERT(rc == 0);
    b->count++;
}

void kv_batch_put(kv_batch *b, nb_slice key, nb_slice val)
{
    batch_add(b, KV__OP_PUT, key, val);
}

void kv_batch_delete(kv_batch *b, nb_slice key)
{
    batch_add(b, KV__OP_DEL, key, nb_slice_of(NULL, 0));
}

void kv_batch_delete_range(kv_batch *b, nb_slice begin, nb_slice end)
{
    batch_add(b, KV__OP_DELRANGE, begin, end);
}

size_t kv_batch_count(const kv_batch *b)
{
    return b->count;
}

size_t kv_batch_bytes(const kv_batch *b)
{
    return b->rec.len;
}

int kv__batch_next(const kv_batch *b, size_t *pos, kv__op *op)
{
    const uint8_t *p = b->rec.data + *pos, *end = b->rec.data + b->rec.len;
    if (*pos >= b->rec.len)
        return 0;
    uint64_t n;
    op->type = *p++;
    p = nb_varint_decode(p, end, &n);
    NB_ASSERT(p && n <= (uint64_t)(end - p));
    op->a = nb_slice_of(p, n);
    p += n;
    p = nb_varint_decode(p, end, &n);
    NB_ASSERT(p && n <= (uint64_t)(end - p));
    op->b = nb_slice_of(p, n);
    p += n;
    *pos = (size_t)(p - b->rec.data);
    return 1;
}

int kv_write(kv_db *db, const kv_batch *b, unsigned flags)
{
    if (b->count == 0 && !(flags & KV_SYNC))
        return 0;
    return db->ops->write(db->impl, b, (flags & KV_SYNC) != 0);
}

int kv_sync(kv_db *db)
{
    return db->ops->sync(db->impl);
}

int kv_write_seq(kv_db *db, const kv_batch *b, uint64_t *seq)
{
    int rc = kv_write(db, b, 0);
    /* Read after the write returned: at least its sequence. */
    *seq = db->ops->last_seq(db->impl);
    return rc;
}

uint64_t kv_last_seq(kv_db *db)
{
    return db->ops->last_seq(db->impl);
}

int kv_sync_to(kv_db *db, uint64_t seq)
{
    return db->ops->sync_to(db->impl, seq);
}

/* ---- snapshots ---- */

int kv_snapshot_new(kv_db *db, kv_snapshot **out)
{
    *out = NULL;
    void *impl = NULL;
    int rc = db->ops->snapshot_new(db->impl, &impl);
    if (rc != 0)
        return rc;
    kv_snapshot *s = nb_xcalloc(1, sizeof(*s));
    s->db = db;
    s->impl = impl;
    *out = s;
    return 0;
}

void kv_snapshot_free(kv_snapshot *s)
{
    if (!s)
        return;
    s->db->ops->snapshot_free(s->db->impl, s->impl);
    free(s);
}

/* ---- iterators ---- */

int kv_prefix_end(nb_slice prefix, nb_buf *out)
{
    nb_buf_reset(out);
    size_t n = prefix.len;
    while (n > 0 && prefix.ptr[n - 1] == 0xff)
        n--;
    if (n == 0)
        return NB_ENOTFOUND;
    int rc = nb_buf_append(out, prefix.ptr, n);
    if (rc != 0)
        return rc;
    out->data[n - 1]++;
    return 0;
}

static nb_slice max_slice(nb_slice a, nb_slice b)
{
    if (!a.ptr)
        return b;
    if (!b.ptr)
        return a;
    return nb_slice_cmp(a, b) >= 0 ? a : b;
}

static nb_slice min_slice(nb_slice a, nb_slice b)
{
    if (!a.ptr)
        return b;
    if (!b.ptr)
        return a;
    return nb_slice_cmp(a, b) <= 0 ? a : b;
}

static int copy_bound(nb_buf *dst, nb_slice s, nb_slice *out)
{
    if (!s.ptr) {
        *out = nb_slice_of(NULL, 0);
        return 0;
    }
    /* Reserve one byte so that an empty bound still has a non-NULL pointer. */
    int rc = nb_buf_reserve(dst, s.len + 1);
    if (rc == 0)
        rc = nb_buf_append(dst, s.ptr, s.len);
    *out = nb_slice_of(dst->data, dst->len);
    return rc;
}

int kv_iter_new(kv_db *db, const kv_iter_options *io, kv_iter **out)
{
    *out = NULL;
    kv_iter_options none = {0};
    if (!io)
        io = &none;
    kv_iter *it = nb_xcalloc(1, sizeof(*it));
    it->magic = KV__MAGIC_ITER;
    it->db = db;
    nb_buf_init(&it->lower, 0);
    nb_buf_init(&it->upper, 0);
    nb_slice lo = io->lower, hi = io->upper;
    nb_buf pend = NB_BUF_INIT;
    if (io->prefix.ptr) {
        lo = max_slice(lo, io->prefix);
        if (kv_prefix_end(io->prefix, &pend) == 0)
            hi = min_slice(hi, nb_buf_slice(&pend));
    }
    nb_slice l, u;
    int rc = copy_bound(&it->lower, lo, &l);
    if (rc == 0)
        rc = copy_bound(&it->upper, hi, &u);
    nb_buf_free(&pend);
    if (rc == 0)
        rc = db->ops->iter_new(db->impl, io->snap ? io->snap->impl : NULL, l, u, &it->impl);
    if (rc != 0) {
        nb_buf_free(&it->lower);
        nb_buf_free(&it->upper);
        free(it);
        return rc;
    }
    *out = it;
    return 0;
}

void kv_iter_free(kv_iter *it)
{
    if (!it)
        return;
    NB_ASSERT(it->magic == KV__MAGIC_ITER);
    it->db->ops->iter_free(it->impl);
    nb_buf_free(&it->lower);
    nb_buf_free(&it->upper);
    it->magic = 0;
    free(it);
}

void kv_iter_seek(kv_iter *it, nb_slice key)
{
    it->db->ops->iter_seek(it->impl, key);
}

void kv_iter_seek_for_prev(kv_iter *it, nb_slice key)
{
    it->db->ops->iter_seek_for_prev(it->impl, key);
}

void kv_iter_seek_first(kv_iter *it)
{
    it->db->ops->iter_seek_first(it->impl);
}

void kv_iter_seek_last(kv_iter *it)
{
    it->db->ops->iter_seek_last(it->impl);
}

void kv_iter_next(kv_iter *it)
{
    it->db->ops->iter_next(it->impl);
}

void kv_iter_prev(kv_iter *it)
{
    it->db->ops->iter_prev(it->impl);
}

int kv_iter_valid(const kv_iter *it)
{
    return it->db->ops->iter_valid(it->impl);
}

nb_slice kv_iter_key(const kv_iter *it)
{
    return it->db->ops->iter_key(it->impl);
}

nb_slice kv_iter_value(const kv_iter *it)
{
    return it->db->ops->iter_value(it->impl);
}

int kv_iter_status(const kv_iter *it)
{
    return it->db->ops->iter_status(it->impl);
}

int kv_property(kv_db *db, const char *name, nb_buf *out)
{
    nb_buf_reset(out);
    if (strcmp(name, "kv.engine") == 0)
        return nb_buf_append_str(out, db->ops->name);
    return db->ops->property(db->impl, name, out);
}
