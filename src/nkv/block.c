/*
 * block.c — sorted blocks with prefix-compressed keys and restart points.
 *
 * Block layout (before compression and trailer):
 *
 *   entry*   shared varint | unshared varint | vlen varint |
 *            key[shared..] (unshared bytes) | value (vlen bytes)
 *   restart  u32 le offset of an entry whose shared == 0, one per
 *            restart_interval entries (the first entry is always one)
 *   count    u32 le number of restarts (>= 1)
 *
 * Readers binary-search the restart keys, then scan forward.
 */
#include <stdlib.h>
#include <string.h>

#include "nkv_int.h"

void nkv__bb_init(nkv_block_builder *b, int restart_interval)
{
    memset(b, 0, sizeof *b);
    b->restart_interval = restart_interval;
    nkv__bb_reset(b);
}

void nkv__bb_reset(nkv_block_builder *b)
{
    nb_buf_reset(&b->buf);
    nb_buf_reset(&b->restarts);
    nb_buf_reset(&b->last_key);
    nkv__buf_reserve(&b->restarts, 4);
    NB_ASSERT(nb_buf_put_u32le(&b->restarts, 0) == 0);
    b->counter = 0;
    b->nentries = 0;
    b->finished = false;
}

void nkv__bb_free(nkv_block_builder *b)
{
    /* buf and restarts grow through nkv__buf_reserve: an index block
     * passes NKV_BIG */
    nkv__buf_free(&b->buf);
    nkv__buf_free(&b->restarts);
    nb_buf_free(&b->last_key);
}

bool nkv__bb_empty(const nkv_block_builder *b)
{
    return b->nentries == 0;
}

size_t nkv__bb_estimate(const nkv_block_builder *b)
{
    return b->buf.len + b->restarts.len + 4;
}

void nkv__bb_add(nkv_block_builder *b, nb_slice key, nb_slice val)
{
    size_t shared = 0;
    if (b->counter < b->restart_interval) {
        size_t m = key.len < b->last_key.len ? key.len : b->last_key.len;
        while (shared < m && b->last_key.data[shared] == key.ptr[shared])
            shared++;
    } else {
        nkv__buf_reserve(&b->restarts, 4);
        NB_ASSERT(nb_buf_put_u32le(&b->restarts, (uint32_t)b->buf.len) == 0);
        b->counter = 0;
    }
    size_t unshared = key.len - shared;
    nkv__buf_reserve(&b->buf, 3 * NB_VARINT64_MAX + unshared + val.len);
    uint8_t *p = b->buf.data + b->buf.len;
    p = nb_varint_encode(p, shared);
    p = nb_varint_encode(p, unshared);
    p = nb_varint_encode(p, val.len);
    memcpy(p, key.ptr + shared, unshared);
    p += unshared;
    if (val.len)
        memcpy(p, val.ptr, val.len);
    p += val.len;
    b->buf.len = (size_t)(p - b->buf.data);
    b->last_key.len = shared;
    NB_ASSERT(nb_buf_append(&b->last_key, key.ptr + shared, unshared) == 0);
    b->counter++;
    b->nentries++;
}

nb_slice nkv__bb_finish(nkv_block_builder *b)
{
    nkv__buf_reserve(&b->buf, b->restarts.len + 4);
    NB_ASSERT(nb_buf_append(&b->buf, b->restarts.data, b->restarts.len) == 0);
    NB_ASSERT(nb_buf_put_u32le(&b->buf, (uint32_t)(b->restarts.len / 4)) == 0);
    b->finished = true;
    return nb_buf_slice(&b->buf);
}

int nkv__block_new(uint8_t *data, size_t size, nkv_block **out)
{
    *out = NULL;
    if (size < 4) {
        free(data);
        return NB_CORRUPT("nkv: block of %zu bytes is too small", size);
    }
    uint32_t n = nb_get_u32le(data + size - 4);
    if (n == 0 || (uint64_t)n * 4 + 4 > size) {
        free(data);
        return NB_CORRUPT("nkv: block has %u restarts for %zu bytes", n, size);
    }
    nkv_block *b = nb_xmalloc(sizeof *b);
    b->alloc = sizeof *b;
    b->data = data;
    b->size = size;
    b->owned = true;
    b->nrestarts = n;
    b->restart_off = (uint32_t)(size - 4 - (size_t)n * 4);
    *out = b;
    return 0;
}

int nkv__block_init_ref(nkv_block *b, const uint8_t *data, size_t size)
{
    if (size < 4)
        return NB_CORRUPT("nkv: block of %zu bytes is too small", size);
    uint32_t n = nb_get_u32le(data + size - 4);
    if (n == 0 || (uint64_t)n * 4 + 4 > size)
        return NB_CORRUPT("nkv: block has %u restarts for %zu bytes", n, size);
    b->data = (uint8_t *)data;
    b->size = size;
    b->owned = false;
    b->nrestarts = n;
    b->restart_off = (uint32_t)(size - 4 - (size_t)n * 4);
    return 0;
}

int nkv__block_new_ref(const uint8_t *data, size_t size, nkv_block **out)
{
    *out = NULL;
    nkv_block tmp;
    int rc = nkv__block_init_ref(&tmp, data, size);
    if (rc)
        return rc;
    tmp.alloc = sizeof tmp;
    *out = nb_xmalloc(sizeof tmp);
    **out = tmp;
    return 0;
}

bool nkv__block_restart_each(const nkv_block *b)
{
    const uint8_t *base = b->data, *p = base, *end = base + b->restart_off;
    uint32_t i = 0;
    while (p < end) {
        if (i >= b->nrestarts || nb_get_u32le(base + b->restart_off + 4 * (size_t)i) != p - base)
            return false;
        uint64_t a, k, v;
        if (!(p = nb_varint_decode(p, end, &a)) || !(p = nb_varint_decode(p, end, &k)) ||
            !(p = nb_varint_decode(p, end, &v)) || a != 0 || (uint64_t)(end - p) < k + v)
            return false;
        p += k + v;
        i++;
    }
    return i == b->nrestarts;
}

void nkv__block_free(nkv_block *b)
{
    if (!b)
        return;
    if (b->owned)
        free(b->data);
    nkv__lfree(b, b->alloc);
}

typedef nkv_block_it block_it;

static inline int bcmp_keys(block_it *it, nb_slice a, nb_slice b)
{
    return it->icmp ? nkv__icmp(a, b) : nkv__ucmp(a, b);
}

static inline uint32_t restart_at(block_it *it, uint32_t i)
{
    return nb_get_u32le(it->b->data + it->b->restart_off + 4 * (size_t)i);
}

static inline const uint8_t *decode_entry(const uint8_t *p, const uint8_t *end, uint32_t *shared,
                                          uint32_t *unshared, uint32_t *vlen)
{
    if (end - p < 3)
        return NULL;
    if ((p[0] | p[1] | p[2]) < 128) {
        *shared = p[0];
        *unshared = p[1];
        *vlen = p[2];
        p += 3;
    } else {
        uint64_t a, b, c;
        if (!(p = nb_varint_decode(p, end, &a)) || !(p = nb_varint_decode(p, end, &b)) ||
            !(p = nb_varint_decode(p, end, &c)))
            return NULL;
        if (a > UINT32_MAX || b > UINT32_MAX || c > UINT32_MAX)
            return NULL;
        *shared = (uint32_t)a;
        *unshared = (uint32_t)b;
        *vlen = (uint32_t)c;
    }
    if ((uint64_t)(end - p) < (uint64_t)*unshared + *vlen)
        return NULL;
    return p;
}

static void bi_corrupt(block_it *it)
{
    it->status = NB_CORRUPT("nkv: bad entry in block at offset %u", it->cur);
    it->cur = it->next = it->b->restart_off;
    it->ridx = it->b->nrestarts;
}

static void grow_key(block_it *it, size_t need)
{
    size_t cap = it->kcap * 2 > need ? it->kcap * 2 : need;
    uint8_t *k = nb_xmalloc(cap);
    memcpy(k, it->key, it->klen);
    if (it->key != it->kin)
        free(it->key);
    it->key = k;
    it->kcap = (uint32_t)cap;
}

/* Parses the entry at it->next into key/val; false at the end. */
static bool parse_next(block_it *it)
{
    it->cur = it->next;
    const uint8_t *base = it->b->data;
    const uint8_t *p = base + it->cur, *end = base + it->b->restart_off;
    if (p >= end) {
        it->cur = it->next = it->b->restart_off;
        it->ridx = it->b->nrestarts;
        return false;
    }
    uint32_t shared, unshared, vlen;
    p = decode_entry(p, end, &shared, &unshared, &vlen);
    if (!p || it->klen < shared) {
        bi_corrupt(it);
        return false;
    }
    if ((size_t)shared + unshared > it->kcap)
        grow_key(it, (size_t)shared + unshared);
    memcpy(it->key + shared, p, unshared);
    it->klen = shared + unshared;
    it->val = nb_slice_of(p + unshared, vlen);
    it->next = (uint32_t)(p + unshared + vlen - base);
    while (it->ridx + 1 < it->b->nrestarts && restart_at(it, it->ridx + 1) <= it->cur)
        it->ridx++;
    return true;
}

static void seek_restart(block_it *it, uint32_t idx)
{
    it->klen = 0;
    it->ridx = idx;
    it->next = restart_at(it, idx);
}

static bool bl_valid(nkv__it *i)
{
    block_it *it = (block_it *)i;
    return it->cur < it->b->restart_off;
}
static void bl_first(nkv__it *i)
{
    block_it *it = (block_it *)i;
    seek_restart(it, 0);
    parse_next(it);
}
static void bl_last(nkv__it *i)
{
    block_it *it = (block_it *)i;
    seek_restart(it, it->b->nrestarts - 1);
    while (parse_next(it) && it->next < it->b->restart_off) {
    }
}
static void bl_seek(nkv__it *i, nb_slice target)
{
    block_it *it = (block_it *)i;
    uint32_t lo = 0, hi = it->b->nrestarts - 1;
    const uint8_t *base = it->b->data, *end = base + it->b->restart_off;
    while (lo < hi) {
        uint32_t mid = (lo + hi + 1) / 2;
        uint32_t off = restart_at(it, mid);
        uint32_t shared, unshared, vlen;
        const uint8_t *p = off < it->b->restart_off
                               ? decode_entry(base + off, end, &shared, &unshared, &vlen)
                               : NULL;
        if (!p || shared != 0) {
            it->cur = off;
            bi_corrupt(it);
            return;
        }
        if (bcmp_keys(it, nb_slice_of(p, unshared), target) < 0)
            lo = mid;
        else
            hi = mid - 1;
    }
    seek_restart(it, lo);
    while (parse_next(it)) {
        if (bcmp_keys(it, nb_slice_of(it->key, it->klen), target) >= 0)
            return;
    }
}
static void bl_next(nkv__it *i)
{
    parse_next((block_it *)i);
}
static void bl_prev(nkv__it *i)
{
    block_it *it = (block_it *)i;
    uint32_t orig = it->cur;
    uint32_t r = it->ridx;
    while (restart_at(it, r) >= orig) {
        if (r == 0) {
            it->cur = it->next = it->b->restart_off;
            it->ridx = it->b->nrestarts;
            return;
        }
        r--;
    }
    seek_restart(it, r);
    while (parse_next(it) && it->next < orig) {
    }
}
static nb_slice bl_key(nkv__it *i)
{
    block_it *it = (block_it *)i;
    return nb_slice_of(it->key, it->klen);
}
static nb_slice bl_val(nkv__it *i)
{
    return ((block_it *)i)->val;
}
static int bl_status(nkv__it *i)
{
    return ((block_it *)i)->status;
}
void nkv__block_iter_fini(nkv_block_it *it)
{
    if (it->release)
        it->release(it->ra, it->rb);
    it->release = NULL;
    if (it->key != it->kin)
        free(it->key);
    it->key = it->kin;
    it->kcap = sizeof it->kin;
}

static void bl_free(nkv__it *i)
{
    nkv__block_iter_fini((block_it *)i);
    free(i);
}

uint32_t nkv__block_iter_restart(nkv__it *i)
{
    return ((block_it *)i)->ridx;
}

static const nkv__it_ops block_ops = {bl_valid, bl_first, bl_last,   bl_seek, bl_next, bl_prev,
                                      bl_key,   bl_val,   bl_status, bl_free, NULL};

void nkv__block_iter_init(nkv_block_it *it, nkv_block *b, bool internal_cmp,
                          nkv__release_fn release, void *a, void *arg)
{
    it->base.ops = &block_ops;
    it->b = b;
    it->icmp = internal_cmp;
    it->cur = it->next = b->restart_off;
    it->ridx = b->nrestarts;
    it->key = it->kin;
    it->klen = 0;
    it->kcap = sizeof it->kin;
    it->val = nb_slice_of(NULL, 0);
    it->status = 0;
    it->release = release;
    it->ra = a;
    it->rb = arg;
}

nkv__it *nkv__block_iter(nkv_block *b, bool internal_cmp, nkv__release_fn release, void *a,
                         void *arg)
{
    block_it *it = nb_xmalloc(sizeof *it);
    nkv__block_iter_init(it, b, internal_cmp, release, a, arg);
    return &it->base;
}

int nkv__block_find(nkv_block *b, nb_slice target, bool icmp, uint8_t *kbuf, size_t kcap,
                    nb_slice *key, nb_slice *val, uint32_t *ord)
{
    const uint8_t *base = b->data, *end = base + b->restart_off;
    uint32_t lo = 0, hi = b->nrestarts - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi + 1) / 2;
        uint32_t off = nb_get_u32le(base + b->restart_off + 4 * (size_t)mid);
        uint32_t shared, unshared, vlen;
        const uint8_t *p =
            off < b->restart_off ? decode_entry(base + off, end, &shared, &unshared, &vlen) : NULL;
        if (!p || shared != 0)
            return NB_CORRUPT("nkv: bad restart entry in block at offset %u", off);
        nb_slice k = nb_slice_of(p, unshared);
        if ((icmp ? nkv__icmp(k, target) : nkv__ucmp(k, target)) < 0)
            lo = mid;
        else
            hi = mid - 1;
    }
    const uint8_t *p = base + nb_get_u32le(base + b->restart_off + 4 * (size_t)lo);
    size_t klen = 0;
    for (uint32_t n = lo; p < end; n++) {
        uint32_t shared, unshared, vlen;
        const uint8_t *q = decode_entry(p, end, &shared, &unshared, &vlen);
        if (!q || shared > klen)
            return NB_CORRUPT("nkv: bad entry in block at offset %zu", (size_t)(p - base));
        if ((size_t)shared + unshared > kcap)
            return 2; /* key too long for the caller's buffer */
        memcpy(kbuf + shared, q, unshared);
        klen = (size_t)shared + unshared;
        nb_slice k = nb_slice_of(kbuf, klen);
        if ((icmp ? nkv__icmp(k, target) : nkv__ucmp(k, target)) >= 0) {
            *key = k;
            *val = nb_slice_of(q + unshared, vlen);
            if (ord)
                *ord = n;
            return 1;
        }
        p = q + unshared + vlen;
    }
    return 0;
}
