/*
 * maint.c — background work: the chunk compactor (a chunk whose map has
 * grown many slices is rewritten as one slice and swapped in with
 * meta_chunk_replace) and the collector (slices on meta's garbage list are
 * released to data, then data_collect walks the block store against the
 * live references from meta_slice_scan, which frees blocks written but
 * never published before a crash). A timer thread runs both every
 * maintain_interval_ms; vfs_maintain runs them at once.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "vfs/vfs_int.h"

#define VFS__COMPACT_MIN 8 /* slices in one chunk map that make it worth rewriting */

typedef struct chunk_ref {
    uint64_t ino;
    uint32_t idx;
} chunk_ref;

typedef struct scan_state {
    uint64_t ino;
    uint32_t idx;
    uint32_t count;
    chunk_ref *todo;
    size_t n, cap;
} scan_state;

static int count_cb(void *arg, uint64_t ino, uint32_t chunk, const meta_slice *s)
{
    (void)s;
    scan_state *st = arg;
    if (ino != st->ino || chunk != st->idx) {
        st->ino = ino;
        st->idx = chunk;
        st->count = 0;
    }
    if (++st->count == VFS__COMPACT_MIN) {
        if (st->n == st->cap) {
            st->cap = st->cap ? st->cap * 2 : 16;
            st->todo = nb_xrealloc(st->todo, st->cap * sizeof(*st->todo));
        }
        st->todo[st->n].ino = ino;
        st->todo[st->n].idx = chunk;
        st->n++;
    }
    return 0;
}

static int compact_one(vfs *v, uint64_t ino, uint32_t idx, bool *done)
{
    *done = false;
    data_pin pin = data_pin_begin(v->ds);
    meta_slice *ms = NULL;
    size_t n = 0;
    int rc = meta_chunk_read(v->m, ino, idx, &ms, &n);
    if (rc != 0 || n < VFS__COMPACT_MIN) {
        data_pin_end(v->ds, pin);
        free(ms);
        return rc == -ENOENT ? 0 : rc;
    }
    data_slice *ds = nb_xmalloc(n * sizeof(*ds));
    vfs__to_data(ms, n, ds);
    nb_buf *bufs = nb_xcalloc(n, sizeof(*bufs));
    rc = vfs__inline_load(v, NULL, ds, n, bufs);
    uint64_t id;
    if (rc == 0)
        rc = meta_id_alloc(v->m, META_ID_SLICE, 1, &id);
    data_slice out;
    if (rc == 0)
        rc = data_chunk_compact(v->ds, ds, n, id, &out);
    data_pin_end(v->ds, pin);
    vfs__bufs_free(bufs, n);
    free(ds);
    if (rc == NB_ENOTFOUND) {
        /* Nothing visible: the map is all holes. Replace it by one hole. */
        meta_slice hole = {.id = 0, .size = 1, .off = 0, .len = 1, .pos = 0};
        rc = meta_chunk_replace(v->m, ino, idx, ms, n, &hole, 0);
        free(ms);
        if (rc == 0)
            *done = true;
        return rc == NB_ECONFLICT || rc == -ENOENT ? 0 : rc;
    }
    if (rc != 0) {
        free(ms);
        return rc;
    }
    meta_slice repl = {.id = id,
                       .size = out.len,
                       .off = (uint32_t)out.slice_off,
                       .len = out.len,
                       .pos = out.chunk_off};
    rc = meta_chunk_replace(v->m, ino, idx, ms, n, &repl, 1);
    free(ms);
    data_slice_unhold(v->ds, id);
    if (rc != 0) {
        data_slice_release(v->ds, id, out.len);
        return rc == NB_ECONFLICT || rc == -ENOENT ? 0 : rc;
    }
    *done = true;
    return 0;
}

static int compact(vfs *v, uint64_t *compacted)
{
    scan_state st;
    memset(&st, 0, sizeof(st));
    st.ino = UINT64_MAX;
    int rc = meta_slice_scan(v->m, count_cb, &st);
    for (size_t i = 0; rc == 0 && i < st.n; i++) {
        bool done;
        rc = compact_one(v, st.todo[i].ino, st.todo[i].idx, &done);
        if (done)
            (*compacted)++;
    }
    free(st.todo);
    return rc;
}

static int live_cb(void *arg, uint64_t ino, uint32_t chunk, const meta_slice *s)
{
    (void)ino;
    (void)chunk;
    if (s->id != 0)
        data_live_add(arg, s->id, data_slice_blocks(s->size));
    return 0;
}

int vfs__live_fn(void *arg, data_live *l)
{
    vfs *v = arg;
    int rc = meta_slice_scan(v->m, live_cb, l);
    /* The scan may see changes not yet durable (an unsynced unlink, a
     * group-committed S3 install waiting for its sync): if a power loss
     * took one back, the blocks it dropped would be named again. Make
     * what the scan saw durable before anything is freed on its word. */
    if (rc == 0)
        rc = meta_sync(v->m);
    return rc;
}

/* A set of slice ids (open addressing; 0 is never a key). */
typedef struct idset {
    uint64_t *k;
    size_t cap, n;
} idset;

static void idset_add(idset *s, uint64_t id)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        uint64_t *nk = nb_xcalloc(ncap, sizeof(*nk));
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->k[i])
                continue;
            size_t j = (size_t)(s->k[i] * 0x9E3779B97F4A7C15ull) & (ncap - 1);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = s->k[i];
        }
        free(s->k);
        s->k = nk;
        s->cap = ncap;
    }
    size_t j = (size_t)(id * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
    while (s->k[j] && s->k[j] != id)
        j = (j + 1) & (s->cap - 1);
    if (!s->k[j]) {
        s->k[j] = id;
        s->n++;
    }
}

static bool idset_has(const idset *s, uint64_t id)
{
    if (!s->cap)
        return false;
    size_t j = (size_t)(id * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
    while (s->k[j] && s->k[j] != id)
        j = (j + 1) & (s->cap - 1);
    return s->k[j] == id;
}

static int idset_cb(void *arg, uint64_t ino, uint32_t chunk, const meta_slice *s)
{
    (void)ino;
    (void)chunk;
    if (s->id)
        idset_add(arg, s->id);
    return 0;
}

/* Releases the slices on meta's garbage list to data. A slice can be
 * shared between inodes (copy_range), and meta lists it as garbage when
 * one inode drops it, so the list is checked against every chunk map
 * first, with copies excluded (share_lk) from the map scan to the
 * release: a slice no map references at that moment can never be
 * referenced again. */
static int release_garbage(vfs *v, uint64_t *released)
{
    meta_garbage g[256];
    uint64_t ids[256];
    uint64_t after = 0;
    size_t n = 0;
    int rc = meta_garbage_list(v->m, 0, g, 1, &n);
    if (rc != 0 || n == 0)
        return rc;
    pthread_rwlock_wrlock(&v->share_lk);
    idset live = {0};
    rc = meta_slice_scan(v->m, idset_cb, &live);
    while (rc == 0) {
        rc = meta_garbage_list(v->m, after, g, NB_ARRAY_LEN(g), &n);
        if (rc != 0 || n == 0)
            break;
        /* A garbage record can be visible before its commit is durable
         * (unsynced writes, group-committed installs): if a crash lost the
         * commit, the old owner would be back with its slices freed. */
        rc = meta_sync(v->m);
        if (rc != 0)
            break;
        uint64_t inl[256];
        size_t ninl = 0;
        for (size_t i = 0; i < n; i++) {
            if (g[i].id != 0 && !idset_has(&live, g[i].id)) {
                if (g[i].id & META_SLICE_INLINE)
                    inl[ninl++] = g[i].id; /* its bytes live in meta, not in blocks */
                else
                    data_slice_release(v->ds, g[i].id, g[i].size);
                (*released)++;
            }
            ids[i] = g[i].id;
        }
        rc = meta_inline_drop(v->m, inl, ninl);
        if (rc == 0)
            rc = meta_garbage_done(v->m, ids, n);
        after = g[n - 1].id;
    }
    pthread_rwlock_unlock(&v->share_lk);
    free(live.k);
    return rc;
}

int vfs_maintain(vfs *v, vfs_maint_report *report)
{
    vfs_maint_report r;
    memset(&r, 0, sizeof(r));
    if (v->o.read_only) {
        if (report)
            *report = r;
        return 0;
    }
    pthread_mutex_lock(&v->maint_mu);
    int rc = compact(v, &r.chunks_compacted);
    if (rc == 0)
        rc = release_garbage(v, &r.slices_released);
    uint64_t freed = 0;
    if (rc == 0)
        rc = data_store_reclaim(v->ds, &freed);
    if (rc == 0) {
        data_collect_opts o;
        memset(&o, 0, sizeof(o));
        o.grace_ns = v->collect_grace_ns;
        data_collect_report cr;
        memset(&cr, 0, sizeof(cr));
        rc = data_collect(v->ds, vfs__live_fn, v, &o, &cr);
        freed += cr.blocks_freed + cr.released_freed;
    }
    r.blocks_freed = freed;
    pthread_mutex_unlock(&v->maint_mu);
    if (report)
        *report = r;
    return vfs__errno(rc);
}

/* ---- The timer thread ---------------------------------------------------------------------- */

static void *timer_main(void *arg)
{
    vfs *v = arg;
    uint64_t period_ms =
        v->o.maintain_interval_ms > 0 ? (uint64_t)v->o.maintain_interval_ms : 30000;
    pthread_mutex_lock(&v->timer_mu);
    while (!v->stop) {
        struct timespec ts = nb_mono_timespec_in(period_ms * NB_NS_PER_MS);
        pthread_cond_timedwait(&v->timer_cv, &v->timer_mu, &ts);
        if (v->stop)
            break;
        pthread_mutex_unlock(&v->timer_mu);
        int rc = vfs_maintain(v, NULL);
        if (rc != 0)
            NB_WARN("vfs: background maintenance failed: %s", nb_strerror(rc));
        /* Bounds how long closed files stay not durable (ext4 commits
         * every few seconds for the same reason). */
        pthread_mutex_lock(&v->sync_mu);
        bool pending = v->nus > 0;
        pthread_mutex_unlock(&v->sync_mu);
        if (pending && (rc = vfs__sync(v)) != 0)
            NB_WARN("vfs: background sync failed: %s", nb_strerror(rc));
        pthread_mutex_lock(&v->timer_mu);
    }
    pthread_mutex_unlock(&v->timer_mu);
    return NULL;
}

int vfs__maint_start(vfs *v)
{
    int rc = pthread_create(&v->timer, NULL, timer_main, v);
    if (rc != 0)
        return -rc;
    v->timer_on = true;
    return 0;
}

void vfs__maint_stop(vfs *v)
{
    if (!v->timer_on)
        return;
    pthread_mutex_lock(&v->timer_mu);
    v->stop = true;
    pthread_cond_signal(&v->timer_cv);
    pthread_mutex_unlock(&v->timer_mu);
    pthread_join(v->timer, NULL);
    v->timer_on = false;
}
