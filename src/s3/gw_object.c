/*
 * gw_object.c — object operations: PutObject (streamed into an atomic vfs
 * put), GetObject/HeadObject (ranges, conditionals, response-* overrides,
 * streamed out), DeleteObject, DeleteObjects, CopyObject, object tagging
 * and ACL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/common.h"
#include "s3/gw_int.h"

/* ---- streaming a body into a put ------------------------------------------------------------ */

int gw_body_start(s3_gw_req *r)
{
    int rc = s3_payload_length(&r->req, &r->auth, S3_MAX_PUT_SIZE, &r->expect_len);
    const char *md5 = s3_req_header(&r->req, "content-md5");
    if (rc == 0 && md5) {
        rc = s3_content_md5_parse(md5, r->content_md5);
        r->has_md5 = true;
    }
    if (rc == 0)
        rc = s3_checksum_from_req(&r->req, &r->checksum);
    if (rc == 0 && r->checksum.present)
        rc = s3_digest_new(r->checksum.alg, &r->cks);
    if (rc == 0)
        rc = s3_digest_new(S3_DIGEST_MD5, &r->md5);
    if (rc == 0)
        r->body_mode = GW_BODY_PUT;
    return rc;
}

int gw_put_start(s3_gw_req *r, const char *bucket, const char *key)
{
    int rc = gw_body_start(r);
    if (rc == 0)
        rc = gw_key_err(vfs_put_begin(r->g->ns, NULL, bucket, key, 0644, &r->put));
    if (rc == S3_ERR_NO_SUCH_KEY)
        rc = S3_ERR_NO_SUCH_BUCKET;
    return rc;
}

int gw_put_data(s3_gw_req *r, const uint8_t *p, size_t n)
{
    r->got += n;
    if (r->got > r->expect_len)
        return S3_ERR_INCOMPLETE_BODY;
    s3_digest_update(r->md5, p, n);
    if (r->cks)
        s3_digest_update(r->cks, p, n);
    return r->put ? vfs_put_write(r->put, p, n) : vfs_part_write(r->part, p, n);
}

int gw_put_verify(s3_gw_req *r, char *etag, char *cks_b64)
{
    cks_b64[0] = 0;
    if (r->got != r->expect_len)
        return S3_ERR_INCOMPLETE_BODY;
    uint8_t md5[S3_DIGEST_MAX];
    s3_digest_final(r->md5, md5);
    if (r->has_md5 && memcmp(md5, r->content_md5, 16) != 0)
        return S3_ERR_BAD_DIGEST;
    char hex[33];
    s3_etag_md5(md5, hex);
    snprintf(etag, S3_ETAG_MAX + 2, "\"%s\"", hex);
    if (r->cks) {
        uint8_t d[S3_DIGEST_MAX];
        s3_digest_final(r->cks, d);
        const char *tv = r->checksum.trailer && r->chunked
                             ? s3_chunked_trailer(r->chunked, r->checksum.header)
                             : NULL;
        int rc = s3_checksum_verify(&r->checksum, d, tv, cks_b64);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- PutObject ------------------------------------------------------------------------------ */

int gw_put_object_start(s3_gw_req *r)
{
    /* The bucket itself is checked by vfs_put_begin (NoSuchBucket); hidden
     * directories are not buckets. */
    int rc = r->t.bucket[0] == '.' ? S3_ERR_NO_SUCH_BUCKET : 0;
    s3_acl acl;
    if (rc == 0)
        rc = s3_acl_from_req(&r->req, &acl);
    if (rc == 0)
        rc = gw_rec_from_req(r, &r->rec);
    if (rc != 0)
        return rc;
    const char *inm = s3_req_header(&r->req, "if-none-match");
    const char *im = s3_req_header(&r->req, "if-match");
    /* The object replaced: for conditions and for the mount's caches. */
    vfs_attr old = {0};
    bool exists = (inm || im || r->g->invalidate) &&
                  vfs_s3_lookup(r->g->ns, NULL, r->t.bucket, r->t.key, &old) == 0;
    if (inm && strcmp(inm, "*") == 0 && exists)
        return S3_ERR_PRECONDITION_FAILED;
    if (im && !exists)
        return S3_ERR_NO_SUCH_KEY;
    if (im) {
        char etag[S3_ETAG_MAX + 2];
        rc = gw_object_etag(r->g, &old, etag, NULL);
        s3_cond c = {.if_match = im};
        etag[strlen(etag) - 1] = 0;
        if (rc == 0)
            rc = s3_cond_eval(&c, etag + 1, old.mtime_ns / (int64_t)NB_NS_PER_SEC, false);
        if (rc != 0)
            return rc;
    }
    r->old_ino = exists && S_ISREG(old.mode) ? old.ino : 0;
    return gw_put_start(r, r->t.bucket, r->t.key);
}

static void checksum_header(s3_gw_req *r, gw_answer *a, const char *b64)
{
    if (r->checksum.present && b64[0])
        gw_hdr(a, r->checksum.header, b64);
}

int gw_put_object(s3_gw_req *r, gw_answer *a)
{
    char etag[S3_ETAG_MAX + 2], cks[64];
    int rc = gw_put_verify(r, etag, cks);
    if (rc != 0)
        return rc;
    vfs_objrec *rec = &r->rec;
    rec->etag = nb_xstrdup(etag);
    if (cks[0]) {
        static const char *const names[] = {"MD5", "SHA1", "SHA256", "CRC32", "CRC32C"};
        rec->checksum_algo = nb_xstrdup(names[r->checksum.alg]);
        rec->checksum = nb_xstrdup(cks);
    }
    int vmode = VFS_VER_OFF;
    char vid[17] = "";
    rc = gw_write_version(r->g, r->t.bucket, &vmode, vid);
    if (rc == 0 && vmode != VFS_VER_OFF && r->t.key[strlen(r->t.key) - 1] != '/') {
        free(rec->version_id);
        rec->version_id = nb_xstrdup(vid);
        vfs_put_versioning(r->put, vmode);
    } else {
        vmode = VFS_VER_OFF;
    }
    nb_buf enc = NB_BUF_INIT;
    if (rc == 0)
        rc = vfs_objrec_encode(rec, &enc);
    vfs_attr attr;
    vfs_put *p = r->put;
    r->put = NULL;
    if (rc == 0)
        rc = gw_key_err(vfs_put_commit(p, nb_buf_slice(&enc), &attr));
    else
        vfs_put_abort(p);
    nb_buf_free(&enc);
    if (rc == S3_ERR_NO_SUCH_KEY)
        rc = S3_ERR_NO_SUCH_BUCKET; /* the bucket went away meanwhile */
    if (rc != 0)
        return rc;
    /* vfs_put_commit stamped the record with the mtime it gave the file,
     * in the same batch: a later write through the mount changes the
     * mtime and so marks the ETag stale. */
    gw_notify_key(r->g, r->t.bucket, r->t.key, r->old_ino);
    gw_hdr(a, "ETag", etag);
    if (vmode == VFS_VER_ENABLED)
        gw_hdr(a, "x-amz-version-id", vid);
    checksum_header(r, a, cks);
    return 0;
}

/* ---- GetObject / HeadObject ----------------------------------------------------------------- */

static void add_time(gw_answer *a, const char *name, int64_t ns)
{
    char d[40];
    s3_http_date_format(ns / (int64_t)NB_NS_PER_SEC, d, sizeof d);
    gw_hdr(a, name, d);
}

static const char *override_of(const s3_meta *ov, const char *name)
{
    for (size_t i = 0; i < ov->n; i++)
        if (strcasecmp(ov->items[i].name, name) == 0)
            return ov->items[i].value;
    return NULL;
}

static void sys_header(gw_answer *a, const s3_meta *ov, const char *name, const char *stored)
{
    const char *v = override_of(ov, name);
    if (!v)
        v = stored;
    if (v)
        gw_hdr(a, name, v);
}

/* GetObject/HeadObject partNumber=pn: the byte range of that part, as a
 * range request (206), and *count for x-amz-mp-parts-count (0: none). A
 * single-part object is its own part 1; a part beyond the count is
 * InvalidPartNumber (416). A multipart object completed before part sizes
 * were recorded gets them from its chunk maps (vfs_mpu_part_sizes); when
 * those do not tell, it answers as a single-part object (part 1 is the
 * whole object, no parts count), so a client that downloads by parts
 * still gets the right bytes (docs/s3.md). */
static int part_bounds(s3_gw_req *r, uint64_t ino, uint64_t size, vfs_objrec *rec, const char *pn,
                       s3_range *out, uint32_t *count)
{
    char *end;
    errno = 0;
    long n = strtol(pn, &end, 10);
    *count = 0;
    if (!*pn || *end || errno || n < 1 || n > S3_MAX_PARTS)
        return S3_ERR_INVALID_ARGUMENT;
    if (s3_req_header(&r->req, "range"))
        return S3_ERR_INVALID_REQUEST; /* "Cannot specify both Range and partNumber" */
    if (rec->parts > 1 && !rec->part_sizes) {
        uint64_t *sizes = nb_xcalloc(rec->parts, sizeof *sizes);
        if (vfs_mpu_part_sizes(r->g->ns, ino, size, rec->parts, sizes) == 0)
            rec->part_sizes = sizes;
        else
            free(sizes);
    }
    uint32_t parts = rec->parts && (rec->parts == 1 || rec->part_sizes) ? rec->parts : 1;
    *count = rec->parts && rec->part_sizes ? rec->parts : rec->parts == 1 ? 1 : 0;
    if ((uint32_t)n > parts)
        return S3_ERR_INVALID_PART_NUMBER;
    uint64_t off = 0, len = size;
    if (rec->part_sizes) {
        uint64_t total = 0;
        for (uint32_t i = 0; i < rec->parts; i++) {
            if (i + 1 < (uint32_t)n)
                off += rec->part_sizes[i];
            total += rec->part_sizes[i];
        }
        len = rec->part_sizes[n - 1];
        if (total != size)
            return S3_ERR_INTERNAL_ERROR; /* the record does not describe these bytes */
    }
    if (len == 0)
        return 0; /* an empty object: 200 with no body, nothing to range */
    out->partial = true;
    out->start = off;
    out->end = off + len - 1;
    return 0;
}

/* GET/HEAD of the current object or of a version. The current object comes
 * from one metadata snapshot with its record and chunk map (vfs_s3_get, no
 * open file; obj); a version, or anything the snapshot did not find (for
 * the exact error), through gw_version_resolve (obj NULL). */
static int get_object(s3_gw_req *r, gw_answer *a, vfs_s3_obj **objp)
{
    vfs_s3_obj *obj = *objp;
    vfs_attr attr;
    int rc = 0;
    if (obj)
        attr = *vfs_s3_obj_attr(obj);
    else
        rc = gw_version_resolve(r->g, r->t.bucket, r->t.key, s3_query_get(&r->q, "versionId"),
                                &attr, a);
    if (rc != 0)
        return gw_object_readable(r, rc, NULL);
    char etag[S3_ETAG_MAX + 2];
    vfs_objrec rec;
    rc = obj ? gw_object_etag_from(r->g, &attr, vfs_s3_obj_rec(obj), etag, &rec)
             : gw_object_etag(r->g, &attr, etag, &rec);
    if (rc != 0)
        return rc;
    if ((rc = gw_object_readable(r, 0, &rec)) != 0) {
        vfs_objrec_free(&rec);
        return rc;
    }
    s3_meta ov = {0};
    uint64_t size = S_ISDIR(attr.mode) ? 0 : attr.size;
    int64_t mtime_s = attr.mtime_ns / (int64_t)NB_NS_PER_SEC;
    const char *pn = s3_query_get(&r->q, "partNumber");
    s3_range part_range = {0};
    uint32_t parts_count = 0;
    if (pn)
        rc = part_bounds(r, attr.ino, size, &rec, pn, &part_range, &parts_count);
    /* Conditionals first: a 304 carries the validators. */
    char bare[S3_ETAG_MAX + 2];
    snprintf(bare, sizeof bare, "%.*s", (int)strlen(etag) - 2, etag + 1);
    s3_cond c;
    s3_cond_from_req(&r->req, "", &c);
    if (rc == 0)
        rc = s3_cond_eval(&c, bare, mtime_s, true);
    if (rc == 0 || rc == S3_ERR_NOT_MODIFIED) {
        gw_hdr(a, "ETag", etag);
        add_time(a, "Last-Modified", attr.mtime_ns);
    }
    if (rc == 0)
        rc = s3_response_overrides(&r->q, r->auth.version == 0, &ov);
    s3_range range = part_range;
    if (rc == 0 && !pn) {
        rc = s3_range_parse(s3_req_header(&r->req, "range"), size, &range);
        if (rc == S3_ERR_INVALID_RANGE) {
            char cr[64];
            s3_content_range(NULL, size, cr, sizeof cr);
            gw_hdr(a, "Content-Range", cr);
        }
    }
    if (rc != 0) {
        s3_meta_free(&ov);
        vfs_objrec_free(&rec);
        return rc;
    }
    uint64_t off = 0, len = size;
    if (range.partial) {
        off = range.start;
        len = range.end - range.start + 1;
        char cr[80];
        s3_content_range(&range, size, cr, sizeof cr);
        gw_hdr(a, "Content-Range", cr);
        a->status = 206;
    }
    gw_hdr(a, "Accept-Ranges", "bytes");
    sys_header(a, &ov, "Content-Type", rec.content_type ? rec.content_type : "binary/octet-stream");
    sys_header(a, &ov, "Cache-Control", rec.cache_control);
    sys_header(a, &ov, "Content-Disposition", rec.content_disposition);
    sys_header(a, &ov, "Content-Encoding", rec.content_encoding);
    sys_header(a, &ov, "Content-Language", rec.content_language);
    sys_header(a, &ov, "Expires", rec.expires);
    for (size_t i = 0; i < rec.nmeta; i++) {
        char name[300];
        snprintf(name, sizeof name, "x-amz-meta-%s", rec.meta[i].key);
        gw_hdr(a, name, rec.meta[i].value);
    }
    if (rec.ntags)
        gw_hdrf(a, "x-amz-tagging-count", "%zu", rec.ntags);
    if (rec.storage_class)
        gw_hdr(a, "x-amz-storage-class", rec.storage_class);
    const char *vid = gw_answer_version(r->g, r->t.bucket, rec.version_id);
    if (vid)
        gw_hdr(a, "x-amz-version-id", vid);
    if (parts_count)
        gw_hdrf(a, "x-amz-mp-parts-count", "%u", parts_count);
    const char *cm = s3_req_header(&r->req, "x-amz-checksum-mode");
    if (cm && strcasecmp(cm, "ENABLED") == 0 && rec.checksum && rec.checksum_algo &&
        !range.partial) {
        char h[64];
        snprintf(h, sizeof h, "x-amz-checksum-%s", rec.checksum_algo);
        for (char *p = h; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        gw_hdr(a, h, rec.checksum);
    }
    s3_meta_free(&ov);
    vfs_objrec_free(&rec);
    a->has_length = true;
    a->length = len;
    a->file_len = len;
    if (r->head || len == 0)
        return 0;
    if (obj) {
        rc = gw_get_obj_body(a, objp, off, len);
        if (rc != -EAGAIN)
            return rc;
    }
    return gw_get_body(r, a, attr.ino, off, len);
}

int gw_get_object(s3_gw_req *r, gw_answer *a)
{
    vfs_s3_obj *obj = NULL;
    if (!s3_query_get(&r->q, "versionId") && r->t.bucket[0] != '.' &&
        vfs_s3_get(r->g->ns, r->t.bucket, r->t.key, !r->head, &obj) != 0)
        obj = NULL;
    int rc = get_object(r, a, &obj);
    vfs_s3_obj_free(obj);
    return rc;
}

/* ---- DeleteObject(s) ------------------------------------------------------------------------ */

int gw_delete_object(s3_gw_req *r, gw_answer *a)
{
    gw_deleted d;
    int rc = gw_delete_versioned(r->g, r->t.bucket, r->t.key, s3_query_get(&r->q, "versionId"), &d);
    if (rc == 0 && d.delete_marker)
        gw_hdr(a, "x-amz-delete-marker", "true");
    if (rc == 0 && d.has_version)
        gw_hdr(a, "x-amz-version-id", d.version_id);
    a->status = 204;
    return rc;
}

int gw_delete_objects(s3_gw_req *r, gw_answer *a)
{
    int rc = gw_bucket_check(r->g, r->t.bucket, NULL);
    if (rc != 0)
        return rc;
    s3_delete_req d = {0};
    rc = s3_parse_delete(r->body.data, r->body.len, &d);
    if (rc != 0) {
        s3_delete_req_free(&d);
        return rc;
    }
    s3_xml x;
    s3_xml_delete_begin(&x, &a->body);
    for (size_t i = 0; i < d.n; i++) {
        const s3_delete_obj *o = &d.objects[i];
        gw_deleted del;
        int drc = gw_delete_versioned(r->g, r->t.bucket, o->key, o->version_id, &del);
        if (drc != 0)
            s3_xml_delete_error(&x, o->key, o->version_id, drc);
        else if (!d.quiet)
            s3_xml_deleted(&x, o->key, o->version_id, del.delete_marker,
                           del.delete_marker && del.has_version ? del.version_id : NULL);
    }
    s3_delete_req_free(&d);
    return s3_xml_end(&x);
}

/* ---- CopyObject ----------------------------------------------------------------------------- */

/* Streams object src (attributes sa) into the put p, computing its MD5. */
int gw_copy_bytes(s3_gw *g, const vfs_attr *sa, uint64_t off, uint64_t len, vfs_put *p,
                  vfs_part *part, uint8_t *md5)
{
    s3_digest *d = NULL;
    int rc = md5 ? s3_digest_new(S3_DIGEST_MD5, &d) : 0;
    if (rc != 0)
        return rc;
    vfs_file *f = NULL;
    if (len)
        rc = vfs_file_open(g->ns, NULL, sa->ino, O_RDONLY, &f);
    uint8_t *buf = nb_xmalloc(GW_IO_BLOCK);
    uint64_t done = 0;
    while (rc == 0 && done < len) {
        size_t want = len - done < GW_IO_BLOCK ? (size_t)(len - done) : GW_IO_BLOCK, got = 0;
        rc = vfs_read(f, off + done, buf, want, &got);
        if (rc == 0 && got == 0)
            rc = S3_ERR_INTERNAL_ERROR; /* the source shrank under us */
        if (rc == 0) {
            if (d)
                s3_digest_update(d, buf, got);
            rc = p ? vfs_put_write(p, buf, got) : vfs_part_write(part, buf, got);
            done += got;
        }
    }
    free(buf);
    if (f)
        (void)vfs_release(f);
    if (d) {
        uint8_t out[S3_DIGEST_MAX];
        s3_digest_final(d, out);
        memcpy(md5, out, 16);
        s3_digest_free(d);
    }
    return rc;
}

/* Moves the record fields of src into dst (dst's old ones freed). */
static void rec_take_meta(vfs_objrec *dst, vfs_objrec *src)
{
#define TAKE(f)                                                                                    \
    do {                                                                                           \
        free(dst->f);                                                                              \
        dst->f = src->f;                                                                           \
        src->f = NULL;                                                                             \
    } while (0)
    TAKE(content_type);
    TAKE(cache_control);
    TAKE(content_disposition);
    TAKE(content_encoding);
    TAKE(content_language);
    TAKE(expires);
    TAKE(storage_class);
#undef TAKE
    for (size_t i = 0; i < dst->nmeta; i++) {
        free(dst->meta[i].key);
        free(dst->meta[i].value);
    }
    free(dst->meta);
    dst->meta = src->meta;
    dst->nmeta = src->nmeta;
    src->meta = NULL;
    src->nmeta = 0;
}

static void rec_take_tags(vfs_objrec *dst, vfs_objrec *src)
{
    for (size_t i = 0; i < dst->ntags; i++) {
        free(dst->tags[i].key);
        free(dst->tags[i].value);
    }
    free(dst->tags);
    dst->tags = src->tags;
    dst->ntags = src->ntags;
    src->tags = NULL;
    src->ntags = 0;
}

static int directive(s3_gw_req *r, const char *name, bool *replace)
{
    const char *v = s3_req_header(&r->req, name);
    *replace = false;
    if (!v || strcmp(v, "COPY") == 0)
        return 0;
    if (strcmp(v, "REPLACE") == 0) {
        *replace = true;
        return 0;
    }
    return S3_ERR_INVALID_ARGUMENT;
}

int gw_copy_object(s3_gw_req *r, gw_answer *a)
{
    s3_copy_source cs;
    int rc = s3_copy_source_parse(s3_req_header(&r->req, "x-amz-copy-source"), &cs);
    if (rc == 0)
        rc = gw_bucket_check(r->g, cs.bucket, NULL);
    if (rc == 0)
        rc = gw_bucket_check(r->g, r->t.bucket, NULL);
    bool meta_replace = false, tag_replace = false;
    if (rc == 0)
        rc = directive(r, "x-amz-metadata-directive", &meta_replace);
    if (rc == 0)
        rc = directive(r, "x-amz-tagging-directive", &tag_replace);
    if (rc != 0)
        return rc;
    vfs_attr sa;
    rc = gw_version_resolve(r->g, cs.bucket, cs.key, cs.version_id[0] ? cs.version_id : NULL, &sa,
                            NULL);
    if (rc == S3_ERR_METHOD_NOT_ALLOWED)
        rc = S3_ERR_INVALID_REQUEST; /* the source version is a delete marker */
    if (rc != 0)
        return rc;
    int vmode = VFS_VER_OFF;
    char vid[17] = "";
    rc = gw_write_version(r->g, r->t.bucket, &vmode, vid);
    if (rc != 0)
        return rc;
    char etag[S3_ETAG_MAX + 2];
    vfs_objrec src;
    rc = gw_object_etag(r->g, &sa, etag, &src);
    if (rc != 0)
        return rc;
    char bare[S3_ETAG_MAX + 2];
    snprintf(bare, sizeof bare, "%.*s", (int)strlen(etag) - 2, etag + 1);
    s3_cond c;
    s3_cond_from_req(&r->req, "x-amz-copy-source-", &c);
    rc = s3_cond_eval(&c, bare, sa.mtime_ns / (int64_t)NB_NS_PER_SEC, false);
    vfs_objrec req = {0};
    if (rc == 0 && (meta_replace || tag_replace))
        rc = gw_rec_from_req(r, &req);
    bool self = strcmp(cs.bucket, r->t.bucket) == 0 && strcmp(cs.key, r->t.key) == 0;
    if (rc == 0 && self && !meta_replace && !tag_replace &&
        !s3_req_header(&r->req, "x-amz-storage-class"))
        rc = S3_ERR_INVALID_REQUEST;
    if (rc != 0)
        goto out;
    if (meta_replace)
        rec_take_meta(&src, &req);
    if (tag_replace)
        rec_take_tags(&src, &req);
    /* The source's version, for x-amz-copy-source-version-id. */
    char src_vid[VFS_VERSION_ID_MAX + 1] = "";
    if (src.version_id)
        snprintf(src_vid, sizeof src_vid, "%.64s", src.version_id);
    else if (cs.version_id[0])
        snprintf(src_vid, sizeof src_vid, "%.64s", cs.version_id);
    else if (gw_answer_version(r->g, cs.bucket, NULL))
        strcpy(src_vid, "null"); /* the null version of a versioned bucket */
    free(src.version_id);
    src.version_id = vmode != VFS_VER_OFF ? nb_xstrdup(vid) : NULL;
    /* ACLs are not copied: the request's, or none (checked before). */
    rc = gw_acl_of_write(&r->req, &src.acl);
    if (rc != 0)
        goto out;
    int64_t mtime_ns = 0;
    /* In a versioned bucket a copy onto itself is a new version. */
    if (self && (vmode != VFS_VER_OFF || cs.version_id[0]))
        self = false;
    if (self) {
        /* Copy onto itself: only the record changes; the bytes (and so the
         * ETag) stay. */
        rc = gw_objrec_store(r->g, sa.ino, &src, sa.mtime_ns);
        mtime_ns = sa.mtime_ns;
        if (rc == 0)
            gw_notify_key(r->g, r->t.bucket, r->t.key, sa.ino);
    } else {
        vfs_attr old;
        uint64_t old_ino = 0;
        if (vfs_s3_lookup(r->g->ns, NULL, r->t.bucket, r->t.key, &old) == 0 && S_ISREG(old.mode))
            old_ino = old.ino;
        vfs_put *p = NULL;
        rc = gw_key_err(vfs_put_begin(r->g->ns, NULL, r->t.bucket, r->t.key, 0644, &p));
        if (rc == 0)
            vfs_put_versioning(p, vmode);
        uint8_t md5[S3_DIGEST_MAX];
        uint64_t len = S_ISDIR(sa.mode) ? 0 : sa.size;
        if (rc == 0)
            rc = gw_copy_bytes(r->g, &sa, 0, len, p, NULL, md5);
        if (rc == 0) {
            char hex[33];
            s3_etag_md5(md5, hex);
            snprintf(etag, sizeof etag, "\"%s\"", hex);
            free(src.etag);
            src.etag = nb_xstrdup(etag);
            src.parts = 0;
            free(src.part_sizes);
            src.part_sizes = NULL;
        }
        nb_buf enc = NB_BUF_INIT;
        if (rc == 0)
            rc = vfs_objrec_encode(&src, &enc);
        vfs_attr attr;
        if (rc == 0) {
            rc = gw_key_err(vfs_put_commit(p, nb_buf_slice(&enc), &attr));
            p = NULL;
        }
        vfs_put_abort(p);
        nb_buf_free(&enc);
        if (rc == 0) {
            mtime_ns = attr.mtime_ns; /* the record is stamped by the commit */
            gw_notify_key(r->g, r->t.bucket, r->t.key, old_ino);
        }
    }
    gw_unquote(etag, bare);
    if (rc == 0 && src_vid[0])
        gw_hdr(a, "x-amz-copy-source-version-id", src_vid);
    if (rc == 0 && vmode == VFS_VER_ENABLED)
        gw_hdr(a, "x-amz-version-id", vid);
    if (rc == 0)
        rc = s3_xml_copy_result(&a->body, bare, mtime_ns / (int64_t)NB_NS_PER_SEC, false);
out:
    vfs_objrec_free(&req);
    vfs_objrec_free(&src);
    return rc;
}

/* ---- tagging -------------------------------------------------------------------------------- */

int gw_object_tagging(s3_gw_req *r, gw_answer *a)
{
    vfs_attr attr;
    const char *vid = s3_query_get(&r->q, "versionId");
    int rc = gw_version_resolve(r->g, r->t.bucket, r->t.key, vid, &attr, NULL);
    if (rc != 0)
        return rc;
    if (vid)
        gw_hdr(a, "x-amz-version-id", vid);
    char etag[S3_ETAG_MAX + 2];
    vfs_objrec rec;
    rc = gw_object_etag(r->g, &attr, etag, &rec);
    if (rc != 0)
        return rc;
    s3_tagset ts = {0};
    if (r->op == S3_OP_GET_OBJECT_TAGGING) {
        ts.n = rec.ntags;
        ts.tags = nb_xcalloc(rec.ntags + 1, sizeof *ts.tags);
        for (size_t i = 0; i < rec.ntags; i++) {
            ts.tags[i].key = rec.tags[i].key;
            ts.tags[i].value = rec.tags[i].value;
        }
        rc = s3_xml_tagging(&a->body, &ts);
        free(ts.tags);
        vfs_objrec_free(&rec);
        return rc;
    }
    if (r->op == S3_OP_PUT_OBJECT_TAGGING)
        rc = s3_parse_tagging(r->body.data, r->body.len, false, &ts);
    if (rc == 0) {
        vfs_objrec tmp = {0};
        tmp.ntags = ts.n;
        tmp.tags = ts.n ? nb_xcalloc(ts.n, sizeof *tmp.tags) : NULL;
        for (size_t i = 0; i < ts.n; i++) {
            tmp.tags[i].key = nb_xstrdup(ts.tags[i].key);
            tmp.tags[i].value = nb_xstrdup(ts.tags[i].value);
        }
        rec_take_tags(&rec, &tmp);
        vfs_objrec_free(&tmp);
        if (!rec.etag)
            rec.etag = nb_xstrdup(etag);
        rc = gw_objrec_store(r->g, attr.ino, &rec, attr.mtime_ns);
    }
    if (rc == 0 && r->op == S3_OP_DELETE_OBJECT_TAGGING)
        a->status = 204;
    s3_tagset_free(&ts);
    vfs_objrec_free(&rec);
    return rc;
}
