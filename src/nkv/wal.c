/*
 * wal.c — the record log under the WAL and the MANIFEST (LevelDB's log
 * format, our code).
 *
 * A log is a sequence of 32 KiB blocks. Each block holds physical records;
 * a logical record that does not fit is split into FIRST, MIDDLE... LAST
 * fragments. Record layout:
 *
 *   offset  size  field
 *   0       4     masked CRC32C of type byte + payload (u32 le)
 *   4       2     payload length (u16 le)
 *   6       1     type: 1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST
 *   7       len   payload
 *
 * A record never straddles a block: when fewer than 7 bytes remain in a
 * block they are written as zeros and skipped by the reader.
 *
 * Recovery rules: a record cut short by the end of the file, a tail of
 * zeros, or a damaged record followed only by zeros (an append torn inside
 * the zeros the env writes ahead of a synced log) is a torn append from a
 * crash and ends the log cleanly. Anything else (a checksum mismatch in the
 * last record of the file, a bad type, damage followed by more data) is
 * corruption, reported with the file name and offset; the reader can then
 * resume at the next block.
 */
#include <stdlib.h>
#include <string.h>

#include "nkv_int.h"

void nkv__wal_writer_init(nkv_wal_writer *w, const nkv_env *env, nkv_file *f, uint64_t size)
{
    w->env = env;
    w->f = f;
    w->size = size;
    w->block_off = size % NKV_WAL_BLOCK;
    nb_buf_init(&w->scratch, 0);
}

int nkv__wal_add(nkv_wal_writer *w, const uint8_t *p, size_t n)
{
    nb_buf_reset(&w->scratch);
    bool begin = true;
    do {
        size_t left = NKV_WAL_BLOCK - w->block_off;
        if (left < NKV_WAL_HEADER) {
            static const uint8_t zeros[NKV_WAL_HEADER];
            NB_ASSERT(nb_buf_append(&w->scratch, zeros, left) == 0);
            w->block_off = 0;
            left = NKV_WAL_BLOCK;
        }
        size_t avail = left - NKV_WAL_HEADER;
        size_t frag = n < avail ? n : avail;
        bool end = frag == n;
        uint8_t type = begin && end ? NKV_REC_FULL
                       : begin      ? NKV_REC_FIRST
                       : end        ? NKV_REC_LAST
                                    : NKV_REC_MIDDLE;
        uint8_t hdr[NKV_WAL_HEADER];
        uint32_t crc = nb_crc32c(0, &type, 1);
        crc = nb_crc32c(crc, p, frag);
        nb_put_u32le(hdr, nb_crc32c_mask(crc));
        nb_put_u16le(hdr + 4, (uint16_t)frag);
        hdr[6] = type;
        NB_ASSERT(nb_buf_append(&w->scratch, hdr, sizeof hdr) == 0);
        NB_ASSERT(nb_buf_append(&w->scratch, p, frag) == 0);
        w->block_off += NKV_WAL_HEADER + frag;
        p += frag;
        n -= frag;
        begin = false;
    } while (n > 0);
    int rc = w->env->append(w->env->ctx, w->f, w->scratch.data, w->scratch.len);
    if (rc == 0)
        w->size += w->scratch.len;
    if (w->scratch.cap > (1u << 20))
        nb_buf_free(&w->scratch);
    return rc;
}

int nkv__wal_sync(nkv_wal_writer *w)
{
    return w->env->sync(w->env->ctx, w->f);
}

int nkv__wal_close(nkv_wal_writer *w)
{
    int rc = 0;
    if (w->f)
        rc = w->env->close(w->env->ctx, w->f);
    w->f = NULL;
    nb_buf_free(&w->scratch);
    return rc;
}

void nkv__wal_reader_init(nkv_wal_reader *r, const uint8_t *data, size_t len, const char *name)
{
    memset(r, 0, sizeof *r);
    r->data = data;
    r->len = len;
    r->name = name;
    nb_buf_init(&r->rec, 0);
}

void nkv__wal_reader_free(nkv_wal_reader *r)
{
    nb_buf_free(&r->rec);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Skips to the next block after damage at `off`; returns the error to
 * report, or 0 when the damage is a torn tail. */
static int damage(nkv_wal_reader *r, size_t off, size_t rec_end, int code, const char *what)
{
    /* A checksum mismatch on a record that is entirely in the file is
     * damage, not a torn append: appends are single writes, so a crash
     * leaves a truncated record, or zeros. */
    bool torn = code != NB_ECHECKSUM && rec_end >= r->len;
    /* The env writes zeros ahead of a log it syncs (env.c): an append torn
     * there leaves the rest of its record as zeros, followed by zeros. */
    if (!torn && rec_end > off && rec_end < r->len)
        torn = all_zero(r->data + rec_end, r->len - rec_end);
    if (torn || all_zero(r->data + off, r->len - off)) {
        r->off = r->len;
        return 0;
    }
    size_t next = (off / NKV_WAL_BLOCK + 1) * NKV_WAL_BLOCK;
    r->dropped += next - off;
    r->off = next < r->len ? next : r->len;
    nb_buf_reset(&r->rec);
    nb__corrupt(__FILE__, __LINE__, "nkv: %s in %s at offset %zu", what, r->name, off);
    return code;
}

int nkv__wal_read(nkv_wal_reader *r, nb_slice *out)
{
    bool in_frag = false;
    size_t frag_start = 0;
    nb_buf_reset(&r->rec);
    for (;;) {
        size_t off = r->off;
        size_t left = NKV_WAL_BLOCK - off % NKV_WAL_BLOCK;
        if (left < NKV_WAL_HEADER) {
            r->off += left;
            continue;
        }
        if (off >= r->len) {
            /* A fragmented record cut by the end of the file is a torn tail. */
            return 0;
        }
        if (off + NKV_WAL_HEADER > r->len) {
            int rc = damage(r, off, r->len, NB_ECORRUPT, "truncated record header");
            if (rc)
                return rc;
            return 0;
        }
        const uint8_t *h = r->data + off;
        uint32_t len = nb_get_u16le(h + 4);
        uint8_t type = h[6];
        size_t end = off + NKV_WAL_HEADER + len;
        if (type == NKV_REC_ZERO && len == 0 && nb_get_u32le(h) == 0) {
            int rc = damage(r, off, off + NKV_WAL_HEADER, NB_ECORRUPT, "zeroed record");
            if (rc)
                return rc;
            return 0;
        }
        if (NKV_WAL_HEADER + len > left) {
            int rc = damage(r, off, end, NB_ECORRUPT, "record crosses its block");
            if (rc)
                return rc;
            return 0;
        }
        if (end > r->len) {
            r->off = r->len;
            return 0; /* torn tail */
        }
        uint32_t crc = nb_crc32c(0, &type, 1);
        crc = nb_crc32c(crc, h + NKV_WAL_HEADER, len);
        if (crc != nb_crc32c_unmask(nb_get_u32le(h))) {
            int rc = damage(r, off, end, NB_ECHECKSUM, "record checksum mismatch");
            if (rc)
                return rc;
            return 0;
        }
        r->off = end;
        const uint8_t *payload = h + NKV_WAL_HEADER;
        switch (type) {
        case NKV_REC_FULL:
            if (in_frag)
                nb__corrupt(__FILE__, __LINE__, "nkv: partial record before %s offset %zu", r->name,
                            off);
            r->last_rec_off = off;
            *out = nb_slice_of(payload, len);
            return 1;
        case NKV_REC_FIRST:
            nb_buf_reset(&r->rec);
            NB_ASSERT(nb_buf_append(&r->rec, payload, len) == 0);
            in_frag = true;
            frag_start = off;
            break;
        case NKV_REC_MIDDLE:
        case NKV_REC_LAST:
            if (!in_frag) {
                r->dropped += end - off;
                nb__corrupt(__FILE__, __LINE__, "nkv: orphan fragment in %s at offset %zu", r->name,
                            off);
                return NB_ECORRUPT;
            }
            NB_ASSERT(nb_buf_append(&r->rec, payload, len) == 0);
            if (type == NKV_REC_LAST) {
                r->last_rec_off = frag_start;
                *out = nb_buf_slice(&r->rec);
                return 1;
            }
            break;
        default: {
            int rc = damage(r, off, end, NB_ECORRUPT, "unknown record type");
            if (rc)
                return rc;
            return 0;
        }
        }
    }
}
