/*
 * gc.c — chunk compaction and the collector of unreferenced blocks.
 *
 * The collector decides "unreferenced" from two sources that are not taken
 * at one instant: the live set the caller builds from metadata, and a walk
 * of the block store. Three rules make that safe:
 *
 *   1. Held slices (being written, or written but not yet published) are
 *      never freed. A hold ended while a collection runs keeps protecting
 *      its slice until that collection ends, because the live set may have
 *      been read before the slice was published.
 *   2. Blocks younger than the grace period are never freed (a second,
 *      independent guard for a publish that raced everything else).
 *   3. A reader pinned before the live set was read may still be using a
 *      map that referenced the block: the collector bumps the epoch after
 *      the live set is read (E2) and deletes only when no pin older than E2
 *      remains, waiting up to wait_ns and otherwise deferring to the next
 *      run.
 *
 *   collect:  purge ended holds ─ E1=++epoch ─ live_fn() ─ E2=++epoch ─ walk
 *             ─ filter (live, held, young) ─ wait for pins < E2 ─ delete
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"
#include "data/data_int.h"

/* ---- Compaction ---- */

int data_chunk_compact(data_store *s, const data_slice *slices, size_t n, uint64_t new_id,
                       data_slice *out)
{
    memset(out, 0, sizeof *out);
    data_piece *pc;
    size_t npc;
    int rc = data_chunk_plan(slices, n, 0, DATA_CHUNK_SIZE, &pc, &npc);
    if (rc)
        return rc;
    uint64_t start = UINT64_MAX, end = 0;
    for (size_t i = 0; i < npc; i++) {
        if (pc[i].key.slice_id == 0)
            continue;
        if (pc[i].chunk_off < start)
            start = pc[i].chunk_off;
        end = (uint64_t)pc[i].chunk_off + pc[i].len;
    }
    free(pc);
    if (start == UINT64_MAX)
        return NB_ENOTFOUND;

    data_writer *w;
    rc = data_writer_new(s, new_id, &w);
    if (rc)
        return rc;
    uint8_t *buf = nb_xmalloc(DATA_BLOCK_SIZE);
    for (uint64_t pos = start; pos < end && rc == 0;) {
        size_t step = end - pos < DATA_BLOCK_SIZE ? (size_t)(end - pos) : DATA_BLOCK_SIZE;
        rc = data_chunk_read(s, NULL, slices, n, (uint32_t)pos, step, buf);
        if (rc == 0)
            rc = data_writer_append(w, buf, step);
        pos += step;
    }
    free(buf);
    if (rc) {
        data_writer_abort(w);
        return rc;
    }
    rc = data_writer_finish(w, NULL);
    if (rc)
        return rc;
    out->id = new_id;
    out->chunk_off = (uint32_t)start;
    out->len = (uint32_t)(end - start);
    out->slice_off = 0;
    return 0;
}

/* ---- The live set: an open-addressing table id -> block count ---- */

struct data_live {
    uint64_t *ids; /* 0 = empty */
    uint32_t *nblocks;
    size_t cap, n;
};

static size_t live_slot(const data_live *l, uint64_t id)
{
    size_t i = (size_t)((id * 0x9E3779B97F4A7C15ull) >> 20) & (l->cap - 1);
    while (l->ids[i] && l->ids[i] != id)
        i = (i + 1) & (l->cap - 1);
    return i;
}

static void live_grow(data_live *l)
{
    data_live old = *l;
    l->cap = old.cap ? old.cap * 2 : 1024;
    l->ids = nb_xcalloc(l->cap, sizeof *l->ids);
    l->nblocks = nb_xcalloc(l->cap, sizeof *l->nblocks);
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.ids[i])
            continue;
        size_t j = live_slot(l, old.ids[i]);
        l->ids[j] = old.ids[i];
        l->nblocks[j] = old.nblocks[i];
    }
    free(old.ids);
    free(old.nblocks);
}

void data_live_add(data_live *l, uint64_t id, uint32_t nblocks)
{
    if (id == 0)
        return;
    if (2 * (l->n + 1) > l->cap)
        live_grow(l);
    size_t i = live_slot(l, id);
    if (!l->ids[i]) {
        l->ids[i] = id;
        l->nblocks[i] = nblocks;
        l->n++;
    } else if (nblocks > l->nblocks[i]) {
        l->nblocks[i] = nblocks;
    }
}

static bool live_has(const data_live *l, data_key k)
{
    if (!l->cap)
        return false;
    size_t i = live_slot(l, k.slice_id);
    return l->ids[i] == k.slice_id && k.block < l->nblocks[i];
}

/* ---- The collector ---- */

typedef struct cand {
    data_key key;
    uint64_t bytes;
} cand;

typedef struct walk {
    const data_live *live;
    data_collect_report *rep;
    uint64_t young_after; /* wall ns: blocks written later are young */
    cand *v;
    size_t n, cap;
} walk;

static int walk_fn(void *arg, const data_bs_entry *e)
{
    walk *wk = arg;
    wk->rep->blocks_seen++;
    if (live_has(wk->live, e->key)) {
        wk->rep->blocks_live++;
        return 0;
    }
    if (e->mtime_ns > wk->young_after) {
        wk->rep->blocks_young++;
        return 0;
    }
    if (wk->n == wk->cap) {
        wk->cap = wk->cap ? 2 * wk->cap : 256;
        wk->v = nb_xrealloc(wk->v, wk->cap * sizeof *wk->v);
    }
    wk->v[wk->n].key = e->key;
    wk->v[wk->n].bytes = e->bytes;
    wk->n++;
    return 0;
}

static bool held_locked(data_store *s, uint64_t id)
{
    for (size_t i = 0; i < s->nholds; i++)
        if (s->holds[i].id == id)
            return true;
    return false;
}

static void purge_ended_holds_locked(data_store *s)
{
    for (size_t i = 0; i < s->nholds;) {
        if (s->holds[i].freed_epoch)
            s->holds[i] = s->holds[--s->nholds];
        else
            i++;
    }
}

/* Waits until no pin older than epoch e is active, at most wait_ns.
 * Returns true if that happened. Caller holds s->mu. */
static bool wait_pins_locked(data_store *s, uint64_t e, uint64_t wait_ns)
{
    struct timespec deadline = nb_mono_timespec_in(wait_ns);
    while (data__pins_min_locked(s) < e) {
        if (pthread_cond_timedwait(&s->pins_changed, &s->mu, &deadline) == ETIMEDOUT)
            return data__pins_min_locked(s) >= e;
    }
    return true;
}

int data_collect(data_store *s, data_live_fn live_fn, void *arg, const data_collect_opts *opts,
                 data_collect_report *report)
{
    data_collect_opts o = {0};
    if (opts)
        o = *opts;
    if (!o.grace_ns)
        o.grace_ns = s->o.collect_grace_ns;
    if (!o.wait_ns)
        o.wait_ns = 5ull * NB_NS_PER_SEC;
    data_collect_report rep;
    memset(&rep, 0, sizeof rep);

    pthread_mutex_lock(&s->collect_mu);
    pthread_mutex_lock(&s->mu);
    purge_ended_holds_locked(s);
    s->collecting = true;
    s->epoch++;
    pthread_mutex_unlock(&s->mu);

    data_live live = {0};
    walk wk = {.live = &live, .rep = &rep};
    int rc = live_fn(arg, &live);
    pthread_mutex_lock(&s->mu);
    uint64_t e2 = ++s->epoch;
    pthread_mutex_unlock(&s->mu);

    uint64_t now = nb_wall_ns();
    wk.young_after = now > o.grace_ns ? now - o.grace_ns : 0;
    if (rc == 0)
        rc = data_bs_iterate(s->bs, walk_fn, &wk);

    if (rc == 0 && wk.n) {
        pthread_mutex_lock(&s->mu);
        bool pins_done = wait_pins_locked(s, e2, o.wait_ns);
        size_t keep = 0;
        for (size_t i = 0; i < wk.n; i++) {
            if (held_locked(s, wk.v[i].key.slice_id))
                rep.blocks_held++;
            else if (!pins_done)
                rep.blocks_deferred++;
            else
                wk.v[keep++] = wk.v[i];
        }
        wk.n = keep;
        pthread_mutex_unlock(&s->mu);
        for (size_t i = 0; i < wk.n && !o.dry_run; i++) {
            data__cache_drop(s->cache, wk.v[i].key);
            int drc = data_bs_delete(s->bs, wk.v[i].key);
            if (drc == 0) {
                rep.blocks_freed++;
                rep.bytes_freed += wk.v[i].bytes;
            } else if (drc != NB_ENOTFOUND && rc == 0) {
                rc = drc;
            }
        }
        if (o.dry_run) {
            rep.blocks_freed = wk.n;
            for (size_t i = 0; i < wk.n; i++)
                rep.bytes_freed += wk.v[i].bytes;
        }
    }
    free(wk.v);
    free(live.ids);
    free(live.nblocks);

    pthread_mutex_lock(&s->mu);
    s->collecting = false;
    purge_ended_holds_locked(s);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->collect_mu);

    if (!o.dry_run) {
        uint64_t freed = 0;
        int rrc = data_store_reclaim(s, &freed);
        rep.released_freed = freed;
        if (rc == 0)
            rc = rrc;
    }
    if (report)
        *report = rep;
    if (rep.blocks_freed || rep.blocks_deferred)
        NB_INFO("data: collector freed %llu block(s) (%llu bytes), deferred %llu",
                (unsigned long long)rep.blocks_freed, (unsigned long long)rep.bytes_freed,
                (unsigned long long)rep.blocks_deferred);
    return rc;
}
