/*
 * crc32c.h — CRC-32C (Castagnoli), the checksum on every stored byte.
 *
 * nb_crc32c() uses, by what the CPU has: crc32 instruction streams mixed
 * with carry-less multiplication folding (VPCLMULQDQ/AVX2 or PCLMULQDQ) on
 * long inputs, the SSE4.2 crc32 instruction alone, or a slicing-by-8 table.
 * All give identical results and are tested against each other and the
 * RFC 3720 vectors. Thread-safe.
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
/* SSE4.2 crc32 streams mixed with PCLMULQDQ folding (xmm), and the same
 * with VPCLMULQDQ on ymm registers; only call when the has_ function says
 * the CPU has them. nb_crc32c() picks the best one the CPU runs. */
uint32_t nb_crc32c_clmul(uint32_t crc, const void *data, size_t n);
uint32_t nb_crc32c_vclmul(uint32_t crc, const void *data, size_t n);
int nb_crc32c_has_clmul(void);
int nb_crc32c_has_vclmul(void);

/* crc32c(A || B) from crc32c(A), crc32c(B) and |B| (zlib's crc32_combine):
 * crc1 moved over len2 zero bytes, xor crc2. */
uint32_t nb_crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);

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
