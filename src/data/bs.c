/* bs.c — the block store front: argument checks, statistics, dispatch to the
 * backend's ops table (data_int.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "data/data_int.h"

static void count_error(data_bs *bs, int rc)
{
    if (rc == NB_ECHECKSUM || rc == NB_ECORRUPT)
        atomic_fetch_add(&bs->checksum_errors, 1);
}

/* Counts a read that returned rc and, on success, n bytes. */
static int count_get(data_bs *bs, int rc, size_t n)
{
    if (rc == 0) {
        atomic_fetch_add(&bs->gets, 1);
        atomic_fetch_add(&bs->bytes_read, n);
    }
    count_error(bs, rc);
    return rc;
}

void data_bs_close(data_bs *bs)
{
    if (bs)
        bs->ops->close(bs);
}

const char *data_bs_name(const data_bs *bs)
{
    return bs->ops->name;
}

/* For the crash tests: with $NB_DATA_SYNC_LOG set, every DATA_PUT_NO_SYNC
 * put appends "P id block" before it starts and data_bs_sync_full appends
 * "S id block" once the block is durable, so a test can tell exactly which
 * blocks a power loss could take (those with a P and no S after it). */
static pthread_once_t synclog_once = PTHREAD_ONCE_INIT;
static int synclog_fd = -1;

static void synclog_open(void)
{
    const char *p = getenv("NB_DATA_SYNC_LOG");
    if (p && *p)
        synclog_fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static void synclog(char what, data_key k)
{
    pthread_once(&synclog_once, synclog_open);
    if (synclog_fd < 0)
        return;
    char line[64];
    int n = snprintf(line, sizeof line, "%c %" PRIu64 " %" PRIu32 "\n", what, k.slice_id, k.block);
    if (write(synclog_fd, line, (size_t)n) != n)
        NB_WARN("data: writing the sync log failed");
}

int data_bs_put(data_bs *bs, data_key k, const void *buf, size_t len, unsigned flags)
{
    if (len > DATA_BLOCK_SIZE || (len && !buf) || k.slice_id == 0 ||
        (flags & ~(DATA_PUT_DEFER_SYNC | DATA_PUT_NO_SYNC)))
        return NB_EUSAGE;
    if (flags & DATA_PUT_NO_SYNC)
        synclog('P', k);
    int rc = bs->ops->put(bs, k, buf, len, flags);
    if (rc == 0) {
        atomic_fetch_add(&bs->puts, 1);
        atomic_fetch_add(&bs->bytes_written, len);
    }
    return rc;
}

int data_bs_sync(data_bs *bs, const data_key *keys, size_t n)
{
    if (n == 0)
        return 0;
    return bs->ops->sync(bs, keys, n);
}

int data_bs_sync_full(data_bs *bs, const data_key *keys, size_t n)
{
    if (n == 0)
        return 0;
    int rc = bs->ops->sync_data ? bs->ops->sync_data(bs, keys, n) : 0;
    if (rc == 0)
        rc = bs->ops->sync(bs, keys, n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        synclog('S', keys[i]);
    return rc;
}

int data_bs_get(data_bs *bs, data_key k, uint64_t off, size_t len, void *buf, size_t *got)
{
    *got = 0;
    if (len > DATA_BLOCK_SIZE)
        len = DATA_BLOCK_SIZE;
    if (len == 0)
        return 0;
    int rc = bs->ops->get(bs, k, off, len, buf, got);
    return count_get(bs, rc, *got);
}

int data_bs_get_all(data_bs *bs, data_key k, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int rc = bs->ops->get_all(bs, k, out, len);
    return count_get(bs, rc, *len);
}

int data_bs_stat(data_bs *bs, data_key k, size_t *len)
{
    size_t dummy;
    int rc = bs->ops->stat(bs, k, len ? len : &dummy);
    count_error(bs, rc);
    return rc;
}

int data_bs_delete(data_bs *bs, data_key k)
{
    int rc = bs->ops->del(bs, k);
    if (rc == 0)
        atomic_fetch_add(&bs->deletes, 1);
    return rc;
}

int data__bs_read_fd(data_bs *bs, data_key k, uint64_t off, size_t len, unsigned flags,
                     data_fdref *out)
{
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (!bs->ops->read_fd)
        return -ENOTSUP;
    if (len > DATA_BLOCK_SIZE)
        len = DATA_BLOCK_SIZE;
    int rc = bs->ops->read_fd(bs, k, off, len, flags, out);
    count_error(bs, rc);
    return rc;
}

int data_bs_read_fd(data_bs *bs, data_key k, uint64_t off, size_t len, data_fdref *out)
{
    return data__bs_read_fd(bs, k, off, len, 0, out);
}

void data_fdref_release(data_bs *bs, data_fdref *ref)
{
    if (ref->fd < 0)
        return;
    bs->ops->release_fd(bs, ref);
    ref->fd = -1;
}

int data_bs_iterate(data_bs *bs, data_bs_iter_fn fn, void *arg)
{
    return bs->ops->iterate(bs, fn, arg);
}

int data_bs_stats_get(data_bs *bs, data_bs_stats *out)
{
    memset(out, 0, sizeof *out);
    out->puts = atomic_load(&bs->puts);
    out->gets = atomic_load(&bs->gets);
    out->deletes = atomic_load(&bs->deletes);
    out->bytes_written = atomic_load(&bs->bytes_written);
    out->bytes_read = atomic_load(&bs->bytes_read);
    out->checksum_errors = atomic_load(&bs->checksum_errors);
    if (bs->ops->space)
        return bs->ops->space(bs, &out->capacity_bytes, &out->free_bytes);
    return 0;
}

uint32_t data_slice_blocks(uint64_t len)
{
    return (uint32_t)((len + DATA_BLOCK_SIZE - 1) / DATA_BLOCK_SIZE);
}
