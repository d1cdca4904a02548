/*
 * meta_objcache.c — recent meta_obj_get answers, reused while the store
 * has not changed since they were read.
 *
 * Why: a 4 KiB S3 GET reads six kv values (two dentries, the inode, the
 * object record, chunk 0's map and its inline slice) under a snapshot,
 * about a fifth of the server's CPU per GET (perf, session 10). Repeated
 * GETs of the same objects with no write in between read the same values.
 *
 * Validity: an answer is stamped with kv_last_seq read before its
 * snapshot was taken, and reused only while kv_last_seq still has that
 * value: no write of any kind has been applied since, so a snapshot taken
 * now would read exactly the same values. Any write anywhere (PUT,
 * DELETE, the mount, lifecycle) makes every entry stale at once; there is
 * nothing to invalidate per key. meta_obj_get reads nothing outside kv, so
 * nothing else can change its answer.
 *
 * Sharing: a kept answer is handed out, not copied (meta_obj.shared; a
 * 4 KiB object's inline bytes are most of it): entries are counted
 * references, one held by the table and one by each meta_obj sharing it,
 * and read-only once kept. A miss's answer moves into the table and its
 * caller shares it from there.
 *
 * Bounds: a fixed table of sets of two entries (a new answer takes the
 * entry of the same name, else an empty or stale one, else the older), entries of at most
 * OC_ENTRY_MAX bytes and OC_BYTES_MAX in all. Only found objects are kept.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "meta/meta_int.h"

#define OC_SETS      2048u /* of two entries each */
#define OC_LOCKS     64u
#define OC_ENTRY_MAX (64u << 10)
#define OC_BYTES_MAX (16u << 20)

typedef struct oc_entry {
    _Atomic unsigned refs;
    uint64_t seq;
    uint64_t hash;
    unsigned flags;
    size_t blen, klen;
    size_t bytes;
    char *name; /* bucket '/' key */
    meta_obj o;
} oc_entry;

struct meta__objcache {
    pthread_mutex_t mu[OC_LOCKS];
    oc_entry *slot[2 * OC_SETS];
    _Atomic size_t bytes;
};

meta__objcache *meta__objcache_new(void)
{
    meta__objcache *c = nb_xcalloc(1, sizeof *c);
    for (unsigned i = 0; i < OC_LOCKS; i++)
        pthread_mutex_init(&c->mu[i], NULL);
    return c;
}

static void entry_unref(oc_entry *e)
{
    if (!e || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    meta_obj_free(&e->o);
    free(e->name);
    free(e);
}

void meta__objcache_unref(void *shared)
{
    entry_unref(shared);
}

void meta__objcache_free(meta__objcache *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < 2 * OC_SETS; i++)
        entry_unref(c->slot[i]);
    for (unsigned i = 0; i < OC_LOCKS; i++)
        pthread_mutex_destroy(&c->mu[i]);
    free(c);
}

static uint64_t name_hash(const char *bucket, size_t blen, const char *key, size_t klen)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < blen; i++)
        h = (h ^ (uint8_t)bucket[i]) * 0x100000001b3ull;
    h = (h ^ '/') * 0x100000001b3ull;
    for (size_t i = 0; i < klen; i++)
        h = (h ^ (uint8_t)key[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

/* out shares e's answer (with the map and inline bytes if data). */
static void share(meta_obj *out, oc_entry *e, bool data)
{
    memset(out, 0, sizeof *out);
    out->a = e->o.a;
    out->rec = e->o.rec;
    if (data) {
        out->map = e->o.map;
        out->nmap = e->o.nmap;
        out->inl = e->o.inl;
    }
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    out->shared = e;
}

static size_t obj_bytes(const meta_obj *o)
{
    size_t n = sizeof(oc_entry) + o->rec.len + o->nmap * (sizeof *o->map + sizeof *o->inl);
    for (size_t i = 0; o->inl && i < o->nmap; i++)
        n += o->inl[i].len;
    return n;
}

static bool entry_is(const oc_entry *e, uint64_t h, const char *bucket, size_t blen,
                     const char *key, size_t klen)
{
    return e && e->hash == h && e->blen == blen && e->klen == klen &&
           memcmp(e->name, bucket, blen) == 0 && memcmp(e->name + blen + 1, key, klen) == 0;
}

bool meta__objcache_get(meta__objcache *c, uint64_t seq, const char *bucket, const char *key,
                        unsigned flags, meta_obj *out)
{
    size_t blen = strlen(bucket), klen = strlen(key);
    uint64_t h = name_hash(bucket, blen, key, klen);
    unsigned set = (unsigned)(h % OC_SETS);
    pthread_mutex_t *mu = &c->mu[set % OC_LOCKS];
    bool hit = false;
    pthread_mutex_lock(mu);
    for (unsigned i = 2 * set; i < 2 * set + 2 && !hit; i++) {
        oc_entry *e = c->slot[i];
        if (entry_is(e, h, bucket, blen, key, klen) && e->seq == seq &&
            (e->flags & flags) == flags) {
            share(out, e, (flags & META_OBJ_DATA) != 0);
            hit = true;
        }
    }
    pthread_mutex_unlock(mu);
    return hit;
}

void meta__objcache_put(meta__objcache *c, uint64_t seq, const char *bucket, const char *key,
                        unsigned flags, meta_obj *o)
{
    size_t bytes = obj_bytes(o);
    if (o->shared || bytes > OC_ENTRY_MAX)
        return;
    size_t blen = strlen(bucket), klen = strlen(key);
    oc_entry *e = nb_xmalloc(sizeof *e);
    atomic_init(&e->refs, 1); /* the table's */
    e->seq = seq;
    e->hash = name_hash(bucket, blen, key, klen);
    e->flags = flags;
    e->blen = blen;
    e->klen = klen;
    e->bytes = bytes;
    e->name = nb_xmalloc(blen + klen + 2);
    memcpy(e->name, bucket, blen);
    e->name[blen] = '/';
    memcpy(e->name + blen + 1, key, klen + 1);
    e->o = *o; /* moved: o shares it below, or gets it back */
    unsigned set = (unsigned)(e->hash % OC_SETS);
    pthread_mutex_t *mu = &c->mu[set % OC_LOCKS];
    pthread_mutex_lock(mu);
    oc_entry **a = &c->slot[2 * set], **b = a + 1, **to;
    if (entry_is(*a, e->hash, bucket, blen, key, klen))
        to = a;
    else if (entry_is(*b, e->hash, bucket, blen, key, klen))
        to = b;
    else if (!*a || (*a)->seq != seq)
        to = a;
    else if (!*b || (*b)->seq != seq)
        to = b;
    else
        to = a; /* both current: the first goes */
    oc_entry *old = *to;
    size_t freed = old ? old->bytes : 0;
    /* Over the budget: the entry is emptied and the answer not kept. */
    bool fits =
        atomic_load_explicit(&c->bytes, memory_order_relaxed) - freed + bytes <= OC_BYTES_MAX;
    *to = fits ? e : NULL;
    atomic_fetch_add_explicit(&c->bytes, (fits ? bytes : 0) - freed, memory_order_relaxed);
    if (fits)
        share(o, e, true);
    pthread_mutex_unlock(mu);
    entry_unref(old);
    if (!fits) {
        free(e->name);
        free(e);
    }
}
