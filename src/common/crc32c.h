/*
 * crc32c.h — CRC-32C (Castagnoli), the checksum on every stored byte.
 *
 * nb_crc32c() uses the SSE4.2 crc32 instruction when the CPU has it and a
 * slicing-by-8 table otherwise; both give identical results and both are
 * tested against the RFC 3720 vectors. Thread-safe.
 */
#ifndef NB_COMMON_CRC32C_H
#define NB_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) with n bytes of data. */
uint32_t nb_crc32c(uint32_t crc, const void *data, size_t n);
/* The portable implementation, always available. */
uint32_t nb_crc32c_sw(uint32_t crc, const void *data, size_t n);
/* The hardware implementation; only call when nb_crc32c_has_hw(). */
uint32_t nb_crc32c_hw(uint32_t crc, const void *data, size_t n);
int nb_crc32c_has_hw(void);

/* A CRC stored next to the data it covers is masked so that a CRC of a
 * string that contains CRCs stays well distributed (LevelDB's crc32c::Mask). */
static inline uint32_t nb_crc32c_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
static inline uint32_t nb_crc32c_unmask(uint32_t masked)
{
    uint32_t rot = masked - 0xa282ead8u;
    return (rot >> 17) | (rot << 15);
}

#endif
