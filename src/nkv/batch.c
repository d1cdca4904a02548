/*
 * batch.c — write batches. A batch is kept in its WAL encoding so that a
 * write appends it to the log without re-encoding:
 *
 *   offset  size  field
 *   0       8     sequence of the first record (u64 le), set at write time
 *   8       4     record count (u32 le)
 *   12      ...   records: type u8 (1 put, 0 delete) | varint klen | key
 *                 | (puts only) varint vlen | value
 */
#include <stdlib.h>
#include <string.h>

#include "nkv_int.h"

static void batch_init_rep(nkv_batch *b)
{
    nb_buf_reset(&b->rep);
    NB_ASSERT(nb_buf_reserve(&b->rep, NKV_BATCH_HEADER) == 0);
    memset(b->rep.data, 0, NKV_BATCH_HEADER);
    b->rep.len = NKV_BATCH_HEADER;
}

int nkv_batch_new(nkv_batch **out)
{
    nkv_batch *b = nb_xcalloc(1, sizeof *b);
    nb_buf_init(&b->rep, 0);
    batch_init_rep(b);
    *out = b;
    return 0;
}

void nkv_batch_free(nkv_batch *b)
{
    if (!b)
        return;
    nb_buf_free(&b->rep);
    free(b);
}

void nkv_batch_clear(nkv_batch *b)
{
    batch_init_rep(b);
}

uint32_t nkv_batch_count(const nkv_batch *b)
{
    return nb_get_u32le(b->rep.data + 8);
}

size_t nkv_batch_size(const nkv_batch *b)
{
    return b->rep.len;
}

static void set_count(nkv_batch *b, uint32_t n)
{
    nb_put_u32le(b->rep.data + 8, n);
}

static int batch_add(nkv_batch *b, int type, const void *k, size_t klen, const void *v, size_t vlen)
{
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return NB_ETOOBIG;
    size_t need = 1 + 2 * NB_VARINT64_MAX + klen + vlen;
    NB_ASSERT(nb_buf_reserve(&b->rep, need) == 0);
    uint8_t *p = b->rep.data + b->rep.len;
    *p++ = (uint8_t)type;
    p = nb_varint_encode(p, klen);
    if (klen)
        memcpy(p, k, klen);
    p += klen;
    if (type == NKV_TYPE_VALUE) {
        p = nb_varint_encode(p, vlen);
        if (vlen)
            memcpy(p, v, vlen);
        p += vlen;
    }
    b->rep.len = (size_t)(p - b->rep.data);
    set_count(b, nkv_batch_count(b) + 1);
    return 0;
}

int nkv_batch_put(nkv_batch *b, const void *key, size_t klen, const void *val, size_t vlen)
{
    return batch_add(b, NKV_TYPE_VALUE, key, klen, val, vlen);
}

int nkv_batch_delete(nkv_batch *b, const void *key, size_t klen)
{
    return batch_add(b, NKV_TYPE_DELETE, key, klen, NULL, 0);
}

void nkv__batch_set_seq(nkv_batch *b, uint64_t seq)
{
    nb_put_u64le(b->rep.data, seq);
}

uint64_t nkv__batch_seq(const nkv_batch *b)
{
    return nb_get_u64le(b->rep.data);
}

void nkv__batch_append(nkv_batch *dst, const nkv_batch *src)
{
    size_t n = src->rep.len - NKV_BATCH_HEADER;
    NB_ASSERT(nb_buf_append(&dst->rep, src->rep.data + NKV_BATCH_HEADER, n) == 0);
    set_count(dst, nkv_batch_count(dst) + nkv_batch_count(src));
}

int nkv__batch_iterate(const uint8_t *rep, size_t len, nkv__batch_fn fn, void *arg)
{
    if (len < NKV_BATCH_HEADER)
        return NB_CORRUPT("nkv: batch of %zu bytes is shorter than its header", len);
    uint64_t seq = nb_get_u64le(rep);
    uint32_t count = nb_get_u32le(rep + 8);
    const uint8_t *p = rep + NKV_BATCH_HEADER, *end = rep + len;
    uint32_t found = 0;
    while (p < end) {
        int type = *p++;
        uint64_t klen, vlen = 0;
        p = nb_varint_decode(p, end, &klen);
        if (!p || klen > (uint64_t)(end - p))
            return NB_CORRUPT("nkv: batch record %u has a bad key length", found);
        nb_slice k = nb_slice_of(p, klen), v = nb_slice_of(NULL, 0);
        p += klen;
        if (type == NKV_TYPE_VALUE) {
            p = nb_varint_decode(p, end, &vlen);
            if (!p || vlen > (uint64_t)(end - p))
                return NB_CORRUPT("nkv: batch record %u has a bad value length", found);
            v = nb_slice_of(p, vlen);
            p += vlen;
        } else if (type != NKV_TYPE_DELETE) {
            return NB_CORRUPT("nkv: batch record %u has unknown type %d", found, type);
        }
        if (fn)
            fn(arg, seq + found, type, k, v);
        found++;
    }
    if (found != count)
        return NB_CORRUPT("nkv: batch header counts %u records, found %u", count, found);
    return 0;
}

static void insert_fn(void *arg, uint64_t seq, int type, nb_slice k, nb_slice v)
{
    nkv__mem_add(arg, seq, type, k, v);
}

int nkv__batch_insert_mem(const uint8_t *rep, size_t len, nkv_mem *m)
{
    return nkv__batch_iterate(rep, len, insert_fn, m);
}
