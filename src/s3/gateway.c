/*
 * gateway.c — the S3 gateway's glue to libmicrohttpd: one request from its
 * request line to its answer.
 *
 *   request line ──► s3_gw_req_new (raw URI kept: MHD decodes the one the
 *        │            access handler sees, signatures need the raw one)
 *   1st call ──────► headers → target → auth → route → access check →
 *        │            body setup (PutObject/UploadPart: vfs_put_begin)
 *        │            — an error is answered here, before MHD sends
 *        │            "100 Continue", so a refused body is never sent
 *   body calls ────► aws-chunked decoding (when streaming-signed), payload
 *        │            digests, bytes into vfs_put_write or a capped buffer
 *   last call ─────► s3_chunked_finish, payload checks, the handler;
 *        │            the answer: buffer (XML) or a file range streamed
 *        │            with MHD_create_response_from_callback
 *   completed ─────► s3_gw_req_done: an unfinished put is dropped
 *
 * A handler returns 0 or any error code; s3_error_of turns it into the S3
 * error document. Every answer carries x-amz-request-id and x-amz-id-2.
 */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "common/common.h"
#include "s3/gw_int.h"

const s3_owner gw_owner_root = {"nebula-root", "root"};

/* ---- the gateway ---------------------------------------------------------------------------- */

int s3_gw_new(const s3_gw_options *o, s3_gw **out)
{
    *out = NULL;
    if (!o->ns || !o->access_key || !o->secret_key || strlen(o->access_key) > S3_ACCESS_KEY_MAX ||
        strlen(o->secret_key) > S3_SECRET_KEY_MAX)
        return NB_EUSAGE;
    s3_gw *g = nb_xcalloc(1, sizeof *g);
    pthread_mutex_init(&g->wins_mu, NULL);
    int rc = nb_pool_new(GW_COMMIT_THREADS, "s3-commit", &g->commits);
    if (rc != 0) {
        pthread_mutex_destroy(&g->wins_mu);
        free(g);
        return rc;
    }
    g->ns = o->ns;
    snprintf(g->access_key, sizeof g->access_key, "%s", o->access_key);
    snprintf(g->secret_key, sizeof g->secret_key, "%s", o->secret_key);
    snprintf(g->region, sizeof g->region, "%s", o->region ? o->region : "us-east-1");
    g->domain = o->domain ? nb_xstrdup(o->domain) : NULL;
    g->invalidate = o->invalidate;
    g->invalidate_ctx = o->invalidate_ctx;
    rc = gw_versioning_scan(g);
    if (rc == 0)
        rc = gw_lifecycle_start(g, o->lifecycle_interval_s, o->lifecycle_day_s);
    if (rc != 0) {
        s3_gw_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

void s3_gw_drain(s3_gw *g)
{
    if (g)
        nb_pool_wait(g->commits);
}

void s3_gw_free(s3_gw *g)
{
    if (!g)
        return;
    gw_lifecycle_stop(g);
    nb_pool_free(g->commits);
    gw_get_wins_free(g);
    pthread_mutex_destroy(&g->wins_mu);
    free(g->domain);
    free(g);
}

void gw_random_id(char *out)
{
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        uint64_t t = nb_wall_ns() ^ nb_mono_ns();
        memcpy(b, &t, 8);
        t = (uint64_t)(uintptr_t)out * 0x9E3779B97F4A7C15ull ^ nb_cpu_ns();
        memcpy(b + 8, &t, 8);
    }
    s3_hex_encode(b, sizeof b, out);
}

/* ---- answers -------------------------------------------------------------------------------- */

void gw_hdr(gw_answer *a, const char *name, const char *value)
{
    /* The array doubles from 8 (a GET answer has about 6 headers). */
    size_t n = a->hdrs.n;
    if (n == 0 || (n >= 8 && (n & (n - 1)) == 0))
        a->hdrs.items = nb_xrealloc(a->hdrs.items, (n ? 2 * n : 8) * sizeof *a->hdrs.items);
    /* Name and value in one allocation (freed through the name). */
    size_t ln = strlen(name), lv = strlen(value);
    char *blk = nb_xmalloc(ln + lv + 2);
    memcpy(blk, name, ln + 1);
    memcpy(blk + ln + 1, value, lv + 1);
    a->hdrs.items[n].name = blk;
    a->hdrs.items[n].value = blk + ln + 1;
    a->hdrs.n++;
}

void gw_hdrf(gw_answer *a, const char *name, const char *fmt, ...)
{
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    gw_hdr(a, name, v);
}

/* Drops the body the answer holds (file, bytes or pieces). */
static void answer_drop_body(gw_answer *a)
{
    if (a->file)
        (void)vfs_release(a->file);
    a->file = NULL;
    free(a->raw);
    a->raw = NULL;
    vfs_refs_free(a->refs);
    a->refs = NULL;
    vfs_s3_obj_free(a->obj);
    a->obj = NULL;
    vfs_s3_obj_free(a->inl_obj);
    a->inl_obj = NULL;
    a->inl = NULL;
}

static void answer_free(gw_answer *a)
{
    for (size_t i = 0; i < a->hdrs.n; i++)
        free(a->hdrs.items[i].name); /* the value shares its block (gw_hdr) */
    free(a->hdrs.items);
    memset(&a->hdrs, 0, sizeof a->hdrs);
    nb_buf_free(&a->body);
    answer_drop_body(a);
}

static ssize_t no_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    NB_UNUSED(cls);
    NB_UNUSED(pos);
    NB_UNUSED(buf);
    NB_UNUSED(max);
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static void error_body(s3_gw_req *r, gw_answer *a, int rc)
{
    const s3_error *e = s3_error_of(rc);
    a->status = (unsigned)e->http_status;
    /* Whatever body the handler had prepared is not sent. */
    a->has_length = false;
    answer_drop_body(a);
    if (rc == S3_ERR_NOT_MODIFIED || r->head)
        return;
    nb_buf_reset(&a->body);
    char resource[S3_KEY_MAX + S3_BUCKET_NAME_MAX + 4];
    snprintf(resource, sizeof resource, "/%s%s%s", r->t.bucket, r->t.key[0] ? "/" : "", r->t.key);
    if (s3_error_xml(&a->body, rc, NULL, resource, r->request_id) != 0)
        nb_buf_reset(&a->body);
}

static bool answer_has(const gw_answer *a, const char *name)
{
    for (size_t i = 0; i < a->hdrs.n; i++)
        if (strcasecmp(a->hdrs.items[i].name, name) == 0)
            return true;
    return false;
}

static int send_answer(s3_gw_req *r, gw_answer *a)
{
    struct MHD_Response *resp;
    unsigned status = a->status ? a->status : 200;
    if ((a->file || a->raw || a->refs || a->obj || a->inl) && !r->head) {
        resp = gw_body_response(r, a);
        /* A mapped piece failed its check (logged), or no memory: nothing
         * is sent yet, so the answer is an InternalError. */
        if (!resp) {
            gw_answer e = {0};
            error_body(r, &e, S3_ERR_INTERNAL_ERROR);
            int ret = send_answer(r, &e);
            answer_free(&e);
            return ret;
        }
    } else if (a->has_length && (r->head || a->file_len == 0)) {
        /* HEAD (and empty objects): a callback response carries the length
         * and MHD sends no body for HEAD. */
        resp =
            MHD_create_response_from_callback(r->head ? a->length : 0, 4096, no_read, NULL, NULL);
    } else {
        size_t len = a->body.len;
        void *p = nb_buf_take(&a->body, NULL);
        resp = MHD_create_response_from_buffer(len, p ? p : (void *)"",
                                               p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (!resp)
            free(p);
        else if (len && !answer_has(a, "Content-Type"))
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/xml");
    }
    if (!resp)
        return MHD_NO;
    char id2[48]; /* the id twice and "=" */
    size_t il = strnlen(r->request_id, (sizeof id2 - 2) / 2);
    memcpy(id2, r->request_id, il);
    memcpy(id2 + il, r->request_id, il);
    memcpy(id2 + 2 * il, "=", 2);
    MHD_add_response_header(resp, "x-amz-request-id", r->request_id);
    MHD_add_response_header(resp, "x-amz-id-2", id2);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, "NebulaStore");
    for (size_t i = 0; i < a->hdrs.n; i++)
        MHD_add_response_header(resp, a->hdrs.items[i].name, a->hdrs.items[i].value);
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->answered = true;
    r->status = status;
    NB_DEBUG("s3: %s %s %s → %u", r->request_id, r->started ? s3_op_name(r->op) : "-", r->path,
             status);
    return ret;
}

/* ---- the mount's caches --------------------------------------------------------------------- */

void gw_notify_key(s3_gw *g, const char *bucket, const char *key, uint64_t old_ino)
{
    if (!g->invalidate)
        return;
    vfs_attr a;
    if (vfs_lookup(g->ns, NULL, VFS_ROOT_INO, bucket, &a) != 0) {
        g->invalidate(g->invalidate_ctx, VFS_ROOT_INO, bucket, 0);
        return;
    }
    uint64_t dir = a.ino;
    const char *p = key;
    char name[VFS_NAME_MAX + 1];
    while (*p) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 0 || l > VFS_NAME_MAX)
            break;
        memcpy(name, p, l);
        name[l] = 0;
        g->invalidate(g->invalidate_ctx, dir, name, 0);
        if (!e || vfs_lookup(g->ns, NULL, dir, name, &a) != 0 || !S_ISDIR(a.mode))
            break;
        dir = a.ino;
        p = e + 1;
    }
    if (old_ino)
        g->invalidate(g->invalidate_ctx, 0, NULL, old_ino);
}

/* ---- shared helpers ------------------------------------------------------------------------- */

int gw_key_err(int rc)
{
    switch (rc) {
    case -EINVAL:
        return S3_ERR_INVALID_ARGUMENT;
    case -ENAMETOOLONG:
        return S3_ERR_KEY_TOO_LONG;
    case -ENOTDIR:
    case -EISDIR:
    case -EEXIST:
    case -ENOTEMPTY:
        return S3_ERR_INVALID_REQUEST;
    case -ENOENT:
        return S3_ERR_NO_SUCH_KEY;
    default:
        return rc;
    }
}

int gw_bucket_check(s3_gw *g, const char *bucket, vfs_bucket *b)
{
    if (b)
        memset(b, 0, sizeof *b);
    if (!bucket[0] || bucket[0] == '.')
        return S3_ERR_NO_SUCH_BUCKET;
    vfs_bucket tmp;
    vfs_bucket *p = b ? b : &tmp;
    int rc = vfs_bucket_get(g->ns, bucket, p);
    if (rc == NB_ENOTFOUND) {
        /* A top-level directory made through the mount: a bucket with
         * default settings, if it is a directory. */
        vfs_attr a;
        memset(p, 0, sizeof *p);
        rc = vfs_lookup(g->ns, NULL, VFS_ROOT_INO, bucket, &a);
        if (rc == 0 && !S_ISDIR(a.mode))
            rc = -ENOENT;
        if (rc == 0) {
            p->ino = a.ino;
            p->ctime_ns = a.btime_ns;
        }
    }
    if (rc == -ENOENT || rc == -ENOTDIR)
        rc = S3_ERR_NO_SUCH_BUCKET;
    if (!b || rc != 0)
        vfs_bucket_free(p);
    return rc;
}

int gw_objrec_store(s3_gw *g, uint64_t ino, vfs_objrec *rec, int64_t mtime_ns)
{
    rec->etag_mtime_ns = mtime_ns;
    nb_buf enc = NB_BUF_INIT;
    int rc = vfs_objrec_encode(rec, &enc);
    if (rc == 0)
        rc = vfs_objrec_set(g->ns, ino, nb_buf_slice(&enc));
    nb_buf_free(&enc);
    return rc;
}

int gw_object_etag(s3_gw *g, const vfs_attr *a, char *etag, vfs_objrec *out)
{
    nb_buf enc = NB_BUF_INIT;
    int rc = vfs_objrec_get(g->ns, a->ino, &enc);
    if (rc != 0 && rc != NB_ENOTFOUND)
        NB_WARN("s3: object record of inode %llu unreadable: %s", (unsigned long long)a->ino,
                nb_strerror(rc));
    rc = gw_object_etag_from(g, a, rc == 0 ? nb_buf_slice(&enc) : (nb_slice){0}, etag, out);
    nb_buf_free(&enc);
    return rc;
}

int gw_object_etag_from(s3_gw *g, const vfs_attr *a, nb_slice enc, char *etag, vfs_objrec *out)
{
    vfs_objrec rec;
    memset(&rec, 0, sizeof rec);
    int rc = enc.len ? vfs_objrec_decode(enc, &rec) : NB_ENOTFOUND;
    if (rc != 0 && rc != NB_ENOTFOUND) {
        NB_WARN("s3: object record of inode %llu unreadable: %s", (unsigned long long)a->ino,
                nb_strerror(rc));
        memset(&rec, 0, sizeof rec);
    }
    rc = 0;
    if (rec.etag && rec.etag_mtime_ns == a->mtime_ns) {
        snprintf(etag, S3_ETAG_MAX + 2, "%s", rec.etag);
    } else if (S_ISDIR(a->mode) || a->size == 0) {
        snprintf(etag, S3_ETAG_MAX + 2, "\"d41d8cd98f00b204e9800998ecf8427e\"");
    } else {
        /* Written through the mount (or changed there since): the MD5 of
         * the bytes, computed once and kept with the mtime it belongs to. */
        vfs_file *f = NULL;
        rc = vfs_file_open(g->ns, NULL, a->ino, O_RDONLY, &f);
        s3_digest *d = NULL;
        if (rc == 0)
            rc = s3_digest_new(S3_DIGEST_MD5, &d);
        uint8_t *buf = rc == 0 ? nb_xmalloc(GW_IO_BLOCK) : NULL;
        uint64_t off = 0;
        while (rc == 0) {
            size_t got = 0;
            rc = vfs_read(f, off, buf, GW_IO_BLOCK, &got);
            if (rc != 0 || got == 0)
                break;
            s3_digest_update(d, buf, got);
            off += got;
        }
        free(buf);
        vfs_attr now;
        if (rc == 0)
            rc = vfs_getattr(g->ns, a->ino, &now);
        if (rc == 0) {
            uint8_t md5[S3_DIGEST_MAX];
            s3_digest_final(d, md5);
            char hex[33];
            s3_etag_md5(md5, hex);
            snprintf(etag, S3_ETAG_MAX + 2, "\"%s\"", hex);
            /* Rewritten through the mount: no longer the parts it had. */
            rec.parts = 0;
            free(rec.part_sizes);
            rec.part_sizes = NULL;
            if (now.mtime_ns == a->mtime_ns && off == a->size) {
                free(rec.etag);
                rec.etag = nb_xasprintf("\"%s\"", hex);
                int src = gw_objrec_store(g, a->ino, &rec, a->mtime_ns);
                if (src != 0)
                    NB_WARN("s3: cannot keep the ETag of inode %llu: %s",
                            (unsigned long long)a->ino, nb_strerror(src));
            }
        }
        s3_digest_free(d);
        if (f)
            (void)vfs_release(f);
    }
    if (out && rc == 0)
        *out = rec;
    else
        vfs_objrec_free(&rec);
    return rc;
}

void gw_unquote(const char *etag, char *out)
{
    size_t n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"')
        snprintf(out, S3_ETAG_MAX + 2, "%.*s", (int)(n - 2), etag + 1);
    else
        snprintf(out, S3_ETAG_MAX + 2, "%s", etag);
}

static char *dup_or_null(const char *s)
{
    return s ? nb_xstrdup(s) : NULL;
}

int gw_rec_from_req(s3_gw_req *r, vfs_objrec *rec)
{
    s3_meta sys = {0}, user = {0};
    s3_tagset tags = {0};
    int rc = s3_sysmeta_collect(&r->req, &sys);
    if (rc == 0)
        rc = s3_meta_collect(&r->req, &user);
    const char *th = s3_req_header(&r->req, "x-amz-tagging");
    if (rc == 0 && th)
        rc = s3_parse_tagging_header(th, &tags);
    if (rc == 0)
        rc = gw_acl_of_write(&r->req, &rec->acl);
    const char *sc = s3_req_header(&r->req, "x-amz-storage-class");
    if (rc == 0 && sc && strcmp(sc, "STANDARD") != 0 && strcmp(sc, "REDUCED_REDUNDANCY") != 0 &&
        strcmp(sc, "STANDARD_IA") != 0 && strcmp(sc, "ONEZONE_IA") != 0 &&
        strcmp(sc, "INTELLIGENT_TIERING") != 0 && strcmp(sc, "GLACIER") != 0 &&
        strcmp(sc, "DEEP_ARCHIVE") != 0 && strcmp(sc, "GLACIER_IR") != 0)
        rc = S3_ERR_INVALID_STORAGE_CLASS;
    if (rc == 0) {
        for (size_t i = 0; i < sys.n; i++) {
            const char *n = sys.items[i].name, *v = sys.items[i].value;
            char **dst = NULL;
            if (strcasecmp(n, "Content-Type") == 0)
                dst = &rec->content_type;
            else if (strcasecmp(n, "Cache-Control") == 0)
                dst = &rec->cache_control;
            else if (strcasecmp(n, "Content-Disposition") == 0)
                dst = &rec->content_disposition;
            else if (strcasecmp(n, "Content-Encoding") == 0)
                dst = &rec->content_encoding;
            else if (strcasecmp(n, "Content-Language") == 0)
                dst = &rec->content_language;
            else if (strcasecmp(n, "Expires") == 0)
                dst = &rec->expires;
            if (dst) {
                free(*dst);
                *dst = nb_xstrdup(v);
            }
        }
        rec->storage_class = dup_or_null(sc && strcmp(sc, "STANDARD") ? sc : NULL);
        rec->nmeta = user.n;
        rec->meta = user.n ? nb_xcalloc(user.n, sizeof *rec->meta) : NULL;
        for (size_t i = 0; i < user.n; i++) {
            rec->meta[i].key = nb_xstrdup(user.items[i].name);
            rec->meta[i].value = nb_xstrdup(user.items[i].value);
        }
        rec->ntags = tags.n;
        rec->tags = tags.n ? nb_xcalloc(tags.n, sizeof *rec->tags) : NULL;
        for (size_t i = 0; i < tags.n; i++) {
            rec->tags[i].key = nb_xstrdup(tags.tags[i].key);
            rec->tags[i].value = nb_xstrdup(tags.tags[i].value);
        }
    }
    s3_meta_free(&sys);
    s3_meta_free(&user);
    s3_tagset_free(&tags);
    return rc;
}

/* ---- requests ------------------------------------------------------------------------------- */

/* Each thread keeps the last request context it ended for its next
 * request: the context is a few KiB, and a fresh calloc of it per request
 * showed in profiles (malloc_consolidate). Freed when its thread ends. */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void spare_key_make(void)
{
    if (pthread_key_create(&spare_key, free) != 0)
        abort();
}

s3_gw_req *s3_gw_req_new(s3_gw *g, const char *raw_uri)
{
    pthread_once(&spare_once, spare_key_make);
    s3_gw_req *r = pthread_getspecific(spare_key);
    if (r) {
        (void)pthread_setspecific(spare_key, NULL);
        memset(r, 0, sizeof *r);
    } else {
        r = nb_xcalloc(1, sizeof *r);
    }
    r->g = g;
    r->path = nb_xstrdup(raw_uri ? raw_uri : "/");
    char *q = strchr(r->path, '?');
    if (q) {
        *q = 0;
        r->query = q + 1;
    }
    s3_request_id(r->request_id);
    return r;
}

unsigned s3_gw_req_done(s3_gw_req *r, bool completed)
{
    if (!r)
        return 0;
    if (r->put || r->part) {
        if (completed)
            NB_DEBUG("s3: %s: upload not published", r->request_id);
        vfs_put_abort(r->put);
        vfs_part_abort(r->part);
    }
    unsigned st = r->answered ? r->status : 0;
    answer_free(&r->ans);
    vfs_refs_free(r->sent_refs);
    s3_chunked_free(r->chunked);
    s3_digest_free(r->md5);
    s3_digest_free(r->sha256);
    s3_digest_free(r->cks);
    nb_buf_free(&r->body);
    vfs_objrec_free(&r->rec);
    s3_query_free(&r->q);
    free(r->hdrs);
    free(r->path);
    if (pthread_getspecific(spare_key) || pthread_setspecific(spare_key, r) != 0)
        free(r);
    return st;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    s3_gw_req *r = cls;
    NB_UNUSED(kind);
    if (r->n_hdrs == r->cap_hdrs) {
        r->cap_hdrs = r->cap_hdrs ? r->cap_hdrs * 2 : 32;
        r->hdrs = nb_xrealloc(r->hdrs, r->cap_hdrs * sizeof *r->hdrs);
    }
    r->hdrs[r->n_hdrs].name = key;
    r->hdrs[r->n_hdrs].value = value ? value : "";
    r->n_hdrs++;
    return MHD_YES;
}

/* First call: everything but the body. */
static int begin(s3_gw_req *r, const char *method)
{
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_header, r);
    r->req.method = method;
    r->req.path = r->path;
    r->req.query = r->query;
    r->req.headers = r->hdrs;
    r->req.n_headers = r->n_hdrs;
    r->head = strcmp(method, "HEAD") == 0;
    int rc = s3_target_parse(s3_req_header(&r->req, "host"), r->path, r->g->domain, &r->t);
    if (rc != 0)
        return rc;
    r->req.vhost_bucket = r->t.vhost ? r->t.bucket : NULL;
    rc = s3_auth_check(&r->req, gw_secret_of, r->g, (int64_t)(nb_wall_ns() / NB_NS_PER_SEC),
                       &r->auth);
    if (rc != 0)
        return rc;
    rc = s3_query_parse(r->query, &r->q);
    if (rc == 0)
        rc = s3_route(&r->req, &r->t, &r->q, &r->op);
    r->started = rc == 0;
    if (rc != 0)
        return rc;
    rc = gw_access_check(r);
    if (rc != 0)
        return rc;

    /* A signed payload hash is checked on the body's first byte's digest
     * context (payload_cb); most requests have no body. */
    bool streaming = r->auth.payload == S3_PAYLOAD_STREAMING ||
                     r->auth.payload == S3_PAYLOAD_STREAMING_TRAILER ||
                     r->auth.payload == S3_PAYLOAD_STREAMING_UNSIGNED;
    if (streaming) {
        int64_t dl = -1;
        const char *h = s3_req_header(&r->req, "x-amz-decoded-content-length");
        if (h)
            dl = strtoll(h, NULL, 10);
        rc = s3_chunked_new(&r->auth, dl, &r->chunked);
        if (rc != 0)
            return rc;
    }
    nb_buf_init(&r->body, S3_XML_BODY_MAX);
    r->body_mode = GW_BODY_COLLECT;
    if (r->op == S3_OP_PUT_OBJECT)
        return gw_put_object_start(r);
    if (r->op == S3_OP_UPLOAD_PART)
        return gw_upload_part_start(r);
    return 0;
}

static int payload_cb(void *ctx, const uint8_t *p, size_t n)
{
    s3_gw_req *r = ctx;
    if (r->auth.payload == S3_PAYLOAD_SHA256 && !r->sha256 && n) {
        int rc = s3_digest_new(S3_DIGEST_SHA256, &r->sha256);
        if (rc != 0)
            return rc;
    }
    if (r->sha256)
        s3_digest_update(r->sha256, p, n);
    if (r->body_mode == GW_BODY_PUT)
        return gw_put_data(r, p, n);
    r->got += n;
    if (nb_buf_append(&r->body, p, n) != 0)
        return S3_ERR_MAX_MESSAGE_LENGTH;
    return 0;
}

static int feed(s3_gw_req *r, const char *p, size_t n)
{
    if (r->chunked)
        return s3_chunked_feed(r->chunked, (const uint8_t *)p, n, payload_cb, r);
    return payload_cb(r, (const uint8_t *)p, n);
}

/* Last call: the body is complete. */
static int finish_body(s3_gw_req *r)
{
    int rc = 0;
    if (r->chunked)
        rc = s3_chunked_finish(r->chunked);
    if (rc == 0 && r->sha256) {
        uint8_t d[S3_DIGEST_MAX];
        s3_digest_final(r->sha256, d);
        rc = s3_auth_payload_check(&r->auth, d);
    } else if (rc == 0) { /* no body: the hash of nothing */
        static const uint8_t empty_sha256[32] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
                                                 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
                                                 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
                                                 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
        rc = s3_auth_payload_check(&r->auth, empty_sha256);
    }
    if (rc == 0 && r->body_mode == GW_BODY_COLLECT) {
        const char *md5 = s3_req_header(&r->req, "content-md5");
        if (md5) {
            uint8_t want[16], have[S3_DIGEST_MAX];
            rc = s3_content_md5_parse(md5, want);
            if (rc == 0) {
                s3_digest_once(S3_DIGEST_MD5, r->body.data, r->body.len, have);
                if (memcmp(want, have, 16) != 0)
                    rc = S3_ERR_BAD_DIGEST;
            }
        }
    }
    return rc;
}

static int dispatch(s3_gw_req *r, gw_answer *a)
{
    switch (r->op) {
    case S3_OP_LIST_BUCKETS:
        return gw_list_buckets(r, a);
    case S3_OP_CREATE_BUCKET:
        return gw_create_bucket(r, a);
    case S3_OP_DELETE_BUCKET:
        return gw_delete_bucket(r, a);
    case S3_OP_HEAD_BUCKET:
        return gw_head_bucket(r, a);
    case S3_OP_GET_BUCKET_LOCATION:
        return gw_bucket_location(r, a);
    case S3_OP_GET_BUCKET_VERSIONING:
        return gw_bucket_versioning(r, a);
    case S3_OP_PUT_BUCKET_VERSIONING:
        return gw_put_bucket_versioning(r, a);
    case S3_OP_LIST_OBJECT_VERSIONS:
        return gw_list_versions(r, a);
    case S3_OP_GET_BUCKET_ACL:
    case S3_OP_PUT_BUCKET_ACL:
        return gw_bucket_acl(r, a);
    case S3_OP_LIST_OBJECTS:
    case S3_OP_LIST_OBJECTS_V2:
        return gw_list_objects(r, a);
    case S3_OP_PUT_BUCKET_TAGGING:
    case S3_OP_GET_BUCKET_TAGGING:
    case S3_OP_DELETE_BUCKET_TAGGING:
    case S3_OP_PUT_BUCKET_CORS:
    case S3_OP_GET_BUCKET_CORS:
    case S3_OP_DELETE_BUCKET_CORS:
    case S3_OP_PUT_BUCKET_LIFECYCLE:
    case S3_OP_GET_BUCKET_LIFECYCLE:
    case S3_OP_DELETE_BUCKET_LIFECYCLE:
        return gw_bucket_config(r, a);
    case S3_OP_CORS_PREFLIGHT:
        return gw_cors_preflight(r, a);
    case S3_OP_PUT_OBJECT:
        return gw_put_object(r, a);
    case S3_OP_GET_OBJECT:
    case S3_OP_HEAD_OBJECT:
        return gw_get_object(r, a);
    case S3_OP_DELETE_OBJECT:
        return gw_delete_object(r, a);
    case S3_OP_DELETE_OBJECTS:
        return gw_delete_objects(r, a);
    case S3_OP_COPY_OBJECT:
        return gw_copy_object(r, a);
    case S3_OP_GET_OBJECT_ACL:
    case S3_OP_PUT_OBJECT_ACL:
        return gw_object_acl(r, a);
    case S3_OP_PUT_OBJECT_TAGGING:
    case S3_OP_GET_OBJECT_TAGGING:
    case S3_OP_DELETE_OBJECT_TAGGING:
        return gw_object_tagging(r, a);
    case S3_OP_CREATE_MULTIPART_UPLOAD:
        return gw_create_upload(r, a);
    case S3_OP_UPLOAD_PART:
        return gw_upload_part(r, a);
    case S3_OP_UPLOAD_PART_COPY:
        return gw_upload_part_copy(r, a);
    case S3_OP_COMPLETE_MULTIPART_UPLOAD:
        return gw_complete_upload(r, a);
    case S3_OP_ABORT_MULTIPART_UPLOAD:
        return gw_abort_upload(r, a);
    case S3_OP_LIST_PARTS:
        return gw_list_parts(r, a);
    case S3_OP_LIST_MULTIPART_UPLOADS:
        return gw_list_uploads(r, a);
    default:
        return S3_ERR_NOT_IMPLEMENTED;
    }
}

/* Writes that wait for a sync (or copy bytes) finish on a commit worker. */
static bool slow_op(s3_op op)
{
    switch (op) {
    case S3_OP_PUT_OBJECT:
    case S3_OP_UPLOAD_PART:
    case S3_OP_UPLOAD_PART_COPY:
    case S3_OP_COPY_OBJECT:
    case S3_OP_COMPLETE_MULTIPART_UPLOAD:
    case S3_OP_DELETE_OBJECTS:
        return true;
    default:
        return false;
    }
}

/* The end of a request: body checks, the handler, CORS headers. */
static void finish(s3_gw_req *r)
{
    int rc = r->err ? r->err : finish_body(r);
    if (rc == 0)
        rc = dispatch(r, &r->ans);
    if (rc == 0)
        gw_cors_actual(r, &r->ans);
    r->final_rc = rc;
}

static void finish_task(void *arg)
{
    s3_gw_req *r = arg;
    finish(r);
    r->async_done = true;
    /* Last: once resumed, MHD calls the access handler again (on its own
     * thread), which sends r->ans. */
    MHD_resume_connection(r->conn);
}

bool s3_gw_req_first_call(s3_gw_req *r)
{
    bool first = !r->seen;
    r->seen = true;
    return first;
}

/* Whether the request carries a body (not read yet on the first call). */
static bool has_body(const s3_gw_req *r)
{
    const char *cl = s3_req_header(&r->req, "content-length");
    if (cl && strspn(cl, "0") != strlen(cl))
        return true;
    return s3_req_header(&r->req, "transfer-encoding") != NULL;
}

/* An answer made on the first call: sent now when the request has a body
 * (it is refused unread and MHD closes the connection, as AWS does), else
 * on the next call, when the connection can stay open. */
static int answer_first(s3_gw_req *r)
{
    if (!has_body(r)) {
        r->ready = true;
        return MHD_YES;
    }
    int ret = send_answer(r, &r->ans);
    answer_free(&r->ans);
    return ret;
}

int s3_gw_handle(s3_gw_req *r, struct MHD_Connection *c, const char *method, const char *upload,
                 size_t *upload_size)
{
    r->conn = c;
    if (r->answered) {
        *upload_size = 0; /* an early error answer: drop what still arrives */
        return MHD_YES;
    }
    if (r->ready) {
        if (*upload_size) {
            *upload_size = 0; /* none was announced: dropped */
            return MHD_YES;
        }
        int ret = send_answer(r, &r->ans);
        answer_free(&r->ans);
        return ret;
    }
    if (!r->req.method && gw_is_admin(r)) {
        MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, r);
        r->req.method = method;
        r->req.path = r->path;
        r->req.query = r->query;
        r->req.headers = r->hdrs;
        r->req.n_headers = r->n_hdrs;
        r->head = strcmp(method, "HEAD") == 0;
        int rc = gw_admin(r, method, &r->ans);
        if (rc != 0)
            error_body(r, &r->ans, rc);
        return answer_first(r);
    }
    if (!r->req.method) {
        int rc = begin(r, method);
        if (rc != 0) {
            error_body(r, &r->ans, rc);
            return answer_first(r);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->err == 0) {
            r->err = feed(r, upload, *upload_size);
            if (r->err) {
                vfs_put_abort(r->put);
                r->put = NULL;
                vfs_part_abort(r->part);
                r->part = NULL;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (!r->async_done) {
        if (r->async_pending)
            return MHD_YES; /* not resumed yet */
        if (r->err == 0 && slow_op(r->op)) {
            r->async_pending = true;
            MHD_suspend_connection(c);
            nb_pool_submit(r->g->commits, finish_task, r);
            return MHD_YES;
        }
        finish(r);
    }
    if (r->final_rc != 0)
        error_body(r, &r->ans, r->final_rc);
    int ret = send_answer(r, &r->ans);
    answer_free(&r->ans);
    return ret;
}
