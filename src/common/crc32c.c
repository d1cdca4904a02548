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
#include <nmmintrin.h>
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

int nb_crc32c_has_hw(void)
{
    static _Atomic int has = -1;
    int h = atomic_load_explicit(&has, memory_order_relaxed);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        atomic_store_explicit(&has, h, memory_order_relaxed);
    }
    return h;
}
#else
uint32_t nb_crc32c_hw(uint32_t crc, const void *data, size_t n)
{
    return nb_crc32c_sw(crc, data, n);
}

int nb_crc32c_has_hw(void)
{
    return 0;
}
#endif

uint32_t nb_crc32c(uint32_t crc, const void *data, size_t n)
{
    if (nb_crc32c_has_hw())
        return nb_crc32c_hw(crc, data, n);
    return nb_crc32c_sw(crc, data, n);
}
