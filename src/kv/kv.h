/*
 * kv.h — the key-value API the metadata lives on.
 *
 * An ordered map of byte-string keys to byte-string values with atomic
 * write batches, ordered iterators, consistent snapshots and per-write
 * durability. Engines ("backends") sit behind one ops table and are chosen
 * by name at open time: "rocksdb" (Debian's librocksdb through its C API,
 * the reference) and "nkv" (our own LSM engine, the default whenever it
 * is built in). Every backend passes the same conformance
 * suite (tests/unit/kv/test_kv.c). See docs/kv.md.
 *
 * Keys order bytewise (memcmp, shorter first on a common prefix).
 *
 * Thread safety: a kv_db may be used by any number of threads at once
 * (get, write, snapshots and iterators). A kv_batch and a kv_iter belong to
 * one thread at a time. A snapshot may be shared by threads once created.
 *
 * Errors: 0, -errno, or NB_E* (NB_ENOTFOUND for a missing key,
 * NB_EUSAGE for an unknown backend, NB_ECORRUPT, NB_ELOCKED when another
 * process has the directory open).
 */
#ifndef NB_KV_KV_H
#define NB_KV_KV_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"

typedef struct kv_db kv_db;
typedef struct kv_batch kv_batch;
typedef struct kv_snapshot kv_snapshot;
typedef struct kv_iter kv_iter;

/* The name of the backend used when kv_open() is given NULL or "": "nkv",
 * our own engine, when it is built in (it passed its crash test and every
 * kv and meta test), else "rocksdb". Static storage. */
const char *kv_default_engine(void);

typedef struct kv_options {
    int create_if_missing; /* create the store when dir holds none (default 1) */
    int error_if_exists;   /* NB_EEXIST when a store already exists (default 0) */
    size_t cache_bytes;    /* block cache size; 0 = backend default */
    size_t write_buffer;   /* memtable size; 0 = backend default */
    int paranoid_checks;   /* verify checksums aggressively on reads (default 1) */
} kv_options;

/* Fills o with the defaults above. */
void kv_options_init(kv_options *o);

/* The names of the backends built into this binary, NULL-terminated, the
 * default first. Static storage. */
const char *const *kv_engines(void);

/* Opens (or creates) the store in dir with the named backend (NULL or ""
 * selects kv_default_engine()). o may be NULL for defaults. Borrows all
 * arguments. On success *out holds a handle to close with kv_close();
 * on failure *out is NULL. NB_EUSAGE for an unknown engine name. */
int kv_open(const char *engine, const char *dir, const kv_options *o, kv_db **out) NB_MUST_CHECK;

/* Closes the store. Iterators and snapshots must have been freed first.
 * NULL is a no-op. */
void kv_close(kv_db *db);

/* The backend's name ("rocksdb", "nkv"). Static storage. */
const char *kv_engine_name(const kv_db *db);

/* Looks key up, at snap (NULL: the latest state). On success the value is
 * copied into val (reset first; the caller owns val's memory). Returns 0,
 * NB_ENOTFOUND, or an error. */
int kv_get(kv_db *db, const kv_snapshot *snap, nb_slice key, nb_buf *val) NB_MUST_CHECK;

/* ---- Write batches -------------------------------------------------------------------------
 * A batch collects puts and deletes that kv_write() applies atomically:
 * after a crash either all of them are visible or none. Operations apply in
 * the order they were added (a later put of a key wins over an earlier
 * delete of it and vice versa). The batch copies keys and values. */

/* Returns an empty batch (never NULL); free with kv_batch_free(). */
kv_batch *kv_batch_new(void);
/* NULL is a no-op. */
void kv_batch_free(kv_batch *b);
/* Empties the batch for reuse. */
void kv_batch_clear(kv_batch *b);
void kv_batch_put(kv_batch *b, nb_slice key, nb_slice val);
void kv_batch_delete(kv_batch *b, nb_slice key);
/* Deletes every key k with begin <= k < end. */
void kv_batch_delete_range(kv_batch *b, nb_slice begin, nb_slice end);
/* Number of operations in the batch. */
size_t kv_batch_count(const kv_batch *b);
/* Approximate bytes of keys and values held. */
size_t kv_batch_bytes(const kv_batch *b);

#define KV_SYNC 1u /* the write is durable (WAL fsynced) before kv_write returns */

/* Applies b atomically. flags: 0 or KV_SYNC. Without KV_SYNC a crash of the
 * machine (not of the process) may lose the write, and then every later
 * write too: writes become durable in order. Borrows b. */
int kv_write(kv_db *db, const kv_batch *b, unsigned flags) NB_MUST_CHECK;

/* Makes every write that kv_write() has returned for durable. */
int kv_sync(kv_db *db) NB_MUST_CHECK;

/* Group commit in two steps: kv_write_seq applies b without a sync (like
 * kv_write(db, b, 0)) and sets *seq to a sequence number covering it;
 * kv_sync_to(seq) returns once that write and every earlier one is
 * durable. Apply under your locks, sync after releasing them: concurrent
 * callers share one WAL sync (nkv), and one that a sync already covered
 * returns at once. Others see the write before kv_sync_to returns. */
int kv_write_seq(kv_db *db, const kv_batch *b, uint64_t *seq) NB_MUST_CHECK;
int kv_sync_to(kv_db *db, uint64_t seq) NB_MUST_CHECK;

/* ---- Snapshots ---------------------------------------------------------------------------- */

/* The newest write's sequence number (it covers every write that has
 * returned; it grows with each write): equal values read at two times
 * mean no write was applied in between (meta's GET cache relies on it). */
uint64_t kv_last_seq(kv_db *db);
/* Pins the current state: reads and iterators at the snapshot see exactly
 * the writes completed before it was taken. *out is owned; release with
 * kv_snapshot_free() before kv_close(). */
int kv_snapshot_new(kv_db *db, kv_snapshot **out) NB_MUST_CHECK;
/* NULL is a no-op. */
void kv_snapshot_free(kv_snapshot *s);

/* ---- Iterators ---------------------------------------------------------------------------- */

typedef struct kv_iter_options {
    const kv_snapshot *snap; /* NULL: an implicit snapshot taken at kv_iter_new() */
    nb_slice lower;          /* inclusive lower bound; ptr NULL = none */
    nb_slice upper;          /* exclusive upper bound; ptr NULL = none */
    nb_slice prefix;         /* if ptr != NULL, only keys starting with prefix (sets both bounds) */
} kv_iter_options;

/* Creates an iterator, not positioned (kv_iter_valid() is false until a
 * seek). io may be NULL. The iterator copies the bounds. Free with
 * kv_iter_free() before the snapshot it reads and before kv_close(). */
int kv_iter_new(kv_db *db, const kv_iter_options *io, kv_iter **out) NB_MUST_CHECK;
void kv_iter_free(kv_iter *it);
/* Positions at the first key >= key (within bounds). */
void kv_iter_seek(kv_iter *it, nb_slice key);
/* Positions at the last key <= key (within bounds). */
void kv_iter_seek_for_prev(kv_iter *it, nb_slice key);
void kv_iter_seek_first(kv_iter *it);
void kv_iter_seek_last(kv_iter *it);
/* Moves one key; the iterator must be valid. */
void kv_iter_next(kv_iter *it);
void kv_iter_prev(kv_iter *it);
/* 1 when positioned on a key, 0 at either end or after an error. */
int kv_iter_valid(const kv_iter *it);
/* The current key and value; valid until the iterator moves or is freed. */
nb_slice kv_iter_key(const kv_iter *it);
nb_slice kv_iter_value(const kv_iter *it);
/* 0, or the error that stopped the iteration (check when valid turns 0). */
int kv_iter_status(const kv_iter *it) NB_MUST_CHECK;

/* ---- Properties --------------------------------------------------------------------------- */

/* Writes a property as text into out (reset first). Every backend knows:
 *   "kv.engine"          the backend name
 *   "kv.approx-bytes"    approximate bytes on disk
 *   "kv.approx-keys"     approximate number of keys
 * Backends may add their own ("rocksdb.stats", "nkv.levels").
 * NB_ENOTFOUND for an unknown name. */
int kv_property(kv_db *db, const char *name, nb_buf *out) NB_MUST_CHECK;

/* Smallest key greater than every key that starts with prefix, into out
 * (reset first). Returns 0, or NB_ENOTFOUND when no such key exists
 * (prefix is empty or all 0xff). Used to build prefix scan bounds. */
int kv_prefix_end(nb_slice prefix, nb_buf *out) NB_MUST_CHECK;

#endif
