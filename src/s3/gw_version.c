/*
 * gw_version.c — S3 versioning in the gateway: Put/GetBucketVersioning's
 * PUT half, the version of a write (x-amz-version-id), reading and
 * deleting by version id, delete markers and ListObjectVersions. The
 * versions themselves are vfs's (docs/vfs.md "Versions"): the current one
 * is the file at the key, the others are version records.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "s3/gw_int.h"

bool gw_version_id_ok(const char *id)
{
    if (strcmp(id, "null") == 0)
        return true;
    if (strlen(id) != 16)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* Buckets of the root directory whose record says versioning was set. */
typedef struct vscan {
    s3_gw *g;
    uint64_t next_off;
} vscan;

static int vscan_cb(void *arg, const vfs_dirent *e)
{
    vscan *s = arg;
    s->next_off = e->next_off;
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)e->name_len, e->name);
    vfs_bucket b;
    if (vfs_bucket_get(s->g->ns, name, &b) == 0) {
        if (b.versioning != VFS_VER_OFF)
            atomic_store(&s->g->any_versioned, true);
        vfs_bucket_free(&b);
    }
    return atomic_load(&s->g->any_versioned);
}

int gw_versioning_scan(s3_gw *g)
{
    vscan s = {.g = g};
    for (;;) {
        uint64_t off = s.next_off;
        int rc = vfs_readdir(g->ns, VFS_ROOT_INO, off, 0, vscan_cb, &s);
        if (rc != 0 || s.next_off == off || atomic_load(&g->any_versioned))
            return rc;
    }
}

const char *gw_answer_version(s3_gw *g, const char *bucket, const char *rec_id)
{
    if (rec_id || !atomic_load(&g->any_versioned))
        return rec_id; /* no bucket ever versioned: skip the bucket read */
    vfs_bucket b;
    int rc = gw_bucket_check(g, bucket, &b);
    bool versioned = rc == 0 && b.versioning != VFS_VER_OFF;
    if (rc == 0)
        vfs_bucket_free(&b);
    return versioned ? "null" : NULL;
}

int gw_put_bucket_versioning(s3_gw_req *r, gw_answer *a)
{
    NB_UNUSED(a);
    vfs_bucket b;
    int rc = gw_bucket_check(r->g, r->t.bucket, &b);
    if (rc != 0)
        return rc;
    s3_versioning vc;
    rc = s3_parse_versioning(r->body.data, r->body.len, &vc);
    if (rc == 0 && vc.mfa_delete)
        rc = S3_ERR_NOT_IMPLEMENTED;
    /* No Status: nothing changes (a bucket never returns to unversioned). */
    if (rc == 0 && vc.status != S3_VERSIONING_UNSET) {
        b.versioning = vc.status == S3_VERSIONING_ENABLED ? VFS_VER_ENABLED : VFS_VER_SUSPENDED;
        atomic_store(&r->g->any_versioned, true);
        rc = gw_key_err(vfs_bucket_update(r->g->ns, r->t.bucket, &b));
    }
    vfs_bucket_free(&b);
    return rc;
}

int gw_write_version(s3_gw *g, const char *bucket, int *mode, char id[17])
{
    vfs_bucket b;
    id[0] = 0;
    int rc = gw_bucket_check(g, bucket, &b);
    *mode = rc == 0 ? (int)b.versioning : VFS_VER_OFF;
    vfs_bucket_free(&b);
    if (rc == 0 && *mode == VFS_VER_ENABLED)
        rc = vfs_version_id_new(g->ns, id);
    else if (rc == 0 && *mode == VFS_VER_SUSPENDED)
        strcpy(id, "null");
    return rc;
}

/* The newest version record of key when it is a delete marker. */
typedef struct marker_ctx {
    const char *key;
    bool marker;
    char id[VFS_VERSION_ID_MAX + 1];
    int64_t mtime_ns;
} marker_ctx;

static int marker_cb(void *arg, const vfs_version *v)
{
    marker_ctx *m = arg;
    if (strcmp(v->key, m->key) == 0 && v->delete_marker) {
        m->marker = true;
        strcpy(m->id, v->version_id);
        m->mtime_ns = v->mtime_ns;
    }
    return 1;
}

static void marker_headers(gw_answer *a, const char *id, int64_t mtime_ns)
{
    gw_hdr(a, "x-amz-delete-marker", "true");
    gw_hdr(a, "x-amz-version-id", id);
    char d[40];
    s3_http_date_format(mtime_ns / (int64_t)NB_NS_PER_SEC, d, sizeof d);
    gw_hdr(a, "Last-Modified", d);
}

int gw_version_resolve(s3_gw *g, const char *bucket, const char *key, const char *version_id,
                       vfs_attr *attr, gw_answer *a)
{
    if (!bucket[0] || bucket[0] == '.')
        return S3_ERR_NO_SUCH_BUCKET;
    if (version_id && !gw_version_id_ok(version_id))
        return S3_ERR_INVALID_ARGUMENT;
    int rc = key[0] ? vfs_s3_lookup(g->ns, NULL, bucket, key, attr) : -ENOENT;
    if (rc != 0 && rc != -EINVAL && rc != -ENOENT && rc != -ENOTDIR)
        return gw_key_err(rc);
    if (rc == 0 && version_id) {
        char cur[VFS_VERSION_ID_MAX + 1] = "null";
        if (S_ISREG(attr->mode))
            rc = vfs_version_id_of(g->ns, attr->ino, cur);
        if (rc != 0)
            return gw_key_err(rc);
        if (strcmp(cur, version_id) == 0)
            return 0;
        rc = -ENOENT;
    }
    if (rc == 0)
        return 0;
    rc = gw_bucket_check(g, bucket, NULL);
    if (rc != 0)
        return rc;
    if (!key[0] || vfs_s3_key_check(key) != 0)
        return version_id ? S3_ERR_NO_SUCH_VERSION : S3_ERR_NO_SUCH_KEY;
    if (!version_id) {
        /* The latest version a delete marker: NoSuchKey, marked. */
        marker_ctx m = {.key = key};
        if (a && vfs_version_list(g->ns, bucket, key, UINT64_MAX, marker_cb, &m) == 0 && m.marker) {
            gw_hdr(a, "x-amz-delete-marker", "true");
            gw_hdr(a, "x-amz-version-id", m.id);
        }
        return S3_ERR_NO_SUCH_KEY;
    }
    vfs_version v;
    rc = vfs_version_get(g->ns, bucket, key, version_id, &v);
    if (rc == NB_ENOTFOUND)
        return S3_ERR_NO_SUCH_VERSION;
    if (rc != 0)
        return gw_key_err(rc);
    if (v.delete_marker) {
        if (a)
            marker_headers(a, v.version_id, v.mtime_ns);
        vfs_version_free(&v);
        return S3_ERR_METHOD_NOT_ALLOWED;
    }
    rc = vfs_getattr(g->ns, v.ino, attr);
    vfs_version_free(&v);
    return rc == -ENOENT ? S3_ERR_NO_SUCH_VERSION : gw_key_err(rc);
}

int gw_delete_versioned(s3_gw *g, const char *bucket, const char *key, const char *version_id,
                        gw_deleted *out)
{
    memset(out, 0, sizeof *out);
    vfs_bucket b;
    int rc = gw_bucket_check(g, bucket, &b);
    int mode = rc == 0 ? (int)b.versioning : VFS_VER_OFF;
    vfs_bucket_free(&b);
    if (rc != 0)
        return rc;
    vfs_attr old;
    uint64_t old_ino = 0;
    if (vfs_s3_lookup(g->ns, NULL, bucket, key, &old) == 0 && S_ISREG(old.mode))
        old_ino = old.ino;
    if (version_id) {
        if (!gw_version_id_ok(version_id))
            return S3_ERR_INVALID_ARGUMENT;
        snprintf(out->version_id, sizeof out->version_id, "%s", version_id);
        out->has_version = true;
        rc = vfs_version_delete(g->ns, bucket, key, version_id, &out->delete_marker);
        if (rc == NB_ENOTFOUND || rc == -EINVAL || rc == -ENOENT || rc == -ENOTDIR)
            rc = 0; /* as S3: deleting a version that is not there succeeds */
    } else if (mode != VFS_VER_OFF && key[strlen(key) - 1] != '/') {
        char id[17];
        rc = mode == VFS_VER_ENABLED ? vfs_version_id_new(g->ns, id) : 0;
        if (mode == VFS_VER_SUSPENDED)
            strcpy(id, "null");
        if (rc == 0)
            rc = vfs_version_mark(g->ns, bucket, key, mode, id, NULL);
        if (rc == -EINVAL || rc == -ENOTDIR)
            rc = 0; /* a key that cannot be a path: nothing to delete */
        else if (rc == 0) {
            out->delete_marker = true;
            out->has_version = true;
            strcpy(out->version_id, id);
        }
    } else {
        rc = vfs_s3_delete(g->ns, NULL, bucket, key);
        if (rc == -ENOENT || rc == -EINVAL || rc == -ENOTDIR)
            rc = 0;
    }
    /* Entries may have come (a version made current again) or gone. */
    if (rc == 0 && (old_ino || version_id))
        gw_notify_key(g, bucket, key, old_ino);
    return gw_key_err(rc);
}

/* ---- ListObjectVersions ------------------------------------------------------------------- */

/* One entry of the listing: a version, or a common prefix. */
typedef struct ventry {
    char *key;
    bool is_prefix;
    bool current; /* the file in the namespace */
    bool marker;
    bool latest;
    char version_id[VFS_VERSION_ID_MAX + 1];
    uint64_t ino;
    int64_t mtime_ns;
} ventry;

typedef struct vlister {
    s3_gw *g;
    const char *bucket;
    const char *prefix;
    size_t plen;
    const char *delim;
    ventry *e;
    size_t n, cap;
    size_t limit; /* stop collecting after this many */
    bool full;
} vlister;

static ventry *vl_add(vlister *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->e = nb_xrealloc(l->e, l->cap * sizeof *l->e);
    }
    ventry *e = &l->e[l->n++];
    memset(e, 0, sizeof *e);
    return e;
}

/* The common prefix key falls under, or NULL (owned). */
static char *common_prefix(const vlister *l, const char *key)
{
    if (!l->delim || !*l->delim)
        return NULL;
    const char *d = strstr(key + l->plen, l->delim);
    return d ? nb_xstrndup(key, (size_t)(d - key) + strlen(l->delim)) : NULL;
}

static int cur_cb(void *arg, const vfs_list_entry *e)
{
    vlister *l = arg;
    if (e->is_prefix || !e->attr || !S_ISREG(e->attr->mode))
        return 0; /* prefixes come from the merge; markers of directories are not versioned */
    ventry *v = vl_add(l);
    v->key = nb_xstrndup(e->key, e->key_len);
    v->current = true;
    v->ino = e->attr->ino;
    v->mtime_ns = e->attr->mtime_ns;
    return l->n >= l->limit;
}

static int old_cb(void *arg, const vfs_version *ver)
{
    vlister *l = arg;
    if (strncmp(ver->key, l->prefix, l->plen) != 0)
        return strcmp(ver->key, l->prefix) > 0;
    ventry *v = vl_add(l);
    v->key = nb_xstrdup(ver->key);
    v->marker = ver->delete_marker;
    v->ino = ver->ino;
    v->mtime_ns = ver->mtime_ns;
    strcpy(v->version_id, ver->version_id);
    return l->n >= l->limit;
}

static int ventry_cmp(const void *pa, const void *pb)
{
    const ventry *a = pa, *b = pb;
    int c = strcmp(a->key, b->key);
    if (c)
        return c;
    if (a->current != b->current)
        return a->current ? -1 : 1;
    return 0; /* qsort is not stable: the caller keeps record order by index */
}

typedef struct vidx {
    ventry *e;
    size_t i;
} vidx;

static int vidx_cmp(const void *pa, const void *pb)
{
    const vidx *a = pa, *b = pb;
    int c = ventry_cmp(a->e, b->e);
    return c ? c : a->i < b->i ? -1 : a->i > b->i;
}

static void free_entries(vlister *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->e[i].key);
    free(l->e);
    l->e = NULL;
    l->n = l->cap = 0;
}

/* The version id of e (the current file's comes from its record). */
static const char *entry_id(s3_gw *g, ventry *e)
{
    if (!e->version_id[0] && vfs_version_id_of(g->ns, e->ino, e->version_id) != 0)
        strcpy(e->version_id, "null");
    return e->version_id;
}

/* Gathers candidates from both sources (at most limit from each) and
 * sorts them: key order, the file first, then the records newest first.
 * *bound gets the first key a truncated source may not have covered
 * completely (NULL: both complete; owned). */
static int gather(s3_gw_req *r, vlister *l, const s3_list_args *la, const char *km, bool vm,
                  vidx **ix, char **bound)
{
    *bound = NULL;
    vfs_list_opts o = {.prefix = la->prefix, .max_keys = l->limit};
    char *sa = NULL;
    if (km && !vm)
        sa = nb_xstrdup(km);
    else if (km && strlen(km) > 1)
        sa = nb_xstrndup(km, strlen(km) - 1); /* below km, so km is listed */
    o.start_after = sa;
    bool trunc_cur = false;
    char *next = NULL;
    int rc = vfs_s3_list(r->g->ns, NULL, r->t.bucket, &o, cur_cb, l, &trunc_cur, &next);
    free(next);
    free(sa);
    size_t ncur = l->n;
    if (rc == 0 && trunc_cur && ncur)
        *bound = nb_xstrdup(l->e[ncur - 1].key);
    const char *from = km && strcmp(km, la->prefix) > 0 ? km : la->prefix;
    if (rc == 0)
        rc = vfs_version_list(r->g->ns, r->t.bucket, *from ? from : NULL, UINT64_MAX, old_cb, l);
    if (rc == 0 && l->n - ncur >= l->limit) {
        const char *k = l->e[l->n - 1].key;
        if (!*bound || strcmp(k, *bound) < 0) {
            free(*bound);
            *bound = nb_xstrdup(k);
        }
    }
    *ix = nb_xcalloc(l->n + 1, sizeof **ix);
    for (size_t i = 0; i < l->n; i++)
        (*ix)[i] = (vidx){.e = &l->e[i], .i = i};
    qsort(*ix, l->n, sizeof **ix, vidx_cmp);
    for (size_t i = 0; i < l->n; i++) {
        ventry *e = (*ix)[i].e;
        bool first_of_key = i == 0 || strcmp((*ix)[i - 1].e->key, e->key) != 0;
        /* The file is the latest; without one, the newest marker is. */
        e->latest = first_of_key && (e->current || e->marker);
    }
    return rc;
}

typedef struct out_item {
    ventry *e;
    char *prefix; /* a CommonPrefixes entry (owned) */
} out_item;

int gw_list_versions(s3_gw_req *r, gw_answer *a)
{
    s3_list_args la;
    int rc = s3_list_args_parse(r->op, &r->q, &la);
    if (rc != 0)
        return rc;
    vfs_bucket vb;
    gw_owner owner; /* versions are their bucket owner's */
    rc = gw_bucket_check(r->g, r->t.bucket, &vb);
    if (rc == 0) {
        gw_bucket_owner(r->g, &vb, &owner);
        vfs_bucket_free(&vb);
    }
    const char *km = la.marker && *la.marker ? la.marker : NULL;
    const char *vm = km && la.version_marker && *la.version_marker ? la.version_marker : NULL;
    if (rc == 0 && vm && !gw_version_id_ok(vm))
        rc = S3_ERR_INVALID_ARGUMENT;
    if (rc != 0) {
        s3_list_args_free(&la);
        return rc;
    }
    vlister l = {.g = r->g,
                 .bucket = r->t.bucket,
                 .prefix = la.prefix,
                 .plen = strlen(la.prefix),
                 .delim = la.delimiter};
    out_item *items = nb_xcalloc((size_t)la.max_keys + 1, sizeof *items);
    size_t nitems = 0;
    bool truncated = false;
    vidx *ix = NULL;
    /* A page is right when everything up to its end was gathered: grow
     * the candidate sets until it is. */
    for (size_t limit = (size_t)la.max_keys + 64;; limit *= 4) {
        for (size_t k = 0; k < nitems; k++)
            free(items[k].prefix);
        nitems = 0;
        truncated = false;
        free(ix);
        ix = NULL;
        free_entries(&l);
        l.limit = limit;
        char *bound = NULL;
        rc = gather(r, &l, &la, km, vm != NULL, &ix, &bound);
        if (rc != 0)
            break;
        size_t i = 0;
        /* Skip to the markers. */
        if (km) {
            while (i < l.n && strcmp(ix[i].e->key, km) < 0)
                i++;
            size_t j = i;
            while (j < l.n && strcmp(ix[j].e->key, km) == 0)
                j++;
            for (size_t k = i; vm && k < j; k++) {
                if (strcmp(entry_id(r->g, ix[k].e), vm) == 0) {
                    j = k + 1;
                    break;
                }
            }
            i = j;
        }
        const char *last_prefix = NULL;
        size_t stop_at = l.n;
        for (; i < l.n; i++) {
            ventry *e = ix[i].e;
            char *cp = common_prefix(&l, e->key);
            if (cp &&
                ((last_prefix && strcmp(cp, last_prefix) == 0) || (km && strcmp(cp, km) == 0))) {
                free(cp); /* in a group already listed, or the key marker's */
                continue;
            }
            if (nitems == la.max_keys) {
                truncated = true;
                stop_at = i;
                free(cp);
                break;
            }
            items[nitems].e = e;
            items[nitems].prefix = cp;
            nitems++;
            if (cp)
                last_prefix = cp;
        }
        /* Complete when no source was cut, or the page ends before the
         * first key a cut source may be missing versions of. */
        bool ok =
            !bound || (truncated && stop_at < l.n && strcmp(ix[stop_at].e->key, bound) < 0 &&
                       (!last_prefix || strncmp(bound, last_prefix, strlen(last_prefix)) != 0));
        free(bound);
        if (ok)
            break;
    }
    s3_xml x;
    s3_versions_params p = {.url_encode = la.url_encode,
                            .bucket = r->t.bucket,
                            .prefix = la.prefix,
                            .delimiter = la.delimiter,
                            .max_keys = la.max_keys,
                            .key_marker = km,
                            .version_id_marker = vm,
                            .truncated = truncated};
    if (rc == 0 && truncated && nitems) {
        out_item *it = &items[nitems - 1];
        p.next_key_marker = it->prefix ? it->prefix : it->e->key;
        if (!it->prefix)
            p.next_version_id_marker = entry_id(r->g, it->e);
    }
    bool begun = rc == 0;
    if (begun)
        s3_xml_versions_begin(&x, &a->body, &p);
    for (size_t k = 0; k < nitems && rc == 0; k++) {
        out_item *it = &items[k];
        if (it->prefix) {
            s3_xml_common_prefix(&x, la.url_encode, it->prefix);
            continue;
        }
        ventry *e = it->e;
        s3_list_object o = {.key = e->key,
                            .mtime = e->mtime_ns / (int64_t)NB_NS_PER_SEC,
                            .mtime_ms = (int)(e->mtime_ns / 1000000 % 1000),
                            .owner = &owner.o,
                            .is_latest = e->latest,
                            .delete_marker = e->marker};
        char etag[S3_ETAG_MAX + 2], bare[S3_ETAG_MAX + 2];
        vfs_objrec rec;
        memset(&rec, 0, sizeof rec);
        if (!e->marker) {
            vfs_attr at;
            rc = gw_key_err(vfs_getattr(r->g->ns, e->ino, &at));
            if (rc == 0)
                rc = gw_object_etag(r->g, &at, etag, &rec);
            if (rc == 0) {
                gw_unquote(etag, bare);
                o.etag = bare;
                o.size = at.size;
                o.storage_class = rec.storage_class;
            }
        }
        o.version_id = entry_id(r->g, e);
        if (rc == 0)
            s3_xml_version(&x, la.url_encode, &o);
        vfs_objrec_free(&rec);
    }
    if (begun) {
        int xrc = s3_xml_end(&x);
        rc = rc ? rc : xrc;
    }
    for (size_t k = 0; k < nitems; k++)
        free(items[k].prefix);
    free(items);
    free(ix);
    free_entries(&l);
    s3_list_args_free(&la);
    return gw_key_err(rc);
}
