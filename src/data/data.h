/*
 * data.h — the data path of NebulaStore: file bytes as blocks in a block
 * store, slices written in parallel, chunk reads assembled from slice
 * lists, a refcounted block cache with readahead, chunk compaction and a
 * collector of unreferenced blocks. See docs/data.md.
 *
 * Model. A file is cut into 64 MiB chunks. Every write makes a slice with a
 * unique 64-bit id (allocated by the caller, never reused; 0 is reserved and
 * means "zeros"); a slice is stored as blocks of at most 4 MiB keyed by
 * (slice id, block index). A chunk is described by an ordered slice list,
 * newest last; where slices overlap the newest wins and bytes no slice
 * covers read as zeros. This module knows nothing of inodes or metadata:
 * the caller (vfs) owns chunk maps and passes them in as data_slice arrays.
 *
 * Thread safety: every function taking a data_bs or data_store may be called
 * from any thread at once. A data_writer and a data_ra belong to one thread
 * at a time. The store runs its block I/O on two pools of its own (reads
 * and readahead; writes and background deletes); live_fn runs on the
 * thread that called data_collect.
 *
 * Errors: 0, -errno for OS failures, or NB_E*: NB_ENOTFOUND (no such block),
 * NB_ECHECKSUM (a block's CRC32C did not match: logged with the block's
 * name, no bytes returned), NB_ECORRUPT (a malformed block header or a
 * slice list pointing past a block's end), NB_ENOSPACE (the device is full),
 * NB_EUSAGE (bad arguments).
 */
#ifndef NB_DATA_DATA_H
#define NB_DATA_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define DATA_BLOCK_SIZE (4u << 20)  /* largest block: 4 MiB */
#define DATA_CHUNK_SIZE (64u << 20) /* a chunk: 64 MiB */

/* ---- Block store ------------------------------------------------------ */

/* A block's key. */
typedef struct data_key {
    uint64_t slice_id;
    uint32_t block; /* index within the slice: byte offset / DATA_BLOCK_SIZE */
} data_key;

typedef struct data_bs data_bs;

/* put flags */
#define DATA_PUT_DEFER_SYNC 1u /* readable at once, durable only after data_bs_sync() */
#define DATA_PUT_NO_SYNC    2u /* nothing synced: durable only after data_bs_sync_full() */

/* Opens (creating if needed) a `dir` block store under dir: a file per
 * block. Takes an exclusive lock on the directory and removes temporary
 * files left by a crash. dir is borrowed. *out is NULL on failure; close
 * with data_bs_close. NB_ELOCKED if another process has it open,
 * NB_EVERSION for a directory of a newer format. */
int data_bs_open_dir(const char *dir, data_bs **out) NB_MUST_CHECK;

/* Opens (creating if needed) a `disk` block store: the disk engine
 * (src/disk) in dir, a blob per block with id {slice id, block index}.
 * opts (a struct disk_options from disk/disk.h) may be NULL for the
 * engine's defaults; both are borrowed. Errors as disk_open(), and
 * NB_EUSAGE if opts->max_blob is below DATA_BLOCK_SIZE. */
struct disk_options;
int data_bs_open_disk(const char *dir, const struct disk_options *opts,
                      data_bs **out) NB_MUST_CHECK;

/* Closes the store; NULL is a no-op. Every put must have returned. */
void data_bs_close(data_bs *bs);
/* The backend's name ("dir"); static string. */
const char *data_bs_name(const data_bs *bs);

/* Stores len (<= DATA_BLOCK_SIZE) bytes under k, replacing any block there.
 * buf is borrowed. Without flags the block is durable when this returns;
 * with DATA_PUT_DEFER_SYNC it is readable at once but durable only after a
 * data_bs_sync() naming it, so a slice's blocks can be written in parallel
 * and made durable together. */
int data_bs_put(data_bs *bs, data_key k, const void *buf, size_t len, unsigned flags) NB_MUST_CHECK;
/* Makes the blocks named in keys[0..n) durable (those put with
 * DATA_PUT_DEFER_SYNC). keys is borrowed. */
int data_bs_sync(data_bs *bs, const data_key *keys, size_t n) NB_MUST_CHECK;
/* Makes the blocks named in keys[0..n) durable, those put with
 * DATA_PUT_NO_SYNC included (their bytes and their names). Keys of blocks
 * deleted meanwhile are skipped. keys is borrowed. */
int data_bs_sync_full(data_bs *bs, const data_key *keys, size_t n) NB_MUST_CHECK;
/* Reads up to len bytes of block k's payload from off into buf (borrowed),
 * verifying the CRC32C of every 64 KiB segment touched. *got receives the
 * bytes read: fewer than len only at the block's end (0 at or past it). */
int data_bs_get(data_bs *bs, data_key k, uint64_t off, size_t len, void *buf,
                size_t *got) NB_MUST_CHECK;
/* Reads and verifies the whole payload. *out is owned by the caller (free
 * with free(); NULL for an empty block), *len its length. */
int data_bs_get_all(data_bs *bs, data_key k, uint8_t **out, size_t *len) NB_MUST_CHECK;
/* 0 and the payload length in *len if k exists, else NB_ENOTFOUND. len may
 * be NULL. Does not verify the payload. */
int data_bs_stat(data_bs *bs, data_key k, size_t *len) NB_MUST_CHECK;
/* Deletes k; NB_ENOTFOUND if absent. Not made durable: a block that comes
 * back after a crash is unreferenced and the collector frees it again. */
int data_bs_delete(data_bs *bs, data_key k) NB_MUST_CHECK;

/* Zero-copy: a descriptor from which the payload bytes [off, off+len) can be
 * sent with sendfile/splice. The bytes are verified before this returns (the
 * CRCs of the 64 KiB segments they touch: the dir backend checks them
 * through mmap, the disk backend reads them through a small buffer) and
 * stay valid until data_fdref_release, even if the block is deleted
 * meanwhile. The fd is borrowed from the ref: never close it yourself. */
typedef struct data_fdref {
    int fd;
    uint64_t off;     /* file offset of the first requested byte */
    size_t len;       /* bytes available (clipped at the block's end) */
    uint64_t priv[6]; /* the block store's */
} data_fdref;
int data_bs_read_fd(data_bs *bs, data_key k, uint64_t off, size_t len,
                    data_fdref *out) NB_MUST_CHECK;
/* Releases a ref filled by data_bs_read_fd; a ref with fd < 0 is a no-op. */
void data_fdref_release(data_bs *bs, data_fdref *ref);

/* Iteration over every block, in no particular order, for the collector
 * and for fsck. Blocks put or deleted during the walk may or may not be
 * seen. fn returns 0 to go on, anything else to stop (returned as is). */
typedef struct data_bs_entry {
    data_key key;
    uint64_t bytes;    /* space used, header included */
    uint64_t mtime_ns; /* wall-clock time the block was written */
} data_bs_entry;
typedef int (*data_bs_iter_fn)(void *arg, const data_bs_entry *e);
int data_bs_iterate(data_bs *bs, data_bs_iter_fn fn, void *arg) NB_MUST_CHECK;

typedef struct data_bs_stats {
    uint64_t puts, gets, deletes;
    uint64_t bytes_written, bytes_read; /* payload bytes */
    uint64_t checksum_errors;
    uint64_t capacity_bytes, free_bytes; /* of the device under the store */
} data_bs_stats;
int data_bs_stats_get(data_bs *bs, data_bs_stats *out) NB_MUST_CHECK;

/* ---- The data store: slices, cache, readahead, collector -------------- */

typedef struct data_store data_store;

typedef struct data_store_options {
    size_t cache_bytes;        /* block cache capacity; 0 = 256 MiB */
    unsigned read_threads;     /* parallel block fetches; 0 = 8 */
    unsigned write_threads;    /* parallel block writes; 0 = 4 */
    unsigned readahead_blocks; /* largest readahead window; 0 = 8 blocks */
    unsigned writer_inflight;  /* blocks in flight per writer; 0 = 4 */
    uint64_t collect_grace_ns; /* never collect younger blocks; 0 = 1 hour */
    size_t direct_read_max;    /* random reads up to this bypass the cache; 0 = 256 KiB */
} data_store_options;

/* Opens a data store over bs, taking ownership of bs (closed by
 * data_store_close, also on failure). opts may be NULL for defaults. */
int data_store_open(data_bs *bs, const data_store_options *opts, data_store **out) NB_MUST_CHECK;
/* Waits for background readahead, frees the cache and closes the block
 * store. NULL is a no-op. */
void data_store_close(data_store *s);
/* The block store under s; valid until data_store_close. */
data_bs *data_store_bs(data_store *s);

/* One entry of a chunk's slice list: bytes [slice_off, slice_off + len) of
 * slice `id` appear at chunk offset chunk_off. id 0 means zeros. */
typedef struct data_slice {
    uint64_t id;
    uint32_t chunk_off;
    uint32_t len;
    uint64_t slice_off;
    /* Inline slices (id has DATA_SLICE_INLINE): the whole slice's bytes,
     * borrowed, kept by the caller (vfs: in metadata); never in the block
     * store. NULL for every other slice. */
    const uint8_t *bytes;
} data_slice;
/* Marks the id of an inline slice (the same bit as META_SLICE_INLINE). */
#define DATA_SLICE_INLINE (1ull << 63)

/* ---- Writing slices ---- */

typedef struct data_writer data_writer;

/* Starts writing slice `id`. From here until data_slice_unhold(s, id) the
 * slice is "held": the collector never frees its blocks. *out is owned;
 * end it with data_writer_finish or data_writer_abort. */
int data_writer_new(data_store *s, uint64_t id, data_writer **out) NB_MUST_CHECK;
/* writer flags. LAZY: finish syncs nothing; the caller makes the slice
 * durable later with data_slice_sync. */
#define DATA_WRITER_LAZY 1u
/* data_writer_new with flags (DATA_WRITER_*). */
int data_writer_new_flags(data_store *s, uint64_t id, unsigned flags,
                          data_writer **out) NB_MUST_CHECK;
/* Appends bytes (borrowed). Full 4 MiB blocks are written in the background
 * on the write pool, at most writer_inflight at a time. */
int data_writer_append(data_writer *w, const void *buf, size_t len) NB_MUST_CHECK;
/* Writes the last (short) block, waits for every block, syncs them once
 * (not for a DATA_WRITER_LAZY writer: then they are readable but durable
 * only after data_slice_sync) and frees w. On 0 the slice's *len_out bytes
 * are durable (lazy: readable). On error the
 * blocks written are deleted and the hold released. Either way w is gone. */
int data_writer_finish(data_writer *w, uint64_t *len_out) NB_MUST_CHECK;
/* Abandons the slice: waits for blocks in flight, deletes them, releases
 * the hold and frees w. NULL is a no-op. */
void data_writer_abort(data_writer *w);
/* Bytes appended so far. */
uint64_t data_writer_len(const data_writer *w);
/* Convenience: writes buf (borrowed) as slice id; durable and held on 0. */
int data_slice_write(data_store *s, uint64_t id, const void *buf, size_t len) NB_MUST_CHECK;
/* Makes the blocks of slices ids[i] (of sizes[i] bytes) durable, for
 * slices written by lazy writers. Blocks deleted meanwhile are skipped. */
int data_slice_sync(data_store *s, const uint64_t *ids, const uint64_t *sizes,
                    size_t n) NB_MUST_CHECK;
/* Ends the hold on a slice once the caller has published it in metadata
 * (or decided to drop it). Unknown ids are ignored. */
void data_slice_unhold(data_store *s, uint64_t id);
/* Number of blocks a slice of len bytes has. */
uint32_t data_slice_blocks(uint64_t len);

/* ---- Reading chunks ---- */

/* Reader pins. Take a pin before reading a chunk map from metadata and end
 * it after the last read that uses it: no block the map references is
 * freed while the pin lasts. Pins are cheap (a mutex and a counter) and
 * meant per read operation, not per open file. */
typedef uint64_t data_pin;
data_pin data_pin_begin(data_store *s);
void data_pin_end(data_store *s, data_pin pin);

/* Per-handle readahead state (sequential-read detection). Owned; free with
 * data_ra_free (NULL is a no-op). */
typedef struct data_ra data_ra;
data_ra *data_ra_new(void);
void data_ra_free(data_ra *ra);

/* Reads len bytes at chunk offset off of a chunk described by slices[0..n)
 * (borrowed, newest last) into buf (borrowed). Blocks are fetched in
 * parallel through the cache; holes read as zeros. ra (may be NULL) enables
 * sequential detection and readahead of the next blocks. The caller holds
 * a pin across the map read and this call. off + len <= DATA_CHUNK_SIZE. */
int data_chunk_read(data_store *s, data_ra *ra, const data_slice *slices, size_t n, uint32_t off,
                    size_t len, void *buf) NB_MUST_CHECK;
/* After a sequential data_chunk_read near a chunk's end: how many bytes at
 * the start of the next chunk its readahead window covers (0: none). The
 * caller, who knows the next chunk's map, hands them to
 * data_chunk_prefetch so the stream does not stall at the boundary. */
size_t data_ra_next_chunk(const data_ra *ra);
/* Starts loading, in the background, the blocks holding [off, off+len) of
 * the chunk into the cache (e.g. the next chunk of a sequential read).
 * slices is borrowed for the call only. Best effort: errors are dropped. */
void data_chunk_prefetch(data_store *s, const data_slice *slices, size_t n, uint32_t off,
                         size_t len);

/* The visible pieces of [off, off+len): where each byte comes from. A
 * piece lies within one block (or one hole); pieces are in chunk order and
 * cover the range exactly. For zero-copy senders: a piece with id 0 is
 * zeros, any other is bytes [block_off, block_off+len) of block key. */
typedef struct data_piece {
    uint32_t chunk_off;
    uint32_t len;
    data_key key; /* key.slice_id == 0: a hole */
    uint32_t block_off;
} data_piece;
/* *out is owned (free with free()), *nout its length. */
int data_chunk_plan(const data_slice *slices, size_t n, uint32_t off, size_t len, data_piece **out,
                    size_t *nout) NB_MUST_CHECK;
/* Zero-copy reads of [off, off+len) of a chunk: appends to *refs (grown
 * with realloc; *n entries, *cap capacity) one data_fdref per piece, in
 * chunk order: a hole is {fd = -1, len}, any other piece an fd range of
 * its block. A piece is either verified when handed out (dir) or handed
 * out unchecked (disk): then the sender must map it, check the mapping
 * with data_fdref_check and send from that same mapping (a page cache
 * page may be replaced by the device's bytes at any time, so only the
 * bytes checked are known good). The refs outlive the caller's pin (each
 * holds its block) until data_chunk_refs_release. On an error the refs
 * this call added are released and *n is unchanged. */
int data_chunk_refs(data_store *s, const data_slice *slices, size_t n, uint32_t off, size_t len,
                    data_fdref **refs, size_t *nrefs, size_t *cap) NB_MUST_CHECK;
/* Releases refs[0..n) (holes are skipped). */
void data_chunk_refs_release(data_store *s, data_fdref *refs, size_t n);
/* Whether ref r (from data_chunk_refs) must be checked before it is sent:
 * if so, [*lo, *hi) is the range of r->fd a mapping given to
 * data_fdref_check must cover (the 64 KiB segments r's bytes touch). */
bool data_fdref_check_span(data_store *s, const data_fdref *r, uint64_t *lo, uint64_t *hi);
/* Checks the CRCs of the segments r's bytes touch on map, a mapping of
 * r->fd's bytes [map_off, map_off + map_len): 0 (also for a ref that needs
 * no check), NB_ECHECKSUM (logged), NB_EUSAGE if the mapping does not
 * cover data_fdref_check_span's range. Send from map afterwards. */
int data_fdref_check(data_store *s, const data_fdref *r, const void *map, uint64_t map_off,
                     size_t map_len) NB_MUST_CHECK;
/* True when some block of [off, off+len) is not wholly in the page cache
 * (stores that read through it: disk), so that data_chunk_refs's pieces
 * would be read from the device as they are checked. A large answer over
 * such blocks goes out faster as a stream (data_chunk_read with a
 * data_ra): its readahead brings the next blocks in while it sends. */
bool data_chunk_cold(data_store *s, const data_slice *slices, size_t n, uint32_t off, size_t len);

typedef struct data_cache_stats {
    uint64_t hits, misses, inserts, evictions;
    uint64_t readahead_issued, readahead_hits;
    size_t bytes, capacity, entries;
} data_cache_stats;
void data_store_cache_stats(data_store *s, data_cache_stats *out);

/* ---- Compaction and collection ---- */

/* Rewrites the visible bytes of a fragmented chunk as one new slice
 * new_id: the span from the first to the last visible byte (inner holes
 * become zeros). On 0, *out is the one entry that replaces the whole list;
 * the new slice is durable and held (see data_writer_new): the caller
 * publishes it, then calls data_slice_unhold and data_slice_release on
 * the old slices. NB_ENOTFOUND if the list has no visible bytes. The
 * caller holds a pin across the map read and this call. */
int data_chunk_compact(data_store *s, const data_slice *slices, size_t n, uint64_t new_id,
                       data_slice *out) NB_MUST_CHECK;

/* Frees a slice nothing references any more (vfs calls it after the
 * metadata commit that dropped the last reference). The blocks are
 * deleted once every pin taken before this call has ended: at once when
 * there is none, otherwise in the background when the oldest such pin
 * ends, by data_store_reclaim, or by the collector. */
void data_slice_release(data_store *s, uint64_t id, uint64_t len);
/* Deletes released slices whose readers are done. *freed_blocks may be
 * NULL. Returns 0 or the first delete error. */
int data_store_reclaim(data_store *s, uint64_t *freed_blocks) NB_MUST_CHECK;

/* The collector. Blocks nothing references are found by walking the block
 * store and comparing with the live references the caller reports: it
 * frees crash leftovers (blocks written but never published) and anything
 * a lost release missed. A block is freed only if its slice is absent from
 * the live set or its index is >= the live block count, its slice is not
 * held, it is older than the grace period, and every pin that might have
 * seen it has ended (the collector waits up to wait_ns for them, then
 * defers). */
typedef struct data_live data_live;
/* Adds a live reference: blocks [0, nblocks) of slice id. Repeats merge
 * (the largest count wins). */
void data_live_add(data_live *l, uint64_t id, uint32_t nblocks);
/* Fills l with every slice referenced by metadata. Called once per
 * collection, after the collector has started its epoch. */
typedef int (*data_live_fn)(void *arg, data_live *l);

typedef struct data_collect_opts {
    uint64_t grace_ns; /* 0: the store's collect_grace_ns */
    uint64_t wait_ns;  /* how long to wait for old pins; 0 = 5 s */
    int dry_run;       /* report, delete nothing */
} data_collect_opts;
typedef struct data_collect_report {
    uint64_t blocks_seen, blocks_live;
    uint64_t blocks_freed, bytes_freed;
    uint64_t blocks_young, blocks_held; /* skipped: grace period, held slice */
    uint64_t blocks_deferred;           /* skipped: old pins did not end in time */
    uint64_t released_freed;            /* more blocks, of slices given to data_slice_release */
} data_collect_report;
int data_collect(data_store *s, data_live_fn live_fn, void *arg, const data_collect_opts *opts,
                 data_collect_report *report) NB_MUST_CHECK;

#endif
