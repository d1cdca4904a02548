/*
 * db.c — open/close, the write path with group commit, reads, snapshots,
 * iterators, flushes and properties.
 *
 * Write path:
 *
 *   nkv_write ─► queue ─► leader? ─no─► wait until a leader did our write
 *                            │yes
 *                            ▼
 *                 make_room (may switch memtable+WAL, delay or stall)
 *                            ▼
 *                 fold followers' batches into one group (≤ 1 MiB)
 *                            ▼  (mu released)
 *                 one WAL append (+ one fsync if any writer asked)
 *                            ▼
 *                 insert into the skiplist (readers never block)
 *                            ▼  (mu taken)
 *                 publish last_seq, wake the followers, next leader
 *
 * A full memtable becomes immutable and a new WAL starts; the flush thread
 * writes immutable memtables as L0 tables, oldest first, and records each
 * in the MANIFEST together with the oldest WAL still needed.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nkv_db.h"

#define GROUP_MAX (1u << 20)

void nkv_options_init(nkv_options *o)
{
    memset(o, 0, sizeof *o);
    o->create_if_missing = true;
    o->write_buffer_size = 64u << 20;
    o->block_cache_bytes = 8u << 20;
    o->block_size = 4096;
    o->bloom_bits_per_key = 10;
    o->compression = NKV_COMPRESSION_SNAPPY;
    o->zstd_level = 1;
    o->max_open_files = 1000;
    o->l0_compaction_trigger = 4;
    o->l0_slowdown_trigger = 20;
    o->l0_stop_trigger = 36;
    o->max_bytes_for_level_base = 256ull << 20;
    o->target_file_size = 64ull << 20;
    o->max_write_buffers = 2;
    o->background_threads = 1;
}

void nkv_read_options_init(nkv_read_options *ro)
{
    memset(ro, 0, sizeof *ro);
    ro->fill_cache = true;
}

const char *nkv_strerror(int rc)
{
    return nb_strerror(rc);
}

void nkv_free(void *p)
{
    free(p);
}

/* ---------------------------------------------------------------------------
 * Table writing (flush and compaction)
 * ------------------------------------------------------------------------- */

/* Memtables carry a user-key filter of 1/64 of the write buffer (64 KiB
 * for 4 MiB; ~17 bits per key at 100-byte values), so that gets and seeks
 * of keys they do not hold skip the skiplist search, a cache miss per
 * level. */
static nkv_mem *mem_new(const nkv_db *db)
{
    size_t fb = db->o.write_buffer_size / 64;
    return nkv__mem_new_filtered(fb < 1024 ? 1024 : fb > (1u << 20) ? (1u << 20) : fb);
}

static nkv_table_opts table_opts(const nkv_db *db)
{
    nkv_table_opts t = {
        .block_size = db->o.block_size,
        .restart_interval = 16,
        .bloom_bits_per_key = db->o.bloom_bits_per_key,
        .compression = db->o.compression,
        .zstd_level = db->o.zstd_level,
    };
    return t;
}

typedef struct out_file {
    nkv_fmeta *f;
    nkv_file *file;
    nkv_table_builder *tb;
    char *path;
} out_file;

static int out_open(nkv_db *db, out_file *o)
{
    pthread_mutex_lock(&db->mu);
    uint64_t num = db->vs.next_file++;
    pthread_mutex_unlock(&db->mu);
    o->f = nkv__fmeta_new();
    o->f->num = num;
    o->f->smallest_seq = UINT64_MAX;
    o->path = nkv__path(db->dir, num, "sst");
    int rc = db->env->open_write(db->env->ctx, o->path, &o->file);
    if (rc) {
        NB_ERROR("nkv: cannot create %s: %s", o->path, nb_strerror(rc));
        o->file = NULL;
        return rc;
    }
    nkv_table_opts to = table_opts(db);
    o->tb = nkv__tb_new(&to, db->env, o->file);
    return 0;
}

/* Finishes (or, on error, abandons) the output; on success adds it to e. */
static int out_close(nkv_db *db, out_file *o, int rc, int level, nkv_edit *e, uint64_t *bytes)
{
    if (!o->f)
        return rc;
    if (!rc && o->tb)
        rc = nkv__tb_finish(o->tb);
    if (!rc)
        rc = db->env->sync(db->env->ctx, o->file);
    if (o->file) {
        int rc2 = db->env->close(db->env->ctx, o->file);
        if (!rc)
            rc = rc2;
    }
    if (!rc) {
        o->f->size = nkv__tb_size(o->tb);
        o->f->entries = nkv__tb_entries(o->tb);
        if (o->f->entries > 0) {
            nkv__edit_add(e, level, o->f);
            *bytes += o->f->size;
        } else {
            db->env->unlink(db->env->ctx, o->path);
        }
    } else {
        db->env->unlink(db->env->ctx, o->path);
    }
    nkv__tb_free(o->tb);
    nkv__fmeta_unref(o->f);
    free(o->path);
    memset(o, 0, sizeof *o);
    return rc;
}

static bool shutting_down(nkv_db *db)
{
    pthread_mutex_lock(&db->mu);
    bool v = db->shutting_down;
    pthread_mutex_unlock(&db->mu);
    return v;
}

int nkv__write_tables(nkv_db *db, nkv__it *in, uint64_t smallest_snap, nkv__base_fn is_base,
                      void *base_arg, uint64_t max_size, int level, nkv_edit *e,
                      uint64_t *bytes_out)
{
    out_file o;
    memset(&o, 0, sizeof o);
    nb_buf cur = NB_BUF_INIT;
    bool has_cur = false;
    uint64_t last_seq_for_key = UINT64_MAX;
    unsigned checked = 0;
    int rc = 0;
    *bytes_out = 0;
    for (IT_FIRST(in); IT_VALID(in); IT_NEXT(in)) {
        nb_slice k = IT_KEY(in);
        nb_slice uk = nkv__ukey(k);
        uint64_t tr = nkv__trailer(k);
        uint64_t seq = tr >> 8;
        bool new_key = !has_cur || nkv__ucmp(uk, nb_buf_slice(&cur)) != 0;
        if (new_key) {
            nb_buf_reset(&cur);
            NB_ASSERT(nb_buf_append(&cur, uk.ptr, uk.len) == 0);
            has_cur = true;
            last_seq_for_key = UINT64_MAX;
            /* Split outputs only between user keys, so no user key spans
             * two files of one level. */
            if (o.f && nkv__tb_size(o.tb) >= max_size) {
                rc = out_close(db, &o, 0, level, e, bytes_out);
                if (rc)
                    break;
            }
        }
        bool drop = false;
        if (last_seq_for_key <= smallest_snap)
            drop = true;
        else if ((tr & 0xff) == NKV_TYPE_DELETE && seq <= smallest_snap && is_base &&
                 is_base(base_arg, uk))
            drop = true;
        last_seq_for_key = seq;
        if (drop)
            continue;
        if (!o.f) {
            rc = out_open(db, &o);
            if (rc)
                break;
            NB_ASSERT(nb_buf_append(&o.f->smallest, k.ptr, k.len) == 0);
        }
        rc = nkv__tb_add(o.tb, k, IT_VAL(in));
        if (rc)
            break;
        nb_buf_reset(&o.f->largest);
        NB_ASSERT(nb_buf_append(&o.f->largest, k.ptr, k.len) == 0);
        if (seq < o.f->smallest_seq)
            o.f->smallest_seq = seq;
        if (seq > o.f->largest_seq)
            o.f->largest_seq = seq;
        if (level > 0 && (++checked & 1023) == 0 && shutting_down(db)) {
            rc = NB_ECLOSED;
            break;
        }
    }
    if (!rc)
        rc = IT_STATUS(in);
    rc = out_close(db, &o, rc, level, e, bytes_out);
    nb_buf_free(&cur);
    if (!rc && e->nadded)
        rc = db->env->sync_dir(db->env->ctx, db->dir);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Obsolete files
 * ------------------------------------------------------------------------- */

void nkv__delete_obsolete(nkv_db *db)
{
    size_t n;
    uint64_t *nums = nkv__vset_take_obsolete(&db->vs, &n);
    if (!n) {
        free(nums);
        return;
    }
    pthread_mutex_lock(&db->mu);
    nkv_version *v = db->vs.current;
    nkv__version_ref(v);
    pthread_mutex_unlock(&db->mu);
    for (size_t i = 0; i < n; i++) {
        if (nkv__version_has_file(v, nums[i]))
            continue;
        nkv__tcache_evict(db->tc, nums[i]);
        char *p = nkv__path(db->dir, nums[i], "sst");
        int rc = db->env->unlink(db->env->ctx, p);
        if (rc && rc != -ENOENT)
            NB_WARN("nkv: cannot delete %s: %s", p, nb_strerror(rc));
        free(p);
    }
    nkv__version_unref(v);
    free(nums);
}

/* Parses "NNNNNN.ext"; returns the number or 0. */
uint64_t nkv__parse_num(const char *name, const char *ext)
{
    char *end;
    if (name[0] < '0' || name[0] > '9')
        return 0;
    unsigned long long n = strtoull(name, &end, 10);
    if (*end != '.' || strcmp(end + 1, ext) != 0)
        return 0;
    return n;
}

/* At open, before any background work: remove every file that the
 * current state does not need. */
static void delete_unneeded_files(nkv_db *db)
{
    char **names;
    size_t n;
    if (db->env->list_dir(db->env->ctx, db->dir, &names, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *nm = names[i];
        bool del = false;
        uint64_t num;
        if ((num = nkv__parse_num(nm, "sst")) != 0)
            del = !nkv__version_has_file(db->vs.current, num);
        else if ((num = nkv__parse_num(nm, "log")) != 0)
            del = num < db->vs.log_number;
        else if (!strncmp(nm, "MANIFEST-", 9))
            del = strtoull(nm + 9, NULL, 10) != db->vs.manifest_num;
        else if (!strcmp(nm, "CURRENT.tmp"))
            del = true;
        if (del) {
            char *p = nb_xasprintf("%s/%s", db->dir, nm);
            db->env->unlink(db->env->ctx, p);
            free(p);
        }
        free(names[i]);
    }
    free(names);
}

/* ---------------------------------------------------------------------------
 * Flush
 * ------------------------------------------------------------------------- */

static bool never_base(void *arg, nb_slice uk)
{
    (void)arg;
    (void)uk;
    return false;
}

/* Writes m as L0 table(s) into e. mu not held. */
int nkv__write_l0(nkv_db *db, nkv_mem *m, uint64_t smallest_snap, nkv_edit *e)
{
    nkv__it *it = nkv__mem_iter(m);
    uint64_t bytes = 0;
    int rc = nkv__write_tables(db, it, smallest_snap, never_base, NULL, UINT64_MAX, 0, e, &bytes);
    IT_FREE(it);
    atomic_fetch_add(&db->st.flush_bytes, bytes);
    atomic_fetch_add(&db->st.flushes, 1);
    return rc;
}

static void close_flushed_wals(nkv_db *db);

static void *flush_thread(void *arg)
{
    nkv_db *db = arg;
    pthread_mutex_lock(&db->mu);
    while (!db->shutting_down) {
        if (db->nimm == 0) {
            pthread_cond_wait(&db->bg_cv, &db->mu);
            continue;
        }
        nkv_mem *m = db->imm[0];
        uint64_t snap = nkv__smallest_snapshot(db);
        pthread_mutex_unlock(&db->mu);
        nkv_edit e;
        nkv__edit_init(&e);
        int rc = nkv__write_l0(db, m, snap, &e);
        pthread_mutex_lock(&db->mu);
        if (!rc) {
            e.has_log = true;
            e.log_number = db->nimm > 1 ? db->imm[1]->log_number : db->mem->log_number;
            rc = nkv__vset_apply(&db->vs, &e);
        }
        nkv__edit_free(&e);
        if (rc) {
            NB_ERROR("nkv: flush of %s failed: %s", db->dir, nb_strerror(rc));
            db->bg_error = rc;
            pthread_cond_broadcast(&db->done_cv);
            pthread_mutex_unlock(&db->mu);
            nb_sleep_ns(200 * NB_NS_PER_MS);
            pthread_mutex_lock(&db->mu);
            continue;
        }
        uint64_t old_log = m->log_number;
        memmove(db->imm, db->imm + 1, (size_t)(db->nimm - 1) * sizeof db->imm[0]);
        db->nimm--;
        nkv__sv_install(db);
        db->bg_error = 0;
        db->flush_done++;
        pthread_cond_broadcast(&db->done_cv);
        pthread_cond_broadcast(&db->bg_cv); /* compaction may be due */
        bool log_done = old_log < db->vs.log_number;
        close_flushed_wals(db);
        pthread_mutex_unlock(&db->mu);
        nkv__mem_unref(m);
        if (log_done) {
            char *p = nkv__path(db->dir, old_log, "log");
            db->env->unlink(db->env->ctx, p);
            free(p);
        }
        nkv__delete_obsolete(db);
        pthread_mutex_lock(&db->mu);
    }
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Write path
 * ------------------------------------------------------------------------- */

/* mu held. */
static void raise_synced(nkv_db *db, uint64_t seq)
{
    if (atomic_load(&db->synced_seq) < seq)
        atomic_store(&db->synced_seq, seq);
}

/* mu held. fsyncs the logs of immutable memtables, oldest first, before
 * a newer log is fsynced: a synced write must not survive a power loss
 * that drops older acknowledged writes. */
static int sync_old_wals(nkv_db *db)
{
    while (db->nold_wals > 0) {
        int rc = db->env->sync(db->env->ctx, db->old_wals[0].f);
        if (rc)
            return rc;
        db->env->close(db->env->ctx, db->old_wals[0].f);
        db->nold_wals--;
        memmove(db->old_wals, db->old_wals + 1, (size_t)db->nold_wals * sizeof db->old_wals[0]);
    }
    return 0;
}

/* mu held. Closes, unsynced, the logs that no memtable needs any more. */
static void close_flushed_wals(nkv_db *db)
{
    int keep = 0;
    for (int i = 0; i < db->nold_wals; i++) {
        if (db->old_wals[i].num < db->vs.log_number)
            db->env->close(db->env->ctx, db->old_wals[i].f);
        else
            db->old_wals[keep++] = db->old_wals[i];
    }
    db->nold_wals = keep;
}

static int new_wal(nkv_db *db)
{
    uint64_t num = db->vs.next_file++;
    char *p = nkv__path(db->dir, num, "log");
    nkv_file *f;
    int rc = db->env->open_write(db->env->ctx, p, &f);
    free(p);
    if (rc)
        return rc;
    /* Make the new log's directory entry durable before writes rely on it. */
    rc = db->env->sync_dir(db->env->ctx, db->dir);
    if (rc) {
        db->env->close(db->env->ctx, f);
        return rc;
    }
    if (db->wal_open) {
        /* An nkv_sync_wal is syncing this log outside the queue. */
        while (db->syncing)
            pthread_cond_wait(&db->sync_cv, &db->mu);
        /* The old log is fsynced only when a newer one is (or never, if
         * its memtable is flushed first): an fsync of the full log here
         * held every writer for milliseconds, and a log deleted after
         * its flush need not be written at all. */
        if (!db->wal_broken && db->nold_wals == NKV_MAX_IMM + 1)
            rc = sync_old_wals(db); /* cannot happen: one log per immutable */
        if (rc) {
            db->env->close(db->env->ctx, f);
            return rc;
        }
        if (!db->wal_broken) {
            db->old_wals[db->nold_wals].f = db->wal.f;
            db->old_wals[db->nold_wals++].num = db->wal_num;
            db->wal.f = NULL;
        }
        nkv__wal_close(&db->wal);
    }
    nkv__wal_writer_init(&db->wal, db->env, f, 0);
    db->wal_num = num;
    db->wal_open = true;
    db->wal_broken = false;
    return 0;
}

/* Called by the write leader with mu held. */
static int make_room(nkv_db *db, bool force)
{
    bool allow_delay = !force;
    for (;;) {
        int l0 = db->vs.current->nfiles[0];
        if (allow_delay && l0 >= db->o.l0_slowdown_trigger && !db->bg_error) {
            pthread_mutex_unlock(&db->mu);
            uint64_t t0 = nb_mono_ns();
            nb_sleep_ns(NB_NS_PER_MS);
            atomic_fetch_add(&db->st.stall_us, (nb_mono_ns() - t0) / 1000);
            atomic_fetch_add(&db->st.slowdowns, 1);
            pthread_mutex_lock(&db->mu);
            allow_delay = false;
            continue;
        }
        bool full = nkv__mem_usage(db->mem) > db->o.write_buffer_size;
        bool empty = atomic_load(&db->mem->entries) == 0;
        if (!db->wal_broken && ((!force && !full) || (force && empty)))
            return 0;
        if (db->nimm >= db->o.max_write_buffers - 1 || db->nimm >= NKV_MAX_IMM ||
            l0 >= db->o.l0_stop_trigger) {
            if (db->bg_error)
                return db->bg_error;
            if (db->shutting_down)
                return NB_ECLOSED;
            uint64_t t0 = nb_mono_ns();
            pthread_cond_wait(&db->done_cv, &db->mu);
            atomic_fetch_add(&db->st.stall_us, (nb_mono_ns() - t0) / 1000);
            continue;
        }
        if (empty && db->wal_broken) {
            /* Nothing to flush: just start a fresh log for this memtable. */
            uint64_t num = db->vs.next_file;
            int rc = new_wal(db);
            if (rc)
                return rc;
            db->mem->log_number = num;
            return 0;
        }
        uint64_t num = db->vs.next_file;
        int rc = new_wal(db);
        if (rc)
            return rc;
        db->imm[db->nimm++] = db->mem;
        db->mem = mem_new(db);
        db->mem->log_number = num;
        nkv__sv_install(db);
        force = false;
        pthread_cond_broadcast(&db->bg_cv);
    }
}

/* Waiting for the writer ahead: on two idle cores the leader's append and
 * insert take a few microseconds, less than a futex sleep and wake-up
 * costs in CPU and far less than its latency, so a queued writer first
 * spins (as RocksDB's adaptive yield does), then yields while yields come
 * back fast (nobody else wants the CPU), and only then sleeps on its
 * condition variable. */
#define SPIN_NS       (4 * NB_NS_PER_US)
#define YIELD_NS      (50 * NB_NS_PER_US)
#define SLOW_YIELD_NS (3 * NB_NS_PER_US)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Called with mu held by a writer that is not at the head of the queue.
 * Returns NKV_W_DONE (a leader wrote our batch; mu released, w->rc set)
 * or NKV_W_LEAD (we are the head now; mu held). */
/* Spins, then yields, for w's turn (mu not held); returns its state. */
static int spin_for_turn(nkv_writer *w)
{
    int st = NKV_W_WAIT;
    uint64_t t0 = nb_mono_ns(), now = t0;
    for (unsigned i = 1; now - t0 < SPIN_NS; i++) {
        if ((st = atomic_load_explicit(&w->state, memory_order_acquire)) != NKV_W_WAIT)
            return st;
        cpu_relax();
        if ((i & 63) == 0)
            now = nb_mono_ns();
    }
    for (int slow = 0; st == NKV_W_WAIT && slow < 3 && now - t0 < YIELD_NS;) {
        sched_yield();
        uint64_t t = nb_mono_ns();
        slow += t - now > SLOW_YIELD_NS;
        now = t;
        st = atomic_load_explicit(&w->state, memory_order_acquire);
    }
    return st;
}

static int await_turn(nkv_db *db, nkv_writer *w)
{
    int st;
    /* Behind an fsync (a millisecond or more) spinning only burns CPU. */
    if (!db->leader_syncing) {
        pthread_mutex_unlock(&db->mu);
        if ((st = spin_for_turn(w)) == NKV_W_DONE)
            return st;
        pthread_mutex_lock(&db->mu);
    }
    /* The leader changes state only under mu, so none is missed here. */
    while ((st = atomic_load_explicit(&w->state, memory_order_acquire)) == NKV_W_WAIT) {
        w->sleeping = true;
        pthread_cond_wait(&w->cv, &db->mu);
    }
    if (st == NKV_W_DONE)
        pthread_mutex_unlock(&db->mu);
    return st;
}

/* mu held. A spinning writer may return as soon as it sees DONE, so w is
 * not touched after the store unless it sleeps (then it waits for mu). */
static void wake_writer(nkv_writer *w, int st)
{
    bool sleeping = w->sleeping;
    atomic_store_explicit(&w->state, st, memory_order_release);
    if (sleeping)
        pthread_cond_signal(&w->cv);
}

/* Synced groups and the writers that just left one. Two threads each
 * writing synced batches in a loop both get an fsync of their own most of
 * the time (LevelDB too: ~0.9 fdatasync per write): the writer released
 * by a group comes back a few microseconds after the next leader, queued
 * behind it, has started its own fsync alone. So a leader of a synced
 * group that expects company waits up to GATHER_NS for it before the
 * append: it expects as many writers as the last synced group held, and
 * at least two when it queued behind a leader's fsync (that leader is
 * about to come back). A wait that times out turns waiting off for the
 * next GATHER_SKIP synced groups, so a lone syncing writer, or writers
 * with more think time than GATHER_NS, pay it rarely. An fsync here takes
 * 0.3-1 ms; the returning writer needs tens of microseconds. */
#define GATHER_NS   (100 * NB_NS_PER_US)
#define GATHER_SKIP 16

static int gather_expect(nkv_db *db, const nkv_writer *w)
{
    if (db->gather_skip > 0) {
        db->gather_skip--;
        return 1;
    }
    int expect = db->last_sync_group;
    if (w->behind_sync && expect < 2)
        expect = 2;
    return expect;
}

/* mu held; waits until a writer queues after last or the deadline (an
 * nb_mono_ns time: gather_cv runs on CLOCK_MONOTONIC, so it converts as
 * it is; a deadline already past times out at once). */
static bool gather_wait(nkv_db *db, const nkv_writer *last, uint64_t deadline)
{
    struct timespec ts = nb_mono_timespec(deadline);
    db->gathering = true;
    while (!last->next) {
        if (pthread_cond_timedwait(&db->gather_cv, &db->mu, &ts) == ETIMEDOUT)
            break;
    }
    db->gathering = false;
    return last->next != NULL;
}

/* scratch: batch is ours (put/delete) and may carry the sequence. */
static int db_write(nkv_db *db, bool sync, const nkv_batch *batch, bool scratch)
{
    nkv_writer w = {.batch = batch, .sync = sync};
    atomic_init(&w.state, NKV_W_WAIT);
    pthread_cond_init(&w.cv, NULL);
    pthread_mutex_lock(&db->mu);
    if (db->wq_tail)
        db->wq_tail->next = &w;
    else
        db->wq_head = &w;
    db->wq_tail = &w;
    if (db->wq_head != &w)
        w.behind_sync = db->leader_syncing;
    if (db->gathering)
        pthread_cond_signal(&db->gather_cv);
    if (db->wq_head != &w && await_turn(db, &w) == NKV_W_DONE) {
        pthread_cond_destroy(&w.cv);
        return w.rc;
    }
    int rc = make_room(db, batch == NULL);
    nkv_writer *last = &w;
    const nkv_batch *gb = batch;
    bool gsync = sync;
    size_t size = 0;
    if (!rc && batch) {
        size = nkv_batch_size(batch);
        size_t max = size <= (128u << 10) ? size + (128u << 10) : GROUP_MAX;
        int members = 1, expect = sync ? gather_expect(db, &w) : 1;
        uint64_t deadline = 0;
        for (bool full = false; !full;) {
            for (nkv_writer *f = last->next; f; f = f->next) {
                size_t fs = f->batch ? nkv_batch_size(f->batch) : 0;
                if (!f->batch || (f->sync && !sync) || size + fs > max) {
                    full = true;
                    break;
                }
                if (gb == batch) {
                    nkv_batch_clear(db->group);
                    nkv__batch_append(db->group, batch);
                    gb = db->group;
                }
                nkv__batch_append(db->group, f->batch);
                size += fs;
                last = f;
                members++;
            }
            if (full || members >= expect)
                break;
            /* Arrivals sleep instead of spinning while we wait. */
            db->leader_syncing = true;
            if (!deadline)
                deadline = nb_mono_ns() + GATHER_NS;
            if (!gather_wait(db, last, deadline)) {
                db->gather_skip = GATHER_SKIP;
                break;
            }
        }
        db->leader_syncing = false;
        if (sync)
            db->last_sync_group = members;
        if (gb == batch && !scratch) {
            /* Never stamp the sequence into the caller's batch: it is
             * const and may be shared by threads. */
            nkv_batch_clear(db->group);
            nkv__batch_append(db->group, batch);
            gb = db->group;
        }
        /* Older logs first (see sync_old_wals); if that fails, the group
         * fails before anything is appended. */
        if (gsync)
            rc = sync_old_wals(db);
    }
    if (!rc && batch) {
        uint64_t seq = atomic_load(&db->vs.last_seq) + 1;
        uint32_t count = nkv_batch_count(gb);
        nkv__batch_set_seq((nkv_batch *)gb, seq);
        nkv_mem *mem = db->mem;
        db->leader_syncing = gsync;
        pthread_mutex_unlock(&db->mu);
        rc = nkv__wal_add(&db->wal, gb->rep.data, gb->rep.len);
        if (!rc && gsync)
            rc = nkv__wal_sync(&db->wal);
        bool synced = !rc && gsync;
        if (!rc)
            rc = nkv__batch_insert_mem(gb->rep.data, gb->rep.len, mem);
        pthread_mutex_lock(&db->mu);
        db->leader_syncing = false;
        if (synced)
            raise_synced(db, seq + count - 1);
        if (!rc) {
            atomic_store(&db->vs.last_seq, seq + count - 1);
            atomic_fetch_add(&db->st.user_bytes, size);
            atomic_fetch_add(&db->st.wal_bytes, gb->rep.len);
        } else {
            /* The record may still reach the log; never reuse its sequences. */
            NB_ERROR("nkv: WAL write in %s failed: %s", db->dir, nb_strerror(rc));
            atomic_store(&db->vs.last_seq, seq + count - 1);
            db->wal_broken = true;
        }
        if (db->group->rep.cap > 4 * GROUP_MAX) {
            nkv_batch_free(db->group);
            nkv_batch_new(&db->group);
        }
    }
    for (;;) {
        nkv_writer *h = db->wq_head;
        db->wq_head = h->next;
        if (!db->wq_head)
            db->wq_tail = NULL;
        if (h != &w) {
            h->rc = rc;
            wake_writer(h, NKV_W_DONE); /* h may be gone after this */
        }
        if (h == last)
            break;
    }
    if (db->wq_head)
        wake_writer(db->wq_head, NKV_W_LEAD);
    pthread_mutex_unlock(&db->mu);
    pthread_cond_destroy(&w.cv);
    return rc;
}

uint64_t nkv_last_sequence(nkv_db *db)
{
    return atomic_load(&db->vs.last_seq);
}

int nkv_sync_wal(nkv_db *db, uint64_t seq)
{
    if (!db)
        return NB_EUSAGE;
    if (atomic_load(&db->synced_seq) >= seq)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&db->mu);
    while (atomic_load(&db->synced_seq) < seq) {
        if (db->syncing) {
            /* Its fsync may cover us; if not, we sync next. */
            pthread_cond_wait(&db->sync_cv, &db->mu);
            continue;
        }
        if (db->wal_broken) {
            rc = -EIO; /* a failed append: what the log holds is unknown */
            break;
        }
        if (!db->wal_open)
            break;
        if ((rc = sync_old_wals(db)) != 0)
            break;
        /* Writes up to last_seq are appended (it is published after the
         * append): one fdatasync covers them all. Writers go on appending
         * meanwhile; new_wal waits for us before closing this log. */
        uint64_t cover = atomic_load(&db->vs.last_seq);
        db->syncing = true;
        pthread_mutex_unlock(&db->mu);
        rc = nkv__wal_sync(&db->wal);
        pthread_mutex_lock(&db->mu);
        db->syncing = false;
        if (rc == 0)
            raise_synced(db, cover);
        pthread_cond_broadcast(&db->sync_cv);
        if (rc != 0)
            break;
    }
    pthread_mutex_unlock(&db->mu);
    return rc;
}

static bool want_sync(const nkv_db *db, const nkv_write_options *wo)
{
    return wo ? wo->sync : db->o.sync;
}

int nkv_write(nkv_db *db, const nkv_write_options *wo, const nkv_batch *batch)
{
    if (!db || !batch)
        return NB_EUSAGE;
    if (nkv_batch_count(batch) == 0)
        return 0;
    return db_write(db, want_sync(db, wo), batch, false);
}

/* A single put or delete goes through a batch on the stack-like scratch. */
static int write_one(nkv_db *db, const nkv_write_options *wo, int type, const void *k, size_t kl,
                     const void *v, size_t vl)
{
    nkv_batch b;
    uint8_t stack[512];
    size_t need = NKV_BATCH_HEADER + 1 + 2 * NB_VARINT64_MAX + kl + vl;
    if (kl > UINT32_MAX || vl > UINT32_MAX)
        return NB_ETOOBIG;
    bool heap = need > sizeof stack;
    b.rep.data = heap ? nb_xmalloc(need) : stack;
    b.rep.cap = heap ? need : sizeof stack;
    b.rep.max = 0;
    uint8_t *p = b.rep.data;
    memset(p, 0, NKV_BATCH_HEADER);
    nb_put_u32le(p + 8, 1);
    p += NKV_BATCH_HEADER;
    *p++ = (uint8_t)type;
    p = nb_varint_encode(p, kl);
    if (kl)
        memcpy(p, k, kl);
    p += kl;
    if (type == NKV_TYPE_VALUE) {
        p = nb_varint_encode(p, vl);
        if (vl)
            memcpy(p, v, vl);
        p += vl;
    }
    b.rep.len = (size_t)(p - b.rep.data);
    int rc = db_write(db, want_sync(db, wo), &b, true);
    if (heap)
        free(b.rep.data);
    return rc;
}

int nkv_put(nkv_db *db, const nkv_write_options *wo, const void *key, size_t klen, const void *val,
            size_t vlen)
{
    return write_one(db, wo, NKV_TYPE_VALUE, key, klen, val, vlen);
}

int nkv_delete(nkv_db *db, const nkv_write_options *wo, const void *key, size_t klen)
{
    return write_one(db, wo, NKV_TYPE_DELETE, key, klen, NULL, 0);
}

/* ---------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------- */

static void sv_unref(nkv_sv *sv)
{
    if (atomic_fetch_sub_explicit(&sv->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (int i = 0; i < sv->nmems; i++)
        nkv__mem_unref(sv->mems[i]);
    nkv__version_unref(sv->v);
    free(sv);
}

void nkv__sv_install(nkv_db *db)
{
    nkv_sv *sv = nb_xmalloc(sizeof *sv);
    atomic_init(&sv->refs, 1);
    sv->nmems = 0;
    nkv__mem_ref(db->mem);
    sv->mems[sv->nmems++] = db->mem;
    for (int i = db->nimm - 1; i >= 0; i--) {
        nkv__mem_ref(db->imm[i]);
        sv->mems[sv->nmems++] = db->imm[i];
    }
    sv->v = db->vs.current;
    nkv__version_ref(sv->v);
    nkv_sv *old = db->sv;
    sv->gen = old ? old->gen + 1 : 1;
    db->sv = sv;
    atomic_store(&db->sv_gen, sv->gen);
    /* A slot in use keeps its sv: the reader finds its slot emptied when
     * it gives the sv back, and drops the reference itself. */
    for (int i = 0; i < NKV_SV_SLOTS; i++) {
        nkv_sv *x = atomic_exchange(&db->sv_slots[i].p, NULL);
        if (x && x != NKV_SV_INUSE)
            sv_unref(x);
    }
    if (old)
        sv_unref(old);
}

static nkv_sv *sv_ref_current(nkv_db *db)
{
    pthread_mutex_lock(&db->mu);
    nkv_sv *sv = db->sv;
    atomic_fetch_add_explicit(&sv->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&db->mu);
    return sv;
}

static unsigned thread_slot(void)
{
    static _Atomic unsigned next;
    static _Thread_local unsigned mine;
    if (!mine)
        mine = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) + 1;
    return mine % NKV_SV_SLOTS;
}

/* The current sv with a reference for the caller; *slotp is the slot to
 * give it back to (NULL: give it back with sv_unref). */
static nkv_sv *sv_acquire(nkv_db *db, nkv_sv_slot **slotp)
{
    nkv_sv_slot *s = &db->sv_slots[thread_slot()];
    nkv_sv *sv = atomic_exchange_explicit(&s->p, NKV_SV_INUSE, memory_order_acquire);
    if (sv == NKV_SV_INUSE) {
        *slotp = NULL; /* another thread of this slot is reading */
        return sv_ref_current(db);
    }
    *slotp = s;
    if (sv && sv->gen == atomic_load(&db->sv_gen))
        return sv;
    if (sv)
        sv_unref(sv);
    return sv_ref_current(db);
}

static void sv_release(nkv_db *db, nkv_sv *sv, nkv_sv_slot *s)
{
    if (s) {
        nkv_sv *inuse = NKV_SV_INUSE;
        if (sv->gen == atomic_load(&db->sv_gen)) {
            if (atomic_compare_exchange_strong_explicit(&s->p, &inuse, sv, memory_order_release,
                                                        memory_order_relaxed))
                return; /* the slot keeps the reference */
        } else {
            atomic_compare_exchange_strong(&s->p, &inuse, NULL);
        }
    }
    sv_unref(sv);
}

typedef struct pinned {
    nkv_sv *sv;
    nkv_sv_slot *slot;
    uint64_t seq;
} pinned;

/* The sequence is read after the sv is taken (as RocksDB does): a
 * compaction that finished in between may have dropped versions that an
 * older sequence would need, while the pinned sv's tables and memtables
 * never lose one. Writes up to the sequence that went to a memtable newer
 * than the sv's all follow the sv's last write, so what the read sees is
 * still a prefix of the writes, and every write that returned before the
 * read began is in it. */
static void pin(nkv_db *db, const nkv_read_options *ro, pinned *p)
{
    p->sv = sv_acquire(db, &p->slot);
    p->seq = ro && ro->snapshot ? ro->snapshot->seq : atomic_load(&db->vs.last_seq);
}

static void unpin(nkv_db *db, pinned *p)
{
    sv_release(db, p->sv, p->slot);
}

int nkv_get(nkv_db *db, const nkv_read_options *ro, const void *key, size_t klen, void **val,
            size_t *vlen)
{
    *val = NULL;
    *vlen = 0;
    pinned p;
    pin(db, ro, &p);
    nb_slice uk = nb_slice_of(key, klen);
    nb_buf v = NB_BUF_INIT;
    bool deleted = false;
    int rc = NB_ENOTFOUND;
    for (int i = 0; i < p.sv->nmems && rc == NB_ENOTFOUND; i++)
        rc = nkv__mem_get(p.sv->mems[i], uk, p.seq, &v, &deleted);
    if (rc == NB_ENOTFOUND) {
        /* The internal key on the stack when it fits (no malloc per get). */
        uint8_t short_ik[64];
        nb_buf ik = NB_BUF_INIT;
        nb_slice iks;
        if (klen + 8 <= sizeof short_ik) {
            iks = nb_slice_of(short_ik, nkv__ikey_put(short_ik, uk, p.seq, NKV_TYPE_VALUE));
        } else {
            nkv__ikey_build(&ik, uk, p.seq, NKV_TYPE_VALUE);
            iks = nb_buf_slice(&ik);
        }
        bool found = false;
        int type = 0;
        rc = nkv__version_get(p.sv->v, db->tc, iks, !ro || ro->fill_cache, &found, &type, &v);
        nb_buf_free(&ik);
        if (!rc)
            rc = found ? 0 : NB_ENOTFOUND;
        deleted = found && type == NKV_TYPE_DELETE;
    }
    unpin(db, &p);
    if (rc == 0 && deleted)
        rc = NB_ENOTFOUND;
    if (rc) {
        nb_buf_free(&v);
        return rc;
    }
    *vlen = v.len;
    *val = v.data ? nb_buf_take(&v, NULL) : nb_xmalloc(1);
    return 0;
}

static void iter_cleanup(void *arg)
{
    sv_unref(arg);
}

int nkv_iter_new(nkv_db *db, const nkv_read_options *ro, nkv_iter **out)
{
    pinned p;
    pin(db, ro, &p);
    nkv_version *v = p.sv->v;
    /* Every child fits (version_iters grows the arrays only when full), so
     * the arrays live on the stack unless L0 is unusually deep. */
    int nmems = p.sv->nmems, n = 0, cap = nmems + v->nfiles[0] + NKV_LEVELS - 1;
    nkv__it *its_stack[32], **its = its_stack;
    nkv__age ages_stack[32], *ages = ages_stack;
    if (cap > 32) {
        its = nb_xmalloc((size_t)cap * sizeof *its);
        ages = nb_xmalloc((size_t)cap * sizeof *ages);
    }
    for (int i = 0; i < nmems; i++) {
        /* Newest first, each memtable a tier: writes go to the active one
         * only, and every table is older than every memtable. */
        ages[n] = (nkv__age){i, UINT64_MAX};
        its[n++] = nkv__mem_iter_borrow(p.sv->mems[i]);
    }
    /* The iterator outlives the pin: one reference on the sv keeps its
     * memtables and version (one shared atomic per iterator, not one per
     * memtable and one for the version). */
    nkv_sv *sv = p.sv;
    atomic_fetch_add_explicit(&sv->refs, 1, memory_order_relaxed);
    nkv__version_iters(v, db->tc, !ro || ro->fill_cache, &its, &ages, nmems, &n, &cap);
    unpin(db, &p);
    nkv__it *m = nkv__merge_iter_aged(its, ages, n);
    if (its != its_stack) {
        free(its);
        free(ages);
    }
    *out = nkv__db_iter_new(m, p.seq, ro, iter_cleanup, sv);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Snapshots
 * ------------------------------------------------------------------------- */

int nkv_snapshot_new(nkv_db *db, nkv_snapshot **out)
{
    nkv_snapshot *s = nb_xmalloc(sizeof *s);
    pthread_mutex_lock(&db->mu);
    s->seq = atomic_load(&db->vs.last_seq);
    s->next = &db->snaps;
    s->prev = db->snaps.prev;
    s->prev->next = s;
    s->next->prev = s;
    pthread_mutex_unlock(&db->mu);
    *out = s;
    return 0;
}

void nkv_snapshot_free(nkv_db *db, nkv_snapshot *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&db->mu);
    s->prev->next = s->next;
    s->next->prev = s->prev;
    pthread_mutex_unlock(&db->mu);
    free(s);
}

uint64_t nkv_snapshot_sequence(const nkv_snapshot *s)
{
    return s->seq;
}

uint64_t nkv__smallest_snapshot(nkv_db *db)
{
    if (db->snaps.next != &db->snaps)
        return db->snaps.next->seq;
    return atomic_load(&db->vs.last_seq);
}

/* ---------------------------------------------------------------------------
 * Recovery
 * ------------------------------------------------------------------------- */

typedef struct replay {
    nkv_db *db;
    nkv_mem *mem;
    nkv_edit *e;
    uint64_t max_seq;
} replay;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int replay_log(nkv_db *db, uint64_t num, replay *r)
{
    char *path = nkv__path(db->dir, num, "log");
    uint8_t *data;
    size_t len;
    int rc = nkv__env_read_all(db->env, path, &data, &len);
    if (rc) {
        free(path);
        return rc;
    }
    nkv_wal_reader rd;
    nkv__wal_reader_init(&rd, data, len, path);
    nb_slice rec;
    int got;
    while ((got = nkv__wal_read(&rd, &rec)) != 0) {
        if (got < 0) {
            if (db->o.paranoid_checks) {
                rc = got;
                break;
            }
            NB_WARN("nkv: skipping damaged records in %s", path);
            continue;
        }
        int vrc = nkv__batch_iterate(rec.ptr, rec.len, NULL, NULL);
        if (vrc) {
            NB_ERROR("nkv: bad batch in %s at offset %llu", path,
                     (unsigned long long)rd.last_rec_off);
            if (db->o.paranoid_checks) {
                rc = vrc;
                break;
            }
            continue;
        }
        uint64_t seq = nb_get_u64le(rec.ptr);
        uint32_t count = nb_get_u32le(rec.ptr + 8);
        if (!r->mem) {
            r->mem = mem_new(db);
        }
        NB_ASSERT(nkv__batch_insert_mem(rec.ptr, rec.len, r->mem) == 0);
        if (count && seq + count - 1 > r->max_seq)
            r->max_seq = seq + count - 1;
        if (nkv__mem_usage(r->mem) > db->o.write_buffer_size) {
            atomic_store(&db->vs.last_seq, r->max_seq > atomic_load(&db->vs.last_seq)
                                               ? r->max_seq
                                               : atomic_load(&db->vs.last_seq));
            rc = nkv__write_l0(db, r->mem, NKV_MAX_SEQ, r->e);
            nkv__mem_unref(r->mem);
            r->mem = NULL;
            if (rc)
                break;
        }
    }
    nkv__wal_reader_free(&rd);
    free(data);
    free(path);
    return rc;
}

static int recover(nkv_db *db)
{
    int rc = nkv__vset_recover(&db->vs);
    if (rc == -ENOENT) {
        if (!db->o.create_if_missing)
            return -ENOENT;
        NB_INFO("nkv: creating database %s", db->dir);
        rc = 0;
    } else if (rc) {
        return rc;
    } else if (db->o.error_if_exists) {
        return NB_EEXIST;
    }
    /* Replay every WAL at or after the MANIFEST's log number, oldest first. */
    char **names;
    size_t n;
    rc = db->env->list_dir(db->env->ctx, db->dir, &names, &n);
    if (rc)
        return rc;
    uint64_t *logs = nb_xmalloc((n + 1) * sizeof *logs);
    size_t nlogs = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t num = nkv__parse_num(names[i], "log");
        if (num && num >= db->vs.log_number)
            logs[nlogs++] = num;
        if (num >= db->vs.next_file)
            db->vs.next_file = num + 1;
        uint64_t snum = nkv__parse_num(names[i], "sst");
        if (snum >= db->vs.next_file)
            db->vs.next_file = snum + 1;
        free(names[i]);
    }
    free(names);
    qsort(logs, nlogs, sizeof *logs, cmp_u64);
    nkv_edit e;
    nkv__edit_init(&e);
    replay r = {.db = db, .e = &e, .max_seq = atomic_load(&db->vs.last_seq)};
    for (size_t i = 0; i < nlogs && !rc; i++)
        rc = replay_log(db, logs[i], &r);
    free(logs);
    if (!rc && r.max_seq > atomic_load(&db->vs.last_seq))
        atomic_store(&db->vs.last_seq, r.max_seq);
    if (!rc && r.mem)
        rc = nkv__write_l0(db, r.mem, NKV_MAX_SEQ, &e);
    if (r.mem)
        nkv__mem_unref(r.mem);
    uint64_t log_num = 0;
    if (!rc) {
        log_num = db->vs.next_file;
        rc = new_wal(db);
    }
    if (!rc) {
        db->mem->log_number = log_num;
        e.has_log = true;
        e.log_number = log_num;
        db->vs.manifest_open = false; /* always start a fresh MANIFEST */
        rc = nkv__vset_apply(&db->vs, &e);
    }
    nkv__edit_free(&e);
    if (rc)
        return rc;
    delete_unneeded_files(db);
    size_t nobs;
    free(nkv__vset_take_obsolete(&db->vs, &nobs));
    return 0;
}

/* ---------------------------------------------------------------------------
 * Open / close
 * ------------------------------------------------------------------------- */

static void sanitize(nkv_options *o)
{
    if (o->write_buffer_size < (64u << 10))
        o->write_buffer_size = 64u << 10;
    if (o->block_size < 256)
        o->block_size = 256;
    if (o->max_open_files < 20)
        o->max_open_files = 20;
    if (o->l0_compaction_trigger < 1)
        o->l0_compaction_trigger = 1;
    if (o->l0_slowdown_trigger < o->l0_compaction_trigger)
        o->l0_slowdown_trigger = o->l0_compaction_trigger;
    if (o->l0_stop_trigger < o->l0_slowdown_trigger)
        o->l0_stop_trigger = o->l0_slowdown_trigger;
    if (o->max_bytes_for_level_base < (1u << 20))
        o->max_bytes_for_level_base = 1u << 20;
    if (o->target_file_size < (64u << 10))
        o->target_file_size = 64u << 10;
    if (o->max_write_buffers < 2)
        o->max_write_buffers = 2;
    if (o->max_write_buffers > NKV_MAX_IMM)
        o->max_write_buffers = NKV_MAX_IMM;
    if (o->background_threads < 1)
        o->background_threads = 1;
    if (o->background_threads > 8)
        o->background_threads = 8;
    if ((unsigned)o->compression > NKV_COMPRESSION_ZSTD)
        o->compression = NKV_COMPRESSION_NONE;
}

static void db_free(nkv_db *db)
{
    if (db->nold_wals && sync_old_wals(db) != 0) {
        for (int i = 0; i < db->nold_wals; i++)
            db->env->close(db->env->ctx, db->old_wals[i].f);
        db->nold_wals = 0;
    } else if (db->wal_open) {
        (void)nkv__wal_sync(&db->wal);
    }
    if (db->wal_open)
        nkv__wal_close(&db->wal);
    for (int i = 0; db->sv_slots && i < NKV_SV_SLOTS; i++) {
        nkv_sv *x = atomic_exchange(&db->sv_slots[i].p, NULL);
        if (x && x != NKV_SV_INUSE)
            sv_unref(x);
    }
    free(db->sv_slots);
    if (db->sv)
        sv_unref(db->sv);
    nkv__mem_unref(db->mem);
    for (int i = 0; i < db->nimm; i++)
        nkv__mem_unref(db->imm[i]);
    nkv__vset_free(&db->vs);
    nkv__tcache_free(db->tc);
    nkv__cache_free(db->block_cache);
    nkv_batch_free(db->group);
    if (db->locked)
        db->env->unlock(db->env->ctx, db->lock_token);
    pthread_mutex_destroy(&db->mu);
    pthread_cond_destroy(&db->bg_cv);
    pthread_cond_destroy(&db->done_cv);
    pthread_cond_destroy(&db->sync_cv);
    pthread_cond_destroy(&db->gather_cv);
    free(db->compact_thr);
    free(db->dir);
    free(db);
}

int nkv_open(const nkv_options *opts, const char *dir, nkv_db **out)
{
    *out = NULL;
    if (!dir || !*dir)
        return NB_EUSAGE;
    nkv_db *db = nb_xcalloc(1, sizeof *db);
    if (opts)
        db->o = *opts;
    else
        nkv_options_init(&db->o);
    sanitize(&db->o);
    db->env = db->o.env ? db->o.env : nkv_env_default();
    db->dir = nb_xstrdup(dir);
    pthread_mutex_init(&db->mu, NULL);
    pthread_cond_init(&db->bg_cv, NULL);
    pthread_cond_init(&db->done_cv, NULL);
    pthread_cond_init(&db->sync_cv, NULL);
    nb_cond_init_mono(&db->gather_cv);
    db->snaps.next = db->snaps.prev = &db->snaps;
    db->sv_slots = nb_xaligned_alloc(64, NKV_SV_SLOTS * sizeof *db->sv_slots);
    for (int i = 0; i < NKV_SV_SLOTS; i++)
        atomic_init(&db->sv_slots[i].p, NULL);
    db->mem = mem_new(db);
    nkv_batch_new(&db->group);
    nkv__vset_init(&db->vs, db->env, dir);
    if (db->o.block_cache_bytes)
        db->block_cache = nkv__cache_new(db->o.block_cache_bytes);
    db->tc = nkv__tcache_new(db->env, dir, db->o.max_open_files, db->block_cache);

    int rc = 0;
    if (db->o.create_if_missing)
        rc = db->env->mkdir(db->env->ctx, dir);
    if (!rc) {
        char *lock = nb_xasprintf("%s/LOCK", dir);
        rc = db->env->lock(db->env->ctx, lock, &db->lock_token);
        free(lock);
        if (rc == -ENOENT && !db->o.create_if_missing)
            rc = -ENOENT;
        db->locked = rc == 0;
    }
    if (!rc)
        rc = recover(db);
    if (rc) {
        db_free(db);
        return rc;
    }
    nkv__sv_install(db); /* before any thread or reader can see db */
    db->ncompact_thr = db->o.background_threads;
    db->compact_thr = nb_xcalloc((size_t)db->ncompact_thr, sizeof(pthread_t));
    if (pthread_create(&db->flush_thr, NULL, flush_thread, db) != 0) {
        db_free(db);
        return -EAGAIN;
    }
    for (int i = 0; i < db->ncompact_thr; i++)
        NB_ASSERT(pthread_create(&db->compact_thr[i], NULL, nkv__compact_thread, db) == 0);
    db->threads_started = true;
    pthread_mutex_lock(&db->mu);
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mu);
    *out = db;
    return 0;
}

int nkv_close(nkv_db *db)
{
    if (!db)
        return 0;
    pthread_mutex_lock(&db->mu);
    db->shutting_down = true;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_cond_broadcast(&db->done_cv);
    pthread_mutex_unlock(&db->mu);
    if (db->threads_started) {
        pthread_join(db->flush_thr, NULL);
        for (int i = 0; i < db->ncompact_thr; i++)
            pthread_join(db->compact_thr[i], NULL);
    }
    int rc = db->bg_error == NB_ECLOSED ? 0 : db->bg_error;
    nkv__delete_obsolete(db);
    db_free(db);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Maintenance
 * ------------------------------------------------------------------------- */

int nkv_flush(nkv_db *db, bool wait)
{
    int rc = db_write(db, false, NULL, false);
    if (rc || !wait)
        return rc;
    pthread_mutex_lock(&db->mu);
    while (db->nimm > 0 && !db->bg_error && !db->shutting_down)
        pthread_cond_wait(&db->done_cv, &db->mu);
    rc = db->nimm > 0 ? (db->bg_error ? db->bg_error : NB_ECLOSED) : 0;
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int nkv_compact_range(nkv_db *db, const void *begin, size_t blen, const void *end, size_t elen)
{
    int rc = nkv_flush(db, true);
    if (rc)
        return rc;
    nb_slice lo = nb_slice_of(begin, blen), hi = nb_slice_of(end, elen);
    return nkv__compact_range(db, begin ? &lo : NULL, end ? &hi : NULL);
}

int nkv_destroy(const nkv_options *opts, const char *dir)
{
    const nkv_env *env = opts && opts->env ? opts->env : nkv_env_default();
    char *lock = nb_xasprintf("%s/LOCK", dir);
    int token;
    int rc = env->lock(env->ctx, lock, &token);
    if (rc == -ENOENT) {
        free(lock);
        return 0;
    }
    if (rc) {
        free(lock);
        return rc;
    }
    char **names;
    size_t n;
    rc = env->list_dir(env->ctx, dir, &names, &n);
    if (!rc) {
        for (size_t i = 0; i < n; i++) {
            const char *nm = names[i];
            if (nkv__parse_num(nm, "sst") || nkv__parse_num(nm, "log") ||
                !strncmp(nm, "MANIFEST-", 9) || !strcmp(nm, "CURRENT") ||
                !strcmp(nm, "CURRENT.tmp")) {
                char *p = nb_xasprintf("%s/%s", dir, nm);
                env->unlink(env->ctx, p);
                free(p);
            }
            free(names[i]);
        }
        free(names);
    }
    env->unlink(env->ctx, lock);
    env->unlock(env->ctx, token);
    free(lock);
    rmdir(dir); /* only succeeds when empty */
    return rc;
}

/* ---------------------------------------------------------------------------
 * Properties
 * ------------------------------------------------------------------------- */

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

int nkv_property(nkv_db *db, const char *name, char **out)
{
    *out = NULL;
    nb_buf b = NB_BUF_INIT;
    pthread_mutex_lock(&db->mu);
    nkv_version *v = db->vs.current;
    nkv__version_ref(v);
    size_t mem_bytes = nkv__mem_usage(db->mem);
    for (int i = 0; i < db->nimm; i++)
        mem_bytes += nkv__mem_usage(db->imm[i]);
    uint64_t pending = nkv__pending_compaction_bytes(db);
    uint64_t last_seq = atomic_load(&db->vs.last_seq);
    pthread_mutex_unlock(&db->mu);
    uint64_t total = 0;
    for (int l = 0; l < NKV_LEVELS; l++)
        total += nkv__level_bytes(v, l);
    uint64_t hits = 0, misses = 0;
    if (db->block_cache)
        nkv__cache_stats(db->block_cache, &hits, &misses);
    uint64_t written = atomic_load(&db->st.wal_bytes) + atomic_load(&db->st.flush_bytes) +
                       atomic_load(&db->st.compact_write);
    uint64_t user = atomic_load(&db->st.user_bytes);
    /* Space amplification: live bytes over the bytes of the bottom level,
     * which holds (at most) one version of each key once compacted. */
    uint64_t bottom = 0;
    for (int l = NKV_LEVELS - 1; l >= 0; l--)
        if ((bottom = nkv__level_bytes(v, l)) != 0)
            break;
    int rc = 0;
    int lv;
    char c;
    if (!strcmp(name, "nkv.level-files") || !strcmp(name, "nkv.level-bytes")) {
        bool files = !strcmp(name, "nkv.level-files");
        for (int l = 0; l < NKV_LEVELS; l++)
            NB_ASSERT(nb_buf_appendf(&b, "%sL%d:%llu", l ? " " : "", l,
                                     files ? (unsigned long long)v->nfiles[l]
                                           : (unsigned long long)nkv__level_bytes(v, l)) == 0);
    } else if (sscanf(name, "nkv.num-files-at-level%d%c", &lv, &c) == 1 && lv >= 0 &&
               lv < NKV_LEVELS) {
        NB_ASSERT(nb_buf_appendf(&b, "%d", v->nfiles[lv]) == 0);
    } else if (!strcmp(name, "nkv.total-sst-bytes")) {
        NB_ASSERT(nb_buf_appendf(&b, "%llu", (unsigned long long)total) == 0);
    } else if (!strcmp(name, "nkv.cache-hit-rate")) {
        NB_ASSERT(nb_buf_appendf(&b, "%.4f", ratio(hits, hits + misses)) == 0);
    } else if (!strcmp(name, "nkv.cache-usage")) {
        NB_ASSERT(nb_buf_appendf(&b, "%zu",
                                 db->block_cache ? nkv__cache_usage(db->block_cache) : 0) == 0);
    } else if (!strcmp(name, "nkv.write-amp")) {
        NB_ASSERT(nb_buf_appendf(&b, "%.3f", ratio(written, user)) == 0);
    } else if (!strcmp(name, "nkv.space-amp")) {
        NB_ASSERT(nb_buf_appendf(&b, "%.3f", ratio(total, bottom)) == 0);
    } else if (!strcmp(name, "nkv.pending-compaction-bytes")) {
        NB_ASSERT(nb_buf_appendf(&b, "%llu", (unsigned long long)pending) == 0);
    } else if (!strcmp(name, "nkv.mem-bytes")) {
        NB_ASSERT(nb_buf_appendf(&b, "%zu", mem_bytes) == 0);
    } else if (!strcmp(name, "nkv.last-sequence")) {
        NB_ASSERT(nb_buf_appendf(&b, "%llu", (unsigned long long)last_seq) == 0);
    } else if (!strcmp(name, "nkv.stats")) {
        NB_ASSERT(nb_buf_appendf(&b, "level  files      bytes\n") == 0);
        for (int l = 0; l < NKV_LEVELS; l++)
            NB_ASSERT(nb_buf_appendf(&b, "L%d %9d %12llu\n", l, v->nfiles[l],
                                     (unsigned long long)nkv__level_bytes(v, l)) == 0);
        NB_ASSERT(
            nb_buf_appendf(
                &b,
                "total-sst-bytes %llu\nmem-bytes %zu\nlast-sequence %llu\n"
                "user-bytes %llu\nwal-bytes %llu\nflush-bytes %llu\ncompact-read %llu\n"
                "compact-write %llu\nwrite-amp %.3f\nspace-amp %.3f\n"
                "pending-compaction-bytes %llu\ncache-hit-rate %.4f\nflushes %llu\n"
                "compactions %llu\nintra-l0-compactions %llu\ntrivial-moves %llu\nslowdowns %llu\n"
                "stall-us %llu\n",
                (unsigned long long)total, mem_bytes, (unsigned long long)last_seq,
                (unsigned long long)user, (unsigned long long)atomic_load(&db->st.wal_bytes),
                (unsigned long long)atomic_load(&db->st.flush_bytes),
                (unsigned long long)atomic_load(&db->st.compact_read),
                (unsigned long long)atomic_load(&db->st.compact_write), ratio(written, user),
                ratio(total, bottom), (unsigned long long)pending, ratio(hits, hits + misses),
                (unsigned long long)atomic_load(&db->st.flushes),
                (unsigned long long)atomic_load(&db->st.compactions),
                (unsigned long long)atomic_load(&db->st.intra_l0),
                (unsigned long long)atomic_load(&db->st.trivial_moves),
                (unsigned long long)atomic_load(&db->st.slowdowns),
                (unsigned long long)atomic_load(&db->st.stall_us)) == 0);
    } else {
        rc = NB_ENOTFOUND;
    }
    nkv__version_unref(v);
    if (rc) {
        nb_buf_free(&b);
        return rc;
    }
    NB_ASSERT(nb_buf_nul_terminate(&b) == 0);
    *out = (char *)nb_buf_take(&b, NULL);
    return 0;
}
