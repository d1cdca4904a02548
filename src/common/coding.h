/*
 * coding.h — fixed-width and varint encodings for on-disk and wire formats.
 * Little-endian unless the name says _be (big-endian keys sort as numbers).
 * Decoders take an end pointer and return NULL instead of reading past it.
 */
#ifndef NB_COMMON_CODING_H
#define NB_COMMON_CODING_H

#include <stdint.h>
#include <string.h>

/* The loads below read memory as-is: we build for little-endian CPUs only. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian CPU required");

static inline void nb_put_u16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void nb_put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void nb_put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void nb_put_u32be(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static inline void nb_put_u64be(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static inline uint16_t nb_get_u16le(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t nb_get_u32le(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t nb_get_u64le(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline uint32_t nb_get_u32be(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t nb_get_u64be(const uint8_t *p)
{
    return ((uint64_t)nb_get_u32be(p) << 32) | nb_get_u32be(p + 4);
}

#define NB_VARINT64_MAX 10

/* Writes v as a varint (7 bits per byte, low first) at p; returns the end. */
static inline uint8_t *nb_varint_encode(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}
static inline int nb_varint_len(uint64_t v)
{
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
/* Reads a varint from [p, end); returns the byte after it, or NULL when the
 * input is truncated or longer than 10 bytes. */
static inline const uint8_t *nb_varint_decode(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift <= 63 && p < end; shift += 7) {
        uint64_t b = *p++;
        r |= (b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return p;
        }
    }
    return NULL;
}

#endif
