/*
 * kv_int.h — private to src/kv: the handle structs and the backend ops
 * table. A backend is one file (kv_rocksdb.c, kv_nkv.c) that exports one
 * `const kv__ops kv__<name>_ops`; kv.c dispatches through it and keeps
 * everything common (option defaults, batches, bounds) out of backends.
 */
#ifndef NB_KV_KV_INT_H
#define NB_KV_KV_INT_H

#include "kv/kv.h"

/* Batch record types, as stored in kv_batch.rec. */
enum { KV__OP_PUT = 1, KV__OP_DEL = 2, KV__OP_DELRANGE = 3 };

/* One decoded batch operation; a and b borrow from the batch.
 * PUT: a=key b=value. DEL: a=key. DELRANGE: a=begin b=end. */
typedef struct kv__op {
    int type;
    nb_slice a;
    nb_slice b;
} kv__op;

/* Records: u8 type, varint len(a), a, varint len(b), b (DEL has an empty b). */
struct kv_batch {
    nb_buf rec;
    size_t count;
};

/* Steps through b: *pos starts at 0; returns 1 and fills op, or 0 at the end. */
int kv__batch_next(const kv_batch *b, size_t *pos, kv__op *op);

typedef struct kv__ops {
    const char *name;
    int (*open)(const char *dir, const kv_options *o, void **impl);
    void (*close)(void *impl);
    int (*get)(void *impl, void *snap, nb_slice key, nb_buf *val);
    int (*write)(void *impl, const kv_batch *b, int sync);
    int (*sync)(void *impl);
    /* The newest sequence applied (covers every returned write). */
    uint64_t (*last_seq)(void *impl);
    /* Makes every write up to seq durable. */
    int (*sync_to)(void *impl, uint64_t seq);
    int (*snapshot_new)(void *impl, void **snap);
    void (*snapshot_free)(void *impl, void *snap);
    /* snap NULL: the iterator must see the state as of iter_new (an implicit
     * snapshot). lower/upper: ptr NULL = unbounded; the slices stay valid
     * (owned by kv_iter) for the iterator's life. */
    int (*iter_new)(void *impl, void *snap, nb_slice lower, nb_slice upper, void **it);
    void (*iter_free)(void *it);
    void (*iter_seek)(void *it, nb_slice key);
    void (*iter_seek_for_prev)(void *it, nb_slice key);
    void (*iter_seek_first)(void *it);
    void (*iter_seek_last)(void *it);
    void (*iter_next)(void *it);
    void (*iter_prev)(void *it);
    int (*iter_valid)(const void *it);
    nb_slice (*iter_key)(const void *it);
    nb_slice (*iter_value)(const void *it);
    int (*iter_status)(const void *it);
    /* Backend-specific properties; kv.c answers kv.engine itself. */
    int (*property)(void *impl, const char *name, nb_buf *out);
} kv__ops;

extern const kv__ops kv__rocksdb_ops;
#ifdef NB_KV_HAVE_NKV
extern const kv__ops kv__nkv_ops;
#endif

#define KV__MAGIC_DB   0x6b766462u
#define KV__MAGIC_ITER 0x6b766974u

struct kv_db {
    unsigned magic;
    const kv__ops *ops;
    void *impl;
};

struct kv_snapshot {
    kv_db *db;
    void *impl;
};

struct kv_iter {
    unsigned magic;
    kv_db *db;
    void *impl;
    nb_buf lower;
    nb_buf upper;
};

#endif
