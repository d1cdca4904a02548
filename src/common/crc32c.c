/*
 * crc32c.c — CRC-32C (crc32c.h).
 *
 * Reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF
 * (so nb_crc32c(0, "123456789", 9) == 0xE3069283). The portable path is
 * slicing-by-8 over tables built once; the hardware path feeds 8 bytes at a
 * time to the SSE4.2 crc32 instruction, three streams at once.
 */
#include "common/crc32c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t nb_crc32c_sw(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&table_once, build_tables);
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= c;
        c = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
            table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
            table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

/* a * b modulo P (reflected: x^0 is bit 31): the arithmetic that moves a
 * CRC over zero bytes, used for the folding constants and for combining. */
static uint32_t mulmodp(uint32_t a, uint32_t b)
{
    uint32_t m = 1u << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0)
                break;
        }
        m >>= 1;
        b = (b & 1) ? (b >> 1) ^ POLY : b >> 1;
    }
    return p;
}

/* x^n mod P (1 is bit 31). */
static uint32_t xpow(uint64_t n)
{
    uint32_t r = 1u << 31, sq = 1u << 30;
    for (; n; n >>= 1) {
        if (n & 1)
            r = mulmodp(sq, r);
        sq = mulmodp(sq, sq);
    }
    return r;
}

uint32_t nb_crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
    return mulmodp(xpow(8 * len2), crc1) ^ crc2;
}

#if defined(__x86_64__)
/*
 * The crc32 instruction has a latency of 3 cycles and a throughput of 1:
 * runs of 3*STRIPE bytes are checksummed as three independent streams and
 * combined by shifting a stream's CRC over the STRIPE bytes that follow it
 * (multiplying by x^(8*STRIPE) mod P, table-driven), as Mark Adler's
 * crc32c.c and RocksDB's crc32c_3way do.
 */
#define STRIPE_LONG  4096
#define STRIPE_SHORT 256

static uint32_t shift_long[4][256], shift_short[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    for (; vec; vec >>= 1, mat++)
        if (vec & 1)
            sum ^= *mat;
    return sum;
}

static void gf2_square(uint32_t *sq, const uint32_t *mat)
{
    for (int n = 0; n < 32; n++)
        sq[n] = gf2_times(mat, mat[n]);
}

/* Tables applying len (a power of two) zero bytes to a raw CRC. */
static void build_shift(uint32_t t[4][256], size_t len)
{
    uint32_t odd[32], even[32], *op = even;
    odd[0] = POLY; /* one zero bit */
    for (int n = 1; n < 32; n++)
        odd[n] = 1u << (n - 1);
    gf2_square(even, odd); /* two bits */
    gf2_square(odd, even); /* four bits */
    for (;;) {
        gf2_square(even, odd); /* 1, 4, 16 ... bytes */
        op = even;
        if ((len >>= 1) == 0)
            break;
        gf2_square(odd, even); /* 2, 8, 32 ... bytes */
        op = odd;
        if ((len >>= 1) == 0)
            break;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int b = 0; b < 4; b++)
            t[b][n] = gf2_times(op, n << (8 * b));
}

static void build_shifts(void)
{
    build_shift(shift_long, STRIPE_LONG);
    build_shift(shift_short, STRIPE_SHORT);
}

static inline uint32_t shift(uint32_t t[4][256], uint32_t c)
{
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

__attribute__((target("sse4.2"))) static inline uint64_t
crc3(uint64_t c0, const uint8_t **pp, size_t *np, size_t stripe, uint32_t t[4][256])
{
    const uint8_t *p = *pp;
    while (*np >= 3 * stripe) {
        uint64_t c1 = 0, c2 = 0;
        for (const uint8_t *end = p + stripe; p < end; p += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p, 8);
            memcpy(&w1, p + stripe, 8);
            memcpy(&w2, p + 2 * stripe, 8);
            c0 = _mm_crc32_u64(c0, w0);
            c1 = _mm_crc32_u64(c1, w1);
            c2 = _mm_crc32_u64(c2, w2);
        }
        c0 = shift(t, (uint32_t)c0) ^ c1;
        c0 = shift(t, (uint32_t)c0) ^ c2;
        p += 2 * stripe;
        *np -= 3 * stripe;
    }
    *pp = p;
    return c0;
}

__attribute__((target("sse4.2"))) uint32_t nb_crc32c_hw(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        n--;
    }
    if (n >= 3 * STRIPE_SHORT) {
        pthread_once(&shift_once, build_shifts);
        c = crc3(c, &p, &n, STRIPE_LONG, shift_long);
        c = crc3(c, &p, &n, STRIPE_SHORT, shift_short);
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        n -= 8;
    }
    while (n--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

/*
 * Carry-less multiplication mixed with the crc32 instruction (the shape of
 * corsix/fast-crc32's "v4s3x3"): the crc32 instruction and PCLMULQDQ run on
 * different execution units, so a chunk is split into a vector region folded
 * 64 (or 128) bytes at a time by four accumulators and three scalar streams
 * fed to crc32, and the four partial CRCs are combined at the chunk's end.
 *
 * Bit conventions (reflected): a 32-bit CRC value c has x^(31-i) at bit i,
 * a 64-bit word x^(63-i), a 128-bit register x^(127-i). A carry-less product
 * of two 64-bit words is their polynomial product times x. _mm_crc32_u64(0,
 * w) is w(x) * x^32 mod P. From these:
 *  - moving a CRC over n zero bytes is clmul(c, x^(8n-33) mod P) followed by
 *    crc32_u64(0, low 64 bits of the product);
 *  - folding a 128-bit accumulator D bytes forward multiplies its low word
 *    (the high-degree half) by x^(8D+31) and its high word by x^(8D-33).
 * The constants are computed once from these exponents.
 */

/* Iterations per chunk: each moves 64 (xmm) or 128 (ymm) bytes through the
 * accumulators and 3 x 24 bytes through the scalar streams. */
#define ITERS_LONG  80
#define ITERS_SHORT 8
#define SQ          3 /* qwords per scalar stream per iteration */
#define SCALAR_STEP (8 * SQ)
/* Below the smallest chunk (8 x (64 + 72) bytes) the 3-way path serves. */
#define SHORT_MIN (ITERS_SHORT * (64 + 3 * SCALAR_STEP))

struct geo {
    size_t iters, vbytes, klen;
    uint32_t fold_lo, fold_hi; /* fold by the vector step */
    uint32_t sh3, sh2, sh1;    /* move over 3, 2, 1 scalar streams */
};

static struct geo geo_x[2], geo_y[2];
static pthread_once_t geo_once = PTHREAD_ONCE_INIT;

static void geo_init(struct geo *g, size_t iters, size_t vstep)
{
    g->iters = iters;
    g->vbytes = iters * vstep;
    g->klen = iters * SCALAR_STEP;
    g->fold_lo = xpow(8 * vstep + 31);
    g->fold_hi = xpow(8 * vstep - 33);
    g->sh3 = xpow(8 * 3 * g->klen - 33);
    g->sh2 = xpow(8 * 2 * g->klen - 33);
    g->sh1 = xpow(8 * g->klen - 33);
}

static void build_geos(void)
{
    geo_init(&geo_x[0], ITERS_LONG, 64);
    geo_init(&geo_x[1], ITERS_SHORT, 64);
    geo_init(&geo_y[0], ITERS_LONG, 128);
    geo_init(&geo_y[1], ITERS_SHORT, 128);
}

static inline size_t chunk_len(const struct geo *g)
{
    return g->vbytes + 3 * g->klen;
}

__attribute__((target("sse4.2,pclmul"))) static inline uint32_t shift_clmul(uint32_t c, uint32_t k)
{
    __m128i prod = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)c), _mm_cvtsi32_si128((int)k), 0);
    return (uint32_t)_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(prod));
}

__attribute__((target("sse4.2,pclmul"))) static inline uint32_t
combine(const struct geo *g, uint32_t cv, uint64_t c0, uint64_t c1, uint64_t c2)
{
    return shift_clmul(cv, g->sh3) ^ shift_clmul((uint32_t)c0, g->sh2) ^
           shift_clmul((uint32_t)c1, g->sh1) ^ (uint32_t)c2;
}

/* Three qwords of each scalar stream. */
#define SCALAR3(s, k)                                                                              \
    do {                                                                                           \
        for (int j_ = 0; j_ < SQ; j_++) {                                                          \
            uint64_t w0_, w1_, w2_;                                                                \
            memcpy(&w0_, (s) + 8 * j_, 8);                                                         \
            memcpy(&w1_, (s) + (k) + 8 * j_, 8);                                                   \
            memcpy(&w2_, (s) + 2 * (k) + 8 * j_, 8);                                               \
            c0 = _mm_crc32_u64(c0, w0_);                                                           \
            c1 = _mm_crc32_u64(c1, w1_);                                                           \
            c2 = _mm_crc32_u64(c2, w2_);                                                           \
        }                                                                                          \
        (s) += SCALAR_STEP;                                                                        \
    } while (0)

__attribute__((target("sse4.2,pclmul"))) static inline __m128i fold_x(__m128i x, __m128i k,
                                                                      const uint8_t *next)
{
    __m128i lo = _mm_clmulepi64_si128(x, k, 0x00), hi = _mm_clmulepi64_si128(x, k, 0x11);
    return _mm_xor_si128(_mm_xor_si128(lo, hi), _mm_loadu_si128((const __m128i *)next));
}

__attribute__((target("sse4.2"))) static inline uint64_t crc_m128(uint64_t c, __m128i x)
{
    c = _mm_crc32_u64(c, (uint64_t)_mm_cvtsi128_si64(x));
    return _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(x, 1));
}

/* One chunk (chunk_len(g) bytes) with xmm accumulators; returns the raw CRC. */
__attribute__((target("sse4.2,pclmul"))) static uint32_t chunk_x(uint32_t c, const uint8_t *p,
                                                                 const struct geo *g)
{
    const uint8_t *v = p, *s = p + g->vbytes;
    size_t k = g->klen;
    __m128i x0 = _mm_loadu_si128((const __m128i *)v),
            x1 = _mm_loadu_si128((const __m128i *)(v + 16)),
            x2 = _mm_loadu_si128((const __m128i *)(v + 32)),
            x3 = _mm_loadu_si128((const __m128i *)(v + 48));
    __m128i kf = _mm_setr_epi32((int)g->fold_lo, 0, (int)g->fold_hi, 0);
    uint64_t c0 = 0, c1 = 0, c2 = 0;
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)c));
    v += 64;
    for (size_t i = 1; i < g->iters; i++, v += 64) {
        x0 = fold_x(x0, kf, v);
        x1 = fold_x(x1, kf, v + 16);
        x2 = fold_x(x2, kf, v + 32);
        x3 = fold_x(x3, kf, v + 48);
        SCALAR3(s, k);
    }
    SCALAR3(s, k);
    uint64_t cv = crc_m128(crc_m128(crc_m128(crc_m128(0, x0), x1), x2), x3);
    return combine(g, (uint32_t)cv, c0, c1, c2);
}

__attribute__((target("avx2,vpclmulqdq,pclmul,sse4.2"))) static inline __m256i
fold_y(__m256i x, __m256i k, const uint8_t *next)
{
    __m256i lo = _mm256_clmulepi64_epi128(x, k, 0x00), hi = _mm256_clmulepi64_epi128(x, k, 0x11);
    return _mm256_xor_si256(_mm256_xor_si256(lo, hi), _mm256_loadu_si256((const __m256i *)next));
}

__attribute__((target("avx2,sse4.2"))) static inline uint64_t crc_m256(uint64_t c, __m256i x)
{
    return crc_m128(crc_m128(c, _mm256_castsi256_si128(x)), _mm256_extracti128_si256(x, 1));
}

/* The same with ymm accumulators (VPCLMULQDQ): 128 bytes per iteration. */
__attribute__((target("avx2,vpclmulqdq,pclmul,sse4.2"))) static uint32_t
chunk_y(uint32_t c, const uint8_t *p, const struct geo *g)
{
    const uint8_t *v = p, *s = p + g->vbytes;
    size_t k = g->klen;
    __m256i y0 = _mm256_loadu_si256((const __m256i *)v),
            y1 = _mm256_loadu_si256((const __m256i *)(v + 32)),
            y2 = _mm256_loadu_si256((const __m256i *)(v + 64)),
            y3 = _mm256_loadu_si256((const __m256i *)(v + 96));
    __m256i kf = _mm256_setr_epi32((int)g->fold_lo, 0, (int)g->fold_hi, 0, (int)g->fold_lo, 0,
                                   (int)g->fold_hi, 0);
    uint64_t c0 = 0, c1 = 0, c2 = 0;
    y0 = _mm256_xor_si256(y0, _mm256_zextsi128_si256(_mm_cvtsi32_si128((int)c)));
    v += 128;
    for (size_t i = 1; i < g->iters; i++, v += 128) {
        y0 = fold_y(y0, kf, v);
        y1 = fold_y(y1, kf, v + 32);
        y2 = fold_y(y2, kf, v + 64);
        y3 = fold_y(y3, kf, v + 96);
        SCALAR3(s, k);
    }
    SCALAR3(s, k);
    uint64_t cv = crc_m256(crc_m256(crc_m256(crc_m256(0, y0), y1), y2), y3);
    return combine(g, (uint32_t)cv, c0, c1, c2);
}

/* Chunks first, then the 3-way crc32 path for what is left. */
static uint32_t crc_chunked(uint32_t crc, const void *data, size_t n,
                            uint32_t (*chunk)(uint32_t, const uint8_t *, const struct geo *),
                            const struct geo *geos)
{
    const uint8_t *p = data;
    uint32_t c = ~crc;
    pthread_once(&geo_once, build_geos);
    for (int i = 0; i < 2; i++) {
        size_t len = chunk_len(&geos[i]);
        for (; n >= len; p += len, n -= len)
            c = chunk(c, p, &geos[i]);
    }
    return nb_crc32c_hw(~c, p, n);
}

uint32_t nb_crc32c_clmul(uint32_t crc, const void *data, size_t n)
{
    return crc_chunked(crc, data, n, chunk_x, geo_x);
}

uint32_t nb_crc32c_vclmul(uint32_t crc, const void *data, size_t n)
{
    return crc_chunked(crc, data, n, chunk_y, geo_y);
}

/* 0: none, 1: SSE4.2, 2: and PCLMULQDQ, 3: and AVX2 + VPCLMULQDQ. */
static int cpu_level(void)
{
    static _Atomic int level = -1;
    int l = atomic_load_explicit(&level, memory_order_relaxed);
    if (l < 0) {
        __builtin_cpu_init();
        l = 0;
        if (__builtin_cpu_supports("sse4.2")) {
            l = 1;
            if (__builtin_cpu_supports("pclmul")) {
                l = 2;
                if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("vpclmulqdq"))
                    l = 3;
            }
        }
        atomic_store_explicit(&level, l, memory_order_relaxed);
    }
    return l;
}

int nb_crc32c_has_hw(void)
{
    return cpu_level() >= 1;
}

int nb_crc32c_has_clmul(void)
{
    return cpu_level() >= 2;
}

int nb_crc32c_has_vclmul(void)
{
    return cpu_level() >= 3;
}

uint32_t nb_crc32c(uint32_t crc, const void *data, size_t n)
{
    int l = cpu_level();
    if (n < SHORT_MIN || l < 2)
        return l ? nb_crc32c_hw(crc, data, n) : nb_crc32c_sw(crc, data, n);
    return l >= 3 ? nb_crc32c_vclmul(crc, data, n) : nb_crc32c_clmul(crc, data, n);
}
#else
uint32_t nb_crc32c_hw(uint32_t crc, const void *data, size_t n)
{
    return nb_crc32c_sw(crc, data, n);
}

uint32_t nb_crc32c_clmul(uint32_t crc, const void *data, size_t n)
{
    return nb_crc32c_sw(crc, data, n);
}

uint32_t nb_crc32c_vclmul(uint32_t crc, const void *data, size_t n)
{
    return nb_crc32c_sw(crc, data, n);
}

int nb_crc32c_has_hw(void)
{
    return 0;
}

int nb_crc32c_has_clmul(void)
{
    return 0;
}

int nb_crc32c_has_vclmul(void)
{
    return 0;
}

uint32_t nb_crc32c(uint32_t crc, const void *data, size_t n)
{
    return nb_crc32c_sw(crc, data, n);
}
#endif
