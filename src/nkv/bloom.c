/*
 * bloom.c — a cache-line-blocked bloom filter over user keys. Every key
 * sets and tests k bits inside one 64-byte line chosen by its hash, so a
 * lookup touches one cache line.
 *
 *   offset      size       field
 *   0           64*nlines  bit array
 *   64*nlines   1          k (probes per key)
 *   +1          4          nlines (u32 le)
 */
#include <string.h>

#include "nkv_int.h"

static inline uint32_t line_of(uint64_t h, uint32_t nlines)
{
    return (uint32_t)(((h >> 32) * (uint64_t)nlines) >> 32);
}

void nkv__bloom_build(nb_buf *buf, const uint64_t *hashes, size_t n, int bits_per_key)
{
    if (bits_per_key < 1)
        bits_per_key = 1;
    int k = (int)(bits_per_key * 0.62);
    if (k < 1)
        k = 1;
    if (k > 20)
        k = 20;
    uint64_t bits = (uint64_t)n * (uint64_t)bits_per_key;
    uint32_t nlines = (uint32_t)((bits + 511) / 512);
    if (nlines == 0)
        nlines = 1;
    size_t start = buf->len;
    nkv__buf_reserve(buf, (size_t)nlines * 64 + 5); /* mapped when large: free with nkv__buf_free */
    uint8_t *bits_p = buf->data + start;
    memset(bits_p, 0, (size_t)nlines * 64);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = hashes[i];
        uint8_t *line = bits_p + (size_t)line_of(h, nlines) * 64;
        uint32_t a = (uint32_t)h, delta = (a >> 17) | (a << 15);
        for (int j = 0; j < k; j++) {
            uint32_t bit = a & 511;
            line[bit >> 3] |= (uint8_t)(1u << (bit & 7));
            a += delta;
        }
    }
    bits_p[(size_t)nlines * 64] = (uint8_t)k;
    nb_put_u32le(bits_p + (size_t)nlines * 64 + 1, nlines);
    buf->len = start + (size_t)nlines * 64 + 5;
}

bool nkv__bloom_may_match(nb_slice f, uint64_t h)
{
    if (f.len < 5)
        return true;
    uint32_t nlines = nb_get_u32le(f.ptr + f.len - 4);
    int k = f.ptr[f.len - 5];
    if ((uint64_t)nlines * 64 + 5 != f.len || k < 1 || k > 30)
        return true; /* unknown encoding: do not filter */
    const uint8_t *line = f.ptr + (size_t)line_of(h, nlines) * 64;
    uint32_t a = (uint32_t)h, delta = (a >> 17) | (a << 15);
    for (int j = 0; j < k; j++) {
        uint32_t bit = a & 511;
        if (!(line[bit >> 3] & (1u << (bit & 7))))
            return false;
        a += delta;
    }
    return true;
}
