/*
 * version.c — versions, version edits and the MANIFEST.
 *
 * A version is the immutable set of live tables per level. Every change
 * (flush, compaction) is a version edit appended to the MANIFEST (a record
 * log, wal.c) and fsynced before the new version is installed; CURRENT
 * names the MANIFEST in use and is switched atomically (write a temporary
 * file, fsync, rename, fsync the directory).
 *
 * Version edit encoding: a sequence of (varint tag, fields):
 *
 *   tag 2  log number        varint
 *   tag 3  next file number  varint
 *   tag 4  last sequence     varint
 *   tag 5  compact pointer   varint level | varint len | internal key
 *   tag 6  deleted file      varint level | varint number
 *   tag 7  new file          varint level | varint number | varint size |
 *                            varint entries | varint smallest seq |
 *                            varint largest seq | varint len | smallest
 *                            internal key | varint len | largest key
 *
 * Tables are refcounted by the versions that list them; when no version
 * (current, or one pinned by a reader or iterator) lists a table any more,
 * its number is queued and the database deletes the file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nkv_int.h"

/* ---- file metadata ---- */

nkv_fmeta *nkv__fmeta_new(void)
{
    nkv_fmeta *f = nb_xcalloc(1, sizeof *f);
    atomic_store(&f->refs, 1);
    return f;
}

void nkv__fmeta_ref(nkv_fmeta *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void nkv__fmeta_unref(nkv_fmeta *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    nkv_vset *vs = f->owner;
    if (vs) {
        pthread_mutex_lock(&vs->obs_mu);
        if (vs->nobsolete == vs->capobsolete) {
            vs->capobsolete = vs->capobsolete ? vs->capobsolete * 2 : 16;
            vs->obsolete = nb_xrealloc(vs->obsolete, vs->capobsolete * sizeof(uint64_t));
        }
        vs->obsolete[vs->nobsolete++] = f->num;
        pthread_mutex_unlock(&vs->obs_mu);
    }
    nkv__tcache_unpin(f);
    nb_buf_free(&f->smallest);
    nb_buf_free(&f->largest);
    free(f);
}

uint64_t *nkv__vset_take_obsolete(nkv_vset *vs, size_t *n)
{
    pthread_mutex_lock(&vs->obs_mu);
    uint64_t *v = vs->obsolete;
    *n = vs->nobsolete;
    vs->obsolete = NULL;
    vs->nobsolete = vs->capobsolete = 0;
    pthread_mutex_unlock(&vs->obs_mu);
    return v;
}

/* ---- edits ---- */

void nkv__edit_init(nkv_edit *e)
{
    memset(e, 0, sizeof *e);
}

void nkv__edit_free(nkv_edit *e)
{
    for (size_t i = 0; i < e->nadded; i++)
        nkv__fmeta_unref(e->added[i].f);
    free(e->added);
    free(e->deleted);
    for (int l = 0; l < NKV_LEVELS; l++)
        nb_buf_free(&e->compact_ptr[l]);
    memset(e, 0, sizeof *e);
}

void nkv__edit_delete(nkv_edit *e, int level, uint64_t num)
{
    if (e->ndeleted == e->cap_deleted) {
        e->cap_deleted = e->cap_deleted ? e->cap_deleted * 2 : 8;
        e->deleted = nb_xrealloc(e->deleted, e->cap_deleted * sizeof *e->deleted);
    }
    e->deleted[e->ndeleted].level = level;
    e->deleted[e->ndeleted].num = num;
    e->ndeleted++;
}

void nkv__edit_add(nkv_edit *e, int level, nkv_fmeta *f)
{
    if (e->nadded == e->cap_added) {
        e->cap_added = e->cap_added ? e->cap_added * 2 : 8;
        e->added = nb_xrealloc(e->added, e->cap_added * sizeof *e->added);
    }
    nkv__fmeta_ref(f);
    e->added[e->nadded].level = level;
    e->added[e->nadded].f = f;
    e->nadded++;
}

static void put_v(nb_buf *b, uint64_t v)
{
    NB_ASSERT(nb_buf_put_varint(b, v) == 0);
}

static void put_s(nb_buf *b, nb_slice s)
{
    NB_ASSERT(nb_buf_put_lenprefixed(b, s) == 0);
}

void nkv__edit_encode(const nkv_edit *e, nb_buf *out)
{
    if (e->has_log) {
        put_v(out, NKV_TAG_LOG_NUMBER);
        put_v(out, e->log_number);
    }
    if (e->has_next_file) {
        put_v(out, NKV_TAG_NEXT_FILE);
        put_v(out, e->next_file);
    }
    if (e->has_last_seq) {
        put_v(out, NKV_TAG_LAST_SEQ);
        put_v(out, e->last_seq);
    }
    for (int l = 0; l < NKV_LEVELS; l++) {
        if (e->compact_ptr[l].len) {
            put_v(out, NKV_TAG_COMPACT_PTR);
            put_v(out, (uint64_t)l);
            put_s(out, nb_buf_slice(&e->compact_ptr[l]));
        }
    }
    for (size_t i = 0; i < e->ndeleted; i++) {
        put_v(out, NKV_TAG_DELETED_FILE);
        put_v(out, (uint64_t)e->deleted[i].level);
        put_v(out, e->deleted[i].num);
    }
    for (size_t i = 0; i < e->nadded; i++) {
        const nkv_fmeta *f = e->added[i].f;
        put_v(out, NKV_TAG_NEW_FILE);
        put_v(out, (uint64_t)e->added[i].level);
        put_v(out, f->num);
        put_v(out, f->size);
        put_v(out, f->entries);
        put_v(out, f->smallest_seq);
        put_v(out, f->largest_seq);
        put_s(out, nb_buf_slice(&f->smallest));
        put_s(out, nb_buf_slice(&f->largest));
    }
}

static const uint8_t *get_s(const uint8_t *p, const uint8_t *end, nb_slice *s)
{
    uint64_t n;
    if (!(p = nb_varint_decode(p, end, &n)) || n > (uint64_t)(end - p))
        return NULL;
    *s = nb_slice_of(p, n);
    return p + n;
}

int nkv__edit_decode(nkv_edit *e, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    while (p < end) {
        uint64_t tag, lvl, num;
        nb_slice s1, s2;
        if (!(p = nb_varint_decode(p, end, &tag)))
            return NB_CORRUPT("nkv: truncated version edit tag");
        switch (tag) {
        case NKV_TAG_LOG_NUMBER:
            if (!(p = nb_varint_decode(p, end, &e->log_number)))
                return NB_CORRUPT("nkv: bad log number in version edit");
            e->has_log = true;
            break;
        case NKV_TAG_NEXT_FILE:
            if (!(p = nb_varint_decode(p, end, &e->next_file)))
                return NB_CORRUPT("nkv: bad next file in version edit");
            e->has_next_file = true;
            break;
        case NKV_TAG_LAST_SEQ:
            if (!(p = nb_varint_decode(p, end, &e->last_seq)))
                return NB_CORRUPT("nkv: bad last sequence in version edit");
            e->has_last_seq = true;
            break;
        case NKV_TAG_COMPACT_PTR:
            if (!(p = nb_varint_decode(p, end, &lvl)) || lvl >= NKV_LEVELS ||
                !(p = get_s(p, end, &s1)))
                return NB_CORRUPT("nkv: bad compact pointer in version edit");
            nb_buf_reset(&e->compact_ptr[lvl]);
            NB_ASSERT(nb_buf_append(&e->compact_ptr[lvl], s1.ptr, s1.len) == 0);
            break;
        case NKV_TAG_DELETED_FILE:
            if (!(p = nb_varint_decode(p, end, &lvl)) || lvl >= NKV_LEVELS ||
                !(p = nb_varint_decode(p, end, &num)))
                return NB_CORRUPT("nkv: bad deleted file in version edit");
            nkv__edit_delete(e, (int)lvl, num);
            break;
        case NKV_TAG_NEW_FILE: {
            nkv_fmeta *f = nkv__fmeta_new();
            if (!(p = nb_varint_decode(p, end, &lvl)) || lvl >= NKV_LEVELS ||
                !(p = nb_varint_decode(p, end, &f->num)) ||
                !(p = nb_varint_decode(p, end, &f->size)) ||
                !(p = nb_varint_decode(p, end, &f->entries)) ||
                !(p = nb_varint_decode(p, end, &f->smallest_seq)) ||
                !(p = nb_varint_decode(p, end, &f->largest_seq)) || !(p = get_s(p, end, &s1)) ||
                !(p = get_s(p, end, &s2)) || s1.len < 8 || s2.len < 8) {
                nkv__fmeta_unref(f);
                return NB_CORRUPT("nkv: bad new file in version edit");
            }
            NB_ASSERT(nb_buf_append(&f->smallest, s1.ptr, s1.len) == 0);
            NB_ASSERT(nb_buf_append(&f->largest, s2.ptr, s2.len) == 0);
            nkv__edit_add(e, (int)lvl, f);
            nkv__fmeta_unref(f);
            break;
        }
        default:
            return NB_CORRUPT("nkv: unknown version edit tag %llu", (unsigned long long)tag);
        }
    }
    return 0;
}

char *nkv__edit_describe(const nkv_edit *e)
{
    nb_buf b = NB_BUF_INIT;
    if (e->has_log)
        NB_ASSERT(nb_buf_appendf(&b, "log=%llu ", (unsigned long long)e->log_number) == 0);
    if (e->has_next_file)
        NB_ASSERT(nb_buf_appendf(&b, "next=%llu ", (unsigned long long)e->next_file) == 0);
    if (e->has_last_seq)
        NB_ASSERT(nb_buf_appendf(&b, "seq=%llu ", (unsigned long long)e->last_seq) == 0);
    for (size_t i = 0; i < e->ndeleted; i++)
        NB_ASSERT(nb_buf_appendf(&b, "-L%d:%llu ", e->deleted[i].level,
                                 (unsigned long long)e->deleted[i].num) == 0);
    for (size_t i = 0; i < e->nadded; i++)
        NB_ASSERT(nb_buf_appendf(&b, "+L%d:%llu(%llu bytes) ", e->added[i].level,
                                 (unsigned long long)e->added[i].f->num,
                                 (unsigned long long)e->added[i].f->size) == 0);
    NB_ASSERT(nb_buf_nul_terminate(&b) == 0);
    return (char *)nb_buf_take(&b, NULL);
}

/* ---- versions ---- */

static nkv_version *version_new(nkv_vset *vs)
{
    nkv_version *v = nb_xcalloc(1, sizeof *v);
    atomic_store(&v->refs, 1);
    v->vset = vs;
    return v;
}

void nkv__version_ref(nkv_version *v)
{
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

void nkv__version_unref(nkv_version *v)
{
    if (!v || atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (int l = 0; l < NKV_LEVELS; l++) {
        for (int i = 0; i < v->nfiles[l]; i++)
            nkv__fmeta_unref(v->files[l][i]);
        free(v->files[l]);
    }
    free(v);
}

bool nkv__version_has_file(const nkv_version *v, uint64_t num)
{
    for (int l = 0; l < NKV_LEVELS; l++)
        for (int i = 0; i < v->nfiles[l]; i++)
            if (v->files[l][i]->num == num)
                return true;
    return false;
}

uint64_t nkv__level_bytes(const nkv_version *v, int level)
{
    uint64_t n = 0;
    for (int i = 0; i < v->nfiles[level]; i++)
        n += v->files[level][i]->size;
    return n;
}

static int cmp_l0(const void *a, const void *b)
{
    const nkv_fmeta *x = *(nkv_fmeta *const *)a, *y = *(nkv_fmeta *const *)b;
    if (x->largest_seq != y->largest_seq)
        return x->largest_seq > y->largest_seq ? -1 : 1;
    return x->num > y->num ? -1 : x->num < y->num;
}

static int cmp_smallest(const void *a, const void *b)
{
    const nkv_fmeta *x = *(nkv_fmeta *const *)a, *y = *(nkv_fmeta *const *)b;
    return nkv__icmp(nb_buf_slice(&x->smallest), nb_buf_slice(&y->smallest));
}

static bool is_deleted(const nkv_edit *e, int level, uint64_t num)
{
    for (size_t i = 0; i < e->ndeleted; i++)
        if (e->deleted[i].level == level && e->deleted[i].num == num)
            return true;
    return false;
}

/* base + e → a new version (refs 1). */
static nkv_version *version_apply(nkv_vset *vs, const nkv_version *base, const nkv_edit *e)
{
    nkv_version *v = version_new(vs);
    for (int l = 0; l < NKV_LEVELS; l++) {
        int cap = (base ? base->nfiles[l] : 0) + (int)e->nadded;
        v->files[l] = nb_xmalloc((size_t)(cap ? cap : 1) * sizeof(nkv_fmeta *));
        int n = 0;
        for (int i = 0; base && i < base->nfiles[l]; i++) {
            nkv_fmeta *f = base->files[l][i];
            if (is_deleted(e, l, f->num))
                continue;
            nkv__fmeta_ref(f);
            v->files[l][n++] = f;
        }
        for (size_t i = 0; i < e->nadded; i++) {
            if (e->added[i].level != l)
                continue;
            nkv_fmeta *f = e->added[i].f;
            nkv__fmeta_ref(f);
            f->owner = vs;
            v->files[l][n++] = f;
        }
        v->nfiles[l] = n;
        qsort(v->files[l], (size_t)n, sizeof(nkv_fmeta *), l == 0 ? cmp_l0 : cmp_smallest);
    }
    return v;
}

void nkv__vset_init(nkv_vset *vs, const nkv_env *env, const char *dir)
{
    memset(vs, 0, sizeof *vs);
    vs->env = env;
    vs->dir = nb_xstrdup(dir);
    vs->current = version_new(vs);
    vs->next_file = 2;
    pthread_mutex_init(&vs->obs_mu, NULL);
}

void nkv__vset_free(nkv_vset *vs)
{
    nkv__version_unref(vs->current);
    vs->current = NULL;
    if (vs->manifest_open)
        nkv__wal_close(&vs->manifest);
    for (int l = 0; l < NKV_LEVELS; l++)
        nb_buf_free(&vs->compact_ptr[l]);
    free(vs->obsolete);
    free(vs->dir);
    pthread_mutex_destroy(&vs->obs_mu);
}

static void install(nkv_vset *vs, nkv_version *v, const nkv_edit *e)
{
    nkv_version *old = vs->current;
    vs->current = v;
    nkv__version_unref(old);
    for (int l = 0; l < NKV_LEVELS; l++) {
        if (e->compact_ptr[l].len) {
            nb_buf_reset(&vs->compact_ptr[l]);
            NB_ASSERT(nb_buf_append(&vs->compact_ptr[l], e->compact_ptr[l].data,
                                    e->compact_ptr[l].len) == 0);
        }
    }
}

int nkv__vset_recover(nkv_vset *vs)
{
    const nkv_env *env = vs->env;
    char *cur_path = nb_xasprintf("%s/CURRENT", vs->dir);
    uint8_t *cur;
    size_t cur_len;
    int rc = nkv__env_read_all(env, cur_path, &cur, &cur_len);
    free(cur_path);
    if (rc)
        return rc;
    if (cur_len < 2 || cur[cur_len - 1] != '\n' || memcmp(cur, "MANIFEST-", 9) != 0) {
        free(cur);
        return NB_CORRUPT("nkv: CURRENT in %s does not name a MANIFEST", vs->dir);
    }
    cur[cur_len - 1] = 0;
    vs->manifest_num = strtoull((char *)cur + 9, NULL, 10);
    char *mpath = nb_xasprintf("%s/%s", vs->dir, (char *)cur);
    free(cur);
    uint8_t *data;
    size_t len;
    rc = nkv__env_read_all(env, mpath, &data, &len);
    if (rc) {
        NB_ERROR("nkv: cannot read %s: %s", mpath, nb_strerror(rc));
        free(mpath);
        return rc == -ENOENT ? NB_ECORRUPT : rc;
    }
    nkv_wal_reader r;
    nkv__wal_reader_init(&r, data, len, mpath);
    nb_slice rec;
    bool have_next = false, have_log = false, have_seq = false;
    int got;
    while ((got = nkv__wal_read(&r, &rec)) != 0) {
        if (got < 0) {
            rc = got;
            break;
        }
        nkv_edit e;
        nkv__edit_init(&e);
        rc = nkv__edit_decode(&e, rec.ptr, rec.len);
        if (rc) {
            NB_ERROR("nkv: bad version edit in %s at offset %llu", mpath,
                     (unsigned long long)r.last_rec_off);
            nkv__edit_free(&e);
            break;
        }
        nkv_version *v = version_apply(vs, vs->current, &e);
        install(vs, v, &e);
        if (e.has_log) {
            vs->log_number = e.log_number;
            have_log = true;
        }
        if (e.has_next_file) {
            vs->next_file = e.next_file;
            have_next = true;
        }
        if (e.has_last_seq) {
            atomic_store(&vs->last_seq, e.last_seq);
            have_seq = true;
        }
        nkv__edit_free(&e);
    }
    nkv__wal_reader_free(&r);
    free(data);
    if (!rc && (!have_next || !have_log || !have_seq))
        rc = NB_CORRUPT("nkv: %s lacks next-file, log or sequence entries", mpath);
    free(mpath);
    if (rc)
        return rc;
    /* Tables of the recovered version belong to this vset now. */
    if (vs->next_file <= vs->manifest_num)
        vs->next_file = vs->manifest_num + 1;
    return 0;
}

static void snapshot_edit(nkv_vset *vs, nkv_edit *s)
{
    nkv__edit_init(s);
    for (int l = 0; l < NKV_LEVELS; l++) {
        for (int i = 0; i < vs->current->nfiles[l]; i++)
            nkv__edit_add(s, l, vs->current->files[l][i]);
        if (vs->compact_ptr[l].len)
            NB_ASSERT(nb_buf_append(&s->compact_ptr[l], vs->compact_ptr[l].data,
                                    vs->compact_ptr[l].len) == 0);
    }
    s->has_log = s->has_next_file = s->has_last_seq = true;
    s->log_number = vs->log_number;
    s->next_file = vs->next_file;
    s->last_seq = atomic_load(&vs->last_seq);
}

static int set_current(nkv_vset *vs, uint64_t num)
{
    const nkv_env *env = vs->env;
    char *tmp = nb_xasprintf("%s/CURRENT.tmp", vs->dir);
    char *dst = nb_xasprintf("%s/CURRENT", vs->dir);
    char *body = nb_xasprintf("MANIFEST-%06llu\n", (unsigned long long)num);
    int rc = nkv__env_write_all_sync(env, tmp, body, strlen(body));
    if (!rc)
        rc = env->rename(env->ctx, tmp, dst);
    if (!rc)
        rc = env->sync_dir(env->ctx, vs->dir);
    if (rc)
        env->unlink(env->ctx, tmp);
    free(tmp);
    free(dst);
    free(body);
    return rc;
}

int nkv__vset_new_manifest(nkv_vset *vs)
{
    const nkv_env *env = vs->env;
    uint64_t num = vs->next_file++;
    char *path = nb_xasprintf("%s/MANIFEST-%06llu", vs->dir, (unsigned long long)num);
    nkv_file *f;
    int rc = env->open_write(env->ctx, path, &f);
    if (rc) {
        free(path);
        return rc;
    }
    nkv_wal_writer w;
    nkv__wal_writer_init(&w, env, f, 0);
    nkv_edit s;
    snapshot_edit(vs, &s);
    nb_buf b = NB_BUF_INIT;
    nkv__edit_encode(&s, &b);
    nkv__edit_free(&s);
    rc = nkv__wal_add(&w, b.data, b.len);
    nb_buf_free(&b);
    if (!rc)
        rc = nkv__wal_sync(&w);
    if (!rc)
        rc = set_current(vs, num);
    if (rc) {
        nkv__wal_close(&w);
        env->unlink(env->ctx, path);
        free(path);
        return rc;
    }
    free(path);
    if (vs->manifest_open)
        nkv__wal_close(&vs->manifest);
    if (vs->manifest_num && vs->manifest_num != num) {
        /* CURRENT no longer names the old MANIFEST. */
        char *old =
            nb_xasprintf("%s/MANIFEST-%06llu", vs->dir, (unsigned long long)vs->manifest_num);
        env->unlink(env->ctx, old);
        free(old);
    }
    vs->manifest = w;
    vs->manifest_open = true;
    vs->manifest_num = num;
    return 0;
}

int nkv__vset_apply(nkv_vset *vs, nkv_edit *e)
{
    if (!e->has_log) {
        e->has_log = true;
        e->log_number = vs->log_number;
    }
    e->has_next_file = true;
    e->next_file = vs->next_file;
    e->has_last_seq = true;
    e->last_seq = atomic_load(&vs->last_seq);
    int rc = 0;
    if (!vs->manifest_open || vs->manifest.size > (64u << 20)) {
        rc = nkv__vset_new_manifest(vs);
        if (rc)
            return rc;
        e->next_file = vs->next_file;
    }
    nb_buf b = NB_BUF_INIT;
    nkv__edit_encode(e, &b);
    rc = nkv__wal_add(&vs->manifest, b.data, b.len);
    nb_buf_free(&b);
    if (!rc)
        rc = nkv__wal_sync(&vs->manifest);
    if (rc) {
        /* The MANIFEST may now end in a torn record: start a new one next time. */
        nkv__wal_close(&vs->manifest);
        vs->manifest_open = false;
        return rc;
    }
    nkv_version *v = version_apply(vs, vs->current, e);
    install(vs, v, e);
    vs->log_number = e->log_number;
    return 0;
}

nkv_fmeta **nkv__version_overlaps(nkv_version *v, int level, const nb_slice *lo, const nb_slice *hi,
                                  int *n)
{
    nkv_fmeta **out = nb_xmalloc((size_t)(v->nfiles[level] + 1) * sizeof *out);
    int k = 0;
    for (int i = 0; i < v->nfiles[level]; i++) {
        nkv_fmeta *f = v->files[level][i];
        if (lo && nkv__ucmp(nkv__ukey(nb_buf_slice(&f->largest)), *lo) < 0)
            continue;
        if (hi && nkv__ucmp(nkv__ukey(nb_buf_slice(&f->smallest)), *hi) > 0)
            continue;
        out[k++] = f;
    }
    *n = k;
    return out;
}

/* First file in a sorted level whose largest key >= ikey. */
static int find_file(nkv_fmeta **files, int n, nb_slice ikey)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (nkv__icmp(nb_buf_slice(&files[mid]->largest), ikey) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int nkv__version_get(nkv_version *v, nkv_table_cache *tc, nb_slice ikey, bool fill, bool *found,
                     int *type, nb_buf *val)
{
    nb_slice uk = nkv__ukey(ikey);
    *found = false;
    /* L0 files may overlap: newest data first, keep the highest sequence. */
    uint64_t best_seq = 0;
    nb_buf tmp = NB_BUF_INIT;
    for (int i = 0; i < v->nfiles[0]; i++) {
        nkv_fmeta *f = v->files[0][i];
        if (*found && f->largest_seq < best_seq)
            break;
        if (nkv__ucmp(uk, nkv__ukey(nb_buf_slice(&f->smallest))) < 0 ||
            nkv__ucmp(uk, nkv__ukey(nb_buf_slice(&f->largest))) > 0)
            continue;
        bool fnd;
        int t;
        uint64_t seq;
        int rc = nkv__tcache_get(tc, f, ikey, fill, &fnd, &t, &seq, &tmp);
        if (rc) {
            nb_buf_free(&tmp);
            return rc;
        }
        if (fnd && (!*found || seq > best_seq)) {
            *found = true;
            best_seq = seq;
            *type = t;
            nb_buf_reset(val);
            NB_ASSERT(nb_buf_append(val, tmp.data, tmp.len) == 0);
        }
    }
    nb_buf_free(&tmp);
    if (*found)
        return 0;
    for (int l = 1; l < NKV_LEVELS; l++) {
        int n = v->nfiles[l];
        if (!n)
            continue;
        int i = find_file(v->files[l], n, ikey);
        if (i >= n)
            continue;
        nkv_fmeta *f = v->files[l][i];
        if (nkv__ucmp(uk, nkv__ukey(nb_buf_slice(&f->smallest))) < 0)
            continue;
        uint64_t seq;
        int rc = nkv__tcache_get(tc, f, ikey, fill, found, type, &seq, val);
        if (rc || *found)
            return rc;
    }
    return 0;
}

/* ---- concatenating iterator over a level ---- */

typedef struct files_it {
    nkv__it base;
    nkv_fmeta **files;
    int n;
    int idx; /* file of cur */
    nkv__it *cur;
    nkv_table_cache *tc;
    bool fill;
    int status;
} files_it;

static void fi_open(files_it *it, int idx)
{
    if (it->cur && it->idx == idx)
        return;
    if (it->cur) {
        int rc = IT_STATUS(it->cur);
        if (rc && !it->status)
            it->status = rc;
        IT_FREE(it->cur);
    }
    it->cur = NULL;
    it->idx = idx;
    if (idx >= 0 && idx < it->n)
        it->cur = nkv__tcache_iter(it->tc, it->files[idx], it->fill);
}

static void fi_skip_fwd(files_it *it)
{
    while (it->cur && !IT_VALID(it->cur)) {
        if (IT_STATUS(it->cur)) {
            if (!it->status)
                it->status = IT_STATUS(it->cur);
            fi_open(it, -1);
            return;
        }
        fi_open(it, it->idx + 1);
        if (it->cur)
            IT_FIRST(it->cur);
    }
}

static void fi_skip_back(files_it *it)
{
    while (it->cur && !IT_VALID(it->cur)) {
        if (IT_STATUS(it->cur)) {
            if (!it->status)
                it->status = IT_STATUS(it->cur);
            fi_open(it, -1);
            return;
        }
        fi_open(it, it->idx - 1);
        if (it->cur)
            IT_LAST(it->cur);
    }
}

static bool fi_valid(nkv__it *i)
{
    files_it *it = (files_it *)i;
    return it->cur && IT_VALID(it->cur);
}
static void fi_first(nkv__it *i)
{
    files_it *it = (files_it *)i;
    it->status = 0;
    fi_open(it, 0);
    if (it->cur)
        IT_FIRST(it->cur);
    fi_skip_fwd(it);
}
static void fi_last(nkv__it *i)
{
    files_it *it = (files_it *)i;
    it->status = 0;
    fi_open(it, it->n - 1);
    if (it->cur)
        IT_LAST(it->cur);
    fi_skip_back(it);
}
static void fi_seek(nkv__it *i, nb_slice k)
{
    files_it *it = (files_it *)i;
    it->status = 0;
    fi_open(it, find_file(it->files, it->n, k));
    if (it->cur)
        IT_SEEK(it->cur, k);
    fi_skip_fwd(it);
}
static void fi_next(nkv__it *i)
{
    files_it *it = (files_it *)i;
    IT_NEXT(it->cur);
    fi_skip_fwd(it);
}
static void fi_prev(nkv__it *i)
{
    files_it *it = (files_it *)i;
    IT_PREV(it->cur);
    fi_skip_back(it);
}
static nb_slice fi_key(nkv__it *i)
{
    return IT_KEY(((files_it *)i)->cur);
}
static nb_slice fi_val(nkv__it *i)
{
    return IT_VAL(((files_it *)i)->cur);
}
static int fi_status(nkv__it *i)
{
    files_it *it = (files_it *)i;
    if (it->status)
        return it->status;
    return it->cur ? IT_STATUS(it->cur) : 0;
}
static void fi_free(nkv__it *i)
{
    files_it *it = (files_it *)i;
    if (it->cur)
        IT_FREE(it->cur);
    nkv__it_release(it, sizeof *it);
}

/* Only the file whose range covers ikey's user key can hold it; that
 * file's table is opened (kept as cur for the seek that may follow) and
 * its filter asked. */
static bool fi_may_contain(nkv__it *i, nb_slice ikey, uint64_t hash)
{
    files_it *it = (files_it *)i;
    int idx = find_file(it->files, it->n, ikey);
    if (idx >= it->n ||
        nkv__ucmp(nkv__ukey(ikey), nkv__ukey(nb_buf_slice(&it->files[idx]->smallest))) < 0)
        return false;
    fi_open(it, idx);
    return !it->cur || !it->cur->ops->may_contain || it->cur->ops->may_contain(it->cur, ikey, hash);
}

static const nkv__it_ops files_ops = {fi_valid,  fi_first, fi_last,       fi_seek,
                                      fi_next,   fi_prev,  fi_key,        fi_val,
                                      fi_status, fi_free,  fi_may_contain};

nkv__it *nkv__files_iter(nkv_fmeta **files, int n, nkv_table_cache *tc, bool fill)
{
    files_it *it =
        memset(nkv__it_alloc(sizeof *it), 0, sizeof *it); /* calloc skips glibc's tcache */
    it->base.ops = &files_ops;
    it->files = files;
    it->n = n;
    it->idx = -1;
    it->tc = tc;
    it->fill = fill;
    return &it->base;
}

static void push_it(nkv__it ***its, nkv__age **ages, int *n, int *cap, nkv__it *it, int tier,
                    uint64_t maxseq)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *its = nb_xrealloc(*its, (size_t)*cap * sizeof **its);
        *ages = nb_xrealloc(*ages, (size_t)*cap * sizeof **ages);
    }
    (*ages)[*n] = (nkv__age){tier, maxseq};
    (*its)[(*n)++] = it;
}

/* L0's files share a tier (they may overlap; their largest sequences order
 * them); each deeper level is a tier of its own, older than the one above
 * (the invariant nkv__version_get also relies on). */
void nkv__version_iters(nkv_version *v, nkv_table_cache *tc, bool fill, nkv__it ***its,
                        nkv__age **ages, int tier, int *n, int *cap)
{
    for (int i = 0; i < v->nfiles[0]; i++) {
        nkv_fmeta *f = v->files[0][i];
        push_it(its, ages, n, cap, nkv__tcache_iter(tc, f, fill), tier, f->largest_seq);
    }
    for (int l = 1; l < NKV_LEVELS; l++)
        if (v->nfiles[l])
            push_it(its, ages, n, cap, nkv__files_iter(v->files[l], v->nfiles[l], tc, fill),
                    tier + l, UINT64_MAX);
}
