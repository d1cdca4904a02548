/*
 * seg.c — per-segment CRC32Cs of large blobs (format 4).
 *
 * A blob longer than DISK_SEG_SIZE carries a table of one CRC32C per
 * DISK_SEG_SIZE segment in its extent, after the data (disk_format.h). The
 * index and the WAL keep the CRC32C of the whole blob, as before; the
 * table's own check is that the CRCs it holds combine into that one
 * (crc(A || B) = crc(A) * x^(8|B|) mod P xor crc(B), as zlib's
 * crc32_combine), so a range read verifies the table and then only the
 * segments it touches, and no field of a record or checkpoint entry
 * changed.
 */
#include <pthread.h>
#include <string.h>

#include "common/coding.h"
#include "common/crc32c.h"

#include "disk_int.h"

/* Multiplication by x^(8 * DISK_SEG_SIZE), as 4 tables of 256: the step
 * between whole segments, done once per segment. */
static uint32_t seg_shift[4][256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    for (int t = 0; t < 4; t++)
        for (uint32_t i = 0; i < 256; i++)
            seg_shift[t][i] = nb_crc32c_combine(i << (8 * t), 0, DISK_SEG_SIZE);
}

static uint32_t shift_seg(uint32_t c)
{
    return seg_shift[0][c & 0xff] ^ seg_shift[1][(c >> 8) & 0xff] ^ seg_shift[2][(c >> 16) & 0xff] ^
           seg_shift[3][c >> 24];
}

uint32_t disk__seg_whole(const uint32_t *crcs, uint64_t len)
{
    pthread_once(&tables_once, build_tables);
    uint64_t n = disk__seg_count(len);
    if (n == 0)
        return 0;
    uint32_t c = crcs[0];
    for (uint64_t i = 1; i + 1 < n; i++)
        c = shift_seg(c) ^ crcs[i];
    if (n > 1) {
        uint64_t last = len - (n - 1) * DISK_SEG_SIZE;
        c = last == DISK_SEG_SIZE ? shift_seg(c) ^ crcs[n - 1]
                                  : nb_crc32c_combine(c, crcs[n - 1], last);
    }
    return c;
}

uint32_t disk__seg_crcs(const void *data, uint64_t len, uint32_t *crcs)
{
    const uint8_t *p = data;
    uint64_t n = disk__seg_count(len);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t at = i * DISK_SEG_SIZE;
        size_t sl = (size_t)(len - at < DISK_SEG_SIZE ? len - at : DISK_SEG_SIZE);
        crcs[i] = nb_crc32c(0, p + at, sl);
    }
    return disk__seg_whole(crcs, len);
}

uint32_t disk__seg_table(const void *data, uint64_t len, uint8_t *out)
{
    pthread_once(&tables_once, build_tables);
    const uint8_t *p = data;
    uint64_t n = disk__seg_count(len);
    uint32_t c = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t at = i * DISK_SEG_SIZE;
        size_t sl = (size_t)(len - at < DISK_SEG_SIZE ? len - at : DISK_SEG_SIZE);
        uint32_t s = nb_crc32c(0, p + at, sl);
        nb_put_u32le(out + 4 * i, s);
        if (i == 0)
            c = s;
        else if (sl == DISK_SEG_SIZE)
            c = shift_seg(c) ^ s;
        else
            c = nb_crc32c_combine(c, s, sl);
    }
    return c;
}

void disk__seg_encode(uint8_t *out, const uint32_t *crcs, uint64_t len)
{
    uint64_t n = disk__seg_count(len);
    for (uint64_t i = 0; i < n; i++)
        nb_put_u32le(out + 4 * i, crcs[i]);
}

int disk__seg_decode(const uint8_t *in, uint64_t len, uint32_t crc, uint32_t *crcs)
{
    uint64_t n = disk__seg_count(len);
    for (uint64_t i = 0; i < n; i++)
        crcs[i] = nb_get_u32le(in + 4 * i);
    return disk__seg_whole(crcs, len) == crc ? 0 : -1;
}
