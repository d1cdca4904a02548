/*
 * gw_multipart.c — multipart uploads on vfs's upload records
 * (vfs_mpu_*, vfs_part_*): a part's body streams into new slices as it
 * arrives (vfs_part_write), and Complete makes the object from those same
 * slices in one metadata transaction (no data is copied). Nothing is
 * visible in the namespace before Complete.
 *
 * Upload ids are vfs's 64-bit ids written as 16 lowercase hex digits
 * (unreserved characters, as SigV2 needs). The gateway checks what S3
 * requires around them: the upload belongs to the bucket and key of the
 * request (NoSuchUpload otherwise), part numbers, ETags, order and sizes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "s3/gw_int.h"

static void id_format(uint64_t id, char out[17])
{
    snprintf(out, 17, "%016" PRIx64, id);
}

static int id_parse(const char *s, uint64_t *out)
{
    if (!s || strlen(s) != 16)
        return S3_ERR_NO_SUCH_UPLOAD;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return S3_ERR_NO_SUCH_UPLOAD;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

/* The upload of the request, checked to belong to its bucket and key.
 * *u is zeroed first (free with vfs_upload_free on every path). */
static int upload_of_req(s3_gw_req *r, vfs_upload *u, uint64_t *id)
{
    memset(u, 0, sizeof *u);
    vfs_bucket b;
    int rc = gw_bucket_check(r->g, r->t.bucket, &b);
    if (rc != 0)
        return rc;
    rc = id_parse(s3_query_get(&r->q, "uploadId"), id);
    if (rc == 0) {
        rc = vfs_mpu_get(r->g->ns, *id, u);
        if (rc == NB_ENOTFOUND || rc == -ENOENT)
            rc = S3_ERR_NO_SUCH_UPLOAD;
    }
    if (rc == 0 && (u->bucket != b.ino || !u->key || strcmp(u->key, r->t.key) != 0))
        rc = S3_ERR_NO_SUCH_UPLOAD;
    vfs_bucket_free(&b);
    return rc;
}

static int part_number(s3_gw_req *r, uint32_t *out)
{
    const char *pn = s3_query_get(&r->q, "partNumber");
    char *end;
    long n = pn ? strtol(pn, &end, 10) : 0;
    if (!pn || *end || n < 1 || n > S3_MAX_PARTS)
        return S3_ERR_INVALID_ARGUMENT;
    *out = (uint32_t)n;
    return 0;
}

static int part_err(int rc)
{
    return rc == NB_ENOTFOUND || rc == -ENOENT ? S3_ERR_NO_SUCH_UPLOAD : rc;
}

/* ---- Create / UploadPart / UploadPartCopy --------------------------------------------------- */

int gw_create_upload(s3_gw_req *r, gw_answer *a)
{
    int rc = gw_bucket_check(r->g, r->t.bucket, NULL);
    s3_acl acl;
    if (rc == 0)
        rc = s3_acl_from_req(&r->req, &acl);
    if (rc == 0)
        rc = gw_key_err(vfs_s3_key_check(r->t.key));
    if (rc == 0 && r->t.key[r->t.key_len - 1] == '/')
        rc = S3_ERR_INVALID_ARGUMENT; /* a directory marker has no bytes */
    vfs_objrec rec = {0};
    if (rc == 0)
        rc = gw_rec_from_req(r, &rec);
    s3_checksum ck;
    if (rc == 0)
        rc = s3_checksum_from_req(&r->req, &ck);
    nb_buf enc = NB_BUF_INIT;
    if (rc == 0)
        rc = vfs_objrec_encode(&rec, &enc);
    uint64_t id = 0;
    if (rc == 0) {
        rc = gw_key_err(vfs_mpu_create(r->g->ns, NULL, r->t.bucket, r->t.key, r->auth.access_key,
                                       nb_buf_slice(&enc), &id));
        if (rc == S3_ERR_NO_SUCH_KEY)
            rc = S3_ERR_NO_SUCH_BUCKET;
    }
    nb_buf_free(&enc);
    vfs_objrec_free(&rec);
    char ids[17];
    id_format(id, ids);
    if (rc == 0)
        rc = s3_xml_initiate_upload(&a->body, r->t.bucket, r->t.key, ids);
    return rc;
}

int gw_upload_part_start(s3_gw_req *r)
{
    vfs_upload u;
    memset(&u, 0, sizeof u);
    int rc = part_number(r, &r->part_no);
    if (rc == 0)
        rc = upload_of_req(r, &u, &r->upload_id);
    vfs_upload_free(&u);
    if (rc == 0)
        rc = gw_body_start(r);
    if (rc == 0)
        rc = part_err(vfs_part_begin(r->g->ns, r->upload_id, r->part_no, &r->part));
    return rc;
}

int gw_upload_part(s3_gw_req *r, gw_answer *a)
{
    char etag[S3_ETAG_MAX + 2], cks[64];
    int rc = gw_put_verify(r, etag, cks);
    if (rc != 0)
        return rc;
    vfs_part *p = r->part;
    r->part = NULL;
    rc = part_err(vfs_part_commit(p, etag));
    if (rc != 0)
        return rc;
    gw_hdr(a, "ETag", etag);
    if (r->checksum.present && cks[0])
        gw_hdr(a, r->checksum.header, cks);
    return 0;
}

/* UploadPartCopy: a byte range of an existing object becomes a part. */
int gw_upload_part_copy(s3_gw_req *r, gw_answer *a)
{
    vfs_upload u;
    memset(&u, 0, sizeof u);
    uint32_t pn = 0;
    uint64_t id = 0;
    int rc = part_number(r, &pn);
    if (rc == 0)
        rc = upload_of_req(r, &u, &id);
    vfs_upload_free(&u);
    s3_copy_source cs;
    if (rc == 0)
        rc = s3_copy_source_parse(s3_req_header(&r->req, "x-amz-copy-source"), &cs);
    vfs_attr sa;
    if (rc == 0)
        rc = gw_version_resolve(r->g, cs.bucket, cs.key, cs.version_id[0] ? cs.version_id : NULL,
                                &sa, NULL);
    if (rc == S3_ERR_METHOD_NOT_ALLOWED)
        rc = S3_ERR_INVALID_REQUEST; /* the source version is a delete marker */
    if (rc == 0 && cs.version_id[0])
        gw_hdr(a, "x-amz-copy-source-version-id", cs.version_id);
    char etag[S3_ETAG_MAX + 2], bare[S3_ETAG_MAX + 2];
    if (rc == 0)
        rc = gw_object_etag(r->g, &sa, etag, NULL);
    if (rc == 0) {
        gw_unquote(etag, bare);
        s3_cond c;
        s3_cond_from_req(&r->req, "x-amz-copy-source-", &c);
        rc = s3_cond_eval(&c, bare, sa.mtime_ns / (int64_t)NB_NS_PER_SEC, false);
    }
    uint64_t size = rc == 0 && !S_ISDIR(sa.mode) ? sa.size : 0, off = 0, len = size;
    const char *range = s3_req_header(&r->req, "x-amz-copy-source-range");
    if (rc == 0 && range) {
        s3_range rg;
        rc = s3_copy_range_parse(range, size, &rg);
        if (rc == 0) {
            off = rg.start;
            len = rg.end - rg.start + 1;
        }
    }
    if (rc == 0 && len > S3_MAX_PUT_SIZE)
        rc = S3_ERR_ENTITY_TOO_LARGE;
    vfs_part *p = NULL;
    if (rc == 0)
        rc = part_err(vfs_part_begin(r->g->ns, id, pn, &p));
    uint8_t md5[16];
    if (rc == 0)
        rc = gw_copy_bytes(r->g, &sa, off, len, NULL, p, md5);
    if (rc == 0) {
        char hex[33];
        s3_etag_md5(md5, hex);
        snprintf(etag, sizeof etag, "\"%s\"", hex);
        rc = part_err(vfs_part_commit(p, etag));
        p = NULL;
    }
    vfs_part_abort(p);
    if (rc == 0) {
        gw_unquote(etag, bare);
        rc = s3_xml_copy_result(&a->body, bare, (int64_t)(nb_wall_ns() / NB_NS_PER_SEC), true);
    }
    return rc;
}

/* ---- parts ---------------------------------------------------------------------------------- */

typedef struct part_ent {
    uint32_t number;
    char *etag; /* as stored (quoted) */
    uint64_t size;
    int64_t mtime_ns;
} part_ent;

typedef struct part_list {
    part_ent *v;
    size_t n, cap, max; /* max 0: all */
} part_list;

static int part_cb(void *arg, const vfs_part_info *p)
{
    part_list *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = nb_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n].number = p->number;
    l->v[l->n].etag = nb_xstrdup(p->etag ? p->etag : "");
    l->v[l->n].size = p->size;
    l->v[l->n].mtime_ns = p->mtime_ns;
    l->n++;
    return l->max && l->n >= l->max;
}

static void part_list_free(part_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].etag);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ---- Complete / Abort ----------------------------------------------------------------------- */

int gw_complete_upload(s3_gw_req *r, gw_answer *a)
{
    vfs_upload u;
    uint64_t id = 0;
    int rc = upload_of_req(r, &u, &id);
    s3_complete_req cr = {0};
    if (rc == 0)
        rc = s3_parse_complete(r->body.data, r->body.len, &cr);
    part_list pl = {0};
    if (rc == 0)
        rc = part_err(vfs_part_list(r->g->ns, id, 0, part_cb, &pl));
    char **etags = rc == 0 ? nb_xcalloc(cr.n, sizeof *etags) : NULL;
    uint64_t *sizes = rc == 0 ? nb_xcalloc(cr.n, sizeof *sizes) : NULL;
    uint32_t *numbers = rc == 0 ? nb_xcalloc(cr.n, sizeof *numbers) : NULL;
    /* Both lists are in ascending part order. */
    size_t j = 0;
    for (size_t i = 0; rc == 0 && i < cr.n; i++) {
        while (j < pl.n && pl.v[j].number < cr.parts[i].number)
            j++;
        char bare[S3_ETAG_MAX + 2];
        if (j == pl.n || pl.v[j].number != cr.parts[i].number) {
            rc = S3_ERR_INVALID_PART;
            break;
        }
        gw_unquote(pl.v[j].etag, bare);
        if (strcmp(bare, cr.parts[i].etag) != 0) {
            rc = S3_ERR_INVALID_PART;
            break;
        }
        etags[i] = nb_xstrdup(bare);
        sizes[i] = pl.v[j].size;
        numbers[i] = pl.v[j].number;
    }
    if (rc == 0)
        rc = s3_parts_size_check(sizes, cr.n);
    char mp[S3_ETAG_MAX];
    if (rc == 0)
        rc = s3_etag_multipart((const char *const *)etags, cr.n, mp);
    vfs_objrec rec = {0};
    if (rc == 0 && u.objrec.len && vfs_objrec_decode(nb_buf_slice(&u.objrec), &rec) != 0)
        memset(&rec, 0, sizeof rec);
    char etag[S3_ETAG_MAX + 2];
    snprintf(etag, sizeof etag, "\"%s\"", mp);
    nb_buf enc = NB_BUF_INIT;
    int vmode = VFS_VER_OFF;
    char vid[17] = "";
    if (rc == 0)
        rc = gw_write_version(r->g, r->t.bucket, &vmode, vid);
    if (rc == 0) {
        free(rec.etag);
        rec.etag = nb_xstrdup(etag);
        rec.parts = (uint32_t)cr.n;
        free(rec.version_id);
        rec.version_id = vmode != VFS_VER_OFF ? nb_xstrdup(vid) : NULL;
        free(rec.part_sizes); /* GetObject partNumber needs each part's size */
        rec.part_sizes = nb_xmalloc(cr.n * sizeof *rec.part_sizes);
        memcpy(rec.part_sizes, sizes, cr.n * sizeof *rec.part_sizes);
        rc = vfs_objrec_encode(&rec, &enc);
    }
    vfs_attr old, attr;
    uint64_t old_ino = 0;
    if (rc == 0 && r->g->invalidate &&
        vfs_s3_lookup(r->g->ns, NULL, r->t.bucket, r->t.key, &old) == 0 && S_ISREG(old.mode))
        old_ino = old.ino;
    if (rc == 0) {
        rc = vfs_mpu_complete_ver(r->g->ns, NULL, id, numbers, cr.n, nb_buf_slice(&enc), vmode,
                                  &attr);
        if (rc == NB_ENOTFOUND)
            rc = S3_ERR_INVALID_PART; /* a part or the upload went meanwhile */
        else
            rc = gw_key_err(rc);
    }
    nb_buf_free(&enc);
    if (rc == 0) {
        /* vfs wrote the record once, stamped with the object's mtime. */
        gw_notify_key(r->g, r->t.bucket, r->t.key, old_ino);
        if (vmode == VFS_VER_ENABLED)
            gw_hdr(a, "x-amz-version-id", vid);
        char loc[S3_KEY_MAX + 80];
        snprintf(loc, sizeof loc, "/%s/%s", r->t.bucket, r->t.key);
        rc = s3_xml_complete_upload(&a->body, loc, r->t.bucket, r->t.key, mp);
    }
    vfs_objrec_free(&rec);
    for (size_t i = 0; etags && i < cr.n; i++)
        free(etags[i]);
    free(etags);
    free(sizes);
    free(numbers);
    part_list_free(&pl);
    s3_complete_req_free(&cr);
    vfs_upload_free(&u);
    return rc;
}

int gw_abort_upload(s3_gw_req *r, gw_answer *a)
{
    vfs_upload u;
    uint64_t id = 0;
    int rc = upload_of_req(r, &u, &id);
    vfs_upload_free(&u);
    if (rc == 0)
        rc = part_err(vfs_mpu_abort(r->g->ns, id));
    if (rc == 0)
        a->status = 204;
    return rc;
}

/* ---- ListParts / ListMultipartUploads ------------------------------------------------------- */

int gw_list_parts(s3_gw_req *r, gw_answer *a)
{
    vfs_upload u;
    uint64_t id = 0;
    int rc = upload_of_req(r, &u, &id);
    gw_owner owner;
    gw_owner_of_key(r->g, rc == 0 ? u.owner : NULL, &owner);
    vfs_upload_free(&u);
    s3_list_args la;
    memset(&la, 0, sizeof la);
    if (rc == 0)
        rc = s3_list_args_parse(S3_OP_LIST_PARTS, &r->q, &la);
    part_list pl = {.max = (size_t)la.max_keys + 1};
    if (rc == 0)
        rc = part_err(vfs_part_list(r->g->ns, id, la.part_marker, part_cb, &pl));
    if (rc == 0) {
        bool trunc = pl.n > la.max_keys;
        size_t n = trunc ? la.max_keys : pl.n;
        char ids[17];
        id_format(id, ids);
        s3_parts_params pp = {
            .bucket = r->t.bucket,
            .key = r->t.key,
            .upload_id = ids,
            .part_number_marker = la.part_marker,
            .next_part_number_marker = n ? pl.v[n - 1].number : 0,
            .max_parts = la.max_keys,
            .truncated = trunc,
            .owner = &owner.o,
            .storage_class = "STANDARD",
        };
        s3_xml x;
        s3_xml_parts_begin(&x, &a->body, &pp);
        for (size_t i = 0; i < n; i++) {
            char bare[S3_ETAG_MAX + 2];
            gw_unquote(pl.v[i].etag, bare);
            s3_xml_part(&x, pl.v[i].number, pl.v[i].mtime_ns / (int64_t)NB_NS_PER_SEC, bare,
                        pl.v[i].size);
        }
        rc = s3_xml_end(&x);
    }
    part_list_free(&pl);
    s3_list_args_free(&la);
    return rc;
}

typedef struct up_ent {
    char *key;
    char *owner; /* access key of the initiator, or NULL */
    char id[17];
    int64_t initiated_ns;
} up_ent;

typedef struct up_list {
    up_ent *v;
    size_t n, cap;
    const char *prefix;
    size_t limit; /* stop after this many (no delimiter: one page + 1) */
} up_list;

static int up_cb(void *arg, const vfs_upload *u)
{
    up_list *l = arg;
    if (!u->key || strncmp(u->key, l->prefix, strlen(l->prefix)) != 0)
        return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = nb_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    up_ent *e = &l->v[l->n++];
    e->key = nb_xstrdup(u->key);
    e->owner = u->owner ? nb_xstrdup(u->owner) : NULL;
    id_format(u->id, e->id);
    e->initiated_ns = u->initiated_ns;
    return l->limit && l->n >= l->limit;
}

int gw_list_uploads(s3_gw_req *r, gw_answer *a)
{
    int rc = gw_bucket_check(r->g, r->t.bucket, NULL);
    s3_list_args la;
    memset(&la, 0, sizeof la);
    if (rc == 0)
        rc = s3_list_args_parse(S3_OP_LIST_MULTIPART_UPLOADS, &r->q, &la);
    up_list l = {.prefix = la.prefix ? la.prefix : ""};
    l.limit = la.delimiter ? 0 : (size_t)la.max_keys + 1;
    /* key-marker alone: uploads of later keys; with upload-id-marker:
     * later uploads of that key too. */
    const char *after_key = la.marker && *la.marker ? la.marker : NULL;
    uint64_t after_id = UINT64_MAX;
    if (rc == 0 && after_key && la.version_marker && *la.version_marker &&
        id_parse(la.version_marker, &after_id) != 0)
        rc = S3_ERR_INVALID_ARGUMENT;
    if (rc == 0)
        rc = vfs_mpu_list(r->g->ns, NULL, r->t.bucket, after_key, after_key ? after_id : 0, up_cb,
                          &l);
    if (rc == -ENOENT)
        rc = S3_ERR_NO_SUCH_BUCKET;
    if (rc == 0) {
        size_t plen = strlen(l.prefix), i = 0, shown = 0;
        char **cp = nb_xcalloc(l.n + 1, sizeof *cp); /* per entry: its group, or NULL */
        bool *show = nb_xcalloc(l.n + 1, sizeof *show);
        const char *last_group = NULL;
        for (; i < l.n && shown < la.max_keys; i++) {
            const char *d = la.delimiter ? strstr(l.v[i].key + plen, la.delimiter) : NULL;
            if (d) {
                size_t cl = (size_t)(d - l.v[i].key) + strlen(la.delimiter);
                cp[i] = nb_xstrndup(l.v[i].key, cl);
                if (last_group && strcmp(last_group, cp[i]) == 0)
                    continue;
                last_group = cp[i];
            }
            show[i] = true;
            shown++;
        }
        size_t last = i;
        while (last > 0 && !show[last - 1])
            last--;
        s3_uploads_params up = {
            .url_encode = la.url_encode,
            .truncated = i < l.n,
            .bucket = r->t.bucket,
            .prefix = la.prefix,
            .delimiter = la.delimiter,
            .max_uploads = la.max_keys,
            .key_marker = la.marker,
            .upload_id_marker = la.version_marker,
            .next_key_marker = i < l.n && last ? l.v[last - 1].key : NULL,
            .next_upload_id_marker = i < l.n && last ? l.v[last - 1].id : NULL,
        };
        s3_xml x;
        s3_xml_uploads_begin(&x, &a->body, &up);
        for (size_t j = 0; j < i; j++) {
            if (!show[j])
                continue;
            if (cp[j])
                s3_xml_common_prefix(&x, la.url_encode, cp[j]);
            else {
                gw_owner o;
                gw_owner_of_key(r->g, l.v[j].owner, &o);
                s3_xml_upload(&x, la.url_encode, l.v[j].key, l.v[j].id, &o.o,
                              l.v[j].initiated_ns / (int64_t)NB_NS_PER_SEC);
            }
        }
        rc = s3_xml_end(&x);
        for (size_t j = 0; j < l.n; j++)
            free(cp[j]);
        free(cp);
        free(show);
    }
    for (size_t j = 0; j < l.n; j++) {
        free(l.v[j].key);
        free(l.v[j].owner);
    }
    free(l.v);
    s3_list_args_free(&la);
    return rc;
}
