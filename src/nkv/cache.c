/*
 * cache.c — a sharded LRU cache with refcounted entries (LevelDB's
 * ShardedLRUCache, in C). 16 shards, each a mutex, an open hash table with
 * chaining and an LRU list of unpinned entries. An entry is freed once it
 * is both out of the table and unpinned.
 */
#include <stdlib.h>
#include <string.h>

#include "nkv_int.h"

#define SHARDS 16

struct nkv_cache_handle {
    struct nkv_cache_handle *hnext;
    struct nkv_cache_handle *prev, *next; /* LRU list (unpinned) or in-use list */
    void *value;
    nkv_cache_deleter deleter;
    size_t charge;
    size_t cap; /* bytes allocated for the entry */
    uint64_t hash;
    uint32_t refs; /* 1 for the table + one per pin */
    bool in_cache;
    size_t klen;
    uint8_t key[];
};

/* Each shard on its own cache lines: readers on two cores that hit
 * different shards must not bounce one line between them. */
typedef struct shard {
    _Alignas(64) pthread_mutex_t mu;
    size_t capacity, usage;
    nkv_cache_handle lru; /* sentinel: lru.next is the oldest */
    nkv_cache_handle **table;
    size_t tsize, count;
    uint64_t hits, misses;
} shard;

struct nkv_cache {
    shard s[SHARDS];
    _Atomic uint64_t next_id;
};

nkv_cache *nkv__cache_new(size_t capacity)
{
    nkv_cache *c = nb_xaligned_alloc(64, sizeof *c);
    memset(c, 0, sizeof *c);
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->s[i];
        pthread_mutex_init(&s->mu, NULL);
        s->capacity = (capacity + SHARDS - 1) / SHARDS;
        s->lru.next = s->lru.prev = &s->lru;
        s->tsize = 64;
        s->table = nb_xcalloc(s->tsize, sizeof *s->table);
    }
    atomic_store(&c->next_id, 1);
    return c;
}

/* Entries the size of a data block are recycled through a short free list
 * (process-wide): every block cache miss allocates one and evicts one, and
 * glibc serves 2-16 KiB from its bins (malloc/free were ~10 % of a
 * readrandom's CPU). Sizes are rounded up to 256 bytes so that blocks of one
 * database fit each other's entries. Off under AddressSanitizer, which must
 * see every free. */
#define RECYCLE_MIN 2048u
#define RECYCLE_MAX 16384u
#if defined(__SANITIZE_ADDRESS__)
#define RECYCLE_N 0
#else
#define RECYCLE_N 16
#endif
static pthread_mutex_t recycle_mu = PTHREAD_MUTEX_INITIALIZER;
static nkv_cache_handle *recycled; /* linked through hnext */
static int nrecycled;

static void entry_release_mem(nkv_cache_handle *e)
{
    if (e->cap >= RECYCLE_MIN && e->cap <= RECYCLE_MAX) {
        pthread_mutex_lock(&recycle_mu);
        bool kept = nrecycled < RECYCLE_N;
        if (kept) {
            e->hnext = recycled;
            recycled = e;
            nrecycled++;
        }
        pthread_mutex_unlock(&recycle_mu);
        if (kept)
            return;
    }
    free(e);
}

static nkv_cache_handle *entry_get_mem(size_t n)
{
    nkv_cache_handle *e = NULL;
    if (n >= RECYCLE_MIN && n <= RECYCLE_MAX) {
        n = (n + 255) & ~(size_t)255;
        pthread_mutex_lock(&recycle_mu);
        if (recycled && recycled->cap >= n) {
            e = recycled;
            recycled = e->hnext;
            nrecycled--;
        }
        pthread_mutex_unlock(&recycle_mu);
        if (e)
            return e;
    }
    e = nb_xmalloc(n); /* malloc aligns to 16 */
    e->cap = n;
    return e;
}

static void entry_free(nkv_cache_handle *e)
{
    if (e->deleter)
        e->deleter(e->key, e->klen, e->value);
    entry_release_mem(e);
}

static void lru_remove(nkv_cache_handle *e)
{
    e->next->prev = e->prev;
    e->prev->next = e->next;
    e->next = e->prev = NULL;
}

static void lru_append(shard *s, nkv_cache_handle *e)
{
    e->next = &s->lru;
    e->prev = s->lru.prev;
    e->prev->next = e;
    e->next->prev = e;
}

static nkv_cache_handle **find_slot(shard *s, const void *key, size_t klen, uint64_t hash)
{
    nkv_cache_handle **p = &s->table[hash & (s->tsize - 1)];
    while (*p && ((*p)->hash != hash || (*p)->klen != klen || memcmp((*p)->key, key, klen)))
        p = &(*p)->hnext;
    return p;
}

static void grow(shard *s)
{
    size_t nsize = s->tsize * 2;
    nkv_cache_handle **nt = nb_xcalloc(nsize, sizeof *nt);
    for (size_t i = 0; i < s->tsize; i++) {
        nkv_cache_handle *e = s->table[i];
        while (e) {
            nkv_cache_handle *next = e->hnext;
            nkv_cache_handle **slot = &nt[e->hash & (nsize - 1)];
            e->hnext = *slot;
            *slot = e;
            e = next;
        }
    }
    free(s->table);
    s->table = nt;
    s->tsize = nsize;
}

/* Drops the table's reference; returns true when the entry must be freed
 * (outside the lock). */
static bool unref_locked(shard *s, nkv_cache_handle *e)
{
    NB_ASSERT(e->refs > 0);
    e->refs--;
    if (e->refs == 0) {
        return true;
    }
    if (e->in_cache && e->refs == 1) {
        /* Only the table holds it now: it becomes evictable. */
        lru_append(s, e);
    }
    (void)s;
    return false;
}

static void ref_locked(nkv_cache_handle *e)
{
    if (e->in_cache && e->refs == 1)
        lru_remove(e);
    e->refs++;
}

/* Removes e from the table; the caller must unref. */
static void table_remove(shard *s, nkv_cache_handle *e)
{
    nkv_cache_handle **p = find_slot(s, e->key, e->klen, e->hash);
    NB_ASSERT(*p == e);
    *p = e->hnext;
    s->count--;
    s->usage -= e->charge;
    if (e->refs == 1)
        lru_remove(e);
    e->in_cache = false;
}

static inline shard *shard_of(nkv_cache *c, uint64_t hash)
{
    return &c->s[hash >> 60];
}

/* Entry layout: the struct, the key, then (16-byte aligned) any extra
 * bytes of nkv__cache_alloc. */
static size_t extra_off(size_t klen)
{
    return (sizeof(nkv_cache_handle) + klen + 15) & ~(size_t)15;
}

nkv_cache_handle *nkv__cache_alloc(const void *key, size_t klen, size_t extra, void **mem)
{
    size_t off = extra_off(klen);
    nkv_cache_handle *e = entry_get_mem(off + extra);
    e->klen = klen;
    e->hash = nb_hash64(key, klen, 0);
    memcpy(e->key, key, klen);
    *mem = (uint8_t *)e + off;
    return e;
}

void nkv__cache_abandon(nkv_cache_handle *e)
{
    entry_release_mem(e);
}

nkv_cache_handle *nkv__cache_insert(nkv_cache *c, const void *key, size_t klen, void *value,
                                    size_t charge, nkv_cache_deleter deleter)
{
    void *unused;
    return nkv__cache_publish(c, nkv__cache_alloc(key, klen, 0, &unused), value, charge, deleter);
}

nkv_cache_handle *nkv__cache_publish(nkv_cache *c, nkv_cache_handle *e, void *value, size_t charge,
                                     nkv_cache_deleter deleter)
{
    const void *key = e->key;
    size_t klen = e->klen;
    uint64_t hash = e->hash;
    shard *s = shard_of(c, hash);
    e->value = value;
    e->deleter = deleter;
    e->charge = charge;
    e->refs = 2; /* table + returned handle */
    e->in_cache = true;
    e->hnext = NULL;
    e->next = e->prev = NULL;

    nkv_cache_handle *dead[64];
    int ndead = 0;
    pthread_mutex_lock(&s->mu);
    nkv_cache_handle **slot = find_slot(s, key, klen, hash);
    if (*slot) {
        nkv_cache_handle *old = *slot;
        table_remove(s, old);
        if (unref_locked(s, old))
            dead[ndead++] = old;
        slot = find_slot(s, key, klen, hash);
    }
    *slot = e;
    s->count++;
    s->usage += charge;
    /* At most one entry per two buckets: a lookup's chain walk touches each
     * entry's header, a cache miss apiece (the entries are the blocks), and
     * a full table of 8 MiB of 4 KiB blocks sat at ~1 entry per bucket. */
    if (s->count > s->tsize / 2)
        grow(s);
    while (s->usage > s->capacity && s->lru.next != &s->lru && ndead < 64) {
        nkv_cache_handle *old = s->lru.next;
        table_remove(s, old);
        if (unref_locked(s, old))
            dead[ndead++] = old;
    }
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < ndead; i++)
        entry_free(dead[i]);
    return e;
}

nkv_cache_handle *nkv__cache_lookup(nkv_cache *c, const void *key, size_t klen)
{
    uint64_t hash = nb_hash64(key, klen, 0);
    shard *s = shard_of(c, hash);
    pthread_mutex_lock(&s->mu);
    nkv_cache_handle *e = *find_slot(s, key, klen, hash);
    if (e) {
        ref_locked(e);
        s->hits++;
    } else {
        s->misses++;
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

void nkv__cache_release(nkv_cache *c, nkv_cache_handle *e)
{
    shard *s = shard_of(c, e->hash);
    pthread_mutex_lock(&s->mu);
    bool dead = unref_locked(s, e);
    /* Over capacity because everything was pinned: evict now. */
    nkv_cache_handle *more[16];
    int nmore = 0;
    while (s->usage > s->capacity && s->lru.next != &s->lru && nmore < 16) {
        nkv_cache_handle *old = s->lru.next;
        table_remove(s, old);
        if (unref_locked(s, old))
            more[nmore++] = old;
    }
    pthread_mutex_unlock(&s->mu);
    if (dead)
        entry_free(e);
    for (int i = 0; i < nmore; i++)
        entry_free(more[i]);
}

void *nkv__cache_value(nkv_cache_handle *h)
{
    return h->value;
}

void nkv__cache_erase(nkv_cache *c, const void *key, size_t klen)
{
    uint64_t hash = nb_hash64(key, klen, 0);
    shard *s = shard_of(c, hash);
    pthread_mutex_lock(&s->mu);
    nkv_cache_handle *e = *find_slot(s, key, klen, hash);
    bool dead = false;
    if (e) {
        table_remove(s, e);
        dead = unref_locked(s, e);
    }
    pthread_mutex_unlock(&s->mu);
    if (dead)
        entry_free(e);
}

size_t nkv__cache_usage(nkv_cache *c)
{
    size_t u = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&c->s[i].mu);
        u += c->s[i].usage;
        pthread_mutex_unlock(&c->s[i].mu);
    }
    return u;
}

void nkv__cache_stats(nkv_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = *misses = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&c->s[i].mu);
        *hits += c->s[i].hits;
        *misses += c->s[i].misses;
        pthread_mutex_unlock(&c->s[i].mu);
    }
}

uint64_t nkv__cache_new_id(nkv_cache *c)
{
    return atomic_fetch_add(&c->next_id, 1);
}

void nkv__cache_free(nkv_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->s[i];
        for (size_t b = 0; b < s->tsize; b++) {
            nkv_cache_handle *e = s->table[b];
            while (e) {
                nkv_cache_handle *next = e->hnext;
                NB_ASSERT(e->refs == 1); /* nothing may stay pinned */
                entry_free(e);
                e = next;
            }
        }
        free(s->table);
        pthread_mutex_destroy(&s->mu);
    }
    free(c);
}
