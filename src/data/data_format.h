/*
 * data_format.h — the on-disk format of a block in the `dir` backend. The
 * byte-by-byte description is in docs/data.md; this file and that page
 * must agree.
 *
 *   OFFSET  SIZE  FIELD
 *   0       4     magic "NBLK"
 *   4       2     format version (1), little-endian
 *   6       2     header length H in bytes (this table through hcrc)
 *   8       8     slice id
 *   16      4     block index
 *   20      4     payload length L
 *   24      1     log2 of the segment size (16: 64 KiB segments)
 *   25      3     zero
 *   28      4     number of segments N = ceil(L / segment size)
 *   32      4*N   masked CRC32C of each segment of the payload
 *   32+4N   4     masked CRC32C of bytes [0, 32+4N) (header CRC)
 *   H       L     payload
 *
 * All integers are little-endian. "Masked" is nb_crc32c_mask(). The file's
 * size must be exactly H + L.
 */
#ifndef NB_DATA_DATA_FORMAT_H
#define NB_DATA_DATA_FORMAT_H

#include <stdint.h>

#define DATA_BLK_MAGIC       "NBLK"
#define DATA_BLK_VERSION     1
#define DATA_BLK_FIXED       32 /* header bytes before the segment CRCs */
#define DATA_SEG_SHIFT       16
#define DATA_SEG_SIZE        (1u << DATA_SEG_SHIFT)
#define DATA_BLK_MAX_SEGS    (4u << 20 >> DATA_SEG_SHIFT)
#define DATA_BLK_MAX_HDR     (DATA_BLK_FIXED + 4 * DATA_BLK_MAX_SEGS + 4)
#define DATA_DIR_FORMAT_FILE "data.format"
#define DATA_DIR_FORMAT_TEXT "nebula-data-dir 1\n"

static inline uint32_t data_blk_nsegs(uint32_t len)
{
    return (len + DATA_SEG_SIZE - 1) >> DATA_SEG_SHIFT;
}
static inline uint32_t data_blk_hdr_len(uint32_t len)
{
    return DATA_BLK_FIXED + 4 * data_blk_nsegs(len) + 4;
}

#endif
