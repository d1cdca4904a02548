/*
 * data_int.h — private to src/data (and its unit tests): the block store
 * ops table every backend fills, the block cache, and the data store's
 * internals.
 */
#ifndef NB_DATA_DATA_INT_H
#define NB_DATA_DATA_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/threadpool.h"
#include "data/data.h"

/* ---- Backends -------------------------------------------------------- */

/* Every backend embeds a data_bs first and fills ops. bs.c checks
 * arguments and counts statistics before dispatching, so backends see
 * only valid calls (len <= DATA_BLOCK_SIZE, off within reason). */
typedef struct data_bs_ops {
    const char *name;
    /* A range read costs about the bytes read (per-segment CRCs). When
     * false, the reader sends even small random reads through the cache. */
    bool cheap_ranges;
    /* Reads go through the page cache and check what they copy (disk):
     * every read, streams too, copies straight into the caller's buffer
     * (no block cache), and a stream's readahead is the kernel's on the
     * store's descriptor (read.c, prefetch). */
    bool page_cache;
    int (*put)(data_bs *bs, data_key k, const void *buf, size_t len, unsigned flags);
    int (*sync)(data_bs *bs, const data_key *keys, size_t n);
    /* Optional: makes the bytes of DATA_PUT_NO_SYNC blocks durable (then
     * sync makes their names durable). NULL: puts always sync their bytes. */
    int (*sync_data)(data_bs *bs, const data_key *keys, size_t n);
    int (*get)(data_bs *bs, data_key k, uint64_t off, size_t len, void *buf, size_t *got);
    int (*get_all)(data_bs *bs, data_key k, uint8_t **out, size_t *len);
    int (*stat)(data_bs *bs, data_key k, size_t *len);
    int (*del)(data_bs *bs, data_key k);
    /* flags: DATA__FD_NOVERIFY hands the range out without checking its
     * CRCs (readahead hints, tests); DATA__FD_SENDER_CHECKS lets a store
     * with check hand it out unchecked for the sender to check. */
    int (*read_fd)(data_bs *bs, data_key k, uint64_t off, size_t len, unsigned flags,
                   data_fdref *out);
    void (*release_fd)(data_bs *bs, data_fdref *ref);
    /* Optional (disk): data_fdref_check_span and data_fdref_check. */
    bool (*check_span)(data_bs *bs, const data_fdref *ref, uint64_t *lo, uint64_t *hi);
    int (*check)(data_bs *bs, const data_fdref *ref, const uint8_t *map, uint64_t map_off,
                 size_t map_len);
    /* Optional (page_cache stores): block k's [off, off+len) is in the page
     * cache now (a hint, trusted for nothing). */
    bool (*resident)(data_bs *bs, data_key k, uint32_t off, size_t len);
    int (*iterate)(data_bs *bs, data_bs_iter_fn fn, void *arg);
    int (*space)(data_bs *bs, uint64_t *capacity, uint64_t *free_bytes);
    void (*close)(data_bs *bs);
} data_bs_ops;

struct data_bs {
    const data_bs_ops *ops;
    _Atomic uint64_t puts, gets, deletes, bytes_written, bytes_read, checksum_errors;
};

#define DATA__FD_NOVERIFY      1u
#define DATA__FD_SENDER_CHECKS 2u
/* data_bs_read_fd with read_fd flags. */
int data__bs_read_fd(data_bs *bs, data_key k, uint64_t off, size_t len, unsigned flags,
                     data_fdref *out);

/* The backends: bs_dir.c and bs_disk.c. */
extern const data_bs_ops data__bs_dir_ops;
extern const data_bs_ops data__bs_disk_ops;

/* ---- Block buffers (buf.c) -------------------------------------------- */

/* Free DATA_BLOCK_SIZE buffers kept for reuse (32 MiB). */
#define DATA__BUF_KEEP 8
typedef struct data__bufpool data__bufpool;
data__bufpool *data__bufpool_new(void);
void data__bufpool_free(data__bufpool *p);
/* A DATA_BLOCK_SIZE buffer, 4096-aligned, contents undefined. */
uint8_t *data__buf_get(data__bufpool *p);
/* Gives back a buffer from data__buf_get (NULL is a no-op). */
void data__buf_put(data__bufpool *p, uint8_t *b);

/* ---- Block cache (cache.c) ------------------------------------------- */

/* A cached block: immutable once ready, refcounted. The cache holds one
 * reference while the block is in its table; readers hold one each while
 * they copy out of it. */
typedef struct data_block data_block;
struct data_block {
    data_key key;
    uint8_t *data; /* owned: free()d, or given back to the pool if pooled */
    size_t len;
    _Atomic int refs;
    bool pooled; /* data is a DATA_BLOCK_SIZE buffer of the cache's pool */
    int state;   /* DATA_BLK_LOADING, _READY, _FAILED */
    int rc;      /* load error when FAILED */
    bool in_table, readahead, ra_hit;
    data_block *hnext;               /* hash chain */
    data_block *lru_prev, *lru_next; /* LRU list: head = most recent */
};
enum { DATA_BLK_LOADING, DATA_BLK_READY, DATA_BLK_FAILED };

typedef struct data_cache data_cache;
data_cache *data__cache_new(size_t capacity);
/* Buffers of blocks filled with data__cache_fill_buf go back to pool
 * (borrowed; must outlive the cache). */
void data__cache_use_pool(data_cache *c, data__bufpool *pool);
void data__cache_free(data_cache *c);
/* Looks k up. On a ready hit returns a reference (*owner = false). On a
 * miss inserts a LOADING entry and returns a reference with *owner = true:
 * the caller must load it and call data__cache_fill exactly once, without
 * waiting for any other entry first. If another thread is loading k, waits
 * for it when wait is true (returns the ready block, or NULL with *rc set
 * if its load failed), or returns NULL with *rc = NB_EAGAIN when false. */
data_block *data__cache_acquire(data_cache *c, data_key k, bool wait, bool *owner, int *rc);
/* True if k is in the table, ready or being loaded (no statistics). */
bool data__cache_contains(data_cache *c, data_key k);
/* Looks k up without loading: a reference to a ready block, or NULL. */
data_block *data__cache_peek(data_cache *c, data_key k);
/* Completes a LOADING entry: rc 0 stores data (takes ownership) as the
 * block's bytes; rc != 0 marks it failed and drops it from the table.
 * Wakes waiters; may evict older blocks to stay within capacity. */
void data__cache_fill(data_cache *c, data_block *b, int rc, uint8_t *data, size_t len);
/* data__cache_fill (rc 0) with a buffer of the cache's pool. */
void data__cache_fill_buf(data_cache *c, data_block *b, uint8_t *buf, size_t len);
void data__block_unref(data_cache *c, data_block *b);
/* Drops k from the cache if present (the collector freed it). */
void data__cache_drop(data_cache *c, data_key k);
/* Moves ready block k to the cold end of the LRU (next to be evicted): a
 * sequential reader is done with it (scan resistance). */
void data__cache_demote(data_cache *c, data_key k);
void data__cache_stats(data_cache *c, data_cache_stats *out);
void data__cache_note_readahead(data_cache *c, int issued);

/* ---- The store (store.c, slice.c, read.c, gc.c) ----------------------- */

typedef struct data_pin_slot {
    uint64_t epoch;
    uint64_t count;
} data_pin_slot;

typedef struct data_hold {
    uint64_t id;
    uint64_t freed_epoch; /* 0 while the hold is active */
} data_hold;

typedef struct data_released {
    uint64_t id;
    uint32_t nblocks;
    uint64_t epoch; /* pins older than this may still read it */
} data_released;

struct data_store {
    data_bs *bs;
    data_store_options o;
    data_cache *cache;
    data__bufpool *bufs; /* block buffers for writers and the cache */
    nb_pool *read_pool, *write_pool;

    /* Epochs, pins, holds and released slices: all under mu. */
    pthread_mutex_t mu;
    pthread_cond_t pins_changed;
    uint64_t epoch;
    data_pin_slot *pins; /* sorted by epoch, counts > 0 */
    size_t npins, cappins;
    data_hold *holds;
    size_t nholds, capholds;
    data_released *released;
    size_t nreleased, capreleased;
    bool collecting;
    bool reclaim_queued;        /* a reclaim task is on the write pool */
    pthread_mutex_t collect_mu; /* one collection at a time */

    /* Background readahead tasks in flight (for close). */
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_idle;
    size_t bg_pending;
};

/* A piece of work the pools run: a counter the submitter waits on. */
typedef struct data_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending;
    int rc; /* first error */
} data_wait;
void data__wait_init(data_wait *w);
void data__wait_add(data_wait *w, size_t n);
void data__wait_done(data_wait *w, int rc);
int data__wait_all(data_wait *w);
/* Waits until fewer than n are pending; returns the first error so far. */
int data__wait_below(data_wait *w, size_t n);
void data__wait_destroy(data_wait *w);

/* Holds (store.c). */
void data__hold_add(data_store *s, uint64_t id);
/* Oldest pin epoch still active, or UINT64_MAX; caller holds s->mu. */
uint64_t data__pins_min_locked(data_store *s);
/* Background task accounting (store.c). */
void data__bg_begin(data_store *s);
void data__bg_end(data_store *s);
/* Waits until no background task (readahead) is pending. */
void data__bg_wait(data_store *s);

/* Reads block k whole into a buffer: *pooled tells whether *data is a pool
 * buffer (a full block) or malloc'ed (a short one; NULL when empty). */
int data__block_read(data_store *s, data_key k, uint8_t **data, size_t *len, bool *pooled);
/* Loads block k through the cache and returns a reference (read.c). */
int data__block_load(data_store *s, data_key k, data_block **out);

#endif
