/*
 * cache.c — the block cache: whole, verified block payloads keyed by
 * (slice id, block index), bounded in bytes, evicted least recently used.
 *
 * Entries are refcounted: the table holds one reference, every reader one
 * more, so a reader copies out of a block without holding the cache lock
 * and an evicted block is freed when its last reader lets go. A block being
 * loaded sits in the table as LOADING so that concurrent readers (and
 * readahead) fetch it once; whoever inserted it must fill it without
 * waiting on anything else, so loads can never wait on each other.
 *
 * Capacity counts the bytes of blocks in the table; evicted blocks still
 * held by readers are not counted (they are at most one per reader).
 *
 * Entry states:
 *
 *   acquire (miss) ──> LOADING ──fill(0)──> READY ──evict/drop──> (out of table)
 *                         └──fill(err)──> FAILED (out of table at once)
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "data/data_int.h"

struct data_cache {
    pthread_mutex_t mu;
    pthread_cond_t loaded;
    data_block **buckets;
    size_t nbuckets;                 /* power of two */
    data_block *lru_head, *lru_tail; /* READY blocks only */
    data__bufpool *pool;             /* where pooled blocks' buffers go back; may be NULL */
    size_t bytes, capacity, entries;
    uint64_t hits, misses, inserts, evictions, ra_issued, ra_hits;
};

static size_t bucket_of(const data_cache *c, data_key k)
{
    uint64_t h = (k.slice_id * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)k.block * 0xC2B2AE3D27D4EB4Full);
    h ^= h >> 29;
    return (size_t)h & (c->nbuckets - 1);
}

data_cache *data__cache_new(size_t capacity)
{
    data_cache *c = nb_xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->loaded, NULL);
    c->capacity = capacity;
    size_t want = capacity / (256u << 10);
    c->nbuckets = 64;
    while (c->nbuckets < want && c->nbuckets < (1u << 20))
        c->nbuckets <<= 1;
    c->buckets = nb_xcalloc(c->nbuckets, sizeof *c->buckets);
    return c;
}

void data__cache_use_pool(data_cache *c, data__bufpool *pool)
{
    c->pool = pool;
}

static void block_free(data_cache *c, data_block *b)
{
    if (b->pooled && c->pool)
        data__buf_put(c->pool, b->data);
    else
        free(b->data);
    free(b);
}

void data__block_unref(data_cache *c, data_block *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        block_free(c, b);
}

static void lru_unlink(data_cache *c, data_block *b)
{
    if (b->lru_prev)
        b->lru_prev->lru_next = b->lru_next;
    else
        c->lru_head = b->lru_next;
    if (b->lru_next)
        b->lru_next->lru_prev = b->lru_prev;
    else
        c->lru_tail = b->lru_prev;
    b->lru_prev = b->lru_next = NULL;
}

static void lru_push_front(data_cache *c, data_block *b)
{
    b->lru_prev = NULL;
    b->lru_next = c->lru_head;
    if (c->lru_head)
        c->lru_head->lru_prev = b;
    c->lru_head = b;
    if (!c->lru_tail)
        c->lru_tail = b;
}

static data_block *find_locked(data_cache *c, data_key k)
{
    for (data_block *b = c->buckets[bucket_of(c, k)]; b; b = b->hnext)
        if (b->key.slice_id == k.slice_id && b->key.block == k.block)
            return b;
    return NULL;
}

/* Unlinks b from the table (and the LRU if READY); returns the table's
 * reference to the caller, who drops it outside the lock. */
static void remove_locked(data_cache *c, data_block *b)
{
    data_block **pp = &c->buckets[bucket_of(c, b->key)];
    while (*pp != b)
        pp = &(*pp)->hnext;
    *pp = b->hnext;
    b->hnext = NULL;
    b->in_table = false;
    c->entries--;
    if (b->state == DATA_BLK_READY) {
        lru_unlink(c, b);
        c->bytes -= b->len;
    }
}

data_block *data__cache_acquire(data_cache *c, data_key k, bool wait, bool *owner, int *rc)
{
    *owner = false;
    *rc = 0;
    pthread_mutex_lock(&c->mu);
    data_block *b = find_locked(c, k);
    while (b && b->state == DATA_BLK_LOADING) {
        if (!wait) {
            pthread_mutex_unlock(&c->mu);
            *rc = NB_EAGAIN;
            return NULL;
        }
        atomic_fetch_add(&b->refs, 1);
        while (b->state == DATA_BLK_LOADING)
            pthread_cond_wait(&c->loaded, &c->mu);
        if (b->state == DATA_BLK_FAILED) {
            *rc = b->rc;
            pthread_mutex_unlock(&c->mu);
            data__block_unref(c, b);
            return NULL;
        }
        c->hits++;
        if (b->readahead && !b->ra_hit) {
            b->ra_hit = true;
            c->ra_hits++;
        }
        pthread_mutex_unlock(&c->mu);
        return b;
    }
    if (b) {
        atomic_fetch_add(&b->refs, 1);
        c->hits++;
        if (b->readahead && !b->ra_hit) {
            b->ra_hit = true;
            c->ra_hits++;
        }
        lru_unlink(c, b);
        lru_push_front(c, b);
        pthread_mutex_unlock(&c->mu);
        return b;
    }
    c->misses++;
    b = nb_xcalloc(1, sizeof *b);
    b->key = k;
    b->state = DATA_BLK_LOADING;
    atomic_store(&b->refs, 2); /* the table's and the caller's */
    b->in_table = true;
    size_t bi = bucket_of(c, k);
    b->hnext = c->buckets[bi];
    c->buckets[bi] = b;
    c->entries++;
    pthread_mutex_unlock(&c->mu);
    *owner = true;
    return b;
}

bool data__cache_contains(data_cache *c, data_key k)
{
    pthread_mutex_lock(&c->mu);
    bool there = find_locked(c, k) != NULL;
    pthread_mutex_unlock(&c->mu);
    return there;
}

data_block *data__cache_peek(data_cache *c, data_key k)
{
    pthread_mutex_lock(&c->mu);
    data_block *b = find_locked(c, k);
    if (b && b->state == DATA_BLK_READY) {
        atomic_fetch_add(&b->refs, 1);
        c->hits++;
        if (b->readahead && !b->ra_hit) {
            b->ra_hit = true;
            c->ra_hits++;
        }
        lru_unlink(c, b);
        lru_push_front(c, b);
    } else {
        b = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    return b;
}

static void fill(data_cache *c, data_block *b, int rc, uint8_t *data, size_t len, bool pooled);

void data__cache_fill(data_cache *c, data_block *b, int rc, uint8_t *data, size_t len)
{
    fill(c, b, rc, data, len, false);
}

void data__cache_fill_buf(data_cache *c, data_block *b, uint8_t *buf, size_t len)
{
    fill(c, b, 0, buf, len, true);
}

static void fill(data_cache *c, data_block *b, int rc, uint8_t *data, size_t len, bool pooled)
{
    data_block *victims = NULL; /* chained through hnext */
    pthread_mutex_lock(&c->mu);
    NB_ASSERT(b->state == DATA_BLK_LOADING);
    bool drop_table_ref = false;
    if (rc) {
        b->state = DATA_BLK_FAILED;
        b->rc = rc;
        if (b->in_table) {
            remove_locked(c, b);
            drop_table_ref = true;
        }
    } else {
        b->data = data;
        b->len = len;
        b->pooled = pooled;
        b->state = DATA_BLK_READY;
        c->inserts++;
        if (b->in_table) {
            lru_push_front(c, b);
            c->bytes += len;
            /* Evict from the cold end; never the block just filled. */
            while (c->bytes > c->capacity && c->lru_tail && c->lru_tail != b) {
                data_block *v = c->lru_tail;
                remove_locked(c, v);
                c->evictions++;
                v->hnext = victims;
                victims = v;
            }
            if (c->bytes > c->capacity) {
                /* Larger than the whole cache: serve this reader only. */
                remove_locked(c, b);
                drop_table_ref = true;
            }
        }
    }
    pthread_cond_broadcast(&c->loaded);
    pthread_mutex_unlock(&c->mu);
    if (rc)
        free(data);
    while (victims) {
        data_block *v = victims;
        victims = v->hnext;
        data__block_unref(c, v);
    }
    if (drop_table_ref)
        data__block_unref(c, b);
}

void data__cache_drop(data_cache *c, data_key k)
{
    pthread_mutex_lock(&c->mu);
    data_block *b = find_locked(c, k);
    if (b && b->state == DATA_BLK_READY)
        remove_locked(c, b);
    else
        b = NULL;
    pthread_mutex_unlock(&c->mu);
    data__block_unref(c, b);
}

void data__cache_demote(data_cache *c, data_key k)
{
    pthread_mutex_lock(&c->mu);
    data_block *b = find_locked(c, k);
    if (b && b->state == DATA_BLK_READY && c->lru_tail != b) {
        lru_unlink(c, b);
        b->lru_next = NULL;
        b->lru_prev = c->lru_tail;
        if (c->lru_tail)
            c->lru_tail->lru_next = b;
        c->lru_tail = b;
        if (!c->lru_head)
            c->lru_head = b;
    }
    pthread_mutex_unlock(&c->mu);
}

void data__cache_note_readahead(data_cache *c, int issued)
{
    pthread_mutex_lock(&c->mu);
    c->ra_issued += (uint64_t)issued;
    pthread_mutex_unlock(&c->mu);
}

void data__cache_stats(data_cache *c, data_cache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    out->hits = c->hits;
    out->misses = c->misses;
    out->inserts = c->inserts;
    out->evictions = c->evictions;
    out->readahead_issued = c->ra_issued;
    out->readahead_hits = c->ra_hits;
    out->bytes = c->bytes;
    out->capacity = c->capacity;
    out->entries = c->entries;
    pthread_mutex_unlock(&c->mu);
}

void data__cache_free(data_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        data_block *b = c->buckets[i];
        while (b) {
            data_block *next = b->hnext;
            /* Nobody may be loading or reading at close. */
            NB_ASSERT(b->state == DATA_BLK_READY);
            data__block_unref(c, b);
            b = next;
        }
    }
    free(c->buckets);
    pthread_cond_destroy(&c->loaded);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
