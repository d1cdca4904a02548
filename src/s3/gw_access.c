/*
 * gw_access.c — who may do what: the caller's secret (root or a user kept
 * in metadata), bucket owners, public-read buckets and objects, and the
 * Get/Put Bucket/Object ACL operations.
 *
 * Callers are root (the administrator: every bucket), a user (the buckets
 * it created, and reads of public-read buckets and objects), or anonymous
 * (reads of public-read buckets and objects). A bucket's owner is the
 * access key in its record; a bucket without a record (a directory made
 * through the mount) is root's; objects are their bucket owner's. An
 * object's own canned ACL (object record) decides who else may read it;
 * without one it is as readable as its bucket. The rules are in
 * docs/s3.md, "Users, owners and ACLs".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "s3/gw_int.h"

int gw_secret_of(void *ctx, const char *access_key, char *secret, size_t cap)
{
    s3_gw *g = ctx;
    if (strcmp(access_key, g->access_key) == 0) {
        size_t l = strnlen(g->secret_key, cap - 1); /* as snprintf, without its cost */
        memcpy(secret, g->secret_key, l);
        secret[l] = 0;
        return 0;
    }
    /* Read on every request, so a removed user is refused at once. */
    vfs_user u;
    int rc = vfs_user_get(g->ns, access_key, &u);
    if (rc == 0) {
        snprintf(secret, cap, "%s", u.secret_key);
        vfs_user_free(&u);
    } else if (rc != NB_ENOTFOUND) {
        NB_WARN("s3: user record of %s unreadable: %s", access_key, nb_strerror(rc));
    }
    return rc;
}

bool gw_is_root(const s3_gw_req *r)
{
    return r->auth.version != 0 && strcmp(r->auth.access_key, r->g->access_key) == 0;
}

/* The owner recorded in b: NULL, "" or root's key are root. */
static bool owned_by_root(const s3_gw *g, const vfs_bucket *b)
{
    return !b->owner || !b->owner[0] || strcmp(b->owner, g->access_key) == 0;
}

bool gw_bucket_mine(const s3_gw_req *r, const vfs_bucket *b)
{
    if (r->auth.version == 0)
        return false;
    if (owned_by_root(r->g, b))
        return gw_is_root(r);
    return strcmp(b->owner, r->auth.access_key) == 0;
}

void gw_owner_of_key(s3_gw *g, const char *access_key, gw_owner *o)
{
    if (!access_key || !access_key[0] || strcmp(access_key, g->access_key) == 0) {
        o->o = gw_owner_root;
        return;
    }
    snprintf(o->id, sizeof o->id, "%s", access_key);
    snprintf(o->name, sizeof o->name, "%s", access_key);
    vfs_user u;
    if (vfs_user_get(g->ns, access_key, &u) == 0) {
        if (u.name && u.name[0])
            snprintf(o->name, sizeof o->name, "%s", u.name);
        vfs_user_free(&u);
    }
    o->o.id = o->id;
    o->o.display_name = o->name;
}

void gw_bucket_owner(s3_gw *g, const vfs_bucket *b, gw_owner *o)
{
    gw_owner_of_key(g, owned_by_root(g, b) ? NULL : b->owner, o);
}

/* Reads a public-read bucket allows to anyone (AllUsers READ). */
static bool public_op(s3_op op)
{
    switch (op) {
    case S3_OP_GET_OBJECT:
    case S3_OP_HEAD_OBJECT:
    case S3_OP_LIST_OBJECTS:
    case S3_OP_LIST_OBJECTS_V2:
    case S3_OP_HEAD_BUCKET: /* needs s3:ListBucket, which READ grants */
        return true;
    default:
        return false;
    }
}

/* May the caller act (op) on bucket? NoSuchBucket first, for anyone, as
 * in S3. A GET/HEAD of an object by a caller that does not own the bucket
 * is left to the object's ACL (gw_object_readable). */
static int bucket_access(s3_gw_req *r, const char *bucket, s3_op op)
{
    vfs_bucket b;
    int rc = gw_bucket_check(r->g, bucket, &b);
    if (rc != 0)
        return rc;
    bool ok = gw_is_root(r) || gw_bucket_mine(r, &b);
    if (!ok && (op == S3_OP_GET_OBJECT || op == S3_OP_HEAD_OBJECT)) {
        r->acl_deferred = true;
        r->bucket_public = b.public_read;
        ok = true;
    }
    ok = ok || (b.public_read && public_op(op));
    vfs_bucket_free(&b);
    return ok ? 0 : S3_ERR_ACCESS_DENIED;
}

int gw_acl_of_write(const s3_http_req *req, uint8_t *out)
{
    *out = VFS_ACL_NONE;
    s3_acl acl;
    int rc = s3_acl_from_req(req, &acl);
    if (rc != 0 || !s3_req_header(req, "x-amz-acl"))
        return rc;
    switch (acl) {
    case S3_ACL_PRIVATE:
    case S3_ACL_BUCKET_OWNER_READ: /* objects are their bucket owner's */
    case S3_ACL_BUCKET_OWNER_FULL_CONTROL:
        *out = VFS_ACL_PRIVATE;
        return 0;
    case S3_ACL_PUBLIC_READ:
        *out = VFS_ACL_PUBLIC_READ;
        return 0;
    default:
        return S3_ERR_NOT_IMPLEMENTED; /* public-read-write, authenticated-read */
    }
}

/* x-amz-acl on a write is checked before the body arrives. */
static int object_acl_check(s3_gw_req *r)
{
    uint8_t acl;
    switch (r->op) {
    case S3_OP_PUT_OBJECT:
    case S3_OP_COPY_OBJECT:
    case S3_OP_CREATE_MULTIPART_UPLOAD:
        return gw_acl_of_write(&r->req, &acl);
    default:
        return 0;
    }
}

int gw_object_readable(const s3_gw_req *r, int rc, const vfs_objrec *rec)
{
    if (!r->acl_deferred)
        return rc;
    if (rc != 0) {
        /* Without READ on the bucket a caller may not learn which keys
         * exist: S3 answers AccessDenied, not NoSuchKey. */
        bool hidden = rc == S3_ERR_NO_SUCH_KEY || rc == S3_ERR_NO_SUCH_VERSION ||
                      rc == S3_ERR_METHOD_NOT_ALLOWED;
        return hidden && !r->bucket_public ? S3_ERR_ACCESS_DENIED : rc;
    }
    bool ok = rec->acl == VFS_ACL_PUBLIC_READ || (rec->acl == VFS_ACL_NONE && r->bucket_public);
    return ok ? 0 : S3_ERR_ACCESS_DENIED;
}

/* A copy source is read: the caller must be allowed to GET it, by its
 * bucket (root, owner) or by the object's own ACL (as for a GET). A
 * source the handler will not find is left to it (NoSuchBucket/Key). */
static int copy_source_access(s3_gw_req *r)
{
    s3_copy_source cs;
    if (s3_copy_source_parse(s3_req_header(&r->req, "x-amz-copy-source"), &cs) != 0)
        return 0; /* the handler answers the malformed header */
    vfs_bucket b;
    int rc = gw_bucket_check(r->g, cs.bucket, &b);
    if (rc == S3_ERR_NO_SUCH_BUCKET)
        return 0;
    if (rc != 0)
        return rc;
    bool mine = gw_bucket_mine(r, &b), pub = b.public_read;
    vfs_bucket_free(&b);
    if (mine)
        return 0;
    vfs_attr attr;
    rc = gw_version_resolve(r->g, cs.bucket, cs.key, cs.version_id[0] ? cs.version_id : NULL, &attr,
                            NULL);
    if (rc != 0)
        return pub ? 0 : S3_ERR_ACCESS_DENIED; /* may the caller learn it is missing? */
    vfs_objrec rec;
    memset(&rec, 0, sizeof rec);
    nb_buf enc = NB_BUF_INIT;
    if (vfs_objrec_get(r->g->ns, attr.ino, &enc) == 0 &&
        vfs_objrec_decode(nb_buf_slice(&enc), &rec) != 0)
        memset(&rec, 0, sizeof rec);
    nb_buf_free(&enc);
    bool ok = rec.acl == VFS_ACL_PUBLIC_READ || (rec.acl == VFS_ACL_NONE && pub);
    vfs_objrec_free(&rec);
    return ok ? 0 : S3_ERR_ACCESS_DENIED;
}

int gw_access_check(s3_gw_req *r)
{
    if (r->op == S3_OP_CORS_PREFLIGHT) /* browsers send preflights without credentials */
        return 0;
    if (r->auth.version == 0 && !r->t.bucket[0])
        return S3_ERR_ACCESS_DENIED;
    if (gw_is_root(r))
        return object_acl_check(r);
    /* ListBuckets shows the caller's own; CreateBucket decides in its
     * handler (BucketAlreadyExists for another's). */
    if (r->op == S3_OP_LIST_BUCKETS)
        return 0;
    if (r->op == S3_OP_CREATE_BUCKET)
        return r->auth.version == 0 ? S3_ERR_ACCESS_DENIED : 0;
    int rc = bucket_access(r, r->t.bucket, r->op);
    if (rc == 0)
        rc = object_acl_check(r);
    if (rc == 0 && (r->op == S3_OP_COPY_OBJECT || r->op == S3_OP_UPLOAD_PART_COPY))
        rc = copy_source_access(r);
    return rc;
}

/* ---- Put/GetBucketAcl, Put/GetObjectAcl ------------------------------------------------------ */

/* The ACL a PutBucketAcl/PutObjectAcl sets: x-amz-acl or an
 * AccessControlPolicy body (not both, not neither), as one of the two the
 * gateway keeps: private or public-read (docs/s3.md). */
static int acl_of_put(s3_gw_req *r, const char *owner_id, s3_acl *acl)
{
    bool has_canned = s3_req_header(&r->req, "x-amz-acl") != NULL;
    *acl = S3_ACL_PRIVATE;
    int rc = s3_acl_from_req(&r->req, acl);
    if (rc == 0 && has_canned && r->body.len)
        rc = S3_ERR_UNEXPECTED_CONTENT;
    else if (rc == 0 && !has_canned && r->body.len)
        rc = s3_parse_acl(r->body.data, r->body.len, owner_id, acl);
    else if (rc == 0 && !has_canned)
        rc = S3_ERR_MISSING_SECURITY_HEADER; /* neither a canned ACL nor a policy */
    if (rc == 0 && *acl != S3_ACL_PRIVATE && *acl != S3_ACL_PUBLIC_READ)
        rc = S3_ERR_NOT_IMPLEMENTED;
    return rc;
}

int gw_bucket_acl(s3_gw_req *r, gw_answer *a)
{
    vfs_bucket b;
    int rc = gw_bucket_check(r->g, r->t.bucket, &b);
    if (rc != 0)
        return rc;
    gw_owner o;
    gw_bucket_owner(r->g, &b, &o);
    s3_acl acl = b.public_read ? S3_ACL_PUBLIC_READ : S3_ACL_PRIVATE;
    if (r->op == S3_OP_GET_BUCKET_ACL) {
        rc = s3_xml_acl(&a->body, &o.o, acl);
    } else {
        rc = acl_of_put(r, o.o.id, &acl);
        if (rc == 0) {
            b.public_read = acl == S3_ACL_PUBLIC_READ;
            rc = vfs_bucket_update(r->g->ns, r->t.bucket, &b);
            if (rc == -ENOENT)
                rc = S3_ERR_NO_SUCH_BUCKET;
        }
    }
    vfs_bucket_free(&b);
    return rc;
}

/* The object (version) of a Get/PutObjectAcl, its record and its owner
 * (objects are their bucket owner's). */
static int acl_target(s3_gw_req *r, gw_answer *a, vfs_attr *attr, vfs_objrec *rec, gw_owner *o,
                      bool *bucket_public)
{
    const char *vid = s3_query_get(&r->q, "versionId");
    int rc = gw_version_resolve(r->g, r->t.bucket, r->t.key, vid, attr, NULL);
    vfs_bucket b;
    if (rc == 0)
        rc = gw_bucket_check(r->g, r->t.bucket, &b);
    if (rc != 0)
        return rc;
    gw_bucket_owner(r->g, &b, o);
    *bucket_public = b.public_read;
    vfs_bucket_free(&b);
    char etag[S3_ETAG_MAX + 2];
    rc = gw_object_etag(r->g, attr, etag, rec);
    if (rc == 0 && !rec->etag)
        rec->etag = nb_xstrdup(etag);
    if (rc == 0 && vid)
        gw_hdr(a, "x-amz-version-id", vid);
    return rc;
}

int gw_object_acl(s3_gw_req *r, gw_answer *a)
{
    vfs_attr attr;
    vfs_objrec rec;
    gw_owner o;
    bool pub;
    int rc = acl_target(r, a, &attr, &rec, &o, &pub);
    if (rc != 0)
        return rc;
    /* Without an ACL of its own an object is as readable as its bucket. */
    s3_acl acl = rec.acl == VFS_ACL_PUBLIC_READ || (rec.acl == VFS_ACL_NONE && pub)
                     ? S3_ACL_PUBLIC_READ
                     : S3_ACL_PRIVATE;
    if (r->op == S3_OP_GET_OBJECT_ACL) {
        rc = s3_xml_acl(&a->body, &o.o, acl);
    } else {
        rc = acl_of_put(r, o.o.id, &acl);
        if (rc == 0) {
            rec.acl = acl == S3_ACL_PUBLIC_READ ? VFS_ACL_PUBLIC_READ : VFS_ACL_PRIVATE;
            rc = gw_objrec_store(r->g, attr.ino, &rec, attr.mtime_ns);
        }
    }
    vfs_objrec_free(&rec);
    return rc;
}
