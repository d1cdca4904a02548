/*
 * meta.c — opening and formatting the store, transactions and the lock
 * table, inode and dentry records, the id allocator, usage counters, open
 * counts and the reclaiming of orphans.
 */
#include "meta/meta.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/coding.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/mem.h"
#include "meta/meta_int.h"

void meta_options_init(meta_options *o)
{
    memset(o, 0, sizeof(*o));
    o->root_mode = 0755;
    o->protected_hardlinks = 1;
}

const char *meta_default_engine(void)
{
    return kv_default_engine();
}

int64_t meta__now(void)
{
    return (int64_t)nb_wall_ns();
}

uint32_t meta__type(uint32_t mode)
{
    return mode & S_IFMT;
}

uint32_t meta__stripe(uint64_t ino)
{
    return (uint32_t)(nb_hash64(&ino, sizeof(ino), 0x6d657461) % META_NSTRIPES);
}

/* ---- keys ---- */

void meta__key_ino(uint8_t k[9], uint8_t tag, uint64_t ino)
{
    k[0] = tag;
    nb_put_u64be(k + 1, ino);
}

void meta__key_dentry(nb_buf *k, uint64_t parent, const char *name, size_t len)
{
    nb_buf_reset(k);
    int rc = nb_buf_put_u8(k, META_K_DENTRY);
    rc |= nb_buf_put_u64be(k, parent);
    rc |= nb_buf_append(k, name, len);
    NB_ASSERT(rc == 0);
}

void meta__key_cookie(uint8_t k[17], uint64_t parent, uint64_t cookie)
{
    k[0] = META_K_DCOOKIE;
    nb_put_u64be(k + 1, parent);
    nb_put_u64be(k + 9, cookie);
}

void meta__key_chunk(uint8_t k[13], uint64_t ino, uint32_t idx)
{
    k[0] = META_K_CHUNK;
    nb_put_u64be(k + 1, ino);
    nb_put_u32be(k + 9, idx);
}

/* ---- names ---- */

int meta__check_name(const char *name, size_t *len)
{
    size_t n = strnlen(name, META_NAME_MAX + 1);
    if (n == 0)
        return -ENOENT;
    if (n > META_NAME_MAX)
        return -ENAMETOOLONG;
    if (memchr(name, '/', n))
        return -EINVAL;
    *len = n;
    return 0;
}

int meta__is_dot(const char *name, size_t len)
{
    return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

/* ---- transactions ---- */

void meta__txn_init(meta__txn *t, meta *m)
{
    memset(t, 0, sizeof(*t));
    t->m = m;
    t->b = kv_batch_new();
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void meta__txn_lock(meta__txn *t, const uint64_t *inos, int n)
{
    NB_ASSERT(t->nstripes == 0 && n <= 8);
    uint32_t s[8];
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (inos[i])
            s[k++] = meta__stripe(inos[i]);
    }
    qsort(s, (size_t)k, sizeof(s[0]), cmp_u32);
    for (int i = 0; i < k; i++) {
        if (t->nstripes && t->stripes[t->nstripes - 1] == s[i])
            continue;
        t->stripes[t->nstripes++] = s[i];
        pthread_mutex_lock(&t->m->stripes[s[i]]);
    }
}

void meta__txn_unlock(meta__txn *t)
{
    for (int i = t->nstripes - 1; i >= 0; i--)
        pthread_mutex_unlock(&t->m->stripes[t->stripes[i]]);
    t->nstripes = 0;
    if (t->rename_locked) {
        pthread_mutex_unlock(&t->m->rename_mu);
        t->rename_locked = 0;
    }
}

void meta__gens_note(meta *m, meta__gens *g, uint64_t ino)
{
    NB_ASSERT(g->n < 4);
    uint32_t s = meta__stripe(ino);
    g->s[g->n] = s;
    g->g[g->n++] = atomic_load_explicit(&m->gens[s], memory_order_acquire);
}

bool meta__gens_same(meta *m, const meta__gens *g)
{
    /* The unlocked reads happen before these loads (seqlock read side). */
    atomic_thread_fence(memory_order_acquire);
    for (int i = 0; i < g->n; i++)
        if (atomic_load_explicit(&m->gens[g->s[i]], memory_order_relaxed) != g->g[i])
            return false;
    return true;
}

/* Seqlock write side: odd before the write can be seen, even after. */
static void gens_raise(meta__txn *t)
{
    for (int i = 0; i < t->nstripes; i++)
        atomic_fetch_add_explicit(&t->m->gens[t->stripes[i]], 1, memory_order_seq_cst);
}

static void usage_put(kv_batch *b, uint32_t stripe, int64_t inodes, int64_t bytes)
{
    uint8_t k[3] = {META_K_USAGE, (uint8_t)(stripe >> 8), (uint8_t)stripe};
    uint8_t v[17];
    v[0] = META_USAGE_V1;
    nb_put_u64le(v + 1, (uint64_t)inodes);
    nb_put_u64le(v + 9, (uint64_t)bytes);
    kv_batch_put(b, nb_slice_of(k, 3), nb_slice_of(v, 17));
}

static int txn_commit(meta__txn *t, int sync, uint64_t *seq)
{
    meta *m = t->m;
    uint32_t s = 0;
    int usage = t->d_inodes || t->d_bytes;
    if (usage) {
        NB_ASSERT(t->nstripes > 0);
        s = t->stripes[0];
        usage_put(t->b, s, atomic_load(&m->use_inodes[s]) + t->d_inodes,
                  atomic_load(&m->use_bytes[s]) + t->d_bytes);
    }
    gens_raise(t);
    int rc = seq ? kv_write_seq(m->kv, t->b, seq)
                 : kv_write(m->kv, t->b, (sync || m->opts.sync) ? KV_SYNC : 0);
    gens_raise(t);
    if (rc == 0 && usage) {
        atomic_fetch_add(&m->use_inodes[s], t->d_inodes);
        atomic_fetch_add(&m->use_bytes[s], t->d_bytes);
    }
    t->d_inodes = t->d_bytes = 0;
    kv_batch_clear(t->b);
    return rc;
}

int meta__txn_commit(meta__txn *t, int sync)
{
    return txn_commit(t, sync, NULL);
}

int meta__txn_commit_seq(meta__txn *t, uint64_t *seq)
{
    return txn_commit(t, 0, seq);
}

void meta__txn_end(meta__txn *t)
{
    meta__txn_unlock(t);
    kv_batch_free(t->b);
    t->b = NULL;
}

/* ---- inode records ---- */

int meta__inode_decode(nb_slice v, uint64_t ino, meta__inode *out)
{
    const uint8_t *p = v.ptr;
    if (v.len < 1)
        return NB_CORRUPT("inode %llu: empty record", (unsigned long long)ino);
    if (p[0] != META_INODE_V1)
        return p[0] > META_INODE_V1
                   ? NB_EVERSION
                   : NB_CORRUPT("inode %llu: version %u", (unsigned long long)ino, p[0]);
    if (v.len < META_INODE_LEN)
        return NB_CORRUPT("inode %llu: record of %zu bytes", (unsigned long long)ino, v.len);
    memset(out, 0, sizeof(*out));
    meta_attr *a = &out->a;
    a->ino = ino;
    a->mode = nb_get_u32le(p + META_INO_OFF_MODE);
    a->uid = nb_get_u32le(p + META_INO_OFF_UID);
    a->gid = nb_get_u32le(p + META_INO_OFF_GID);
    a->nlink = nb_get_u32le(p + META_INO_OFF_NLINK);
    a->size = nb_get_u64le(p + META_INO_OFF_SIZE);
    a->atime_ns = (int64_t)nb_get_u64le(p + META_INO_OFF_ATIME);
    a->mtime_ns = (int64_t)nb_get_u64le(p + META_INO_OFF_MTIME);
    a->ctime_ns = (int64_t)nb_get_u64le(p + META_INO_OFF_CTIME);
    a->btime_ns = (int64_t)nb_get_u64le(p + META_INO_OFF_BTIME);
    a->rdev = nb_get_u64le(p + META_INO_OFF_RDEV);
    a->generation = nb_get_u64le(p + META_INO_OFF_GEN);
    a->parent = nb_get_u64le(p + META_INO_OFF_PAR);
    out->cookie = nb_get_u64le(p + META_INO_OFF_COOK);
    out->flags = p[META_INO_OFF_FLAGS];
    return 0;
}

int meta__inode_get(meta *m, const kv_snapshot *s, uint64_t ino, meta__inode *out)
{
    uint8_t k[9];
    meta__key_ino(k, META_K_INODE, ino);
    nb_buf v = NB_BUF_INIT;
    int rc = kv_get(m->kv, s, nb_slice_of(k, 9), &v);
    if (rc == NB_ENOTFOUND)
        rc = -ENOENT;
    if (rc == 0)
        rc = meta__inode_decode(nb_buf_slice(&v), ino, out);
    nb_buf_free(&v);
    return rc;
}

void meta__inode_put(meta__txn *t, const meta__inode *in)
{
    uint8_t v[META_INODE_LEN] = {0};
    const meta_attr *a = &in->a;
    v[META_INO_OFF_VER] = META_INODE_V1;
    v[META_INO_OFF_FLAGS] = in->flags;
    nb_put_u32le(v + META_INO_OFF_MODE, a->mode);
    nb_put_u32le(v + META_INO_OFF_UID, a->uid);
    nb_put_u32le(v + META_INO_OFF_GID, a->gid);
    nb_put_u32le(v + META_INO_OFF_NLINK, a->nlink);
    nb_put_u64le(v + META_INO_OFF_SIZE, a->size);
    nb_put_u64le(v + META_INO_OFF_ATIME, (uint64_t)a->atime_ns);
    nb_put_u64le(v + META_INO_OFF_MTIME, (uint64_t)a->mtime_ns);
    nb_put_u64le(v + META_INO_OFF_CTIME, (uint64_t)a->ctime_ns);
    nb_put_u64le(v + META_INO_OFF_BTIME, (uint64_t)a->btime_ns);
    nb_put_u64le(v + META_INO_OFF_RDEV, a->rdev);
    nb_put_u64le(v + META_INO_OFF_GEN, a->generation);
    nb_put_u64le(v + META_INO_OFF_PAR, a->parent);
    nb_put_u64le(v + META_INO_OFF_COOK, in->cookie);
    uint8_t k[9];
    meta__key_ino(k, META_K_INODE, a->ino);
    kv_batch_put(t->b, nb_slice_of(k, 9), nb_slice_of(v, META_INODE_LEN));
}

int meta_getattr(meta *m, uint64_t ino, meta_attr *out)
{
    meta__inode in;
    int rc = meta__inode_get(m, NULL, ino, &in);
    if (rc == 0)
        *out = in.a;
    return rc;
}

/* ---- dentries ---- */

int meta__dentry_get(meta *m, const kv_snapshot *s, uint64_t parent, const char *name, size_t len,
                     uint64_t *ino, uint32_t *type, uint64_t *cookie)
{
    nb_buf k = NB_BUF_INIT, v = NB_BUF_INIT;
    meta__key_dentry(&k, parent, name, len);
    int rc = kv_get(m->kv, s, nb_buf_slice(&k), &v);
    if (rc == NB_ENOTFOUND) {
        rc = -ENOENT;
    } else if (rc == 0) {
        if (v.len < META_DENTRY_LEN || v.data[0] != META_DENTRY_V1) {
            rc = NB_CORRUPT("dentry %llu/%.*s: bad record", (unsigned long long)parent, (int)len,
                            name);
        } else {
            *type = (uint32_t)v.data[1] << 12;
            *ino = nb_get_u64le(v.data + 2);
            if (cookie)
                *cookie = nb_get_u64le(v.data + 10);
        }
    }
    nb_buf_free(&k);
    nb_buf_free(&v);
    return rc;
}

void meta__dentry_add(meta__txn *t, meta__inode *dir, const char *name, size_t len, uint64_t ino,
                      uint32_t type)
{
    uint64_t cookie = dir->cookie++;
    nb_buf k = NB_BUF_INIT;
    meta__key_dentry(&k, dir->a.ino, name, len);
    uint8_t v[META_DENTRY_LEN];
    v[0] = META_DENTRY_V1;
    v[1] = (uint8_t)(type >> 12);
    nb_put_u64le(v + 2, ino);
    nb_put_u64le(v + 10, cookie);
    kv_batch_put(t->b, nb_buf_slice(&k), nb_slice_of(v, META_DENTRY_LEN));

    uint8_t ck[17];
    meta__key_cookie(ck, dir->a.ino, cookie);
    nb_buf_reset(&k);
    int rc = nb_buf_append(&k, v, 2);
    rc |= nb_buf_put_u64le(&k, ino);
    rc |= nb_buf_append(&k, name, len);
    NB_ASSERT(rc == 0);
    kv_batch_put(t->b, nb_slice_of(ck, 17), nb_buf_slice(&k));
    nb_buf_free(&k);
}

void meta__dentry_del(meta__txn *t, uint64_t parent, const char *name, size_t len, uint64_t cookie)
{
    nb_buf k = NB_BUF_INIT;
    meta__key_dentry(&k, parent, name, len);
    kv_batch_delete(t->b, nb_buf_slice(&k));
    nb_buf_free(&k);
    uint8_t ck[17];
    meta__key_cookie(ck, parent, cookie);
    kv_batch_delete(t->b, nb_slice_of(ck, 17));
}

int meta__dir_empty(meta *m, uint64_t dir)
{
    uint8_t p[9];
    meta__key_ino(p, META_K_DCOOKIE, dir);
    kv_iter_options io = {.prefix = nb_slice_of(p, 9)};
    kv_iter *it = NULL;
    int rc = kv_iter_new(m->kv, &io, &it);
    if (rc != 0)
        return rc;
    kv_iter_seek_first(it);
    int empty = !kv_iter_valid(it);
    rc = kv_iter_status(it);
    kv_iter_free(it);
    return rc ? rc : empty;
}

/* ---- ids ---- */

static void ids_key(uint8_t k[2], int kind)
{
    k[0] = META_K_IDS;
    k[1] = (uint8_t)kind;
}

int meta_id_alloc(meta *m, int kind, uint32_t count, uint64_t *first)
{
    NB_ASSERT(kind == META_ID_INODE || kind == META_ID_SLICE);
    if (count == 0)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&m->id_mu);
    if (m->id_next[kind] + count > m->id_limit[kind]) {
        uint64_t lim = m->id_next[kind] + (count > META_ID_BATCH ? count : META_ID_BATCH);
        uint8_t k[2], v[9];
        ids_key(k, kind);
        v[0] = META_IDS_V1;
        nb_put_u64le(v + 1, lim);
        kv_batch *b = kv_batch_new();
        kv_batch_put(b, nb_slice_of(k, 2), nb_slice_of(v, 9));
        /* Durable before any id of the new range is used anywhere. */
        rc = kv_write(m->kv, b, KV_SYNC);
        kv_batch_free(b);
        if (rc == 0)
            m->id_limit[kind] = lim;
    }
    if (rc == 0) {
        *first = m->id_next[kind];
        m->id_next[kind] += count;
    }
    pthread_mutex_unlock(&m->id_mu);
    return rc;
}

uint64_t meta_id_high(meta *m, int kind)
{
    pthread_mutex_lock(&m->id_mu);
    uint64_t v = m->id_limit[kind];
    pthread_mutex_unlock(&m->id_mu);
    return v;
}

int meta__alloc_ino(meta *m, uint64_t *ino)
{
    return meta_id_alloc(m, META_ID_INODE, 1, ino);
}

/* ---- open counts ---- */

static meta__ocnt **ocnt_slot(meta *m, uint64_t ino)
{
    meta__ocnt **pp = &m->open[nb_hash64(&ino, sizeof(ino), 7) % META__OBUCKETS];
    while (*pp && (*pp)->ino != ino)
        pp = &(*pp)->next;
    return pp;
}

uint32_t meta__open_count(meta *m, uint64_t ino)
{
    pthread_mutex_lock(&m->open_mu);
    meta__ocnt *o = *ocnt_slot(m, ino);
    uint32_t n = o ? o->n : 0;
    pthread_mutex_unlock(&m->open_mu);
    return n;
}

/* Adds delta to ino's open count. Returns 1 if that dropped the last open
 * of an inode marked orphan, else 0. */
static int open_add(meta *m, uint64_t ino, int delta)
{
    int last_orphan = 0;
    pthread_mutex_lock(&m->open_mu);
    meta__ocnt **pp = ocnt_slot(m, ino);
    if (!*pp) {
        NB_ASSERT(delta > 0);
        *pp = nb_xcalloc(1, sizeof(**pp));
        (*pp)->ino = ino;
    }
    meta__ocnt *o = *pp;
    NB_ASSERT(delta > 0 || o->n >= (uint32_t)-delta);
    o->n = (uint32_t)((int64_t)o->n + delta);
    if (o->n == 0) {
        last_orphan = o->orphan;
        *pp = o->next;
        free(o);
    }
    pthread_mutex_unlock(&m->open_mu);
    return last_orphan;
}

void meta__open_mark_orphan(meta *m, uint64_t ino)
{
    pthread_mutex_lock(&m->open_mu);
    meta__ocnt *o = *ocnt_slot(m, ino);
    if (o)
        o->orphan = true;
    pthread_mutex_unlock(&m->open_mu);
}

void meta__open_add(meta *m, uint64_t ino)
{
    open_add(m, ino, 1);
}

int meta_open_attr(meta *m, uint64_t ino, meta_attr *out)
{
    /* Read before locking; under the lock (which orders the count against
     * unlink's and release's decisions) again only if the inode's stripe
     * saw a commit in between (meta__gens). */
    meta__gens g = {0};
    meta__gens_note(m, &g, ino);
    meta__inode in;
    int rc = meta__inode_get(m, NULL, ino, &in);
    meta__txn t;
    meta__txn_init(&t, m);
    meta__txn_lock(&t, &ino, 1);
    if (!meta__gens_same(m, &g))
        rc = meta__inode_get(m, NULL, ino, &in);
    if (rc == 0) {
        (void)open_add(m, ino, 1);
        if (out)
            *out = in.a;
    }
    meta__txn_end(&t);
    return rc;
}

int meta_open_inode(meta *m, uint64_t ino)
{
    return meta_open_attr(m, ino, NULL);
}

int meta_release(meta *m, uint64_t ino)
{
    meta__txn t;
    meta__txn_init(&t, m);
    meta__txn_lock(&t, &ino, 1);
    int rc = 0;
    if (meta__open_count(m, ino) == 0) {
        rc = -EBADF;
    } else if (open_add(m, ino, -1)) {
        /* The last open of an inode orphaned while open: it goes unless it
         * was linked again. An inode never orphaned has links: no read. */
        meta__inode in;
        if (meta__inode_get(m, NULL, ino, &in) == 0 && in.a.nlink == 0) {
            rc = meta__destroy(&t, &in, true);
            if (rc == 0)
                rc = meta__txn_commit(&t, 0);
        }
    }
    meta__txn_end(&t);
    return rc;
}

/* ---- destroying inodes ---- */

void meta__garbage_add(meta__txn *t, uint64_t id, uint32_t size)
{
    if (id == 0)
        return;
    uint8_t k[9], v[5];
    meta__key_ino(k, META_K_GARBAGE, id);
    v[0] = META_GARBAGE_V1;
    nb_put_u32le(v + 1, size);
    kv_batch_put(t->b, nb_slice_of(k, 9), nb_slice_of(v, 5));
}

/* Deletes every key with the 9-byte prefix (tag, ino); for chunk maps also
 * moves their slices to the garbage list. */
static int delete_prefix(meta__txn *t, uint8_t tag, uint64_t ino)
{
    uint8_t p[9];
    meta__key_ino(p, tag, ino);
    kv_iter_options io = {.prefix = nb_slice_of(p, 9)};
    kv_iter *it = NULL;
    int rc = kv_iter_new(t->m->kv, &io, &it);
    if (rc != 0)
        return rc;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        kv_batch_delete(t->b, kv_iter_key(it));
        if (tag != META_K_CHUNK)
            continue;
        nb_slice v = kv_iter_value(it);
        if (v.len < 1 || v.ptr[0] != META_CHUNK_V1 || (v.len - 1) % META_SLICE_LEN) {
            rc = NB_CORRUPT("chunk map of inode %llu", (unsigned long long)ino);
            break;
        }
        for (size_t off = 1; off < v.len; off += META_SLICE_LEN)
            meta__garbage_add(t, nb_get_u64le(v.ptr + off), nb_get_u32le(v.ptr + off + 8));
    }
    if (rc == 0)
        rc = kv_iter_status(it);
    kv_iter_free(it);
    return rc;
}

int meta__destroy(meta__txn *t, const meta__inode *in, bool orphaned)
{
    uint64_t ino = in->a.ino;
    /* Only the records the inode can have: every delete is a kv write
     * (unlink's cost is mostly its count of kv writes). */
    uint8_t single[5];
    size_t n = 0;
    single[n++] = META_K_INODE;
    if (S_ISLNK(in->a.mode))
        single[n++] = META_K_SYMLINK;
    if (orphaned)
        single[n++] = META_K_ORPHAN;
    if (!(in->flags & META_INO_F_NOOBJREC))
        single[n++] = META_K_OBJREC;
    if (S_ISDIR(in->a.mode))
        single[n++] = META_K_BUCKET;
    uint8_t k[9];
    for (size_t i = 0; i < n; i++) {
        meta__key_ino(k, single[i], ino);
        kv_batch_delete(t->b, nb_slice_of(k, 9));
    }
    int rc = 0;
    if (!(in->flags & META_INO_F_NOXATTR))
        rc = delete_prefix(t, META_K_XATTR, ino);
    if (rc == 0 && S_ISREG(in->a.mode) && !(in->flags & META_INO_F_NOCHUNK))
        rc = delete_prefix(t, META_K_CHUNK, ino);
    t->d_inodes -= 1;
    if (S_ISREG(in->a.mode))
        t->d_bytes -= (int64_t)in->a.size;
    return rc;
}

static void orphan_put(meta__txn *t, uint64_t ino, int64_t now)
{
    uint8_t k[9], v[9];
    meta__key_ino(k, META_K_ORPHAN, ino);
    v[0] = META_ORPHAN_V1;
    nb_put_u64le(v + 1, (uint64_t)now);
    kv_batch_put(t->b, nb_slice_of(k, 9), nb_slice_of(v, 9));
}

void meta__orphan_put(meta__txn *t, uint64_t ino, int64_t now)
{
    orphan_put(t, ino, now);
    meta__open_mark_orphan(t->m, ino);
}

int meta__drop_link(meta__txn *t, meta__inode *in, int64_t now)
{
    NB_ASSERT(in->a.nlink > 0);
    in->a.nlink--;
    in->a.ctime_ns = now;
    if (S_ISDIR(in->a.mode))
        in->a.nlink = 0;
    if (in->a.nlink > 0) {
        meta__inode_put(t, in);
        return 0;
    }
    if (!S_ISDIR(in->a.mode) && meta__open_count(t->m, in->a.ino) > 0) {
        meta__orphan_put(t, in->a.ino, now);
        meta__inode_put(t, in);
        return 0;
    }
    return meta__destroy(t, in, false);
}

/* ---- statfs ---- */

void meta_statfs_get(meta *m, meta_statfs *out)
{
    int64_t in = 0, by = 0;
    for (int i = 0; i < META_NSTRIPES; i++) {
        in += atomic_load_explicit(&m->use_inodes[i], memory_order_relaxed);
        by += atomic_load_explicit(&m->use_bytes[i], memory_order_relaxed);
    }
    out->inodes_used = in > 0 ? (uint64_t)in : 0;
    out->bytes_used = by > 0 ? (uint64_t)by : 0;
    out->bytes_total = m->opts.max_bytes;
    out->inodes_total = m->opts.max_inodes;
}

/* ---- open / close ---- */

static int format_store(meta *m)
{
    meta__txn t;
    meta__txn_init(&t, m);
    int64_t now = meta__now();
    uint8_t fk[1] = {META_K_FORMAT}, fv[META_FORMAT_REC_LEN] = {0};
    nb_put_u32le(fv, META_FORMAT_MAGIC);
    nb_put_u32le(fv + 4, META_FORMAT_VERSION);
    nb_put_u64le(fv + 8, (uint64_t)now);
    kv_batch_put(t.b, nb_slice_of(fk, 1), nb_slice_of(fv, sizeof(fv)));

    meta__inode root;
    memset(&root, 0, sizeof(root));
    root.a.ino = META_ROOT_INO;
    root.a.mode = S_IFDIR | (m->opts.root_mode & 07777);
    root.a.uid = m->opts.root_uid;
    root.a.gid = m->opts.root_gid;
    root.a.nlink = 2;
    root.a.atime_ns = root.a.mtime_ns = root.a.ctime_ns = root.a.btime_ns = now;
    root.a.generation = 1;
    root.a.parent = META_ROOT_INO;
    root.cookie = META_COOKIE_FIRST;
    meta__inode_put(&t, &root);

    uint8_t ik[2], iv[9];
    iv[0] = META_IDS_V1;
    ids_key(ik, META_ID_INODE);
    nb_put_u64le(iv + 1, META_ROOT_INO + 1);
    kv_batch_put(t.b, nb_slice_of(ik, 2), nb_slice_of(iv, 9));
    ids_key(ik, META_ID_SLICE);
    nb_put_u64le(iv + 1, 1);
    kv_batch_put(t.b, nb_slice_of(ik, 2), nb_slice_of(iv, 9));
    usage_put(t.b, meta__stripe(META_ROOT_INO), 1, 0);
    int rc = kv_write(m->kv, t.b, KV_SYNC);
    meta__txn_end(&t);
    return rc;
}

static int check_format(meta *m)
{
    uint8_t fk[1] = {META_K_FORMAT};
    nb_buf v = NB_BUF_INIT;
    int rc = kv_get(m->kv, NULL, nb_slice_of(fk, 1), &v);
    if (rc == NB_ENOTFOUND) {
        kv_iter *it = NULL;
        rc = kv_iter_new(m->kv, NULL, &it);
        if (rc == 0) {
            kv_iter_seek_first(it);
            int empty = !kv_iter_valid(it);
            rc = kv_iter_status(it);
            kv_iter_free(it);
            if (rc == 0)
                rc = empty ? format_store(m) : NB_CORRUPT("metadata store without format record");
        }
    } else if (rc == 0) {
        if (v.len < META_FORMAT_REC_LEN || nb_get_u32le(v.data) != META_FORMAT_MAGIC)
            rc = NB_CORRUPT("bad metadata format record");
        else if (nb_get_u32le(v.data + 4) > META_FORMAT_VERSION)
            rc = NB_EVERSION;
        else if (nb_get_u32le(v.data + 4) < 1)
            rc = NB_CORRUPT("metadata format version 0");
        else if (nb_get_u32le(v.data + 4) < META_FORMAT_VERSION) {
            /* An older store: everything it holds reads the same; record
             * the new version before writing anything only it has (so an
             * older binary refuses the store instead of misreading it). */
            nb_put_u32le(v.data + 4, META_FORMAT_VERSION);
            kv_batch *b = kv_batch_new();
            kv_batch_put(b, nb_slice_of(fk, 1), nb_buf_slice(&v));
            rc = kv_write(m->kv, b, KV_SYNC);
            kv_batch_free(b);
        }
    }
    nb_buf_free(&v);
    return rc;
}

static int load_state(meta *m)
{
    nb_buf v = NB_BUF_INIT;
    int rc = 0;
    for (int kind = 0; kind < 2 && rc == 0; kind++) {
        uint8_t k[2];
        ids_key(k, kind);
        rc = kv_get(m->kv, NULL, nb_slice_of(k, 2), &v);
        if (rc == 0 && (v.len < 9 || v.data[0] != META_IDS_V1))
            rc = NB_CORRUPT("id allocator record %d", kind);
        if (rc == NB_ENOTFOUND)
            rc = NB_CORRUPT("missing id allocator record %d", kind);
        if (rc == 0)
            m->id_next[kind] = m->id_limit[kind] = nb_get_u64le(v.data + 1);
    }
    nb_buf_free(&v);
    if (rc != 0)
        return rc;
    uint8_t p[1] = {META_K_USAGE};
    kv_iter_options io = {.prefix = nb_slice_of(p, 1)};
    kv_iter *it = NULL;
    rc = kv_iter_new(m->kv, &io, &it);
    if (rc != 0)
        return rc;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        nb_slice key = kv_iter_key(it), val = kv_iter_value(it);
        if (key.len != 3 || val.len < 17 || val.ptr[0] != META_USAGE_V1) {
            rc = NB_CORRUPT("bad usage record");
            break;
        }
        uint32_t s = ((uint32_t)key.ptr[1] << 8) | key.ptr[2];
        if (s >= META_NSTRIPES) {
            rc = NB_CORRUPT("usage stripe %u", s);
            break;
        }
        atomic_store(&m->use_inodes[s], (int64_t)nb_get_u64le(val.ptr + 1));
        atomic_store(&m->use_bytes[s], (int64_t)nb_get_u64le(val.ptr + 9));
    }
    if (rc == 0)
        rc = kv_iter_status(it);
    kv_iter_free(it);
    return rc;
}

/* Inodes in the orphan set were open and unlinked when the last process
 * stopped: nobody has them open now, so they go. */
static int reclaim_orphans(meta *m)
{
    uint8_t p[1] = {META_K_ORPHAN};
    kv_iter_options io = {.prefix = nb_slice_of(p, 1)};
    kv_iter *it = NULL;
    int rc = kv_iter_new(m->kv, &io, &it);
    if (rc != 0)
        return rc;
    size_t n = 0, cap = 0;
    uint64_t *inos = NULL;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        nb_slice key = kv_iter_key(it);
        if (key.len != 9)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            inos = nb_xrealloc(inos, cap * sizeof(*inos));
        }
        inos[n++] = nb_get_u64be(key.ptr + 1);
    }
    rc = kv_iter_status(it);
    kv_iter_free(it);
    for (size_t i = 0; i < n && rc == 0; i++) {
        meta__txn t;
        meta__txn_init(&t, m);
        meta__txn_lock(&t, &inos[i], 1);
        meta__inode in;
        rc = meta__inode_get(m, NULL, inos[i], &in);
        if (rc == 0 && in.a.nlink == 0) {
            rc = meta__destroy(&t, &in, true);
        } else {
            uint8_t k[9];
            meta__key_ino(k, META_K_ORPHAN, inos[i]);
            kv_batch_delete(t.b, nb_slice_of(k, 9));
            if (rc == -ENOENT || rc == 0)
                rc = 0;
        }
        if (rc == 0)
            rc = meta__txn_commit(&t, 1);
        meta__txn_end(&t);
    }
    if (n)
        NB_INFO("meta: reclaimed %zu open-but-unlinked inodes", n);
    free(inos);
    return rc;
}

int meta_open(const char *dir, const meta_options *o, meta **out)
{
    *out = NULL;
    meta *m = nb_xcalloc(1, sizeof(*m));
    if (o)
        m->opts = *o;
    else
        meta_options_init(&m->opts);
    for (int i = 0; i < META_NSTRIPES; i++)
        pthread_mutex_init(&m->stripes[i], NULL);
    pthread_mutex_init(&m->rename_mu, NULL);
    pthread_mutex_init(&m->id_mu, NULL);
    pthread_mutex_init(&m->open_mu, NULL);
    m->objcache = meta__objcache_new();
    kv_options ko;
    kv_options_init(&ko);
    ko.cache_bytes = m->opts.kv_cache_bytes;
    int rc = kv_open(m->opts.engine, dir, &ko, &m->kv);
    if (rc == 0)
        rc = check_format(m);
    if (rc == 0)
        rc = load_state(m);
    if (rc == 0)
        rc = reclaim_orphans(m);
    if (rc != 0) {
        meta_close(m);
        return rc;
    }
    m->opts.engine = NULL; /* borrowed; not needed after open */
    *out = m;
    return 0;
}

void meta_close(meta *m)
{
    if (!m)
        return;
    kv_close(m->kv);
    meta__objcache_free(m->objcache);
    for (int i = 0; i < META__OBUCKETS; i++) {
        while (m->open[i]) {
            meta__ocnt *o = m->open[i];
            m->open[i] = o->next;
            free(o);
        }
    }
    for (int i = 0; i < META_NSTRIPES; i++)
        pthread_mutex_destroy(&m->stripes[i]);
    pthread_mutex_destroy(&m->rename_mu);
    pthread_mutex_destroy(&m->id_mu);
    pthread_mutex_destroy(&m->open_mu);
    free(m);
}

int meta_sync(meta *m)
{
    return kv_sync(m->kv);
}
