/*
 * memtable.c — the arena and the skiplist memtable.
 *
 * Writers are serialised by the caller (the group-commit leader); readers
 * traverse without any lock. A node is fully initialised before it is
 * published with a release store into its predecessors' next pointers, and
 * readers load next pointers with acquire, so a reader sees either the old
 * list or the list with the complete new node (LevelDB's skiplist.h).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nkv_int.h"

#define ARENA_CHUNK (1u << 20)

void nkv__arena_init(nkv_arena *a)
{
    a->cur = NULL;
    a->left = 0;
    a->chunks = NULL;
    atomic_store_explicit(&a->usage, 0, memory_order_relaxed);
}

/* Chunks are mapped, not malloc'd: freeing a 1 MiB malloc chunk raises
 * glibc's dynamic mmap threshold, after which memtables and other large
 * buffers come from the heap and fragment it (a 1M-key fillrandom peaked
 * at 37 MiB RSS instead of 25). A chunk starts with its next pointer and
 * its mapped size. */
/* Freed standard chunks wait here for the next memtable (process-wide, at
 * most POOL_MAX of them): the first write to each page of a fresh mapping
 * costs a page fault and a page clear, ~2.5 µs of every 4 KiB put when
 * each memtable mapped its 4 MiB anew. A freed memtable's chunks are taken
 * again while the active one fills, so the pool adds no peak memory. */
#define POOL_MAX 4
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static void *pool[POOL_MAX];
static int npool;

static void *chunk_map(size_t len)
{
    if (len == ARENA_CHUNK) {
        void *c = NULL;
        pthread_mutex_lock(&pool_mu);
        if (npool > 0)
            c = pool[--npool];
        pthread_mutex_unlock(&pool_mu);
        if (c)
            return c;
    }
    void *c = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return c == MAP_FAILED ? NULL : c;
}

static void chunk_unmap(void *c, size_t len)
{
    if (len == ARENA_CHUNK) {
        pthread_mutex_lock(&pool_mu);
        bool kept = npool < POOL_MAX;
        if (kept)
            pool[npool++] = c;
        pthread_mutex_unlock(&pool_mu);
        if (kept)
            return;
    }
    munmap(c, len);
}

static void *arena_chunk(nkv_arena *a, size_t n)
{
    size_t len = n + 16;
    void **c = chunk_map(len);
    if (!c) {
        NB_ERROR("nkv: out of memory mapping a %zu-byte memtable chunk", len);
        abort();
    }
    c[0] = a->chunks;
    c[1] = (void *)(uintptr_t)len;
    a->chunks = c;
    return (char *)c + 16;
}

void *nkv__arena_alloc(nkv_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    /* Usage counts bytes handed out, not chunks, so that small write
     * buffers behave. */
    atomic_fetch_add_explicit(&a->usage, n, memory_order_relaxed);
    if (n <= a->left) {
        void *p = a->cur;
        a->cur += n;
        a->left -= n;
        return p;
    }
    if (n > ARENA_CHUNK / 4)
        return arena_chunk(a, n);
    a->cur = arena_chunk(a, ARENA_CHUNK - 16);
    a->left = ARENA_CHUNK - 16;
    void *p = a->cur;
    a->cur += n;
    a->left -= n;
    return p;
}

void nkv__arena_free(nkv_arena *a)
{
    void **c = a->chunks;
    while (c) {
        void **next = c[0];
        chunk_unmap(c, (size_t)(uintptr_t)c[1]);
        c = next;
    }
    nkv__arena_init(a);
}

/* Large buffers. glibc serves a malloc of 128 KiB or more from mmap, but
 * freeing such a chunk raises its mmap threshold to the chunk's size (up
 * to 32 MiB) and its trim threshold to twice that; from then on every
 * buffer below the new threshold comes from the allocating thread's heap,
 * and freed memory stays resident until 2x the threshold is free at the
 * heap's top. A table's key hashes (8 MiB for a 64 MiB table of 100-byte
 * values), its index and filter blocks and the write and scan buffers did
 * that: a 1M-key fillrandom + overwrite + reads held ~20 MiB of freed
 * heap (peak RSS 43 MiB; 30 MiB with the threshold pinned). Mapping them
 * here leaves glibc's thresholds where they were. */
static size_t page_round(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

void *nkv__lrealloc(void *p, size_t old, size_t n)
{
    if (!p)
        old = 0;
    if (n < NKV_BIG && (old < NKV_BIG))
        return nb_xrealloc(p, n ? n : 1);
    void *q;
    if (n >= NKV_BIG && old >= NKV_BIG) {
        q = mremap(p, page_round(old), page_round(n), MREMAP_MAYMOVE);
        if (q == MAP_FAILED)
            q = NULL;
    } else {
        q = n >= NKV_BIG ? chunk_map(page_round(n)) : malloc(n);
        if (q && old)
            memcpy(q, p, old < n ? old : n);
        if (q && p)
            nkv__lfree(p, old);
    }
    if (!q) {
        NB_ERROR("nkv: out of memory allocating %zu bytes", n);
        abort();
    }
    return q;
}

void *nkv__lalloc(size_t n)
{
    return nkv__lrealloc(NULL, 0, n);
}

void nkv__lfree(void *p, size_t n)
{
    if (!p)
        return;
    if (n < NKV_BIG)
        free(p);
    else
        chunk_unmap(p, page_round(n));
}

void nkv__buf_grow(nb_buf *b, size_t extra)
{
    NB_ASSERT(b->max == 0 && extra <= SIZE_MAX / 4 - b->len);
    size_t need = b->len + extra + 1, cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap >= NKV_BIG)
        cap = page_round(cap);
    b->data = nkv__lrealloc(b->data, b->cap, cap);
    b->cap = cap;
}

void nkv__buf_free(nb_buf *b)
{
    nkv__lfree(b->data, b->cap);
    b->data = NULL;
    b->len = b->cap = 0;
}

struct nkv_skipnode {
    const uint8_t *entry; /* varint ikey_len | ikey | varint vlen | val */
    _Atomic(nkv_skipnode *) next[];
};

/* Entries are written by us, so their varints need no bounds checks. */
static inline const uint8_t *get_len(const uint8_t *p, size_t *n)
{
    size_t v = 0;
    unsigned shift = 0;
    while (*p & 0x80) {
        v |= (size_t)(*p++ & 0x7f) << shift;
        shift += 7;
    }
    *n = v | ((size_t)*p++ << shift);
    return p;
}

static inline nb_slice entry_key(const uint8_t *e)
{
    size_t n;
    const uint8_t *p = get_len(e, &n);
    return nb_slice_of(p, n);
}

static inline nb_slice entry_val(const uint8_t *e)
{
    nb_slice k = entry_key(e);
    size_t n;
    const uint8_t *p = get_len(k.ptr + k.len, &n);
    return nb_slice_of(p, n);
}

static inline nkv_skipnode *nx(nkv_skipnode *n, int lvl)
{
    return atomic_load_explicit(&n->next[lvl], memory_order_acquire);
}

static nkv_skipnode *node_new(nkv_mem *m, int height, size_t extra)
{
    size_t sz = sizeof(nkv_skipnode) + (size_t)height * sizeof(_Atomic(nkv_skipnode *));
    nkv_skipnode *n = nkv__arena_alloc(&m->arena, sz + extra);
    n->entry = extra ? (const uint8_t *)n + sz : NULL;
    for (int i = 0; i < height; i++)
        atomic_store_explicit(&n->next[i], NULL, memory_order_relaxed);
    return n;
}

nkv_mem *nkv__mem_new_filtered(size_t filter_bytes)
{
    nkv_mem *m = nb_xcalloc(1, sizeof *m);
    atomic_store(&m->refs, 1);
    nkv__arena_init(&m->arena);
    if (filter_bytes >= 64) {
        uint64_t lines = 1;
        while (lines * 2 * 64 <= filter_bytes)
            lines *= 2;
        /* In the arena, so counted in the memtable's usage; cleared, as
         * arena chunks are recycled. */
        m->filter = nkv__arena_alloc(&m->arena, (size_t)lines * 64 + 64);
        m->filter = (_Atomic uint64_t *)(((uintptr_t)m->filter + 63) & ~(uintptr_t)63);
        memset((void *)m->filter, 0, (size_t)lines * 64);
        m->filter_lines = lines;
    }
    m->head = node_new(m, NKV_SKIP_MAX_HEIGHT, 0);
    atomic_store(&m->height, 1);
    m->rnd = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)m;
    return m;
}

nkv_mem *nkv__mem_new(void)
{
    return nkv__mem_new_filtered(0);
}

/* Four bits in one 64-byte line: the line from the hash's high bits, the
 * bits from its low 36 (RocksDB's cache-local bloom idea). */
#define MF_PROBES 4
static inline _Atomic uint64_t *mf_line(const nkv_mem *m, uint64_t h)
{
    return m->filter + ((h >> 40) & (m->filter_lines - 1)) * 8;
}

static void mf_add(nkv_mem *m, nb_slice ukey)
{
    uint64_t h = nkv__bloom_hash(ukey);
    _Atomic uint64_t *line = mf_line(m, h);
    for (int i = 0; i < MF_PROBES; i++, h >>= 9) {
        unsigned bit = (unsigned)(h & 511);
        /* One writer: a plain read-modify-write; readers load relaxed and
         * are ordered after it by the node's release publication (and the
         * sequence they read it under). */
        uint64_t w = atomic_load_explicit(&line[bit >> 6], memory_order_relaxed);
        atomic_store_explicit(&line[bit >> 6], w | (1ull << (bit & 63)), memory_order_relaxed);
    }
}

bool nkv__mem_may_contain(const nkv_mem *m, nb_slice ukey)
{
    return !m->filter || nkv__mem_may_contain_hash(m, nkv__bloom_hash(ukey));
}

bool nkv__mem_may_contain_hash(const nkv_mem *m, uint64_t h)
{
    if (!m->filter)
        return true;
    _Atomic uint64_t *line = mf_line(m, h);
    for (int i = 0; i < MF_PROBES; i++, h >>= 9) {
        unsigned bit = (unsigned)(h & 511);
        if (!(atomic_load_explicit(&line[bit >> 6], memory_order_relaxed) & (1ull << (bit & 63))))
            return false;
    }
    return true;
}

void nkv__mem_ref(nkv_mem *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void nkv__mem_unref(nkv_mem *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
        nkv__arena_free(&m->arena);
        free(m);
    }
}

size_t nkv__mem_usage(const nkv_mem *m)
{
    return atomic_load_explicit(&((nkv_mem *)m)->arena.usage, memory_order_relaxed);
}

static int random_height(nkv_mem *m)
{
    int h = 1;
    for (;;) {
        m->rnd ^= m->rnd << 13;
        m->rnd ^= m->rnd >> 7;
        m->rnd ^= m->rnd << 17;
        if (h < NKV_SKIP_MAX_HEIGHT && (m->rnd & 3) == 0)
            h++;
        else
            break;
    }
    return h;
}

/* The first node whose key >= key; prev[] receives the predecessors. */
static nkv_skipnode *find_ge(nkv_mem *m, nb_slice key, nkv_skipnode **prev)
{
    nkv_skipnode *x = m->head;
    int lvl = atomic_load_explicit(&m->height, memory_order_relaxed) - 1;
    for (;;) {
        nkv_skipnode *n = nx(x, lvl);
        if (n && nkv__icmp(entry_key(n->entry), key) < 0) {
            x = n;
            continue;
        }
        if (prev)
            prev[lvl] = x;
        if (lvl == 0)
            return n;
        lvl--;
    }
}

static nkv_skipnode *find_lt(nkv_mem *m, nb_slice key)
{
    nkv_skipnode *x = m->head;
    int lvl = atomic_load_explicit(&m->height, memory_order_relaxed) - 1;
    for (;;) {
        nkv_skipnode *n = nx(x, lvl);
        if (n && nkv__icmp(entry_key(n->entry), key) < 0) {
            x = n;
            continue;
        }
        if (lvl == 0)
            return x == m->head ? NULL : x;
        lvl--;
    }
}

static nkv_skipnode *find_last(nkv_mem *m)
{
    nkv_skipnode *x = m->head;
    int lvl = atomic_load_explicit(&m->height, memory_order_relaxed) - 1;
    for (;;) {
        nkv_skipnode *n = nx(x, lvl);
        if (n) {
            x = n;
            continue;
        }
        if (lvl == 0)
            return x == m->head ? NULL : x;
        lvl--;
    }
}

void nkv__mem_add(nkv_mem *m, uint64_t seq, int type, nb_slice key, nb_slice val)
{
    size_t ilen = key.len + 8;
    size_t extra = (size_t)nb_varint_len(ilen) + ilen + (size_t)nb_varint_len(val.len) + val.len;
    if (m->filter)
        mf_add(m, key); /* before the node is published */
    int h = random_height(m);
    nkv_skipnode *n = node_new(m, h, extra);
    uint8_t *p = (uint8_t *)n->entry;
    p = nb_varint_encode(p, ilen);
    p += nkv__ikey_put(p, key, seq, type);
    p = nb_varint_encode(p, val.len);
    if (val.len)
        memcpy(p, val.ptr, val.len);

    nkv_skipnode *prev[NKV_SKIP_MAX_HEIGHT];
    int cur_h = atomic_load_explicit(&m->height, memory_order_relaxed);
    find_ge(m, entry_key(n->entry), prev);
    if (h > cur_h) {
        for (int i = cur_h; i < h; i++)
            prev[i] = m->head;
        atomic_store_explicit(&m->height, h, memory_order_relaxed);
    }
    for (int i = 0; i < h; i++) {
        atomic_store_explicit(&n->next[i], nx(prev[i], i), memory_order_relaxed);
        atomic_store_explicit(&prev[i]->next[i], n, memory_order_release);
    }
    if (m->first_seq == 0 || seq < m->first_seq)
        m->first_seq = seq;
    if (seq > m->last_seq)
        m->last_seq = seq;
    atomic_fetch_add_explicit(&m->entries, 1, memory_order_relaxed);
}

int nkv__mem_get(nkv_mem *m, nb_slice ukey, uint64_t seq, nb_buf *val, bool *deleted)
{
    if (!nkv__mem_may_contain(m, ukey))
        return NB_ENOTFOUND;
    uint8_t stack[256];
    uint8_t *kb = ukey.len + 8 <= sizeof stack ? stack : nb_xmalloc(ukey.len + 8);
    nkv_skipnode *n =
        find_ge(m, nb_slice_of(kb, nkv__ikey_put(kb, ukey, seq, NKV_TYPE_VALUE)), NULL);
    if (kb != stack)
        free(kb);
    if (!n)
        return NB_ENOTFOUND;
    nb_slice k = entry_key(n->entry);
    if (nkv__ucmp(nkv__ukey(k), ukey) != 0)
        return NB_ENOTFOUND;
    if ((nkv__trailer(k) & 0xff) == NKV_TYPE_DELETE) {
        *deleted = true;
        return 0;
    }
    *deleted = false;
    nb_slice v = entry_val(n->entry);
    nb_buf_reset(val);
    NB_ASSERT(nb_buf_append(val, v.ptr, v.len) == 0);
    return 0;
}

/* ---- iterator ---- */

typedef struct mem_it {
    nkv__it base;
    nkv_mem *m;
    nkv_skipnode *n;
    bool owns; /* holds a ref on m */
} mem_it;

static bool mi_valid(nkv__it *i)
{
    return ((mem_it *)i)->n != NULL;
}
static void mi_first(nkv__it *i)
{
    mem_it *it = (mem_it *)i;
    it->n = nx(it->m->head, 0);
}
static void mi_last(nkv__it *i)
{
    mem_it *it = (mem_it *)i;
    it->n = find_last(it->m);
}
static void mi_seek(nkv__it *i, nb_slice k)
{
    mem_it *it = (mem_it *)i;
    it->n = find_ge(it->m, k, NULL);
}
static void mi_next(nkv__it *i)
{
    mem_it *it = (mem_it *)i;
    it->n = nx(it->n, 0);
}
static void mi_prev(nkv__it *i)
{
    mem_it *it = (mem_it *)i;
    it->n = find_lt(it->m, entry_key(it->n->entry));
}
static nb_slice mi_key(nkv__it *i)
{
    return entry_key(((mem_it *)i)->n->entry);
}
static nb_slice mi_val(nkv__it *i)
{
    return entry_val(((mem_it *)i)->n->entry);
}
static int mi_status(nkv__it *i)
{
    (void)i;
    return 0;
}
static void mi_free(nkv__it *i)
{
    mem_it *it = (mem_it *)i;
    if (it->owns)
        nkv__mem_unref(it->m);
    nkv__it_release(it, sizeof *it);
}

static bool mi_may_contain(nkv__it *i, nb_slice ikey, uint64_t hash)
{
    (void)ikey;
    return nkv__mem_may_contain_hash(((mem_it *)i)->m, hash);
}

static const nkv__it_ops mem_it_ops = {mi_valid,  mi_first, mi_last,       mi_seek,
                                       mi_next,   mi_prev,  mi_key,        mi_val,
                                       mi_status, mi_free,  mi_may_contain};

nkv__it *nkv__mem_iter_borrow(nkv_mem *m)
{
    mem_it *it = memset(nkv__it_alloc(sizeof *it), 0, sizeof *it); /* calloc skips glibc's tcache */
    it->base.ops = &mem_it_ops;
    it->m = m;
    return &it->base;
}

nkv__it *nkv__mem_iter(nkv_mem *m)
{
    nkv__mem_ref(m);
    mem_it *it = (mem_it *)nkv__mem_iter_borrow(m);
    it->owns = true;
    return &it->base;
}

/* ---- empty iterator ---- */

typedef struct empty_it {
    nkv__it base;
    int status;
} empty_it;

static bool ei_valid(nkv__it *i)
{
    (void)i;
    return false;
}
static void ei_nop(nkv__it *i)
{
    (void)i;
}
static void ei_seek(nkv__it *i, nb_slice k)
{
    (void)i;
    (void)k;
}
static nb_slice ei_key(nkv__it *i)
{
    (void)i;
    return nb_slice_of(NULL, 0);
}
static int ei_status(nkv__it *i)
{
    return ((empty_it *)i)->status;
}
static void ei_free(nkv__it *i)
{
    free(i);
}
static const nkv__it_ops empty_ops = {ei_valid, ei_nop, ei_nop,    ei_seek, ei_nop, ei_nop,
                                      ei_key,   ei_key, ei_status, ei_free, NULL};

nkv__it *nkv__empty_iter(int status)
{
    empty_it *it = nb_xcalloc(1, sizeof *it);
    it->base.ops = &empty_ops;
    it->status = status;
    return &it->base;
}
