/*
 * gw_multipart.c — multipart uploads over the namespace.
 *
 * vfs has no upload records yet (meta has them, docs/vfs.md §10), so an
 * upload lives in the hidden directory GW_UPLOADS_DIR under the root, as
 * ordinary files written with atomic puts:
 *
 *   .nebula-uploads/<id>/          the upload (a directory marker)
 *   .nebula-uploads/<id>/info      "<bucket>\n<key>"; its object record is
 *                                  the completed object's (headers, user
 *                                  metadata, tags); its mtime = initiated
 *   .nebula-uploads/<id>/p00001    part 1; its record holds the part ETag
 *
 * The hidden directory exists while uploads do: the first upload makes
 * it, removing the last one removes it, so the mount's root shows it only
 * while an upload is in progress.
 *
 * <id> is 32 random hex digits (unreserved characters, as SigV2 needs).
 * Complete streams the parts in order into one atomic put at the key (the
 * final object appears whole or not at all), then removes the upload.
 * The copy costs a read and a write of the object; with vfs access to
 * meta's upload records the parts become slices of the object instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "s3/gw_int.h"

typedef struct upload {
    char id[33];
    char *bucket, *key;
    int64_t initiated_ns;
    vfs_objrec rec;
} upload;

static void upload_free(upload *u)
{
    free(u->bucket);
    free(u->key);
    vfs_objrec_free(&u->rec);
    memset(u, 0, sizeof *u);
}

static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n != 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

/* Reads upload id; NoSuchUpload when it does not exist. */
static int upload_load(s3_gw *g, const char *id, upload *u)
{
    memset(u, 0, sizeof *u);
    if (!id || !id_ok(id))
        return S3_ERR_NO_SUCH_UPLOAD;
    snprintf(u->id, sizeof u->id, "%s", id);
    char key[64];
    snprintf(key, sizeof key, "%s/info", id);
    vfs_attr a;
    int rc = vfs_s3_lookup(g->ns, NULL, GW_UPLOADS_DIR, key, &a);
    if (rc != 0)
        return rc == -ENOENT ? S3_ERR_NO_SUCH_UPLOAD : rc;
    if (a.size > 2 * S3_KEY_MAX)
        return S3_ERR_NO_SUCH_UPLOAD;
    vfs_file *f = NULL;
    rc = vfs_file_open(g->ns, NULL, a.ino, O_RDONLY, &f);
    char buf[2 * S3_KEY_MAX + 2];
    size_t got = 0;
    if (rc == 0)
        rc = vfs_read(f, 0, buf, a.size, &got);
    if (f)
        (void)vfs_release(f);
    if (rc != 0)
        return rc == -ENOENT ? S3_ERR_NO_SUCH_UPLOAD : rc;
    buf[got] = 0;
    char *nl = strchr(buf, '\n');
    if (!nl)
        return S3_ERR_NO_SUCH_UPLOAD;
    *nl = 0;
    u->bucket = nb_xstrdup(buf);
    u->key = nb_xstrdup(nl + 1);
    u->initiated_ns = a.mtime_ns;
    nb_buf enc = NB_BUF_INIT;
    if (vfs_objrec_get(g->ns, a.ino, &enc) == 0 &&
        vfs_objrec_decode(nb_buf_slice(&enc), &u->rec) != 0)
        memset(&u->rec, 0, sizeof u->rec);
    nb_buf_free(&enc);
    return 0;
}

/* Loads the upload of the request and checks it belongs to its bucket and
 * key. */
static int upload_of_req(s3_gw_req *r, upload *u)
{
    memset(u, 0, sizeof *u);
    int rc = gw_bucket_check(r->g, r->t.bucket, NULL);
    if (rc == 0)
        rc = upload_load(r->g, s3_query_get(&r->q, "uploadId"), u);
    if (rc == 0 && (strcmp(u->bucket, r->t.bucket) != 0 || strcmp(u->key, r->t.key) != 0))
        rc = S3_ERR_NO_SUCH_UPLOAD;
    return rc;
}

/* Writes a small object in the hidden area. */
static int put_small(s3_gw *g, const char *key, const void *data, size_t n, const vfs_objrec *rec)
{
    vfs_put *p = NULL;
    int rc = vfs_put_begin(g->ns, NULL, GW_UPLOADS_DIR, key, 0600, &p);
    if (rc == 0 && n)
        rc = vfs_put_write(p, data, n);
    nb_buf enc = NB_BUF_INIT;
    if (rc == 0 && rec)
        rc = vfs_objrec_encode(rec, &enc);
    if (rc == 0) {
        rc = vfs_put_commit(p, rec ? nb_buf_slice(&enc) : nb_slice_of(NULL, 0), NULL);
        p = NULL;
    }
    vfs_put_abort(p);
    nb_buf_free(&enc);
    return rc;
}

typedef struct key_list {
    char **v;
    size_t n, cap;
    vfs_attr *attrs;
} key_list;

static int key_cb(void *arg, const vfs_list_entry *e)
{
    key_list *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = nb_xrealloc(l->v, l->cap * sizeof *l->v);
        l->attrs = nb_xrealloc(l->attrs, l->cap * sizeof *l->attrs);
    }
    l->v[l->n] = nb_xstrndup(e->key, e->key_len);
    if (e->attr)
        l->attrs[l->n] = *e->attr;
    else
        memset(&l->attrs[l->n], 0, sizeof l->attrs[l->n]);
    l->n++;
    return 0;
}

static void key_list_free(key_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    free(l->attrs);
    memset(l, 0, sizeof *l);
}

/* Every key of the hidden area under prefix (with delimiter: the groups),
 * all pages. */
static int list_all(s3_gw *g, const char *prefix, const char *delim, const char *after, size_t max,
                    key_list *l)
{
    char *start = after ? nb_xstrdup(after) : NULL;
    int rc = 0;
    for (;;) {
        bool trunc = false;
        char *next = NULL;
        vfs_list_opts o = {
            .prefix = prefix, .delimiter = delim, .start_after = start, .max_keys = 1000};
        rc = vfs_s3_list(g->ns, NULL, GW_UPLOADS_DIR, &o, key_cb, l, &trunc, &next);
        free(start);
        start = next;
        if (rc != 0 || !trunc || !next || (max && l->n >= max))
            break;
    }
    free(start);
    return rc;
}

static int upload_remove(s3_gw *g, const char *id)
{
    char prefix[40];
    snprintf(prefix, sizeof prefix, "%s/", id);
    key_list l = {0};
    int rc = list_all(g, prefix, NULL, NULL, 0, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        rc = vfs_s3_delete(g->ns, NULL, GW_UPLOADS_DIR, l.v[i]);
        if (rc == -ENOENT)
            rc = 0;
    }
    key_list_free(&l);
    if (rc == 0) {
        rc = vfs_s3_delete(g->ns, NULL, GW_UPLOADS_DIR, prefix);
        if (rc == -ENOENT)
            rc = 0;
    }
    /* The last upload takes the hidden directory with it. */
    if (rc == 0 && vfs_rmdir(g->ns, NULL, VFS_ROOT_INO, GW_UPLOADS_DIR) == 0 && g->invalidate)
        g->invalidate(g->invalidate_ctx, VFS_ROOT_INO, GW_UPLOADS_DIR, 0);
    return rc;
}

/* ---- Create / UploadPart -------------------------------------------------------------------- */

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
    char id[33], key[64];
    gw_random_id(id);
    snprintf(key, sizeof key, "%s/", id);
    /* The hidden directory may be removed by the end of another upload
     * between our mkdir and our put: try again. */
    for (int tries = 0; rc == 0 && tries < 5; tries++) {
        rc = vfs_mkdir(r->g->ns, NULL, VFS_ROOT_INO, GW_UPLOADS_DIR, S_IFDIR | 0700, NULL);
        if (rc == 0 && r->g->invalidate)
            r->g->invalidate(r->g->invalidate_ctx, VFS_ROOT_INO, GW_UPLOADS_DIR, 0);
        if (rc == -EEXIST)
            rc = 0;
        if (rc == 0)
            rc = put_small(r->g, key, NULL, 0, NULL);
        if (rc != -ENOENT)
            break;
        rc = 0;
    }
    if (rc == 0) {
        snprintf(key, sizeof key, "%s/info", id);
        char *info = nb_xasprintf("%s\n%s", r->t.bucket, r->t.key);
        rc = put_small(r->g, key, info, strlen(info), &rec);
        free(info);
    }
    vfs_objrec_free(&rec);
    if (rc == 0)
        rc = s3_xml_initiate_upload(&a->body, r->t.bucket, r->t.key, id);
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

int gw_upload_part_start(s3_gw_req *r)
{
    upload u;
    memset(&u, 0, sizeof u);
    int rc = part_number(r, &r->part);
    if (rc == 0)
        rc = upload_of_req(r, &u);
    if (rc == 0) {
        char key[64];
        snprintf(key, sizeof key, "%s/p%05u", u.id, r->part);
        rc = gw_put_start(r, GW_UPLOADS_DIR, key);
        if (rc == S3_ERR_NO_SUCH_BUCKET)
            rc = S3_ERR_NO_SUCH_UPLOAD;
    }
    upload_free(&u);
    return rc;
}

int gw_upload_part(s3_gw_req *r, gw_answer *a)
{
    char etag[S3_ETAG_MAX + 2], cks[64];
    int rc = gw_put_verify(r, etag, cks);
    if (rc != 0)
        return rc;
    vfs_objrec rec = {0};
    rec.etag = etag;
    nb_buf enc = NB_BUF_INIT;
    rc = vfs_objrec_encode(&rec, &enc);
    vfs_put *p = r->put;
    r->put = NULL;
    if (rc == 0)
        rc = vfs_put_commit(p, nb_buf_slice(&enc), NULL);
    else
        vfs_put_abort(p);
    nb_buf_free(&enc);
    if (rc == -ENOENT)
        rc = S3_ERR_NO_SUCH_UPLOAD; /* aborted meanwhile */
    if (rc != 0)
        return rc;
    gw_hdr(a, "ETag", etag);
    if (r->checksum.present && cks[0])
        gw_hdr(a, r->checksum.header, cks);
    return 0;
}

/* UploadPartCopy: a byte range of an existing object becomes a part,
 * copied through an atomic put like UploadPart's body. */
int gw_upload_part_copy(s3_gw_req *r, gw_answer *a)
{
    upload u;
    memset(&u, 0, sizeof u);
    uint32_t pn = 0;
    int rc = part_number(r, &pn);
    if (rc == 0)
        rc = upload_of_req(r, &u);
    s3_copy_source cs;
    if (rc == 0)
        rc = s3_copy_source_parse(s3_req_header(&r->req, "x-amz-copy-source"), &cs);
    if (rc == 0 && cs.version_id[0] && strcmp(cs.version_id, "null") != 0)
        rc = S3_ERR_NO_SUCH_VERSION;
    if (rc == 0)
        rc = gw_bucket_check(r->g, cs.bucket, NULL);
    vfs_attr sa;
    if (rc == 0) {
        rc = vfs_s3_lookup(r->g->ns, NULL, cs.bucket, cs.key, &sa);
        if (rc == -EINVAL || rc == -ENOENT || rc == -ENOTDIR)
            rc = S3_ERR_NO_SUCH_KEY;
    }
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
    vfs_put *p = NULL;
    char key[64];
    snprintf(key, sizeof key, "%s/p%05u", u.id, pn);
    if (rc == 0) {
        rc = vfs_put_begin(r->g->ns, NULL, GW_UPLOADS_DIR, key, 0600, &p);
        if (rc == -ENOENT)
            rc = S3_ERR_NO_SUCH_UPLOAD;
    }
    uint8_t md5[16];
    if (rc == 0)
        rc = gw_copy_bytes(r->g, &sa, off, len, p, md5);
    nb_buf enc = NB_BUF_INIT;
    if (rc == 0) {
        char hex[33];
        s3_etag_md5(md5, hex);
        snprintf(etag, sizeof etag, "\"%s\"", hex);
        vfs_objrec rec = {0};
        rec.etag = etag;
        rc = vfs_objrec_encode(&rec, &enc);
    }
    vfs_attr pa;
    if (rc == 0) {
        rc = vfs_put_commit(p, nb_buf_slice(&enc), &pa);
        p = NULL;
        if (rc == -ENOENT)
            rc = S3_ERR_NO_SUCH_UPLOAD;
    }
    vfs_put_abort(p);
    nb_buf_free(&enc);
    if (rc == 0) {
        gw_unquote(etag, bare);
        rc = s3_xml_copy_result(&a->body, bare, pa.mtime_ns / (int64_t)NB_NS_PER_SEC, true);
    }
    upload_free(&u);
    return rc;
}

/* The ETag (quoted) stored with a part. */
static int part_etag(s3_gw *g, uint64_t ino, char *etag)
{
    nb_buf enc = NB_BUF_INIT;
    vfs_objrec rec = {0};
    int rc = vfs_objrec_get(g->ns, ino, &enc);
    if (rc == 0)
        rc = vfs_objrec_decode(nb_buf_slice(&enc), &rec);
    nb_buf_free(&enc);
    if (rc == 0 && !rec.etag)
        rc = S3_ERR_INVALID_PART;
    if (rc == 0)
        snprintf(etag, S3_ETAG_MAX + 2, "%s", rec.etag);
    vfs_objrec_free(&rec);
    return rc;
}

/* ---- Complete / Abort ----------------------------------------------------------------------- */

int gw_complete_upload(s3_gw_req *r, gw_answer *a)
{
    upload u;
    int rc = upload_of_req(r, &u);
    s3_complete_req cr = {0};
    if (rc == 0)
        rc = s3_parse_complete(r->body.data, r->body.len, &cr);
    vfs_attr *pa = NULL;
    char **etags = NULL;
    uint64_t *sizes = NULL;
    if (rc == 0) {
        pa = nb_xcalloc(cr.n, sizeof *pa);
        etags = nb_xcalloc(cr.n, sizeof *etags);
        sizes = nb_xcalloc(cr.n, sizeof *sizes);
    }
    for (size_t i = 0; rc == 0 && i < cr.n; i++) {
        char key[64], etag[S3_ETAG_MAX + 2], bare[S3_ETAG_MAX + 2];
        snprintf(key, sizeof key, "%s/p%05u", u.id, cr.parts[i].number);
        rc = vfs_s3_lookup(r->g->ns, NULL, GW_UPLOADS_DIR, key, &pa[i]);
        if (rc == -ENOENT)
            rc = S3_ERR_INVALID_PART;
        if (rc == 0)
            rc = part_etag(r->g, pa[i].ino, etag);
        if (rc == 0) {
            gw_unquote(etag, bare);
            if (strcmp(bare, cr.parts[i].etag) != 0)
                rc = S3_ERR_INVALID_PART;
        }
        if (rc == 0) {
            etags[i] = nb_xstrdup(bare);
            sizes[i] = pa[i].size;
        }
    }
    if (rc == 0)
        rc = s3_parts_size_check(sizes, cr.n);
    char mp[S3_ETAG_MAX];
    if (rc == 0)
        rc = s3_etag_multipart((const char *const *)etags, cr.n, mp);
    vfs_attr old;
    uint64_t old_ino = 0;
    if (rc == 0 && vfs_s3_lookup(r->g->ns, NULL, u.bucket, u.key, &old) == 0 && S_ISREG(old.mode))
        old_ino = old.ino;
    vfs_put *p = NULL;
    if (rc == 0)
        rc = gw_key_err(vfs_put_begin(r->g->ns, NULL, u.bucket, u.key, 0644, &p));
    for (size_t i = 0; rc == 0 && i < cr.n; i++)
        rc = gw_copy_bytes(r->g, &pa[i], 0, pa[i].size, p, NULL);
    char etag[S3_ETAG_MAX + 2];
    snprintf(etag, sizeof etag, "\"%s\"", mp);
    nb_buf enc = NB_BUF_INIT;
    if (rc == 0) {
        free(u.rec.etag);
        u.rec.etag = nb_xstrdup(etag);
        u.rec.parts = (uint32_t)cr.n;
        rc = vfs_objrec_encode(&u.rec, &enc);
    }
    vfs_attr attr;
    if (rc == 0) {
        rc = gw_key_err(vfs_put_commit(p, nb_buf_slice(&enc), &attr));
        p = NULL;
    }
    vfs_put_abort(p);
    nb_buf_free(&enc);
    if (rc == 0) {
        if (gw_objrec_store(r->g, attr.ino, &u.rec, attr.mtime_ns) != 0)
            NB_WARN("s3: %s: cannot stamp the ETag record", r->request_id);
        gw_notify_key(r->g, u.bucket, u.key, old_ino);
        int rrc = upload_remove(r->g, u.id);
        if (rrc != 0)
            NB_WARN("s3: upload %s completed but not removed: %s", u.id, nb_strerror(rrc));
        char loc[S3_KEY_MAX + 80];
        snprintf(loc, sizeof loc, "/%s/%s", u.bucket, u.key);
        rc = s3_xml_complete_upload(&a->body, loc, u.bucket, u.key, mp);
    }
    for (size_t i = 0; etags && i < cr.n; i++)
        free(etags[i]);
    free(etags);
    free(sizes);
    free(pa);
    s3_complete_req_free(&cr);
    upload_free(&u);
    return rc;
}

int gw_abort_upload(s3_gw_req *r, gw_answer *a)
{
    upload u;
    int rc = upload_of_req(r, &u);
    if (rc == 0)
        rc = upload_remove(r->g, u.id);
    upload_free(&u);
    if (rc == 0)
        a->status = 204;
    return rc;
}

/* ---- ListParts / ListMultipartUploads ------------------------------------------------------- */

int gw_list_parts(s3_gw_req *r, gw_answer *a)
{
    upload u;
    int rc = upload_of_req(r, &u);
    s3_list_args la;
    memset(&la, 0, sizeof la);
    if (rc == 0)
        rc = s3_list_args_parse(S3_OP_LIST_PARTS, &r->q, &la);
    key_list l = {0};
    char prefix[40], after[48];
    snprintf(prefix, sizeof prefix, "%s/p", u.id);
    snprintf(after, sizeof after, "%s/p%05u", u.id, la.part_marker);
    if (rc == 0)
        rc = list_all(r->g, prefix, NULL, la.part_marker ? after : NULL, la.max_keys + 1, &l);
    if (rc == 0) {
        bool trunc = l.n > la.max_keys;
        size_t n = trunc ? la.max_keys : l.n;
        uint32_t last = n ? (uint32_t)strtoul(l.v[n - 1] + strlen(prefix), NULL, 10) : 0;
        s3_parts_params pp = {
            .bucket = r->t.bucket,
            .key = r->t.key,
            .upload_id = u.id,
            .part_number_marker = la.part_marker,
            .next_part_number_marker = last,
            .max_parts = la.max_keys,
            .truncated = trunc,
            .owner = &gw_owner_root,
            .storage_class = "STANDARD",
        };
        s3_xml x;
        s3_xml_parts_begin(&x, &a->body, &pp);
        for (size_t i = 0; i < n; i++) {
            char etag[S3_ETAG_MAX + 2], bare[S3_ETAG_MAX + 2];
            if (part_etag(r->g, l.attrs[i].ino, etag) != 0)
                continue;
            gw_unquote(etag, bare);
            s3_xml_part(&x, (uint32_t)strtoul(l.v[i] + strlen(prefix), NULL, 10),
                        l.attrs[i].mtime_ns / (int64_t)NB_NS_PER_SEC, bare, l.attrs[i].size);
        }
        rc = s3_xml_end(&x);
    }
    key_list_free(&l);
    s3_list_args_free(&la);
    upload_free(&u);
    return rc;
}

static int upload_cmp(const void *a, const void *b)
{
    const upload *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->id, y->id);
}

int gw_list_uploads(s3_gw_req *r, gw_answer *a)
{
    int rc = gw_bucket_check(r->g, r->t.bucket, NULL);
    s3_list_args la;
    memset(&la, 0, sizeof la);
    if (rc == 0)
        rc = s3_list_args_parse(S3_OP_LIST_MULTIPART_UPLOADS, &r->q, &la);
    key_list l = {0};
    if (rc == 0)
        rc = list_all(r->g, "", "/", NULL, 0, &l);
    if (rc == -ENOENT)
        rc = 0; /* no upload at all: no hidden directory */
    upload *v = NULL;
    size_t n = 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        char id[33];
        snprintf(id, sizeof id, "%.32s", l.v[i]);
        upload u;
        if (upload_load(r->g, id, &u) != 0)
            continue;
        if (strcmp(u.bucket, r->t.bucket) != 0 || strncmp(u.key, la.prefix, strlen(la.prefix)) ||
            (la.marker && *la.marker &&
             (strcmp(u.key, la.marker) < 0 ||
              (strcmp(u.key, la.marker) == 0 &&
               (!la.version_marker || strcmp(u.id, la.version_marker) <= 0))))) {
            upload_free(&u);
            continue;
        }
        v = nb_xrealloc(v, (n + 1) * sizeof *v);
        v[n++] = u;
    }
    if (rc == 0) {
        if (n)
            qsort(v, n, sizeof *v, upload_cmp);
        /* The page: uploads, or common prefixes that group them. */
        size_t plen = strlen(la.prefix), i = 0, shown = 0;
        char **cp = nb_xcalloc(n + 1, sizeof *cp); /* per entry: its group, or NULL */
        bool *show = nb_xcalloc(n + 1, sizeof *show);
        const char *last_group = NULL;
        for (; i < n && shown < la.max_keys; i++) {
            const char *d = la.delimiter ? strstr(v[i].key + plen, la.delimiter) : NULL;
            if (d) {
                size_t cl = (size_t)(d - v[i].key) + strlen(la.delimiter);
                cp[i] = nb_xstrndup(v[i].key, cl);
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
            .truncated = i < n,
            .bucket = r->t.bucket,
            .prefix = la.prefix,
            .delimiter = la.delimiter,
            .max_uploads = la.max_keys,
            .key_marker = la.marker,
            .upload_id_marker = la.version_marker,
            .next_key_marker = i < n && last ? v[last - 1].key : NULL,
            .next_upload_id_marker = i < n && last ? v[last - 1].id : NULL,
        };
        s3_xml x;
        s3_xml_uploads_begin(&x, &a->body, &up);
        for (size_t j = 0; j < i; j++) {
            if (!show[j])
                continue;
            if (cp[j])
                s3_xml_common_prefix(&x, la.url_encode, cp[j]);
            else
                s3_xml_upload(&x, la.url_encode, v[j].key, v[j].id, &gw_owner_root,
                              v[j].initiated_ns / (int64_t)NB_NS_PER_SEC);
        }
        rc = s3_xml_end(&x);
        for (size_t j = 0; j < n; j++)
            free(cp[j]);
        free(cp);
        free(show);
    }
    for (size_t i = 0; i < n; i++)
        upload_free(&v[i]);
    free(v);
    key_list_free(&l);
    s3_list_args_free(&la);
    return rc;
}
