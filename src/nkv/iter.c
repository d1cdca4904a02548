/*
 * iter.c — the merging iterator over internal iterators and the public
 * nkv_iter that turns internal entries (every version, tombstones) into the
 * user's view at one sequence number, within optional bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "nkv_int.h"

/* ---------------------------------------------------------------------------
 * Per-thread recycling of iterator memory (nkv__it_alloc). A thread keeps
 * at most TL_DEPTH freed objects per 64-byte class up to 2 KiB (a few KiB
 * in practice: one seek's tree); they are freed when the thread exits.
 * ------------------------------------------------------------------------- */
#define TL_STEP    64
#define TL_CLASSES 32
#define TL_DEPTH   8
#if defined(__SANITIZE_ADDRESS__)
#define TL_ON 0 /* every free stays checked */
#else
#define TL_ON 1
#endif

typedef struct tl_cache {
    void *slot[TL_CLASSES][TL_DEPTH];
    uint8_t n[TL_CLASSES];
} tl_cache;

static _Thread_local tl_cache *tl;
static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;

static void tl_destroy(void *p)
{
    tl_cache *c = p;
    for (int k = 0; k < TL_CLASSES; k++)
        for (int j = 0; j < c->n[k]; j++)
            free(c->slot[k][j]);
    free(c);
    tl = NULL;
}

static void tl_init(void)
{
    NB_ASSERT(pthread_key_create(&tl_key, tl_destroy) == 0);
}

void *nkv__it_alloc(size_t size)
{
    size_t k = (size + TL_STEP - 1) / TL_STEP;
    if (!TL_ON || k > TL_CLASSES || k == 0)
        return nb_xmalloc(size);
    if (tl && tl->n[k - 1])
        return tl->slot[k - 1][--tl->n[k - 1]];
    return nb_xmalloc(k * TL_STEP); /* the whole class, so any object of it fits */
}

void nkv__it_release(void *p, size_t size)
{
    size_t k = (size + TL_STEP - 1) / TL_STEP;
    if (!p || !TL_ON || k > TL_CLASSES || k == 0) {
        free(p);
        return;
    }
    if (!tl) {
        pthread_once(&tl_once, tl_init);
        tl = nb_xmalloc(sizeof *tl);
        memset(tl, 0, sizeof *tl);
        NB_ASSERT(pthread_setspecific(tl_key, tl) == 0);
    }
    if (tl->n[k - 1] < TL_DEPTH)
        tl->slot[k - 1][tl->n[k - 1]++] = p;
    else
        free(p);
}

/* ---------------------------------------------------------------------------
 * Merging iterator: children are scanned linearly for the smallest (or,
 * backwards, the largest) key; there are rarely more than a dozen.
 * ------------------------------------------------------------------------- */
typedef struct merge_it {
    nkv__it base;
    nkv__it **kids;
    nb_slice *keys; /* each child's current key, cached after every move
                       (LevelDB's IteratorWrapper): comparisons make no
                       indirect calls */
    bool *valid;
    bool *deferred; /* not positioned by the last seek (see mg_seek) */
    nkv__age *age;  /* each child's age, or NULL (see nkv__merge_iter_aged) */
    int n;
    int cur; /* -1 when invalid */
    int ndeferred;
    bool forward;
    size_t size; /* of this allocation */
    /* The last seek's key, while ndeferred > 0: in short_target when it
     * fits (no allocation per seek), else in target. */
    size_t short_len;
    uint8_t short_target[64];
    nb_buf target;
} merge_it;

static void set_target(merge_it *m, nb_slice key)
{
    if (key.len <= sizeof m->short_target) {
        memcpy(m->short_target, key.ptr, key.len);
        m->short_len = key.len;
    } else {
        m->short_len = SIZE_MAX;
        nb_buf_reset(&m->target);
        NB_ASSERT(nb_buf_append(&m->target, key.ptr, key.len) == 0);
    }
}

static nb_slice target_of(merge_it *m)
{
    return m->short_len == SIZE_MAX ? nb_buf_slice(&m->target)
                                    : nb_slice_of(m->short_target, m->short_len);
}

static inline void sync_kid(merge_it *m, int i)
{
    m->valid[i] = IT_VALID(m->kids[i]);
    if (m->valid[i])
        m->keys[i] = IT_KEY(m->kids[i]);
}

static void find_smallest(merge_it *m)
{
    int s = -1;
    for (int i = 0; i < m->n; i++)
        if (m->valid[i] && (s < 0 || nkv__icmp(m->keys[i], m->keys[s]) < 0))
            s = i;
    m->cur = s;
}

static void find_largest(merge_it *m)
{
    int s = -1;
    for (int i = m->n - 1; i >= 0; i--)
        if (m->valid[i] && (s < 0 || nkv__icmp(m->keys[i], m->keys[s]) > 0))
            s = i;
    m->cur = s;
}

/* Positions the children a seek left unpositioned, at its target. */
static void materialize(merge_it *m)
{
    if (!m->ndeferred)
        return;
    nb_slice key = target_of(m);
    for (int k = 0; k < m->n; k++)
        if (m->deferred[k]) {
            m->deferred[k] = false;
            IT_SEEK(m->kids[k], key);
            sync_kid(m, k);
        }
    m->ndeferred = 0;
}

static void undefer(merge_it *m)
{
    if (m->ndeferred)
        memset(m->deferred, 0, (size_t)m->n);
    m->ndeferred = 0;
}

static bool mg_valid(nkv__it *i)
{
    return ((merge_it *)i)->cur >= 0;
}
static void mg_first(nkv__it *i)
{
    merge_it *m = (merge_it *)i;
    undefer(m);
    for (int k = 0; k < m->n; k++) {
        IT_FIRST(m->kids[k]);
        sync_kid(m, k);
    }
    find_smallest(m);
    m->forward = true;
}
static void mg_last(nkv__it *i)
{
    merge_it *m = (merge_it *)i;
    undefer(m);
    for (int k = 0; k < m->n; k++) {
        IT_LAST(m->kids[k]);
        sync_kid(m, k);
    }
    find_largest(m);
    m->forward = false;
}
/* A child whose filter rules out key's user key would land past every entry
 * of that user key, so when another child lands on it, that entry is the
 * smallest and the ruled-out children need not be positioned (no block
 * read) until the iterator moves on. A seek for a key present in one level
 * reads one data block instead of one per level. Likewise a child holding
 * only sequences below that of a version already found for the user key
 * (an older level, when children come newest first): its versions of the
 * key sort after the found one, so a key overwritten since it reached the
 * bottom level reads one block, not one per level holding a version. */
static void mg_seek(nkv__it *i, nb_slice key)
{
    merge_it *m = (merge_it *)i;
    m->ndeferred = 0;
    nb_slice ukey = nkv__ukey(key);
    int ftier = -1;    /* tier of the newest version of ukey found, if any */
    uint64_t fseq = 0; /* and its sequence */
    uint64_t hash = 0; /* nkv__bloom_hash(ukey), once asked for */
    bool hashed = false;
    for (int k = 0; k < m->n; k++) {
        nkv__it *c = m->kids[k];
        bool older = ftier >= 0 && (m->age[k].tier > ftier || m->age[k].maxseq < fseq);
        if (!older && c->ops->may_contain && !hashed) {
            hash = nkv__bloom_hash(ukey);
            hashed = true;
        }
        m->deferred[k] = older || (c->ops->may_contain && !c->ops->may_contain(c, key, hash));
        if (m->deferred[k]) {
            m->valid[k] = false;
            m->ndeferred++;
            continue;
        }
        IT_SEEK(c, key);
        sync_kid(m, k);
        if (m->age && m->valid[k] && nkv__ucmp(nkv__ukey(m->keys[k]), ukey) == 0) {
            uint64_t s = nkv__trailer(m->keys[k]) >> 8;
            if (ftier < 0 || s > fseq) {
                ftier = m->age[k].tier;
                fseq = s;
            }
        }
    }
    find_smallest(m);
    if (m->ndeferred) {
        if (m->cur >= 0 && nkv__ucmp(nkv__ukey(m->keys[m->cur]), nkv__ukey(key)) == 0) {
            set_target(m, key);
        } else {
            m->ndeferred = 0;
            for (int k = 0; k < m->n; k++)
                if (m->deferred[k]) {
                    m->deferred[k] = false;
                    IT_SEEK(m->kids[k], key);
                    sync_kid(m, k);
                }
            find_smallest(m);
        }
    }
    m->forward = true;
}
static void mg_next(nkv__it *i)
{
    merge_it *m = (merge_it *)i;
    materialize(m); /* their entries all follow the current one */
    if (!m->forward) {
        nb_slice key = m->keys[m->cur];
        for (int k = 0; k < m->n; k++) {
            if (k == m->cur)
                continue;
            nkv__it *c = m->kids[k];
            IT_SEEK(c, key);
            if (IT_VALID(c) && nkv__icmp(key, IT_KEY(c)) == 0)
                IT_NEXT(c);
            sync_kid(m, k);
        }
        m->forward = true;
    }
    IT_NEXT(m->kids[m->cur]);
    sync_kid(m, m->cur);
    find_smallest(m);
}
static void mg_prev(nkv__it *i)
{
    merge_it *m = (merge_it *)i;
    undefer(m); /* every other child is sought to the current key below */
    if (m->forward) {
        nb_slice key = m->keys[m->cur];
        for (int k = 0; k < m->n; k++) {
            if (k == m->cur)
                continue;
            nkv__it *c = m->kids[k];
            IT_SEEK(c, key);
            if (IT_VALID(c))
                IT_PREV(c);
            else
                IT_LAST(c);
            sync_kid(m, k);
        }
        m->forward = false;
    }
    IT_PREV(m->kids[m->cur]);
    sync_kid(m, m->cur);
    find_largest(m);
}
static nb_slice mg_key(nkv__it *i)
{
    merge_it *m = (merge_it *)i;
    return m->keys[m->cur];
}
static nb_slice mg_val(nkv__it *i)
{
    merge_it *m = (merge_it *)i;
    return IT_VAL(m->kids[m->cur]);
}
static int mg_status(nkv__it *i)
{
    merge_it *m = (merge_it *)i;
    for (int k = 0; k < m->n; k++) {
        if (m->deferred[k])
            continue; /* its state is from before the last seek */
        int rc = IT_STATUS(m->kids[k]);
        if (rc)
            return rc;
    }
    return 0;
}
static void mg_free(nkv__it *i)
{
    merge_it *m = (merge_it *)i;
    for (int k = 0; k < m->n; k++)
        IT_FREE(m->kids[k]);
    nb_buf_free(&m->target);
    nkv__it_release(m, m->size); /* kids, keys, age, valid and deferred live in it too */
}

static const nkv__it_ops merge_ops = {mg_valid, mg_first, mg_last,   mg_seek, mg_next, mg_prev,
                                      mg_key,   mg_val,   mg_status, mg_free, NULL};

nkv__it *nkv__merge_iter(nkv__it **children, int n)
{
    return nkv__merge_iter_aged(children, NULL, n);
}

nkv__it *nkv__merge_iter_aged(nkv__it **children, const nkv__age *age, int n)
{
    if (n == 1)
        return children[0];
    size_t k = (size_t)(n ? n : 1);
    /* malloc + memset, not calloc: glibc's calloc bypasses its per-thread
     * cache, and an iterator per seek made calloc ~10 % of a seek. */
    size_t sz = sizeof(merge_it) +
                k * (sizeof(nb_slice) + sizeof(nkv__it *) + (age ? sizeof(nkv__age) : 0) + 2);
    merge_it *m = memset(nkv__it_alloc(sz), 0, sz);
    m->size = sz;
    m->base.ops = &merge_ops;
    m->keys = (nb_slice *)(m + 1);
    m->kids = (nkv__it **)(m->keys + k);
    m->age = age ? (nkv__age *)(m->kids + k) : NULL;
    m->valid = age ? (bool *)(m->age + k) : (bool *)(m->kids + k);
    m->deferred = m->valid + k;
    if (age && n)
        memcpy(m->age, age, (size_t)n * sizeof *m->age);
    if (n)
        memcpy(m->kids, children, (size_t)n * sizeof *m->kids);
    m->n = n;
    m->cur = -1;
    m->forward = true;
    return &m->base;
}

/* ---------------------------------------------------------------------------
 * The user iterator (LevelDB's DBIter). Forward: the internal iterator sits
 * on the entry being returned. Reverse: it sits before every entry of the
 * current key, which is held in saved_key/saved_val.
 * ------------------------------------------------------------------------- */
struct nkv_iter {
    nkv__it *in;
    uint64_t seq;
    bool valid;
    bool forward;
    int status;
    nb_buf saved_key;
    nb_buf saved_val;
    nb_buf tmp;
    nb_buf lower, upper;
    bool has_lower, has_upper;
    uint8_t seek_key[64]; /* the internal key of a seek whose user key is short */
    void (*cleanup)(void *);
    void *cleanup_arg;
};

nkv_iter *nkv__db_iter_new(nkv__it *in, uint64_t seq, const nkv_read_options *ro,
                           void (*cleanup)(void *), void *arg)
{
    nkv_iter *it = memset(nkv__it_alloc(sizeof *it), 0, sizeof *it); /* not calloc: see above */
    it->in = in;
    it->seq = seq;
    it->forward = true;
    it->cleanup = cleanup;
    it->cleanup_arg = arg;
    if (ro && ro->lower_bound) {
        it->has_lower = true;
        NB_ASSERT(nb_buf_append(&it->lower, ro->lower_bound, ro->lower_bound_len) == 0);
    }
    if (ro && ro->upper_bound) {
        it->has_upper = true;
        NB_ASSERT(nb_buf_append(&it->upper, ro->upper_bound, ro->upper_bound_len) == 0);
    }
    return it;
}

void nkv_iter_free(nkv_iter *it)
{
    if (!it)
        return;
    IT_FREE(it->in);
    if (it->cleanup)
        it->cleanup(it->cleanup_arg);
    nb_buf_free(&it->saved_key);
    nb_buf_free(&it->saved_val);
    nb_buf_free(&it->tmp);
    nb_buf_free(&it->lower);
    nb_buf_free(&it->upper);
    nkv__it_release(it, sizeof *it);
}

static void save(nb_buf *b, nb_slice s)
{
    nb_buf_reset(b);
    NB_ASSERT(nb_buf_append(b, s.ptr, s.len) == 0);
}

static bool past_upper(nkv_iter *it, nb_slice ukey)
{
    return it->has_upper && nkv__ucmp(ukey, nb_buf_slice(&it->upper)) >= 0;
}

static bool before_lower(nkv_iter *it, nb_slice ukey)
{
    return it->has_lower && nkv__ucmp(ukey, nb_buf_slice(&it->lower)) < 0;
}

static void check_status(nkv_iter *it)
{
    int rc = IT_STATUS(it->in);
    if (rc) {
        it->status = rc;
        it->valid = false;
    }
}

static void find_next_user_entry(nkv_iter *it, bool skipping)
{
    /* saved_key holds the key to skip when skipping. */
    while (IT_VALID(it->in)) {
        nb_slice k = IT_KEY(it->in);
        uint64_t tr = nkv__trailer(k);
        nb_slice uk = nkv__ukey(k);
        if ((tr >> 8) <= it->seq) {
            if (past_upper(it, uk))
                break;
            if ((tr & 0xff) == NKV_TYPE_DELETE) {
                save(&it->saved_key, uk);
                skipping = true;
            } else if (skipping && nkv__ucmp(uk, nb_buf_slice(&it->saved_key)) <= 0) {
                /* hidden by a newer entry */
            } else {
                it->valid = true;
                nb_buf_reset(&it->saved_key);
                return;
            }
        }
        IT_NEXT(it->in);
    }
    nb_buf_reset(&it->saved_key);
    it->valid = false;
    check_status(it);
}

static void find_prev_user_entry(nkv_iter *it)
{
    int vtype = NKV_TYPE_DELETE;
    while (IT_VALID(it->in)) {
        nb_slice k = IT_KEY(it->in);
        uint64_t tr = nkv__trailer(k);
        nb_slice uk = nkv__ukey(k);
        if (before_lower(it, uk))
            break;
        if ((tr >> 8) <= it->seq) {
            if (vtype != NKV_TYPE_DELETE && nkv__ucmp(uk, nb_buf_slice(&it->saved_key)) < 0)
                break;
            vtype = (int)(tr & 0xff);
            if (vtype == NKV_TYPE_DELETE) {
                nb_buf_reset(&it->saved_key);
                nb_buf_reset(&it->saved_val);
            } else {
                save(&it->saved_key, uk);
                save(&it->saved_val, IT_VAL(it->in));
            }
        }
        IT_PREV(it->in);
    }
    if (vtype == NKV_TYPE_DELETE) {
        it->valid = false;
        nb_buf_reset(&it->saved_key);
        nb_buf_reset(&it->saved_val);
        it->forward = true;
        check_status(it);
    } else {
        it->valid = true;
    }
}

void nkv_iter_seek(nkv_iter *it, const void *key, size_t klen)
{
    nb_slice k = nb_slice_of(key, klen);
    if (before_lower(it, k))
        k = nb_buf_slice(&it->lower);
    it->forward = true;
    it->status = 0;
    if (k.len + 8 <= sizeof it->seek_key) { /* no allocation for a short key */
        size_t n = nkv__ikey_put(it->seek_key, k, it->seq, NKV_TYPE_VALUE);
        IT_SEEK(it->in, nb_slice_of(it->seek_key, n));
    } else {
        nkv__ikey_build(&it->tmp, k, it->seq, NKV_TYPE_VALUE);
        IT_SEEK(it->in, nb_buf_slice(&it->tmp));
    }
    find_next_user_entry(it, false);
}

void nkv_iter_seek_first(nkv_iter *it)
{
    if (it->has_lower) {
        nkv_iter_seek(it, it->lower.data, it->lower.len);
        return;
    }
    it->forward = true;
    it->status = 0;
    IT_FIRST(it->in);
    find_next_user_entry(it, false);
}

/* Positions the internal iterator on the last entry whose user key is
 * < key (strict) or <= key, then scans backwards. */
static void seek_before(nkv_iter *it, nb_slice key, bool inclusive)
{
    it->forward = false;
    it->status = 0;
    nb_buf_reset(&it->saved_val);
    if (inclusive) {
        nkv__ikey_build(&it->tmp, key, 0, NKV_TYPE_DELETE);
        IT_SEEK(it->in, nb_buf_slice(&it->tmp));
        while (IT_VALID(it->in) && nkv__ucmp(nkv__ukey(IT_KEY(it->in)), key) <= 0)
            IT_NEXT(it->in);
    } else {
        nkv__ikey_build(&it->tmp, key, NKV_MAX_SEQ, NKV_TYPE_VALUE);
        IT_SEEK(it->in, nb_buf_slice(&it->tmp));
    }
    if (IT_VALID(it->in))
        IT_PREV(it->in);
    else
        IT_LAST(it->in);
    find_prev_user_entry(it);
}

void nkv_iter_seek_last(nkv_iter *it)
{
    if (it->has_upper) {
        seek_before(it, nb_buf_slice(&it->upper), false);
        return;
    }
    it->forward = false;
    it->status = 0;
    nb_buf_reset(&it->saved_val);
    IT_LAST(it->in);
    find_prev_user_entry(it);
}

void nkv_iter_seek_for_prev(nkv_iter *it, const void *key, size_t klen)
{
    nb_slice k = nb_slice_of(key, klen);
    if (past_upper(it, k))
        seek_before(it, nb_buf_slice(&it->upper), false);
    else
        seek_before(it, k, true);
}

void nkv_iter_next(nkv_iter *it)
{
    NB_ASSERT(it->valid);
    if (!it->forward) {
        it->forward = true;
        /* saved_key is the current key, to be skipped. */
        if (!IT_VALID(it->in))
            IT_FIRST(it->in);
        else
            IT_NEXT(it->in);
    } else {
        save(&it->saved_key, nkv__ukey(IT_KEY(it->in)));
        IT_NEXT(it->in);
    }
    find_next_user_entry(it, true);
}

void nkv_iter_prev(nkv_iter *it)
{
    NB_ASSERT(it->valid);
    if (it->forward) {
        save(&it->saved_key, nkv__ukey(IT_KEY(it->in)));
        for (;;) {
            IT_PREV(it->in);
            if (!IT_VALID(it->in)) {
                it->valid = false;
                nb_buf_reset(&it->saved_key);
                nb_buf_reset(&it->saved_val);
                check_status(it);
                return;
            }
            if (nkv__ucmp(nkv__ukey(IT_KEY(it->in)), nb_buf_slice(&it->saved_key)) < 0)
                break;
        }
        it->forward = false;
    }
    find_prev_user_entry(it);
}

bool nkv_iter_valid(const nkv_iter *it)
{
    return it->valid;
}

const void *nkv_iter_key(const nkv_iter *it, size_t *klen)
{
    nb_slice k = it->forward ? nkv__ukey(IT_KEY(it->in)) : nb_buf_slice(&it->saved_key);
    *klen = k.len;
    return k.ptr;
}

const void *nkv_iter_value(const nkv_iter *it, size_t *vlen)
{
    nb_slice v = it->forward ? IT_VAL(it->in) : nb_buf_slice(&it->saved_val);
    *vlen = v.len;
    return v.ptr;
}

int nkv_iter_status(const nkv_iter *it)
{
    return it->status;
}
