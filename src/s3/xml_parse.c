/*
 * xml_parse.c — request bodies (DeleteObjects, CompleteMultipartUpload,
 * tagging, versioning, CORS, lifecycle) parsed with expat.
 *
 * expat builds a small element tree under hard limits (body size, depth,
 * node count, text per node), namespaces prefixes are dropped, and any DTD
 * (the door to entity expansion attacks) stops the parse. Each document
 * parser then walks the tree and validates it. Unknown child elements are
 * ignored, so newer client fields (checksums in Complete parts, ...) pass.
 */
#include <expat.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "s3/s3_int.h"

#define XP_MAX_DEPTH 12
#define XP_MAX_NODES 60000
#define XP_MAX_TEXT  (64u << 10)

typedef struct xnode {
    char *name;
    nb_buf text;
    struct xnode *child, *last, *next;
} xnode;

typedef struct xparser {
    XML_Parser p;
    xnode *root;
    xnode *stack[XP_MAX_DEPTH];
    int depth;
    size_t nodes;
    int rc;
} xparser;

static void node_free(xnode *n)
{
    while (n) {
        xnode *next = n->next;
        node_free(n->child);
        free(n->name);
        nb_buf_free(&n->text);
        free(n);
        n = next;
    }
}

static void stop(xparser *x, int rc)
{
    if (!x->rc)
        x->rc = rc;
    XML_StopParser(x->p, XML_FALSE);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    (void)attrs;
    xparser *x = ud;
    if (x->rc)
        return;
    if (x->depth >= XP_MAX_DEPTH || ++x->nodes > XP_MAX_NODES || (x->depth == 0 && x->root)) {
        stop(x, S3_ERR_MALFORMED_XML);
        return;
    }
    const char *colon = strrchr(name, ':');
    xnode *n = nb_xcalloc(1, sizeof *n);
    n->name = nb_xstrdup(colon ? colon + 1 : name);
    nb_buf_init(&n->text, XP_MAX_TEXT);
    if (x->depth == 0) {
        x->root = n;
    } else {
        xnode *parent = x->stack[x->depth - 1];
        if (parent->last)
            parent->last->next = n;
        else
            parent->child = n;
        parent->last = n;
    }
    x->stack[x->depth++] = n;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    (void)name;
    xparser *x = ud;
    if (x->rc || x->depth == 0)
        return;
    x->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    xparser *x = ud;
    if (x->rc || x->depth == 0)
        return;
    if (nb_buf_append(&x->stack[x->depth - 1]->text, s, (size_t)len))
        stop(x, S3_ERR_MALFORMED_XML);
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal;
    stop(ud, S3_ERR_MALFORMED_XML);
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int pe, const XML_Char *value,
                              int vlen, const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation)
{
    (void)name, (void)pe, (void)value, (void)vlen, (void)base, (void)sysid, (void)pubid,
        (void)notation;
    stop(ud, S3_ERR_MALFORMED_XML);
}

/* Parses body into a tree whose root must be called root_name. */
static int parse_tree(const void *body, size_t n, const char *root_name, xnode **out)
{
    *out = NULL;
    if (n == 0 || n > S3_XML_BODY_MAX)
        return S3_ERR_MALFORMED_XML;
    xparser x;
    memset(&x, 0, sizeof x);
    x.p = XML_ParserCreate("UTF-8");
    if (!x.p)
        return NB_EINTERNAL;
    XML_SetUserData(x.p, &x);
    XML_SetElementHandler(x.p, on_start, on_end);
    XML_SetCharacterDataHandler(x.p, on_text);
    XML_SetStartDoctypeDeclHandler(x.p, on_doctype);
    XML_SetEntityDeclHandler(x.p, on_entity);
    XML_SetParamEntityParsing(x.p, XML_PARAM_ENTITY_PARSING_NEVER);
    if (XML_Parse(x.p, body, (int)n, XML_TRUE) != XML_STATUS_OK && !x.rc)
        x.rc = S3_ERR_MALFORMED_XML;
    XML_ParserFree(x.p);
    if (!x.rc && (!x.root || strcmp(x.root->name, root_name) != 0))
        x.rc = S3_ERR_MALFORMED_XML;
    if (x.rc) {
        node_free(x.root);
        return x.rc;
    }
    *out = x.root;
    return 0;
}

/* ---- tree helpers ------------------------------------------------------- */

static const char *text(xnode *n)
{
    if (!n->text.data)
        return "";
    if (nb_buf_nul_terminate(&n->text))
        return "";
    return (const char *)n->text.data;
}

static xnode *child(xnode *n, const char *name)
{
    for (xnode *c = n->child; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static size_t count(xnode *n, const char *name)
{
    size_t k = 0;
    for (xnode *c = n->child; c; c = c->next)
        k += strcmp(c->name, name) == 0;
    return k;
}

/* Trimmed copy of a text node (S3 tolerates whitespace around values). */
static char *trimmed(xnode *n)
{
    const char *s = text(n);
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len &&
           (s[len - 1] == ' ' || s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == '\t'))
        len--;
    return nb_xstrndup(s, len);
}

/* A decimal integer in [lo, hi]; -1 otherwise. */
static int parse_int(xnode *n, int64_t lo, int64_t hi, int64_t *out)
{
    char *s = trimmed(n), *end;
    int rc = -1;
    if (*s && ((*s >= '0' && *s <= '9') || *s == '-')) {
        long long v = strtoll(s, &end, 10);
        if (!*end && v >= lo && v <= hi) {
            *out = v;
            rc = 0;
        }
    }
    free(s);
    return rc;
}

static bool text_is(xnode *n, const char *want)
{
    char *s = trimmed(n);
    bool eq = strcmp(s, want) == 0;
    free(s);
    return eq;
}

static size_t utf8_chars(const char *s)
{
    size_t k = 0;
    for (; *s; s++)
        k += ((unsigned char)*s & 0xc0) != 0x80;
    return k;
}

/* ---- DeleteObjects ------------------------------------------------------ */

int s3_parse_delete(const void *body, size_t n, s3_delete_req *out)
{
    memset(out, 0, sizeof *out);
    xnode *root;
    int rc = parse_tree(body, n, "Delete", &root);
    if (rc)
        return rc;
    size_t k = count(root, "Object");
    if (k == 0 || k > S3_DELETE_MAX_KEYS) {
        node_free(root);
        return S3_ERR_MALFORMED_XML;
    }
    xnode *q = child(root, "Quiet");
    if (q) {
        if (text_is(q, "true"))
            out->quiet = true;
        else if (!text_is(q, "false"))
            rc = S3_ERR_MALFORMED_XML;
    }
    out->objects = nb_xcalloc(k, sizeof *out->objects);
    for (xnode *c = root->child; c && !rc; c = c->next) {
        if (strcmp(c->name, "Object") != 0)
            continue;
        xnode *key = child(c, "Key"), *ver = child(c, "VersionId");
        if (!key || count(c, "Key") != 1) {
            rc = S3_ERR_MALFORMED_XML;
            break;
        }
        s3_delete_obj *o = &out->objects[out->n++];
        o->key = nb_xstrdup(text(key)); /* keys are taken verbatim */
        if (ver)
            o->version_id = trimmed(ver);
    }
    node_free(root);
    if (rc)
        s3_delete_req_free(out);
    return rc;
}

void s3_delete_req_free(s3_delete_req *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->objects[i].key);
        free(r->objects[i].version_id);
    }
    free(r->objects);
    memset(r, 0, sizeof *r);
}

/* ---- CompleteMultipartUpload ------------------------------------------- */

static char *unquote(xnode *n)
{
    char *s = trimmed(n);
    size_t len = strlen(s);
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        memmove(s, s + 1, len - 2);
        s[len - 2] = 0;
    } else if (len >= 12 && strncmp(s, "&quot;", 6) == 0) {
        /* Some clients double-escape the quotes. */
        if (strcmp(s + len - 6, "&quot;") == 0) {
            memmove(s, s + 6, len - 12);
            s[len - 12] = 0;
        }
    }
    return s;
}

int s3_parse_complete(const void *body, size_t n, s3_complete_req *out)
{
    memset(out, 0, sizeof *out);
    xnode *root;
    int rc = parse_tree(body, n, "CompleteMultipartUpload", &root);
    if (rc)
        return rc;
    size_t k = count(root, "Part");
    if (k == 0 || k > S3_MAX_PARTS) {
        node_free(root);
        return S3_ERR_MALFORMED_XML;
    }
    out->parts = nb_xcalloc(k, sizeof *out->parts);
    for (xnode *c = root->child; c && !rc; c = c->next) {
        if (strcmp(c->name, "Part") != 0)
            continue;
        xnode *num = child(c, "PartNumber"), *etag = child(c, "ETag");
        if (!num || !etag) {
            rc = S3_ERR_MALFORMED_XML;
            break;
        }
        int64_t v;
        if (parse_int(num, INT32_MIN, INT32_MAX, &v)) {
            rc = S3_ERR_MALFORMED_XML;
            break;
        }
        if (v < 1 || v > S3_MAX_PARTS) {
            rc = S3_ERR_INVALID_ARGUMENT;
            break;
        }
        if (out->n > 0 && (uint32_t)v <= out->parts[out->n - 1].number) {
            rc = S3_ERR_INVALID_PART_ORDER;
            break;
        }
        s3_complete_part *p = &out->parts[out->n++];
        p->number = (uint32_t)v;
        p->etag = unquote(etag);
    }
    node_free(root);
    if (rc)
        s3_complete_req_free(out);
    return rc;
}

void s3_complete_req_free(s3_complete_req *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->parts[i].etag);
    free(r->parts);
    memset(r, 0, sizeof *r);
}

/* ---- tagging ------------------------------------------------------------ */

static int tag_add(s3_tagset *t, size_t max, char *key, char *value)
{
    int rc = 0;
    size_t kc = utf8_chars(key);
    if (t->n >= max || kc < 1 || kc > S3_TAG_KEY_MAX || utf8_chars(value) > S3_TAG_VALUE_MAX ||
        strncasecmp(key, "aws:", 4) == 0)
        rc = S3_ERR_INVALID_TAG;
    for (size_t i = 0; i < t->n && !rc; i++)
        if (strcmp(t->tags[i].key, key) == 0)
            rc = S3_ERR_INVALID_TAG;
    if (rc) {
        free(key);
        free(value);
        return rc;
    }
    t->tags = nb_xrealloc(t->tags, (t->n + 1) * sizeof *t->tags);
    t->tags[t->n].key = key;
    t->tags[t->n].value = value;
    t->n++;
    return 0;
}

static int tagset_from(xnode *set, size_t max, s3_tagset *out)
{
    int rc = 0;
    for (xnode *c = set->child; c && !rc; c = c->next) {
        if (strcmp(c->name, "Tag") != 0)
            continue;
        xnode *k = child(c, "Key"), *v = child(c, "Value");
        if (!k || count(c, "Key") != 1 || count(c, "Value") > 1)
            return S3_ERR_MALFORMED_XML;
        rc = tag_add(out, max, nb_xstrdup(text(k)), nb_xstrdup(v ? text(v) : ""));
    }
    return rc;
}

int s3_parse_tagging(const void *body, size_t n, bool bucket, s3_tagset *out)
{
    memset(out, 0, sizeof *out);
    xnode *root;
    int rc = parse_tree(body, n, "Tagging", &root);
    if (rc)
        return rc;
    xnode *set = child(root, "TagSet");
    if (!set || count(root, "TagSet") != 1)
        rc = S3_ERR_MALFORMED_XML;
    else
        rc = tagset_from(set, bucket ? S3_BUCKET_TAGS_MAX : S3_OBJECT_TAGS_MAX, out);
    node_free(root);
    if (rc)
        s3_tagset_free(out);
    return rc;
}

int s3_parse_tagging_header(const char *value, s3_tagset *out)
{
    memset(out, 0, sizeof *out);
    s3_query q;
    int rc = s3_query_parse(value, &q);
    if (rc == S3_ERR_INVALID_URI)
        rc = S3_ERR_INVALID_TAG;
    for (size_t i = 0; i < q.n && !rc; i++)
        rc = tag_add(out, S3_OBJECT_TAGS_MAX, nb_xstrdup(q.params[i].name),
                     nb_xstrdup(q.params[i].value));
    s3_query_free(&q);
    if (rc)
        s3_tagset_free(out);
    return rc;
}

void s3_tagset_free(s3_tagset *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->tags[i].key);
        free(t->tags[i].value);
    }
    free(t->tags);
    memset(t, 0, sizeof *t);
}

int s3_xml_tagging(nb_buf *out, const s3_tagset *t)
{
    s3_xml x;
    s3_xml_begin(&x, out);
    s3_xml_open_ns(&x, "Tagging");
    s3_xml_open(&x, "TagSet");
    for (size_t i = 0; i < t->n; i++) {
        s3_xml_open(&x, "Tag");
        s3_xml_elem(&x, "Key", t->tags[i].key);
        s3_xml_elem(&x, "Value", t->tags[i].value);
        s3_xml_close(&x);
    }
    return s3_xml_end(&x);
}

/* ---- versioning --------------------------------------------------------- */

int s3_parse_versioning(const void *body, size_t n, s3_versioning *out)
{
    memset(out, 0, sizeof *out);
    xnode *root;
    int rc = parse_tree(body, n, "VersioningConfiguration", &root);
    if (rc)
        return rc;
    xnode *st = child(root, "Status"), *mfa = child(root, "MfaDelete");
    if (st) {
        if (text_is(st, "Enabled"))
            out->status = S3_VERSIONING_ENABLED;
        else if (text_is(st, "Suspended"))
            out->status = S3_VERSIONING_SUSPENDED;
        else
            rc = S3_ERR_MALFORMED_XML;
    }
    if (mfa && !rc) {
        if (text_is(mfa, "Enabled"))
            out->mfa_delete = true;
        else if (!text_is(mfa, "Disabled"))
            rc = S3_ERR_MALFORMED_XML;
    }
    node_free(root);
    return rc;
}

/* ---- CORS --------------------------------------------------------------- */

static void strlist_free(s3_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static void strlist_collect(xnode *n, const char *name, s3_strlist *l)
{
    size_t k = count(n, name);
    if (!k)
        return;
    l->v = nb_xcalloc(k, sizeof *l->v);
    for (xnode *c = n->child; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            l->v[l->n++] = trimmed(c);
}

static size_t stars(const char *s)
{
    size_t k = 0;
    for (; *s; s++)
        k += *s == '*';
    return k;
}

int s3_parse_cors(const void *body, size_t n, s3_cors *out)
{
    memset(out, 0, sizeof *out);
    xnode *root;
    int rc = parse_tree(body, n, "CORSConfiguration", &root);
    if (rc)
        return rc;
    size_t k = count(root, "CORSRule");
    if (k == 0 || k > S3_CORS_RULES_MAX) {
        node_free(root);
        return S3_ERR_MALFORMED_XML;
    }
    out->rules = nb_xcalloc(k, sizeof *out->rules);
    for (xnode *c = root->child; c && !rc; c = c->next) {
        if (strcmp(c->name, "CORSRule") != 0)
            continue;
        s3_cors_rule *r = &out->rules[out->n++];
        r->max_age = -1;
        xnode *id = child(c, "ID"), *age = child(c, "MaxAgeSeconds");
        if (id)
            r->id = trimmed(id);
        strlist_collect(c, "AllowedOrigin", &r->origins);
        strlist_collect(c, "AllowedMethod", &r->methods);
        strlist_collect(c, "AllowedHeader", &r->headers);
        strlist_collect(c, "ExposeHeader", &r->expose);
        if (r->origins.n == 0 || r->methods.n == 0 || (id && strlen(r->id) > 255))
            rc = S3_ERR_MALFORMED_XML;
        if (age && !rc && parse_int(age, 0, INT32_MAX, &r->max_age))
            rc = S3_ERR_MALFORMED_XML;
        static const char *const methods[] = {"GET", "PUT", "POST", "DELETE", "HEAD"};
        for (size_t i = 0; i < r->methods.n && !rc; i++) {
            bool ok = false;
            for (size_t j = 0; j < NB_ARRAY_LEN(methods); j++)
                ok |= strcmp(r->methods.v[i], methods[j]) == 0;
            if (!ok)
                rc = S3_ERR_INVALID_REQUEST;
        }
        for (size_t i = 0; i < r->origins.n && !rc; i++)
            if (stars(r->origins.v[i]) > 1)
                rc = S3_ERR_INVALID_REQUEST;
        for (size_t i = 0; i < r->headers.n && !rc; i++)
            if (stars(r->headers.v[i]) > 1)
                rc = S3_ERR_INVALID_REQUEST;
    }
    node_free(root);
    if (rc)
        s3_cors_free(out);
    return rc;
}

void s3_cors_free(s3_cors *c)
{
    for (size_t i = 0; i < c->n; i++) {
        s3_cors_rule *r = &c->rules[i];
        free(r->id);
        strlist_free(&r->origins);
        strlist_free(&r->methods);
        strlist_free(&r->headers);
        strlist_free(&r->expose);
    }
    free(c->rules);
    memset(c, 0, sizeof *c);
}

/* Matches s against a pattern with at most one '*' (any run of bytes). */
static bool wild_match(const char *pat, const char *s, size_t slen, bool nocase)
{
    const char *star = strchr(pat, '*');
    size_t plen = strlen(pat);
    if (!star)
        return plen == slen &&
               (nocase ? strncasecmp(pat, s, slen) == 0 : memcmp(pat, s, slen) == 0);
    size_t pre = (size_t)(star - pat), post = plen - pre - 1;
    if (slen < pre + post)
        return false;
    if (nocase)
        return strncasecmp(pat, s, pre) == 0 && strncasecmp(star + 1, s + slen - post, post) == 0;
    return memcmp(pat, s, pre) == 0 && memcmp(star + 1, s + slen - post, post) == 0;
}

const s3_cors_rule *s3_cors_match(const s3_cors *c, const char *origin, const char *method,
                                  const char *req_headers)
{
    for (size_t i = 0; i < c->n; i++) {
        const s3_cors_rule *r = &c->rules[i];
        bool ok = false;
        for (size_t j = 0; j < r->origins.n && !ok; j++)
            ok = wild_match(r->origins.v[j], origin, strlen(origin), false);
        if (!ok)
            continue;
        ok = false;
        for (size_t j = 0; j < r->methods.n && !ok; j++)
            ok = strcmp(r->methods.v[j], method) == 0;
        if (!ok)
            continue;
        /* Every requested header must be allowed. */
        const char *p = req_headers ? req_headers : "";
        bool all = true;
        while (*p && all) {
            while (*p == ' ' || *p == ',')
                p++;
            const char *e = p;
            while (*e && *e != ',')
                e++;
            const char *t = e;
            while (t > p && t[-1] == ' ')
                t--;
            if (t > p) {
                bool allowed = false;
                for (size_t j = 0; j < r->headers.n && !allowed; j++)
                    allowed = wild_match(r->headers.v[j], p, (size_t)(t - p), true);
                all = allowed;
            }
            p = e;
        }
        if (all)
            return r;
    }
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

static int lc_filter(xnode *f, s3_lifecycle_rule *r)
{
    xnode *pre = child(f, "Prefix"), *tag = child(f, "Tag"), *and = child(f, "And");
    xnode *gt = child(f, "ObjectSizeGreaterThan"), *lt = child(f, "ObjectSizeLessThan");
    int forms = !!pre + !!tag + !!and+(gt || lt);
    if (forms > 1 || count(f, "Tag") > 1)
        return S3_ERR_MALFORMED_XML;
    int rc = 0;
    if (pre)
        r->prefix = nb_xstrdup(text(pre));
    if (tag) {
        rc = tagset_from(f, S3_OBJECT_TAGS_MAX, &r->tags);
    }
    xnode *sizes = and? and : f;
    if (and) {
        xnode *ap = child(and, "Prefix");
        if (ap)
            r->prefix = nb_xstrdup(text(ap));
        rc = tagset_from(and, S3_OBJECT_TAGS_MAX, &r->tags);
    }
    gt = child(sizes, "ObjectSizeGreaterThan");
    lt = child(sizes, "ObjectSizeLessThan");
    if (!rc && gt && parse_int(gt, 0, INT64_MAX, &r->size_gt))
        rc = S3_ERR_INVALID_ARGUMENT;
    if (!rc && lt && parse_int(lt, 1, INT64_MAX, &r->size_lt))
        rc = S3_ERR_INVALID_ARGUMENT;
    if (!rc && gt && lt && r->size_gt >= r->size_lt)
        rc = S3_ERR_INVALID_ARGUMENT;
    return rc;
}

static int lc_days(xnode *n, int32_t *out)
{
    int64_t v;
    if (parse_int(n, INT32_MIN, INT32_MAX, &v))
        return S3_ERR_MALFORMED_XML;
    if (v < 1)
        return S3_ERR_INVALID_ARGUMENT;
    *out = (int32_t)v;
    return 0;
}

static int lc_rule(xnode *c, s3_lifecycle_rule *r)
{
    r->size_gt = r->size_lt = -1;
    r->expiration_days = r->noncurrent_days = r->newer_noncurrent = r->abort_upload_days = -1;
    r->expiration_date = -1;
    xnode *id = child(c, "ID"), *st = child(c, "Status"), *f = child(c, "Filter");
    xnode *legacy = child(c, "Prefix");
    r->id = id ? trimmed(id) : nb_xstrdup("");
    if (strlen(r->id) > 255)
        return S3_ERR_INVALID_ARGUMENT;
    if (!st)
        return S3_ERR_MALFORMED_XML;
    if (text_is(st, "Enabled"))
        r->enabled = true;
    else if (!text_is(st, "Disabled"))
        return S3_ERR_MALFORMED_XML;
    if (f && legacy)
        return S3_ERR_MALFORMED_XML;
    int rc = 0;
    if (f)
        rc = lc_filter(f, r);
    else if (legacy)
        r->prefix = nb_xstrdup(text(legacy));
    if (rc)
        return rc;
    if (!r->prefix)
        r->prefix = nb_xstrdup("");
    int actions = 0;
    xnode *e = child(c, "Expiration");
    if (e) {
        actions++;
        xnode *d = child(e, "Days"), *dt = child(e, "Date"),
              *dm = child(e, "ExpiredObjectDeleteMarker");
        if (!!d + !!dt + !!dm != 1)
            return S3_ERR_MALFORMED_XML;
        if (d && (rc = lc_days(d, &r->expiration_days)))
            return rc;
        if (dt) {
            char *s = trimmed(dt);
            int bad = s3_iso8601_parse(s, &r->expiration_date);
            free(s);
            if (bad || r->expiration_date % 86400 != 0)
                return S3_ERR_INVALID_ARGUMENT;
        }
        if (dm) {
            if (text_is(dm, "true"))
                r->expired_delete_marker = true;
            else if (!text_is(dm, "false"))
                return S3_ERR_MALFORMED_XML;
            if (r->tags.n)
                return S3_ERR_INVALID_ARGUMENT;
        }
    }
    xnode *nve = child(c, "NoncurrentVersionExpiration");
    if (nve) {
        actions++;
        xnode *d = child(nve, "NoncurrentDays"), *k = child(nve, "NewerNoncurrentVersions");
        if (!d)
            return S3_ERR_MALFORMED_XML;
        if ((rc = lc_days(d, &r->noncurrent_days)))
            return rc;
        if (k && (rc = lc_days(k, &r->newer_noncurrent)))
            return rc;
    }
    xnode *ab = child(c, "AbortIncompleteMultipartUpload");
    if (ab) {
        actions++;
        xnode *d = child(ab, "DaysAfterInitiation");
        if (!d)
            return S3_ERR_MALFORMED_XML;
        if ((rc = lc_days(d, &r->abort_upload_days)))
            return rc;
        if (r->tags.n)
            return S3_ERR_INVALID_ARGUMENT;
    }
    if (child(c, "Transition") || child(c, "NoncurrentVersionTransition")) {
        actions++;
        r->has_transition = true;
    }
    if (actions == 0)
        return S3_ERR_INVALID_REQUEST; /* "At least one action needs to be specified" */
    return 0;
}

int s3_parse_lifecycle(const void *body, size_t n, s3_lifecycle *out)
{
    memset(out, 0, sizeof *out);
    xnode *root;
    int rc = parse_tree(body, n, "LifecycleConfiguration", &root);
    if (rc)
        return rc;
    size_t k = count(root, "Rule");
    if (k == 0 || k > S3_LIFECYCLE_RULES_MAX) {
        node_free(root);
        return S3_ERR_MALFORMED_XML;
    }
    out->rules = nb_xcalloc(k, sizeof *out->rules);
    for (xnode *c = root->child; c && !rc; c = c->next) {
        if (strcmp(c->name, "Rule") != 0)
            continue;
        s3_lifecycle_rule *r = &out->rules[out->n++];
        rc = lc_rule(c, r);
        for (size_t i = 0; i + 1 < out->n && !rc; i++)
            if (r->id[0] && strcmp(out->rules[i].id, r->id) == 0)
                rc = S3_ERR_INVALID_ARGUMENT; /* "Rule ID must be unique" */
    }
    node_free(root);
    if (rc)
        s3_lifecycle_free(out);
    return rc;
}

void s3_lifecycle_free(s3_lifecycle *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->rules[i].id);
        free(l->rules[i].prefix);
        s3_tagset_free(&l->rules[i].tags);
    }
    free(l->rules);
    memset(l, 0, sizeof *l);
}

/* ---- AccessControlPolicy (PutBucketAcl) --------------------------------- */

int s3_parse_acl(const void *body, size_t n, const char *owner_id, s3_acl *out)
{
    static const char *const all_users = "http://acs.amazonaws.com/groups/global/AllUsers";
    *out = S3_ACL_PRIVATE;
    xnode *root;
    int rc = parse_tree(body, n, "AccessControlPolicy", &root);
    if (rc)
        return rc;
    xnode *owner = child(root, "Owner"), *list = child(root, "AccessControlList");
    if (!list)
        rc = S3_ERR_MALFORMED_XML;
    if (!rc && owner) {
        xnode *id = child(owner, "ID");
        char *v = id ? trimmed(id) : NULL;
        /* The owner cannot be changed by an ACL. */
        if (!v || strcmp(v, owner_id ? owner_id : "") != 0)
            rc = S3_ERR_ACCESS_DENIED;
        free(v);
    }
    bool owner_full = false, public_read = false;
    for (xnode *g = list && !rc ? list->child : NULL; g && !rc; g = g->next) {
        if (strcmp(g->name, "Grant") != 0)
            continue;
        xnode *grantee = child(g, "Grantee"), *perm = child(g, "Permission");
        if (!grantee || !perm) {
            rc = S3_ERR_MALFORMED_XML;
            break;
        }
        char *p = trimmed(perm);
        xnode *id = child(grantee, "ID"), *uri = child(grantee, "URI");
        char *who = id ? trimmed(id) : uri ? trimmed(uri) : NULL;
        if (strcmp(p, "FULL_CONTROL") != 0 && strcmp(p, "READ") != 0 && strcmp(p, "WRITE") != 0 &&
            strcmp(p, "READ_ACP") != 0 && strcmp(p, "WRITE_ACP") != 0)
            rc = S3_ERR_MALFORMED_XML;
        else if (id && strcmp(who, owner_id ? owner_id : "") == 0 && strcmp(p, "FULL_CONTROL") == 0)
            owner_full = true;
        else if (!id && uri && strcmp(who, all_users) == 0 && strcmp(p, "READ") == 0)
            public_read = true;
        else
            rc = S3_ERR_NOT_IMPLEMENTED; /* a grant the gateway cannot keep */
        free(p);
        free(who);
    }
    /* Without FULL_CONTROL for the owner the policy is one the gateway
     * cannot keep either (the owner always has it here). */
    if (!rc && !owner_full)
        rc = S3_ERR_NOT_IMPLEMENTED;
    if (!rc)
        *out = public_read ? S3_ACL_PUBLIC_READ : S3_ACL_PRIVATE;
    node_free(root);
    return rc;
}
