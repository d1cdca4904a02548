/*
 * refs.c — zero-copy reads: a chunk range as a list of (fd, offset,
 * length) pieces that a sender hands to sendfile or maps (docs/data.md
 * §4).
 *
 * Every read checks the bytes it returns. The dir store checks a piece
 * when it hands it out (through a mapping of the block file). The disk
 * store hands pieces out unchecked: the sender maps them, checks the
 * mapping (data_fdref_check, the CRCs of the 64 KiB segments the piece
 * touches) and sends from that mapping. Nothing is remembered as verified
 * between reads: the kernel may drop a page of the page cache and read it
 * back from the device at any time.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "data/data_int.h"

/* Starts reading block k's [off, off+len) from the device: the reads of a
 * large answer's blocks overlap each other and the verification of the
 * ones before (readahead(2) reads exactly the range and returns once the
 * reads are submitted). Stores whose pieces the sender checks (disk)
 * answer from the page cache only (data_chunk_cold), so not there. */
static void read_ahead_block(data_store *s, data_key k, uint32_t off, size_t len)
{
    if (s->bs->ops->check)
        return;
    data_fdref r;
    if (data__bs_read_fd(s->bs, k, off, len, DATA__FD_NOVERIFY, &r) != 0)
        return;
    if (r.len)
        (void)readahead(r.fd, (off_t)r.off, r.len);
    data_fdref_release(s->bs, &r);
}

int data_chunk_refs(data_store *s, const data_slice *slices, size_t n, uint32_t off, size_t len,
                    data_fdref **refs, size_t *nrefs, size_t *cap)
{
    data_piece *pc = NULL;
    size_t npc = 0, first = *nrefs;
    int rc = data_chunk_plan(slices, n, off, len, &pc, &npc);
    /* More than one block: each is verified before the answer starts, one
     * after the other, so start every device read first. */
    for (size_t i = 0; rc == 0 && npc > 1 && i < npc; i++)
        if (pc[i].key.slice_id != 0 && !(pc[i].key.slice_id & DATA_SLICE_INLINE))
            read_ahead_block(s, pc[i].key, pc[i].block_off, pc[i].len);
    for (size_t i = 0; rc == 0 && i < npc; i++) {
        if (*nrefs == *cap) {
            *cap = *cap ? *cap * 2 : 8;
            *refs = nb_xrealloc(*refs, *cap * sizeof **refs);
        }
        data_fdref *r = &(*refs)[*nrefs];
        memset(r, 0, sizeof *r);
        r->fd = -1;
        r->len = pc[i].len;
        if (pc[i].key.slice_id & DATA_SLICE_INLINE) {
            rc = NB_EUSAGE; /* its bytes are the caller's, not in a block: no descriptor */
            break;
        }
        if (pc[i].key.slice_id != 0) {
            rc = data__bs_read_fd(s->bs, pc[i].key, pc[i].block_off, pc[i].len,
                                  DATA__FD_SENDER_CHECKS, r);
            if (rc == 0 && r->len != pc[i].len) {
                data_fdref_release(s->bs, r);
                rc = NB_CORRUPT("block %016llx.%08x: shorter than the chunk map says",
                                (unsigned long long)pc[i].key.slice_id, pc[i].key.block);
            }
            if (rc != 0)
                break;
        }
        (*nrefs)++;
    }
    free(pc);
    if (rc != 0) {
        data_chunk_refs_release(s, *refs + first, *nrefs - first);
        *nrefs = first;
    }
    return rc;
}

void data_chunk_refs_release(data_store *s, data_fdref *refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (refs[i].fd >= 0)
            data_fdref_release(s->bs, &refs[i]);
}

bool data_fdref_check_span(data_store *s, const data_fdref *r, uint64_t *lo, uint64_t *hi)
{
    return r->fd >= 0 && s->bs->ops->check_span && s->bs->ops->check_span(s->bs, r, lo, hi);
}

int data_fdref_check(data_store *s, const data_fdref *r, const void *map, uint64_t map_off,
                     size_t map_len)
{
    if (r->fd < 0 || !s->bs->ops->check)
        return 0;
    int rc = s->bs->ops->check(s->bs, r, map, map_off, map_len);
    if (rc == NB_ECHECKSUM || rc == NB_ECORRUPT)
        atomic_fetch_add(&s->bs->checksum_errors, 1);
    return rc;
}
