/*
 * slice.c — writing a slice: a byte stream cut into 4 MiB blocks, each
 * written by the write pool as soon as it is full (at most writer_inflight
 * at a time, so memory per writer is bounded by a few blocks), then made
 * durable together by one data_bs_sync at the end.
 *
 * From data_writer_new until data_slice_unhold the slice is held, so the
 * collector leaves its blocks alone while they are unpublished.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "data/data_int.h"

/* Debug builds catch use after finish/abort (curl's llist init magic). */
#define WRITER_MAGIC 0x44575254u /* "DWRT" */

struct data_writer {
    uint32_t magic;
    data_store *s;
    uint64_t id;
    uint8_t *cur; /* the block being filled; DATA_BLOCK_SIZE bytes */
    size_t cur_len;
    uint32_t next_block; /* index of the block in cur */
    uint64_t len;
    unsigned flags; /* DATA_WRITER_* */
    data_wait wait; /* blocks in flight; first error */
};

typedef struct put_task {
    data_writer *w;
    data_key k;
    uint8_t *buf; /* owned */
    size_t len;
} put_task;

static void put_run(void *arg)
{
    put_task *t = arg;
    unsigned pf = (t->w->flags & DATA_WRITER_LAZY) ? DATA_PUT_NO_SYNC : DATA_PUT_DEFER_SYNC;
    int rc = data_bs_put(t->w->s->bs, t->k, t->buf, t->len, pf);
    if (rc)
        NB_WARN("data: writing block %016llx.%08x: %s", (unsigned long long)t->k.slice_id,
                t->k.block, nb_strerror(rc));
    data_wait *w = &t->w->wait;
    data__buf_put(t->w->s->bufs, t->buf);
    free(t);
    data__wait_done(w, rc);
}

int data_writer_new(data_store *s, uint64_t id, data_writer **out)
{
    return data_writer_new_flags(s, id, 0, out);
}

int data_writer_new_flags(data_store *s, uint64_t id, unsigned flags, data_writer **out)
{
    *out = NULL;
    if (id == 0 || (flags & ~DATA_WRITER_LAZY))
        return NB_EUSAGE;
    data_writer *w = nb_xcalloc(1, sizeof *w);
    w->magic = WRITER_MAGIC;
    w->s = s;
    w->id = id;
    w->flags = flags;
    data__wait_init(&w->wait);
    data__hold_add(s, id);
    *out = w;
    return 0;
}

/* Hands the current block to the write pool. */
static int submit_block(data_writer *w)
{
    int rc = data__wait_below(&w->wait, w->s->o.writer_inflight);
    if (rc)
        return rc;
    put_task *t = nb_xmalloc(sizeof *t);
    t->w = w;
    t->k.slice_id = w->id;
    t->k.block = w->next_block++;
    t->buf = w->cur;
    t->len = w->cur_len;
    w->cur = NULL;
    w->cur_len = 0;
    data__wait_add(&w->wait, 1);
    nb_pool_submit(w->s->write_pool, put_run, t);
    return 0;
}

int data_writer_append(data_writer *w, const void *buf, size_t len)
{
    assert(w->magic == WRITER_MAGIC);
    const uint8_t *p = buf;
    while (len) {
        if (!w->cur) {
            if (w->next_block == UINT32_MAX)
                return NB_ETOOBIG;
            w->cur = data__buf_get(w->s->bufs);
        }
        size_t n = DATA_BLOCK_SIZE - w->cur_len;
        if (n > len)
            n = len;
        memcpy(w->cur + w->cur_len, p, n);
        w->cur_len += n;
        w->len += n;
        p += n;
        len -= n;
        if (w->cur_len == DATA_BLOCK_SIZE) {
            int rc = submit_block(w);
            if (rc)
                return rc;
        }
    }
    return 0;
}

uint64_t data_writer_len(const data_writer *w)
{
    return w->len;
}

/* Waits for every block in flight, deletes the ones written, frees w. */
static void writer_discard(data_writer *w)
{
    (void)data__wait_all(&w->wait);
    for (uint32_t b = 0; b < w->next_block; b++) {
        data_key k = {w->id, b};
        int rc = data_bs_delete(w->s->bs, k);
        if (rc && rc != NB_ENOTFOUND)
            NB_WARN("data: discarding block %016llx.%08x: %s (left to the collector)",
                    (unsigned long long)w->id, b, nb_strerror(rc));
    }
    data_slice_unhold(w->s, w->id);
    data__wait_destroy(&w->wait);
    data__buf_put(w->s->bufs, w->cur);
    w->magic = 0;
    free(w);
}

int data_writer_finish(data_writer *w, uint64_t *len_out)
{
    assert(w->magic == WRITER_MAGIC);
    int rc = 0;
    if (w->cur_len)
        rc = submit_block(w);
    int rc2 = data__wait_all(&w->wait);
    if (!rc)
        rc = rc2;
    if (rc == 0 && w->next_block && !(w->flags & DATA_WRITER_LAZY)) {
        data_key *keys = nb_xmalloc(w->next_block * sizeof *keys);
        for (uint32_t b = 0; b < w->next_block; b++) {
            keys[b].slice_id = w->id;
            keys[b].block = b;
        }
        rc = data_bs_sync(w->s->bs, keys, w->next_block);
        free(keys);
    }
    if (rc) {
        writer_discard(w);
        return rc;
    }
    if (len_out)
        *len_out = w->len;
    data__wait_destroy(&w->wait);
    data__buf_put(w->s->bufs, w->cur);
    w->magic = 0;
    free(w);
    return 0;
}

typedef struct sync_task {
    data_bs *bs;
    const data_key *keys;
    size_t n;
    data_wait *wait;
} sync_task;

static void sync_run(void *arg)
{
    sync_task *t = arg;
    data__wait_done(t->wait, t->bs->ops->sync_data(t->bs, t->keys, t->n));
}

int data_slice_sync(data_store *s, const uint64_t *ids, const uint64_t *sizes, size_t n)
{
    size_t nk = 0;
    for (size_t i = 0; i < n; i++)
        nk += data_slice_blocks(sizes[i]);
    if (nk == 0)
        return 0;
    data_key *keys = nb_xmalloc(nk * sizeof *keys);
    nk = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t nb = data_slice_blocks(sizes[i]);
        for (uint32_t b = 0; b < nb; b++) {
            keys[nk].slice_id = ids[i];
            keys[nk].block = b;
            nk++;
        }
    }
    int rc = 0;
    data_bs *bs = s->bs;
    if (bs->ops->sync_data && nk > 1) {
        /* The blocks' data syncs in parallel on the write pool: concurrent
         * fdatasyncs share the file system's journal commits. Then the
         * names (data_bs_sync_full, whose data syncs find nothing left). */
        size_t parts = s->o.write_threads < nk ? s->o.write_threads : nk;
        sync_task *t = nb_xmalloc(parts * sizeof *t);
        data_wait wait;
        data__wait_init(&wait);
        data__wait_add(&wait, parts);
        for (size_t p = 0; p < parts; p++) {
            size_t lo = nk * p / parts, hi = nk * (p + 1) / parts;
            t[p] = (sync_task){bs, keys + lo, hi - lo, &wait};
            nb_pool_submit(s->write_pool, sync_run, &t[p]);
        }
        rc = data__wait_all(&wait);
        data__wait_destroy(&wait);
        free(t);
    }
    /* A failed data sync must not be hidden by a names sync that finds
     * nothing left to do. */
    int rc_full = data_bs_sync_full(bs, keys, nk);
    if (rc == 0)
        rc = rc_full;
    free(keys);
    return rc;
}

void data_writer_abort(data_writer *w)
{
    if (!w)
        return;
    assert(w->magic == WRITER_MAGIC);
    writer_discard(w);
}

int data_slice_write(data_store *s, uint64_t id, const void *buf, size_t len)
{
    data_writer *w;
    int rc = data_writer_new(s, id, &w);
    if (rc)
        return rc;
    rc = data_writer_append(w, buf, len);
    if (rc) {
        data_writer_abort(w);
        return rc;
    }
    return data_writer_finish(w, NULL);
}
