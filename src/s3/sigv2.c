/*
 * sigv2.c — AWS Signature Version 2 (header "AWS ak:sig" and the
 * AWSAccessKeyId/Expires/Signature query), which s3cmd with
 * signature_v2 = True still speaks.
 *
 *   StringToSign = Verb \n Content-MD5 \n Content-Type \n Date|Expires \n
 *                  CanonicalizedAmzHeaders CanonicalizedResource
 *   Signature    = base64(HMAC-SHA1(secret, StringToSign))
 *
 * CanonicalizedAmzHeaders: x-amz-* headers, lowercase, sorted, values
 * trimmed and repeated headers joined with ','. CanonicalizedResource:
 * "/bucket" for virtual-hosted requests, then the path exactly as sent,
 * then the sub-resources present (acl, tagging, uploadId, response-*, ...)
 * sorted, with decoded values.
 *
 * Clients also differ on the path: botocore and s3cmd sign a path-style
 * bucket request "/bkt" as "/bkt/", and s3cmd signs its own AWS-style
 * encoding of the key rather than the bytes on the request line; those
 * variants are tried too, each a full HMAC comparison.
 *
 * When x-amz-date is present, clients disagree on the Date line: boto and
 * s3cmd leave it empty and sign x-amz-date among the amz headers, the AWS
 * documentation puts its value on the Date line and leaves it out of the
 * amz headers. Both forms are accepted.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "s3/s3_int.h"

/* Sub-resources that take part in the V2 canonical resource, sorted. */
static const char *const subresources[] = {
    "accelerate",
    "acl",
    "cors",
    "delete",
    "encryption",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "select",
    "select-type",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
};

typedef struct amz_hdr {
    char *name; /* lowercase */
    const char *value;
    size_t order;
} amz_hdr;

static int amz_cmp(const void *a, const void *b)
{
    const amz_hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int append_trim(nb_buf *out, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return nb_buf_append(out, v, n);
}

static int amz_headers(nb_buf *out, const s3_http_req *req, bool skip_date)
{
    amz_hdr *hs = nb_xcalloc(req->n_headers ? req->n_headers : 1, sizeof *hs);
    size_t n = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *name = req->headers[i].name;
        if (!name || strncasecmp(name, "x-amz-", 6) != 0)
            continue;
        if (skip_date && strcasecmp(name, "x-amz-date") == 0)
            continue;
        hs[n].name = nb_xstrdup(name);
        for (char *c = hs[n].name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        hs[n].value = req->headers[i].value ? req->headers[i].value : "";
        hs[n].order = i;
        n++;
    }
    qsort(hs, n, sizeof *hs, amz_cmp);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        bool same = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
        if (same) {
            rc = nb_buf_put_u8(out, ',');
        } else {
            if (i > 0)
                rc = nb_buf_put_u8(out, '\n');
            if (!rc)
                rc = nb_buf_appendf(out, "%s:", hs[i].name);
        }
        if (!rc)
            rc = append_trim(out, hs[i].value);
    }
    if (!rc && n)
        rc = nb_buf_put_u8(out, '\n');
    for (size_t i = 0; i < n; i++)
        free(hs[i].name);
    free(hs);
    return rc;
}

/* Resource variants clients sign, tried in turn (see the file comment). */
enum {
    RES_SLASH = 1,    /* a path-style bucket request "/bkt" signed as "/bkt/" */
    RES_REENCODE = 2, /* the path decoded and re-encoded the AWS way (s3cmd
                         signs its own encoding of the key, which may differ
                         from the bytes on the request line) */
};

static int resource(nb_buf *out, const s3_http_req *req, int variant)
{
    int rc = 0;
    const char *path = req->path && *req->path ? req->path : "/";
    if (req->vhost_bucket)
        rc = nb_buf_appendf(out, "/%s", req->vhost_bucket);
    if (!rc && (variant & RES_REENCODE)) {
        size_t n = strlen(path);
        char *dec = nb_xmalloc(n + 1);
        long d = s3_uri_decode(path, n, false, dec, n + 1);
        rc = d < 0 ? S3_ERR_INVALID_URI : s3_uri_encode(out, dec, (size_t)d, true);
        free(dec);
    } else if (!rc) {
        rc = nb_buf_append_str(out, path);
    }
    if (!rc && (variant & RES_SLASH))
        rc = nb_buf_put_u8(out, '/');
    if (rc)
        return rc;
    s3_query q;
    rc = s3_query_parse(req->query, &q);
    bool first = true;
    /* subresources[] is sorted, so walking it yields the sorted order. */
    for (size_t i = 0; i < NB_ARRAY_LEN(subresources) && !rc; i++) {
        for (size_t j = 0; j < q.n && !rc; j++) {
            if (strcmp(q.params[j].name, subresources[i]) != 0)
                continue;
            rc = nb_buf_appendf(out, "%c%s", first ? '?' : '&', q.params[j].name);
            if (!rc && q.params[j].value[0])
                rc = nb_buf_appendf(out, "=%s", q.params[j].value);
            first = false;
            break;
        }
    }
    s3_query_free(&q);
    return rc;
}

/* Builds the string to sign. doc_form puts x-amz-date's value on the Date
 * line and leaves it out of the amz headers (the documented variant). */
static int string_to_sign(nb_buf *out, const s3_http_req *req, const char *date_line, bool doc_form,
                          int variant)
{
    const char *md5 = s3_req_header(req, "content-md5");
    const char *ct = s3_req_header(req, "content-type");
    int rc = nb_buf_appendf(out, "%s\n%s\n%s\n%s\n", req->method, md5 ? md5 : "", ct ? ct : "",
                            date_line ? date_line : "");
    if (!rc)
        rc = amz_headers(out, req, doc_form);
    if (!rc)
        rc = resource(out, req, variant);
    return rc;
}

int s3_sigv2_string_to_sign(nb_buf *out, const s3_http_req *req, const char *date_or_expires,
                            bool query_form)
{
    (void)query_form;
    return string_to_sign(out, req, date_or_expires, false, 0);
}

/* True for a path-style request that names a bucket and no key ("/bkt"). */
static bool bare_bucket_path(const s3_http_req *req)
{
    const char *p = req->path;
    return !req->vhost_bucket && p && p[0] == '/' && p[1] && !strchr(p + 1, '/');
}

/* True when re-encoding the path changes it. */
static bool reencoding_differs(const s3_http_req *req)
{
    const char *p = req->path && *req->path ? req->path : "/";
    nb_buf a = NB_BUF_INIT;
    size_t n = strlen(p);
    char *dec = nb_xmalloc(n + 1);
    long d = s3_uri_decode(p, n, false, dec, n + 1);
    bool differs = d >= 0 && s3_uri_encode(&a, dec, (size_t)d, true) == 0 &&
                   (a.len != n || memcmp(a.data, p, n) != 0);
    free(dec);
    nb_buf_free(&a);
    return differs;
}

/* Whether a resource variant applies to req. */
static bool variant_applies(const s3_http_req *req, int variant, bool *differs, bool *known)
{
    if ((variant & RES_SLASH) && !bare_bucket_path(req))
        return false;
    if (variant & RES_REENCODE) {
        if (!*known) {
            *differs = reencoding_differs(req);
            *known = true;
        }
        return *differs;
    }
    return true;
}

static int sign_and_compare(const char *secret, const nb_buf *sts, const char *given)
{
    uint8_t mac[20];
    char b64[32];
    s3__hmac_sha1(secret, strlen(secret), sts->data, sts->len, mac);
    size_t n = s3_base64_encode(mac, 20, b64);
    return strlen(given) == n && s3__ct_equal(b64, given, n);
}

static int lookup(s3_secret_fn secret, void *ctx, const char *ak, char *sk, size_t cap)
{
    if (!secret)
        return S3_ERR_INVALID_ACCESS_KEY_ID;
    int rc = secret(ctx, ak, sk, cap);
    if (rc == NB_ENOTFOUND)
        return S3_ERR_INVALID_ACCESS_KEY_ID;
    return rc ? S3_ERR_INTERNAL_ERROR : 0;
}

int s3__sigv2_check_header(const s3_http_req *req, const char *authz, s3_secret_fn secret,
                           void *ctx, int64_t now, s3_auth *out)
{
    const char *p = authz + 4, *colon = strrchr(p, ':');
    if (!colon || colon == p || (size_t)(colon - p) > S3_ACCESS_KEY_MAX || !colon[1])
        return S3_ERR_AUTH_HEADER_MALFORMED;
    char ak[S3_ACCESS_KEY_MAX + 1];
    memcpy(ak, p, (size_t)(colon - p));
    ak[colon - p] = 0;
    const char *sig = colon + 1;

    const char *xdate = s3_req_header(req, "x-amz-date");
    const char *date = s3_req_header(req, "date");
    int64_t t;
    if (xdate ? s3_http_date_parse(xdate, &t) : (!date || s3_http_date_parse(date, &t)))
        return S3_ERR_ACCESS_DENIED; /* "AWS authentication requires a valid Date" */
    if (t > now + S3_MAX_SKEW_S || t < now - S3_MAX_SKEW_S)
        return S3_ERR_REQUEST_TIME_TOO_SKEWED;

    char sk[S3_SECRET_KEY_MAX + 1];
    int rc = lookup(secret, ctx, ak, sk, sizeof sk);
    if (rc)
        return rc;
    /* Every accepted convention is tried; each is a full HMAC comparison. */
    nb_buf sts = NB_BUF_INIT;
    bool ok = false;
    bool differs = false, known = false;
    for (int form = 0; form < 8 && !ok && !rc; form++) {
        bool doc_form = form & 1;
        int variant = form >> 1;
        if ((doc_form && !xdate) || !variant_applies(req, variant, &differs, &known))
            continue;
        nb_buf_reset(&sts);
        rc = string_to_sign(&sts, req, doc_form ? xdate : date, doc_form, variant);
        ok = !rc && sign_and_compare(sk, &sts, sig);
    }
    nb_buf_free(&sts);
    memset(sk, 0, sizeof sk);
    if (rc)
        return rc == NB_ETOOBIG ? S3_ERR_AUTH_HEADER_MALFORMED : rc;
    if (!ok)
        return S3_ERR_SIGNATURE_DOES_NOT_MATCH;
    out->version = 2;
    out->payload = S3_PAYLOAD_EMPTY_OR_ANY;
    out->request_time = t;
    snprintf(out->access_key, sizeof out->access_key, "%s", ak);
    return 0;
}

int s3__sigv2_check_query(const s3_http_req *req, const s3_query *q, s3_secret_fn secret, void *ctx,
                          int64_t now, s3_auth *out)
{
    const char *ak = s3_query_get(q, "AWSAccessKeyId");
    const char *exp = s3_query_get(q, "Expires");
    const char *sig = s3_query_get(q, "Signature");
    if (!ak || !exp || !sig || !*ak || strlen(ak) > S3_ACCESS_KEY_MAX)
        return S3_ERR_ACCESS_DENIED; /* "Query-string authentication requires ..." */
    char *end;
    long long e = strtoll(exp, &end, 10);
    if (!*exp || *end || e < 0)
        return S3_ERR_ACCESS_DENIED;
    if (now > e)
        return S3_ERR_EXPIRED_REQUEST;
    char sk[S3_SECRET_KEY_MAX + 1];
    int rc = lookup(secret, ctx, ak, sk, sizeof sk);
    if (rc)
        return rc;
    nb_buf sts = NB_BUF_INIT;
    bool ok = false;
    bool differs = false, known = false;
    for (int variant = 0; variant < 4 && !ok && !rc; variant++) {
        if (!variant_applies(req, variant, &differs, &known))
            continue;
        nb_buf_reset(&sts);
        rc = string_to_sign(&sts, req, exp, false, variant);
        ok = !rc && sign_and_compare(sk, &sts, sig);
    }
    nb_buf_free(&sts);
    memset(sk, 0, sizeof sk);
    if (rc)
        return rc == NB_ETOOBIG ? S3_ERR_AUTH_QUERY_ERROR : rc;
    if (!ok)
        return S3_ERR_SIGNATURE_DOES_NOT_MATCH;
    out->version = 2;
    out->presigned = true;
    out->payload = S3_PAYLOAD_EMPTY_OR_ANY;
    out->request_time = e;
    snprintf(out->access_key, sizeof out->access_key, "%s", ak);
    return 0;
}
