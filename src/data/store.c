/*
 * store.c — the data store: options, pools, reader pins, slice holds and
 * released slices.
 *
 * Epochs. s->epoch is a counter that moves forward whenever a question of
 * "who may still see this slice" arises: a release, and twice per
 * collection. A reader pin records the epoch current when it was taken.
 * A slice released at epoch R (after the metadata commit that dropped it)
 * can only be seen by readers whose pin is older than R: once no pin with
 * an epoch < R is active, its blocks may go.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"
#include "data/data_int.h"

void data__wait_init(data_wait *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->pending = 0;
    w->rc = 0;
}

void data__wait_add(data_wait *w, size_t n)
{
    pthread_mutex_lock(&w->mu);
    w->pending += n;
    pthread_mutex_unlock(&w->mu);
}

void data__wait_done(data_wait *w, int rc)
{
    pthread_mutex_lock(&w->mu);
    if (rc && !w->rc)
        w->rc = rc;
    --w->pending;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int data__wait_all(data_wait *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->pending)
        pthread_cond_wait(&w->cv, &w->mu);
    int rc = w->rc;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int data__wait_below(data_wait *w, size_t n)
{
    pthread_mutex_lock(&w->mu);
    while (w->pending >= n)
        pthread_cond_wait(&w->cv, &w->mu);
    int rc = w->rc;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void data__wait_destroy(data_wait *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

int data_store_open(data_bs *bs, const data_store_options *opts, data_store **out)
{
    *out = NULL;
    data_store *s = nb_xcalloc(1, sizeof *s);
    if (opts)
        s->o = *opts;
    if (!s->o.cache_bytes)
        s->o.cache_bytes = 256u << 20;
    if (!s->o.read_threads)
        s->o.read_threads = 8;
    if (!s->o.write_threads)
        s->o.write_threads = 4;
    if (!s->o.readahead_blocks)
        s->o.readahead_blocks = 8;
    if (!s->o.writer_inflight)
        s->o.writer_inflight = 4;
    if (!s->o.collect_grace_ns)
        s->o.collect_grace_ns = 3600ull * 1000000000ull;
    if (!s->o.direct_read_max)
        s->o.direct_read_max = 256u << 10;
    s->bs = bs;
    s->epoch = 1;
    pthread_mutex_init(&s->mu, NULL);
    nb_cond_init_mono(&s->pins_changed);
    pthread_mutex_init(&s->collect_mu, NULL);
    pthread_mutex_init(&s->bg_mu, NULL);
    pthread_cond_init(&s->bg_idle, NULL);
    s->bufs = data__bufpool_new();
    s->cache = data__cache_new(s->o.cache_bytes);
    data__cache_use_pool(s->cache, s->bufs);
    int rc = nb_pool_new(s->o.read_threads, "data-rd", &s->read_pool);
    if (rc == 0)
        rc = nb_pool_new(s->o.write_threads, "data-wr", &s->write_pool);
    if (rc) {
        data_store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void data__bg_wait(data_store *s)
{
    pthread_mutex_lock(&s->bg_mu);
    while (s->bg_pending)
        pthread_cond_wait(&s->bg_idle, &s->bg_mu);
    pthread_mutex_unlock(&s->bg_mu);
}

void data_store_close(data_store *s)
{
    if (!s)
        return;
    data__bg_wait(s);
    nb_pool_free(s->read_pool);
    nb_pool_free(s->write_pool);
    data__cache_free(s->cache);
    data__bufpool_free(s->bufs);
    if (s->nreleased)
        NB_INFO("data: %zu released slice(s) not yet deleted at close; the collector will "
                "free them",
                s->nreleased);
    data_bs_close(s->bs);
    free(s->pins);
    free(s->holds);
    free(s->released);
    pthread_cond_destroy(&s->pins_changed);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->collect_mu);
    pthread_cond_destroy(&s->bg_idle);
    pthread_mutex_destroy(&s->bg_mu);
    free(s);
}

data_bs *data_store_bs(data_store *s)
{
    return s->bs;
}

void data_store_cache_stats(data_store *s, data_cache_stats *out)
{
    data__cache_stats(s->cache, out);
}

void data__bg_begin(data_store *s)
{
    pthread_mutex_lock(&s->bg_mu);
    s->bg_pending++;
    pthread_mutex_unlock(&s->bg_mu);
}

void data__bg_end(data_store *s)
{
    pthread_mutex_lock(&s->bg_mu);
    if (--s->bg_pending == 0)
        pthread_cond_broadcast(&s->bg_idle);
    pthread_mutex_unlock(&s->bg_mu);
}

/* ---- Pins ---- */

data_pin data_pin_begin(data_store *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t e = s->epoch;
    if (s->npins && s->pins[s->npins - 1].epoch == e) {
        s->pins[s->npins - 1].count++;
    } else {
        if (s->npins == s->cappins) {
            s->cappins = s->cappins ? 2 * s->cappins : 8;
            s->pins = nb_xrealloc(s->pins, s->cappins * sizeof *s->pins);
        }
        s->pins[s->npins].epoch = e;
        s->pins[s->npins].count = 1;
        s->npins++;
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

static void reclaim_task(void *arg)
{
    data_store *s = arg;
    pthread_mutex_lock(&s->mu);
    s->reclaim_queued = false;
    pthread_mutex_unlock(&s->mu);
    uint64_t n;
    int rc = data_store_reclaim(s, &n);
    if (rc)
        NB_WARN("data: reclaiming released slices: %s (the collector will retry)", nb_strerror(rc));
    data__bg_end(s);
}

void data_pin_end(data_store *s, data_pin pin)
{
    bool reclaim = false;
    pthread_mutex_lock(&s->mu);
    size_t i = 0;
    while (i < s->npins && s->pins[i].epoch != pin)
        i++;
    NB_ASSERT(i < s->npins); /* ending a pin that was never taken */
    if (--s->pins[i].count == 0) {
        memmove(&s->pins[i], &s->pins[i + 1], (s->npins - i - 1) * sizeof *s->pins);
        s->npins--;
        pthread_cond_broadcast(&s->pins_changed);
        /* The oldest pin ended: released slices may now be free. The
         * deletes run on the write pool, off the reader's path. */
        if (i == 0 && s->nreleased > 0 && !s->reclaim_queued) {
            s->reclaim_queued = true;
            reclaim = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (reclaim) {
        data__bg_begin(s);
        nb_pool_submit(s->write_pool, reclaim_task, s);
    }
}

uint64_t data__pins_min_locked(data_store *s)
{
    return s->npins ? s->pins[0].epoch : UINT64_MAX;
}

/* ---- Holds ---- */

void data__hold_add(data_store *s, uint64_t id)
{
    pthread_mutex_lock(&s->mu);
    if (s->nholds == s->capholds) {
        s->capholds = s->capholds ? 2 * s->capholds : 16;
        s->holds = nb_xrealloc(s->holds, s->capholds * sizeof *s->holds);
    }
    s->holds[s->nholds].id = id;
    s->holds[s->nholds].freed_epoch = 0;
    s->nholds++;
    pthread_mutex_unlock(&s->mu);
}

void data_slice_unhold(data_store *s, uint64_t id)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nholds; i++) {
        if (s->holds[i].id != id || s->holds[i].freed_epoch)
            continue;
        if (s->collecting) {
            /* A running collection may have asked for the live set before
             * this slice was published: keep protecting it until that
             * collection ends. */
            s->holds[i].freed_epoch = s->epoch;
        } else {
            s->holds[i] = s->holds[--s->nholds];
        }
        break;
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- Released slices ---- */

static int delete_slice_blocks(data_store *s, uint64_t id, uint32_t nblocks, uint64_t *freed)
{
    int first = 0;
    for (uint32_t b = 0; b < nblocks; b++) {
        data_key k = {id, b};
        data__cache_drop(s->cache, k);
        int rc = data_bs_delete(s->bs, k);
        if (rc == 0)
            (*freed)++;
        else if (rc != NB_ENOTFOUND && !first)
            first = rc;
    }
    return first;
}

void data_slice_release(data_store *s, uint64_t id, uint64_t len)
{
    if (id == 0)
        return;
    uint32_t nblocks = data_slice_blocks(len);
    pthread_mutex_lock(&s->mu);
    bool now = s->npins == 0;
    if (!now) {
        if (s->nreleased == s->capreleased) {
            s->capreleased = s->capreleased ? 2 * s->capreleased : 16;
            s->released = nb_xrealloc(s->released, s->capreleased * sizeof *s->released);
        }
        data_released *r = &s->released[s->nreleased++];
        r->id = id;
        r->nblocks = nblocks;
        r->epoch = ++s->epoch;
    }
    pthread_mutex_unlock(&s->mu);
    if (now) {
        uint64_t freed = 0;
        int rc = delete_slice_blocks(s, id, nblocks, &freed);
        if (rc)
            NB_WARN("data: deleting released slice %016llx: %s (the collector will retry)",
                    (unsigned long long)id, nb_strerror(rc));
    }
}

int data_store_reclaim(data_store *s, uint64_t *freed_blocks)
{
    uint64_t freed = 0;
    int first = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        uint64_t min = data__pins_min_locked(s);
        size_t i = 0;
        while (i < s->nreleased && s->released[i].epoch > min)
            i++;
        if (i == s->nreleased) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        data_released r = s->released[i];
        s->released[i] = s->released[--s->nreleased];
        pthread_mutex_unlock(&s->mu);
        int rc = delete_slice_blocks(s, r.id, r.nblocks, &freed);
        if (rc && !first)
            first = rc;
    }
    if (freed_blocks)
        *freed_blocks = freed;
    return first;
}
