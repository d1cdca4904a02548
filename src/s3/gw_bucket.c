/*
 * gw_bucket.c — service and bucket operations: ListBuckets, CreateBucket,
 * DeleteBucket, HeadBucket, GetBucketLocation, GetBucketVersioning,
 * GetBucketAcl, and ListObjects v1/v2 over vfs_s3_list.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "s3/gw_int.h"

/* ---- ListBuckets ---------------------------------------------------------------------------- */

typedef struct bucket_ent {
    char *name;
    int64_t ctime_ns;
} bucket_ent;

typedef struct bucket_list {
    bucket_ent *v;
    size_t n, cap;
    uint64_t next_off;
} bucket_list;

static int bucket_cb(void *arg, const vfs_dirent *e)
{
    bucket_list *l = arg;
    l->next_off = e->next_off;
    if (!S_ISDIR(e->type) || e->name[0] == '.')
        return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = nb_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n].name = nb_xstrdup(e->name);
    l->v[l->n].ctime_ns = e->attr ? e->attr->btime_ns : 0;
    l->n++;
    return 0;
}

static int bucket_cmp(const void *a, const void *b)
{
    return strcmp(((const bucket_ent *)a)->name, ((const bucket_ent *)b)->name);
}

int gw_list_buckets(s3_gw_req *r, gw_answer *a)
{
    bucket_list l = {0};
    int rc = 0;
    for (;;) {
        size_t before = l.n;
        uint64_t off = l.next_off;
        rc = vfs_readdir(r->g->ns, VFS_ROOT_INO, off, VFS_READDIR_ATTRS, bucket_cb, &l);
        if (rc != 0 || (l.next_off == off && l.n == before))
            break;
    }
    if (rc == 0) {
        if (l.n)
            qsort(l.v, l.n, sizeof *l.v, bucket_cmp);
        s3_xml x;
        gw_owner me;
        gw_owner_of_key(r->g, r->auth.access_key, &me);
        s3_xml_buckets_begin(&x, &a->body, &me.o);
        bool root = gw_is_root(r);
        for (size_t i = 0; i < l.n; i++) {
            vfs_bucket b;
            int64_t created = l.v[i].ctime_ns;
            /* Without a record (made through the mount): root's. */
            bool mine = root;
            if (vfs_bucket_get(r->g->ns, l.v[i].name, &b) == 0) {
                created = b.ctime_ns;
                mine = root || gw_bucket_mine(r, &b);
                vfs_bucket_free(&b);
            }
            if (mine)
                s3_xml_bucket(&x, l.v[i].name, created / (int64_t)NB_NS_PER_SEC);
        }
        rc = s3_xml_end(&x);
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i].name);
    free(l.v);
    return rc;
}

/* ---- bucket lifecycle ----------------------------------------------------------------------- */

int gw_create_bucket(s3_gw_req *r, gw_answer *a)
{
    int rc = s3_bucket_name_check(r->t.bucket);
    s3_acl acl = S3_ACL_PRIVATE;
    if (rc == 0)
        rc = s3_acl_from_req(&r->req, &acl);
    if (rc != 0)
        return rc;
    /* A CreateBucketConfiguration body names a region; any is accepted
     * (there is one), but it must be well-formed when sent. */
    vfs_bucket b = {0};
    b.owner = r->auth.access_key;
    b.public_read = acl == S3_ACL_PUBLIC_READ || acl == S3_ACL_PUBLIC_READ_WRITE;
    rc = vfs_bucket_create(r->g->ns, NULL, r->t.bucket, 0755, &b);
    if (rc == -EEXIST) {
        /* Another's bucket: BucketAlreadyExists, even for root (as in S3,
         * where names are global). No record: made through the mount,
         * root's. */
        vfs_bucket old;
        int grc = vfs_bucket_get(r->g->ns, r->t.bucket, &old);
        bool mine = grc == NB_ENOTFOUND ? gw_is_root(r) : grc == 0 && gw_bucket_mine(r, &old);
        if (grc == 0)
            vfs_bucket_free(&old);
        return mine ? S3_ERR_BUCKET_ALREADY_OWNED : S3_ERR_BUCKET_ALREADY_EXISTS;
    }
    if (rc != 0)
        return rc;
    if (r->g->invalidate)
        r->g->invalidate(r->g->invalidate_ctx, VFS_ROOT_INO, r->t.bucket, 0);
    gw_hdrf(a, "Location", "/%s", r->t.bucket);
    return 0;
}

int gw_delete_bucket(s3_gw_req *r, gw_answer *a)
{
    int rc = gw_bucket_check(r->g, r->t.bucket, NULL);
    if (rc != 0)
        return rc;
    rc = vfs_bucket_delete(r->g->ns, NULL, r->t.bucket);
    if (rc == -ENOTEMPTY || rc == -EEXIST)
        return S3_ERR_BUCKET_NOT_EMPTY;
    if (rc == -ENOENT)
        return S3_ERR_NO_SUCH_BUCKET;
    if (rc != 0)
        return rc;
    if (r->g->invalidate)
        r->g->invalidate(r->g->invalidate_ctx, VFS_ROOT_INO, r->t.bucket, 0);
    a->status = 204;
    return 0;
}

int gw_head_bucket(s3_gw_req *r, gw_answer *a)
{
    int rc = gw_bucket_check(r->g, r->t.bucket, NULL);
    if (rc == 0) {
        gw_hdr(a, "x-amz-bucket-region", r->g->region);
        a->has_length = true;
    }
    return rc;
}

int gw_bucket_location(s3_gw_req *r, gw_answer *a)
{
    int rc = gw_bucket_check(r->g, r->t.bucket, NULL);
    if (rc == 0)
        rc = s3_xml_location(&a->body, r->g->region);
    return rc;
}

int gw_bucket_versioning(s3_gw_req *r, gw_answer *a)
{
    vfs_bucket b;
    int rc = gw_bucket_check(r->g, r->t.bucket, &b);
    if (rc != 0)
        return rc;
    const char *st = b.versioning == META_VERSIONING_ENABLED     ? "Enabled"
                     : b.versioning == META_VERSIONING_SUSPENDED ? "Suspended"
                                                                 : NULL;
    rc = s3_xml_versioning(&a->body, st);
    vfs_bucket_free(&b);
    return rc;
}

/* ---- ListObjects (v1, v2) ------------------------------------------------------------------- */

typedef struct list_ent {
    char *key;
    bool is_prefix;
    vfs_attr attr;
} list_ent;

typedef struct list_page {
    list_ent *v;
    size_t n, cap;
} list_page;

static int list_cb(void *arg, const vfs_list_entry *e)
{
    list_page *p = arg;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->v = nb_xrealloc(p->v, p->cap * sizeof *p->v);
    }
    list_ent *le = &p->v[p->n++];
    le->key = nb_xstrndup(e->key, e->key_len);
    le->is_prefix = e->is_prefix;
    if (e->attr)
        le->attr = *e->attr;
    else
        memset(&le->attr, 0, sizeof le->attr);
    return 0;
}

int gw_list_objects(s3_gw_req *r, gw_answer *a)
{
    vfs_bucket b;
    gw_owner bo;
    int rc = gw_bucket_check(r->g, r->t.bucket, &b);
    if (rc == 0) {
        /* Objects are their bucket owner's (object owners are not kept). */
        gw_bucket_owner(r->g, &b, &bo);
        vfs_bucket_free(&b);
    }
    s3_list_args la;
    memset(&la, 0, sizeof la);
    if (rc == 0)
        rc = s3_list_args_parse(r->op, &r->q, &la);
    if (rc != 0) {
        s3_list_args_free(&la);
        return rc;
    }
    bool v2 = r->op == S3_OP_LIST_OBJECTS_V2;
    const char *start = v2 ? (la.continuation ? la.continuation : la.marker) : la.marker;
    list_page page = {0};
    bool truncated = false;
    char *next = NULL;
    if (la.max_keys > 0) {
        vfs_list_opts o = {
            .prefix = la.prefix,
            .delimiter = la.delimiter,
            .start_after = start && *start ? start : NULL,
            .max_keys = la.max_keys,
        };
        rc = vfs_s3_list(r->g->ns, NULL, r->t.bucket, &o, list_cb, &page, &truncated, &next);
        if (rc == -ENOENT)
            rc = S3_ERR_NO_SUCH_BUCKET;
    }
    char *token = NULL;
    if (rc == 0 && v2 && truncated && next) {
        token = nb_xmalloc(4 * (strlen(next) / 3 + 1) + 8);
        s3_continuation_token(next, token);
    }
    if (rc == 0) {
        s3_list_params p = {
            .v2 = v2,
            .url_encode = la.url_encode,
            .truncated = truncated,
            .bucket = r->t.bucket,
            .prefix = la.prefix,
            .delimiter = la.delimiter,
            .max_keys = la.max_keys,
            .marker = v2 ? NULL : (la.marker ? la.marker : ""),
            .next_marker = !v2 && truncated && la.delimiter ? next : NULL,
            .start_after = v2 ? la.marker : NULL,
            .continuation_token = v2 ? s3_query_get(&r->q, "continuation-token") : NULL,
            .next_continuation_token = token,
            .key_count = (uint32_t)page.n,
        };
        s3_xml x;
        s3_xml_list_begin(&x, &a->body, &p);
        bool owner = !v2 || la.fetch_owner;
        for (size_t i = 0; i < page.n && rc == 0; i++) {
            list_ent *e = &page.v[i];
            if (e->is_prefix) {
                s3_xml_common_prefix(&x, la.url_encode, e->key);
                continue;
            }
            char etag[S3_ETAG_MAX + 2];
            vfs_objrec rec;
            rc = gw_object_etag(r->g, &e->attr, etag, &rec);
            if (rc == -ENOENT || rc == -ESTALE) {
                rc = 0; /* removed since the listing read it */
                snprintf(etag, sizeof etag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
                memset(&rec, 0, sizeof rec);
            }
            if (rc != 0)
                break;
            s3_list_object o = {
                .key = e->key,
                .mtime = e->attr.mtime_ns / (int64_t)NB_NS_PER_SEC,
                .mtime_ms = (int)(e->attr.mtime_ns / 1000000 % 1000),
                .etag = etag,
                .size = S_ISDIR(e->attr.mode) ? 0 : e->attr.size,
                .storage_class = rec.storage_class,
                .owner = owner ? &bo.o : NULL,
            };
            /* The writer takes the ETag unquoted. */
            size_t el = strlen(etag);
            if (el >= 2 && etag[0] == '"') {
                memmove(etag, etag + 1, el - 2);
                etag[el - 2] = 0;
            }
            s3_xml_list_object(&x, &p, &o);
            vfs_objrec_free(&rec);
        }
        int xrc = s3_xml_end(&x);
        if (rc == 0)
            rc = xrc;
    }
    for (size_t i = 0; i < page.n; i++)
        free(page.v[i].key);
    free(page.v);
    free(next);
    free(token);
    s3_list_args_free(&la);
    return rc;
}

/* ---- bucket configurations: tagging, CORS, lifecycle ---------------------------------------- */

/* The blob of the bucket record an operation keeps its document in. */
static nb_buf *config_blob(vfs_bucket *b, s3_op op)
{
    switch (op) {
    case S3_OP_PUT_BUCKET_TAGGING:
    case S3_OP_GET_BUCKET_TAGGING:
    case S3_OP_DELETE_BUCKET_TAGGING:
        return &b->tagging;
    case S3_OP_PUT_BUCKET_CORS:
    case S3_OP_GET_BUCKET_CORS:
    case S3_OP_DELETE_BUCKET_CORS:
        return &b->cors;
    default:
        return &b->lifecycle;
    }
}

/* Validates a configuration document before it is stored as sent. */
static int config_validate(s3_op op, const nb_buf *body)
{
    int rc;
    if (op == S3_OP_PUT_BUCKET_TAGGING) {
        s3_tagset t = {0};
        rc = s3_parse_tagging(body->data, body->len, true, &t);
        s3_tagset_free(&t);
    } else if (op == S3_OP_PUT_BUCKET_CORS) {
        s3_cors c = {0};
        rc = s3_parse_cors(body->data, body->len, &c);
        s3_cors_free(&c);
    } else {
        s3_lifecycle l = {0};
        rc = s3_parse_lifecycle(body->data, body->len, &l);
        s3_lifecycle_free(&l);
    }
    return rc;
}

int gw_bucket_config(s3_gw_req *r, gw_answer *a)
{
    vfs_bucket b;
    int rc = gw_bucket_check(r->g, r->t.bucket, &b);
    if (rc != 0)
        return rc;
    nb_buf *blob = config_blob(&b, r->op);
    switch (r->op) {
    case S3_OP_GET_BUCKET_TAGGING:
    case S3_OP_GET_BUCKET_CORS:
    case S3_OP_GET_BUCKET_LIFECYCLE:
        if (blob->len == 0)
            rc = r->op == S3_OP_GET_BUCKET_TAGGING ? S3_ERR_NO_SUCH_TAG_SET
                 : r->op == S3_OP_GET_BUCKET_CORS  ? S3_ERR_NO_SUCH_CORS
                                                   : S3_ERR_NO_SUCH_LIFECYCLE;
        else
            rc = nb_buf_append(&a->body, blob->data, blob->len);
        break;
    case S3_OP_PUT_BUCKET_TAGGING:
    case S3_OP_PUT_BUCKET_CORS:
    case S3_OP_PUT_BUCKET_LIFECYCLE:
        rc = config_validate(r->op, &r->body);
        if (rc == 0) {
            nb_buf_reset(blob);
            rc = nb_buf_append(blob, r->body.data, r->body.len);
        }
        if (rc == 0)
            rc = vfs_bucket_update(r->g->ns, r->t.bucket, &b);
        if (rc == 0 && r->op == S3_OP_PUT_BUCKET_TAGGING)
            a->status = 204;
        break;
    default: /* DELETE */
        nb_buf_reset(blob);
        rc = vfs_bucket_update(r->g->ns, r->t.bucket, &b);
        if (rc == 0)
            a->status = 204;
        break;
    }
    vfs_bucket_free(&b);
    return rc;
}

/* The CORS rule of bucket allowing origin and method (and, for a
 * preflight, the requested headers) into headers of the answer.
 * NB_ENOTFOUND when no rule allows it. */
static int cors_apply(s3_gw_req *r, gw_answer *a, const char *method, bool preflight)
{
    const char *origin = s3_req_header(&r->req, "origin");
    const char *req_headers =
        preflight ? s3_req_header(&r->req, "access-control-request-headers") : NULL;
    if (!origin || !method)
        return NB_ENOTFOUND;
    vfs_bucket b;
    int rc = gw_bucket_check(r->g, r->t.bucket, &b);
    if (rc != 0)
        return rc;
    s3_cors c = {0};
    if (b.cors.len == 0 || s3_parse_cors(b.cors.data, b.cors.len, &c) != 0)
        rc = NB_ENOTFOUND;
    const s3_cors_rule *rule = rc == 0 ? s3_cors_match(&c, origin, method, req_headers) : NULL;
    s3_meta h = {0};
    if (rc == 0 && !rule)
        rc = NB_ENOTFOUND;
    if (rc == 0)
        rc = s3_cors_headers(rule, origin, req_headers, preflight, &h);
    for (size_t i = 0; rc == 0 && i < h.n; i++)
        gw_hdr(a, h.items[i].name, h.items[i].value);
    s3_meta_free(&h);
    s3_cors_free(&c);
    vfs_bucket_free(&b);
    return rc;
}

int gw_cors_preflight(s3_gw_req *r, gw_answer *a)
{
    if (!s3_req_header(&r->req, "origin") ||
        !s3_req_header(&r->req, "access-control-request-method"))
        return S3_ERR_INVALID_REQUEST;
    int rc = cors_apply(r, a, s3_req_header(&r->req, "access-control-request-method"), true);
    return rc == NB_ENOTFOUND ? S3_ERR_ACCESS_DENIED : rc;
}

void gw_cors_actual(s3_gw_req *r, gw_answer *a)
{
    if (r->t.bucket[0] && r->op != S3_OP_CORS_PREFLIGHT && s3_req_header(&r->req, "origin"))
        (void)!cors_apply(r, a, r->req.method, false);
}
