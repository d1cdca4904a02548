/*
 * response.c — headers of responses: stored system metadata, response-*
 * overrides, CORS headers, request ids.
 */
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "common/clock.h"
#include "common/mem.h"
#include "s3/s3_int.h"

static void add(s3_meta *m, const char *name, const char *value)
{
    m->items = nb_xrealloc(m->items, (m->n + 1) * sizeof *m->items);
    m->items[m->n].name = nb_xstrdup(name);
    m->items[m->n].value = nb_xstrdup(value);
    m->n++;
    m->bytes += strlen(name) + strlen(value);
}

/* Content-Encoding without "aws-chunked" (a list: "aws-chunked, gzip"). */
static char *strip_aws_chunked(const char *v)
{
    nb_buf b = NB_BUF_INIT;
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if (t > p && !((size_t)(t - p) == 11 && strncasecmp(p, "aws-chunked", 11) == 0)) {
            if ((b.len && nb_buf_append_str(&b, ",")) || nb_buf_append(&b, p, (size_t)(t - p)))
                break;
        }
        p = e;
    }
    if (nb_buf_nul_terminate(&b)) {
        nb_buf_free(&b);
        return nb_xstrdup("");
    }
    return (char *)nb_buf_take(&b, NULL);
}

int s3_sysmeta_collect(const s3_http_req *req, s3_meta *out)
{
    memset(out, 0, sizeof *out);
    const char *ct = s3_req_header(req, "content-type");
    add(out, "Content-Type", ct && *ct ? ct : "binary/octet-stream");
    static const char *const names[] = {"Cache-Control", "Content-Disposition", "Content-Language",
                                        "Expires"};
    for (size_t i = 0; i < NB_ARRAY_LEN(names); i++) {
        const char *v = s3_req_header(req, names[i]);
        if (v && *v)
            add(out, names[i], v);
    }
    const char *ce = s3_req_header(req, "content-encoding");
    if (ce) {
        char *v = strip_aws_chunked(ce);
        if (*v)
            add(out, "Content-Encoding", v);
        free(v);
    }
    return 0;
}

int s3_response_overrides(const s3_query *q, bool anonymous, s3_meta *out)
{
    static const struct {
        const char *param, *header;
    } map[] = {
        {"response-content-type", "Content-Type"},
        {"response-content-language", "Content-Language"},
        {"response-expires", "Expires"},
        {"response-cache-control", "Cache-Control"},
        {"response-content-disposition", "Content-Disposition"},
        {"response-content-encoding", "Content-Encoding"},
    };
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < NB_ARRAY_LEN(map); i++) {
        const char *v = s3_query_get(q, map[i].param);
        if (!v)
            continue;
        if (anonymous) {
            s3_meta_free(out);
            return S3_ERR_INVALID_REQUEST;
        }
        add(out, map[i].header, v);
    }
    return 0;
}

static char *join(const s3_strlist *l, const char *sep)
{
    nb_buf b = NB_BUF_INIT;
    for (size_t i = 0; i < l->n; i++)
        if ((i && nb_buf_append_str(&b, sep)) || nb_buf_append_str(&b, l->v[i]))
            break;
    if (nb_buf_nul_terminate(&b)) {
        nb_buf_free(&b);
        return nb_xstrdup("");
    }
    return (char *)nb_buf_take(&b, NULL);
}

int s3_cors_headers(const s3_cors_rule *r, const char *origin, const char *req_headers,
                    bool preflight, s3_meta *out)
{
    memset(out, 0, sizeof *out);
    bool any = false;
    for (size_t i = 0; i < r->origins.n; i++)
        any |= strcmp(r->origins.v[i], "*") == 0;
    add(out, "Access-Control-Allow-Origin", any ? "*" : origin);
    char *methods = join(&r->methods, ", ");
    add(out, "Access-Control-Allow-Methods", methods);
    free(methods);
    if (!any)
        add(out, "Access-Control-Allow-Credentials", "true");
    if (preflight && req_headers && *req_headers) {
        char *lower = nb_xstrdup(req_headers);
        for (char *c = lower; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        add(out, "Access-Control-Allow-Headers", lower);
        free(lower);
    }
    if (r->expose.n) {
        char *ex = join(&r->expose, ", ");
        add(out, "Access-Control-Expose-Headers", ex);
        free(ex);
    }
    if (r->max_age >= 0) {
        char age[24];
        snprintf(age, sizeof age, "%lld", (long long)r->max_age);
        add(out, "Access-Control-Max-Age", age);
    }
    add(out, "Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
    return 0;
}

/* Ids are a per-process random base plus a counter, mixed so consecutive
 * ids do not look alike; unique until the counter wraps (2^64). */
void s3_request_id(char *out)
{
    static _Atomic uint64_t counter;
    static _Atomic uint64_t base;
    uint64_t b = atomic_load(&base);
    if (b == 0) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = nb_wall_ns() ^ (nb_mono_ns() << 17);
        r |= 1;
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&base, &zero, r);
        b = atomic_load(&base);
    }
    uint64_t n = atomic_fetch_add(&counter, 1) + b;
    /* A bijective mix (splitmix64's finalizer) keeps ids unique. */
    n ^= n >> 30;
    n *= 0xbf58476d1ce4e5b9ull;
    n ^= n >> 27;
    n *= 0x94d049bb133111ebull;
    n ^= n >> 31;
    for (int i = 15; i >= 0; i--, n >>= 4)
        out[i] = "0123456789ABCDEF"[n & 15];
    out[16] = 0;
}
