/*
 * refs.c — zero-copy reads: a chunk range as a list of (fd, offset,
 * length) pieces that a sender hands to sendfile or maps, each verified by
 * the block store before it is handed out (docs/data.md §4).
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "data/data_int.h"

int data_chunk_refs(data_store *s, const data_slice *slices, size_t n, uint32_t off, size_t len,
                    data_fdref **refs, size_t *nrefs, size_t *cap)
{
    data_piece *pc = NULL;
    size_t npc = 0, first = *nrefs;
    int rc = data_chunk_plan(slices, n, off, len, &pc, &npc);
    for (size_t i = 0; rc == 0 && i < npc; i++) {
        if (*nrefs == *cap) {
            *cap = *cap ? *cap * 2 : 8;
            *refs = nb_xrealloc(*refs, *cap * sizeof **refs);
        }
        data_fdref *r = &(*refs)[*nrefs];
        memset(r, 0, sizeof *r);
        r->fd = -1;
        r->len = pc[i].len;
        if (pc[i].key.slice_id != 0) {
            rc = data_bs_read_fd(s->bs, pc[i].key, pc[i].block_off, pc[i].len, r);
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
