/*
 * nkv_db.h — the database handle, shared by db.c (open, write path, reads,
 * flush), compact.c (compaction) and repair.c.
 *
 * Locking: db->mu guards every field not marked otherwise. The write queue
 * leader is the only thread that appends to the WAL and inserts into the
 * memtable, and does so without holding mu; readers take mu only to pin
 * (ref) the memtables and the current version.
 */
#ifndef NKV_NKV_DB_H
#define NKV_NKV_DB_H

#include "nkv_int.h"

#define NKV_MAX_IMM 16

/* A queued writer's state, published with release stores so that a
 * spinning writer may read rc (and return) without taking mu. */
enum { NKV_W_WAIT, NKV_W_LEAD, NKV_W_DONE };

typedef struct nkv_writer {
    const nkv_batch *batch; /* NULL: force a memtable switch */
    bool sync;
    bool sleeping;    /* mu: blocked on cv (else spinning on state) */
    bool behind_sync; /* queued while the leader was in its fsync */
    _Atomic int state;
    int rc;
    pthread_cond_t cv;
    struct nkv_writer *next;
} nkv_writer;

/* A SuperVersion (RocksDB's name): the memtables and the version a read
 * needs, pinned together by one reference. db->sv is replaced (under mu)
 * whenever the memtable, the immutable list or the version changes. */
typedef struct nkv_sv {
    _Atomic int refs;
    uint64_t gen;
    nkv_version *v;
    int nmems;
    nkv_mem *mems[NKV_MAX_IMM + 1]; /* newest first */
} nkv_sv;

/* Reads take the current sv without mu from a per-thread slot (threads are
 * spread over the slots; two threads that share one fall back to mu). A
 * slot holds NULL, NKV_SV_INUSE while its thread reads, or an sv with one
 * reference that belongs to the slot. Installing a new sv empties every
 * slot (RocksDB's thread-local SuperVersion scrape). */
#define NKV_SV_SLOTS 32
#define NKV_SV_INUSE ((nkv_sv *)(uintptr_t)1)
typedef struct nkv_sv_slot {
    _Alignas(64) _Atomic(nkv_sv *) p;
} nkv_sv_slot;

struct nkv_snapshot {
    uint64_t seq;
    struct nkv_snapshot *prev, *next;
};

typedef struct nkv_stats {
    _Atomic uint64_t user_bytes;    /* batch bytes accepted */
    _Atomic uint64_t wal_bytes;     /* bytes appended to WALs */
    _Atomic uint64_t flush_bytes;   /* bytes of L0 tables written by flushes */
    _Atomic uint64_t compact_read;  /* bytes read by compactions */
    _Atomic uint64_t compact_write; /* bytes written by compactions */
    _Atomic uint64_t stall_us;      /* time writers spent delayed or stopped */
    _Atomic uint64_t slowdowns;
    _Atomic uint64_t compactions;
    _Atomic uint64_t trivial_moves;
    _Atomic uint64_t intra_l0;
    _Atomic uint64_t flushes;
} nkv_stats;

struct nkv_db {
    nkv_options o;
    char *dir;
    const nkv_env *env;
    int lock_token;
    bool locked;

    pthread_mutex_t mu;
    pthread_cond_t bg_cv;   /* wakes the background threads */
    pthread_cond_t done_cv; /* background progress: wakes stalled writers, flush waiters */

    nkv_mem *mem;
    nkv_mem *imm[NKV_MAX_IMM]; /* imm[0] is the oldest */
    int nimm;
    nkv_wal_writer wal;
    uint64_t wal_num; /* the current WAL's file number */
    /* Logs of immutable memtables that no fsync has covered: a memtable
     * switch does not fsync the old log. Each is fsynced before any newer
     * log is (so survivors of a power loss stay a prefix) and closed
     * unsynced once its memtable is flushed; most are never fsynced. */
    struct {
        nkv_file *f;
        uint64_t num;
    } old_wals[NKV_MAX_IMM + 1];
    int nold_wals;
    bool wal_open;
    bool wal_broken; /* an append failed: switch to a new WAL before the next write */
    /* nkv_sync_wal: every write <= synced_seq is in a synced WAL. One
     * caller at a time syncs (syncing) outside the writer queue, so
     * writers keep appending meanwhile; new_wal waits for it. */
    _Atomic uint64_t synced_seq;
    bool syncing;
    pthread_cond_t sync_cv;

    nkv_vset vs;
    nkv_sv *sv;              /* current, one reference held by db */
    _Atomic uint64_t sv_gen; /* sv->gen, read by readers without mu */
    nkv_sv_slot *sv_slots;   /* NKV_SV_SLOTS of them */
    nkv_cache *block_cache;
    nkv_table_cache *tc;

    nkv_writer *wq_head, *wq_tail;
    bool leader_syncing; /* the write leader is in its group's fsync */
    nkv_batch *group;    /* scratch batch of the group-commit leader */
    /* A synced group's leader waits briefly for writers it expects (db.c,
     * gather): last_sync_group writers were in the last synced group;
     * gathering while the leader waits on gather_cv; gather_skip groups
     * still to go without waiting after a wait that timed out. */
    int last_sync_group;
    bool gathering;
    int gather_skip;
    pthread_cond_t gather_cv;

    struct nkv_snapshot snaps; /* sentinel of a list, oldest first */

    pthread_t flush_thr;
    pthread_t *compact_thr;
    int ncompact_thr;
    bool threads_started;
    bool shutting_down;
    int bg_error; /* last background failure; cleared by a later success */
    int compactions_running;
    bool manual_compaction;
    uint64_t flush_done; /* count of completed flushes (for waiters) */

    nkv_stats st;
};

/* compact.c */
void *nkv__compact_thread(void *arg);
/* Manual compaction of [lo, hi] (NULL = open) through every level. */
int nkv__compact_range(nkv_db *db, const nb_slice *lo, const nb_slice *hi);
/* Score of the most urgent level (>= 1 means compaction is due); mu held. */
double nkv__compaction_score(nkv_db *db, int *level);
uint64_t nkv__level_target(const nkv_db *db, int level);
uint64_t nkv__pending_compaction_bytes(nkv_db *db);

/* db.c */
/* Publishes the current memtables and version as a new sv; mu held. */
void nkv__sv_install(nkv_db *db);
/* Writes memtable m as L0 table(s), adding them to e; mu not held. */
int nkv__write_l0(nkv_db *db, nkv_mem *m, uint64_t smallest_snap, nkv_edit *e);
/* Parses "NNNNNN.ext"; returns the number or 0. */
uint64_t nkv__parse_num(const char *name, const char *ext);
uint64_t nkv__smallest_snapshot(nkv_db *db); /* mu held */
/* Deletes queued obsolete tables; mu not held. */
void nkv__delete_obsolete(nkv_db *db);
/* Drops entries shadowed for every snapshot (and, when is_base says the
 * key exists nowhere deeper, tombstones) while writing sorted entries from
 * `in` into tables of at most max_size bytes at `level`. Output files are
 * appended to e. */
typedef bool (*nkv__base_fn)(void *arg, nb_slice ukey);
int nkv__write_tables(nkv_db *db, nkv__it *in, uint64_t smallest_snap, nkv__base_fn is_base,
                      void *base_arg, uint64_t max_size, int level, nkv_edit *e,
                      uint64_t *bytes_out);

#endif
