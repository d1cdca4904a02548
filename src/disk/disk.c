/*
 * disk.c — the engine's operations: put, read, delete, refs, group commit
 * and checkpoints. Opening, creating and recovering are in open.c.
 *
 * Group commit (leader/follower, two batches in flight). A writer queues
 * its record under wal_mu and gets the next LSN. If its record is not yet
 * written and fewer than DISK__COMMIT_DEPTH (2) batches are in flight, it
 * becomes a leader: it takes the whole queue and
 *
 *   1. writes the records to the WAL in one pwrite (under wal_mu, so
 *      batches sit in the file in lsn order), the last flagged END;
 *   2. drops the lock and fdatasyncs the data file and the WAL together
 *      (io_uring submits both at once: about one device flush);
 *   3. waits until the previous batch is applied, then applies its own to
 *      the index (a blob becomes visible only once durable), frees the
 *      extents that deletes and overwrites released, advances durable_lsn
 *      and wakes everyone.
 *
 * While one batch syncs, the next can be written and synced, so the data
 * writes of new puts overlap the flush of older ones. With nothing in
 * flight, a new leader first gathers the puts still writing their data.
 *
 * Since the two syncs of a batch race, and two batches sync at once, a
 * crash can leave records of the last two batches on disk without their
 * data. None of those puts was acknowledged, and every record carries its
 * data's CRC32C: recovery checks the data of the final two batches only
 * (never the rest of the data region) and drops the puts whose bytes are
 * not there (open.c, disk_format.h). Every older batch had completed both
 * syncs before the batch two later was written.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/mem.h"

#include "disk_int.h"

static uint64_t n_aus(const disk_env *e, uint64_t len)
{
    uint64_t n = (len + e->au - 1) / e->au;
    return n ? n : 1;
}

static disk__file *file_of(disk_env *e, uint64_t off)
{
    return &e->files[off >> DISK__FILE_SHIFT];
}

/* The extent's AU in its file's allocator (AU 0 of a file is its superblock). */
static uint64_t au_index(const disk_env *e, uint64_t off)
{
    return (off & DISK__LOCAL_MASK) / e->au - 1;
}

static void count(uint64_t *c, uint64_t n)
{
    __atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

int disk__sync(disk_env *e, int fd)
{
    count(&e->n_fsyncs, 1);
    return e->io->sync(e->ioctx, fd);
}

int disk__sync_data(disk_env *e)
{
    int rc = 0;
    for (unsigned i = 0; i < e->n_files && !rc; i++)
        rc = disk__sync(e, e->files[i].fd);
    return rc;
}

/* Frees an extent, or marks it for freeing at its last unpin. Under mu. */
static void release_extent(disk_env *e, uint64_t off, uint32_t len)
{
    uint64_t n = disk__ext_aus(len, e->au);
    disk__ent *p = disk__map_get(&e->pins, off, 0);
    if (p) {
        p->crc = 1;
        p->len = (uint32_t)n;
        return;
    }
    disk__alloc_put(&file_of(e, off)->alloc, au_index(e, off), n);
}

static void pin(disk_env *e, uint64_t off)
{
    disk__ent *p = disk__map_get(&e->pins, off, 0);
    if (p) {
        p->off++;
        return;
    }
    disk__ent n = {.hi = off, .lo = 0, .off = 1, .len = 0, .crc = 0};
    disk__map_put(&e->pins, &n, NULL);
}

static void unpin(disk_env *e, uint64_t off)
{
    pthread_mutex_lock(&e->mu);
    disk__ent *p = disk__map_get(&e->pins, off, 0);
    NB_ASSERT(p && p->off > 0);
    if (p->off > 1) {
        p->off--;
    } else {
        /* The last pin: the count never reaches 0 in the map, where 0
         * marks an empty slot. */
        if (p->crc)
            disk__alloc_put(&file_of(e, off)->alloc, au_index(e, off), p->len);
        disk__map_del(&e->pins, off, 0, NULL);
    }
    pthread_mutex_unlock(&e->mu);
}

void disk__release_deferred(disk_env *e, uint64_t b)
{
    pthread_mutex_lock(&e->mu);
    size_t k = 0;
    for (size_t i = 0; i < e->n_deferred; i++) {
        if (e->deferred[i].hi < b)
            release_extent(e, e->deferred[i].off, e->deferred[i].len);
        else
            e->deferred[k++] = e->deferred[i];
    }
    e->n_deferred = k;
    pthread_mutex_unlock(&e->mu);
}

/* Applies durable records to the index. Under wal_mu; takes mu. */
static void apply(disk_env *e, const disk__rec *r, size_t n)
{
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < n; i++) {
        disk__ent old;
        if (disk__rec_is_put(r[i].type)) {
            disk__ent ent = {r[i].id.hi, r[i].id.lo, r[i].off, r[i].len, r[i].crc};
            if (disk__map_put(&e->index, &ent, &old)) {
                if (r[i].flags & DISK_REC_NOSYNC) {
                    if (e->n_deferred == e->cap_deferred) {
                        e->cap_deferred = e->cap_deferred ? e->cap_deferred * 2 : 16;
                        e->deferred =
                            nb_xrealloc(e->deferred, e->cap_deferred * sizeof *e->deferred);
                    }
                    old.hi = r[i].lsn;
                    e->deferred[e->n_deferred++] = old;
                } else {
                    release_extent(e, old.off, old.len);
                }
                e->bytes_live -= old.len;
            }
            e->bytes_live += r[i].len;
        } else if (r[i].type == DISK_REC_DEL &&
                   disk__map_del(&e->index, r[i].id.hi, r[i].id.lo, &old)) {
            release_extent(e, old.off, old.len);
            e->bytes_live -= old.len;
        }
    }
    pthread_mutex_unlock(&e->mu);
}

#define WAL_BLOCK 4096u

#define COPY_RING_MIN (32u << 10) /* bytes of copies worth a ring round trip */

/* The extent copies of a batch's PUTDs (their bytes through the page
 * cache), made by its leader while the batch's WAL write is in flight. */
typedef struct copy_job {
    disk_env *e;
    const disk__rec *r;
    size_t n;
    int rc;
} copy_job;

static void copy_extents(void *arg)
{
    copy_job *c = arg;
    disk_env *e = c->e;
    for (size_t i = 0; i < c->n && !c->rc; i++) {
        const disk__rec *r = &c->r[i];
        if (r->type != DISK_REC_PUTD || !r->len)
            continue;
        int fd = file_of(e, r->off)->ref_fd;
        uint64_t local = r->off & DISK__LOCAL_MASK;
        /* A copy: io_uring would hand a buffered write to a worker thread. */
        if (e->uring)
            c->rc = disk__io_posix.pwrite(NULL, fd, r->data, r->len, local);
        else
            c->rc = e->io->pwrite(e->ioctx, fd, r->data, r->len, local);
    }
}

/* Writes a batch to the WAL, the last record flagged END. Under wal_mu, so
 * batches land in the file in lsn order. With an O_DIRECT WAL the write
 * starts at the block holding wal_off and rewrites that block's earlier
 * bytes unchanged (kept in wal_tail), so a torn write cannot damage records
 * already there: each sector holds them either way. */
static int write_batch(disk_env *e, disk__rec *r, size_t n)
{
    r[n - 1].flags |= DISK_REC_END;
    size_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += disk__rec_size(&r[i]);
    uint64_t at = e->wal_off;
    size_t head = 0, len = need;
    if (e->wal_direct) {
        at = e->wal_off & ~(uint64_t)(WAL_BLOCK - 1);
        head = (size_t)(e->wal_off - at);
        len = (head + need + WAL_BLOCK - 1) & ~(size_t)(WAL_BLOCK - 1);
    }
    if (len > e->wal_buf_cap) {
        free(e->wal_buf);
        e->wal_buf_cap = len * 2;
        e->wal_buf = nb_xaligned_alloc(WAL_BLOCK, e->wal_buf_cap);
    }
    if (head)
        memcpy(e->wal_buf, e->wal_tail, head);
    uint8_t *p = e->wal_buf + head;
    uint64_t copies = 0; /* bytes to copy to extents */
    for (size_t i = 0; i < n; i++) {
        disk__rec_encode(p, &r[i]);
        p += disk__rec_size(&r[i]);
        if (r[i].type == DISK_REC_PUTD)
            copies += r[i].len;
    }
    if (len > head + need)
        memset(e->wal_buf + head + need, 0, len - head - need);
    int rc = 0;
    while (at + len > e->wal_end && e->wal_zeroing && !e->failed)
        pthread_cond_wait(&e->wal_cv, &e->wal_mu); /* the thread's zeros come first */
    if (at + len <= e->wal_end && e->wal_end - (at + len) < DISK_WAL_STEP / 2 && e->grower_on) {
        /* Half a step left: the background thread writes the next step
         * while this and later batches go on (4 MiB of zeros took a
         * batch's leader milliseconds, every 60 puts of 64 KiB). */
        pthread_mutex_lock(&e->mu);
        if (!e->wal_zero_req) {
            e->wal_zero_req = 1;
            pthread_cond_signal(&e->grow_cv);
        }
        pthread_mutex_unlock(&e->mu);
    }
    if (at + len > e->wal_end) {
        /* Zeros a step ahead: the batch's fdatasync then commits the size
         * change once per DISK_WAL_STEP, not on every append. */
        uint64_t from = (e->wal_end + WAL_BLOCK - 1) & ~(uint64_t)(WAL_BLOCK - 1);
        uint64_t to = (at + len + DISK_WAL_STEP - 1) / DISK_WAL_STEP * DISK_WAL_STEP;
        if (from < at)
            rc = disk__write_zeros(e, e->wal_fd, from, at);
        if (!rc && at + len < to)
            rc = disk__write_zeros(e, e->wal_fd, at + len, to);
        if (rc)
            return rc;
        e->wal_end = to;
    }
    /* The PUTDs' extent copies (until session 6 each put made its own
     * before it queued, in the device's idle time between batches) are
     * made while the WAL write is in flight. They must exist before the
     * batch is applied (readers find them there) and before a disk_sync
     * or a checkpoint syncs the data files for these records. Small
     * copies follow a plain write instead: a few KiB copy in microseconds,
     * less than the ring's submission and wait cost a 4 KiB put (rotated
     * A/B, one thread: 793 against 1,368 puts/s). */
    copy_job cj = {e, r, copies ? n : 0, 0};
    if (copies >= COPY_RING_MIN && e->io->pwrite_fn) {
        rc = e->io->pwrite_fn(e->ioctx, e->wal_fd, e->wal_buf, len, at, copy_extents, &cj);
    } else {
        /* One request: through a ring it would cost a submission and a wait. */
        if (e->uring)
            rc = disk__io_posix.pwrite(NULL, e->wal_fd, e->wal_buf, len, at);
        else
            rc = e->io->pwrite(e->ioctx, e->wal_fd, e->wal_buf, len, at);
        if (!rc)
            copy_extents(&cj);
    }
    for (size_t i = 0; i < n; i++)
        r[i].data = NULL; /* the caller's buffer: not touched after this */
    if (!rc)
        rc = cj.rc;
    if (rc)
        return rc;
    e->wal_off += need;
    if (e->wal_direct) {
        /* A batch that ends exactly on a block boundary leaves an empty
         * tail block: nothing to keep (and wal_buf ends before it). */
        uint64_t tail = e->wal_off & ~(uint64_t)(WAL_BLOCK - 1);
        if (tail - at < len)
            memcpy(e->wal_tail, e->wal_buf + (tail - at), WAL_BLOCK);
        else
            memset(e->wal_tail, 0, WAL_BLOCK);
    }
    return 0;
}

void disk__wal_use(disk_env *e, int fd, int direct, const uint8_t *hdr, uint64_t end)
{
    e->wal_fd = fd;
    e->wal_off = DISK_WAL_HEADER_SIZE;
    e->wal_end = end;
    e->wal_direct = direct;
    if (!e->wal_tail)
        e->wal_tail = nb_xaligned_alloc(WAL_BLOCK, WAL_BLOCK);
    memset(e->wal_tail, 0, WAL_BLOCK);
    memcpy(e->wal_tail, hdr, DISK_WAL_HEADER_SIZE);
}

/* Makes a written batch durable: the data file and the WAL together. No
 * lock held. */
static int sync_batch(disk_env *e, int wal_fd, const disk__rec *r, size_t n)
{
    if (e->opt.no_sync)
        return 0;
    /* The data files the batch's puts wrote, then the WAL, synced two at
     * a time (one io_uring submission each): with one data file, data and
     * WAL together. */
    uint64_t touched[DISK_MAX_FILES / 64] = {0};
    int fds[DISK_MAX_FILES + 1], k = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].type != DISK_REC_PUT)
            continue;
        unsigned f = (unsigned)(r[i].off >> DISK__FILE_SHIFT);
        if (!(touched[f / 64] & (1ull << (f % 64)))) {
            touched[f / 64] |= 1ull << (f % 64);
            fds[k++] = e->files[f].fd;
        }
    }
    fds[k++] = wal_fd;
    int rc = 0;
    for (int i = 0; i < k && !rc; i += 2) {
        if (i + 1 < k) {
            count(&e->n_fsyncs, 2);
            rc = e->io->sync2(e->ioctx, fds[i], fds[i + 1]);
        } else {
            rc = disk__sync(e, fds[i]);
        }
    }
    if (!rc)
        count(&e->n_groups, 1);
    return rc;
}

/* The new leader waits (up to GATHER_NS) for puts that are still writing
 * their data, so that they join this batch instead of paying for a flush of
 * their own: without it, N writers split into two alternating batches of
 * N/2. Under wal_mu. */
#define GATHER_NS (1000 * NB_NS_PER_US)

static void gather(disk_env *e)
{
    /* Only the puts already writing now: later ones would keep a steady
     * stream of writers waiting here for the whole GATHER_NS. */
    uint64_t want = __atomic_load_n(&e->w_started, __ATOMIC_RELAXED);
    /* Puts that ran at once since the last batch started: two threads
     * putting in turn never have their puts queued together (each one's
     * next put starts only after its ack), so without this every put pays
     * its own flush. When there were more than the records queued, wait
     * for them too, but only a part of a sync (what joining saves). */
    uint64_t peers = __atomic_exchange_n(
        &e->peak_puts, __atomic_load_n(&e->in_puts, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
    uint64_t wait_ns = e->sync_avg_ns / 2;
    if (wait_ns > GATHER_NS)
        wait_ns = GATHER_NS;
    int for_peers = peers > 1 && e->n_pending < peers && wait_ns > 0;
    int synced = 0; /* a batch of NOSYNC puts alone is not synced: nothing to share */
    for (size_t i = 0; i < e->n_pending && !synced; i++)
        synced = !(e->pending[i].flags & DISK_REC_NOSYNC);
    for_peers = for_peers && synced;
    int for_started = __atomic_load_n(&e->w_queued, __ATOMIC_RELAXED) < want;
    if (e->opt.no_sync || (!for_started && !for_peers))
        return;
    struct timespec ts = nb_mono_timespec_in(for_started ? GATHER_NS : wait_ns);
    e->gathering = 1;
    while (!e->failed && (__atomic_load_n(&e->w_queued, __ATOMIC_RELAXED) < want ||
                          (for_peers && e->n_pending < peers)))
        if (pthread_cond_timedwait(&e->gather_cv, &e->wal_mu, &ts) != 0)
            break;
    e->gathering = 0;
}

/* Queues *r, waits until it is durable and applied. Returns 0 or the
 * engine's sticky error. */
static int commit(disk_env *e, disk__rec *r)
{
    pthread_mutex_lock(&e->wal_mu);
    if (e->failed) {
        int rc = e->failed;
        if (disk__rec_is_put(r->type))
            __atomic_fetch_add(&e->w_queued, 1, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&e->wal_mu);
        return rc;
    }
    r->lsn = e->next_lsn++;
    if (e->n_pending == e->cap_pending) {
        e->cap_pending = e->cap_pending ? e->cap_pending * 2 : 64;
        e->pending = nb_xrealloc(e->pending, e->cap_pending * sizeof *e->pending);
    }
    e->pending[e->n_pending++] = *r;
    if (r->flags & DISK_REC_NOSYNC)
        e->nosync_lsn = r->lsn;
    if (disk__rec_is_put(r->type))
        __atomic_fetch_add(&e->w_queued, 1, __ATOMIC_RELAXED);
    if (e->gathering)
        pthread_cond_signal(&e->gather_cv);
    disk__rec *batch = NULL;
    size_t batch_cap = 0;
    while (e->durable_lsn < r->lsn && !e->failed) {
        /* Lead a batch when ours is not written yet and the pipeline has
         * room; else wait for a leader to take or finish it. A lone record
         * that needs the WAL alone synced does not start a second batch
         * beside one in flight: its flush would queue behind that one's
         * anyway, and two writers would then alternate, one flush a put.
         * It waits, and leads once that batch is done, gathering the
         * writers coming back from it. */
        int lone = e->inflight > 0 && e->n_pending == 1 && e->pending[0].type != DISK_REC_PUT &&
                   !(e->pending[0].flags & DISK_REC_NOSYNC);
        if (r->lsn <= e->written_lsn || e->starting || e->blocked ||
            e->inflight >= DISK__COMMIT_DEPTH || lone) {
            pthread_cond_wait(&e->wal_cv, &e->wal_mu);
            continue;
        }
        e->starting = 1;
        if (e->inflight == 0)
            gather(e); /* nothing to overlap with: wait for writers instead */
        size_t n = e->n_pending;
        if (n > batch_cap) {
            free(batch);
            batch_cap = n;
            batch = nb_xmalloc(n * sizeof *batch);
        }
        memcpy(batch, e->pending, n * sizeof *batch);
        e->n_pending = 0;
        /* A batch of NOSYNC puts alone is not synced (disk_sync does it). */
        int need_sync = 0;
        for (size_t i = 0; i < n && !need_sync; i++)
            need_sync = !(batch[i].flags & DISK_REC_NOSYNC);
        need_sync = need_sync && !e->opt.no_sync;
        /* The average covers the WAL write and the sync: what a writer that
         * joins the batch saves. */
        uint64_t t0 = need_sync ? nb_mono_ns() : 0;
        int rc = write_batch(e, batch, n);
        int wal_fd = e->wal_fd;
        e->written_lsn = batch[n - 1].lsn;
        e->starting = 0;
        e->inflight++;
        pthread_cond_broadcast(&e->wal_cv); /* the next batch may start */
        pthread_mutex_unlock(&e->wal_mu);
        if (!rc && need_sync)
            rc = sync_batch(e, wal_fd, batch, n);
        pthread_mutex_lock(&e->wal_mu);
        if (!rc && need_sync) /* a moving average, for gather() */
            e->sync_avg_ns = (e->sync_avg_ns * 7 + (nb_mono_ns() - t0)) / 8;
        /* Batches are applied, and so acknowledged, in lsn order. */
        while (!rc && !e->failed && e->durable_lsn + 1 != batch[0].lsn)
            pthread_cond_wait(&e->wal_cv, &e->wal_mu);
        if (rc && !e->failed) {
            NB_ERROR("disk %s: WAL commit failed (%s); refusing further writes", e->dir,
                     nb_strerror(rc));
            e->failed = rc;
        } else if (!rc && !e->failed) {
            apply(e, batch, n);
            e->durable_lsn = batch[n - 1].lsn;
        }
        e->inflight--;
        pthread_cond_broadcast(&e->wal_cv);
    }
    free(batch);
    int rc = e->durable_lsn >= r->lsn ? 0 : e->failed;
    int want_ckpt = !rc && e->wal_off > e->opt.wal_max_bytes;
    /* Past twice the bound the background thread fell behind: the put
     * waits for the checkpoint, so the WAL stays bounded. */
    int must = want_ckpt && e->wal_off / 2 > e->opt.wal_max_bytes;
    pthread_mutex_unlock(&e->wal_mu);
    if (want_ckpt && e->grower_on && !must) {
        /* The background thread writes it: the checkpoint's data sync and
         * file writes (tens of ms) stay out of this put's latency. */
        pthread_mutex_lock(&e->mu);
        if (!e->ckpt_req) {
            e->ckpt_req = 1;
            pthread_cond_signal(&e->grow_cv);
        }
        pthread_mutex_unlock(&e->mu);
    } else if (want_ckpt) {
        if (must) {
            /* Wait for a checkpoint in progress, then look again. */
            pthread_mutex_lock(&e->ckpt_mu);
            pthread_mutex_lock(&e->wal_mu);
            want_ckpt = e->wal_off > e->opt.wal_max_bytes;
            pthread_mutex_unlock(&e->wal_mu);
            pthread_mutex_unlock(&e->ckpt_mu);
        } else if (pthread_mutex_trylock(&e->ckpt_mu) == 0) {
            pthread_mutex_unlock(&e->ckpt_mu);
        } else {
            want_ckpt = 0; /* another put is writing one */
        }
        /* A failed checkpoint leaves the WAL growing but loses nothing;
         * the put itself is durable. */
        int crc = want_ckpt ? disk__checkpoint(e) : 0;
        if (want_ckpt && !crc)
            count(&e->n_ckpts_put, 1);
        if (crc)
            NB_WARN("disk %s: checkpoint failed: %s", e->dir, nb_strerror(crc));
    }
    return rc;
}

int disk__checkpoint(disk_env *e)
{
    pthread_mutex_lock(&e->ckpt_mu);
    pthread_mutex_lock(&e->wal_mu);
    while ((e->starting || e->inflight || e->blocked) && !e->failed)
        pthread_cond_wait(&e->wal_cv, &e->wal_mu);
    if (e->failed) {
        int rc = e->failed;
        pthread_mutex_unlock(&e->wal_mu);
        pthread_mutex_unlock(&e->ckpt_mu);
        return rc;
    }
    e->blocked = 1; /* hold off commits while the WAL file is switched */
    uint64_t old_seq = e->wal_seq, new_seq = old_seq + 1, start = e->durable_lsn + 1;
    pthread_mutex_unlock(&e->wal_mu);

    /* Records up to durable_lsn point at data that must be durable before
     * the checkpoint names them (it already is unless no_sync). */
    int fd = -1, direct = 0;
    uint8_t hdr[DISK_WAL_HEADER_SIZE];
    uint64_t end = 0;
    int rc = disk__sync_data(e);
    /* NOSYNC batches may sit unsynced in the current WAL file: the next
     * file must not exist before they are durable (it starts after them). */
    if (!rc)
        rc = disk__sync(e, e->wal_fd);
    if (!rc)
        rc = disk__wal_create(e, new_seq, start, &fd, &direct, hdr, &end);

    pthread_mutex_lock(&e->wal_mu);
    if (rc) {
        e->blocked = 0;
        pthread_cond_broadcast(&e->wal_cv);
        pthread_mutex_unlock(&e->wal_mu);
        pthread_mutex_unlock(&e->ckpt_mu);
        return rc;
    }
    int old_fd = e->wal_fd;
    disk__wal_use(e, fd, direct, hdr, end);
    e->wal_seq = new_seq;
    pthread_mutex_lock(&e->mu);
    uint64_t data_size = e->files[0].size;
    uint64_t n = e->index.n, k = 0;
    disk__ent *snap = nb_xmalloc((n ? n : 1) * sizeof *snap);
    for (uint64_t i = 0; i < e->index.cap; i++)
        if (e->index.slots[i].off != DISK__EMPTY)
            snap[k++] = e->index.slots[i];
    pthread_mutex_unlock(&e->mu);
    e->blocked = 0;
    pthread_cond_broadcast(&e->wal_cv);
    pthread_mutex_unlock(&e->wal_mu);

    e->io->close(e->ioctx, old_fd); /* synced above */
    if (!rc)
        rc = disk__ckpt_write(e, snap, k, new_seq, start, data_size);
    free(snap);
    if (!rc) {
        /* The previous copy stays the fallback: keep the WAL from it on. */
        disk__wal_retire(e, e->wal_first, e->ckpt_seq);
        if (e->ckpt_seq > e->wal_first)
            e->wal_first = e->ckpt_seq;
        e->ckpt_seq = new_seq;
        count(&e->n_ckpts, 1);
        disk__release_deferred(e, start); /* the checkpoint holds their replacements */
    }
    pthread_mutex_unlock(&e->ckpt_mu);
    return rc;
}

static uint64_t grow_step(const disk_env *e, const disk__file *f);

/* Grows a data file so that a run of n AUs fits, unless another writer
 * grew one since the caller looked (grow_gen moved: it just retries). The
 * smallest file that may grow enough is grown by one step: fallocate, then
 * fsync, so the new size is durable before any extent in it is handed out
 * and a durable record never points past its file's end. NB_ENOSPACE when
 * the capacity or the file systems' reserve leaves no room. */
static int grow(disk_env *e, uint64_t n, uint64_t gen, int in_put)
{
    pthread_mutex_lock(&e->grow_mu);
    pthread_mutex_lock(&e->mu);
    int moved = e->grow_gen != gen;
    pthread_mutex_unlock(&e->mu);
    int rc = moved ? 0 : NB_ENOSPACE;
    unsigned pick = 0;
    uint64_t cur = 0, want = 0;
    for (unsigned i = 0; i < e->n_files && !moved; i++) {
        disk__file *f = &e->files[i]; /* sizes change only under grow_mu */
        uint64_t step = grow_step(e, f);
        if (step < n * e->au)
            step = n * e->au;
        uint64_t limit = disk__file_limit(e, i);
        uint64_t w = (f->size + step) / e->au * e->au;
        if (w > limit)
            w = limit;
        if (w >= f->size + n * e->au && (rc || f->size < cur)) {
            rc = 0;
            pick = i;
            cur = f->size;
            want = w;
        }
    }
    if (!rc && !moved) {
        disk__file *f = &e->files[pick];
        rc = e->io->resize(e->ioctx, f->fd, want);
        if (!rc && e->opt.prefill)
            rc = disk__write_zeros(e, f->fd, cur, want);
        if (!rc)
            rc = disk__sync(e, f->fd);
        if (rc == -ENOSPC || rc == -EDQUOT)
            rc = NB_ENOSPACE;
        if (rc) {
            NB_WARN("disk %s: cannot grow %s from %llu to %llu bytes: %s", e->dir, f->path,
                    (unsigned long long)cur, (unsigned long long)want, nb_strerror(rc));
        } else {
            pthread_mutex_lock(&e->mu);
            disk__alloc_grow(&f->alloc, want / e->au - 1);
            f->size = want;
            e->grow_gen++;
            pthread_mutex_unlock(&e->mu);
            count(&e->n_grows, 1);
            if (in_put)
                count(&e->n_grows_put, 1);
            NB_DEBUG("disk %s: %s grew to %llu bytes", e->dir, f->path, (unsigned long long)want);
        }
    }
    pthread_mutex_unlock(&e->grow_mu);
    return rc;
}

/* The step grow() would add to file f. */
static uint64_t grow_step(const disk_env *e, const disk__file *f)
{
    uint64_t step = e->opt.grow_step;
    if (!step) {
        step = f->size / 4;
        if (step < DISK__GROW_MIN)
            step = DISK__GROW_MIN;
        if (step > DISK__GROW_MAX)
            step = DISK__GROW_MAX;
    }
    return step;
}

/* Whether free space ran low enough for the grower: less than half the
 * step of the smallest file that can grow. Under mu. */
static int space_low(const disk_env *e)
{
    uint64_t free_au = 0, step = 0, smallest = UINT64_MAX;
    for (unsigned i = 0; i < e->n_files; i++) {
        const disk__file *f = &e->files[i];
        free_au += f->alloc.n_au - f->alloc.used;
        if (!f->fixed && f->size < smallest) {
            smallest = f->size;
            step = grow_step(e, f);
        }
    }
    return step && free_au * e->au < step / 2;
}

/* The background thread's share of write_batch's zeros: the next
 * DISK_WAL_STEP past wal_end, written while batches go on below it. Under
 * ckpt_mu, so the WAL file is not switched (and its descriptor closed)
 * meanwhile; wal_zeroing keeps leaders out of the range until wal_end
 * covers it. The batch whose fdatasync follows makes the size durable,
 * as when its leader writes the zeros. */
static void wal_zero_ahead(disk_env *e)
{
    pthread_mutex_lock(&e->ckpt_mu);
    pthread_mutex_lock(&e->wal_mu);
    int fd = e->wal_fd;
    uint64_t from = e->wal_end, to = (from / DISK_WAL_STEP + 1) * DISK_WAL_STEP;
    int go = fd >= 0 && !e->failed && from % WAL_BLOCK == 0 &&
             from - e->wal_off < DISK_WAL_STEP; /* else already done */
    e->wal_zeroing = go;
    pthread_mutex_unlock(&e->wal_mu);
    int rc = go ? disk__write_zeros(e, fd, from, to) : 0;
    pthread_mutex_lock(&e->wal_mu);
    if (go && !rc && e->wal_fd == fd && e->wal_end == from)
        e->wal_end = to;
    e->wal_zeroing = 0;
    pthread_cond_broadcast(&e->wal_cv);
    pthread_mutex_unlock(&e->wal_mu);
    pthread_mutex_unlock(&e->ckpt_mu);
    /* A failure leaves the zeros to the leader, which reports its own. */
    if (rc)
        NB_WARN("disk %s: WAL zeros ahead: %s", e->dir, nb_strerror(rc));
}

static void *grower_main(void *arg)
{
    disk_env *e = arg;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->grow_req && !e->ckpt_req && !e->wal_zero_req && !e->grow_stop)
            pthread_cond_wait(&e->grow_cv, &e->mu);
        if (e->grow_stop)
            break;
        if (e->wal_zero_req) { /* first: a commit may soon wait for it */
            pthread_mutex_unlock(&e->mu);
            wal_zero_ahead(e);
            pthread_mutex_lock(&e->mu);
            e->wal_zero_req = 0;
            continue;
        }
        if (e->ckpt_req) {
            pthread_mutex_unlock(&e->mu); /* ckpt_mu and wal_mu come before mu */
            /* The same checkpoint a put would write (commits go on while
             * it runs); a failure loses nothing, the next request retries. */
            int crc = disk__checkpoint(e);
            if (crc)
                NB_WARN("disk %s: checkpoint failed: %s", e->dir, nb_strerror(crc));
            pthread_mutex_lock(&e->mu);
            e->ckpt_req = 0;
            continue;
        }
        uint64_t gen = e->grow_gen;
        pthread_mutex_unlock(&e->mu);
        /* The same growth a put would do (fallocate, fsync, then the AUs to
         * the allocator), so the same rule holds: nothing in the new part
         * is handed out before the size is durable. */
        int rc = grow(e, 1, gen, 0);
        pthread_mutex_lock(&e->mu);
        if (rc) /* no room (or an error grow() logged): not again until a growth */
            e->grow_fail_gen = e->grow_gen;
        e->grow_req = 0;
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

void disk__grower_start(disk_env *e)
{
    /* Block devices alone never ask for growth (space_low: no step), but
     * their checkpoints still run here. */
    e->grow_fail_gen = UINT64_MAX;
    if (e->opt.read_only || e->opt.io)
        return;
    e->grower_on = pthread_create(&e->grower, NULL, grower_main, e) == 0;
}

void disk__grower_stop(disk_env *e)
{
    if (!e->grower_on)
        return;
    pthread_mutex_lock(&e->mu);
    e->grow_stop = 1;
    pthread_cond_signal(&e->grow_cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->grower, NULL);
    e->grower_on = 0;
}

/* Allocates n AUs in some data file (round robin over the files, so that
 * blobs and their I/O spread), growing one when none has a run. */
static int alloc_extent(disk_env *e, uint64_t n, unsigned *fi, uint64_t *au)
{
    for (;;) {
        pthread_mutex_lock(&e->mu);
        int rc = NB_ENOSPACE;
        for (unsigned k = 0; k < e->n_files && rc == NB_ENOSPACE; k++) {
            unsigned i = (e->next_file + k) % e->n_files;
            rc = disk__alloc_get(&e->files[i].alloc, n, au);
            if (!rc)
                *fi = i;
        }
        if (!rc)
            e->next_file = (*fi + 1) % e->n_files;
        if (!rc && e->grower_on && !e->grow_req && e->grow_fail_gen != e->grow_gen &&
            space_low(e)) {
            e->grow_req = 1; /* grow ahead, while this put goes on */
            pthread_cond_signal(&e->grow_cv);
        }
        uint64_t gen = e->grow_gen;
        pthread_mutex_unlock(&e->mu);
        if (rc != NB_ENOSPACE)
            return rc;
        rc = grow(e, n, gen, 1);
        if (rc)
            return rc;
    }
}

/* A put's checksums, in one pass over the data: the segment table as
 * stored (into table, whose padding is already zero) and the whole blob's
 * CRC32C combined from it when table is set, else the CRC32C alone. */
typedef struct seg_job {
    const void *data;
    uint64_t len;
    uint8_t *table;
    uint32_t *crc;
} seg_job;

static void seg_job_run(void *arg)
{
    seg_job *j = arg;
    *j->crc = j->table ? disk__seg_table(j->data, j->len, j->table) : nb_crc32c(0, j->data, j->len);
}

/* Tables of blobs up to 64 MiB fit one 4 KiB AU: on the put's stack. */
#define TABLE_STACK 4096

int disk_put(disk_env *e, disk_id id, const void *data, size_t len)
{
    return disk_put_flags(e, id, data, len, 0);
}

int disk_put_flags(disk_env *e, disk_id id, const void *data, size_t len, unsigned flags)
{
    if (flags & ~DISK_PUT_NOSYNC)
        return NB_EUSAGE;
    if (e->opt.read_only)
        return NB_EUSAGE;
    if (len > e->opt.max_blob)
        return NB_ETOOBIG;
    uint64_t n = disk__ext_aus(len, e->au), au;
    unsigned fi = 0;
    /* Puts at once, and the most since the last batch began (gather()). */
    uint64_t now = __atomic_add_fetch(&e->in_puts, 1, __ATOMIC_RELAXED);
    uint64_t peak = __atomic_load_n(&e->peak_puts, __ATOMIC_RELAXED);
    while (now > peak && !__atomic_compare_exchange_n(&e->peak_puts, &peak, now, 1,
                                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    int rc = alloc_extent(e, n, &fi, &au);
    if (rc) {
        __atomic_sub_fetch(&e->in_puts, 1, __ATOMIC_RELAXED);
        return rc;
    }
    disk__file *f = &e->files[fi];
    uint64_t local = (au + 1) * e->au;
    uint64_t off = ((uint64_t)fi << DISK__FILE_SHIFT) | local;
    uint32_t crc = 0;

    /* Small puts carry their data in the WAL record (PUTD): the batch then
     * syncs the WAL alone. Their extent is written through the page cache
     * (a copy, no device write in the put's path) by the batch's leader
     * while the WAL write is in flight (write_batch); the next checkpoint
     * syncs it, and recovery rewrites it from the WAL when it did not. */
    int inl = len <= e->opt.inline_max && len <= DISK_SEG_SIZE; /* a PUTD has no table */
    /* Over DISK_SEG_SIZE: a CRC per segment, stored after the data. */
    uint64_t tbytes = inl ? 0 : disk__table_bytes(len);
    uint64_t dsz = n_aus(e, len) * e->au; /* the data's AUs; the table's follow */
    size_t tsz = tbytes ? (size_t)((n * e->au) - dsz) : 0;
    __atomic_fetch_add(&e->w_started, 1, __ATOMIC_RELAXED); /* commit() counts it queued */
    size_t wlen = len;
    const void *src = data;
    void *bounce = NULL;
    _Alignas(4096) uint8_t tstack[TABLE_STACK];
    uint8_t *table = NULL, *theap = NULL;
    int fd = f->fd;
    /* O_DIRECT wants aligned memory and whole blocks: bounce through an
     * aligned, zero-padded copy unless the caller's buffer already is. The
     * copy holds the table's AUs too, so data and table are one buffer. */
    if (!inl && f->direct && (((uintptr_t)data & 4095) || len % e->au || len == 0)) {
        wlen = (size_t)dsz;
        bounce = nb_xaligned_alloc(4096, wlen + tsz);
        memcpy(bounce, data, len);
        memset((uint8_t *)bounce + len, 0, wlen - len + tsz);
        src = bounce;
        table = tbytes ? (uint8_t *)bounce + wlen : NULL;
    } else if (tbytes) {
        table = tsz <= TABLE_STACK ? tstack : (theap = nb_xaligned_alloc(4096, tsz));
        memset(table, 0, tsz);
    }
    seg_job sj = {data, len, table, &crc};
    /* A direct write is checksummed while the device works on it; the
     * table then goes out beside the data, both in flight at once. */
    if (inl) {
        seg_job_run(&sj);
        rc = 0; /* the batch's leader copies it (write_batch) */
    } else if (tbytes && e->io->pwrite_fn2) {
        rc = e->io->pwrite_fn2(e->ioctx, fd, src, wlen, local, seg_job_run, &sj, table, tsz,
                               local + dsz);
    } else if (tbytes) {
        seg_job_run(&sj);
        if (bounce) /* data and table in one write */
            rc = e->io->pwrite(e->ioctx, fd, src, wlen + tsz, local);
        else if (!(rc = e->io->pwrite(e->ioctx, fd, src, wlen, local)))
            rc = e->io->pwrite(e->ioctx, fd, table, tsz, local + dsz);
    } else if (wlen && e->io->pwrite_crc) {
        rc = e->io->pwrite_crc(e->ioctx, fd, src, wlen, local, data, len, &crc);
    } else {
        seg_job_run(&sj);
        if (wlen)
            rc = e->io->pwrite(e->ioctx, fd, src, wlen, local);
    }
    free(theap);
    free(bounce);
    if (!rc) {
        disk__rec r = {.type = inl ? DISK_REC_PUTD : DISK_REC_PUT,
                       .flags = flags & DISK_PUT_NOSYNC ? DISK_REC_NOSYNC : 0,
                       .id = id,
                       .off = off,
                       .len = (uint32_t)len,
                       .crc = crc,
                       .data = inl ? data : NULL};
        rc = commit(e, &r);
        if (!rc && inl)
            count(&e->n_inline, 1);
    } else {
        __atomic_fetch_add(&e->w_queued, 1, __ATOMIC_RELAXED);
    }
    if (rc) {
        /* Never acknowledged: after a restart the extent is free anyway. */
        pthread_mutex_lock(&e->mu);
        disk__alloc_put(&f->alloc, au, n);
        pthread_mutex_unlock(&e->mu);
        __atomic_sub_fetch(&e->in_puts, 1, __ATOMIC_RELAXED);
        return rc;
    }
    count(&e->n_puts, 1);
    __atomic_sub_fetch(&e->in_puts, 1, __ATOMIC_RELAXED);
    return 0;
}

int disk__sync_all(disk_env *e, int force)
{
    if (e->opt.read_only)
        return 0;
    /* Every PUT below b was queued after its data was written; a PUTD's
     * extent is copied when its batch is written: wait for those batches
     * (else the SYNC record would cover extents the data sync missed). */
    pthread_mutex_lock(&e->wal_mu);
    uint64_t b = e->next_lsn;
    while (e->written_lsn + 1 < b && !e->failed)
        pthread_cond_wait(&e->wal_cv, &e->wal_mu);
    int failed = e->failed;
    int idle = e->nosync_lsn < e->synced_b;
    pthread_mutex_unlock(&e->wal_mu);
    if (failed)
        return failed;
    if (idle && !force)
        return 0; /* no NOSYNC put since the last SYNC record */
    int rc = disk__sync_data(e);
    if (rc)
        return rc;
    disk__rec r = {.type = DISK_REC_SYNC, .off = b};
    rc = commit(e, &r);
    if (!rc) {
        pthread_mutex_lock(&e->wal_mu);
        if (b > e->synced_b)
            e->synced_b = b;
        pthread_mutex_unlock(&e->wal_mu);
        disk__release_deferred(e, b);
    }
    return rc;
}

int disk_sync(disk_env *e)
{
    return disk__sync_all(e, 0);
}

int disk_delete(disk_env *e, disk_id id)
{
    if (e->opt.read_only)
        return NB_EUSAGE;
    pthread_mutex_lock(&e->mu);
    int there = disk__map_get(&e->index, id.hi, id.lo) != NULL;
    pthread_mutex_unlock(&e->mu);
    if (!there)
        return NB_ENOTFOUND;
    disk__rec r = {.type = DISK_REC_DEL, .id = id};
    int rc = commit(e, &r);
    if (!rc)
        count(&e->n_deletes, 1);
    return rc;
}

int disk_exists(disk_env *e, disk_id id, uint64_t *len)
{
    pthread_mutex_lock(&e->mu);
    disk__ent *p = disk__map_get(&e->index, id.hi, id.lo);
    if (p && len)
        *len = p->len;
    pthread_mutex_unlock(&e->mu);
    return p ? 0 : NB_ENOTFOUND;
}

/* Looks id up and pins its extent. */
static int lookup_pin(disk_env *e, disk_id id, disk__ent *out)
{
    pthread_mutex_lock(&e->mu);
    disk__ent *p = disk__map_get(&e->index, id.hi, id.lo);
    if (p) {
        *out = *p;
        pin(e, p->off);
    }
    pthread_mutex_unlock(&e->mu);
    return p ? 0 : NB_ENOTFOUND;
}

/* Reads a whole pinned blob into *buf (owned, aligned; free with free())
 * and verifies it. */
/* Reads a whole pinned blob and verifies it. Into `into` (at least
 * ent->len bytes) when it is given and no bounce is needed (buffered
 * reads); else into *buf (owned, aligned; free with free()). On a checksum
 * mismatch `into` is zeroed: it never keeps wrong bytes. */
static int read_blob(disk_env *e, const disk__ent *ent, uint8_t *into, uint8_t **buf)
{
    *buf = NULL;
    /* Reads go through the page cache (ref_fd) unless direct_reads. */
    disk__file *f = file_of(e, ent->off);
    uint64_t local = ent->off & DISK__LOCAL_MASK;
    int fd = e->opt.direct_reads ? f->fd : f->ref_fd;
    int direct = fd == f->fd && f->direct;
    size_t rlen = direct ? n_aus(e, ent->len) * e->au : ent->len;
    uint8_t *b = into && !direct ? into : nb_xaligned_alloc(4096, rlen ? rlen : 1);
    size_t got = 0;
    int rc = rlen ? e->io->pread(e->ioctx, fd, b, rlen, local, &got) : 0;
    if (!rc && got < ent->len)
        rc = NB_CORRUPT("disk %s: blob %016llx:%016llx at offset %llu of %s: data file ends after "
                        "%zu of %u bytes",
                        e->dir, (unsigned long long)ent->hi, (unsigned long long)ent->lo,
                        (unsigned long long)local, f->path, got, ent->len);
    else if (rc)
        NB_ERROR("disk %s: reading blob %016llx:%016llx at offset %llu of %s: %s", e->dir,
                 (unsigned long long)ent->hi, (unsigned long long)ent->lo,
                 (unsigned long long)local, f->path, nb_strerror(rc));
    uint32_t crc = rc ? 0 : nb_crc32c(0, b, ent->len);
    if (!rc && crc != ent->crc) {
        NB_ERROR("disk %s: blob %016llx:%016llx at offset %llu of %s (%u bytes): checksum "
                 "mismatch (stored %08x, computed %08x)",
                 e->dir, (unsigned long long)ent->hi, (unsigned long long)ent->lo,
                 (unsigned long long)local, f->path, ent->len, ent->crc, crc);
        rc = NB_ECHECKSUM;
    }
    if (b == into) {
        if (rc)
            memset(into, 0, ent->len);
        return rc;
    }
    if (rc)
        free(b);
    else
        *buf = b;
    return rc;
}

/* Reads and checks the segment table of a pinned blob over DISK_SEG_SIZE
 * into crcs[] (disk__seg_count entries). fd as read_blob picks it. On a
 * damaged table crcs is zeroed and the result NB_ECHECKSUM. */
static int read_table(disk_env *e, const disk__ent *ent, int fd, int direct, uint32_t *crcs)
{
    disk__file *f = file_of(e, ent->off);
    uint64_t at = (ent->off & DISK__LOCAL_MASK) + disk__table_at(ent->len, e->au);
    uint64_t tb = disk__table_bytes(ent->len);
    size_t rlen = (size_t)(direct ? (tb + e->au - 1) / e->au * e->au : tb);
    uint8_t *t = nb_xaligned_alloc(4096, rlen);
    size_t got = 0;
    int rc = e->io->pread(e->ioctx, fd, t, rlen, at, &got);
    if (!rc && got < tb)
        rc = NB_CORRUPT("disk %s: blob %016llx:%016llx: its segment table at offset %llu of %s "
                        "is cut short (%zu of %llu bytes)",
                        e->dir, (unsigned long long)ent->hi, (unsigned long long)ent->lo,
                        (unsigned long long)at, f->path, got, (unsigned long long)tb);
    else if (rc)
        NB_ERROR("disk %s: reading the segment table of blob %016llx:%016llx at offset %llu of "
                 "%s: %s",
                 e->dir, (unsigned long long)ent->hi, (unsigned long long)ent->lo,
                 (unsigned long long)at, f->path, nb_strerror(rc));
    if (!rc && disk__seg_decode(t, ent->len, ent->crc, crcs) != 0) {
        NB_ERROR("disk %s: blob %016llx:%016llx: its segment table at offset %llu of %s is "
                 "damaged (its CRCs do not make the blob's %08x)",
                 e->dir, (unsigned long long)ent->hi, (unsigned long long)ent->lo,
                 (unsigned long long)at, f->path, ent->crc);
        rc = NB_ECHECKSUM;
    }
    if (rc)
        memset(crcs, 0, (size_t)disk__seg_count(ent->len) * 4);
    free(t);
    return rc;
}

/* Reads bytes [off, off + n) (n > 0) of a pinned blob that has a segment
 * table into buf, verifying only the segments they touch. On an error buf
 * holds no blob bytes. */
static int read_segs(disk_env *e, const disk__ent *ent, uint64_t off, size_t n, uint8_t *buf)
{
    disk__file *f = file_of(e, ent->off);
    uint64_t local = ent->off & DISK__LOCAL_MASK;
    int fd = e->opt.direct_reads ? f->fd : f->ref_fd;
    int direct = fd == f->fd && f->direct;
    uint32_t *crcs = nb_xmalloc((size_t)disk__seg_count(ent->len) * 4);
    int rc = read_table(e, ent, fd, direct, crcs);
    uint64_t s0 = off / DISK_SEG_SIZE, s1 = (off + n - 1) / DISK_SEG_SIZE;
    uint64_t from = s0 * DISK_SEG_SIZE;
    uint64_t to = (s1 + 1) * DISK_SEG_SIZE < ent->len ? (s1 + 1) * DISK_SEG_SIZE : ent->len;
    size_t span = (size_t)(to - from);
    size_t rlen = direct ? (span + e->au - 1) / e->au * e->au : span;
    /* Segment-aligned ranges land in the caller's buffer directly. */
    uint8_t *b = !direct && from == off && to == off + n ? buf : NULL;
    if (!rc && !b)
        b = nb_xaligned_alloc(4096, rlen);
    size_t got = 0;
    if (!rc)
        rc = e->io->pread(e->ioctx, fd, b, rlen, local + from, &got);
    if (!rc && got < span)
        rc = NB_CORRUPT("disk %s: blob %016llx:%016llx at offset %llu of %s: data file ends after "
                        "%zu of %zu bytes",
                        e->dir, (unsigned long long)ent->hi, (unsigned long long)ent->lo,
                        (unsigned long long)(local + from), f->path, got, span);
    for (uint64_t sg = s0; sg <= s1 && !rc; sg++) {
        uint64_t at = sg * DISK_SEG_SIZE;
        size_t sl = (size_t)(ent->len - at < DISK_SEG_SIZE ? ent->len - at : DISK_SEG_SIZE);
        uint32_t c = nb_crc32c(0, b + (at - from), sl);
        if (c != crcs[sg]) {
            NB_ERROR("disk %s: blob %016llx:%016llx: segment %llu at offset %llu of %s (%zu "
                     "bytes): checksum mismatch (stored %08x, computed %08x)",
                     e->dir, (unsigned long long)ent->hi, (unsigned long long)ent->lo,
                     (unsigned long long)sg, (unsigned long long)(local + at), f->path, sl,
                     crcs[sg], c);
            rc = NB_ECHECKSUM;
        }
    }
    if (b == buf) {
        if (rc)
            memset(buf, 0, n);
    } else if (b) {
        if (!rc)
            memcpy(buf, b + (off - from), n);
        free(b);
    }
    free(crcs);
    return rc;
}

int disk_ref_seg_crcs(disk_env *e, const disk_ref *ref, uint32_t *crcs)
{
    if (ref->len <= DISK_SEG_SIZE) {
        if (ref->len)
            crcs[0] = ref->crc32c;
        return 0;
    }
    disk__file *f = file_of(e, ref->pin);
    int fd = e->opt.direct_reads ? f->fd : f->ref_fd;
    disk__ent ent = {.off = ref->pin, .len = (uint32_t)ref->len, .crc = ref->crc32c};
    return read_table(e, &ent, fd, fd == f->fd && f->direct, crcs);
}

int disk_read(disk_env *e, disk_id id, uint64_t off, size_t len, void *buf, size_t *got)
{
    *got = 0;
    disk__ent ent;
    int rc = lookup_pin(e, id, &ent);
    if (rc)
        return rc;
    if (off > ent.len) {
        unpin(e, ent.off);
        return NB_EUSAGE;
    }
    if (disk__table_bytes(ent.len) && (off > 0 || len < ent.len)) {
        /* A part of a blob with segments: only the segments it touches. */
        size_t n = ent.len - off < len ? (size_t)(ent.len - off) : len;
        rc = n ? read_segs(e, &ent, off, n, buf) : 0;
        unpin(e, ent.off);
        if (rc)
            return rc;
        *got = n;
        count(&e->n_reads, 1);
        return 0;
    }
    /* A whole-blob read lands in the caller's buffer directly. */
    int whole = off == 0 && len >= ent.len;
    uint8_t *b;
    rc = read_blob(e, &ent, whole ? buf : NULL, &b);
    unpin(e, ent.off);
    if (rc)
        return rc;
    size_t n = ent.len - off < len ? (size_t)(ent.len - off) : len;
    if (b) {
        if (n) /* an empty read may come with no buffer */
            memcpy(buf, b + off, n);
        free(b);
    }
    *got = n;
    count(&e->n_reads, 1);
    return 0;
}

int disk_read_ref(disk_env *e, disk_id id, unsigned flags, disk_ref *ref)
{
    memset(ref, 0, sizeof *ref);
    ref->fd = -1;
    disk__ent ent;
    int rc = lookup_pin(e, id, &ent);
    if (rc)
        return rc;
    if (flags & DISK_REF_VERIFY) {
        uint8_t *b;
        rc = read_blob(e, &ent, NULL, &b);
        if (rc) {
            unpin(e, ent.off);
            return rc;
        }
        free(b);
    }
    ref->fd = file_of(e, ent.off)->ref_fd;
    ref->off = ent.off & DISK__LOCAL_MASK;
    ref->len = ent.len;
    ref->crc32c = ent.crc;
    ref->pin = ent.off;
    count(&e->n_reads, 1);
    return 0;
}

void disk_unpin(disk_env *e, disk_ref *ref)
{
    if (!ref || ref->fd < 0)
        return;
    unpin(e, ref->pin);
    ref->fd = -1;
}

int disk_iterate(disk_env *e, disk_iter_fn fn, void *arg)
{
    pthread_mutex_lock(&e->mu);
    uint64_t n = e->index.n, k = 0;
    disk__ent *snap = nb_xmalloc((n ? n : 1) * sizeof *snap);
    for (uint64_t i = 0; i < e->index.cap; i++)
        if (e->index.slots[i].off != DISK__EMPTY)
            snap[k++] = e->index.slots[i];
    pthread_mutex_unlock(&e->mu);
    int rc = 0;
    for (uint64_t i = 0; i < k && !rc; i++)
        rc = fn(arg, (disk_id){snap[i].hi, snap[i].lo}, snap[i].len);
    free(snap);
    return rc;
}

/* Whether data file i lives on the file system of an earlier one. */
static int shares_fs(disk_env *e, unsigned i)
{
    struct stat a, b;
    if (e->opt.io || stat(e->files[i].path, &a) != 0)
        return 0;
    for (unsigned j = 0; j < i; j++)
        if (stat(e->files[j].path, &b) == 0 && a.st_dev == b.st_dev)
            return 1;
    return 0;
}

void disk_stats_get(disk_env *e, disk_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&e->wal_mu);
    st->wal_seq = e->wal_seq;
    st->wal_bytes = e->wal_off;
    st->next_lsn = e->next_lsn;
    pthread_mutex_unlock(&e->wal_mu);
    pthread_mutex_lock(&e->mu);
    st->blobs = e->index.n;
    st->bytes_live = e->bytes_live;
    uint64_t room = 0;
    for (unsigned i = 0; i < e->n_files; i++) {
        disk__file *f = &e->files[i];
        st->bytes_allocated += f->alloc.used * e->au;
        st->region += f->alloc.n_au * e->au;
        uint64_t lf = disk__alloc_largest_free(&f->alloc) * e->au;
        if (lf > st->largest_free)
            st->largest_free = lf;
        /* Files on one file system share its free space: count it once. */
        uint64_t r = disk__file_limit(e, i) - f->size;
        if (e->opt.capacity ? r > room : !shares_fs(e, i))
            room = e->opt.capacity ? r : room + r;
    }
    st->capacity = st->region + room;
    st->bytes_free = st->capacity - st->bytes_allocated;
    st->files = e->n_files;
    st->pinned = e->pins.n;
    pthread_mutex_unlock(&e->mu);
    st->au_size = e->au;
    st->puts = __atomic_load_n(&e->n_puts, __ATOMIC_RELAXED);
    st->reads = __atomic_load_n(&e->n_reads, __ATOMIC_RELAXED);
    st->deletes = __atomic_load_n(&e->n_deletes, __ATOMIC_RELAXED);
    st->inline_puts = __atomic_load_n(&e->n_inline, __ATOMIC_RELAXED);
    st->group_commits = __atomic_load_n(&e->n_groups, __ATOMIC_RELAXED);
    st->fsyncs = __atomic_load_n(&e->n_fsyncs, __ATOMIC_RELAXED);
    st->checkpoints = __atomic_load_n(&e->n_ckpts, __ATOMIC_RELAXED);
    st->checkpoints_in_put = __atomic_load_n(&e->n_ckpts_put, __ATOMIC_RELAXED);
    st->grows = __atomic_load_n(&e->n_grows, __ATOMIC_RELAXED);
    st->grows_in_put = __atomic_load_n(&e->n_grows_put, __ATOMIC_RELAXED);
    st->recovery_ns = e->recovery_ns;
    st->replayed = e->replayed;
    st->dropped = e->dropped;
    st->io_uring = e->uring != NULL;
    st->direct = e->direct;
}

int disk_file_stats_get(disk_env *e, unsigned i, disk_file_stats *st)
{
    memset(st, 0, sizeof *st);
    if (i >= e->n_files)
        return NB_ENOTFOUND;
    disk__file *f = &e->files[i];
    pthread_mutex_lock(&e->mu);
    st->path = f->path;
    st->size = f->size;
    st->bytes_allocated = f->alloc.used * e->au;
    st->largest_free = disk__alloc_largest_free(&f->alloc) * e->au;
    st->block_device = f->fixed;
    st->direct = f->direct;
    pthread_mutex_unlock(&e->mu);
    return 0;
}
