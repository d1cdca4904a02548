/*
 * route.c — which S3 operation a request is, and the arguments of the
 * operations that need parsing before the namespace is touched
 * (copy source, copy range, listing parameters, part sizes).
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "s3/s3_int.h"

static const char *const op_names[] = {
#define S3__OP_NAME(name, str) str,
    S3_OP_MAP(S3__OP_NAME)
#undef S3__OP_NAME
};

const char *s3_op_name(s3_op op)
{
    return (unsigned)op < S3_OP_COUNT ? op_names[op] : "?";
}

/* Sub-resources of real S3 that the gateway does not implement: a request
 * carrying one answers NotImplemented instead of being mistaken for a
 * plain GET/PUT (which could, say, overwrite an object with an ACL). */
static const char *const unsupported[] = {
    "accelerate",
    "analytics",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "torrent",
    "website",
    "attributes",
    "session",
};

static bool has(const s3_query *q, const char *name)
{
    return s3_query_get(q, name) != NULL;
}

static bool is(const char *m, const char *want)
{
    return strcmp(m, want) == 0;
}

static int route_bucket(const char *m, const s3_query *q, s3_op *out)
{
    struct {
        const char *sub;
        s3_op put, get, del;
    } subs[] = {
        {"tagging", S3_OP_PUT_BUCKET_TAGGING, S3_OP_GET_BUCKET_TAGGING,
         S3_OP_DELETE_BUCKET_TAGGING},
        {"cors", S3_OP_PUT_BUCKET_CORS, S3_OP_GET_BUCKET_CORS, S3_OP_DELETE_BUCKET_CORS},
        {"lifecycle", S3_OP_PUT_BUCKET_LIFECYCLE, S3_OP_GET_BUCKET_LIFECYCLE,
         S3_OP_DELETE_BUCKET_LIFECYCLE},
        {"versioning", S3_OP_PUT_BUCKET_VERSIONING, S3_OP_GET_BUCKET_VERSIONING, S3_OP_COUNT},
        {"location", S3_OP_COUNT, S3_OP_GET_BUCKET_LOCATION, S3_OP_COUNT},
        {"acl", S3_OP_PUT_BUCKET_ACL, S3_OP_GET_BUCKET_ACL, S3_OP_COUNT},
    };
    for (size_t i = 0; i < NB_ARRAY_LEN(subs); i++) {
        if (!has(q, subs[i].sub))
            continue;
        s3_op op = is(m, "PUT")      ? subs[i].put
                   : is(m, "GET")    ? subs[i].get
                   : is(m, "DELETE") ? subs[i].del
                                     : S3_OP_COUNT;
        if (op == S3_OP_COUNT)
            return S3_ERR_METHOD_NOT_ALLOWED;
        *out = op;
        return 0;
    }
    if (is(m, "GET")) {
        if (has(q, "versions"))
            *out = S3_OP_LIST_OBJECT_VERSIONS;
        else if (has(q, "uploads"))
            *out = S3_OP_LIST_MULTIPART_UPLOADS;
        else if (s3_query_get(q, "list-type") && strcmp(s3_query_get(q, "list-type"), "2") == 0)
            *out = S3_OP_LIST_OBJECTS_V2;
        else
            *out = S3_OP_LIST_OBJECTS;
    } else if (is(m, "PUT")) {
        *out = S3_OP_CREATE_BUCKET;
    } else if (is(m, "DELETE")) {
        *out = S3_OP_DELETE_BUCKET;
    } else if (is(m, "HEAD")) {
        *out = S3_OP_HEAD_BUCKET;
    } else if (is(m, "POST")) {
        if (!has(q, "delete"))
            return S3_ERR_NOT_IMPLEMENTED; /* browser POST uploads */
        *out = S3_OP_DELETE_OBJECTS;
    } else {
        return S3_ERR_METHOD_NOT_ALLOWED;
    }
    return 0;
}

static int route_object(const s3_http_req *req, const char *m, const s3_query *q, s3_op *out)
{
    bool upload = has(q, "uploadId");
    if (has(q, "acl")) {
        if (is(m, "PUT"))
            *out = S3_OP_PUT_OBJECT_ACL;
        else if (is(m, "GET"))
            *out = S3_OP_GET_OBJECT_ACL;
        else
            return S3_ERR_METHOD_NOT_ALLOWED;
        return 0;
    }
    if (has(q, "tagging")) {
        if (is(m, "PUT"))
            *out = S3_OP_PUT_OBJECT_TAGGING;
        else if (is(m, "GET"))
            *out = S3_OP_GET_OBJECT_TAGGING;
        else if (is(m, "DELETE"))
            *out = S3_OP_DELETE_OBJECT_TAGGING;
        else
            return S3_ERR_METHOD_NOT_ALLOWED;
        return 0;
    }
    if (is(m, "PUT")) {
        bool copy = s3_req_header(req, "x-amz-copy-source") != NULL;
        if (upload || has(q, "partNumber")) {
            if (!upload || !has(q, "partNumber"))
                return S3_ERR_INVALID_ARGUMENT;
            *out = copy ? S3_OP_UPLOAD_PART_COPY : S3_OP_UPLOAD_PART;
        } else {
            *out = copy ? S3_OP_COPY_OBJECT : S3_OP_PUT_OBJECT;
        }
    } else if (is(m, "GET")) {
        *out = upload ? S3_OP_LIST_PARTS : S3_OP_GET_OBJECT;
    } else if (is(m, "HEAD")) {
        *out = S3_OP_HEAD_OBJECT;
    } else if (is(m, "DELETE")) {
        *out = upload ? S3_OP_ABORT_MULTIPART_UPLOAD : S3_OP_DELETE_OBJECT;
    } else if (is(m, "POST")) {
        if (has(q, "uploads"))
            *out = S3_OP_CREATE_MULTIPART_UPLOAD;
        else if (upload)
            *out = S3_OP_COMPLETE_MULTIPART_UPLOAD;
        else
            return S3_ERR_NOT_IMPLEMENTED;
    } else {
        return S3_ERR_METHOD_NOT_ALLOWED;
    }
    return 0;
}

int s3_route(const s3_http_req *req, const s3_target *t, const s3_query *q, s3_op *out)
{
    const char *m = req->method ? req->method : "";
    *out = S3_OP_COUNT;
    if (is(m, "OPTIONS")) {
        if (!t->bucket[0])
            return S3_ERR_METHOD_NOT_ALLOWED;
        *out = S3_OP_CORS_PREFLIGHT;
        return 0;
    }
    for (size_t i = 0; i < NB_ARRAY_LEN(unsupported); i++)
        if (has(q, unsupported[i]))
            return S3_ERR_NOT_IMPLEMENTED;
    if (!t->bucket[0]) {
        if (!is(m, "GET"))
            return S3_ERR_METHOD_NOT_ALLOWED;
        *out = S3_OP_LIST_BUCKETS;
        return 0;
    }
    return t->key_len ? route_object(req, m, q, out) : route_bucket(m, q, out);
}

/* ---- copy source -------------------------------------------------------- */

int s3_copy_source_parse(const char *header, s3_copy_source *out)
{
    memset(out, 0, sizeof *out);
    if (!header || !*header)
        return S3_ERR_INVALID_ARGUMENT;
    const char *p = header[0] == '/' ? header + 1 : header;
    const char *qm = strchr(p, '?');
    size_t plen = qm ? (size_t)(qm - p) : strlen(p);
    char *dec = nb_xmalloc(plen + 1);
    long n = s3_uri_decode(p, plen, false, dec, plen + 1);
    int rc = 0;
    char *slash = n > 0 ? strchr(dec, '/') : NULL;
    if (n <= 0 || !slash || slash == dec || !slash[1]) {
        rc = S3_ERR_INVALID_ARGUMENT;
    } else if ((size_t)(slash - dec) > S3_BUCKET_NAME_MAX) {
        rc = S3_ERR_INVALID_BUCKET_NAME;
    } else if (strlen(slash + 1) > S3_KEY_MAX) {
        rc = S3_ERR_KEY_TOO_LONG;
    } else {
        memcpy(out->bucket, dec, (size_t)(slash - dec));
        strcpy(out->key, slash + 1);
    }
    free(dec);
    if (!rc && qm) {
        s3_query q;
        rc = s3_query_parse(qm + 1, &q);
        const char *v = rc ? NULL : s3_query_get(&q, "versionId");
        if (rc || q.n != 1 || !v || !*v || strlen(v) >= sizeof out->version_id)
            rc = S3_ERR_INVALID_ARGUMENT;
        else
            strcpy(out->version_id, v);
        s3_query_free(&q);
    }
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

static bool digits_u64(const char *s, size_t n, uint64_t *out)
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

int s3_copy_range_parse(const char *header, uint64_t size, s3_range *out)
{
    memset(out, 0, sizeof *out);
    if (!header || strncmp(header, "bytes=", 6) != 0)
        return S3_ERR_INVALID_ARGUMENT;
    const char *a = header + 6, *dash = strchr(a, '-');
    uint64_t s, e;
    if (!dash || !digits_u64(a, (size_t)(dash - a), &s) ||
        !digits_u64(dash + 1, strlen(dash + 1), &e) || e < s)
        return S3_ERR_INVALID_ARGUMENT;
    if (e >= size)
        return S3_ERR_INVALID_RANGE;
    out->partial = true;
    out->start = s;
    out->end = e;
    return 0;
}

/* ---- listing arguments -------------------------------------------------- */

static int max_arg(const s3_query *q, const char *name, uint32_t *out)
{
    const char *v = s3_query_get(q, name);
    *out = 1000;
    if (!v)
        return 0;
    uint64_t n;
    if (!digits_u64(v, strlen(v), &n))
        return S3_ERR_INVALID_ARGUMENT;
    *out = n > 1000 ? 1000 : (uint32_t)n;
    return 0;
}

void s3_continuation_token(const char *key, char *out)
{
    s3_base64_encode((const uint8_t *)key, strlen(key), out);
}

int s3_list_args_parse(s3_op op, const s3_query *q, s3_list_args *out)
{
    memset(out, 0, sizeof *out);
    out->prefix = s3_query_get(q, "prefix");
    if (!out->prefix)
        out->prefix = "";
    out->delimiter = s3_query_get(q, "delimiter");
    if (out->delimiter && !*out->delimiter)
        out->delimiter = NULL;
    const char *enc = s3_query_get(q, "encoding-type");
    if (enc) {
        if (strcmp(enc, "url") != 0)
            return S3_ERR_INVALID_ARGUMENT; /* "Invalid Encoding Method specified in Request" */
        out->url_encode = true;
    }
    int rc = 0;
    switch (op) {
    case S3_OP_LIST_OBJECTS:
        out->marker = s3_query_get(q, "marker");
        rc = max_arg(q, "max-keys", &out->max_keys);
        break;
    case S3_OP_LIST_OBJECTS_V2: {
        out->marker = s3_query_get(q, "start-after");
        const char *fo = s3_query_get(q, "fetch-owner");
        out->fetch_owner = fo && strcmp(fo, "true") == 0;
        rc = max_arg(q, "max-keys", &out->max_keys);
        const char *tok = s3_query_get(q, "continuation-token");
        if (!rc && tok) {
            size_t n = strlen(tok);
            out->continuation = nb_xmalloc(n + 1);
            long d = s3_base64_decode(tok, n, (uint8_t *)out->continuation, n);
            if (d < 0 || memchr(out->continuation, 0, (size_t)d)) {
                rc = S3_ERR_INVALID_ARGUMENT; /* "The continuation token provided is incorrect" */
            } else {
                out->continuation[d] = 0;
            }
        }
        break;
    }
    case S3_OP_LIST_OBJECT_VERSIONS:
        out->marker = s3_query_get(q, "key-marker");
        out->version_marker = s3_query_get(q, "version-id-marker");
        rc = max_arg(q, "max-keys", &out->max_keys);
        break;
    case S3_OP_LIST_MULTIPART_UPLOADS:
        out->marker = s3_query_get(q, "key-marker");
        out->version_marker = s3_query_get(q, "upload-id-marker");
        rc = max_arg(q, "max-uploads", &out->max_keys);
        break;
    case S3_OP_LIST_PARTS: {
        rc = max_arg(q, "max-parts", &out->max_keys);
        const char *pm = s3_query_get(q, "part-number-marker");
        uint64_t v = 0;
        if (!rc && pm && (!digits_u64(pm, strlen(pm), &v) || v > S3_MAX_PARTS))
            rc = S3_ERR_INVALID_ARGUMENT;
        out->part_marker = (uint32_t)v;
        break;
    }
    default:
        rc = NB_EUSAGE;
    }
    if (rc)
        s3_list_args_free(out);
    return rc;
}

void s3_list_args_free(s3_list_args *a)
{
    free(a->continuation);
    memset(a, 0, sizeof *a);
}

int s3_parts_size_check(const uint64_t *sizes, size_t n)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && sizes[i] < S3_MIN_PART_SIZE)
            return S3_ERR_ENTITY_TOO_SMALL;
        if (sizes[i] > S3_MAX_PUT_SIZE)
            return S3_ERR_ENTITY_TOO_LARGE;
        total += sizes[i];
        if (total > S3_MAX_OBJECT)
            return S3_ERR_ENTITY_TOO_LARGE;
    }
    return 0;
}

/* ---- canned ACLs -------------------------------------------------------- */

static const char *const acl_names[] = {
    "private",           "public-read",
    "public-read-write", "authenticated-read",
    "bucket-owner-read", "bucket-owner-full-control",
};

const char *s3_acl_name(s3_acl acl)
{
    return (unsigned)acl < NB_ARRAY_LEN(acl_names) ? acl_names[acl] : "?";
}

int s3_acl_from_req(const s3_http_req *req, s3_acl *out)
{
    static const char *const grants[] = {"x-amz-grant-read", "x-amz-grant-write",
                                         "x-amz-grant-read-acp", "x-amz-grant-write-acp",
                                         "x-amz-grant-full-control"};
    *out = S3_ACL_PRIVATE;
    for (size_t i = 0; i < NB_ARRAY_LEN(grants); i++)
        if (s3_req_header(req, grants[i]))
            return S3_ERR_NOT_IMPLEMENTED;
    const char *v = s3_req_header(req, "x-amz-acl");
    if (!v)
        return 0;
    for (size_t i = 0; i < NB_ARRAY_LEN(acl_names); i++) {
        if (strcmp(v, acl_names[i]) == 0) {
            *out = (s3_acl)i;
            return 0;
        }
    }
    return S3_ERR_INVALID_ARGUMENT;
}

static void grant(s3_xml *x, const s3_owner *owner, const char *group, const char *perm)
{
    s3_xml_open(x, "Grant");
    if (group) {
        nb_buf *out = x->out;
        if (!x->rc)
            x->rc = nb_buf_append_str(out, "<Grantee xmlns:xsi=\"http://www.w3.org/2001/"
                                           "XMLSchema-instance\" xsi:type=\"Group\">");
        s3_xml_elem(x, "URI", group);
        if (!x->rc)
            x->rc = nb_buf_append_str(out, "</Grantee>");
    } else {
        nb_buf *out = x->out;
        if (!x->rc)
            x->rc = nb_buf_append_str(out, "<Grantee xmlns:xsi=\"http://www.w3.org/2001/"
                                           "XMLSchema-instance\" xsi:type=\"CanonicalUser\">");
        s3_xml_elem(x, "ID", owner && owner->id ? owner->id : "");
        s3_xml_elem(x, "DisplayName", owner && owner->display_name ? owner->display_name : "");
        if (!x->rc)
            x->rc = nb_buf_append_str(out, "</Grantee>");
    }
    s3_xml_elem(x, "Permission", perm);
    s3_xml_close(x);
}

int s3_xml_acl(nb_buf *out, const s3_owner *owner, s3_acl acl)
{
    static const char *const all_users = "http://acs.amazonaws.com/groups/global/AllUsers";
    static const char *const auth_users =
        "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
    s3_xml x;
    s3_xml_begin(&x, out);
    s3_xml_open_ns(&x, "AccessControlPolicy");
    s3_xml_open(&x, "Owner");
    s3_xml_elem(&x, "ID", owner && owner->id ? owner->id : "");
    s3_xml_elem(&x, "DisplayName", owner && owner->display_name ? owner->display_name : "");
    s3_xml_close(&x);
    s3_xml_open(&x, "AccessControlList");
    grant(&x, owner, NULL, "FULL_CONTROL");
    if (acl == S3_ACL_PUBLIC_READ || acl == S3_ACL_PUBLIC_READ_WRITE)
        grant(&x, owner, all_users, "READ");
    if (acl == S3_ACL_PUBLIC_READ_WRITE)
        grant(&x, owner, all_users, "WRITE");
    if (acl == S3_ACL_AUTHENTICATED_READ)
        grant(&x, owner, auth_users, "READ");
    return s3_xml_end(&x);
}
