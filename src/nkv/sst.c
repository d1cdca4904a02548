/*
 * sst.c — sorted string tables: builder, reader and the table cache.
 *
 * File layout:
 *
 *   data block 0 .. n-1      sorted internal keys (block.c), each followed
 *                            by a 5-byte trailer
 *   filter block             bloom filter over user keys (bloom.c) + trailer
 *   props block              block of "name" → varint (entries, ...) + trailer
 *   metaindex block          "nkv.bloom"/"nkv.props" → handle + trailer
 *   index block              per data block: separator key → handle + trailer
 *   footer (56 bytes)
 *
 * A handle is varint offset | varint size (size excludes the trailer).
 * Block trailer: compression type u8 (0 none, 1 snappy, 2 zstd) | masked
 * CRC32C (u32 le) of the stored block bytes followed by the type byte.
 *
 * Footer:
 *   offset  size  field
 *   0       40    metaindex handle | index handle, zero padded
 *   40      4     format version (u32 le) = 1
 *   44      4     masked CRC32C of bytes 0..43
 *   48      8     magic 0x006e6b7673737431 (u64 le)
 *
 * Every block read is checked against its CRC; a mismatch is reported with
 * the file name and block offset and returns NB_ECHECKSUM.
 */
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "nkv_int.h"

typedef struct handle {
    uint64_t off, size;
} handle;

static void handle_encode(nb_buf *b, handle h)
{
    NB_ASSERT(nb_buf_put_varint(b, h.off) == 0);
    NB_ASSERT(nb_buf_put_varint(b, h.size) == 0);
}

static const uint8_t *handle_decode(const uint8_t *p, const uint8_t *end, handle *h)
{
    if (!(p = nb_varint_decode(p, end, &h->off)))
        return NULL;
    return nb_varint_decode(p, end, &h->size);
}

/* ---------------------------------------------------------------------------
 * Builder
 * ------------------------------------------------------------------------- */
struct nkv_table_builder {
    nkv_table_opts o;
    const nkv_env *env;
    nkv_file *f;
    uint64_t off;
    nkv_block_builder data, index;
    nb_buf last_key;
    bool pending;
    handle pending_h;
    uint64_t *hashes;
    size_t nhashes, caphashes;
    nb_buf out;
    nb_buf wbuf; /* appended bytes not yet handed to env->append */
    nb_buf sep;
    ZSTD_CCtx *zc;
    uint64_t entries;
    int status;
};

nkv_table_builder *nkv__tb_new(const nkv_table_opts *o, const nkv_env *env, nkv_file *f)
{
    nkv_table_builder *b = nb_xcalloc(1, sizeof *b);
    b->o = *o;
    if (b->o.restart_interval <= 0)
        b->o.restart_interval = 16;
    if (b->o.block_size < 256)
        b->o.block_size = 256;
    b->env = env;
    b->f = f;
    nkv__bb_init(&b->data, b->o.restart_interval);
    nkv__bb_init(&b->index, 1);
    return b;
}

void nkv__tb_free(nkv_table_builder *b)
{
    if (!b)
        return;
    nkv__bb_free(&b->data);
    nkv__bb_free(&b->index);
    nb_buf_free(&b->last_key);
    nkv__buf_free(&b->out);
    nkv__buf_free(&b->wbuf);
    nb_buf_free(&b->sep);
    nkv__lfree(b->hashes, b->caphashes * sizeof *b->hashes);
    if (b->zc)
        ZSTD_freeCCtx(b->zc);
    free(b);
}

uint64_t nkv__tb_size(const nkv_table_builder *b)
{
    if (nkv__bb_empty(&b->data))
        return b->off;
    return b->off + nkv__bb_estimate(&b->data);
}

uint64_t nkv__tb_entries(const nkv_table_builder *b)
{
    return b->entries;
}

/* Tables are written in chunks of this size: one write(2) per block cost
 * more system time than the copy itself (LevelDB buffers 64 KiB, RocksDB
 * 1 MiB). Nothing reads a table before nkv__tb_finish flushed it. */
#define TB_WRITE_CHUNK (256u << 10)

static int emit_flush(nkv_table_builder *b)
{
    if (!b->wbuf.len)
        return 0;
    int rc = b->env->append(b->env->ctx, b->f, b->wbuf.data, b->wbuf.len);
    nb_buf_reset(&b->wbuf);
    return rc;
}

static int emit(nkv_table_builder *b, const void *p, size_t n)
{
    if (b->wbuf.len + n > TB_WRITE_CHUNK) {
        int rc = emit_flush(b);
        if (rc)
            return rc;
        if (n >= TB_WRITE_CHUNK) {
            if ((rc = b->env->append(b->env->ctx, b->f, p, n)) == 0)
                b->off += n;
            return rc;
        }
    }
    nkv__buf_reserve(&b->wbuf, n);
    NB_ASSERT(nb_buf_append(&b->wbuf, p, n) == 0);
    b->off += n;
    return 0;
}

static int write_raw(nkv_table_builder *b, nb_slice raw, int allow_compress, handle *h)
{
    nb_buf_reset(&b->out);
    int type = NKV_COMPRESSION_NONE;
    nb_slice stored = raw;
    if (allow_compress && b->o.compression == NKV_COMPRESSION_SNAPPY) {
        size_t cap = snappy_max_compressed_length(raw.len);
        nkv__buf_reserve(&b->out, cap + NKV_BLOCK_TRAILER);
        size_t n = cap;
        if (snappy_compress((const char *)raw.ptr, raw.len, (char *)b->out.data, &n) == SNAPPY_OK &&
            n < raw.len - raw.len / 8) {
            b->out.len = n;
            type = NKV_COMPRESSION_SNAPPY;
        }
    } else if (allow_compress && b->o.compression == NKV_COMPRESSION_ZSTD) {
        if (!b->zc)
            b->zc = ZSTD_createCCtx();
        size_t cap = ZSTD_compressBound(raw.len);
        nkv__buf_reserve(&b->out, cap + NKV_BLOCK_TRAILER);
        size_t n = ZSTD_compressCCtx(b->zc, b->out.data, cap, raw.ptr, raw.len,
                                     b->o.zstd_level ? b->o.zstd_level : 1);
        if (!ZSTD_isError(n) && n < raw.len - raw.len / 8) {
            b->out.len = n;
            type = NKV_COMPRESSION_ZSTD;
        }
    }
    /* An uncompressed block is emitted from raw, not copied into out. */
    if (type != NKV_COMPRESSION_NONE)
        stored = nb_buf_slice(&b->out);
    uint8_t trailer[NKV_BLOCK_TRAILER];
    trailer[0] = (uint8_t)type;
    uint32_t crc = nb_crc32c(nb_crc32c(0, stored.ptr, stored.len), trailer, 1);
    nb_put_u32le(trailer + 1, nb_crc32c_mask(crc));
    h->off = b->off;
    h->size = stored.len;
    int rc;
    if (type != NKV_COMPRESSION_NONE) {
        NB_ASSERT(nb_buf_append(&b->out, trailer, sizeof trailer) == 0); /* reserved */
        rc = emit(b, b->out.data, b->out.len);
    } else if ((rc = emit(b, stored.ptr, stored.len)) == 0) {
        rc = emit(b, trailer, sizeof trailer);
    }
    if (rc)
        return rc;
    if (b->out.cap > (4u << 20))
        nkv__buf_free(&b->out);
    return 0;
}

static int flush_data(nkv_table_builder *b)
{
    if (nkv__bb_empty(&b->data))
        return 0;
    int rc = write_raw(b, nkv__bb_finish(&b->data), 1, &b->pending_h);
    nkv__bb_reset(&b->data);
    if (rc)
        return rc;
    b->pending = true;
    return 0;
}

/* sep := a short internal key k with start <= k < limit. */
static void shortest_separator(nb_buf *sep, nb_slice start, nb_slice limit)
{
    nb_slice us = nkv__ukey(start), ul = nkv__ukey(limit);
    size_t m = us.len < ul.len ? us.len : ul.len, d = 0;
    while (d < m && us.ptr[d] == ul.ptr[d])
        d++;
    nb_buf_reset(sep);
    if (d < m && us.ptr[d] < 0xff && (uint8_t)(us.ptr[d] + 1) < ul.ptr[d]) {
        NB_ASSERT(nb_buf_append(sep, us.ptr, d + 1) == 0);
        sep->data[d]++;
        NB_ASSERT(nb_buf_put_u64le(sep, nkv__pack(NKV_MAX_SEQ, NKV_TYPE_VALUE)) == 0);
        return;
    }
    NB_ASSERT(nb_buf_append(sep, start.ptr, start.len) == 0);
}

static void short_successor(nb_buf *sep, nb_slice start)
{
    nb_slice us = nkv__ukey(start);
    nb_buf_reset(sep);
    for (size_t i = 0; i < us.len; i++) {
        if (us.ptr[i] != 0xff) {
            NB_ASSERT(nb_buf_append(sep, us.ptr, i + 1) == 0);
            sep->data[i]++;
            NB_ASSERT(nb_buf_put_u64le(sep, nkv__pack(NKV_MAX_SEQ, NKV_TYPE_VALUE)) == 0);
            return;
        }
    }
    NB_ASSERT(nb_buf_append(sep, start.ptr, start.len) == 0);
}

static void add_index(nkv_table_builder *b)
{
    uint8_t hb[NKV_MAX_HANDLE];
    uint8_t *p = nb_varint_encode(hb, b->pending_h.off);
    p = nb_varint_encode(p, b->pending_h.size);
    nkv__bb_add(&b->index, nb_buf_slice(&b->sep), nb_slice_of(hb, (size_t)(p - hb)));
    b->pending = false;
}

int nkv__tb_add(nkv_table_builder *b, nb_slice ikey, nb_slice val)
{
    if (b->status)
        return b->status;
    if (b->pending) {
        shortest_separator(&b->sep, nb_buf_slice(&b->last_key), ikey);
        add_index(b);
    }
    if (b->o.bloom_bits_per_key > 0) {
        nb_slice uk = nkv__ukey(ikey);
        if (b->last_key.len == 0 || nkv__ucmp(uk, nkv__ukey(nb_buf_slice(&b->last_key))) != 0) {
            if (b->nhashes == b->caphashes) {
                size_t cap = b->caphashes ? b->caphashes * 2 : 1024;
                b->hashes = nkv__lrealloc(b->hashes, b->caphashes * sizeof *b->hashes,
                                          cap * sizeof *b->hashes);
                b->caphashes = cap;
            }
            b->hashes[b->nhashes++] = nkv__bloom_hash(uk);
        }
    }
    nb_buf_reset(&b->last_key);
    NB_ASSERT(nb_buf_append(&b->last_key, ikey.ptr, ikey.len) == 0);
    nkv__bb_add(&b->data, ikey, val);
    b->entries++;
    if (nkv__bb_estimate(&b->data) >= b->o.block_size) {
        int rc = flush_data(b);
        if (rc)
            b->status = rc;
        return rc;
    }
    return 0;
}

int nkv__tb_finish(nkv_table_builder *b)
{
    if (b->status)
        return b->status;
    int rc = flush_data(b);
    if (rc)
        return b->status = rc;
    nkv_block_builder meta;
    nkv__bb_init(&meta, 1);
    nb_buf tmp = NB_BUF_INIT, hb = NB_BUF_INIT;
    handle filter_h = {0, 0}, props_h;
    if (b->o.bloom_bits_per_key > 0) {
        nkv__bloom_build(&tmp, b->hashes, b->nhashes, b->o.bloom_bits_per_key);
        rc = write_raw(b, nb_buf_slice(&tmp), 0, &filter_h);
        nb_buf_reset(&tmp);
    }
    if (!rc) {
        /* props: a user-key-ordered block of name → varint */
        nkv_block_builder pb;
        nkv__bb_init(&pb, 1);
        uint8_t vb[NB_VARINT64_MAX];
        uint8_t *e = nb_varint_encode(vb, b->entries);
        nkv__bb_add(&pb, nb_slice_str("entries"), nb_slice_of(vb, (size_t)(e - vb)));
        rc = write_raw(b, nkv__bb_finish(&pb), 0, &props_h);
        nkv__bb_free(&pb);
    }
    if (!rc) {
        if (b->o.bloom_bits_per_key > 0) {
            handle_encode(&hb, filter_h);
            nkv__bb_add(&meta, nb_slice_str(NKV_META_FILTER), nb_buf_slice(&hb));
        }
        nb_buf_reset(&hb);
        handle_encode(&hb, props_h);
        nkv__bb_add(&meta, nb_slice_str(NKV_META_PROPS), nb_buf_slice(&hb));
    }
    handle meta_h, index_h;
    if (!rc)
        rc = write_raw(b, nkv__bb_finish(&meta), 0, &meta_h);
    if (!rc && b->pending) {
        short_successor(&b->sep, nb_buf_slice(&b->last_key));
        add_index(b);
    }
    if (!rc)
        rc = write_raw(b, nkv__bb_finish(&b->index), 0, &index_h);
    if (!rc) {
        uint8_t foot[NKV_SST_FOOTER];
        memset(foot, 0, sizeof foot);
        nb_buf_reset(&hb);
        handle_encode(&hb, meta_h);
        handle_encode(&hb, index_h);
        memcpy(foot, hb.data, hb.len);
        nb_put_u32le(foot + 40, NKV_SST_VERSION);
        nb_put_u32le(foot + 44, nb_crc32c_mask(nb_crc32c(0, foot, 44)));
        nb_put_u64le(foot + 48, NKV_SST_MAGIC);
        rc = emit(b, foot, sizeof foot);
        if (!rc)
            rc = emit_flush(b);
    }
    nkv__bb_free(&meta);
    nkv__buf_free(&tmp); /* nkv__bloom_build grows it */
    nb_buf_free(&hb);
    if (rc)
        b->status = rc;
    return rc;
}

/* ---------------------------------------------------------------------------
 * Reader
 * ------------------------------------------------------------------------- */
struct nkv_table {
    const nkv_env *env;
    nkv_file *f;
    char *path;
    uint64_t size;
    nkv_cache *cache;
    uint64_t cache_id;
    nkv_block *index;
    uint8_t *filter;
    size_t filter_len;
    uint64_t entries;
};

/* Verifies the checksum of the stored block at h whose bytes and trailer
 * are at raw; for a compressed block also returns its inflated size. */
static int check_raw(nkv_table *t, const uint8_t *raw, handle h, size_t *ulen)
{
    if (nb_crc32c(0, raw, h.size + 1) != nb_crc32c_unmask(nb_get_u32le(raw + h.size + 1))) {
        nb__corrupt(__FILE__, __LINE__, "nkv: block checksum mismatch in %s at offset %llu",
                    t->path, (unsigned long long)h.off);
        return NB_ECHECKSUM;
    }
    uint8_t type = raw[h.size];
    *ulen = h.size;
    if (type == NKV_COMPRESSION_SNAPPY) {
        if (snappy_uncompressed_length((const char *)raw, h.size, ulen) != SNAPPY_OK ||
            *ulen > (1u << 30))
            return NB_CORRUPT("nkv: bad snappy block in %s at offset %llu", t->path,
                              (unsigned long long)h.off);
    } else if (type == NKV_COMPRESSION_ZSTD) {
        unsigned long long u = ZSTD_getFrameContentSize(raw, h.size);
        if (u == ZSTD_CONTENTSIZE_ERROR || u == ZSTD_CONTENTSIZE_UNKNOWN || u > (1u << 30))
            return NB_CORRUPT("nkv: bad zstd block in %s at offset %llu", t->path,
                              (unsigned long long)h.off);
        *ulen = (size_t)u;
    } else if (type != NKV_COMPRESSION_NONE) {
        return NB_CORRUPT("nkv: unknown compression %d in %s at offset %llu", type, t->path,
                          (unsigned long long)h.off);
    }
    return 0;
}

/* Inflates the checked compressed block at raw into dst (ulen bytes). */
static int inflate_raw(nkv_table *t, const uint8_t *raw, handle h, uint8_t *dst, size_t ulen)
{
    bool ok;
    if (raw[h.size] == NKV_COMPRESSION_SNAPPY) {
        size_t n = ulen;
        ok =
            snappy_uncompress((const char *)raw, h.size, (char *)dst, &n) == SNAPPY_OK && n == ulen;
    } else {
        size_t r = ZSTD_decompress(dst, ulen, raw, h.size);
        ok = !ZSTD_isError(r) && r == ulen;
    }
    if (!ok)
        return NB_CORRUPT("nkv: bad %s block in %s at offset %llu",
                          raw[h.size] == NKV_COMPRESSION_SNAPPY ? "snappy" : "zstd", t->path,
                          (unsigned long long)h.off);
    return 0;
}

static int block_init(nkv_table *t, handle h, nkv_block *b, const uint8_t *data, size_t size)
{
    int rc = nkv__block_init_ref(b, data, size);
    if (rc)
        nb__corrupt(__FILE__, __LINE__, "nkv: malformed block in %s at offset %llu", t->path,
                    (unsigned long long)h.off);
    return rc;
}

/* The block at h whose stored bytes and trailer are at raw (a read-ahead
 * buffer), checksum verified: uncompressed blocks borrow raw into *ref,
 * compressed ones are inflated into an owned block. */
static int block_from_raw(nkv_table *t, const uint8_t *raw, handle h, nkv_block *ref,
                          nkv_block **out)
{
    size_t ulen;
    int rc = check_raw(t, raw, h, &ulen);
    if (rc)
        return rc;
    if (raw[h.size] == NKV_COMPRESSION_NONE) {
        *out = ref;
        return block_init(t, h, ref, raw, h.size);
    }
    nkv_block *b = nkv__lalloc(sizeof *b + ulen);
    b->alloc = sizeof *b + ulen;
    uint8_t *data = (uint8_t *)(b + 1);
    if ((rc = inflate_raw(t, raw, h, data, ulen)) != 0 ||
        (rc = block_init(t, h, b, data, ulen)) != 0) {
        nkv__lfree(b, b->alloc);
        return rc;
    }
    *out = b; /* one allocation: nkv__block_free frees it */
    return 0;
}

/* Where read_block puts a block: the heap (an owned block, freed with
 * nkv__block_free) or, when key is set, the memory of a block cache entry
 * (*e, unpublished). Either way the descriptor and the bytes are one
 * allocation, the descriptor first. */
typedef struct blk_dest {
    const uint8_t *key; /* 16-byte cache key, or NULL */
    nkv_cache_handle *e;
} blk_dest;

static nkv_block *dest_alloc(blk_dest *d, size_t n)
{
    if (!d->key) {
        nkv_block *b = nkv__lalloc(sizeof(nkv_block) + n);
        b->alloc = sizeof(nkv_block) + n;
        return b;
    }
    void *mem;
    d->e = nkv__cache_alloc(d->key, 16, sizeof(nkv_block) + n, &mem);
    return mem;
}

static void dest_free(blk_dest *d, nkv_block *b, nkv_cache_handle *e)
{
    if (d->key)
        nkv__cache_abandon(e);
    else
        nkv__lfree(b, b->alloc);
}

/* Reads the block at h with one pread, verifying its checksum (every read
 * from the file is verified; the cache then holds verified blocks). */
static int read_block_to(nkv_table *t, handle h, blk_dest *d, nkv_block **out)
{
    *out = NULL;
    if (h.off + h.size + NKV_BLOCK_TRAILER > t->size || h.size > (1u << 30))
        return NB_CORRUPT("nkv: block handle %llu+%llu past the end of %s",
                          (unsigned long long)h.off, (unsigned long long)h.size, t->path);
    size_t n = h.size + NKV_BLOCK_TRAILER;
    nkv_block *b = dest_alloc(d, n);
    nkv_cache_handle *e = d->e;
    uint8_t *raw = (uint8_t *)(b + 1);
    size_t got = 0, ulen = 0;
    int rc = t->env->read_at(t->env->ctx, t->f, h.off, raw, n, &got);
    if (!rc && got != n)
        rc = NB_CORRUPT("nkv: short read of block at offset %llu in %s", (unsigned long long)h.off,
                        t->path);
    if (!rc)
        rc = check_raw(t, raw, h, &ulen);
    if (!rc && raw[h.size] != NKV_COMPRESSION_NONE) {
        nkv_block *ub = dest_alloc(d, ulen);
        rc = inflate_raw(t, raw, h, (uint8_t *)(ub + 1), ulen);
        dest_free(d, b, e);
        b = ub;
        e = d->e;
        raw = (uint8_t *)(ub + 1);
    }
    if (!rc)
        rc = block_init(t, h, b, raw, ulen);
    if (rc) {
        dest_free(d, b, e);
        return rc;
    }
    *out = b;
    return 0;
}

static int read_block(nkv_table *t, handle h, nkv_block **out)
{
    blk_dest d = {.key = NULL, .e = NULL};
    return read_block_to(t, h, &d, out);
}

/* A block for reading: *ch is the pinning cache handle, or NULL when the
 * caller owns *out. Misses are read straight into a new cache entry. */
static int get_block(nkv_table *t, handle h, bool fill, nkv_block **out, nkv_cache_handle **ch)
{
    *ch = NULL;
    if (!t->cache)
        return read_block(t, h, out);
    uint8_t key[16];
    nb_put_u64le(key, t->cache_id);
    nb_put_u64le(key + 8, h.off);
    nkv_cache_handle *e = nkv__cache_lookup(t->cache, key, sizeof key);
    if (e) {
        *ch = e;
        *out = nkv__cache_value(e);
        return 0;
    }
    if (!fill)
        return read_block(t, h, out);
    blk_dest d = {.key = key, .e = NULL};
    int rc = read_block_to(t, h, &d, out);
    if (rc)
        return rc;
    *ch = nkv__cache_publish(t->cache, d.e, *out, sizeof(nkv_block) + (*out)->size + 64, NULL);
    return 0;
}

static void put_block(nkv_table *t, nkv_block *b, nkv_cache_handle *ch)
{
    if (ch)
        nkv__cache_release(t->cache, ch);
    else
        nkv__block_free(b);
}

int nkv__table_open(const nkv_env *env, nkv_file *f, const char *path, uint64_t size,
                    nkv_cache *cache, nkv_table **out)
{
    *out = NULL;
    nkv_table *t = nb_xcalloc(1, sizeof *t);
    t->env = env;
    t->f = f;
    t->path = nb_xstrdup(path);
    t->size = size;
    t->cache = cache;
    t->cache_id = cache ? nkv__cache_new_id(cache) : 0;
    int rc = 0;
    uint8_t foot[NKV_SST_FOOTER];
    size_t got = 0;
    if (size < NKV_SST_FOOTER) {
        rc = NB_CORRUPT("nkv: %s is too short (%llu bytes) to be a table", path,
                        (unsigned long long)size);
        goto fail;
    }
    rc = env->read_at(env->ctx, f, size - NKV_SST_FOOTER, foot, sizeof foot, &got);
    if (rc)
        goto fail;
    if (got != sizeof foot || nb_get_u64le(foot + 48) != NKV_SST_MAGIC) {
        rc = NB_CORRUPT("nkv: bad magic in the footer of %s at offset %llu", path,
                        (unsigned long long)(size - NKV_SST_FOOTER));
        goto fail;
    }
    if (nb_crc32c_unmask(nb_get_u32le(foot + 44)) != nb_crc32c(0, foot, 44)) {
        nb__corrupt(__FILE__, __LINE__, "nkv: footer checksum mismatch in %s at offset %llu", path,
                    (unsigned long long)(size - NKV_SST_FOOTER));
        rc = NB_ECHECKSUM;
        goto fail;
    }
    if (nb_get_u32le(foot + 40) != NKV_SST_VERSION) {
        rc = NB_EVERSION;
        goto fail;
    }
    handle meta_h, index_h;
    const uint8_t *p = handle_decode(foot, foot + 40, &meta_h);
    if (!p || !handle_decode(p, foot + 40, &index_h)) {
        rc = NB_CORRUPT("nkv: bad footer handles in %s", path);
        goto fail;
    }
    if ((rc = read_block(t, index_h, &t->index)) != 0)
        goto fail;
    nkv_block *meta;
    if ((rc = read_block(t, meta_h, &meta)) != 0)
        goto fail;
    nkv__it *mi = nkv__block_iter(meta, false, NULL, NULL, NULL);
    for (IT_FIRST(mi); IT_VALID(mi) && !rc; IT_NEXT(mi)) {
        nb_slice k = IT_KEY(mi), v = IT_VAL(mi);
        handle h;
        if (!handle_decode(v.ptr, v.ptr + v.len, &h)) {
            rc = NB_CORRUPT("nkv: bad metaindex entry in %s", path);
            break;
        }
        nkv_block *b = NULL;
        if (nb_slice_eq(k, nb_slice_str(NKV_META_FILTER))) {
            /* The filter block is raw bytes, not a keyed block. */
            if (h.off + h.size + NKV_BLOCK_TRAILER > size) {
                rc = NB_CORRUPT("nkv: filter handle past the end of %s", path);
                break;
            }
            uint8_t *raw = nkv__lalloc(h.size + NKV_BLOCK_TRAILER);
            rc = env->read_at(env->ctx, f, h.off, raw, h.size + NKV_BLOCK_TRAILER, &got);
            if (!rc) {
                uint32_t crc = nb_crc32c(0, raw, h.size + 1);
                if (crc != nb_crc32c_unmask(nb_get_u32le(raw + h.size + 1))) {
                    nb__corrupt(__FILE__, __LINE__,
                                "nkv: filter checksum mismatch in %s at offset %llu", path,
                                (unsigned long long)h.off);
                    rc = NB_ECHECKSUM;
                }
            }
            if (rc) {
                nkv__lfree(raw, h.size + NKV_BLOCK_TRAILER);
                break;
            }
            t->filter = raw;
            t->filter_len = h.size;
        } else if (nb_slice_eq(k, nb_slice_str(NKV_META_PROPS))) {
            if ((rc = read_block(t, h, &b)) != 0)
                break;
            nkv__it *pi = nkv__block_iter(b, false, NULL, NULL, NULL);
            for (IT_FIRST(pi); IT_VALID(pi); IT_NEXT(pi)) {
                nb_slice pv = IT_VAL(pi);
                uint64_t x;
                if (nb_slice_eq(IT_KEY(pi), nb_slice_str("entries")) &&
                    nb_varint_decode(pv.ptr, pv.ptr + pv.len, &x))
                    t->entries = x;
            }
            IT_FREE(pi);
            nkv__block_free(b);
        }
    }
    if (!rc)
        rc = IT_STATUS(mi);
    IT_FREE(mi);
    nkv__block_free(meta);
    if (rc)
        goto fail;
    *out = t;
    return 0;
fail:
    t->f = f;
    nkv__table_free(t);
    return rc;
}

void nkv__table_free(nkv_table *t)
{
    if (!t)
        return;
    nkv__block_free(t->index);
    if (t->f)
        t->env->close(t->env->ctx, t->f);
    nkv__lfree(t->filter, t->filter_len + NKV_BLOCK_TRAILER);
    free(t->path);
    free(t);
}

uint64_t nkv__table_entries(const nkv_table *t)
{
    return t->entries;
}

int nkv__table_get(nkv_table *t, nb_slice ikey, bool fill_cache, bool *found, int *type,
                   uint64_t *out_seq, nb_buf *val)
{
    *found = false;
    nb_slice uk = nkv__ukey(ikey);
    if (t->filter &&
        !nkv__bloom_may_match(nb_slice_of(t->filter, t->filter_len), nkv__bloom_hash(uk)))
        return 0;
    /* Fast path: one index probe, one data block probe, no allocation. */
    uint8_t kb1[256], kb2[256];
    nb_slice ik, iv, dk, dv;
    int f1 = nkv__block_find(t->index, ikey, true, kb1, sizeof kb1, &ik, &iv, NULL);
    if (f1 == 0)
        return 0;
    if (f1 == 1) {
        handle h;
        if (!handle_decode(iv.ptr, iv.ptr + iv.len, &h))
            return NB_CORRUPT("nkv: bad index entry in %s", t->path);
        nkv_block *b;
        nkv_cache_handle *ch;
        int rc = get_block(t, h, fill_cache, &b, &ch);
        if (rc)
            return rc;
        int f2 = nkv__block_find(b, ikey, true, kb2, sizeof kb2, &dk, &dv, NULL);
        if (f2 == 1) {
            if (nkv__ucmp(nkv__ukey(dk), uk) == 0) {
                uint64_t tr = nkv__trailer(dk);
                *found = true;
                *type = (int)(tr & 0xff);
                *out_seq = tr >> 8;
                nb_buf_reset(val);
                NB_ASSERT(nb_buf_append(val, dv.ptr, dv.len) == 0);
            }
            put_block(t, b, ch);
            return 0;
        }
        put_block(t, b, ch);
        if (f2 < 0)
            return f2;
        /* Past the block's end, or a long key: take the general path. */
    } else if (f1 < 0) {
        return f1;
    }
    nkv__it *ii = nkv__block_iter(t->index, true, NULL, NULL, NULL);
    int rc = 0;
    for (IT_SEEK(ii, ikey); IT_VALID(ii); IT_NEXT(ii)) {
        nb_slice hv = IT_VAL(ii);
        handle h;
        if (!handle_decode(hv.ptr, hv.ptr + hv.len, &h)) {
            rc = NB_CORRUPT("nkv: bad index entry in %s", t->path);
            break;
        }
        nkv_block *b;
        nkv_cache_handle *ch;
        if ((rc = get_block(t, h, fill_cache, &b, &ch)) != 0)
            break;
        nkv__it *bi = nkv__block_iter(b, true, NULL, NULL, NULL);
        IT_SEEK(bi, ikey);
        bool done = false;
        if (IT_VALID(bi)) {
            nb_slice k = IT_KEY(bi);
            if (nkv__ucmp(nkv__ukey(k), uk) == 0) {
                uint64_t tr = nkv__trailer(k);
                *found = true;
                *type = (int)(tr & 0xff);
                *out_seq = tr >> 8;
                nb_slice v = IT_VAL(bi);
                nb_buf_reset(val);
                NB_ASSERT(nb_buf_append(val, v.ptr, v.len) == 0);
            }
            done = true;
        }
        rc = IT_STATUS(bi);
        IT_FREE(bi);
        put_block(t, b, ch);
        if (done || rc)
            break;
    }
    if (!rc)
        rc = IT_STATUS(ii);
    IT_FREE(ii);
    return rc;
}

/* ---- two-level iterator ---- */

typedef struct table_it {
    nkv__it base;
    nkv_table *t;
    bool fill;
    nkv__it *index; /* &index_it */
    nkv__it *data;  /* &data_it, or NULL */
    nkv_block_it index_it, data_it;
    handle data_h;
    nkv_block mblk; /* the data block when borrowed from the read-ahead window */
    int run;        /* data blocks entered one after another going forward */
    int status;
    /* Read-ahead for scans (see set_data): one pread per window. */
    uint8_t *rabuf;
    uint64_t ra_off;
    size_t ra_len, ra_cap;
    nkv__release_fn release;
    void *ra, *rb;
} table_it;

static void release_block(void *a, void *b)
{
    nkv_table *t = a;
    nkv_cache_handle *ch = b;
    nkv__cache_release(t->cache, ch);
}

static void free_block_cb(void *a, void *b)
{
    (void)a;
    nkv__block_free(b);
}

static void drop_data(table_it *it)
{
    if (it->data)
        nkv__block_iter_fini(&it->data_it);
    it->data = NULL;
}

static void set_data_it(table_it *it, nkv_block *b, nkv__release_fn release, void *a, void *arg)
{
    nkv__block_iter_init(&it->data_it, b, true, release, a, arg);
    it->data = &it->data_it.base;
}

#define TI_READAHEAD      (256u << 10)
#define TI_READAHEAD_FILL (64u << 10) /* user scans: one window per table */

/* The block at h through the read-ahead window (read forward from h when
 * h is outside it); *ch-free: uncompressed blocks borrow the window into
 * it->mblk, which stays valid until the next set_data. */
static int ra_block(table_it *it, handle h, nkv_block **out)
{
    nkv_table *t = it->t;
    if (h.off + h.size + NKV_BLOCK_TRAILER > t->size || h.size > (1u << 30))
        return NB_CORRUPT("nkv: block handle %llu+%llu past the end of %s",
                          (unsigned long long)h.off, (unsigned long long)h.size, t->path);
    size_t n = h.size + NKV_BLOCK_TRAILER;
    if (!it->rabuf || h.off < it->ra_off || h.off + n > it->ra_off + it->ra_len) {
        size_t ra = TI_READAHEAD;
        /* A user scan's window doubles as its run of blocks grows (64 KiB,
         * then 128, then 256 KiB from its 48th block on): a short scan
         * after a seek reads little, a long one makes a quarter of the
         * preads. 256 KiB still fits L2, where the checksum and the parse
         * find what the copy left. */
        if (it->fill)
            ra = it->run < 16   ? TI_READAHEAD_FILL
                 : it->run < 48 ? 2 * TI_READAHEAD_FILL
                                : TI_READAHEAD;
        size_t want = n > ra ? n : ra;
        if (want > t->size - h.off)
            want = (size_t)(t->size - h.off);
        /* The window sits in a page-aligned buffer at the offset h has in
         * its page, so the kernel's copy writes each byte at the page offset
         * it reads it from. A destination 1-63 bytes past its source modulo
         * 4 KiB (malloc's 16-byte offset did that to one window in 64) makes
         * loads wait on the stores before them (4K aliasing): 256 KiB preads
         * + CRC from the page cache ran 3.5x slower at a distance of 16 or
         * 17 bytes than at 0, 64, 1000 or -1. */
        size_t skew = (size_t)(h.off & 4095);
        if (want + skew > it->ra_cap) {
            nkv__lfree(it->rabuf, it->ra_cap);
            it->ra_cap = want + 4096;
            /* mapped (so page-aligned) from NKV_BIG on */
            it->rabuf = it->ra_cap >= NKV_BIG ? nkv__lalloc(it->ra_cap)
                                              : nb_xaligned_alloc(4096, it->ra_cap);
        }
        size_t got = 0;
        it->ra_len = 0;
        int rc = t->env->read_at(t->env->ctx, t->f, h.off, it->rabuf + skew, want, &got);
        if (rc)
            return rc;
        if (got < n)
            return NB_CORRUPT("nkv: short read of block at offset %llu in %s",
                              (unsigned long long)h.off, t->path);
        it->ra_off = h.off;
        it->ra_len = got;
    }
    const uint8_t *win = it->rabuf + (it->ra_off & 4095);
    return block_from_raw(t, win + (h.off - it->ra_off), h, &it->mblk, out);
}

static void set_data(table_it *it, bool fwd)
{
    if (!IT_VALID(it->index)) {
        drop_data(it);
        return;
    }
    nb_slice hv = IT_VAL(it->index);
    handle h;
    if (!handle_decode(hv.ptr, hv.ptr + hv.len, &h)) {
        it->status = NB_CORRUPT("nkv: bad index entry in %s", it->t->path);
        drop_data(it);
        return;
    }
    if (it->data && h.off == it->data_h.off)
        return;
    drop_data(it);
    nkv_block *b = NULL;
    nkv_cache_handle *ch = NULL;
    int rc = 0;
    /* Scans read ahead instead of a pread per block: at once when they
     * bypass the cache, after two blocks in a row otherwise (a seek reads
     * one block and stops). */
    if (fwd && (!it->fill || it->run >= 2)) {
        if ((rc = ra_block(it, h, &b)) != 0) {
            if (!it->status)
                it->status = rc;
            return;
        }
        it->data_h = h;
        if (b == &it->mblk)
            set_data_it(it, b, NULL, NULL, NULL);
        else
            set_data_it(it, b, free_block_cb, NULL, b);
        return;
    }
    rc = get_block(it->t, h, it->fill, &b, &ch);
    if (rc) {
        if (!it->status)
            it->status = rc;
        return;
    }
    it->data_h = h;
    if (ch)
        set_data_it(it, b, release_block, it->t, ch);
    else
        set_data_it(it, b, free_block_cb, NULL, b);
}

static void skip_fwd(table_it *it)
{
    while (!it->data || !IT_VALID(it->data)) {
        if (it->data && IT_STATUS(it->data) && !it->status)
            it->status = IT_STATUS(it->data);
        if (!IT_VALID(it->index) || it->status) {
            drop_data(it);
            return;
        }
        IT_NEXT(it->index);
        it->run++;
        set_data(it, true);
        if (it->data)
            IT_FIRST(it->data);
    }
}

static void skip_back(table_it *it)
{
    while (!it->data || !IT_VALID(it->data)) {
        if (it->data && IT_STATUS(it->data) && !it->status)
            it->status = IT_STATUS(it->data);
        if (!IT_VALID(it->index) || it->status) {
            drop_data(it);
            return;
        }
        IT_PREV(it->index);
        it->run = 0;
        set_data(it, false);
        if (it->data)
            IT_LAST(it->data);
    }
}

static bool ti_valid(nkv__it *i)
{
    table_it *it = (table_it *)i;
    return it->data && IT_VALID(it->data);
}
static void ti_first(nkv__it *i)
{
    table_it *it = (table_it *)i;
    it->status = 0;
    it->run = 0;
    IT_FIRST(it->index);
    set_data(it, true);
    if (it->data)
        IT_FIRST(it->data);
    skip_fwd(it);
}
static void ti_last(nkv__it *i)
{
    table_it *it = (table_it *)i;
    it->status = 0;
    it->run = 0;
    IT_LAST(it->index);
    set_data(it, false);
    if (it->data)
        IT_LAST(it->data);
    skip_back(it);
}
static void ti_seek(nkv__it *i, nb_slice k)
{
    table_it *it = (table_it *)i;
    it->status = 0;
    it->run = 0;
    IT_SEEK(it->index, k);
    set_data(it, true);
    if (it->data)
        IT_SEEK(it->data, k);
    skip_fwd(it);
}
static void ti_next(nkv__it *i)
{
    table_it *it = (table_it *)i;
    IT_NEXT(it->data);
    skip_fwd(it);
}
static void ti_prev(nkv__it *i)
{
    table_it *it = (table_it *)i;
    IT_PREV(it->data);
    skip_back(it);
}
static nb_slice ti_key(nkv__it *i)
{
    return IT_KEY(((table_it *)i)->data);
}
static nb_slice ti_val(nkv__it *i)
{
    return IT_VAL(((table_it *)i)->data);
}
static int ti_status(nkv__it *i)
{
    table_it *it = (table_it *)i;
    if (it->status)
        return it->status;
    return IT_STATUS(it->index);
}
static void ti_free(nkv__it *i)
{
    table_it *it = (table_it *)i;
    drop_data(it);
    nkv__block_iter_fini(&it->index_it);
    nkv__lfree(it->rabuf, it->ra_cap);
    if (it->release)
        it->release(it->ra, it->rb);
    nkv__it_release(it, sizeof *it);
}

static bool ti_may_contain(nkv__it *i, nb_slice ikey, uint64_t hash)
{
    (void)ikey;
    nkv_table *t = ((table_it *)i)->t;
    return !t->filter || nkv__bloom_may_match(nb_slice_of(t->filter, t->filter_len), hash);
}

static const nkv__it_ops table_ops = {ti_valid,  ti_first, ti_last,       ti_seek,
                                      ti_next,   ti_prev,  ti_key,        ti_val,
                                      ti_status, ti_free,  ti_may_contain};

nkv__it *nkv__table_iter(nkv_table *t, bool fill_cache, nkv__release_fn release, void *a, void *b)
{
    table_it *it = nkv__it_alloc(sizeof *it); /* large: initialised field by field */
    it->base.ops = &table_ops;
    it->t = t;
    it->fill = fill_cache;
    it->data = NULL;
    it->data_h = (handle){0, 0};
    it->status = 0;
    it->rabuf = NULL;
    it->ra_off = 0;
    it->ra_len = it->ra_cap = 0;
    nkv__block_iter_init(&it->index_it, t->index, true, NULL, NULL, NULL);
    it->index = &it->index_it.base;
    it->release = release;
    it->ra = a;
    it->rb = b;
    return &it->base;
}

int nkv__table_check(nkv_table *t, uint64_t *entries)
{
    nkv__it *it = nkv__table_iter(t, false, NULL, NULL, NULL);
    uint64_t n = 0;
    nb_buf prev = NB_BUF_INIT;
    int rc = 0;
    for (IT_FIRST(it); IT_VALID(it); IT_NEXT(it)) {
        nb_slice k = IT_KEY(it);
        if (k.len < 8) {
            rc = NB_CORRUPT("nkv: short internal key in %s", t->path);
            break;
        }
        if (prev.len && nkv__icmp(nb_buf_slice(&prev), k) >= 0) {
            rc = NB_CORRUPT("nkv: keys out of order in %s", t->path);
            break;
        }
        nb_buf_reset(&prev);
        NB_ASSERT(nb_buf_append(&prev, k.ptr, k.len) == 0);
        n++;
    }
    if (!rc)
        rc = IT_STATUS(it);
    IT_FREE(it);
    nb_buf_free(&prev);
    if (entries)
        *entries = n;
    return rc;
}

/* ---------------------------------------------------------------------------
 * Table cache: file number → open table, bounded by max_open_files.
 * ------------------------------------------------------------------------- */
struct nkv_table_cache {
    const nkv_env *env;
    char *dir;
    nkv_cache *c;
    nkv_cache *block_cache;
    _Atomic int npinned; /* tables pinned by their metadata (open_table) */
    int max_pins;
};

static void table_deleter(const void *key, size_t klen, void *value)
{
    (void)key;
    (void)klen;
    nkv__table_free(value);
}

nkv_table_cache *nkv__tcache_new(const nkv_env *env, const char *dir, int max_open,
                                 nkv_cache *block_cache)
{
    nkv_table_cache *tc = nb_xcalloc(1, sizeof *tc);
    tc->env = env;
    tc->dir = nb_xstrdup(dir);
    tc->c = nkv__cache_new((size_t)(max_open > 16 ? max_open : 16));
    tc->max_pins = (max_open > 16 ? max_open : 16) / 2;
    tc->block_cache = block_cache;
    return tc;
}

void nkv__tcache_free(nkv_table_cache *tc)
{
    if (!tc)
        return;
    nkv__cache_free(tc->c);
    free(tc->dir);
    free(tc);
}

static int find_table(nkv_table_cache *tc, uint64_t num, uint64_t size, nkv_cache_handle **out)
{
    uint8_t key[8];
    nb_put_u64le(key, num);
    nkv_cache_handle *h = nkv__cache_lookup(tc->c, key, sizeof key);
    if (h) {
        *out = h;
        return 0;
    }
    char *path = nkv__path(tc->dir, num, "sst");
    nkv_file *f;
    int rc = tc->env->open_read(tc->env->ctx, path, &f);
    if (rc) {
        NB_ERROR("nkv: cannot open table %s: %s", path, nb_strerror(rc));
        free(path);
        return rc;
    }
    nkv_table *t;
    rc = nkv__table_open(tc->env, f, path, size, tc->block_cache, &t);
    free(path);
    if (rc)
        return rc;
    *out = nkv__cache_insert(tc->c, key, sizeof key, t, 1, table_deleter);
    return 0;
}

/* f's table: its pin if it has one, else a cache reference (*h, to be
 * released), which becomes f's pin when fewer than half the cache's
 * entries are pinned — then *h is NULL and nothing is released. A pin is
 * dropped only when f's last reference goes (nkv__tcache_unpin); every
 * reader holds a version listing f, so it never sees the pin go. The
 * bound leaves the other half of max_open_files for tables not pinned. */
static int open_table(nkv_table_cache *tc, nkv_fmeta *f, nkv_table **t, nkv_cache_handle **h)
{
    nkv_cache_handle *p = atomic_load_explicit(&f->pin, memory_order_acquire);
    if (p) {
        *t = nkv__cache_value(p);
        *h = NULL;
        return 0;
    }
    int rc = find_table(tc, f->num, f->size, h);
    if (rc)
        return rc;
    *t = nkv__cache_value(*h);
    if (atomic_fetch_add_explicit(&tc->npinned, 1, memory_order_relaxed) >= tc->max_pins) {
        atomic_fetch_sub_explicit(&tc->npinned, 1, memory_order_relaxed);
        return 0;
    }
    atomic_store_explicit(&f->pin_tc, tc, memory_order_relaxed);
    nkv_cache_handle *none = NULL;
    if (atomic_compare_exchange_strong_explicit(&f->pin, &none, *h, memory_order_release,
                                                memory_order_acquire))
        *h = NULL; /* the pin keeps our reference */
    else
        atomic_fetch_sub_explicit(&tc->npinned, 1, memory_order_relaxed);
    return 0;
}

void nkv__tcache_unpin(nkv_fmeta *f)
{
    nkv_cache_handle *p = atomic_exchange_explicit(&f->pin, NULL, memory_order_acquire);
    if (!p)
        return;
    nkv_table_cache *tc = atomic_load_explicit(&f->pin_tc, memory_order_relaxed);
    nkv__cache_release(tc->c, p);
    atomic_fetch_sub_explicit(&tc->npinned, 1, memory_order_relaxed);
}

int nkv__tcache_get(nkv_table_cache *tc, nkv_fmeta *f, nb_slice ikey, bool fill_cache, bool *found,
                    int *type, uint64_t *seq, nb_buf *val)
{
    nkv_table *t;
    nkv_cache_handle *h;
    int rc = open_table(tc, f, &t, &h);
    if (rc)
        return rc;
    rc = nkv__table_get(t, ikey, fill_cache, found, type, seq, val);
    if (h)
        nkv__cache_release(tc->c, h);
    return rc;
}

static void release_table(void *a, void *b)
{
    nkv__cache_release(a, b);
}

nkv__it *nkv__tcache_iter(nkv_table_cache *tc, nkv_fmeta *f, bool fill_cache)
{
    nkv_table *t;
    nkv_cache_handle *h;
    int rc = open_table(tc, f, &t, &h);
    if (rc)
        return nkv__empty_iter(rc);
    return nkv__table_iter(t, fill_cache, h ? release_table : NULL, tc->c, h);
}

void nkv__tcache_evict(nkv_table_cache *tc, uint64_t num)
{
    uint8_t key[8];
    nb_put_u64le(key, num);
    nkv__cache_erase(tc->c, key, sizeof key);
}

int nkv__table_salvage(nkv_table *t, void (*fn)(void *arg, nb_slice k, nb_slice v), void *arg,
                       uint64_t *bad_blocks)
{
    *bad_blocks = 0;
    nkv__it *ii = nkv__block_iter(t->index, true, NULL, NULL, NULL);
    for (IT_FIRST(ii); IT_VALID(ii); IT_NEXT(ii)) {
        nb_slice hv = IT_VAL(ii);
        handle h;
        nkv_block *b;
        if (!handle_decode(hv.ptr, hv.ptr + hv.len, &h) || read_block(t, h, &b) != 0) {
            (*bad_blocks)++;
            continue;
        }
        nkv__it *bi = nkv__block_iter(b, true, NULL, NULL, NULL);
        for (IT_FIRST(bi); IT_VALID(bi); IT_NEXT(bi)) {
            nb_slice k = IT_KEY(bi);
            if (k.len >= 8)
                fn(arg, k, IT_VAL(bi));
        }
        if (IT_STATUS(bi))
            (*bad_blocks)++;
        IT_FREE(bi);
        nkv__block_free(b);
    }
    int rc = IT_STATUS(ii);
    IT_FREE(ii);
    return rc;
}
