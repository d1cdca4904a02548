/*
 * chunked.c — the aws-chunked body decoder (STREAMING-* payloads).
 *
 * Body grammar (x-amz-content-sha256 selects the variant):
 *
 *   chunk   = hex-size [";chunk-signature=" 64HEX] CRLF data CRLF
 *   final   = "0" [";chunk-signature=" 64HEX] CRLF *(trailer CRLF) CRLF
 *   trailer = name ":" value     ("x-amz-checksum-crc32:AAAAAA==")
 *
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD          signed chunks, no trailers
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER  signed chunks, trailers
 *                                               ending with a signed
 *                                               x-amz-trailer-signature
 *   STREAMING-UNSIGNED-PAYLOAD-TRAILER          plain chunks, trailers
 *
 * Each chunk signature is HMAC(signing key, "AWS4-HMAC-SHA256-PAYLOAD" \n
 * date \n scope \n previous signature \n SHA256("") \n SHA256(data)), the
 * first "previous" being the seed signature of the request; the trailer
 * signature is HMAC(key, "AWS4-HMAC-SHA256-TRAILER" \n date \n scope \n
 * previous \n SHA256("name:value\n"...)).
 *
 * States:  HEADER ──size>0──► DATA ──► DATA_CR ──► DATA_LF ──► HEADER
 *             └──size=0──► TRAILER ──empty line──► DONE
 * Any violation moves to ERROR, which is sticky. Memory: one line buffer
 * and at most CHUNKED_TRAILERS_MAX bytes of trailers, whatever the sizes.
 */
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "s3/s3_int.h"

#define LINE_MAX_LEN         4096
#define CHUNKED_TRAILERS_MAX 4096
#define EMPTY_SHA256         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

enum { ST_HEADER, ST_DATA, ST_DATA_CR, ST_DATA_LF, ST_TRAILER, ST_DONE, ST_ERROR };

struct s3_chunked {
    s3_payload_mode mode;
    bool signed_chunks;
    uint8_t key[32];
    char prev_sig[65];
    char claimed_sig[65];
    char trailer_sig[65];
    char amz_date[17];
    char scope[128];
    int64_t expect_len;
    uint64_t decoded;
    uint64_t remaining;
    int state;
    int err;
    char line[LINE_MAX_LEN];
    size_t line_len;
    s3_digest *sha;
    nb_buf trailers;      /* "name\0value\0" pairs */
    nb_buf trailer_canon; /* "name:value\n" lines, for the trailer signature */
};

int s3_chunked_new(const s3_auth *a, int64_t decoded_length, s3_chunked **out)
{
    *out = NULL;
    if (a->payload != S3_PAYLOAD_STREAMING && a->payload != S3_PAYLOAD_STREAMING_TRAILER &&
        a->payload != S3_PAYLOAD_STREAMING_UNSIGNED)
        return NB_EUSAGE;
    s3_chunked *c = nb_xcalloc(1, sizeof *c);
    c->mode = a->payload;
    c->signed_chunks = a->payload != S3_PAYLOAD_STREAMING_UNSIGNED;
    if (c->signed_chunks && a->version != 4) {
        free(c);
        return NB_EUSAGE;
    }
    memcpy(c->key, a->signing_key, 32);
    memcpy(c->prev_sig, a->seed_signature, sizeof c->prev_sig);
    memcpy(c->amz_date, a->amz_date, sizeof c->amz_date);
    memcpy(c->scope, a->scope, sizeof c->scope);
    c->expect_len = decoded_length;
    nb_buf_init(&c->trailers, CHUNKED_TRAILERS_MAX);
    nb_buf_init(&c->trailer_canon, CHUNKED_TRAILERS_MAX);
    int rc = s3_digest_new(S3_DIGEST_SHA256, &c->sha);
    if (rc) {
        s3_chunked_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void s3_chunked_free(s3_chunked *c)
{
    if (!c)
        return;
    s3_digest_free(c->sha);
    nb_buf_free(&c->trailers);
    nb_buf_free(&c->trailer_canon);
    memset(c->key, 0, sizeof c->key);
    free(c);
}

static int fail(s3_chunked *c, int rc)
{
    c->state = ST_ERROR;
    c->err = rc;
    return rc;
}

/* Checks claimed against HMAC(key, sts) and makes it the new previous. */
static int check_sig(s3_chunked *c, const char *sts, size_t n, const char *claimed)
{
    uint8_t mac[32];
    char hex[65];
    s3__hmac_sha256(c->key, 32, sts, n, mac);
    s3_hex_encode(mac, 32, hex);
    if (!s3__ct_equal(hex, claimed, 64))
        return fail(c, S3_ERR_SIGNATURE_DOES_NOT_MATCH);
    memcpy(c->prev_sig, hex, 65);
    return 0;
}

static int verify_chunk(s3_chunked *c)
{
    if (!c->signed_chunks)
        return 0;
    uint8_t h[S3_DIGEST_MAX];
    char hh[65];
    s3_digest_final(c->sha, h);
    s3_hex_encode(h, 32, hh);
    char sts[512];
    int n = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n" EMPTY_SHA256 "\n%s",
                     c->amz_date, c->scope, c->prev_sig, hh);
    return check_sig(c, sts, (size_t)n, c->claimed_sig);
}

static int verify_trailer(s3_chunked *c)
{
    if (c->mode != S3_PAYLOAD_STREAMING_TRAILER)
        return 0;
    if (!c->trailer_sig[0])
        return fail(c, S3_ERR_SIGNATURE_DOES_NOT_MATCH);
    uint8_t h[S3_DIGEST_MAX];
    char hh[65];
    s3_digest_once(S3_DIGEST_SHA256, c->trailer_canon.data ? (void *)c->trailer_canon.data : "",
                   c->trailer_canon.len, h);
    s3_hex_encode(h, 32, hh);
    char sts[512];
    int n = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s", c->amz_date,
                     c->scope, c->prev_sig, hh);
    return check_sig(c, sts, (size_t)n, c->trailer_sig);
}

static bool lower_hex64(const char *s, size_t n)
{
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* "<hex>[;chunk-signature=<64hex>]" */
static int parse_header(s3_chunked *c)
{
    const char *p = c->line, *end = c->line + c->line_len;
    uint64_t size = 0;
    int digits = 0;
    for (; p < end; p++) {
        int v;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            v = *p - 'A' + 10;
        else
            break;
        if (++digits > 15)
            return fail(c, S3_ERR_INCOMPLETE_BODY);
        size = size << 4 | (uint64_t)v;
    }
    if (digits == 0)
        return fail(c, S3_ERR_INCOMPLETE_BODY);
    if (c->signed_chunks) {
        static const char ext[] = ";chunk-signature=";
        size_t el = sizeof ext - 1;
        if ((size_t)(end - p) != el + 64 || memcmp(p, ext, el) != 0 || !lower_hex64(p + el, 64))
            return fail(c, S3_ERR_SIGNATURE_DOES_NOT_MATCH);
        memcpy(c->claimed_sig, p + el, 64);
        c->claimed_sig[64] = 0;
    } else if (p < end && *p != ';') {
        return fail(c, S3_ERR_INCOMPLETE_BODY);
    }
    c->remaining = size;
    if (size > 0) {
        c->state = ST_DATA;
        return 0;
    }
    /* The final chunk: its (empty) data is signed too. */
    int rc = verify_chunk(c);
    if (rc)
        return rc;
    c->state = ST_TRAILER;
    return 0;
}

static void lower(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
}

static int trailer_line(s3_chunked *c)
{
    if (c->line_len == 0) {
        int rc = verify_trailer(c);
        if (rc)
            return rc;
        if (c->expect_len >= 0 && c->decoded != (uint64_t)c->expect_len)
            return fail(c, S3_ERR_INCOMPLETE_BODY);
        c->state = ST_DONE;
        return 0;
    }
    if (c->mode == S3_PAYLOAD_STREAMING)
        return fail(c, S3_ERR_INCOMPLETE_BODY);
    char *colon = memchr(c->line, ':', c->line_len);
    if (!colon || colon == c->line)
        return fail(c, S3_ERR_INCOMPLETE_BODY);
    size_t nlen = (size_t)(colon - c->line);
    lower(c->line, nlen);
    const char *v = colon + 1, *vend = c->line + c->line_len;
    while (v < vend && (*v == ' ' || *v == '\t'))
        v++;
    while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
        vend--;
    size_t vlen = (size_t)(vend - v);
    if (memchr(c->line, 0, c->line_len))
        return fail(c, S3_ERR_INCOMPLETE_BODY);
    if (nlen == 23 && memcmp(c->line, "x-amz-trailer-signature", 23) == 0) {
        if (c->mode != S3_PAYLOAD_STREAMING_TRAILER || !lower_hex64(v, vlen))
            return fail(c, S3_ERR_SIGNATURE_DOES_NOT_MATCH);
        memcpy(c->trailer_sig, v, 64);
        c->trailer_sig[64] = 0;
        return 0;
    }
    if (c->trailer_sig[0]) /* the signature must come last */
        return fail(c, S3_ERR_INCOMPLETE_BODY);
    int rc = nb_buf_append(&c->trailers, c->line, nlen);
    if (!rc)
        rc = nb_buf_put_u8(&c->trailers, 0);
    if (!rc)
        rc = nb_buf_append(&c->trailers, v, vlen);
    if (!rc)
        rc = nb_buf_put_u8(&c->trailers, 0);
    if (!rc)
        rc = nb_buf_append(&c->trailer_canon, c->line, nlen);
    if (!rc)
        rc = nb_buf_put_u8(&c->trailer_canon, ':');
    if (!rc)
        rc = nb_buf_append(&c->trailer_canon, v, vlen);
    if (!rc)
        rc = nb_buf_put_u8(&c->trailer_canon, '\n');
    if (rc)
        return fail(c, S3_ERR_INCOMPLETE_BODY);
    return 0;
}

/* Accumulates a CRLF-terminated line; returns 1 when one is complete. */
static int take_line(s3_chunked *c, const uint8_t **p, const uint8_t *end)
{
    while (*p < end) {
        uint8_t b = *(*p)++;
        if (b == '\n') {
            if (c->line_len == 0 || c->line[c->line_len - 1] != '\r')
                return fail(c, S3_ERR_INCOMPLETE_BODY);
            c->line_len--;
            return 1;
        }
        if (c->line_len + 1 >= sizeof c->line)
            return fail(c, S3_ERR_INCOMPLETE_BODY);
        c->line[c->line_len++] = (char)b;
    }
    return 0;
}

int s3_chunked_feed(s3_chunked *c, const uint8_t *p, size_t n, s3_chunk_data_fn fn, void *ctx)
{
    const uint8_t *end = p + n;
    while (p < end) {
        int rc = 0;
        switch (c->state) {
        case ST_HEADER:
        case ST_TRAILER:
            rc = take_line(c, &p, end);
            if (rc == 1) {
                rc = c->state == ST_HEADER ? parse_header(c) : trailer_line(c);
                c->line_len = 0;
            }
            break;
        case ST_DATA: {
            size_t k = (size_t)(end - p) < c->remaining ? (size_t)(end - p) : (size_t)c->remaining;
            if (c->expect_len >= 0 && c->decoded + k > (uint64_t)c->expect_len)
                return fail(c, S3_ERR_INCOMPLETE_BODY);
            if (c->signed_chunks)
                s3_digest_update(c->sha, p, k);
            c->decoded += k;
            c->remaining -= k;
            if (fn && k) {
                rc = fn(ctx, p, k);
                if (rc)
                    return fail(c, rc);
            }
            p += k;
            if (c->remaining == 0)
                c->state = ST_DATA_CR;
            break;
        }
        case ST_DATA_CR:
        case ST_DATA_LF:
            if (*p++ != (c->state == ST_DATA_CR ? '\r' : '\n'))
                return fail(c, S3_ERR_INCOMPLETE_BODY);
            if (c->state == ST_DATA_CR) {
                c->state = ST_DATA_LF;
            } else {
                rc = verify_chunk(c);
                if (!rc)
                    c->state = ST_HEADER;
            }
            break;
        case ST_DONE:
            return fail(c, S3_ERR_INCOMPLETE_BODY); /* bytes after the final chunk */
        default:
            return c->err;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int s3_chunked_finish(s3_chunked *c)
{
    if (c->state == ST_ERROR)
        return c->err;
    if (c->state != ST_DONE)
        return fail(c, S3_ERR_INCOMPLETE_BODY);
    return 0;
}

const char *s3_chunked_trailer(const s3_chunked *c, const char *name)
{
    if (!c->trailers.data)
        return NULL;
    const char *p = (const char *)c->trailers.data, *end = p + c->trailers.len;
    while (p < end) {
        const char *v = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

uint64_t s3_chunked_decoded(const s3_chunked *c)
{
    return c->decoded;
}
