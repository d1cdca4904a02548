/*
 * sigv4.c — AWS Signature Version 4 for S3, and the dispatch between V4,
 * V2 and anonymous requests.
 *
 * The server recomputes what the client signed:
 *
 *   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n
 *                      CanonicalHeaders \n SignedHeaders \n PayloadHash
 *   StringToSign     = "AWS4-HMAC-SHA256" \n AmzDate \n Scope \n
 *                      hex(SHA256(CanonicalRequest))
 *   SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region),
 *                      "s3"), "aws4_request")
 *   Signature        = hex(HMAC(SigningKey, StringToSign))
 *
 * S3 rules: the URI is decoded once and re-encoded with '/' kept (never
 * double-encoded); query parameters are decoded, re-encoded (RFC 3986
 * unreserved set, %XX uppercase, space as %20) and sorted by name, then
 * value; header values are trimmed with inner runs of spaces collapsed and
 * repeated headers joined with ','. Signatures are compared in constant
 * time.
 */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "s3/s3_int.h"

#define ALGO             "AWS4-HMAC-SHA256"
#define UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define STREAMING        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
#define STREAMING_TR     "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
#define STREAMING_UNS_TR "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

/* The signing key changes once a day per secret, region and service: each
 * thread keeps the last one it derived (4 HMACs fewer per request). */
static _Thread_local struct {
    char secret[S3_SECRET_KEY_MAX + 1], date8[9], region[64], service[16];
    uint8_t key[32];
} key_cache;

static bool key_cache_fits(const char *secret, const char *date8, const char *region,
                           const char *service)
{
    return strlen(secret) < sizeof key_cache.secret && strlen(date8) < sizeof key_cache.date8 &&
           strlen(region) < sizeof key_cache.region && strlen(service) < sizeof key_cache.service;
}

static void derive_key(const char *secret, const char *date8, const char *region,
                       const char *service, uint8_t out[32]);

void s3_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                          const char *service, uint8_t out[32])
{
    if (!key_cache_fits(secret, date8, region, service)) {
        derive_key(secret, date8, region, service, out);
        return;
    }
    if (key_cache.secret[0] && strcmp(key_cache.secret, secret) == 0 &&
        strcmp(key_cache.date8, date8) == 0 && strcmp(key_cache.region, region) == 0 &&
        strcmp(key_cache.service, service) == 0) {
        memcpy(out, key_cache.key, 32);
        return;
    }
    derive_key(secret, date8, region, service, out);
    strcpy(key_cache.secret, secret);
    strcpy(key_cache.date8, date8);
    strcpy(key_cache.region, region);
    strcpy(key_cache.service, service);
    memcpy(key_cache.key, out, 32);
}

static void derive_key(const char *secret, const char *date8, const char *region,
                       const char *service, uint8_t out[32])
{
    char k0[S3_SECRET_KEY_MAX + 8];
    int n = snprintf(k0, sizeof k0, "AWS4%s", secret);
    if (n < 0 || (size_t)n >= sizeof k0)
        n = (int)sizeof k0 - 1;
    uint8_t k1[32], k2[32], k3[32];
    s3__hmac_sha256(k0, (size_t)n, date8, strlen(date8), k1);
    s3__hmac_sha256(k1, 32, region, strlen(region), k2);
    s3__hmac_sha256(k2, 32, service, strlen(service), k3);
    s3__hmac_sha256(k3, 32, "aws4_request", 12, out);
}

typedef struct enc_param {
    char *name;
    char *value;
} enc_param;

static int enc_param_cmp(const void *a, const void *b)
{
    const enc_param *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static char *encode_dup(const char *s, int *rc)
{
    nb_buf b = NB_BUF_INIT;
    *rc = s3_uri_encode(&b, s, strlen(s), false);
    if (!*rc)
        *rc = nb_buf_nul_terminate(&b);
    if (*rc) {
        nb_buf_free(&b);
        return NULL;
    }
    if (!b.data)
        return nb_xstrdup("");
    return (char *)nb_buf_take(&b, NULL);
}

static int canonical_query(nb_buf *out, const char *raw, bool presigned)
{
    if (!raw || !*raw)
        return 0; /* most requests: nothing to sort */
    s3_query q;
    int rc = s3_query_parse(raw, &q);
    if (rc) {
        s3_query_free(&q);
        return rc;
    }
    enc_param *ps = nb_xcalloc(q.n ? q.n : 1, sizeof *ps);
    size_t n = 0;
    for (size_t i = 0; i < q.n && !rc; i++) {
        if (presigned && strcmp(q.params[i].name, "X-Amz-Signature") == 0)
            continue;
        ps[n].name = encode_dup(q.params[i].name, &rc);
        if (!rc)
            ps[n].value = encode_dup(q.params[i].value, &rc);
        n++;
    }
    if (!rc) {
        qsort(ps, n, sizeof *ps, enc_param_cmp);
        for (size_t i = 0; i < n && !rc; i++)
            rc = nb_buf_appendf(out, "%s%s=%s", i ? "&" : "", ps[i].name, ps[i].value);
    }
    for (size_t i = 0; i < n; i++) {
        free(ps[i].name);
        free(ps[i].value);
    }
    free(ps);
    s3_query_free(&q);
    return rc;
}

/* Appends v trimmed, with runs of spaces/tabs collapsed to one space. */
static int append_trimmed(nb_buf *out, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    int rc = 0;
    while (*v && !rc) {
        size_t word = strcspn(v, " \t");
        rc = nb_buf_append(out, v, word);
        v += word;
        v += strspn(v, " \t");
        if (!rc && *v)
            rc = nb_buf_put_u8(out, ' ');
    }
    return rc;
}

static int canonical_headers(nb_buf *out, const s3_http_req *req, const char *signed_headers)
{
    const char *p = signed_headers;
    int rc = 0;
    while (*p && !rc) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0)
            return S3_ERR_AUTH_HEADER_MALFORMED;
        bool found = false;
        rc = nb_buf_append(out, p, n);
        if (!rc)
            rc = nb_buf_put_u8(out, ':');
        for (size_t i = 0; i < req->n_headers && !rc; i++) {
            const char *hn = req->headers[i].name;
            if (!hn || strlen(hn) != n || strncasecmp(hn, p, n) != 0)
                continue;
            if (found)
                rc = nb_buf_put_u8(out, ',');
            if (!rc)
                rc = append_trimmed(out, req->headers[i].value ? req->headers[i].value : "");
            found = true;
        }
        if (!rc && !found)
            return S3_ERR_SIGNATURE_DOES_NOT_MATCH; /* signed a header we did not get */
        if (!rc)
            rc = nb_buf_put_u8(out, '\n');
        p = end ? end + 1 : p + n;
    }
    return rc;
}

int s3_sigv4_canonical_request(nb_buf *out, const s3_http_req *req, const char *signed_headers,
                               const char *payload_hash, bool presigned)
{
    int rc = nb_buf_append_str(out, req->method);
    if (!rc)
        rc = nb_buf_put_u8(out, '\n');
    if (rc)
        return rc;
    const char *path = req->path && *req->path ? req->path : "/";
    size_t plen = strlen(path);
    char stack[1024];
    char *dec = plen < sizeof stack ? stack : nb_xmalloc(plen + 1);
    if (s3_uri_decode(path, plen, false, dec, plen + 1) < 0)
        rc = S3_ERR_INVALID_URI;
    else
        rc = s3_uri_encode(out, dec, strlen(dec), true);
    if (dec != stack)
        free(dec);
    if (!rc)
        rc = nb_buf_put_u8(out, '\n');
    if (!rc)
        rc = canonical_query(out, req->query, presigned);
    if (!rc)
        rc = nb_buf_put_u8(out, '\n');
    if (!rc)
        rc = canonical_headers(out, req, signed_headers);
    if (!rc)
        rc = nb_buf_put_u8(out, '\n');
    if (!rc)
        rc = nb_buf_append_str(out, signed_headers);
    if (!rc)
        rc = nb_buf_put_u8(out, '\n');
    if (!rc)
        rc = nb_buf_append_str(out, payload_hash);
    return rc;
}

/* ---- credential and header parsing -------------------------------------- */

typedef struct v4_params {
    char access_key[S3_ACCESS_KEY_MAX + 1];
    char date8[9];
    char region[64];
    char scope[128];
    char signed_headers[1024];
    char signature[65];
} v4_params;

/* "AK/20130524/us-east-1/s3/aws4_request" */
static int parse_credential(const char *c, size_t n, v4_params *v, int bad)
{
    const char *end = c + n, *parts[5];
    int k = 4;
    const char *q = end;
    size_t lens[5];
    while (k > 0) {
        const char *s = q;
        while (s > c && s[-1] != '/')
            s--;
        if (s == c)
            return bad;
        parts[k] = s;
        lens[k] = (size_t)(q - s);
        q = s - 1;
        k--;
    }
    parts[0] = c;
    lens[0] = (size_t)(q - c);
    if (lens[0] == 0 || lens[0] > S3_ACCESS_KEY_MAX || lens[1] != 8 || lens[2] == 0 ||
        lens[2] >= sizeof v->region || lens[3] != 2 || memcmp(parts[3], "s3", 2) != 0 ||
        lens[4] != 12 || memcmp(parts[4], "aws4_request", 12) != 0)
        return bad;
    for (int i = 0; i < 8; i++)
        if (parts[1][i] < '0' || parts[1][i] > '9')
            return bad;
    memcpy(v->access_key, parts[0], lens[0]);
    v->access_key[lens[0]] = 0;
    memcpy(v->date8, parts[1], 8);
    v->date8[8] = 0;
    memcpy(v->region, parts[2], lens[2]);
    v->region[lens[2]] = 0;
    /* date8/region/s3/aws4_request: region < 64 bytes, so it fits */
    char *sc = v->scope;
    memcpy(sc, v->date8, 8);
    sc[8] = '/';
    memcpy(sc + 9, v->region, lens[2]);
    memcpy(sc + 9 + lens[2], "/s3/aws4_request", sizeof "/s3/aws4_request");
    return 0;
}

static int copy_field(char *dst, size_t cap, const char *s, size_t n, int bad)
{
    if (n == 0 || n >= cap)
        return bad;
    memcpy(dst, s, n);
    dst[n] = 0;
    return 0;
}

static bool is_lower_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
static int parse_authz_v4(const char *h, v4_params *v)
{
    const int bad = S3_ERR_AUTH_HEADER_MALFORMED;
    const char *p = h + strlen(ALGO);
    if (*p != ' ')
        return bad;
    bool cred = false, sh = false, sig = false;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *eq = strchr(p, '=');
        if (!eq)
            return bad;
        const char *val = eq + 1, *end = strchr(val, ',');
        if (!end)
            end = val + strlen(val);
        const char *vend = end;
        while (vend > val && vend[-1] == ' ')
            vend--;
        size_t klen = (size_t)(eq - p), vlen = (size_t)(vend - val);
        int rc = 0;
        if (klen == 10 && memcmp(p, "Credential", 10) == 0) {
            rc = parse_credential(val, vlen, v, bad);
            cred = true;
        } else if (klen == 13 && memcmp(p, "SignedHeaders", 13) == 0) {
            rc = copy_field(v->signed_headers, sizeof v->signed_headers, val, vlen, bad);
            sh = true;
        } else if (klen == 9 && memcmp(p, "Signature", 9) == 0) {
            rc = copy_field(v->signature, sizeof v->signature, val, vlen,
                            S3_ERR_SIGNATURE_DOES_NOT_MATCH);
            sig = true;
        } else {
            return bad;
        }
        if (rc)
            return rc;
        p = end;
    }
    if (!cred || !sh || !sig)
        return bad;
    return 0;
}

/* Signed headers must be lowercase and include host. */
static int check_signed_headers(const char *sh, int bad)
{
    bool host = false;
    for (const char *p = sh; *p;) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        for (size_t i = 0; i < n; i++)
            if ((p[i] >= 'A' && p[i] <= 'Z') || p[i] == ' ')
                return bad;
        if (n == 4 && memcmp(p, "host", 4) == 0)
            host = true;
        p = end ? end + 1 : p + n;
    }
    return host ? 0 : bad;
}

static int lookup_secret(s3_secret_fn secret, void *ctx, const char *ak, char *sk, size_t cap)
{
    if (!secret)
        return S3_ERR_INVALID_ACCESS_KEY_ID;
    int rc = secret(ctx, ak, sk, cap);
    if (rc == NB_ENOTFOUND)
        return S3_ERR_INVALID_ACCESS_KEY_ID;
    return rc ? S3_ERR_INTERNAL_ERROR : 0;
}

static int payload_mode(const char *h, s3_auth *out)
{
    if (strcmp(h, UNSIGNED_PAYLOAD) == 0)
        out->payload = S3_PAYLOAD_UNSIGNED;
    else if (strcmp(h, STREAMING) == 0)
        out->payload = S3_PAYLOAD_STREAMING;
    else if (strcmp(h, STREAMING_TR) == 0)
        out->payload = S3_PAYLOAD_STREAMING_TRAILER;
    else if (strcmp(h, STREAMING_UNS_TR) == 0)
        out->payload = S3_PAYLOAD_STREAMING_UNSIGNED;
    else if (s3_hex_decode(h, strlen(h), out->payload_sha256, 32) == 0)
        out->payload = S3_PAYLOAD_SHA256;
    else
        return S3_ERR_INVALID_ARGUMENT;
    return 0;
}

/* As snprintf(dst, cap, "%s", src), without the format machinery (hot). */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t l = strnlen(src, cap - 1);
    memcpy(dst, src, l);
    dst[l] = 0;
}

/* Computes the signature of req and compares it with v->signature. */
static int verify_v4(const s3_http_req *req, const v4_params *v, const char *amz_date,
                     const char *payload_hash, bool presigned, s3_secret_fn secret, void *ctx,
                     s3_auth *out)
{
    char sk[S3_SECRET_KEY_MAX + 1];
    int rc = lookup_secret(secret, ctx, v->access_key, sk, sizeof sk);
    if (rc)
        return rc;
    /* The thread's buffer: no allocation per request once it has grown. */
    nb_buf *cr = s3__thread_buf();
    rc = s3_sigv4_canonical_request(cr, req, v->signed_headers, payload_hash, presigned);
    if (rc) {
        OPENSSL_cleanse(sk, sizeof sk);
        return rc == NB_ETOOBIG ? S3_ERR_AUTH_HEADER_MALFORMED : rc;
    }
    uint8_t h[32];
    char hh[65];
    s3_digest_once(S3_DIGEST_SHA256, cr->data, cr->len, h);
    s3_hex_encode(h, 32, hh);
    /* ALGO \n amz_date \n scope \n hex(hash): fields bounded by v4_params */
    char sts[sizeof ALGO + 17 + sizeof v->scope + 65 + 3];
    size_t n = 0;
    const char *parts[] = {ALGO, amz_date, v->scope, hh};
    for (size_t i = 0; i < NB_ARRAY_LEN(parts); i++) {
        size_t l = strnlen(parts[i], sizeof sts - n - 2);
        memcpy(sts + n, parts[i], l);
        n += l;
        if (i + 1 < NB_ARRAY_LEN(parts))
            sts[n++] = '\n';
    }
    uint8_t key[32], sig[32];
    char sigh[65];
    s3_sigv4_signing_key(sk, v->date8, v->region, "s3", key);
    OPENSSL_cleanse(sk, sizeof sk);
    s3__hmac_sha256(key, 32, sts, n, sig);
    s3_hex_encode(sig, 32, sigh);
    if (!is_lower_hex64(v->signature) || !s3__ct_equal(sigh, v->signature, 64))
        return S3_ERR_SIGNATURE_DOES_NOT_MATCH;
    out->version = 4;
    out->presigned = presigned;
    copy_str(out->access_key, sizeof out->access_key, v->access_key);
    memcpy(out->signing_key, key, 32);
    memcpy(out->seed_signature, sigh, 65);
    copy_str(out->amz_date, sizeof out->amz_date, amz_date);
    copy_str(out->scope, sizeof out->scope, v->scope);
    return 0;
}

static int check_v4_header(const s3_http_req *req, const char *authz, s3_secret_fn secret,
                           void *ctx, int64_t now, s3_auth *out)
{
    v4_params v;
    memset(&v, 0, sizeof v);
    int rc = parse_authz_v4(authz, &v);
    if (!rc)
        rc = check_signed_headers(v.signed_headers, S3_ERR_AUTH_HEADER_MALFORMED);
    if (rc)
        return rc;
    char amz_date[17];
    int64_t t;
    const char *xd = s3_req_header(req, "x-amz-date");
    if (xd) {
        if (s3_iso8601_basic_parse(xd, &t))
            return S3_ERR_ACCESS_DENIED;
        copy_str(amz_date, sizeof amz_date, xd);
    } else {
        const char *d = s3_req_header(req, "date");
        if (!d || s3_http_date_parse(d, &t))
            return S3_ERR_ACCESS_DENIED;
        s3_iso8601_basic_format(t, amz_date, sizeof amz_date);
    }
    if (memcmp(amz_date, v.date8, 8) != 0)
        return S3_ERR_AUTH_HEADER_MALFORMED;
    if (t > now + S3_MAX_SKEW_S || t < now - S3_MAX_SKEW_S)
        return S3_ERR_REQUEST_TIME_TOO_SKEWED;
    const char *ph = s3_req_header(req, "x-amz-content-sha256");
    if (!ph)
        return S3_ERR_INVALID_REQUEST; /* "Missing required header: x-amz-content-sha256" */
    rc = payload_mode(ph, out);
    if (rc)
        return rc;
    out->request_time = t;
    return verify_v4(req, &v, amz_date, ph, false, secret, ctx, out);
}

static int check_v4_query(const s3_http_req *req, const s3_query *q, s3_secret_fn secret, void *ctx,
                          int64_t now, s3_auth *out)
{
    const int bad = S3_ERR_AUTH_QUERY_ERROR;
    const char *algo = s3_query_get(q, "X-Amz-Algorithm");
    const char *cred = s3_query_get(q, "X-Amz-Credential");
    const char *date = s3_query_get(q, "X-Amz-Date");
    const char *exp = s3_query_get(q, "X-Amz-Expires");
    const char *sh = s3_query_get(q, "X-Amz-SignedHeaders");
    const char *sig = s3_query_get(q, "X-Amz-Signature");
    if (!algo || !cred || !date || !exp || !sh || !sig || strcmp(algo, ALGO) != 0)
        return bad;
    v4_params v;
    memset(&v, 0, sizeof v);
    int rc = parse_credential(cred, strlen(cred), &v, bad);
    if (!rc)
        rc = copy_field(v.signed_headers, sizeof v.signed_headers, sh, strlen(sh), bad);
    if (!rc)
        rc = copy_field(v.signature, sizeof v.signature, sig, strlen(sig),
                        S3_ERR_SIGNATURE_DOES_NOT_MATCH);
    if (!rc)
        rc = check_signed_headers(v.signed_headers, bad);
    if (rc)
        return rc;
    int64_t t;
    if (s3_iso8601_basic_parse(date, &t) || memcmp(date, v.date8, 8) != 0)
        return bad;
    char *end;
    long long e = strtoll(exp, &end, 10);
    if (!*exp || *end || e < 1 || e > S3_PRESIGN_MAX_EXPIRES_S)
        return bad;
    if (t > now + S3_MAX_SKEW_S)
        return S3_ERR_NOT_YET_VALID;
    if (now > t + e)
        return S3_ERR_EXPIRED_REQUEST;
    const char *ph = s3_req_header(req, "x-amz-content-sha256");
    if (!ph)
        ph = UNSIGNED_PAYLOAD;
    rc = payload_mode(ph, out);
    if (rc)
        return rc;
    if (out->payload != S3_PAYLOAD_SHA256 && out->payload != S3_PAYLOAD_UNSIGNED)
        return S3_ERR_INVALID_ARGUMENT;
    out->request_time = t;
    return verify_v4(req, &v, date, ph, true, secret, ctx, out);
}

int s3_auth_check(const s3_http_req *req, s3_secret_fn secret, void *ctx, int64_t now, s3_auth *out)
{
    memset(out, 0, sizeof *out);
    const char *authz = s3_req_header(req, "authorization");
    s3_query q;
    int rc = s3_query_parse(req->query, &q);
    if (rc) {
        s3_query_free(&q);
        return rc;
    }
    bool v4q = s3_query_get(&q, "X-Amz-Algorithm") || s3_query_get(&q, "X-Amz-Credential") ||
               s3_query_get(&q, "X-Amz-Signature");
    bool v2q = s3_query_get(&q, "AWSAccessKeyId") || s3_query_get(&q, "Signature");
    if (authz && (v4q || v2q)) {
        rc = S3_ERR_INVALID_ARGUMENT; /* "Only one auth mechanism allowed" */
    } else if (authz) {
        if (strncmp(authz, ALGO, strlen(ALGO)) == 0)
            rc = check_v4_header(req, authz, secret, ctx, now, out);
        else if (strncmp(authz, "AWS ", 4) == 0)
            rc = s3__sigv2_check_header(req, authz, secret, ctx, now, out);
        else
            rc = S3_ERR_INVALID_ARGUMENT; /* "Unsupported Authorization Type" */
    } else if (v4q) {
        rc = check_v4_query(req, &q, secret, ctx, now, out);
    } else if (v2q) {
        rc = s3__sigv2_check_query(req, &q, secret, ctx, now, out);
    } else {
        out->version = 0;
        out->payload = S3_PAYLOAD_EMPTY_OR_ANY;
    }
    s3_query_free(&q);
    if (rc) {
        OPENSSL_cleanse(out, sizeof *out);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* Appends the string to sign of a V4 request to sts. */
static int v4_sts(nb_buf *sts, const nb_buf *canonical, const char *amz_date, const char *scope)
{
    uint8_t h[32];
    char hh[65];
    s3_digest_once(S3_DIGEST_SHA256, canonical->data ? (const void *)canonical->data : "",
                   canonical->len, h);
    s3_hex_encode(h, 32, hh);
    return nb_buf_appendf(sts, ALGO "\n%s\n%s\n%s", amz_date, scope, hh);
}

int s3_auth_explain(const s3_http_req *req, nb_buf *canonical, nb_buf *string_to_sign)
{
    const char *authz = s3_req_header(req, "authorization");
    s3_query q;
    int rc = s3_query_parse(req->query, &q);
    v4_params v;
    memset(&v, 0, sizeof v);
    if (rc) {
        /* fall through to cleanup */
    } else if (authz && strncmp(authz, ALGO, strlen(ALGO)) == 0) {
        rc = parse_authz_v4(authz, &v);
        char amz_date[17] = "";
        const char *xd = s3_req_header(req, "x-amz-date");
        int64_t t;
        if (!rc && xd) {
            snprintf(amz_date, sizeof amz_date, "%s", xd);
        } else if (!rc) {
            const char *d = s3_req_header(req, "date");
            if (!d || s3_http_date_parse(d, &t))
                rc = S3_ERR_ACCESS_DENIED;
            else
                s3_iso8601_basic_format(t, amz_date, sizeof amz_date);
        }
        const char *ph = s3_req_header(req, "x-amz-content-sha256");
        if (!rc)
            rc = s3_sigv4_canonical_request(canonical, req, v.signed_headers,
                                            ph ? ph : UNSIGNED_PAYLOAD, false);
        if (!rc)
            rc = v4_sts(string_to_sign, canonical, amz_date, v.scope);
    } else if (!authz && s3_query_get(&q, "X-Amz-Credential")) {
        const char *cred = s3_query_get(&q, "X-Amz-Credential");
        const char *date = s3_query_get(&q, "X-Amz-Date");
        const char *sh = s3_query_get(&q, "X-Amz-SignedHeaders");
        const char *ph = s3_req_header(req, "x-amz-content-sha256");
        rc = parse_credential(cred, strlen(cred), &v, S3_ERR_AUTH_QUERY_ERROR);
        if (!rc && (!date || !sh))
            rc = S3_ERR_AUTH_QUERY_ERROR;
        if (!rc)
            rc = s3_sigv4_canonical_request(canonical, req, sh, ph ? ph : UNSIGNED_PAYLOAD, true);
        if (!rc)
            rc = v4_sts(string_to_sign, canonical, date, v.scope);
    } else if (authz && strncmp(authz, "AWS ", 4) == 0) {
        const char *d = s3_req_header(req, "date");
        rc = s3_sigv2_string_to_sign(string_to_sign, req, d ? d : "", false);
    } else if (!authz && s3_query_get(&q, "Expires")) {
        rc = s3_sigv2_string_to_sign(string_to_sign, req, s3_query_get(&q, "Expires"), true);
    } else {
        rc = S3_ERR_ACCESS_DENIED;
    }
    s3_query_free(&q);
    return rc;
}

int s3_auth_payload_check(const s3_auth *a, const uint8_t sha256[32])
{
    if (a->payload != S3_PAYLOAD_SHA256)
        return 0;
    return s3__ct_equal(a->payload_sha256, sha256, 32) ? 0 : S3_ERR_CONTENT_SHA256_MISMATCH;
}
