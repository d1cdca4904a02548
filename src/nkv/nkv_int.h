/*
 * nkv_int.h — nkv's private structures and the helpers shared between its
 * files (nkv__ prefix). Nothing outside src/nkv and tests/unit/nkv includes
 * this header.
 */
#ifndef NKV_NKV_INT_H
#define NKV_NKV_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "nkv/nkv.h"

#include "nkv_format.h"

/* ---------------------------------------------------------------------------
 * Internal keys: user key followed by an 8-byte little-endian trailer
 * (sequence << 8 | type). They sort by user key ascending, then trailer
 * descending, so the newest version of a key comes first.
 * ------------------------------------------------------------------------- */
enum { NKV_TYPE_DELETE = 0, NKV_TYPE_VALUE = 1 };
#define NKV_MAX_SEQ ((1ull << 56) - 1)

static inline uint64_t nkv__pack(uint64_t seq, int type)
{
    return (seq << 8) | (uint64_t)type;
}
static inline nb_slice nkv__ukey(nb_slice ikey)
{
    return nb_slice_of(ikey.ptr, ikey.len - 8);
}
static inline uint64_t nkv__trailer(nb_slice ikey)
{
    return nb_get_u64le(ikey.ptr + ikey.len - 8);
}
/* memcmp order, 8 bytes at a time inline: keys are short and compared in
 * every search loop, where a libc call costs more than the comparison. */
static inline int nkv__ucmp(nb_slice a, nb_slice b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    const uint8_t *p = a.ptr, *q = b.ptr;
    for (; n >= 8; n -= 8, p += 8, q += 8) {
        uint64_t x, y;
        memcpy(&x, p, 8);
        memcpy(&y, q, 8);
        if (x != y) {
            x = __builtin_bswap64(x);
            y = __builtin_bswap64(y);
            return x < y ? -1 : 1;
        }
    }
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p < *q ? -1 : 1;
    return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}
static inline int nkv__icmp(nb_slice a, nb_slice b)
{
    int r = nkv__ucmp(nkv__ukey(a), nkv__ukey(b));
    if (r == 0) {
        uint64_t ta = nkv__trailer(a), tb = nkv__trailer(b);
        r = ta > tb ? -1 : ta < tb ? 1 : 0;
    }
    return r;
}
/* Writes ukey's internal key (ukey, then its trailer) to dst, which has
 * room for ukey.len + 8 bytes; returns its length. */
static inline size_t nkv__ikey_put(uint8_t *dst, nb_slice ukey, uint64_t seq, int type)
{
    if (ukey.len)
        memcpy(dst, ukey.ptr, ukey.len);
    nb_put_u64le(dst + ukey.len, nkv__pack(seq, type));
    return ukey.len + 8;
}
/* Appends ukey + trailer to buf (reset first). */
void nkv__ikey_build(nb_buf *buf, nb_slice ukey, uint64_t seq, int type);

/* ---------------------------------------------------------------------------
 * Environment helpers (env.c)
 * ------------------------------------------------------------------------- */
char *nkv__path(const char *dir, uint64_t num, const char *ext);
/* Reads a whole file through env into *out (owned, free()). */
int nkv__env_read_all(const nkv_env *env, const char *path, uint8_t **out, size_t *len);
int nkv__env_write_all_sync(const nkv_env *env, const char *path, const void *p, size_t n);

/* ---------------------------------------------------------------------------
 * Arena (memtable.c): bump allocation in 1 MiB chunks, freed all at once.
 * ------------------------------------------------------------------------- */
typedef struct nkv_arena {
    char *cur;
    size_t left;
    void *chunks; /* singly linked list through the first word */
    _Atomic size_t usage;
} nkv_arena;

void nkv__arena_init(nkv_arena *a);
void *nkv__arena_alloc(nkv_arena *a, size_t n); /* 8-byte aligned */
void nkv__arena_free(nkv_arena *a);

/* Buffers of NKV_BIG bytes and more are mapped, not malloc'd (memtable.c:
 * why). nkv__lalloc mallocs below NKV_BIG and maps from it on; the size
 * given to nkv__lrealloc and nkv__lfree must be the one allocated. Abort
 * when out of memory, as nb_xmalloc does. */
#define NKV_BIG (128u << 10)
void *nkv__lalloc(size_t n);
void *nkv__lrealloc(void *p, size_t old, size_t n);
void nkv__lfree(void *p, size_t n);
/* An nb_buf whose storage is allocated so: every growth must come through
 * nkv__buf_reserve (then nb_buf's appends never reallocate it), and it is
 * freed with nkv__buf_free. */
void nkv__buf_grow(nb_buf *b, size_t extra);
static inline void nkv__buf_reserve(nb_buf *b, size_t extra)
{
    if (b->len + extra + 1 > b->cap) /* +1: nb_buf_reserve's rule */
        nkv__buf_grow(b, extra);
}
void nkv__buf_free(nb_buf *b);

/* ---------------------------------------------------------------------------
 * Memtable: a skiplist of entries. Entry layout in the arena:
 *   varint ikey_len | ikey | varint val_len | val
 * One writer at a time (the caller serialises); readers never lock.
 * ------------------------------------------------------------------------- */
#define NKV_SKIP_MAX_HEIGHT 12
typedef struct nkv_skipnode nkv_skipnode;
typedef struct nkv_mem {
    _Atomic int refs;
    nkv_arena arena;
    nkv_skipnode *head;
    _Atomic int height;
    uint64_t rnd;
    uint64_t log_number; /* WAL holding this memtable's writes */
    uint64_t first_seq, last_seq;
    _Atomic uint64_t entries;
    /* Blocked bloom filter of the user keys added (64-byte lines, in the
     * arena), or NULL; written by the one writer, read without a lock. */
    _Atomic uint64_t *filter;
    uint64_t filter_lines; /* a power of two */
} nkv_mem;

nkv_mem *nkv__mem_new(void);
/* A memtable with a user-key filter of filter_bytes (rounded down to a
 * power of two of 64-byte lines; 0 = none): gets and seeks of keys it does
 * not hold skip the skiplist search. */
nkv_mem *nkv__mem_new_filtered(size_t filter_bytes);
/* False when m holds no entry with this user key. */
bool nkv__mem_may_contain(const nkv_mem *m, nb_slice ukey);
/* The same, given nkv__bloom_hash(ukey). */
bool nkv__mem_may_contain_hash(const nkv_mem *m, uint64_t h);
void nkv__mem_ref(nkv_mem *m);
void nkv__mem_unref(nkv_mem *m);
void nkv__mem_add(nkv_mem *m, uint64_t seq, int type, nb_slice key, nb_slice val);
/* 0 found (value copied into val, or *deleted set), NB_ENOTFOUND if no
 * version <= seq exists. */
int nkv__mem_get(nkv_mem *m, nb_slice ukey, uint64_t seq, nb_buf *val, bool *deleted);
size_t nkv__mem_usage(const nkv_mem *m);

/* ---------------------------------------------------------------------------
 * Internal iterators: over internal keys, both directions.
 * ------------------------------------------------------------------------- */
typedef struct nkv__it nkv__it;
typedef struct nkv__it_ops {
    bool (*valid)(nkv__it *);
    void (*seek_first)(nkv__it *);
    void (*seek_last)(nkv__it *);
    void (*seek)(nkv__it *, nb_slice ikey);
    void (*next)(nkv__it *);
    void (*prev)(nkv__it *);
    nb_slice (*key)(nkv__it *);
    nb_slice (*value)(nkv__it *);
    int (*status)(nkv__it *);
    void (*free)(nkv__it *);
    /* Optional (NULL: always true). False when the iterator holds no entry
     * with ikey's user key (its filter says so); a merging iterator then
     * need not position it for a seek to ikey that lands on that user key
     * elsewhere. May change the iterator's position. hash is
     * nkv__bloom_hash of ikey's user key, computed once per seek. */
    bool (*may_contain)(nkv__it *, nb_slice ikey, uint64_t hash);
} nkv__it_ops;
struct nkv__it {
    const nkv__it_ops *ops;
};
/* Memory for iterator objects (iter.c): a seek builds and frees an iterator
 * tree (about ten objects), and glibc's malloc + free of them was ~15 % of
 * a seek's instructions. Freed objects wait on a short per-thread list per
 * 64-byte size class for the next iterator; off under AddressSanitizer.
 * The memory is not zeroed; release with the size given to alloc. */
void *nkv__it_alloc(size_t size);
void nkv__it_release(void *p, size_t size);
#define IT_VALID(i)   ((i)->ops->valid(i))
#define IT_FIRST(i)   ((i)->ops->seek_first(i))
#define IT_LAST(i)    ((i)->ops->seek_last(i))
#define IT_SEEK(i, k) ((i)->ops->seek((i), (k)))
#define IT_NEXT(i)    ((i)->ops->next(i))
#define IT_PREV(i)    ((i)->ops->prev(i))
#define IT_KEY(i)     ((i)->ops->key(i))
#define IT_VAL(i)     ((i)->ops->value(i))
#define IT_STATUS(i)  ((i)->ops->status(i))
#define IT_FREE(i)    ((i)->ops->free(i))

nkv__it *nkv__mem_iter(nkv_mem *m); /* holds a ref on m */
/* The same without a ref: the caller keeps m alive while the iterator lives. */
nkv__it *nkv__mem_iter_borrow(nkv_mem *m);
nkv__it *nkv__empty_iter(int status);
/* Takes ownership of the n children (the array is copied). */
nkv__it *nkv__merge_iter(nkv__it **children, int n);
/* The same for children given newest first in tiers (age[i], copied,
 * non-decreasing): every version of a user key in a later tier is older
 * than every version of it in an earlier one (memtables, then L0, then
 * L1, ...); within a tier (L0's files may overlap) only maxseq orders
 * them. Once a seek lands on its target's user key, children holding only
 * older versions of it stay unpositioned (see mg_seek). */
typedef struct nkv__age {
    int tier;
    uint64_t maxseq; /* newest sequence the child can hold */
} nkv__age;
nkv__it *nkv__merge_iter_aged(nkv__it **children, const nkv__age *age, int n);
/* The user iterator over `in` (taken) at seq; cleanup(arg) runs at free. */
nkv_iter *nkv__db_iter_new(nkv__it *in, uint64_t seq, const nkv_read_options *ro,
                           void (*cleanup)(void *), void *arg);

/* ---------------------------------------------------------------------------
 * Write batch (batch.c). rep: seq u64 | count u32 | records; a record is
 *   type u8 | varint klen | key [| varint vlen | val]   (val only for puts)
 * ------------------------------------------------------------------------- */
struct nkv_batch {
    nb_buf rep;
};
#define NKV_BATCH_HEADER 12
void nkv__batch_set_seq(nkv_batch *b, uint64_t seq);
uint64_t nkv__batch_seq(const nkv_batch *b);
/* Appends the records of src to dst. */
void nkv__batch_append(nkv_batch *dst, const nkv_batch *src);
typedef void (*nkv__batch_fn)(void *arg, uint64_t seq, int type, nb_slice k, nb_slice v);
/* Calls fn per record with consecutive sequences; NB_ECORRUPT if malformed. */
int nkv__batch_iterate(const uint8_t *rep, size_t len, nkv__batch_fn fn, void *arg);
int nkv__batch_insert_mem(const uint8_t *rep, size_t len, nkv_mem *m);

/* ---------------------------------------------------------------------------
 * WAL (wal.c): LevelDB's block log format with CRC32C.
 * ------------------------------------------------------------------------- */
typedef struct nkv_wal_writer {
    const nkv_env *env;
    nkv_file *f;
    size_t block_off; /* offset within the current 32 KiB block */
    uint64_t size;
    nb_buf scratch;
} nkv_wal_writer;

void nkv__wal_writer_init(nkv_wal_writer *w, const nkv_env *env, nkv_file *f, uint64_t size);
int nkv__wal_add(nkv_wal_writer *w, const uint8_t *p, size_t n);
int nkv__wal_sync(nkv_wal_writer *w);
int nkv__wal_close(nkv_wal_writer *w);

typedef struct nkv_wal_reader {
    const uint8_t *data; /* whole file */
    size_t len;
    size_t off;
    const char *name; /* for corruption reports; borrowed */
    nb_buf rec;
    uint64_t dropped; /* bytes skipped due to corruption */
    uint64_t last_rec_off;
} nkv_wal_reader;

void nkv__wal_reader_init(nkv_wal_reader *r, const uint8_t *data, size_t len, const char *name);
/* 1 = record in *out (valid until the next call), 0 = clean end, or
 * NB_ECORRUPT / NB_ECHECKSUM for damage followed by more data (a torn tail
 * at the very end is a clean end). After an error, the reader can continue
 * with the next block. */
int nkv__wal_read(nkv_wal_reader *r, nb_slice *out);
void nkv__wal_reader_free(nkv_wal_reader *r);

/* ---------------------------------------------------------------------------
 * Blocks (block.c)
 * ------------------------------------------------------------------------- */
typedef struct nkv_block_builder {
    nb_buf buf;
    nb_buf restarts; /* u32 offsets */
    nb_buf last_key;
    int counter;
    int restart_interval;
    uint32_t nentries;
    bool finished;
} nkv_block_builder;

void nkv__bb_init(nkv_block_builder *b, int restart_interval);
void nkv__bb_add(nkv_block_builder *b, nb_slice key, nb_slice val);
nb_slice nkv__bb_finish(nkv_block_builder *b);
void nkv__bb_reset(nkv_block_builder *b);
size_t nkv__bb_estimate(const nkv_block_builder *b);
bool nkv__bb_empty(const nkv_block_builder *b);
void nkv__bb_free(nkv_block_builder *b);

typedef struct nkv_block {
    uint8_t *data; /* owned, or borrowed (a read-ahead window, or the same allocation as the
                      descriptor: nkv__block_free frees the descriptor only) */
    size_t size;
    size_t alloc; /* bytes of the descriptor's allocation (with data, when one),
                     for nkv__lfree; unused in caller-owned descriptors */
    bool owned;
    uint32_t restart_off;
    uint32_t nrestarts;
} nkv_block;

/* Takes ownership of data (malloc'd). NB_ECORRUPT when malformed. */
int nkv__block_new(uint8_t *data, size_t size, nkv_block **out);
/* Same, but borrows data, which must outlive the block. */
int nkv__block_new_ref(const uint8_t *data, size_t size, nkv_block **out);
/* Fills *b (caller's storage, never freed) borrowing data. */
int nkv__block_init_ref(nkv_block *b, const uint8_t *data, size_t size);
/* True when every entry is a restart point (so restart i is entry i), as
 * in index blocks. */
bool nkv__block_restart_each(const nkv_block *b);
void nkv__block_free(nkv_block *b);
/* Point search without allocating: the first entry >= target, its key
 * rebuilt in kbuf (kcap bytes), and in *ord (if not NULL) the index of its
 * restart when every entry is one. 1 found, 0 none, 2 a key is longer than
 * kcap (use an iterator), or NB_ECORRUPT. */
int nkv__block_find(nkv_block *b, nb_slice target, bool icmp, uint8_t *kbuf, size_t kcap,
                    nb_slice *key, nb_slice *val, uint32_t *ord);
/* Iterator over a block; cmp is internal (true) or user-key (false) order.
 * release(a, b) is called when the iterator is freed (to unpin a cache
 * handle or free the block); NULL = nothing to release. */
typedef void (*nkv__release_fn)(void *a, void *b);
nkv__it *nkv__block_iter(nkv_block *b, bool internal_cmp, nkv__release_fn release, void *a,
                         void *arg);
/* A block iterator in the caller's storage (tables embed theirs): init
 * needs no prior state; fini runs release and frees what init's iterator
 * grew. Keys up to sizeof kin bytes need no allocation. */
typedef struct nkv_block_it {
    nkv__it base;
    nkv_block *b;
    bool icmp;
    uint32_t cur;  /* offset of the current entry; >= restart_off when invalid */
    uint32_t next; /* offset after it */
    uint32_t ridx; /* restart block containing cur */
    uint8_t *key;  /* kin, or the heap once a key outgrew it */
    uint32_t klen, kcap;
    nb_slice val;
    int status;
    nkv__release_fn release;
    void *ra, *rb;
    uint8_t kin[64];
} nkv_block_it;
void nkv__block_iter_init(nkv_block_it *it, nkv_block *b, bool internal_cmp,
                          nkv__release_fn release, void *a, void *arg);
void nkv__block_iter_fini(nkv_block_it *it);
/* The restart the iterator's entry belongs to (its entry index when every
 * entry is a restart). */
uint32_t nkv__block_iter_restart(nkv__it *i);

/* ---------------------------------------------------------------------------
 * Bloom filter (bloom.c): cache-line-blocked, on user keys.
 * ------------------------------------------------------------------------- */
/* Builds a filter for the n 64-bit key hashes into buf (appended; buf grows
 * through nkv__buf_reserve, so it is freed with nkv__buf_free). */
void nkv__bloom_build(nb_buf *buf, const uint64_t *hashes, size_t n, int bits_per_key);
bool nkv__bloom_may_match(nb_slice filter, uint64_t hash);
static inline uint64_t nkv__bloom_hash(nb_slice ukey)
{
    return nb_hash64(ukey.ptr, ukey.len, 0x6e6b76626c6f6f6dull);
}

/* ---------------------------------------------------------------------------
 * Sharded LRU cache (cache.c). Entries are refcounted: a handle from
 * insert/lookup pins its value until released.
 * ------------------------------------------------------------------------- */
typedef struct nkv_cache nkv_cache;
typedef struct nkv_cache_handle nkv_cache_handle;
typedef void (*nkv_cache_deleter)(const void *key, size_t klen, void *value);

nkv_cache *nkv__cache_new(size_t capacity);
void nkv__cache_free(nkv_cache *c);
/* Inserts (replacing any entry with the same key) and returns a pinned
 * handle. The cache owns value and calls deleter once it is evicted or
 * replaced and unpinned. */
nkv_cache_handle *nkv__cache_insert(nkv_cache *c, const void *key, size_t klen, void *value,
                                    size_t charge, nkv_cache_deleter deleter);
/* Two-step insert for a value that lives inside its entry (one allocation
 * per cached block): nkv__cache_alloc returns an unpublished entry with
 * `extra` bytes at *mem (16-byte aligned); nkv__cache_publish inserts it as
 * nkv__cache_insert does (the entry's memory is freed after the deleter,
 * which may be NULL); nkv__cache_abandon frees one never published. */
nkv_cache_handle *nkv__cache_alloc(const void *key, size_t klen, size_t extra, void **mem);
nkv_cache_handle *nkv__cache_publish(nkv_cache *c, nkv_cache_handle *e, void *value, size_t charge,
                                     nkv_cache_deleter deleter);
void nkv__cache_abandon(nkv_cache_handle *e);
nkv_cache_handle *nkv__cache_lookup(nkv_cache *c, const void *key, size_t klen);
void nkv__cache_release(nkv_cache *c, nkv_cache_handle *h);
void *nkv__cache_value(nkv_cache_handle *h);
void nkv__cache_erase(nkv_cache *c, const void *key, size_t klen);
size_t nkv__cache_usage(nkv_cache *c);
void nkv__cache_stats(nkv_cache *c, uint64_t *hits, uint64_t *misses);
uint64_t nkv__cache_new_id(nkv_cache *c);

/* ---------------------------------------------------------------------------
 * Tables (sst.c)
 * ------------------------------------------------------------------------- */
typedef struct nkv_table_opts {
    size_t block_size;
    int restart_interval;
    int bloom_bits_per_key;
    nkv_compression compression;
    int zstd_level;
} nkv_table_opts;

typedef struct nkv_table_builder nkv_table_builder;
/* f is borrowed; the builder appends to it. */
nkv_table_builder *nkv__tb_new(const nkv_table_opts *o, const nkv_env *env, nkv_file *f);
/* Keys must be added in strictly increasing internal-key order. */
int nkv__tb_add(nkv_table_builder *b, nb_slice ikey, nb_slice val);
int nkv__tb_finish(nkv_table_builder *b); /* writes filter, index, footer */
uint64_t nkv__tb_size(const nkv_table_builder *b);
uint64_t nkv__tb_entries(const nkv_table_builder *b);
void nkv__tb_free(nkv_table_builder *b);

typedef struct nkv_table nkv_table;
/* Opens table file `path` of `size` bytes; takes ownership of f. cache may
 * be NULL. */
int nkv__table_open(const nkv_env *env, nkv_file *f, const char *path, uint64_t size,
                    nkv_cache *cache, nkv_table **out);
void nkv__table_free(nkv_table *t);
/* Point lookup of the newest version <= seq of ukey. *found set when a
 * version exists; then *type and val hold it, *out_seq its sequence. */
int nkv__table_get(nkv_table *t, nb_slice ikey, bool fill_cache, bool *found, int *type,
                   uint64_t *out_seq, nb_buf *val);
/* An iterator over the table; release(a, b) called at free. */
nkv__it *nkv__table_iter(nkv_table *t, bool fill_cache, nkv__release_fn release, void *a, void *b);
/* Reads and verifies every block; NB_ECORRUPT/NB_ECHECKSUM naming the
 * offset of the first bad one. */
int nkv__table_check(nkv_table *t, uint64_t *entries);
/* Calls fn for every entry of every readable data block, skipping (and
 * counting) damaged blocks. Fails only when the index is unreadable. */
int nkv__table_salvage(nkv_table *t, void (*fn)(void *arg, nb_slice k, nb_slice v), void *arg,
                       uint64_t *bad_blocks);
uint64_t nkv__table_entries(const nkv_table *t);

/* ---------------------------------------------------------------------------
 * Table cache (version.c): file number → open nkv_table, bounded.
 * ------------------------------------------------------------------------- */
typedef struct nkv_table_cache nkv_table_cache;
typedef struct nkv_fmeta nkv_fmeta;
nkv_table_cache *nkv__tcache_new(const nkv_env *env, const char *dir, int max_open,
                                 nkv_cache *block_cache);
void nkv__tcache_free(nkv_table_cache *tc);
/* Both open f's table through the cache and pin it in f (below). */
int nkv__tcache_get(nkv_table_cache *tc, nkv_fmeta *f, nb_slice ikey, bool fill_cache, bool *found,
                    int *type, uint64_t *seq, nb_buf *val);
nkv__it *nkv__tcache_iter(nkv_table_cache *tc, nkv_fmeta *f, bool fill_cache);
void nkv__tcache_evict(nkv_table_cache *tc, uint64_t num);
/* Drops f's pin (its last reference is going). */
void nkv__tcache_unpin(nkv_fmeta *f);

/* ---------------------------------------------------------------------------
 * Versions (version.c)
 * ------------------------------------------------------------------------- */
#define NKV_LEVELS 7

typedef struct nkv_vset nkv_vset;

/* Metadata of one table. Refcounted: every version listing it holds a ref;
 * when the last goes, its number is queued for deletion (vset->obsolete). */
struct nkv_fmeta {
    _Atomic int refs;
    nkv_vset *owner; /* NULL while only in an edit */
    uint64_t num;
    uint64_t size;
    uint64_t entries;
    uint64_t smallest_seq, largest_seq;
    nb_buf smallest; /* internal keys */
    nb_buf largest;
    bool being_compacted; /* under the db mutex */
    /* The open table, referenced in the table cache for as long as this
     * metadata lives (RocksDB's pinned table readers): a read through a
     * version holding f uses it without a cache lookup or release, so
     * reads share no table-cache lock or line. Set once, by CAS; at most
     * half the cache's capacity is pinned (nkv__tcache_get). */
    _Atomic(nkv_cache_handle *) pin;
    _Atomic(nkv_table_cache *) pin_tc;
};

typedef struct nkv_version {
    _Atomic int refs;
    nkv_vset *vset;
    nkv_fmeta **files[NKV_LEVELS]; /* L0 newest first; L1+ by smallest key */
    int nfiles[NKV_LEVELS];
} nkv_version;

typedef struct nkv_edit {
    bool has_log, has_next_file, has_last_seq;
    uint64_t log_number, next_file, last_seq;
    struct nkv_edit_del {
        int level;
        uint64_t num;
    } * deleted;
    size_t ndeleted, cap_deleted;
    struct nkv_edit_add {
        int level;
        nkv_fmeta *f; /* owns a ref */
    } * added;
    size_t nadded, cap_added;
    nb_buf compact_ptr[NKV_LEVELS]; /* empty = unchanged */
} nkv_edit;

void nkv__edit_init(nkv_edit *e);
void nkv__edit_free(nkv_edit *e);
void nkv__edit_delete(nkv_edit *e, int level, uint64_t num);
/* Adds a file; the edit takes a new ref on f. */
void nkv__edit_add(nkv_edit *e, int level, nkv_fmeta *f);
void nkv__edit_encode(const nkv_edit *e, nb_buf *out);
int nkv__edit_decode(nkv_edit *e, const uint8_t *p, size_t n);
/* A one-line human description (owned; free()). */
char *nkv__edit_describe(const nkv_edit *e);

nkv_fmeta *nkv__fmeta_new(void);
void nkv__fmeta_ref(nkv_fmeta *f);
void nkv__fmeta_unref(nkv_fmeta *f);

struct nkv_vset {
    const nkv_env *env;
    char *dir;
    nkv_version *current;
    uint64_t next_file;
    uint64_t log_number;
    uint64_t manifest_num;
    _Atomic uint64_t last_seq;
    nkv_wal_writer manifest;
    bool manifest_open;
    nb_buf compact_ptr[NKV_LEVELS];
    pthread_mutex_t obs_mu;
    uint64_t *obsolete; /* table numbers no version references */
    size_t nobsolete, capobsolete;
};

void nkv__vset_init(nkv_vset *vs, const nkv_env *env, const char *dir);
void nkv__vset_free(nkv_vset *vs);
/* Reads CURRENT and the MANIFEST it names. -ENOENT when CURRENT is missing. */
int nkv__vset_recover(nkv_vset *vs);
/* Applies e to the current version, writes it to the MANIFEST (creating a
 * new one holding a full snapshot when none is open), syncs it and installs
 * the result. Caller holds the db mutex (one apply at a time). */
int nkv__vset_apply(nkv_vset *vs, nkv_edit *e);
/* Writes a fresh MANIFEST holding the current state and points CURRENT at it. */
int nkv__vset_new_manifest(nkv_vset *vs);
void nkv__version_ref(nkv_version *v);
void nkv__version_unref(nkv_version *v);
/* Takes the queued obsolete table numbers (owned array; free()). */
uint64_t *nkv__vset_take_obsolete(nkv_vset *vs, size_t *n);
bool nkv__version_has_file(const nkv_version *v, uint64_t num);
/* Files of level `level` overlapping the user-key range [lo, hi]; NULL =
 * open bound. Returns an owned array (free()). */
nkv_fmeta **nkv__version_overlaps(nkv_version *v, int level, const nb_slice *lo, const nb_slice *hi,
                                  int *n);
uint64_t nkv__level_bytes(const nkv_version *v, int level);
/* Point lookup through the levels. */
int nkv__version_get(nkv_version *v, nkv_table_cache *tc, nb_slice ikey, bool fill, bool *found,
                     int *type, nb_buf *val);
/* Appends the version's iterators to *its (grown with realloc), newest
 * first, and their ages to *ages (same capacity), tiers from `tier` on. */
void nkv__version_iters(nkv_version *v, nkv_table_cache *tc, bool fill, nkv__it ***its,
                        nkv__age **ages, int tier, int *n, int *cap);
/* Concatenating iterator over the sorted, disjoint files (borrowed). */
nkv__it *nkv__files_iter(nkv_fmeta **files, int n, nkv_table_cache *tc, bool fill);

#endif
