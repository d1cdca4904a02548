/*
 * util.c — encodings (hex, base64, URI), digests, HMAC, query strings and
 * dates for the s3 module. The cryptography is OpenSSL's libcrypto and
 * zlib's CRC-32; HMAC is the RFC 2104 construction over libcrypto's
 * digests (see s3__hmac_sha256 for why).
 */
/* SHA-256 of the signatures through OpenSSL's SHA256_* functions (kept
 * in OpenSSL 3, deprecated): they run the same SHA-NI/AVX code as EVP
 * without its per-call provider dispatch, which cost more than hashing a
 * canonical request (perf, session 10). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "common/crc32c.h"
#include "common/mem.h"
#include "s3/s3_int.h"

/* ---- hex and base64 ---------------------------------------------------- */

void s3_hex_encode(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int s3_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n)
{
    if (slen != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

size_t s3_base64_encode(const uint8_t *p, size_t n, char *out)
{
    if (n == 0) {
        out[0] = 0;
        return 0;
    }
    return (size_t)EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict decoding: length a multiple of 4, padding only at the end. (A
 * table decoder rather than EVP_DecodeBlock, which accepts whitespace and
 * cannot tell how much padding there was.) */
long s3_base64_decode(const char *s, size_t slen, uint8_t *out, size_t outcap)
{
    if (slen % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < slen; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            int c = (unsigned char)s[i + j];
            if (c == '=' && i + 4 == slen && j >= 2) {
                v[j] = 0;
                pad++;
                continue;
            }
            if (pad)
                return -1;
            v[j] = b64val(c);
            if (v[j] < 0)
                return -1;
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t nout = 3 - (size_t)pad;
        if (o + nout > outcap)
            return -1;
        out[o++] = (uint8_t)(w >> 16);
        if (nout > 1)
            out[o++] = (uint8_t)(w >> 8);
        if (nout > 2)
            out[o++] = (uint8_t)w;
    }
    return (long)o;
}

/* ---- URI encoding ------------------------------------------------------ */

long s3_uri_decode(const char *s, size_t n, bool plus_is_space, char *out, size_t outcap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi << 4 | lo;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == 0)
            return -1;
        if (o + 1 >= outcap)
            return -2;
        out[o++] = (char)c;
    }
    if (outcap)
        out[o] = 0;
    return (long)o;
}

static bool unreserved(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int s3_uri_encode(nb_buf *out, const char *s, size_t n, bool keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    int rc = nb_buf_reserve(out, n);
    if (rc)
        return rc;
    size_t i = 0;
    while (i < n) {
        size_t run = i; /* bytes kept as they are go in one append */
        while (run < n && (unreserved((unsigned char)s[run]) || (keep_slash && s[run] == '/')))
            run++;
        if (run > i && (rc = nb_buf_append(out, s + i, run - i)) != 0)
            return rc;
        if (run == n)
            break;
        int c = (unsigned char)s[run];
        char e[3] = {'%', digits[c >> 4], digits[c & 15]};
        if ((rc = nb_buf_append(out, e, 3)) != 0)
            return rc;
        i = run + 1;
    }
    return 0;
}

/* ---- digests ----------------------------------------------------------- */

struct s3_digest {
    s3_digest_alg alg;
    EVP_MD_CTX *md; /* MD5/SHA-1/SHA-256 */
    uint32_t crc;   /* CRC32/CRC32C */
};

/* OpenSSL 3 looks a digest up by name on each use of EVP_md5() & co (a
 * lock and a table lookup per request): each is fetched once. */
static EVP_MD *md_md5, *md_sha1, *md_sha256;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_fetch(void)
{
    md_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *evp_of(s3_digest_alg alg)
{
    pthread_once(&md_once, md_fetch);
    switch (alg) {
    case S3_DIGEST_MD5:
        return md_md5 ? md_md5 : EVP_md5();
    case S3_DIGEST_SHA1:
        return md_sha1 ? md_sha1 : EVP_sha1();
    case S3_DIGEST_SHA256:
        return md_sha256 ? md_sha256 : EVP_sha256();
    default:
        return NULL;
    }
}

size_t s3_digest_size(s3_digest_alg alg)
{
    switch (alg) {
    case S3_DIGEST_MD5:
        return 16;
    case S3_DIGEST_SHA1:
        return 20;
    case S3_DIGEST_SHA256:
        return 32;
    case S3_DIGEST_CRC32:
    case S3_DIGEST_CRC32C:
        return 4;
    }
    return 0;
}

int s3_digest_new(s3_digest_alg alg, s3_digest **out)
{
    *out = NULL;
    if (s3_digest_size(alg) == 0)
        return NB_EUSAGE;
    s3_digest *d = nb_xcalloc(1, sizeof *d);
    d->alg = alg;
    const EVP_MD *m = evp_of(alg);
    if (m) {
        d->md = EVP_MD_CTX_new();
        if (!d->md || EVP_DigestInit_ex(d->md, m, NULL) != 1) {
            s3_digest_free(d);
            return NB_EINTERNAL;
        }
    }
    *out = d;
    return 0;
}

void s3_digest_update(s3_digest *d, const void *p, size_t n)
{
    if (d->md) {
        EVP_DigestUpdate(d->md, p, n);
        return;
    }
    const uint8_t *b = p;
    if (d->alg == S3_DIGEST_CRC32C) {
        d->crc = nb_crc32c(d->crc, p, n);
        return;
    }
    while (n) {
        uInt step = n > (1u << 30) ? (1u << 30) : (uInt)n;
        d->crc = (uint32_t)crc32(d->crc, b, step);
        b += step;
        n -= step;
    }
}

size_t s3_digest_final(s3_digest *d, uint8_t out[S3_DIGEST_MAX])
{
    if (d->md) {
        unsigned len = 0;
        EVP_DigestFinal_ex(d->md, out, &len);
        EVP_DigestInit_ex(d->md, evp_of(d->alg), NULL);
        return len;
    }
    out[0] = (uint8_t)(d->crc >> 24);
    out[1] = (uint8_t)(d->crc >> 16);
    out[2] = (uint8_t)(d->crc >> 8);
    out[3] = (uint8_t)d->crc;
    d->crc = 0;
    return 4;
}

/* One reusable digest context per thread for the one-shot digests and
 * HMACs of every request: a context's allocation, set-up and release cost
 * more than hashing a canonical request. Freed when its thread ends. */
typedef struct thread_scratch {
    EVP_MD_CTX *md;
    nb_buf buf;
} thread_scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    thread_scratch *t = p;
    EVP_MD_CTX_free(t->md);
    nb_buf_free(&t->buf);
    free(t);
}

static void scratch_key_make(void)
{
    if (pthread_key_create(&scratch_key, scratch_free) != 0)
        abort();
}

static thread_scratch *scratch(void)
{
    pthread_once(&scratch_once, scratch_key_make);
    thread_scratch *t = pthread_getspecific(scratch_key);
    if (!t) {
        t = nb_xcalloc(1, sizeof *t);
        t->md = EVP_MD_CTX_new();
        if (!t->md || pthread_setspecific(scratch_key, t) != 0)
            abort(); /* out of memory: as nb_xmalloc */
    }
    return t;
}

static EVP_MD_CTX *thread_ctx(void)
{
    return scratch()->md;
}

nb_buf *s3__thread_buf(void)
{
    nb_buf *b = &scratch()->buf;
    nb_buf_reset(b);
    return b;
}

size_t s3_digest_once(s3_digest_alg alg, const void *p, size_t n, uint8_t out[S3_DIGEST_MAX])
{
    if (alg == S3_DIGEST_SHA256) {
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Update(&c, p, n);
        SHA256_Final(out, &c);
        return 32;
    }
    const EVP_MD *md = evp_of(alg);
    if (md) {
        EVP_MD_CTX *c = thread_ctx();
        unsigned len = 0;
        if (EVP_DigestInit_ex2(c, md, NULL) != 1 || EVP_DigestUpdate(c, p, n) != 1 ||
            EVP_DigestFinal_ex(c, out, &len) != 1)
            return 0;
        return len;
    }
    s3_digest *d;
    if (s3_digest_new(alg, &d))
        return 0;
    s3_digest_update(d, p, n);
    size_t len = s3_digest_final(d, out);
    s3_digest_free(d);
    return len;
}

void s3_digest_free(s3_digest *d)
{
    if (!d)
        return;
    EVP_MD_CTX_free(d->md);
    free(d);
}

/* HMAC (RFC 2104) with a 64-byte block digest: H(K^opad || H(K^ipad || m)).
 * OpenSSL 3's one-shot HMAC() fetches the MAC and the digest by name and
 * builds a MAC context on every call: 6 µs for a string to sign, 2 µs
 * this way (the SigV4 and SigV2 test vectors and the botocore
 * differential test pin the result). */
static void hmac64(s3_digest_alg alg, const void *key, size_t klen, const void *p, size_t n,
                   uint8_t *out)
{
    const EVP_MD *md = evp_of(alg);
    uint8_t k[64] = {0}, pad[64], inner[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_MD_CTX *c = thread_ctx();
    if (klen > sizeof k)
        EVP_Digest(key, klen, k, &len, md, NULL);
    else
        memcpy(k, key, klen);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x36;
    EVP_DigestInit_ex2(c, md, NULL);
    EVP_DigestUpdate(c, pad, sizeof pad);
    EVP_DigestUpdate(c, p, n);
    EVP_DigestFinal_ex(c, inner, &len);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x5c;
    EVP_DigestInit_ex2(c, md, NULL);
    EVP_DigestUpdate(c, pad, sizeof pad);
    EVP_DigestUpdate(c, inner, len);
    EVP_DigestFinal_ex(c, out, &len);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
}

void s3__hmac_sha256(const void *key, size_t klen, const void *p, size_t n, uint8_t out[32])
{
    uint8_t k[64] = {0}, pad[64], inner[32];
    SHA256_CTX c;
    if (klen > sizeof k) {
        SHA256_Init(&c);
        SHA256_Update(&c, key, klen);
        SHA256_Final(k, &c);
    } else {
        memcpy(k, key, klen);
    }
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x36;
    SHA256_Init(&c);
    SHA256_Update(&c, pad, sizeof pad);
    SHA256_Update(&c, p, n);
    SHA256_Final(inner, &c);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x5c;
    SHA256_Init(&c);
    SHA256_Update(&c, pad, sizeof pad);
    SHA256_Update(&c, inner, sizeof inner);
    SHA256_Final(out, &c);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(&c, sizeof c);
}

void s3__hmac_sha1(const void *key, size_t klen, const void *p, size_t n, uint8_t out[20])
{
    hmac64(S3_DIGEST_SHA1, key, klen, p, n, out);
}

int s3__ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

int s3__strncaseeq(const char *a, const char *b, size_t n)
{
    return strncasecmp(a, b, n) == 0;
}

/* ---- headers and query strings ----------------------------------------- */

static inline int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* A request is looked up about ten times per header it has: the first
 * letter rules most names out before strcasecmp. */
const char *s3_req_header(const s3_http_req *req, const char *name)
{
    int c0 = ascii_lower((unsigned char)name[0]);
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *hn = req->headers[i].name;
        if (hn && ascii_lower((unsigned char)hn[0]) == c0 && strcasecmp(hn, name) == 0)
            return req->headers[i].value ? req->headers[i].value : "";
    }
    return NULL;
}

static char *decode_dup(const char *s, size_t n, int *rc)
{
    char *out = nb_xmalloc(n + 1);
    if (s3_uri_decode(s, n, true, out, n + 1) < 0) {
        free(out);
        *rc = S3_ERR_INVALID_URI;
        return NULL;
    }
    return out;
}

int s3_query_parse(const char *raw, s3_query *q)
{
    q->params = NULL;
    q->n = 0;
    if (!raw || !*raw)
        return 0;
    size_t cap = 1;
    for (const char *p = raw; *p; p++)
        cap += *p == '&';
    q->params = nb_xcalloc(cap, sizeof *q->params);
    const char *p = raw;
    int rc = 0;
    while (*p) {
        const char *end = strchr(p, '&');
        if (!end)
            end = p + strlen(p);
        if (end > p) {
            const char *eq = memchr(p, '=', (size_t)(end - p));
            const char *nend = eq ? eq : end;
            s3_query_param *qp = &q->params[q->n];
            qp->name = decode_dup(p, (size_t)(nend - p), &rc);
            if (!qp->name)
                return rc;
            qp->value = eq ? decode_dup(eq + 1, (size_t)(end - eq - 1), &rc) : nb_xstrdup("");
            q->n++;
            if (!qp->value)
                return rc;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

const char *s3_query_get(const s3_query *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->params[i].name, name) == 0)
            return q->params[i].value;
    return NULL;
}

void s3_query_free(s3_query *q)
{
    for (size_t i = 0; i < q->n; i++) {
        free(q->params[i].name);
        free(q->params[i].value);
    }
    free(q->params);
    q->params = NULL;
    q->n = 0;
}

/* ---- dates ------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int64_t s3__timegm(int year, int mon, int day, int hour, int min, int sec)
{
    if (year < 1970 || year > 9999 || mon < 1 || mon > 12 || day < 1 ||
        day > days_in_month(year, mon) || hour < 0 || hour > 23 || min < 0 || min > 59 || sec < 0 ||
        sec > 60)
        return -1;
    return days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec;
}

void s3__gmtime(int64_t t, int *year, int *mon, int *day, int *hour, int *min, int *sec, int *wday)
{
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t rem = t - days * 86400;
    *hour = (int)(rem / 3600);
    *min = (int)(rem % 3600 / 60);
    *sec = (int)(rem % 60);
    *wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    /* civil_from_days */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *mon = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(y + (*mon <= 2));
}

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Reads exactly n digits. */
static int digits_n(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int month_of(const char **p)
{
    for (int i = 0; i < 12; i++)
        if (strncasecmp(*p, months[i], 3) == 0) {
            *p += 3;
            return i + 1;
        }
    return -1;
}

static int expect(const char **p, char c)
{
    if (**p != c)
        return -1;
    (*p)++;
    return 0;
}

static int hms(const char **p, int *h, int *m, int *s)
{
    if (digits_n(p, 2, h) || expect(p, ':') || digits_n(p, 2, m) || expect(p, ':') ||
        digits_n(p, 2, s))
        return -1;
    return 0;
}

int s3_http_date_parse(const char *s, int64_t *out)
{
    if (!s)
        return -1;
    const char *p = s;
    while (*p == ' ')
        p++;
    const char *comma = strchr(p, ',');
    int y, mon, d, h, mi, sec;
    if (comma) {
        p = comma + 1;
        while (*p == ' ')
            p++;
        if (digits_n(&p, 2, &d))
            return -1;
        if (*p == ' ') { /* IMF-fixdate: "06 Nov 1994 08:49:37 GMT" */
            p++;
            if ((mon = month_of(&p)) < 0 || expect(&p, ' ') || digits_n(&p, 4, &y) ||
                expect(&p, ' '))
                return -1;
        } else { /* RFC 850: "06-Nov-94 08:49:37 GMT" */
            if (expect(&p, '-') || (mon = month_of(&p)) < 0 || expect(&p, '-') ||
                digits_n(&p, 2, &y) || expect(&p, ' '))
                return -1;
            y += y < 70 ? 2000 : 1900;
        }
        if (hms(&p, &h, &mi, &sec))
            return -1;
        while (*p == ' ')
            p++;
        if (strcmp(p, "GMT") && strcmp(p, "UTC") && strcmp(p, "+0000") && strcmp(p, "Z") &&
            strcmp(p, "-0000"))
            return -1;
    } else { /* asctime: "Sun Nov  6 08:49:37 1994" */
        if (strlen(p) < 4)
            return -1;
        p += 3;
        if (expect(&p, ' ') || (mon = month_of(&p)) < 0 || expect(&p, ' '))
            return -1;
        if (*p == ' ')
            p++;
        if (*p >= '0' && *p <= '9' && p[1] >= '0' && p[1] <= '9') {
            if (digits_n(&p, 2, &d))
                return -1;
        } else if (digits_n(&p, 1, &d)) {
            return -1;
        }
        if (expect(&p, ' ') || hms(&p, &h, &mi, &sec) || expect(&p, ' ') || digits_n(&p, 4, &y) ||
            *p)
            return -1;
    }
    int64_t t = s3__timegm(y, mon, d, h, mi, sec);
    if (t < 0)
        return -1;
    *out = t;
    return 0;
}

void s3_http_date_format(int64_t t, char *out, size_t cap)
{
    int y, mon, d, h, mi, s, wd;
    s3__gmtime(t, &y, &mon, &d, &h, &mi, &s, &wd);
    /* "Sun, 06 Nov 1994 08:49:37 GMT" by hand: on every GET and HEAD. */
    char b[32];
    if (y < 0 || y > 9999 || cap < 30) {
        snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[wd], d, months[mon - 1], y,
                 h, mi, s);
        return;
    }
    memcpy(b, wdays[wd], 3);
    b[3] = ',';
    b[4] = ' ';
    b[5] = (char)('0' + d / 10);
    b[6] = (char)('0' + d % 10);
    b[7] = ' ';
    memcpy(b + 8, months[mon - 1], 3);
    b[11] = ' ';
    b[12] = (char)('0' + y / 1000);
    b[13] = (char)('0' + y / 100 % 10);
    b[14] = (char)('0' + y / 10 % 10);
    b[15] = (char)('0' + y % 10);
    b[16] = ' ';
    b[17] = (char)('0' + h / 10);
    b[18] = (char)('0' + h % 10);
    b[19] = ':';
    b[20] = (char)('0' + mi / 10);
    b[21] = (char)('0' + mi % 10);
    b[22] = ':';
    b[23] = (char)('0' + s / 10);
    b[24] = (char)('0' + s % 10);
    memcpy(b + 25, " GMT", 5);
    memcpy(out, b, 30);
}

int s3_iso8601_basic_parse(const char *s, int64_t *out)
{
    if (!s || strlen(s) != 16)
        return -1;
    const char *p = s;
    int y, mon, d, h, mi, sec;
    if (digits_n(&p, 4, &y) || digits_n(&p, 2, &mon) || digits_n(&p, 2, &d) || expect(&p, 'T') ||
        digits_n(&p, 2, &h) || digits_n(&p, 2, &mi) || digits_n(&p, 2, &sec) || expect(&p, 'Z'))
        return -1;
    int64_t t = s3__timegm(y, mon, d, h, mi, sec);
    if (t < 0)
        return -1;
    *out = t;
    return 0;
}

void s3_iso8601_basic_format(int64_t t, char *out, size_t cap)
{
    int y, mon, d, h, mi, s, wd;
    s3__gmtime(t, &y, &mon, &d, &h, &mi, &s, &wd);
    snprintf(out, cap, "%04d%02d%02dT%02d%02d%02dZ", y, mon, d, h, mi, s);
}

void s3_iso8601_format(int64_t t, int ms, char *out, size_t cap)
{
    int y, mon, d, h, mi, s, wd;
    s3__gmtime(t, &y, &mon, &d, &h, &mi, &s, &wd);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mon, d, h, mi, s, ms % 1000);
}

int s3_iso8601_parse(const char *s, int64_t *out)
{
    if (!s)
        return -1;
    const char *p = s;
    int y, mon, d, h = 0, mi = 0, sec = 0;
    if (digits_n(&p, 4, &y) || expect(&p, '-') || digits_n(&p, 2, &mon) || expect(&p, '-') ||
        digits_n(&p, 2, &d))
        return -1;
    if (*p == 'T') {
        p++;
        if (hms(&p, &h, &mi, &sec))
            return -1;
        if (*p == '.') {
            p++;
            if (*p < '0' || *p > '9')
                return -1;
            while (*p >= '0' && *p <= '9')
                p++;
        }
        if (strcmp(p, "Z") && strcmp(p, "+00:00"))
            return -1;
    } else if (*p) {
        return -1;
    }
    int64_t t = s3__timegm(y, mon, d, h, mi, sec);
    if (t < 0)
        return -1;
    *out = t;
    return 0;
}
