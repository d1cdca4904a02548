/*
 * disk_int.h — the disk engine's private structures and the helpers shared
 * between its files (prefix disk__). Only src/disk and its tests include it.
 *
 * Locks, always taken in this order:
 *
 *   ckpt_mu   one checkpoint at a time
 *   wal_mu    the commit queue, LSNs, the pipeline state, the WAL file
 *   mu        the index, the allocator, the pins, bytes_live
 *
 * Life of a put:
 *
 *   allocate extent (mu) -> write data (no lock) -> queue record (wal_mu)
 *     -> leader: write batch to WAL (wal_mu), sync data + WAL (no lock)
 *     -> in lsn order: apply batch to the index, free replaced extents
 *        (wal_mu + mu) -> wake the batch's writers
 */
#ifndef NB_DISK_DISK_INT_H
#define NB_DISK_DISK_INT_H

#include <pthread.h>
#include <stdint.h>

#include "disk/disk.h"
#include "disk/disk_format.h"
#include "disk/disk_io.h"

/* ---- index.c: an open-addressing hash map of 128-bit keys ---- */

/* One slot. off == DISK__EMPTY (0: the superblock's offset, never an
 * extent's, and never a pin count) marks a free slot, so a zeroed array is
 * an empty map. In the index the value is
 * (extent offset, length, crc); in the pin map the key is (extent offset,
 * 0), off the pin count, len the extent's AUs and crc 1 when the extent is
 * to be freed at the last unpin. */
typedef struct disk__ent {
    uint64_t hi, lo;
    uint64_t off;
    uint32_t len;
    uint32_t crc;
} disk__ent;

#define DISK__EMPTY 0

typedef struct disk__map {
    disk__ent *slots;
    uint64_t cap; /* a power of two */
    uint64_t n;
} disk__map;

void disk__map_init(disk__map *m, uint64_t expect);
void disk__map_free(disk__map *m);
/* Returns the slot holding key, or NULL. Valid until the next change. */
disk__ent *disk__map_get(const disk__map *m, uint64_t hi, uint64_t lo);
/* Inserts or replaces e; when it replaced, copies the old slot to *old
 * (may be NULL) and returns 1, else 0. */
int disk__map_put(disk__map *m, const disk__ent *e, disk__ent *old);
/* Removes key; copies it to *old (may be NULL). Returns 1 if it was there. */
int disk__map_del(disk__map *m, uint64_t hi, uint64_t lo, disk__ent *old);

/* ---- alloc.c: a bitmap of allocation units with two next-fit cursors ---- */

typedef struct disk__alloc {
    uint64_t *bits; /* 1 = in use */
    uint64_t n_au;  /* AUs in the data region */
    uint64_t used;  /* AUs in use */
    uint64_t cursor_small, cursor_large;
} disk__alloc;

/* Group commit batches that may be in flight (written, being synced) at
 * once. Recovery checks the data of this many final batches. */
#define DISK__COMMIT_DEPTH 2

/* The data file's smallest growth step, and its default initial size. */
#define DISK__GROW_MIN (16ull << 20)
#define DISK__GROW_MAX (1ull << 30)

/* Allocations of at least this many AUs start from the large cursor. */
#define DISK__LARGE_AUS 16u

void disk__alloc_init(disk__alloc *a, uint64_t n_au);
void disk__alloc_free_all(disk__alloc *a);
/* Finds n free contiguous AUs, marks them used, sets *au. NB_ENOSPACE. */
int disk__alloc_get(disk__alloc *a, uint64_t n, uint64_t *au);
void disk__alloc_put(disk__alloc *a, uint64_t au, uint64_t n);
/* Extends the region to n_au AUs (>= the current count), the new ones free. */
void disk__alloc_grow(disk__alloc *a, uint64_t n_au);
/* Marks [au, au+n) used; NB_ECORRUPT if out of range or any is in use. */
int disk__alloc_mark(disk__alloc *a, uint64_t au, uint64_t n);
uint64_t disk__alloc_largest_free(const disk__alloc *a);

/* ---- io_uring.c ---- */

typedef struct disk__uring disk__uring;
/* Builds the io_uring I/O table (pread/pwrite through a pool of rings, the
 * rest as disk__io_posix). Returns 0 or -errno when the kernel refuses. */
int disk__uring_new(disk__uring **out, const disk_io_ops **ops);
void disk__uring_free(disk__uring *u);

/* ---- wal.c: records and files ---- */

typedef struct disk__rec {
    uint8_t type;
    uint8_t flags; /* DISK_REC_END on the last record of a batch, DISK_REC_NOSYNC */
    uint64_t lsn;
    disk_id id;
    uint64_t off;
    uint32_t len;
    uint32_t crc;
    const uint8_t *data; /* PUTD: the blob's bytes (borrowed), else NULL */
} disk__rec;

static inline int disk__rec_is_put(uint8_t type)
{
    return type == DISK_REC_PUT || type == DISK_REC_PUTD;
}

/* Bytes a record takes in the WAL: 48, plus for PUTD its data padded. */
static inline size_t disk__rec_size(const disk__rec *r)
{
    if (r->type != DISK_REC_PUTD)
        return DISK_WAL_REC_SIZE;
    return DISK_WAL_REC_SIZE +
           (((size_t)r->len + DISK_WAL_ALIGN - 1) & ~(size_t)(DISK_WAL_ALIGN - 1));
}

/* Encodes the record's header, and a PUTD's data and padding after it
 * (disk__rec_size(r) bytes). */
void disk__rec_encode(uint8_t *p, const disk__rec *r);
/* Returns 0 when p holds a valid record header, else -1 (a PUTD's data is
 * not looked at; r->data stays NULL). */
int disk__rec_decode(const uint8_t *p, disk__rec *r);
char *disk__wal_path(const char *dir, uint64_t seq);
/* DIR/CHECKPOINT (slot 0) or DIR/CHECKPOINT.1 (slot 1); owned. */
char *disk__ckpt_path(const char *dir, int slot);

/* ---- seg.c: per-segment CRC32Cs of blobs over DISK_SEG_SIZE (format 4) ---- */

static inline uint64_t disk__seg_count(uint64_t len)
{
    return (len + DISK_SEG_SIZE - 1) / DISK_SEG_SIZE;
}

/* Bytes of the blob's segment table (0: the blob has none). */
static inline uint64_t disk__table_bytes(uint64_t len)
{
    return len > DISK_SEG_SIZE ? 4 * disk__seg_count(len) : 0;
}

/* Where the table starts in the extent: the first AU after the data. */
static inline uint64_t disk__table_at(uint64_t len, uint32_t au)
{
    return (len + au - 1) / au * au;
}

/* AUs of a blob's extent: its data, then its table (at least one AU). */
static inline uint64_t disk__ext_aus(uint64_t len, uint32_t au)
{
    uint64_t n = (len + au - 1) / au + (disk__table_bytes(len) + au - 1) / au;
    return n ? n : 1;
}

/* The CRC32C of a blob of len bytes from its segments' CRCs. */
uint32_t disk__seg_whole(const uint32_t *crcs, uint64_t len);
/* Fills crcs[] with the CRC32C of each segment; returns the whole blob's. */
uint32_t disk__seg_crcs(const void *data, uint64_t len, uint32_t *crcs);
/* One pass over the data: writes the table as stored (disk__table_bytes
 * bytes at out) and returns the whole blob's CRC32C, combined from it. */
uint32_t disk__seg_table(const void *data, uint64_t len, uint8_t *out);
/* The table as stored: disk__table_bytes(len) bytes, little-endian. */
void disk__seg_encode(uint8_t *out, const uint32_t *crcs, uint64_t len);
/* Decodes a stored table into crcs[]; 0 when its CRCs combine into crc
 * (the whole blob's, from the index), else -1. */
int disk__seg_decode(const uint8_t *in, uint64_t len, uint32_t crc, uint32_t *crcs);

/* ---- disk.c and open.c ---- */

/* fdatasync through the I/O table, counted in the stats. */
int disk__sync(disk_env *e, int fd);
/* Switches to a new WAL file, writes the index as a checkpoint and removes
 * the WAL files it covers. Returns 0 or the error (nothing lost). */
int disk__checkpoint(disk_env *e);
/* Creates WAL file seq (replacing any) with its header, durable. *fd is
 * opened with O_DIRECT when the data file is and the file system allows
 * (then *direct = 1); hdr receives the header's 64 bytes, *end the bytes
 * already written (header and zeros) from the start of the file. */
int disk__wal_create(disk_env *e, uint64_t seq, uint64_t start_lsn, int *fd, int *direct,
                     uint8_t *hdr, uint64_t *end);
/* Makes fd the current WAL file, its records starting after the header.
 * Under wal_mu (or before the engine is shared). */
void disk__wal_use(disk_env *e, int fd, int direct, const uint8_t *hdr, uint64_t end);
/* Writes zeros to [from, to) of fd through the I/O table. */
int disk__write_zeros(disk_env *e, int fd, uint64_t from, uint64_t to);
/* How large data file i may grow: a block device not at all; else
 * opt.capacity (rounded to the AU) minus the other files, or without a
 * capacity its size now plus what its file system can give beyond the
 * reserve. Under grow_mu or mu (reads the sizes). */
uint64_t disk__file_limit(disk_env *e, unsigned i);
/* disk_sync(); with force also when no NOSYNC put happened since the
 * last SYNC record (disk_close: so the next open restores nothing). */
int disk__sync_all(disk_env *e, int force);
/* Frees the extents NOSYNC puts below lsn b replaced. Takes mu. */
void disk__release_deferred(disk_env *e, uint64_t b);
/* Starts the background thread: it grows a data file while puts still
 * find room (when less than half a growth step is free), so that growth
 * is rarely in a put's path, and writes the checkpoints that commits ask
 * for. Not for read-only engines or a custom I/O table (the power-loss
 * tests count I/O operations): there puts do both themselves. Stopped by
 * disk__grower_stop (disk_close). */
void disk__grower_start(disk_env *e);
void disk__grower_stop(disk_env *e);
/* fdatasyncs every data file. */
int disk__sync_data(disk_env *e);
/* Removes WAL files [from, to), keeping the newest as the spare. */
void disk__wal_retire(disk_env *e, uint64_t from, uint64_t to);
/* Writes the checkpoint atomically (temporary file, sync, rename, dir
 * sync) over the older of the two copies, which becomes the newest. */
int disk__ckpt_write(disk_env *e, const disk__ent *ents, uint64_t n, uint64_t wal_seq,
                     uint64_t next_lsn, uint64_t data_size);

/* ---- the engine ---- */

/* An extent's offset: the data file's index in the top bits, the byte
 * offset in that file below. With one file it is the plain byte offset. */
#define DISK__FILE_SHIFT 48
#define DISK__LOCAL_MASK ((1ull << DISK__FILE_SHIFT) - 1)

/* One data file or block device. */
typedef struct disk__file {
    char *path;    /* as opened: absolute, or under the engine's dir */
    int fd;        /* O_DIRECT when direct */
    int ref_fd;    /* without O_DIRECT (== fd when buffered): reads, refs, PUTD writes */
    int direct;    /* fd is O_DIRECT */
    int fixed;     /* a block device: used whole, never grows */
    uint64_t size; /* bytes in use; changes under grow_mu and mu */
    disk__alloc alloc;
} disk__file;

struct disk_env {
    char *dir;
    disk_options opt;
    const disk_io_ops *io;
    void *ioctx;
    disk__uring *uring;
    int lock_fd;
    disk__file *files; /* the data files, n_files of them */
    unsigned n_files;
    int direct; /* the data files are O_DIRECT (then the WAL is too) */
    uint32_t au;
    uint8_t uuid[16];

    pthread_mutex_t grow_mu; /* one growth of a data file at a time */
    uint64_t grow_gen;       /* growths so far (under mu) */
    /* The grower thread grows a file ahead of need, off the put's path
     * (disk__grower_start). Its fields are under mu. */
    pthread_t grower;
    int grower_on;
    pthread_cond_t grow_cv;
    int grow_req, grow_stop;
    /* The same thread writes checkpoints, so that the put that fills the
     * WAL does not wait for one (set by commit, under mu). */
    int ckpt_req;
    /* ... and writes the WAL file's next step of zeros ahead of the
     * records (wal_zero_req under mu; wal_zeroing under wal_mu: the
     * thread is writing past wal_end, so a leader that needs room
     * waits for it instead of writing there too). */
    int wal_zero_req, wal_zeroing;
    uint64_t grow_fail_gen; /* grow_gen when it last found no room, else UINT64_MAX */
    unsigned next_file;     /* where the next allocation starts (under mu) */

    pthread_mutex_t ckpt_mu;

    pthread_mutex_t wal_mu;
    pthread_cond_t wal_cv;
    disk__rec *pending; /* queued records, in lsn order */
    size_t n_pending, cap_pending;
    uint64_t next_lsn;    /* lsn of the next queued record */
    uint64_t durable_lsn; /* every record <= this is durable and applied */
    int starting;         /* a leader is gathering and writing its batch */
    int inflight;         /* batches written to the WAL, not yet applied */
    int blocked;          /* a checkpoint is switching WAL files */
    uint64_t written_lsn; /* every record <= this is in the WAL file (maybe not synced) */
    uint64_t nosync_lsn;  /* the newest NOSYNC put's lsn */
    uint64_t synced_b;    /* the newest SYNC record's bound that is durable */
    uint64_t w_started;   /* puts that began writing their data (atomic) */
    uint64_t w_queued;    /* ... of which queued their record or gave up (atomic) */
    int gathering;        /* the leader waits for them on gather_cv */
    uint64_t in_puts;     /* puts inside disk_put_flags now (atomic) */
    uint64_t peak_puts;   /* most at once since the last batch began (atomic) */
    uint64_t sync_avg_ns; /* a batch's sync, moving average (under wal_mu) */
    pthread_cond_t gather_cv;
    int failed; /* sticky error after a failed write or sync */
    int wal_fd;
    uint64_t wal_seq;
    uint64_t wal_off;   /* end of the current WAL file's records */
    uint64_t wal_end;   /* bytes of it written (zeros ahead of the records) */
    uint64_t wal_first; /* the oldest WAL file that may still exist */
    int ckpt_slot;      /* the copy (0 CHECKPOINT, 1 CHECKPOINT.1) recovery would pick */
    uint64_t ckpt_seq;  /* its wal_seq: WAL files from the other copy's on are kept */
    int have_spare;     /* DISK_WAL_SPARE exists */
    uint8_t *wal_buf;   /* the leader's encoding buffer (4096-aligned) */
    size_t wal_buf_cap;
    int wal_direct;    /* wal_fd is O_DIRECT: writes are whole 4 KiB blocks */
    uint8_t *wal_tail; /* with wal_direct: the WAL's last, partial block */

    pthread_mutex_t mu;
    disk__map index;
    disk__map pins;
    uint64_t bytes_live;
    /* Extents a NOSYNC put replaced, freed once a sync covers that put
     * (until then a crash brings the old record back): hi = the put's lsn. */
    disk__ent *deferred;
    size_t n_deferred, cap_deferred;

    /* Counters, updated with __atomic builtins. */
    uint64_t n_puts, n_reads, n_deletes, n_groups, n_fsyncs, n_ckpts, n_ckpts_put, n_grows,
        n_grows_put;
    uint64_t recovery_ns, replayed, n_inline;
    uint64_t dropped; /* final-batch puts dropped at open (data not on disk) */
};

#endif
