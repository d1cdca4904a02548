/*
 * nkv.h — NebulaStore's embedded LSM-tree key-value engine.
 *
 * A database is a directory holding a write-ahead log, sorted string tables
 * (SSTs) in levels, a MANIFEST of version edits and a CURRENT pointer. Keys
 * and values are arbitrary byte strings ordered by memcmp (shorter first on
 * a common prefix). Writes go to the WAL and an in-memory skiplist; full
 * memtables are flushed to level-0 tables by a background thread and
 * background compaction merges tables down the levels. docs/nkv.md
 * describes every file format byte by byte.
 *
 * Return codes: every fallible function returns int: 0 on success, -errno
 * for an operating-system failure (-EIO, -ENOSPC, ...), or one of the
 * NKV_E* codes below (identical to NebulaStore's NB_E* codes in
 * common/status.h). nkv_strerror() names any of them.
 *
 * Thread safety: an nkv_db may be used by any number of threads at once
 * (put/get/delete/write/iterators/snapshots/properties). An nkv_iter and an
 * nkv_batch belong to one thread at a time. nkv_close() must not race with
 * any other call on the same handle, and every iterator and snapshot must
 * be freed before it.
 *
 * Caveats:
 *  - One process at a time may open a directory (a lock file enforces it);
 *    NKV_ELOCKED otherwise.
 *  - Without sync, an acknowledged write survives a process crash but may
 *    be lost on power failure; with sync it survives both.
 *  - Pointers returned by nkv_iter_key/value are valid only until the next
 *    call that moves or frees the iterator.
 */
#ifndef NKV_NKV_H
#define NKV_NKV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NKV_VERSION_MAJOR 0
#define NKV_VERSION_MINOR 1
#define NKV_VERSION_PATCH 0

/* Library error codes (same values as common/status.h). */
#define NKV_ENOTFOUND (-30001) /* key absent (nkv_get) */
#define NKV_EEXIST    (-30002) /* database exists and error_if_exists */
#define NKV_ECORRUPT  (-30003) /* a file failed validation; logged with file+offset */
#define NKV_ECHECKSUM (-30004) /* a block's checksum did not match */
#define NKV_EVERSION  (-30007) /* unsupported on-disk format version */
#define NKV_ELOCKED   (-30008) /* another process has the database open */
#define NKV_EUSAGE    (-30009) /* invalid argument or option */
#define NKV_ECLOSED   (-30010) /* database is shutting down */
#define NKV_ETOOBIG   (-30011) /* key or value larger than the format allows */

typedef struct nkv_db nkv_db;             /* an open database */
typedef struct nkv_iter nkv_iter;         /* a cursor over a consistent view */
typedef struct nkv_snapshot nkv_snapshot; /* a fixed point in the write sequence */
typedef struct nkv_batch nkv_batch;       /* an ordered list of puts and deletes */

/* ---------------------------------------------------------------------------
 * I/O environment. nkv does every file operation through this table so that
 * tests can inject faults (drop unsynced data, fail with -ENOSPC). Leave
 * nkv_options.env NULL for the default POSIX implementation. All functions
 * return 0 or -errno. A file handle is whatever the env wants it to be.
 * ------------------------------------------------------------------------- */
typedef struct nkv_file nkv_file;
typedef struct nkv_env {
    void *ctx; /* passed back to every function; borrowed */
    /* Opens an existing file for positional reads. */
    int (*open_read)(void *ctx, const char *path, nkv_file **out);
    /* Creates (or truncates) a file for appending. */
    int (*open_write)(void *ctx, const char *path, nkv_file **out);
    /* Reads up to n bytes at off; *got < n only at end of file. */
    int (*read_at)(void *ctx, nkv_file *f, uint64_t off, void *buf, size_t n, size_t *got);
    /* Appends n bytes at the end of a file opened with open_write. */
    int (*append)(void *ctx, nkv_file *f, const void *buf, size_t n);
    /* Makes appended data durable (fdatasync). */
    int (*sync)(void *ctx, nkv_file *f);
    /* Closes the handle (after a failed call too). */
    int (*close)(void *ctx, nkv_file *f);
    /* Size in bytes of the file at path. */
    int (*file_size)(void *ctx, const char *path, uint64_t *size);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    /* Makes creations, renames and unlinks in dir durable. */
    int (*sync_dir)(void *ctx, const char *dir);
    /* Creates dir (and parents); existing is fine. */
    int (*mkdir)(void *ctx, const char *dir);
    /* Lists the names in dir: *names is an array of *n strings, all owned by
     * the caller and freed with free() (each, then the array). */
    int (*list_dir)(void *ctx, const char *dir, char ***names, size_t *n);
    /* Takes the exclusive process lock at path; *token is passed to unlock. */
    int (*lock)(void *ctx, const char *path, int *token);
    void (*unlock)(void *ctx, int token);
} nkv_env;

/* The default POSIX environment (static; never freed). */
const nkv_env *nkv_env_default(void);

/* ---------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------- */
typedef enum nkv_compression {
    NKV_COMPRESSION_NONE = 0,
    NKV_COMPRESSION_SNAPPY = 1,
    NKV_COMPRESSION_ZSTD = 2,
} nkv_compression;

typedef struct nkv_options {
    bool create_if_missing;            /* default true */
    bool error_if_exists;              /* default false */
    bool paranoid_checks;              /* fail open on any WAL corruption instead of
                                          logging and skipping the damaged records;
                                          default false */
    bool sync;                         /* sync flag when write options are NULL; default false */
    size_t write_buffer_size;          /* memtable bytes before a flush; default 64 MiB */
    size_t block_cache_bytes;          /* shared LRU block cache; default 8 MiB; 0 = none */
    size_t block_size;                 /* uncompressed data block target; default 4 KiB */
    int bloom_bits_per_key;            /* default 10; 0 = no filter */
    nkv_compression compression;       /* default NKV_COMPRESSION_SNAPPY */
    int zstd_level;                    /* default 1 */
    int max_open_files;                /* table readers kept open; default 1000 */
    int l0_compaction_trigger;         /* L0 files that start a compaction; default 4 */
    int l0_slowdown_trigger;           /* L0 files that delay each write by 1 ms; default 20 */
    int l0_stop_trigger;               /* L0 files that block writes; default 36 */
    uint64_t max_bytes_for_level_base; /* L1 target size; ×10 per level; default 256 MiB */
    uint64_t target_file_size;         /* SST size from compaction; default 64 MiB */
    int max_write_buffers;             /* memtables incl. the active one; default 2 */
    int background_threads;            /* compaction threads (a flush thread is extra); default 1 */
    const nkv_env *env;                /* borrowed; must outlive the db; NULL = default */
} nkv_options;

/* Fills *o with the defaults listed above. */
void nkv_options_init(nkv_options *o);

typedef struct nkv_write_options {
    bool sync; /* fsync the WAL before acknowledging */
} nkv_write_options;

typedef struct nkv_read_options {
    const nkv_snapshot *snapshot; /* borrowed; NULL = latest */
    const void *lower_bound;      /* iterators: first key allowed (inclusive); borrowed */
    size_t lower_bound_len;
    const void *upper_bound; /* iterators: keys must be < this (exclusive); borrowed */
    size_t upper_bound_len;
    bool fill_cache; /* add blocks read to the block cache; default true */
} nkv_read_options;

void nkv_read_options_init(nkv_read_options *ro);

/* ---------------------------------------------------------------------------
 * Database
 * ------------------------------------------------------------------------- */

/* Opens (or creates) the database in dir. opts is borrowed (NULL = defaults).
 * On success *out is an owned handle; close with nkv_close(). On failure *out
 * is NULL. Returns 0, NKV_ELOCKED, NKV_EEXIST, -ENOENT (missing and
 * !create_if_missing), NKV_ECORRUPT/NKV_ECHECKSUM, NKV_EVERSION or -errno. */
int nkv_open(const nkv_options *opts, const char *dir, nkv_db **out);

/* Waits for background work, closes the database and frees db. NULL is a
 * no-op. Returns 0 or the first background error seen. */
int nkv_close(nkv_db *db);

/* Stores key → value. key/value are borrowed (copied). wo may be NULL. */
int nkv_put(nkv_db *db, const nkv_write_options *wo, const void *key, size_t klen, const void *val,
            size_t vlen);

/* Removes key (not an error when absent). */
int nkv_delete(nkv_db *db, const nkv_write_options *wo, const void *key, size_t klen);

/* Applies every operation of batch atomically: after any crash all of them
 * are visible or none is. batch is borrowed and left unchanged. */
int nkv_write(nkv_db *db, const nkv_write_options *wo, const nkv_batch *batch);

/* The newest sequence number applied. Once nkv_write (or put/delete) has
 * returned, it is at least that write's sequence. */
uint64_t nkv_last_sequence(nkv_db *db);

/* Makes every write with a sequence number <= seq durable (WAL fdatasync).
 * Returns at once when a sync already covered seq; concurrent callers
 * share one fdatasync (they queue with the writers: the leader syncs once
 * for every waiter behind it). Lets a caller apply an unsynced write under
 * its own locks and wait for durability after releasing them. */
int nkv_sync_wal(nkv_db *db, uint64_t seq);

/* Looks key up. On success *val is an owned copy (free with nkv_free();
 * never NULL, even for an empty value) and *vlen its length. Returns
 * NKV_ENOTFOUND when absent. ro may be NULL. */
int nkv_get(nkv_db *db, const nkv_read_options *ro, const void *key, size_t klen, void **val,
            size_t *vlen);

/* Frees memory returned by nkv_get() and nkv_property(). NULL is a no-op. */
void nkv_free(void *p);

/* ---------------------------------------------------------------------------
 * Batches
 * ------------------------------------------------------------------------- */

/* Returns an owned, empty batch in *out; free with nkv_batch_free(). */
int nkv_batch_new(nkv_batch **out);
void nkv_batch_free(nkv_batch *b);
/* Appends a put / delete; key and value are copied. */
int nkv_batch_put(nkv_batch *b, const void *key, size_t klen, const void *val, size_t vlen);
int nkv_batch_delete(nkv_batch *b, const void *key, size_t klen);
void nkv_batch_clear(nkv_batch *b);
uint32_t nkv_batch_count(const nkv_batch *b);
/* Bytes the batch occupies in the WAL. */
size_t nkv_batch_size(const nkv_batch *b);

/* ---------------------------------------------------------------------------
 * Snapshots
 * ------------------------------------------------------------------------- */

/* Returns an owned snapshot of the current state in *out; free with
 * nkv_snapshot_free() before nkv_close(). */
int nkv_snapshot_new(nkv_db *db, nkv_snapshot **out);
void nkv_snapshot_free(nkv_db *db, nkv_snapshot *snap);
/* The sequence number the snapshot reads at. */
uint64_t nkv_snapshot_sequence(const nkv_snapshot *snap);

/* ---------------------------------------------------------------------------
 * Iterators. A new iterator is not positioned (valid() is false). It sees
 * the state at creation (or at ro->snapshot) whatever is written later, and
 * pins the files it reads until freed.
 * ------------------------------------------------------------------------- */

/* Returns an owned iterator in *out; free with nkv_iter_free(). ro is copied
 * but the bounds it points to are borrowed for the iterator's life. */
int nkv_iter_new(nkv_db *db, const nkv_read_options *ro, nkv_iter **out);
void nkv_iter_free(nkv_iter *it);
/* Positions at the first key >= key (and >= lower bound). */
void nkv_iter_seek(nkv_iter *it, const void *key, size_t klen);
/* Positions at the last key <= key (and < upper bound). */
void nkv_iter_seek_for_prev(nkv_iter *it, const void *key, size_t klen);
void nkv_iter_seek_first(nkv_iter *it);
void nkv_iter_seek_last(nkv_iter *it);
/* Move one entry; the iterator must be valid. */
void nkv_iter_next(nkv_iter *it);
void nkv_iter_prev(nkv_iter *it);
bool nkv_iter_valid(const nkv_iter *it);
/* Current key / value: borrowed, valid until the iterator moves or is freed. */
const void *nkv_iter_key(const nkv_iter *it, size_t *klen);
const void *nkv_iter_value(const nkv_iter *it, size_t *vlen);
/* 0, or the error that stopped the iterator (it is then invalid). */
int nkv_iter_status(const nkv_iter *it);

/* ---------------------------------------------------------------------------
 * Maintenance
 * ------------------------------------------------------------------------- */

/* Flushes the memtable to an L0 table. With wait, returns once it is
 * durable in the MANIFEST. */
int nkv_flush(nkv_db *db, bool wait);

/* Compacts every table overlapping [begin, end] down to the bottom level in
 * use, dropping overwritten values and tombstones. NULL bounds mean open
 * ends. Blocks until done. */
int nkv_compact_range(nkv_db *db, const void *begin, size_t blen, const void *end, size_t elen);

/* Reads a named property into *out: an owned NUL-terminated string (free
 * with nkv_free()). Names:
 *   "nkv.stats"                 multi-line summary of everything below
 *   "nkv.level-files"           file count per level, "L0:3 L1:10 ..."
 *   "nkv.level-bytes"           bytes per level
 *   "nkv.num-files-at-level<N>" one number
 *   "nkv.total-sst-bytes"       bytes in live tables
 *   "nkv.cache-hit-rate"        block cache hit rate 0..1
 *   "nkv.cache-usage"           bytes charged to the block cache
 *   "nkv.write-amp"             bytes written to disk / bytes of user writes
 *   "nkv.space-amp"             live SST bytes / bytes of the deepest non-empty level
 *   "nkv.pending-compaction-bytes" estimated bytes compaction still has to move
 *   "nkv.mem-bytes"             memtable bytes (active + immutable)
 *   "nkv.last-sequence"         the newest sequence number
 * Returns NKV_ENOTFOUND for an unknown name. */
int nkv_property(nkv_db *db, const char *name, char **out);

/* Deletes the database in dir and its files (the directory too, when it is
 * left empty). opts may be NULL. NKV_ELOCKED if open. */
int nkv_destroy(const nkv_options *opts, const char *dir);

/* Rebuilds the MANIFEST of a damaged database from the tables and logs that
 * can still be read, keeping every intact record; corrupt blocks are
 * skipped and logged. The database must not be open. */
int nkv_repair(const nkv_options *opts, const char *dir);

/* A static message for any code returned by this library. */
const char *nkv_strerror(int rc);

#ifdef __cplusplus
}
#endif

#endif
