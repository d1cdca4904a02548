/*
 * request.c — request helpers: bucket/key from host and path, bucket name
 * rules, Range, conditional headers, ETags, Content-MD5, user metadata and
 * additional checksums. All pure: strings in, values out.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "s3/s3_int.h"

/* ---- bucket names and targets ------------------------------------------ */

static bool is_ipv4(const char *s)
{
    int parts = 0;
    while (*s) {
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            s++;
            digits++;
        }
        if (digits == 0 || digits > 3)
            return false;
        parts++;
        if (*s == '.')
            s++;
        else if (*s)
            return false;
    }
    return parts == 4;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int s3_bucket_name_check(const char *name)
{
    size_t n = strlen(name);
    if (n < 3 || n > S3_BUCKET_NAME_MAX)
        return S3_ERR_INVALID_BUCKET_NAME;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '-')
            return S3_ERR_INVALID_BUCKET_NAME;
        if ((i == 0 || i == n - 1) && !alnum)
            return S3_ERR_INVALID_BUCKET_NAME;
        if (c == '.' && (name[i + 1] == '.' || name[i + 1] == '-' || name[i - 1] == '-'))
            return S3_ERR_INVALID_BUCKET_NAME;
    }
    if (is_ipv4(name) || strncmp(name, "xn--", 4) == 0 || strncmp(name, "sthree-", 7) == 0 ||
        strncmp(name, "amzn-s3-demo-", 13) == 0 || ends_with(name, "-s3alias") ||
        ends_with(name, "--ol-s3") || ends_with(name, ".mrap") || ends_with(name, "--x-s3"))
        return S3_ERR_INVALID_BUCKET_NAME;
    return 0;
}

static int set_bucket(s3_target *t, const char *s, size_t n)
{
    if (n > S3_BUCKET_NAME_MAX)
        return S3_ERR_INVALID_BUCKET_NAME;
    memcpy(t->bucket, s, n);
    t->bucket[n] = 0;
    return 0;
}

/* Decodes [s, s+n) into dst (cap bytes with the NUL); InvalidURI for a bad
 * escape or a NUL, too_long when it does not fit. */
static int decode_into(const char *s, size_t n, char *dst, size_t cap, int too_long, size_t *len)
{
    char *tmp = nb_xmalloc(n + 1);
    long d = s3_uri_decode(s, n, false, tmp, n + 1);
    int rc = 0;
    if (d < 0)
        rc = S3_ERR_INVALID_URI;
    else if ((size_t)d >= cap)
        rc = too_long;
    else {
        memcpy(dst, tmp, (size_t)d + 1);
        if (len)
            *len = (size_t)d;
    }
    free(tmp);
    return rc;
}

int s3_target_parse(const char *host, const char *raw_path, const char *domain, s3_target *out)
{
    memset(out, 0, sizeof *out);
    const char *path = raw_path && *raw_path ? raw_path : "/";
    if (path[0] != '/')
        return S3_ERR_INVALID_URI;
    int rc = 0;
    const char *rest = path + 1; /* after the leading '/' */
    if (host && domain && *domain) {
        const char *colon = strrchr(host, ':');
        size_t hlen = colon && !strchr(colon, ']') ? (size_t)(colon - host) : strlen(host);
        size_t dl = strlen(domain);
        if (hlen > dl + 1 && strncasecmp(host + hlen - dl, domain, dl) == 0 &&
            host[hlen - dl - 1] == '.') {
            rc = set_bucket(out, host, hlen - dl - 1);
            for (char *c = out->bucket; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
            out->vhost = true;
        }
    }
    if (!rc && !out->vhost) {
        /* Path style: the bucket is the first raw segment, so an encoded
         * "%2F" stays inside the bucket name (and makes it invalid). */
        const char *slash = strchr(rest, '/');
        size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);
        rc = decode_into(rest, blen, out->bucket, sizeof out->bucket, S3_ERR_INVALID_BUCKET_NAME,
                         NULL);
        rest = slash ? slash + 1 : rest + blen;
        if (!rc && !out->bucket[0] && *rest)
            rc = S3_ERR_INVALID_URI; /* "//key" */
    }
    if (!rc)
        rc = decode_into(rest, strlen(rest), out->key, sizeof out->key, S3_ERR_KEY_TOO_LONG,
                         &out->key_len);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- Range -------------------------------------------------------------- */

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

int s3_range_parse(const char *header, uint64_t size, s3_range *out)
{
    memset(out, 0, sizeof *out);
    if (!header)
        return 0;
    while (*header == ' ')
        header++;
    if (strncmp(header, "bytes=", 6) != 0)
        return 0;
    const char *spec = header + 6;
    while (*spec == ' ')
        spec++;
    size_t n = strlen(spec);
    while (n && spec[n - 1] == ' ')
        n--;
    if (memchr(spec, ',', n))
        return 0; /* several ranges: S3 answers with the whole object */
    const char *dash = memchr(spec, '-', n);
    if (!dash)
        return 0;
    size_t alen = (size_t)(dash - spec), blen = n - alen - 1;
    uint64_t a, b;
    if (alen == 0) { /* suffix: the last b bytes */
        if (!parse_u64(dash + 1, blen, &b))
            return 0;
        if (b == 0 || size == 0)
            return S3_ERR_INVALID_RANGE;
        out->partial = true;
        out->start = b >= size ? 0 : size - b;
        out->end = size - 1;
        return 0;
    }
    if (!parse_u64(spec, alen, &a))
        return 0;
    if (blen == 0) {
        b = UINT64_MAX;
    } else if (!parse_u64(dash + 1, blen, &b) || b < a) {
        return 0;
    }
    if (a >= size)
        return S3_ERR_INVALID_RANGE;
    out->partial = true;
    out->start = a;
    out->end = b >= size ? size - 1 : b;
    return 0;
}

void s3_content_range(const s3_range *r, uint64_t size, char *out, size_t cap)
{
    if (r)
        snprintf(out, cap, "bytes %llu-%llu/%llu", (unsigned long long)r->start,
                 (unsigned long long)r->end, (unsigned long long)size);
    else
        snprintf(out, cap, "bytes */%llu", (unsigned long long)size);
}

/* ---- conditional requests ----------------------------------------------- */

/* The header prefix + name (every GET and HEAD asks for four: no printf). */
static const char *cond_header(const s3_http_req *req, const char *prefix, const char *name)
{
    char full[64];
    size_t pl = strnlen(prefix, sizeof full - 1);
    size_t nl = strnlen(name, sizeof full - 1 - pl);
    memcpy(full, prefix, pl);
    memcpy(full + pl, name, nl);
    full[pl + nl] = 0;
    return s3_req_header(req, full);
}

void s3_cond_from_req(const s3_http_req *req, const char *prefix, s3_cond *c)
{
    c->if_match = cond_header(req, prefix, "if-match");
    c->if_none_match = cond_header(req, prefix, "if-none-match");
    c->if_modified_since = cond_header(req, prefix, "if-modified-since");
    c->if_unmodified_since = cond_header(req, prefix, "if-unmodified-since");
}

/* True when the comma-separated entity-tag list matches etag ("*" matches
 * any existing object; W/ and quotes are ignored). */
static bool etag_list_matches(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        const char *s = p;
        if (t - s >= 2 && s[0] == 'W' && s[1] == '/')
            s += 2;
        if (t - s >= 2 && *s == '"' && t[-1] == '"') {
            s++;
            t--;
        }
        if ((t - s == 1 && *s == '*') || ((size_t)(t - s) == elen && memcmp(s, etag, elen) == 0))
            return true;
        p = e;
    }
    return false;
}

int s3_cond_eval(const s3_cond *c, const char *etag, int64_t mtime, bool allow_304)
{
    int64_t t;
    if (c->if_match) {
        if (!etag_list_matches(c->if_match, etag))
            return S3_ERR_PRECONDITION_FAILED;
    } else if (c->if_unmodified_since && s3_http_date_parse(c->if_unmodified_since, &t) == 0 &&
               mtime > t) {
        return S3_ERR_PRECONDITION_FAILED;
    }
    int fail = allow_304 ? S3_ERR_NOT_MODIFIED : S3_ERR_PRECONDITION_FAILED;
    if (c->if_none_match) {
        if (etag_list_matches(c->if_none_match, etag))
            return fail;
    } else if (c->if_modified_since && s3_http_date_parse(c->if_modified_since, &t) == 0 &&
               mtime <= t) {
        return fail;
    }
    return 0;
}

/* ---- payload length ----------------------------------------------------- */

int s3_payload_length(const s3_http_req *req, const s3_auth *a, uint64_t max, uint64_t *out)
{
    *out = 0;
    bool streaming = a->payload == S3_PAYLOAD_STREAMING ||
                     a->payload == S3_PAYLOAD_STREAMING_TRAILER ||
                     a->payload == S3_PAYLOAD_STREAMING_UNSIGNED;
    const char *v =
        s3_req_header(req, streaming ? "x-amz-decoded-content-length" : "content-length");
    if (!v)
        return S3_ERR_MISSING_CONTENT_LENGTH;
    uint64_t n;
    if (!parse_u64(v, strlen(v), &n))
        return S3_ERR_INVALID_ARGUMENT;
    if (n > max)
        return S3_ERR_ENTITY_TOO_LARGE;
    *out = n;
    return 0;
}

/* ---- ETags and digests -------------------------------------------------- */

void s3_etag_md5(const uint8_t md5[16], char *out)
{
    s3_hex_encode(md5, 16, out);
}

int s3_etag_multipart(const char *const *part_etags, size_t n, char *out)
{
    s3_digest *d;
    int rc = s3_digest_new(S3_DIGEST_MD5, &d);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const char *e = part_etags[i];
        size_t len = strlen(e);
        if (len == 34 && e[0] == '"' && e[33] == '"') {
            e++;
            len = 32;
        }
        uint8_t md5[16];
        if (s3_hex_decode(e, len, md5, 16)) {
            s3_digest_free(d);
            return S3_ERR_INVALID_PART;
        }
        s3_digest_update(d, md5, 16);
    }
    uint8_t sum[S3_DIGEST_MAX];
    s3_digest_final(d, sum);
    s3_digest_free(d);
    s3_hex_encode(sum, 16, out);
    /* n <= 10000 parts (checked by the caller); %u keeps the bound visible to GCC. */
    snprintf(out + 32, S3_ETAG_MAX - 32, "-%u", (unsigned)n);
    return 0;
}

int s3_content_md5_parse(const char *b64, uint8_t out[16])
{
    uint8_t tmp[18];
    if (!b64 || s3_base64_decode(b64, strlen(b64), tmp, sizeof tmp) != 16)
        return S3_ERR_INVALID_DIGEST;
    memcpy(out, tmp, 16);
    return 0;
}

/* ---- user metadata ------------------------------------------------------ */

int s3_meta_collect(const s3_http_req *req, s3_meta *out)
{
    memset(out, 0, sizeof *out);
    int rc = 0;
    for (size_t i = 0; i < req->n_headers && !rc; i++) {
        const char *name = req->headers[i].name;
        if (!name || strncasecmp(name, "x-amz-meta-", 11) != 0)
            continue;
        const char *v = req->headers[i].value ? req->headers[i].value : "";
        char *lname = nb_xstrdup(name + 11);
        for (char *c = lname; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        s3_meta_item *it = NULL;
        for (size_t j = 0; j < out->n && !it; j++)
            if (strcmp(out->items[j].name, lname) == 0)
                it = &out->items[j];
        if (it) {
            char *joined = nb_xasprintf("%s,%s", it->value, v);
            free(it->value);
            it->value = joined;
            out->bytes += 1 + strlen(v);
            free(lname);
        } else {
            out->items = nb_xrealloc(out->items, (out->n + 1) * sizeof *out->items);
            out->items[out->n].name = lname;
            out->items[out->n].value = nb_xstrdup(v);
            out->n++;
            out->bytes += strlen(lname) + strlen(v);
        }
        if (out->bytes > S3_META_MAX)
            rc = S3_ERR_METADATA_TOO_LARGE;
    }
    if (rc)
        s3_meta_free(out);
    return rc;
}

void s3_meta_free(s3_meta *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->items[i].name);
        free(m->items[i].value);
    }
    free(m->items);
    memset(m, 0, sizeof *m);
}

/* ---- additional checksums ----------------------------------------------- */

static const struct {
    const char *header;
    const char *algo;
    s3_digest_alg alg;
} checksums[] = {
    {"x-amz-checksum-crc32", "CRC32", S3_DIGEST_CRC32},
    {"x-amz-checksum-crc32c", "CRC32C", S3_DIGEST_CRC32C},
    {"x-amz-checksum-sha1", "SHA1", S3_DIGEST_SHA1},
    {"x-amz-checksum-sha256", "SHA256", S3_DIGEST_SHA256},
};

int s3_checksum_from_req(const s3_http_req *req, s3_checksum *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < NB_ARRAY_LEN(checksums); i++) {
        const char *v = s3_req_header(req, checksums[i].header);
        if (!v)
            continue;
        if (out->present)
            return S3_ERR_INVALID_REQUEST; /* "Expecting a single x-amz-checksum- header" */
        uint8_t raw[S3_DIGEST_MAX + 2];
        long n = s3_base64_decode(v, strlen(v), raw, sizeof raw);
        if (n != (long)s3_digest_size(checksums[i].alg) || strlen(v) >= sizeof out->expected)
            return S3_ERR_INVALID_REQUEST; /* "Value for x-amz-checksum-... is invalid" */
        out->present = true;
        out->alg = checksums[i].alg;
        out->header = checksums[i].header;
        strcpy(out->expected, v);
    }
    const char *trailer = s3_req_header(req, "x-amz-trailer");
    const char *algo = s3_req_header(req, "x-amz-sdk-checksum-algorithm");
    if (!algo)
        algo = s3_req_header(req, "x-amz-checksum-algorithm");
    if (trailer) {
        if (out->present)
            return S3_ERR_INVALID_REQUEST;
        for (size_t i = 0; i < NB_ARRAY_LEN(checksums); i++) {
            if (strcasecmp(trailer, checksums[i].header) == 0) {
                out->present = true;
                out->trailer = true;
                out->alg = checksums[i].alg;
                out->header = checksums[i].header;
            }
        }
        if (!out->present)
            return S3_ERR_INVALID_REQUEST;
    }
    if (algo) {
        bool known = false;
        for (size_t i = 0; i < NB_ARRAY_LEN(checksums); i++) {
            if (strcasecmp(algo, checksums[i].algo) != 0)
                continue;
            known = true;
            if (out->present && out->alg != checksums[i].alg)
                return S3_ERR_INVALID_REQUEST;
            if (!out->present) {
                /* The algorithm alone: compute and return, nothing to check. */
                out->present = true;
                out->alg = checksums[i].alg;
                out->header = checksums[i].header;
            }
        }
        if (!known)
            return S3_ERR_INVALID_REQUEST;
    }
    return 0;
}

int s3_checksum_verify(const s3_checksum *c, const uint8_t *digest, const char *trailer_value,
                       char *b64_out)
{
    char b64[64];
    s3_base64_encode(digest, s3_digest_size(c->alg), b64);
    if (b64_out)
        strcpy(b64_out, b64);
    const char *want = c->trailer ? trailer_value : c->expected;
    if (c->trailer && !want)
        return S3_ERR_INVALID_REQUEST; /* the announced trailer never came */
    if (want && *want && strcmp(want, b64) != 0)
        return S3_ERR_BAD_DIGEST;
    return 0;
}
