/*
 * wal.c — encoding of WAL records (format in disk_format.h).
 */
#include <string.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "common/mem.h"

#include "disk_int.h"

void disk__rec_encode(uint8_t *p, const disk__rec *r)
{
    memset(p, 0, DISK_WAL_REC_SIZE);
    p[4] = r->type;
    p[5] = r->flags;
    nb_put_u64le(p + 8, r->lsn);
    nb_put_u64le(p + 16, r->id.hi);
    nb_put_u64le(p + 24, r->id.lo);
    nb_put_u64le(p + 32, r->off);
    nb_put_u32le(p + 40, r->len);
    nb_put_u32le(p + 44, r->crc);
    nb_put_u32le(p, nb_crc32c_mask(nb_crc32c(0, p + 4, DISK_WAL_REC_SIZE - 4)));
    if (r->type == DISK_REC_PUTD) {
        size_t pad = disk__rec_size(r) - DISK_WAL_REC_SIZE - r->len;
        if (r->len)
            memcpy(p + DISK_WAL_REC_SIZE, r->data, r->len);
        memset(p + DISK_WAL_REC_SIZE + r->len, 0, pad);
    }
}

int disk__rec_decode(const uint8_t *p, disk__rec *r)
{
    if (nb_crc32c_unmask(nb_get_u32le(p)) != nb_crc32c(0, p + 4, DISK_WAL_REC_SIZE - 4))
        return -1;
    if ((p[5] & ~(DISK_REC_END | DISK_REC_NOSYNC)) || p[6] || p[7])
        return -1;
    r->type = p[4];
    r->flags = p[5];
    if (r->type < DISK_REC_PUT || r->type > DISK_REC_SYNC)
        return -1;
    r->data = NULL;
    r->lsn = nb_get_u64le(p + 8);
    r->id.hi = nb_get_u64le(p + 16);
    r->id.lo = nb_get_u64le(p + 24);
    r->off = nb_get_u64le(p + 32);
    r->len = nb_get_u32le(p + 40);
    r->crc = nb_get_u32le(p + 44);
    return 0;
}

char *disk__wal_path(const char *dir, uint64_t seq)
{
    return nb_xasprintf("%s/wal-%016llx.log", dir, (unsigned long long)seq);
}
