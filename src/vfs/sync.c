/*
 * sync.c — durability of file data: ordered write-back with group commit.
 *
 * A close or flush publishes a handle's writes without syncing their
 * blocks (POSIX promises nothing before fsync, and neither does ext4).
 * The order that matters after a power loss — metadata never names a
 * block that did not reach the disk — is kept by a record, not by timing:
 *
 *   1. The handle's slices are written with lazy writers (no fsync).
 *   2. meta_publish(META_PUBLISH_UNSYNCED) writes the chunk maps AND an
 *      unsynced record per slice in one kv batch: whenever the kv makes
 *      the maps durable (a sync, or its own flush at any moment), the
 *      records are durable with them.
 *   3. vfs__sync (fsync, vfs_sync, close of the vfs, or a full list) syncs
 *      the listed slices' blocks, then deletes their records, then syncs
 *      the kv. A record is gone only after its blocks are durable.
 *   4. Recovery (every writable open of the stores, fsck included) reads
 *      every slice still recorded: blocks whose CRCs verify are synced and
 *      the record dropped; a slice with a missing or torn block (possible
 *      only after a power loss) is removed from every chunk map, so the
 *      bytes below it show through (older data or zeros) and no map names
 *      a lost block.
 *
 * Concurrent syncs share the work (group commit): a caller takes a ticket;
 * one leader at a time syncs everything listed and the kv, and every
 * caller whose ticket it covers returns without syncing again.
 */
#include <errno.h>
#include <string.h>

#include "common/common.h"
#include "vfs/vfs_int.h"

/* The list is synced by the publisher itself beyond these bounds (they
 * also bound the work of recovery after a crash). */
#define US_MAX_SLICES 4096
#define US_MAX_BYTES  (256ull << 20)

void vfs__sync_init(vfs *v)
{
    pthread_mutex_init(&v->sync_mu, NULL);
    pthread_cond_init(&v->sync_cv, NULL);
}

void vfs__sync_destroy(vfs *v)
{
    free(v->us_id);
    free(v->us_size);
    pthread_cond_destroy(&v->sync_cv);
    pthread_mutex_destroy(&v->sync_mu);
}

bool vfs__unsynced_add(vfs *v, const uint64_t *ids, const uint64_t *sizes, size_t n)
{
    pthread_mutex_lock(&v->sync_mu);
    if (v->nus + n > v->capus) {
        size_t cap = v->capus ? v->capus : 64;
        while (cap < v->nus + n)
            cap *= 2;
        v->us_id = nb_xrealloc(v->us_id, cap * sizeof(*v->us_id));
        v->us_size = nb_xrealloc(v->us_size, cap * sizeof(*v->us_size));
        v->capus = cap;
    }
    for (size_t i = 0; i < n; i++) {
        v->us_id[v->nus] = ids[i];
        v->us_size[v->nus] = sizes[i];
        v->nus++;
        v->us_bytes += sizes[i];
    }
    bool full = v->nus > US_MAX_SLICES || v->us_bytes > US_MAX_BYTES;
    pthread_mutex_unlock(&v->sync_mu);
    return full;
}

/* Syncs the blocks of ids/sizes, then drops their records. */
static int sync_list(vfs *v, const uint64_t *ids, const uint64_t *sizes, size_t n)
{
    if (n == 0)
        return 0;
    int rc = data_slice_sync(v->ds, ids, sizes, n);
    if (rc == 0)
        rc = meta_unsynced_done(v->m, ids, n);
    return rc;
}

int vfs__sync(vfs *v)
{
    pthread_mutex_lock(&v->sync_mu);
    uint64_t ticket = ++v->sync_req;
    int rc = 0;
    while (v->sync_done < ticket) {
        if (v->sync_busy) {
            pthread_cond_wait(&v->sync_cv, &v->sync_mu);
            continue;
        }
        /* Lead: everything listed and every ticket up to now. */
        v->sync_busy = true;
        uint64_t target = v->sync_req;
        uint64_t *ids = v->us_id, *sizes = v->us_size;
        size_t n = v->nus;
        v->us_id = v->us_size = NULL;
        v->nus = v->capus = 0;
        v->us_bytes = 0;
        pthread_mutex_unlock(&v->sync_mu);
        rc = sync_list(v, ids, sizes, n);
        if (rc == 0)
            rc = meta_sync(v->m);
        pthread_mutex_lock(&v->sync_mu);
        v->sync_busy = false;
        if (rc == 0) {
            if (target > v->sync_done)
                v->sync_done = target;
            free(ids);
            free(sizes);
        } else {
            /* Keep them listed for the next try. */
            pthread_mutex_unlock(&v->sync_mu);
            (void)vfs__unsynced_add(v, ids, sizes, n);
            pthread_mutex_lock(&v->sync_mu);
            free(ids);
            free(sizes);
        }
        pthread_cond_broadcast(&v->sync_cv);
        if (rc != 0)
            break;
    }
    pthread_mutex_unlock(&v->sync_mu);
    return rc;
}

/* ---- Recovery ---------------------------------------------------------------------------- */

/* 0 if every block of the slice is there, whole and verified. */
static int slice_intact(data_store *ds, uint64_t id, uint64_t size)
{
    data_bs *bs = data_store_bs(ds);
    uint32_t nb = data_slice_blocks(size);
    for (uint32_t b = 0; b < nb; b++) {
        data_key k = {.slice_id = id, .block = b};
        uint8_t *buf = NULL;
        size_t len = 0;
        int rc = data_bs_get_all(bs, k, &buf, &len);
        free(buf);
        uint64_t want = size - (uint64_t)b * DATA_BLOCK_SIZE;
        if (want > DATA_BLOCK_SIZE)
            want = DATA_BLOCK_SIZE;
        if (rc == NB_ENOTFOUND || rc == NB_ECHECKSUM || rc == NB_ECORRUPT ||
            (rc == 0 && len != want))
            return NB_ENOTFOUND;
        if (rc != 0)
            return rc;
    }
    return 0;
}

int vfs__recover_unsynced(meta *m, data_store *ds, uint64_t *lost_out)
{
    uint64_t after = 0, lost_n = 0, synced = 0;
    uint64_t *lost = NULL;
    size_t lostcap = 0;
    int rc = 0;
    for (;;) {
        meta_garbage g[256];
        size_t n = 0;
        rc = meta_unsynced_list(m, after, g, NB_ARRAY_LEN(g), &n);
        if (rc != 0 || n == 0)
            break;
        uint64_t ids[256], sizes[256];
        size_t nok = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            int irc = slice_intact(ds, g[i].id, g[i].size);
            if (irc == 0) {
                ids[nok] = g[i].id;
                sizes[nok] = g[i].size;
                nok++;
            } else if (irc == NB_ENOTFOUND) {
                NB_WARN("vfs: slice %llu was published but did not reach the disk before a "
                        "crash; its writes are dropped",
                        (unsigned long long)g[i].id);
                if (lost_n == lostcap) {
                    lostcap = lostcap ? lostcap * 2 : 16;
                    lost = nb_xrealloc(lost, lostcap * sizeof(*lost));
                }
                lost[lost_n++] = g[i].id;
            } else {
                rc = irc;
            }
        }
        if (rc == 0 && nok) {
            rc = data_slice_sync(ds, ids, sizes, nok);
            if (rc == 0)
                rc = meta_unsynced_done(m, ids, nok);
            synced += nok;
        }
        if (rc != 0)
            break;
        after = g[n - 1].id;
    }
    if (rc == 0 && lost_n)
        rc = meta_slices_forget(m, lost, lost_n);
    if (rc == 0 && synced)
        rc = meta_sync(m);
    free(lost);
    if (lost_out)
        *lost_out = lost_n;
    return rc;
}
