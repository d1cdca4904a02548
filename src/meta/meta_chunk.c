/*
 * meta_chunk.c — chunk maps: reading, resolving (newest slice wins),
 * publishing written slices, trimming on truncate, compaction commits,
 * and the garbage list of slices nothing references any more.
 *
 * A chunk map is the list of slices written into one 64 MiB chunk, oldest
 * first. After every change the map is trimmed: slices that no byte of the
 * chunk shows any more are dropped (their ids go to the garbage list), and
 * so are holes at the bottom of the stack (zeros over nothing).
 *
 * Invariant: no chunk map shows data at file offsets >= the inode's size
 * (publish grows the size over what it appends; truncate covers the tail
 * of the boundary chunk with a hole and drops whole chunks beyond it), so
 * growing a file never uncovers old bytes.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include "common/coding.h"
#include "common/log.h"
#include "common/mem.h"
#include "meta/meta_int.h"

typedef struct smap {
    meta_slice *s;
    size_t n, cap;
} smap;

static void smap_push(smap *m, meta_slice s)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        m->s = nb_xrealloc(m->s, m->cap * sizeof(*m->s));
    }
    m->s[m->n++] = s;
}

static int decode_map(nb_slice v, uint64_t ino, uint32_t idx, smap *out)
{
    if (v.len < 1 || v.ptr[0] != META_CHUNK_V1 || (v.len - 1) % META_SLICE_LEN)
        return NB_CORRUPT("chunk map %llu/%u: bad record", (unsigned long long)ino, idx);
    for (size_t off = 1; off < v.len; off += META_SLICE_LEN) {
        const uint8_t *p = v.ptr + off;
        meta_slice s = {.id = nb_get_u64le(p),
                        .size = nb_get_u32le(p + 8),
                        .off = nb_get_u32le(p + 12),
                        .len = nb_get_u32le(p + 16),
                        .pos = nb_get_u32le(p + 20)};
        if ((uint64_t)s.pos + s.len > META_CHUNK_SIZE)
            return NB_CORRUPT("chunk map %llu/%u: slice past the chunk", (unsigned long long)ino,
                              idx);
        smap_push(out, s);
    }
    return 0;
}

static int read_map(meta *m, const kv_snapshot *snap, uint64_t ino, uint32_t idx, smap *out)
{
    uint8_t k[13];
    meta__key_chunk(k, ino, idx);
    nb_buf v = NB_BUF_INIT;
    int rc = kv_get(m->kv, snap, nb_slice_of(k, 13), &v);
    if (rc == NB_ENOTFOUND)
        rc = 0;
    else if (rc == 0)
        rc = decode_map(nb_buf_slice(&v), ino, idx, out);
    nb_buf_free(&v);
    return rc;
}

static void write_map(meta__txn *t, uint64_t ino, uint32_t idx, const smap *sm)
{
    uint8_t k[13];
    meta__key_chunk(k, ino, idx);
    if (sm->n == 0) {
        kv_batch_delete(t->b, nb_slice_of(k, 13));
        return;
    }
    nb_buf v = NB_BUF_INIT;
    int rc = nb_buf_put_u8(&v, META_CHUNK_V1);
    for (size_t i = 0; i < sm->n; i++) {
        const meta_slice *s = &sm->s[i];
        rc |= nb_buf_put_u64le(&v, s->id);
        rc |= nb_buf_put_u32le(&v, s->size);
        rc |= nb_buf_put_u32le(&v, s->off);
        rc |= nb_buf_put_u32le(&v, s->len);
        rc |= nb_buf_put_u32le(&v, s->pos);
    }
    NB_ASSERT(rc == 0);
    kv_batch_put(t->b, nb_slice_of(k, 13), nb_buf_slice(&v));
    nb_buf_free(&v);
}

int meta_chunk_read(meta *m, uint64_t ino, uint32_t idx, meta_slice **out, size_t *n)
{
    return meta__chunk_read_at(m, NULL, ino, idx, out, n);
}

int meta__chunk_read_at(meta *m, const kv_snapshot *snap, uint64_t ino, uint32_t idx,
                        meta_slice **out, size_t *n)
{
    smap sm = {0};
    int rc = read_map(m, snap, ino, idx, &sm);
    if (rc != 0 || sm.n == 0) {
        free(sm.s);
        sm.s = NULL;
        sm.n = 0;
    }
    *out = sm.s;
    *n = sm.n;
    return rc;
}

void meta_chunk_resolve(const meta_slice *s, size_t n, uint32_t limit, meta_slice **out,
                        size_t *nout)
{
    smap cur = {0}, next = {0};
    meta_slice hole = {.id = 0, .len = limit, .pos = 0};
    if (limit)
        smap_push(&cur, hole);
    for (size_t i = 0; i < n; i++) {
        uint64_t a = s[i].pos, b = (uint64_t)s[i].pos + s[i].len;
        if (b > limit)
            b = limit;
        if (a >= b)
            continue;
        next.n = 0;
        int placed = 0;
        for (size_t j = 0; j < cur.n; j++) {
            meta_slice p = cur.s[j];
            uint64_t pa = p.pos, pb = (uint64_t)p.pos + p.len;
            if (pb <= a || pa >= b) {
                if (pa >= b && !placed) {
                    meta_slice ns = s[i];
                    ns.len = (uint32_t)(b - a);
                    smap_push(&next, ns);
                    placed = 1;
                }
                smap_push(&next, p);
                continue;
            }
            if (pa < a) {
                meta_slice l = p;
                l.len = (uint32_t)(a - pa);
                smap_push(&next, l);
            }
            if (!placed) {
                meta_slice ns = s[i];
                ns.len = (uint32_t)(b - a);
                smap_push(&next, ns);
                placed = 1;
            }
            if (pb > b) {
                meta_slice r = p;
                r.pos = (uint32_t)b;
                r.off = p.off + (uint32_t)(b - pa);
                r.len = (uint32_t)(pb - b);
                smap_push(&next, r);
            }
        }
        if (!placed) {
            meta_slice ns = s[i];
            ns.len = (uint32_t)(b - a);
            smap_push(&next, ns);
        }
        smap tmp = cur;
        cur = next;
        next = tmp;
    }
    free(next.s);
    *out = cur.s;
    *nout = cur.n;
}

static int has_id(const smap *sm, uint64_t id)
{
    for (size_t i = 0; i < sm->n; i++) {
        if (sm->s[i].id == id)
            return 1;
    }
    return 0;
}

/* Drops slices no byte shows and holes at the bottom; garbage-collects
 * dropped slice ids that no remaining entry uses. */
static void trim_map(meta__txn *t, smap *sm)
{
    meta_slice *vis = NULL;
    size_t nvis = 0;
    meta_chunk_resolve(sm->s, sm->n, (uint32_t)META_CHUNK_SIZE, &vis, &nvis);
    /* Entry i is visible if some piece comes from it. Pieces carry copies,
     * so match on (id, slice offset range, chunk position). */
    uint8_t *keep = nb_xcalloc(sm->n ? sm->n : 1, 1);
    for (size_t j = 0; j < nvis; j++) {
        const meta_slice *p = &vis[j];
        for (size_t i = sm->n; i-- > 0;) {
            const meta_slice *s = &sm->s[i];
            uint64_t sa = s->pos, sb = (uint64_t)s->pos + s->len;
            if (s->id == p->id && p->pos >= sa && (uint64_t)p->pos + p->len <= sb &&
                p->off - s->off == p->pos - s->pos) {
                keep[i] = 1;
                break;
            }
        }
    }
    free(vis);
    /* Holes with nothing (kept) below them show zeros over zeros. */
    for (size_t i = 0; i < sm->n && sm->s[i].id == 0; i++)
        keep[i] = 0;
    smap out = {0}, dropped = {0};
    for (size_t i = 0; i < sm->n; i++) {
        if (sm->s[i].id == 0 && i > 0) {
            int below = 0;
            for (size_t j = 0; j < i; j++)
                below |= keep[j];
            if (!below)
                keep[i] = 0;
        }
        if (keep[i])
            smap_push(&out, sm->s[i]);
        else if (sm->s[i].id)
            smap_push(&dropped, sm->s[i]);
    }
    for (size_t i = 0; i < dropped.n; i++) {
        if (!has_id(&out, dropped.s[i].id)) {
            int dup = 0;
            for (size_t j = 0; j < i; j++)
                dup |= dropped.s[j].id == dropped.s[i].id;
            if (!dup)
                meta__garbage_add(t, dropped.s[i].id, dropped.s[i].size);
        }
    }
    free(dropped.s);
    free(keep);
    free(sm->s);
    *sm = out;
}

int meta__truncate_chunks(meta__txn *t, uint64_t ino, uint64_t oldsize, uint64_t size)
{
    (void)oldsize;
    uint64_t first_gone = (size + META_CHUNK_SIZE - 1) / META_CHUNK_SIZE;
    uint8_t p[9], start[13];
    meta__key_ino(p, META_K_CHUNK, ino);
    meta__key_chunk(start, ino, (uint32_t)first_gone);
    kv_iter_options io = {.prefix = nb_slice_of(p, 9)};
    kv_iter *it = NULL;
    int rc = kv_iter_new(t->m->kv, &io, &it);
    if (rc != 0)
        return rc;
    for (kv_iter_seek(it, nb_slice_of(start, 13)); kv_iter_valid(it) && rc == 0; kv_iter_next(it)) {
        nb_slice key = kv_iter_key(it);
        if (key.len != 13)
            continue;
        smap sm = {0};
        rc = decode_map(kv_iter_value(it), ino, nb_get_u32be(key.ptr + 9), &sm);
        for (size_t i = 0; rc == 0 && i < sm.n; i++) {
            int dup = 0;
            for (size_t j = 0; j < i; j++)
                dup |= sm.s[j].id == sm.s[i].id;
            if (!dup)
                meta__garbage_add(t, sm.s[i].id, sm.s[i].size);
        }
        free(sm.s);
        kv_batch_delete(t->b, key);
    }
    if (rc == 0)
        rc = kv_iter_status(it);
    kv_iter_free(it);
    if (rc != 0 || size % META_CHUNK_SIZE == 0)
        return rc;

    uint32_t idx = (uint32_t)(size / META_CHUNK_SIZE), pos = (uint32_t)(size % META_CHUNK_SIZE);
    smap sm = {0};
    rc = read_map(t->m, NULL, ino, idx, &sm);
    int beyond = 0;
    for (size_t i = 0; i < sm.n; i++)
        beyond |= sm.s[i].id != 0 && sm.s[i].pos + sm.s[i].len > pos;
    if (rc == 0 && beyond) {
        meta_slice hole = {.id = 0, .len = (uint32_t)META_CHUNK_SIZE - pos, .pos = pos};
        smap_push(&sm, hole);
        trim_map(t, &sm);
        write_map(t, ino, idx, &sm);
    }
    free(sm.s);
    return rc;
}

static int cmp_write(const void *a, const void *b)
{
    const meta_write *x = *(const meta_write *const *)a, *y = *(const meta_write *const *)b;
    if (x->chunk != y->chunk)
        return x->chunk < y->chunk ? -1 : 1;
    return x < y ? -1 : x > y; /* stable: keep publish order within a chunk */
}

static void inline_put(kv_batch *b, uint64_t id, nb_slice bytes)
{
    uint8_t k[9];
    meta__key_ino(k, META_K_INLINE, id);
    nb_buf v = NB_BUF_INIT;
    int rc = nb_buf_put_u8(&v, META_INLINE_V1);
    rc |= nb_buf_append(&v, bytes.ptr, bytes.len);
    NB_ASSERT(rc == 0);
    kv_batch_put(b, nb_slice_of(k, 9), nb_buf_slice(&v));
    nb_buf_free(&v);
}

int meta_inline_get(meta *m, uint64_t id, nb_buf *out)
{
    return meta__inline_get_at(m, NULL, id, out);
}

int meta__inline_get_at(meta *m, const kv_snapshot *snap, uint64_t id, nb_buf *out)
{
    uint8_t k[9];
    meta__key_ino(k, META_K_INLINE, id);
    int rc = kv_get(m->kv, snap, nb_slice_of(k, 9), out);
    if (rc == 0 && (out->len < 1 || out->data[0] != META_INLINE_V1))
        rc = NB_CORRUPT("inline slice %llu: bad record", (unsigned long long)id);
    if (rc == 0) {
        memmove(out->data, out->data + 1, out->len - 1);
        out->len--;
    }
    return rc;
}

int meta_inline_put(meta *m, uint64_t id, nb_slice bytes)
{
    if (!(id & META_SLICE_INLINE))
        return NB_EUSAGE;
    kv_batch *b = kv_batch_new();
    inline_put(b, id, bytes);
    int rc = kv_write(m->kv, b, m->opts.sync ? KV_SYNC : 0);
    kv_batch_free(b);
    return rc;
}

int meta_publish(meta *m, uint64_t ino, const meta_write *w, size_t n, uint64_t size,
                 unsigned flags, int64_t mtime_ns, nb_slice objrec, int sync, meta_attr *out)
{
    return meta_publish_inline(m, ino, w, n, size, flags, mtime_ns, objrec, sync, NULL, 0, out);
}

int meta_publish_inline(meta *m, uint64_t ino, const meta_write *w, size_t n, uint64_t size,
                        unsigned flags, int64_t mtime_ns, nb_slice objrec, int sync,
                        const meta_inline *inl, size_t ninl, meta_attr *out)
{
    for (size_t i = 0; i < ninl; i++)
        if (!(inl[i].id & META_SLICE_INLINE))
            return -EINVAL;
    uint64_t end = 0;
    for (size_t i = 0; i < n; i++) {
        const meta_slice *s = &w[i].slice;
        if (s->len == 0 || (uint64_t)s->pos + s->len > META_CHUNK_SIZE ||
            (s->id && (uint64_t)s->off + s->len > s->size))
            return -EINVAL;
        uint64_t e = (uint64_t)w[i].chunk * META_CHUNK_SIZE + s->pos + s->len;
        if (e > end)
            end = e;
    }
    meta__txn t;
    meta__txn_init(&t, m);
    meta__txn_lock(&t, &ino, 1);
    meta__inode in;
    const meta_write **order = NULL;
    int rc = meta__inode_get(m, NULL, ino, &in);
    if (rc == 0 && S_ISDIR(in.a.mode))
        rc = -EISDIR;
    else if (rc == 0 && !S_ISREG(in.a.mode))
        rc = -EINVAL;
    uint64_t nsize = in.a.size;
    if (rc == 0) {
        if (flags & META_PUBLISH_SIZE)
            nsize = size;
        else if (size > nsize)
            nsize = size;
        if (end > nsize)
            nsize = end;
        if (nsize > META_MAX_FILE_SIZE)
            rc = -EFBIG;
    }
    if (rc == 0 && nsize > in.a.size && m->opts.max_bytes) {
        meta_statfs st;
        meta_statfs_get(m, &st);
        if (st.bytes_used + (nsize - in.a.size) > m->opts.max_bytes)
            rc = -ENOSPC;
    }
    if (rc == 0 && nsize < in.a.size)
        rc = meta__truncate_chunks(&t, ino, in.a.size, nsize);
    if (rc != 0)
        goto out;
    order = nb_xmalloc((n ? n : 1) * sizeof(*order));
    for (size_t i = 0; i < n; i++)
        order[i] = &w[i];
    qsort(order, n, sizeof(*order), cmp_write);
    for (size_t i = 0; i < n && rc == 0;) {
        uint32_t idx = order[i]->chunk;
        smap sm = {0};
        /* A file that never had a map (a new file's first publish) has
         * nothing to read. */
        rc = (in.flags & META_INO_F_NOCHUNK) ? 0 : read_map(m, NULL, ino, idx, &sm);
        for (; i < n && order[i]->chunk == idx; i++)
            smap_push(&sm, order[i]->slice);
        if (rc == 0) {
            trim_map(&t, &sm);
            write_map(&t, ino, idx, &sm);
        }
        free(sm.s);
    }
    if (rc != 0)
        goto out;
    int64_t now = mtime_ns ? mtime_ns : meta__now();
    if (n)
        in.flags &= (uint8_t)~META_INO_F_NOCHUNK;
    t.d_bytes += (int64_t)nsize - (int64_t)in.a.size;
    in.a.size = nsize;
    in.a.mtime_ns = in.a.ctime_ns = now;
    if (flags & META_PUBLISH_KILLPRIV) {
        in.a.mode &= ~(uint32_t)S_ISUID;
        if (in.a.mode & S_IXGRP)
            in.a.mode &= ~(uint32_t)S_ISGID;
    }
    if (objrec.ptr)
        in.flags &= (uint8_t)~META_INO_F_NOOBJREC;
    meta__inode_put(&t, &in);
    if (objrec.ptr) {
        uint8_t k[9];
        meta__key_ino(k, META_K_OBJREC, ino);
        kv_batch_put(t.b, nb_slice_of(k, 9), objrec);
    }
    for (size_t i = 0; i < ninl; i++)
        inline_put(t.b, inl[i].id, inl[i].bytes);
    if (flags & META_PUBLISH_UNSYNCED) {
        for (size_t i = 0; i < n; i++) {
            const meta_slice *s = &w[i].slice;
            bool seen = s->id == 0 || (s->id & META_SLICE_INLINE);
            for (size_t j = 0; j < i && !seen; j++)
                seen = w[j].slice.id == s->id;
            if (seen)
                continue;
            uint8_t k[9], v[5] = {META_UNSYNCED_V1};
            meta__key_ino(k, META_K_UNSYNC, s->id);
            nb_put_u32le(v + 1, s->size);
            kv_batch_put(t.b, nb_slice_of(k, 9), nb_slice_of(v, 5));
        }
    }
    rc = meta__txn_commit(&t, sync);
    if (rc == 0 && out)
        *out = in.a;
out:
    free(order);
    meta__txn_end(&t);
    return rc;
}

static int slice_eq(const meta_slice *a, const meta_slice *b)
{
    return a->id == b->id && a->size == b->size && a->off == b->off && a->len == b->len &&
           a->pos == b->pos;
}

int meta_chunk_replace(meta *m, uint64_t ino, uint32_t idx, const meta_slice *old, size_t nold,
                       const meta_slice *repl, size_t nnew)
{
    meta__txn t;
    meta__txn_init(&t, m);
    meta__txn_lock(&t, &ino, 1);
    smap sm = {0}, out = {0};
    int rc = read_map(m, NULL, ino, idx, &sm);
    if (rc == 0 && sm.n < nold)
        rc = NB_ECONFLICT;
    for (size_t i = 0; rc == 0 && i < nold; i++) {
        if (!slice_eq(&sm.s[i], &old[i]))
            rc = NB_ECONFLICT;
    }
    if (rc == 0) {
        for (size_t i = 0; i < nnew; i++)
            smap_push(&out, repl[i]);
        for (size_t i = nold; i < sm.n; i++)
            smap_push(&out, sm.s[i]);
        for (size_t i = 0; i < nold; i++) {
            int dup = 0;
            for (size_t j = 0; j < i; j++)
                dup |= old[j].id == old[i].id;
            if (!dup && !has_id(&out, old[i].id))
                meta__garbage_add(&t, old[i].id, old[i].size);
        }
        write_map(&t, ino, idx, &out);
        rc = meta__txn_commit(&t, 0);
    }
    free(sm.s);
    free(out.s);
    meta__txn_end(&t);
    return rc;
}

/* ---- garbage ---- */

static int slist(meta *m, uint8_t tag, uint64_t after, meta_garbage *out, size_t max, size_t *n)
{
    *n = 0;
    uint8_t p[1] = {tag}, start[9];
    meta__key_ino(start, tag, after + 1);
    kv_iter_options io = {.prefix = nb_slice_of(p, 1)};
    kv_iter *it = NULL;
    int rc = kv_iter_new(m->kv, &io, &it);
    if (rc != 0)
        return rc;
    for (kv_iter_seek(it, nb_slice_of(start, after == UINT64_MAX ? 1 : 9));
         kv_iter_valid(it) && *n < max; kv_iter_next(it)) {
        nb_slice k = kv_iter_key(it), v = kv_iter_value(it);
        if (k.len != 9 || v.len < 5 || v.ptr[0] != META_GARBAGE_V1) {
            rc = NB_CORRUPT("bad %s record", tag == META_K_GARBAGE ? "garbage" : "unsynced");
            break;
        }
        uint64_t id = nb_get_u64be(k.ptr + 1);
        if (after == UINT64_MAX || id <= after)
            break;
        out[*n].id = id;
        out[*n].size = nb_get_u32le(v.ptr + 1);
        (*n)++;
    }
    if (rc == 0)
        rc = kv_iter_status(it);
    kv_iter_free(it);
    return rc;
}

int meta_garbage_list(meta *m, uint64_t after, meta_garbage *out, size_t max, size_t *n)
{
    return slist(m, META_K_GARBAGE, after, out, max, n);
}

int meta_unsynced_list(meta *m, uint64_t after, meta_garbage *out, size_t max, size_t *n)
{
    return slist(m, META_K_UNSYNC, after, out, max, n);
}

static int sdone(meta *m, uint8_t tag, const uint64_t *ids, size_t n)
{
    kv_batch *b = kv_batch_new();
    for (size_t i = 0; i < n; i++) {
        uint8_t k[9];
        meta__key_ino(k, tag, ids[i]);
        kv_batch_delete(b, nb_slice_of(k, 9));
    }
    int rc = kv_write(m->kv, b, m->opts.sync ? KV_SYNC : 0);
    kv_batch_free(b);
    return rc;
}

int meta_garbage_done(meta *m, const uint64_t *ids, size_t n)
{
    return sdone(m, META_K_GARBAGE, ids, n);
}

int meta_inline_drop(meta *m, const uint64_t *ids, size_t n)
{
    return n ? sdone(m, META_K_INLINE, ids, n) : 0;
}

int meta_unsynced_done(meta *m, const uint64_t *ids, size_t n)
{
    return n ? sdone(m, META_K_UNSYNC, ids, n) : 0;
}

static bool id_in(const uint64_t *ids, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* Calls fn with every chunk map in the store, decoded. fn returns 0 to go
 * on, 1 to stop, or an error (negative); so does this. */
typedef int (*chunk_map_fn)(void *arg, uint64_t ino, uint32_t idx, smap *sm);

static int each_chunk_map(meta *m, chunk_map_fn fn, void *arg)
{
    uint8_t p[1] = {META_K_CHUNK};
    kv_iter_options io = {.prefix = nb_slice_of(p, 1)};
    kv_iter *it = NULL;
    int rc = kv_iter_new(m->kv, &io, &it);
    if (rc != 0)
        return rc;
    for (kv_iter_seek_first(it); kv_iter_valid(it) && rc == 0; kv_iter_next(it)) {
        nb_slice k = kv_iter_key(it);
        if (k.len != 13) {
            rc = NB_CORRUPT("bad chunk key");
            break;
        }
        uint64_t ino = nb_get_u64be(k.ptr + 1);
        uint32_t idx = nb_get_u32be(k.ptr + 9);
        smap sm = {0};
        rc = decode_map(kv_iter_value(it), ino, idx, &sm);
        if (rc == 0)
            rc = fn(arg, ino, idx, &sm);
        free(sm.s);
    }
    if (rc == 0)
        rc = kv_iter_status(it);
    kv_iter_free(it);
    return rc;
}

typedef struct forget_ctx {
    meta__txn *t;
    const uint64_t *ids;
    size_t n;
} forget_ctx;

/* Drops the forgotten slices from one map, rewriting it only if it held one. */
static int forget_in_map(void *arg, uint64_t ino, uint32_t idx, smap *sm)
{
    forget_ctx *c = arg;
    size_t j = 0;
    for (size_t i = 0; i < sm->n; i++)
        if (!id_in(c->ids, c->n, sm->s[i].id))
            sm->s[j++] = sm->s[i];
    if (j != sm->n) {
        sm->n = j;
        write_map(c->t, ino, idx, sm);
    }
    return 0;
}

int meta_slices_forget(meta *m, const uint64_t *ids, size_t n)
{
    meta__txn t;
    meta__txn_init(&t, m);
    forget_ctx c = {&t, ids, n};
    int rc = each_chunk_map(m, forget_in_map, &c);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t uk[9];
        meta__key_ino(uk, META_K_UNSYNC, ids[i]);
        kv_batch_delete(t.b, nb_slice_of(uk, 9));
    }
    if (rc == 0)
        rc = meta__txn_commit(&t, 1);
    meta__txn_end(&t);
    return rc;
}

typedef struct scan_ctx {
    meta_slice_cb cb;
    void *arg;
} scan_ctx;

static int scan_map(void *arg, uint64_t ino, uint32_t idx, smap *sm)
{
    scan_ctx *c = arg;
    for (size_t i = 0; i < sm->n; i++)
        if (c->cb(c->arg, ino, idx, &sm->s[i]))
            return 1;
    return 0;
}

int meta_slice_scan(meta *m, meta_slice_cb cb, void *arg)
{
    scan_ctx c = {cb, arg};
    int rc = each_chunk_map(m, scan_map, &c);
    if (rc != 0)
        return rc < 0 ? rc : 0; /* 1: the callback stopped the scan */

    /* Parts of multipart uploads hold slices too (reported with ino 0). */
    uint8_t pp[1] = {META_K_PART};
    kv_iter_options po = {.prefix = nb_slice_of(pp, 1)};
    kv_iter *it = NULL;
    int stop = 0;
    rc = kv_iter_new(m->kv, &po, &it);
    if (rc != 0)
        return rc;
    for (kv_iter_seek_first(it); kv_iter_valid(it) && !stop && rc == 0; kv_iter_next(it)) {
        nb_slice k = kv_iter_key(it);
        if (k.len != 13)
            continue;
        meta_part pt;
        rc = meta__part_decode(kv_iter_value(it), nb_get_u32be(k.ptr + 9), &pt);
        for (size_t i = 0; rc == 0 && i < pt.nslices && !stop; i++)
            stop = cb(arg, 0, pt.number, &pt.slices[i]);
        if (rc == 0)
            meta_part_free(&pt);
    }
    if (rc == 0)
        rc = kv_iter_status(it);
    kv_iter_free(it);
    return rc;
}
