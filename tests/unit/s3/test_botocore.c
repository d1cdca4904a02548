/* Differential test against a real client: every request in
 * botocore_vectors.h was signed by boto3/botocore (gen_botocore_vectors.py)
 * and must authenticate, its payload must verify (signed SHA-256,
 * aws-chunked with trailing checksum, x-amz-checksum-*, Content-MD5), and
 * the same request with the key changed must not. */
#include "s3/s3.h"

#include "botocore_vectors.h"
#include "test.h"

#define AK     "AKIAIOSFODNN7EXAMPLE"
#define SK     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define DOMAIN "s3.example.com"

static int secret_fn(void *ctx, const char *ak, char *sk, size_t cap)
{
    (void)ctx;
    if (strcmp(ak, AK) != 0)
        return NB_ENOTFOUND;
    snprintf(sk, cap, "%s", SK);
    return 0;
}

/* The time the request was signed, so skew and expiry pass. */
static int64_t signed_at(const s3_http_req *r)
{
    int64_t t = 0;
    const char *d = s3_req_header(r, "x-amz-date");
    if (d && s3_iso8601_basic_parse(d, &t) == 0)
        return t;
    d = s3_req_header(r, "date");
    if (d && s3_http_date_parse(d, &t) == 0)
        return t;
    s3_query q;
    assert_int_equal(s3_query_parse(r->query, &q), 0);
    const char *xd = s3_query_get(&q, "X-Amz-Date"), *exp = s3_query_get(&q, "Expires");
    if (xd)
        assert_int_equal(s3_iso8601_basic_parse(xd, &t), 0);
    else if (exp)
        t = strtoll(exp, NULL, 10) - 60;
    s3_query_free(&q);
    return t;
}

typedef struct collect {
    nb_buf data;
} collect;

static int collect_fn(void *ctx, const uint8_t *p, size_t n)
{
    collect *c = ctx;
    return nb_buf_append(&c->data, p, n);
}

static void check_payload(const bv_vector *v, const s3_http_req *r, const s3_auth *a)
{
    const uint8_t *body = (const uint8_t *)v->body;
    size_t len = v->body_len;
    collect col = {NB_BUF_INIT};
    s3_chunked *c = NULL;
    if (a->payload == S3_PAYLOAD_STREAMING || a->payload == S3_PAYLOAD_STREAMING_TRAILER ||
        a->payload == S3_PAYLOAD_STREAMING_UNSIGNED) {
        const char *dl = s3_req_header(r, "x-amz-decoded-content-length");
        ASSERT_OK(s3_chunked_new(a, dl ? strtoll(dl, NULL, 10) : -1, &c));
        for (size_t off = 0; off < len; off += 333)
            ASSERT_OK(s3_chunked_feed(c, body + off, len - off < 333 ? len - off : 333, collect_fn,
                                      &col));
        ASSERT_OK(s3_chunked_finish(c));
        body = col.data.data;
        len = col.data.len;
        assert_true(len > 0);
    }
    uint8_t d[S3_DIGEST_MAX];
    if (a->payload == S3_PAYLOAD_SHA256) {
        s3_digest_once(S3_DIGEST_SHA256, body ? (const void *)body : "", len, d);
        ASSERT_OK(s3_auth_payload_check(a, d));
    }
    s3_checksum ck;
    ASSERT_OK(s3_checksum_from_req(r, &ck));
    if (ck.present && (ck.expected[0] || ck.trailer)) {
        s3_digest_once(ck.alg, body ? (const void *)body : "", len, d);
        const char *tv = c ? s3_chunked_trailer(c, ck.header) : NULL;
        ASSERT_OK(s3_checksum_verify(&ck, d, tv, NULL));
    }
    const char *md5h = s3_req_header(r, "content-md5");
    if (md5h) {
        uint8_t want[16];
        ASSERT_OK(s3_content_md5_parse(md5h, want));
        s3_digest_once(S3_DIGEST_MD5, body ? (const void *)body : "", len, d);
        assert_memory_equal(want, d, 16);
    }
    s3_chunked_free(c);
    nb_buf_free(&col.data);
}

/* The operation a vector's name stands for (see gen_botocore_vectors.py). */
static const char *expected_op(const char *name)
{
    static const struct {
        const char *frag, *op;
    } map[] = {
        {"presigned get", "GetObject"},
        {"presigned put", "PutObject"},
        {"presigned", "GetObject"},
        {"put tagged", "PutObject"},
        {" put ", "PutObject"},
        {" get ", "GetObject"},
        {"list v1", "ListObjects"},
        {"list buckets", "ListBuckets"},
        {"list versions", "ListObjectVersions"},
        {"list uploads", "ListMultipartUploads"},
        {"list parts", "ListParts"},
        {" list", "ListObjects"},
        {"copy", "CopyObject"},
        {"head bucket", "HeadBucket"},
        {"delete objects", "DeleteObjects"},
        {"create mpu", "CreateMultipartUpload"},
        {"upload part", "UploadPart"},
        {"complete", "CompleteMultipartUpload"},
        {"v2 path tagging", "GetObjectTagging"},
        {"v2 virtual tagging", "GetObjectTagging"},
        {"tagging", "PutObjectTagging"},
        {"versioning", "PutBucketVersioning"},
        {"lifecycle", "GetBucketLifecycleConfiguration"},
        {"chunked", "PutObject"},
    };
    for (size_t i = 0; i < NB_ARRAY_LEN(map); i++)
        if (strstr(name, map[i].frag))
            return strcmp(map[i].op, "ListObjects") == 0 && strncmp(name, "v4", 2) == 0 &&
                           !strstr(name, "list v1")
                       ? "ListObjectsV2"
                       : map[i].op;
    return "?";
}

static void test_botocore_requests(void **state)
{
    (void)state;
    size_t v4 = 0, v2 = 0, presigned = 0, chunked = 0, vhost = 0;
    for (size_t i = 0; i < NB_ARRAY_LEN(bv_vectors); i++) {
        const bv_vector *v = &bv_vectors[i];
        s3_http_req r = {v->method, v->path, v->query, v->h, v->nh, NULL};
        const char *host = s3_req_header(&r, "host");
        s3_target t;
        int rc = s3_target_parse(host, v->path, DOMAIN, &t);
        if (rc)
            fail_msg("%s: target: %s", v->name, nb_errname(rc));
        assert_string_equal(t.bucket, strstr(v->name, "list buckets") ? "" : "bkt");
        r.vhost_bucket = t.vhost ? t.bucket : NULL;
        int64_t now = signed_at(&r);
        s3_auth a;
        rc = s3_auth_check(&r, secret_fn, NULL, now, &a);
        if (rc)
            fail_msg("%s: %s (%s)", v->name, nb_errname(rc), s3_error_of(rc)->code);
        check_payload(v, &r, &a);
        v4 += a.version == 4;
        v2 += a.version == 2;
        presigned += a.presigned;
        chunked += a.payload == S3_PAYLOAD_STREAMING_UNSIGNED;
        vhost += t.vhost;

        /* It routes to the operation the client called. */
        s3_query q;
        s3_op op;
        ASSERT_OK(s3_query_parse(v->query, &q));
        rc = s3_route(&r, &t, &q, &op);
        s3_query_free(&q);
        if (rc)
            fail_msg("%s: route: %s", v->name, s3_error_of(rc)->code);
        const char *want = expected_op(v->name);
        if (strcmp(s3_op_name(op), want) != 0)
            fail_msg("%s: routed to %s, want %s", v->name, s3_op_name(op), want);

        /* The same request for another key must fail. */
        char *other = nb_xasprintf("%sX", v->path);
        r.path = other;
        rc = s3_auth_check(&r, secret_fn, NULL, now, &a);
        if (rc != S3_ERR_SIGNATURE_DOES_NOT_MATCH)
            fail_msg("%s: changed path gave %s", v->name, nb_errname(rc));
        free(other);
    }
    fprintf(stderr,
            "%zu requests: %zu SigV4, %zu SigV2, %zu presigned, %zu aws-chunked, "
            "%zu virtual-hosted\n",
            NB_ARRAY_LEN(bv_vectors), v4, v2, presigned, chunked, vhost);
    assert_true(v4 > 0 && v2 > 0 && presigned > 0 && chunked > 0 && vhost > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_botocore_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
