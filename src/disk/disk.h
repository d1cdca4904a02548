/*
 * disk.h — the disk engine: crash-safe blob storage on local disks.
 *
 * A disk engine stores blobs (up to disk_options.max_blob bytes each) under
 * 128-bit ids in one or more data files (or block devices), preallocated
 * in steps as they grow (up to disk_options.capacity). It knows nothing
 * of files or objects: the data path keys its blocks by (slice id, block
 * index), which maps directly onto disk_id {hi = slice id, lo = block index}.
 *
 * Writes are out of place: disk_put() writes the bytes to a free extent,
 * then appends a checksummed record to a redo-only write-ahead log (WAL);
 * it returns 0 only when both the data and the record are durable. fsyncs
 * are shared among concurrent writers (group commit). Periodic checkpoints
 * write the whole index so the WAL stays bounded; recovery loads the last
 * checkpoint and replays the WAL after it, and never scans the data region.
 * Every read verifies the blob's CRC32C. Formats and the crash-safety
 * argument are in docs/disk.md.
 *
 * Thread safety: a disk_env may be used from any number of threads at once,
 * except disk_close(), which must not race with any other call on the same
 * handle. One process at a time opens a directory (a lock file enforces it).
 *
 * Errors: every fallible function returns 0, a negative errno (an I/O
 * failure), or an NB_E* code from common/status.h. After a failed WAL or
 * data fsync the engine refuses further writes (it can no longer tell what
 * reached the disk) and returns the original error; reopen to recover.
 *
 * Segments (format 4): a blob longer than DISK_SEG_SIZE keeps one CRC32C
 * per DISK_SEG_SIZE segment next to its data, so disk_read() of a range
 * reads and verifies only the segments the range touches (a whole-blob
 * read still checks the whole blob's CRC32C). API change with it:
 * DISK_SEG_SIZE, disk_ref_seg_crcs(), disk_stats.dropped; nothing else.
 *
 * Caveats:
 *  - A read of any part of a blob of at most DISK_SEG_SIZE bytes reads and
 *    verifies the whole blob; of a larger one, the segments it touches.
 *  - Blob bytes reach disk padded to the allocation unit (default 4 KiB).
 *  - The on-disk format is little-endian; we build for little-endian CPUs.
 */
#ifndef NB_DISK_DISK_H
#define NB_DISK_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* An open engine. Opaque; created by disk_open(), destroyed by disk_close(). */
typedef struct disk_env disk_env;

/* A blob id: 128 bits, compared as a pair. All values are valid ids. */
typedef struct disk_id {
    uint64_t hi;
    uint64_t lo;
} disk_id;

/* The I/O table the engine does all file I/O through (src/disk/disk_io.h);
 * tests substitute a fault-injecting one. */
struct disk_io_ops;

enum {
    DISK_IO_AUTO = 0,  /* io_uring when the kernel allows it, else pread/pwrite */
    DISK_IO_URING = 1, /* io_uring or fail to open */
    DISK_IO_POSIX = 2, /* pread/pwrite */
};
enum {
    DISK_DIRECT_AUTO = 0, /* O_DIRECT when the file system supports it */
    DISK_DIRECT_ON = 1,   /* O_DIRECT or fail to open (-EINVAL) */
    DISK_DIRECT_OFF = 2,  /* buffered I/O through the page cache */
};

typedef struct disk_options {
    /* Data files of a new engine: paths, relative to the engine's
     * directory unless absolute, each a regular file (created, grows) or a
     * block device (used whole, never grows); blobs are spread over them.
     * NULL = one file, "data.0". An existing engine uses the list it
     * recorded (DIR/DATAFILES); a different non-NULL list is NB_EUSAGE. */
    const char *const *files;
    unsigned n_files;
    /* Most bytes the data files together may grow to (rounded down to the
     * allocation unit); 0 = no bound of their own: a file grows while its
     * file system keeps `reserve` bytes free. A put that finds no room
     * within the bound fails with NB_ENOSPACE. Files already larger stay
     * as they are. */
    uint64_t capacity;
    /* Size of each regular data file at creation; 0 = one growth step
     * (bounded by capacity / files). Ignored when the engine exists. */
    uint64_t initial_size;
    /* The file grows by fallocate in steps of this many bytes (at least
     * the extent that did not fit); 0 = a quarter of its size, between
     * 16 MiB and 1 GiB. */
    uint64_t grow_step;
    /* Free space growth leaves on the file system; DISK_RESERVE_AUTO (the
     * default) = 5 % of the file system, at most 4 GiB. */
    uint64_t reserve;
    /* Allocation unit: a power of two >= 4096. Fixed at creation. */
    uint32_t au_size;
    /* Largest blob accepted by disk_put(); larger puts get NB_ETOOBIG. */
    uint32_t max_blob;
    /* A checkpoint starts when the current WAL file passes this size. */
    uint64_t wal_max_bytes;
    /* Puts of at most this many bytes carry their data inside the WAL
     * record too (format 3), so their group commit syncs the WAL alone,
     * not the data file (DISK_INLINE_DEFAULT; 0 = never). */
    uint32_t inline_max;
    int io_mode;   /* DISK_IO_* */
    int direct;    /* DISK_DIRECT_* */
    int read_only; /* no writes, no WAL file created, the WAL tail left alone */
    /* Skip every fsync: a put is NOT durable when it returns. For bulk
     * loads and benchmarks only; disk_close() still syncs. */
    int no_sync;
    /* Write a checkpoint in disk_close() (default 1), so the next open
     * replays nothing. */
    int close_checkpoint;
    /* Write zeros over the data file as it is created and grown (default
     * 0), so that no later write pays for allocating blocks (on ext4/xfs
     * the first write to a fallocated block makes fdatasync commit
     * metadata). Takes time proportional to the size, once. */
    int prefill;
    /* Read blobs with O_DIRECT too (default 0: reads go through the page
     * cache, so hot blobs are served from memory; writes stay direct). */
    int direct_reads;
    /* The I/O table and its context; NULL means real files. With a custom
     * table no lock file is taken. Borrowed: must outlive the engine. */
    const struct disk_io_ops *io;
    void *io_ctx;
} disk_options;

#define DISK_RESERVE_AUTO   UINT64_MAX
#define DISK_INLINE_DEFAULT (64u << 10)
#define DISK_MAX_FILES      256 /* data files per engine */

/* Fills *o with the defaults: capacity 0 (grow while the file system has
 * room), initial_size and grow_step 0 (automatic), reserve
 * DISK_RESERVE_AUTO, au_size 4096, max_blob 64 MiB, wal_max_bytes 64 MiB,
 * inline_max DISK_INLINE_DEFAULT,
 * DISK_IO_AUTO, DISK_DIRECT_AUTO, close_checkpoint 1, prefill 0,
 * direct_reads 0. */
void disk_options_init(disk_options *o);

/* Opens the engine in directory dir (created if missing), creating the
 * data file (initial_size preallocated) on first open, else recovering from the last
 * checkpoint and the WAL. opts may be NULL for the defaults; it and dir are
 * borrowed. On success *out is an engine to close with disk_close(); on
 * failure *out is NULL. Returns 0, NB_ELOCKED (another process has dir
 * open), NB_ECORRUPT (a damaged checkpoint, superblock or WAL, or a data
 * file smaller than recorded), NB_EVERSION (a newer format), NB_ENOTFOUND
 * (read_only and no engine in dir), or -errno. */
int disk_open(const disk_options *opts, const char *dir, disk_env **out) NB_MUST_CHECK;

/* Waits for running commits, writes a checkpoint (unless disabled or
 * read-only), syncs and frees the engine. Every ref must have been unpinned.
 * NULL is a harmless no-op. Returns 0 or the first error met while
 * flushing; the handle is freed either way. */
int disk_close(disk_env *e);

/* Stores len bytes from data (borrowed) under id, replacing any blob with
 * that id. Durable when it returns 0 (unless no_sync). Returns 0,
 * NB_ENOSPACE, NB_ETOOBIG, NB_EUSAGE (read-only), or -errno. */
int disk_put(disk_env *e, disk_id id, const void *data, size_t len) NB_MUST_CHECK;

/* Reads up to len bytes of blob id starting at byte off into buf (borrowed,
 * at least len bytes) and sets *got to the number read: fewer than len
 * when the blob ends first. Returns 0, NB_ENOTFOUND, NB_EUSAGE (off beyond
 * the blob's end), NB_ECHECKSUM (the stored bytes do not match their CRC;
 * logged with the id and file offset, nothing copied), or -errno. */
int disk_read(disk_env *e, disk_id id, uint64_t off, size_t len, void *buf,
              size_t *got) NB_MUST_CHECK;

/* Sets *len (may be NULL) to the blob's length. Returns 0 or NB_ENOTFOUND. */
int disk_exists(disk_env *e, disk_id id, uint64_t *len) NB_MUST_CHECK;

/* disk_put_flags() flags. */
#define DISK_PUT_NOSYNC 1u

/* disk_put() with flags. DISK_PUT_NOSYNC: the blob is readable when it
 * returns but durable only once a later disk_sync() (or disk_close())
 * returns; no fsync in the put's path. After a crash before that, the blob
 * holds its new bytes, or is absent (the version it replaced is not kept),
 * never wrong bytes. NB_EUSAGE for unknown flags. */
int disk_put_flags(disk_env *e, disk_id id, const void *data, size_t len,
                   unsigned flags) NB_MUST_CHECK;

/* Makes every put that returned before the call durable (DISK_PUT_NOSYNC
 * ones included): syncs the data files, then commits a SYNC record saying
 * so. Nothing to do (0, no fsync) when no NOSYNC put happened since the
 * last one. Concurrent calls are fine. Returns 0 or the error. */
int disk_sync(disk_env *e) NB_MUST_CHECK;

/* Adds a data file to an open engine: path (relative to the engine's
 * directory unless absolute) must not exist, or be a block device (used
 * whole). A regular file starts at one growth step within what the
 * capacity leaves (NB_ENOSPACE when it leaves none: raise it first) and
 * grows like the others. Durable when it returns 0 (DIR/DATAFILES names
 * it; later opens need it); puts use it at once. NB_EUSAGE when read-only,
 * at DISK_MAX_FILES, or the path is listed or exists. */
int disk_add_file(disk_env *e, const char *path) NB_MUST_CHECK;

/* Deletes blob id; durable when it returns 0. Its space is reused only
 * after the delete is durable and no ref pins it. Returns 0, NB_ENOTFOUND,
 * NB_EUSAGE (read-only) or -errno. */
int disk_delete(disk_env *e, disk_id id) NB_MUST_CHECK;

/* Called by disk_iterate() once per blob; return 0 to go on, anything else
 * to stop (disk_iterate then returns that value). */
typedef int (*disk_iter_fn)(void *arg, disk_id id, uint64_t len);

/* Calls fn for every blob present when the call starts (a snapshot of the
 * ids; blobs deleted meanwhile are still reported), in no particular order,
 * without holding any lock, so fn may call the engine. */
int disk_iterate(disk_env *e, disk_iter_fn fn, void *arg);

/* A zero-copy reference to a blob's bytes: read len bytes from fd at off
 * (pread or sendfile). The fd belongs to the engine: never close it. */
typedef struct disk_ref {
    int fd;
    uint64_t off;
    uint64_t len;
    uint32_t crc32c; /* CRC32C of the len bytes, for callers that verify */
    uint64_t pin;    /* internal: the pinned extent */
} disk_ref;

#define DISK_REF_VERIFY 1u /* read and verify the CRC before handing out */

/* The unit of per-segment CRCs: segment i of a blob is its bytes
 * [i * DISK_SEG_SIZE, min(len, (i + 1) * DISK_SEG_SIZE)). */
#define DISK_SEG_SIZE (64u << 10)

/* Pins blob id's extent and fills *ref. The extent is not reused until
 * disk_unpin(), even if the blob is deleted or replaced meanwhile, so the
 * bytes at (fd, off, len) stay those of the blob while the ref is pinned.
 * With DISK_REF_VERIFY the engine reads the blob and checks its CRC32C
 * first; without it, the caller must verify ref->crc32c on what it reads
 * (a sender cannot otherwise know the bytes are good). Returns 0,
 * NB_ENOTFOUND, NB_ECHECKSUM (nothing pinned) or -errno. */
int disk_read_ref(disk_env *e, disk_id id, unsigned flags, disk_ref *ref) NB_MUST_CHECK;

/* Fills crcs[0, n) with the CRC32C of each DISK_SEG_SIZE segment of the
 * pinned blob, n = ceil(ref->len / DISK_SEG_SIZE) (at most one entry, which
 * is ref->crc32c, for a blob of at most DISK_SEG_SIZE bytes), so a reader of
 * (ref->fd, ref->off) can verify just the segments it reads. The table is
 * read from the data file and checked against ref->crc32c first. Returns 0,
 * NB_ECHECKSUM (a damaged table: logged, crcs zeroed) or -errno. */
int disk_ref_seg_crcs(disk_env *e, const disk_ref *ref, uint32_t *crcs) NB_MUST_CHECK;

/* Releases a ref from disk_read_ref(); after it the ref is invalid. */
void disk_unpin(disk_env *e, disk_ref *ref);

typedef struct disk_stats {
    uint64_t blobs;           /* blobs present */
    uint64_t bytes_live;      /* sum of blob lengths */
    uint64_t bytes_allocated; /* data region in use, in whole allocation units */
    uint64_t capacity;        /* what the data region may reach: the capacity
                                 option, else its size now plus what the file
                                 system can still give (free minus reserve) */
    uint64_t bytes_free;      /* capacity - bytes_allocated */
    uint64_t region;          /* data region allocated in the file now */
    uint64_t largest_free;    /* largest contiguous free extent of the region */
    uint64_t grows;           /* times a data file grew since open */
    uint64_t grows_in_put;    /* ... of them inside a put (the grower fell behind) */
    unsigned files;           /* data files (disk_file_stats_get for each) */
    uint32_t au_size;
    uint64_t wal_seq;   /* current WAL file number */
    uint64_t wal_bytes; /* bytes in the current WAL file */
    uint64_t next_lsn;  /* the next WAL record's sequence number */
    uint64_t puts, reads, deletes;
    uint64_t inline_puts;   /* puts whose data went inside the WAL record */
    uint64_t group_commits; /* WAL batches written */
    uint64_t fsyncs;        /* fsync/fdatasync calls by the engine */
    uint64_t checkpoints;   /* written since open */
    uint64_t pinned;        /* extents pinned by refs */
    uint64_t recovery_ns;   /* time disk_open spent reading the checkpoint and replaying */
    uint64_t replayed;      /* WAL records replayed at open */
    uint64_t dropped;       /* puts recovery dropped at open: their data did not
                               reach the disk (never acknowledged) */
    int io_uring;           /* 1 when reads and writes go through io_uring */
    int direct;             /* 1 when the data file is open with O_DIRECT */
    /* Checkpoints written inside a put: no background thread, or the WAL
     * reached twice wal_max_bytes before the thread caught up. */
    uint64_t checkpoints_in_put;
} disk_stats;

/* Fills *st with a consistent snapshot. */
void disk_stats_get(disk_env *e, disk_stats *st);

typedef struct disk_file_stats {
    const char *path;         /* borrowed, valid until disk_close() */
    uint64_t size;            /* bytes of the file in use (superblock included) */
    uint64_t bytes_allocated; /* in whole allocation units */
    uint64_t largest_free;    /* largest contiguous free extent */
    int block_device;         /* used whole, never grows */
    int direct;               /* open with O_DIRECT */
} disk_file_stats;

/* Fills *st for data file i (0 <= i < disk_stats.files). Returns 0 or
 * NB_ENOTFOUND past the last file. */
int disk_file_stats_get(disk_env *e, unsigned i, disk_file_stats *st);

/* The `nebula disk` tool: `check DIR` (recover read-only, read and verify
 * every blob) and `stats DIR`. Prints to stdout, errors to stderr. Returns
 * the exit code: 0 fine, 1 damage found, 2 usage or cannot open. */
int disk_tool_main(int argc, char **argv);

#endif
