/* data_test.h — helpers shared by the data tests: a seeded RNG, slice
 * contents that are a pure function of (slice id, offset), and a model of
 * what a chunk read must return. */
#ifndef NB_TESTS_DATA_TEST_H
#define NB_TESTS_DATA_TEST_H

#include "data/data.h"

#include "test.h"

static inline uint64_t dt_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t dt_below(uint64_t *s, uint64_t n)
{
    return n ? dt_rand(s) % n : 0;
}

/* Byte i of slice id. */
static inline uint8_t dt_byte(uint64_t id, uint64_t i)
{
    uint64_t z = id * 0x9E3779B97F4A7C15ull + (i >> 3);
    z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
    z ^= z >> 29;
    return (uint8_t)(z >> (8 * (i & 7)));
}

static inline void dt_fill(uint64_t id, uint64_t off, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = dt_byte(id, off + i);
}

/* What [off, off+len) of the chunk must read as: paint the slices oldest
 * first. */
static inline void dt_model(const data_slice *sl, size_t n, uint32_t off, size_t len, uint8_t *out)
{
    memset(out, 0, len);
    uint64_t end = (uint64_t)off + len;
    for (size_t j = 0; j < n; j++) {
        uint64_t a = sl[j].chunk_off, b = a + sl[j].len;
        if (a < off)
            a = off;
        if (b > end)
            b = end;
        if (a >= b)
            continue;
        if (sl[j].id)
            dt_fill(sl[j].id, sl[j].slice_off + (a - sl[j].chunk_off), out + (a - off), b - a);
        else
            memset(out + (a - off), 0, b - a);
    }
}

/* Writes slice id with len bytes of its generated content. */
static inline int dt_write_slice(data_store *s, uint64_t id, size_t len)
{
    uint8_t *buf = nb_xmalloc(len ? len : 1);
    dt_fill(id, 0, buf, len);
    int rc = data_slice_write(s, id, buf, len);
    free(buf);
    return rc;
}

static inline int dt_soak(void)
{
    const char *e = getenv("NB_SOAK");
    return e && *e && strcmp(e, "0") != 0;
}

static inline int dt_sanitized(void)
{
#ifdef NB_SANITIZED
    return 1;
#else
    return 0;
#endif
}

#endif
