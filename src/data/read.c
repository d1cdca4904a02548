/*
 * read.c — assembling a byte range of a chunk from its slice list.
 *
 * A read first plans: it cuts [off, off+len) into pieces, each lying in one
 * block of the newest slice covering it (or in a hole). Pieces are grouped
 * by block; each block is fetched by one task, the tasks run in parallel on
 * the read pool (the calling thread runs one itself), and every task copies
 * its pieces straight into the caller's buffer.
 *
 * A block is fetched either whole, through the cache (sequential streams,
 * large pieces, blocks already cached, backends whose range reads cost a
 * whole block), or as just the range needed, straight from the block
 * store (small random reads: the dir backend verifies only the 64 KiB
 * segments touched).
 *
 * Readahead: a data_ra per open handle notices a read that starts where the
 * last one ended; from the second such read on, the blocks of the next
 * `window` bytes are loaded into the cache in the background. The window
 * starts at two blocks and doubles up to readahead_blocks. A window that
 * reaches past the chunk's end is remembered (data_ra_next_chunk) for the
 * caller, who holds the next chunk's map, so a stream does not stall at
 * every 64 MiB boundary.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "data/data_int.h"

struct data_ra {
    uint64_t next_off; /* where a sequential read would start */
    unsigned streak;   /* consecutive sequential reads */
    uint64_t window;   /* current readahead window in bytes */
    uint64_t spill;    /* bytes of the next chunk the window covers */
    uint64_t pf_end;   /* chunk offset up to which readahead was queued */
};

data_ra *data_ra_new(void)
{
    data_ra *ra = nb_xcalloc(1, sizeof *ra);
    ra->next_off = UINT64_MAX;
    return ra;
}

void data_ra_free(data_ra *ra)
{
    free(ra);
}

/* ---- Planning ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct piece_vec {
    data_piece *v;
    size_t n, cap;
} piece_vec;

static void piece_push(piece_vec *pv, data_piece p)
{
    if (pv->n == pv->cap) {
        pv->cap = pv->cap ? 2 * pv->cap : 16;
        pv->v = nb_xrealloc(pv->v, pv->cap * sizeof *pv->v);
    }
    pv->v[pv->n++] = p;
}

/* Emits [a, b) of slice sl (or a hole when sl is NULL), cut at block
 * boundaries of the slice. */
static void emit(piece_vec *pv, const data_slice *sl, uint64_t a, uint64_t b)
{
    if (!sl || sl->id == 0) {
        data_piece p = {(uint32_t)a, (uint32_t)(b - a), {0, 0}, 0};
        piece_push(pv, p);
        return;
    }
    while (a < b) {
        uint64_t so = sl->slice_off + (a - sl->chunk_off);
        uint64_t in_blk = so % DATA_BLOCK_SIZE;
        uint64_t n = DATA_BLOCK_SIZE - in_blk;
        if (n > b - a)
            n = b - a;
        data_piece p = {
            (uint32_t)a, (uint32_t)n, {sl->id, (uint32_t)(so / DATA_BLOCK_SIZE)}, (uint32_t)in_blk};
        piece_push(pv, p);
        a += n;
    }
}

int data_chunk_plan(const data_slice *slices, size_t n, uint32_t off, size_t len, data_piece **out,
                    size_t *nout)
{
    *out = NULL;
    *nout = 0;
    uint64_t end = (uint64_t)off + len;
    if (end > DATA_CHUNK_SIZE)
        return NB_EUSAGE;
    if (len == 0)
        return 0;
    /* Elementary intervals: every slice edge inside the range. */
    uint64_t *pts = nb_xmalloc((2 * n + 2) * sizeof *pts);
    size_t np = 0;
    pts[np++] = off;
    pts[np++] = end;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = slices[i].chunk_off, b = a + slices[i].len;
        if (a > off && a < end)
            pts[np++] = a;
        if (b > off && b < end)
            pts[np++] = b;
    }
    qsort(pts, np, sizeof *pts, cmp_u64);
    piece_vec pv = {0};
    const data_slice *run = NULL; /* the slice of the open run */
    uint64_t run_start = off;
    for (size_t i = 0; i + 1 < np; i++) {
        uint64_t a = pts[i], b = pts[i + 1];
        if (a == b)
            continue;
        const data_slice *top = NULL; /* newest slice covering [a, b) */
        for (size_t j = n; j-- > 0;) {
            if (slices[j].len && slices[j].chunk_off <= a &&
                (uint64_t)slices[j].chunk_off + slices[j].len >= b) {
                top = &slices[j];
                break;
            }
        }
        if (top != run) {
            if (a > run_start)
                emit(&pv, run, run_start, a);
            run = top;
            run_start = a;
        }
    }
    if (end > run_start)
        emit(&pv, run, run_start, end);
    free(pts);
    *out = pv.v;
    *nout = pv.n;
    return 0;
}

/* ---- Fetching ---- */

/* Hands the pooled buffer buf that a block read (result rc, got bytes)
 * filled to the caller: a whole block keeps it; a short block (a slice's
 * last) gets a buffer of its own size, so the cache's byte count stays
 * true to the memory it holds. */
static int block_take(data_store *s, uint8_t *buf, int rc, size_t got, uint8_t **data, size_t *len,
                      bool *pooled)
{
    *data = NULL;
    *len = 0;
    *pooled = false;
    if (rc == 0 && got == DATA_BLOCK_SIZE) {
        *data = buf;
        *len = got;
        *pooled = true;
        return 0;
    }
    if (rc == 0 && got > 0) {
        *data = nb_xmalloc(got);
        memcpy(*data, buf, got);
        *len = got;
    }
    data__buf_put(s->bufs, buf);
    return rc;
}

int data__block_read(data_store *s, data_key k, uint8_t **data, size_t *len, bool *pooled)
{
    uint8_t *buf = data__buf_get(s->bufs);
    size_t got = 0;
    int rc = data_bs_get(s->bs, k, 0, DATA_BLOCK_SIZE, buf, &got);
    return block_take(s, buf, rc, got, data, len, pooled);
}

/* A store whose reads copy from the page cache and check what they copy
 * (disk): every read goes straight to it, streams too (one copy and one
 * CRC pass per byte), and its readahead only brings blocks into the page
 * cache. */
static bool page_cache_store(const data_store *s)
{
    return s->bs->ops->page_cache;
}

/* Fills a LOADING cache entry b with block k; returns the load's result. */
static int block_fill(data_store *s, data_block *b, data_key k)
{
    uint8_t *p;
    size_t n;
    bool pooled;
    int rc = data__block_read(s, k, &p, &n, &pooled);
    if (rc == 0 && pooled)
        data__cache_fill_buf(s->cache, b, p, n);
    else
        data__cache_fill(s->cache, b, rc, p, n);
    return rc;
}

/* Loads block k through the cache: a reference to the ready block. */
static int block_load(data_store *s, data_key k, data_block **out)
{
    bool owner;
    int rc;
    data_block *b = data__cache_acquire(s->cache, k, true, &owner, &rc);
    if (!b)
        return rc;
    if (owner) {
        rc = block_fill(s, b, k);
        if (rc) {
            data__block_unref(s->cache, b);
            return rc;
        }
    }
    *out = b;
    return 0;
}

int data__block_load(data_store *s, data_key k, data_block **out)
{
    return block_load(s, k, out);
}

typedef struct fetch {
    data_store *s;
    data_wait *wait;
    uint8_t *buf;  /* the caller's buffer */
    uint32_t base; /* chunk offset of buf[0] */
    data_piece *p; /* this block's pieces */
    size_t np;
    bool whole; /* through the cache */
    bool seq;   /* part of a sequential stream */
} fetch;

static int short_block(data_key k, uint64_t want, uint64_t have)
{
    return NB_CORRUPT("slice %016" PRIx64 " block %" PRIu32
                      ": the slice list reads up to byte %" PRIu64 " but the block has %" PRIu64,
                      k.slice_id, k.block, want, have);
}

static int fetch_run(fetch *f)
{
    data_store *s = f->s;
    data_key k = f->p[0].key;
    if (f->whole) {
        data_block *b = NULL;
        int rc = block_load(s, k, &b);
        if (rc)
            return rc;
        bool done = false; /* the stream has read the block's last byte */
        for (size_t i = 0; i < f->np && rc == 0; i++) {
            const data_piece *p = &f->p[i];
            if ((uint64_t)p->block_off + p->len > b->len)
                rc = short_block(k, (uint64_t)p->block_off + p->len, b->len);
            else
                memcpy(f->buf + (p->chunk_off - f->base), b->data + p->block_off, p->len);
            done = done || (uint64_t)p->block_off + p->len == b->len;
        }
        data__block_unref(s->cache, b);
        /* Elsewhere a stream does not come back for a block it has
         * passed, so that block is the first to go, not what is hot. */
        if (f->seq && done)
            data__cache_demote(s->cache, k);
        return rc;
    }
    for (size_t i = 0; i < f->np; i++) {
        const data_piece *p = &f->p[i];
        size_t got = 0;
        uint8_t *dst = f->buf + (p->chunk_off - f->base);
        int rc = data_bs_get(s->bs, k, p->block_off, p->len, dst, &got);
        if (rc)
            return rc;
        if (got != p->len)
            return short_block(k, (uint64_t)p->block_off + p->len, (uint64_t)p->block_off + got);
    }
    return 0;
}

static void fetch_task(void *arg)
{
    fetch *f = arg;
    data__wait_done(f->wait, fetch_run(f));
}

static int cmp_piece_key(const void *a, const void *b)
{
    const data_piece *x = a, *y = b;
    if (x->key.slice_id != y->key.slice_id)
        return x->key.slice_id < y->key.slice_id ? -1 : 1;
    if (x->key.block != y->key.block)
        return x->key.block < y->key.block ? -1 : 1;
    return x->chunk_off < y->chunk_off ? -1 : x->chunk_off > y->chunk_off;
}

/* ---- Readahead ---- */

typedef struct ra_task {
    data_store *s;
    data_key k;
} ra_task;

static void ra_run(void *arg)
{
    ra_task *t = arg;
    data_store *s = t->s;
    bool owner;
    int rc;
    data_block *b = data__cache_acquire(s->cache, t->k, false, &owner, &rc);
    if (b && owner) {
        b->readahead = true;
        (void)block_fill(s, b, t->k);
    }
    data__block_unref(s->cache, b);
    free(t);
    data__bg_end(s);
}

/* Queues background loads of every block holding [off, off+len). */
static void prefetch(data_store *s, const data_slice *slices, size_t n, uint64_t off, uint64_t len)
{
    /* A page cache store's stream reads ahead through the kernel's
     * readahead on the store's descriptor, in large folios: reading the
     * blocks ahead here as well cost a copy of each (twice the CPU of a
     * cold pass, vfs_bench), and readahead(2) brings them in as single
     * pages, which every later copy pays for (docs/data.md §4.3). */
    if (page_cache_store(s))
        return;
    if (off >= DATA_CHUNK_SIZE || len == 0)
        return;
    if (off + len > DATA_CHUNK_SIZE)
        len = DATA_CHUNK_SIZE - off;
    data_piece *pc;
    size_t npc;
    if (data_chunk_plan(slices, n, (uint32_t)off, len, &pc, &npc) != 0)
        return;
    int issued = 0;
    data_key last = {0, 0};
    for (size_t i = 0; i < npc; i++) {
        data_key k = pc[i].key;
        if (k.slice_id == 0 || (k.slice_id & DATA_SLICE_INLINE) ||
            (k.slice_id == last.slice_id && k.block == last.block))
            continue;
        last = k;
        if (data__cache_contains(s->cache, k))
            continue;
        ra_task *t = nb_xmalloc(sizeof *t);
        t->s = s;
        t->k = k;
        data__bg_begin(s);
        nb_pool_submit(s->read_pool, ra_run, t);
        issued++;
    }
    free(pc);
    if (issued)
        data__cache_note_readahead(s->cache, issued);
}

void data_chunk_prefetch(data_store *s, const data_slice *slices, size_t n, uint32_t off,
                         size_t len)
{
    prefetch(s, slices, n, off, len);
}

bool data_chunk_cold(data_store *s, const data_slice *slices, size_t n, uint32_t off, size_t len)
{
    if (!page_cache_store(s) || !s->bs->ops->resident)
        return false;
    data_piece *pc;
    size_t npc;
    if (data_chunk_plan(slices, n, off, len, &pc, &npc) != 0)
        return false; /* data_chunk_refs reports it */
    bool cold = false;
    for (size_t i = 0; !cold && i < npc; i++) {
        data_key k = pc[i].key;
        if (k.slice_id != 0 && !(k.slice_id & DATA_SLICE_INLINE))
            cold = !s->bs->ops->resident(s->bs, k, pc[i].block_off, pc[i].len);
    }
    free(pc);
    return cold;
}

/* Updates the handle's stream state; returns true if the read is part of a
 * sequential stream. */
static bool ra_note(data_ra *ra, uint32_t off, size_t len)
{
    bool seq = (uint64_t)off == ra->next_off || (off == 0 && ra->next_off == DATA_CHUNK_SIZE);
    if (seq) {
        ra->streak++;
        if (off == 0 && ra->next_off == DATA_CHUNK_SIZE)
            ra->pf_end = 0; /* a new chunk */
    } else {
        ra->streak = 0;
        ra->window = 0;
        ra->pf_end = 0;
    }
    ra->spill = 0;
    ra->next_off = (uint64_t)off + len;
    return ra->streak >= 1;
}

/* ---- The read ---- */

/* Copies an inline slice's piece from the bytes the caller passed. */
static int copy_inline(const data_slice *slices, size_t n, const data_piece *p, uint8_t *dst)
{
    for (size_t i = 0; i < n; i++) {
        if (slices[i].id != p->key.slice_id)
            continue;
        if (!slices[i].bytes)
            return NB_EUSAGE;
        uint64_t so = (uint64_t)p->key.block * DATA_BLOCK_SIZE + p->block_off;
        memcpy(dst, slices[i].bytes + so, p->len);
        return 0;
    }
    return NB_EUSAGE;
}

int data_chunk_read(data_store *s, data_ra *ra, const data_slice *slices, size_t n, uint32_t off,
                    size_t len, void *buf)
{
    data_piece *pc;
    size_t npc;
    int rc = data_chunk_plan(slices, n, off, len, &pc, &npc);
    if (rc || len == 0)
        return rc;
    bool seq = ra ? ra_note(ra, off, len) : false;
    uint8_t *out = buf;

    /* Holes are zeroed here; the rest is grouped by block. */
    size_t nblk = 0;
    for (size_t i = 0; i < npc && rc == 0; i++) {
        if (pc[i].key.slice_id == 0)
            memset(out + (pc[i].chunk_off - off), 0, pc[i].len);
        else if (pc[i].key.slice_id & DATA_SLICE_INLINE)
            rc = copy_inline(slices, n, &pc[i], out + (pc[i].chunk_off - off));
        else
            pc[nblk++] = pc[i];
    }
    if (rc) {
        free(pc);
        return rc;
    }
    qsort(pc, nblk, sizeof *pc, cmp_piece_key);
    fetch *fs = nb_xmalloc((nblk ? nblk : 1) * sizeof *fs);
    size_t nf = 0;
    for (size_t i = 0; i < nblk;) {
        size_t j = i + 1;
        uint64_t bytes = pc[i].len;
        while (j < nblk && pc[j].key.slice_id == pc[i].key.slice_id &&
               pc[j].key.block == pc[i].key.block)
            bytes += pc[j++].len;
        fetch *f = &fs[nf++];
        f->s = s;
        f->buf = out;
        f->base = off;
        f->p = &pc[i];
        f->np = j - i;
        f->whole = !page_cache_store(s);
        f->seq = seq;
        if (f->whole && !seq && bytes <= s->o.direct_read_max && s->bs->ops->cheap_ranges) {
            /* A small random read: through the cache only if the block is
             * there already; otherwise just the bytes asked for. */
            data_block *b = data__cache_peek(s->cache, pc[i].key);
            if (b)
                data__block_unref(s->cache, b);
            f->whole = b != NULL;
        }
        i = j;
    }

    data_wait w;
    data__wait_init(&w);
    if (nf > 1) {
        data__wait_add(&w, nf - 1);
        for (size_t i = 1; i < nf; i++) {
            fs[i].wait = &w;
            nb_pool_submit(s->read_pool, fetch_task, &fs[i]);
        }
    }
    rc = nf ? fetch_run(&fs[0]) : 0;
    int rc2 = data__wait_all(&w);
    if (!rc)
        rc = rc2;
    data__wait_destroy(&w);
    free(fs);
    free(pc);

    if (rc == 0 && seq) {
        /* Never read ahead more than a quarter of the cache: the blocks
         * must still be there when the reader arrives. */
        uint64_t max = (uint64_t)s->o.readahead_blocks * DATA_BLOCK_SIZE;
        if (max > s->o.cache_bytes / 4)
            max = s->o.cache_bytes / 4;
        if (max < DATA_BLOCK_SIZE)
            max = DATA_BLOCK_SIZE;
        ra->window = ra->window ? ra->window * 2 : 2ull * DATA_BLOCK_SIZE;
        if (ra->window > max)
            ra->window = max;
        /* The window ends on a block boundary, so it grows a block at a
         * time. */
        uint64_t reach = ((uint64_t)off + len + ra->window + DATA_BLOCK_SIZE - 1) /
                         DATA_BLOCK_SIZE * DATA_BLOCK_SIZE;
        /* Each block of the stream is considered once, not on every read
         * its window covers. */
        uint64_t from = (uint64_t)off + len;
        if (ra->pf_end > from)
            from = ra->pf_end;
        if (reach > from)
            prefetch(s, slices, n, from, reach - from);
        ra->pf_end = reach;
        ra->spill = reach > DATA_CHUNK_SIZE ? reach - DATA_CHUNK_SIZE : 0;
    }
    return rc;
}

size_t data_ra_next_chunk(const data_ra *ra)
{
    return ra ? (size_t)ra->spill : 0;
}
