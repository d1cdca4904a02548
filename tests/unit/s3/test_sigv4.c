/* SigV4: the published AWS examples (header, presigned, chunked upload),
 * byte flips anywhere, clock skew, expiry, the chunked decoder fed in
 * arbitrary pieces, trailers. */
#include "s3/s3_int.h"

#include "test.h"

#define AK    "AKIAIOSFODNN7EXAMPLE"
#define SK    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define NOW   1369353600 /* 2013-05-24T00:00:00Z */
#define EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static int secret_fn(void *ctx, const char *ak, char *sk, size_t cap)
{
    (void)ctx;
    if (strcmp(ak, AK) != 0)
        return NB_ENOTFOUND;
    snprintf(sk, cap, "%s", SK);
    return 0;
}

static int check(const s3_http_req *r, int64_t now, s3_auth *a)
{
    return s3_auth_check(r, secret_fn, NULL, now, a);
}

/* Flips one bit of each byte of every header value, the path, the query
 * and the method in turn: every flip must fail authentication. */
static void flip_everything(s3_http_req *r, int64_t now)
{
    s3_auth a;
    size_t nh = r->n_headers;
    s3_header *h = (s3_header *)r->headers;
    for (size_t i = 0; i < nh; i++) {
        char *v = nb_xstrdup(h[i].value);
        const char *orig = h[i].value;
        h[i].value = v;
        for (size_t j = 0; v[j]; j++) {
            v[j] ^= 1;
            int rc = check(r, now, &a);
            if (rc == 0)
                fail_msg("flip of byte %zu of header %s (%s) still authenticates", j, h[i].name, v);
            v[j] ^= 1;
        }
        ASSERT_OK(check(r, now, &a));
        h[i].value = orig;
        free(v);
    }
    const char **fields[] = {&r->path, &r->query, &r->method};
    for (size_t f = 0; f < 3; f++) {
        if (!*fields[f])
            continue;
        const char *orig = *fields[f];
        char *v = nb_xstrdup(orig);
        *fields[f] = v;
        for (size_t j = 0; v[j]; j++) {
            v[j] ^= 1;
            if (check(r, now, &a) == 0)
                fail_msg("flip of byte %zu of %s still authenticates", j, v);
            v[j] ^= 1;
        }
        *fields[f] = orig;
        free(v);
    }
    ASSERT_OK(check(r, now, &a));
}

static void test_get_object_example(void **state)
{
    (void)state;
    s3_header h[] = {
        {"Host", "examplebucket.s3.amazonaws.com"},
        {"Range", "bytes=0-9"},
        {"x-amz-content-sha256", EMPTY},
        {"x-amz-date", "20130524T000000Z"},
        {"Authorization",
         "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
         "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
         "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
    };
    s3_http_req r = {"GET", "/test.txt", NULL, h, NB_ARRAY_LEN(h), NULL};
    s3_auth a;
    ASSERT_OK(check(&r, NOW, &a));
    assert_int_equal(a.version, 4);
    assert_string_equal(a.access_key, AK);
    assert_int_equal(a.payload, S3_PAYLOAD_SHA256);
    uint8_t d[S3_DIGEST_MAX];
    s3_digest_once(S3_DIGEST_SHA256, "", 0, d);
    ASSERT_OK(s3_auth_payload_check(&a, d));
    d[0] ^= 1;
    ASSERT_RC(s3_auth_payload_check(&a, d), S3_ERR_CONTENT_SHA256_MISMATCH);

    /* The canonical request is the documented one. */
    nb_buf cr = NB_BUF_INIT;
    ASSERT_OK(s3_sigv4_canonical_request(&cr, &r, "host;range;x-amz-content-sha256;x-amz-date",
                                         EMPTY, false));
    ASSERT_OK(nb_buf_nul_terminate(&cr));
    assert_string_equal((char *)cr.data,
                        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                        "x-amz-content-sha256:" EMPTY "\nx-amz-date:20130524T000000Z\n\n"
                        "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY);
    nb_buf_free(&cr);

    /* Skew: 15 minutes either way is fine, beyond is refused. */
    ASSERT_OK(check(&r, NOW + 900, &a));
    ASSERT_OK(check(&r, NOW - 900, &a));
    ASSERT_RC(check(&r, NOW + 901, &a), S3_ERR_REQUEST_TIME_TOO_SKEWED);
    ASSERT_RC(check(&r, NOW - 901, &a), S3_ERR_REQUEST_TIME_TOO_SKEWED);

    /* Unknown key, wrong secret. */
    h[4].value = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLF/20130524/us-east-1/s3/"
                 "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                 "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
    ASSERT_RC(check(&r, NOW, &a), S3_ERR_INVALID_ACCESS_KEY_ID);
    h[4].value = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                 "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                 "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
    ASSERT_OK(check(&r, NOW, &a)); /* spaces after commas are allowed */
    flip_everything(&r, NOW);

    /* What the server computed, for SignatureDoesNotMatch bodies. */
    nb_buf c = NB_BUF_INIT, sts = NB_BUF_INIT, body = NB_BUF_INIT;
    ASSERT_OK(s3_auth_explain(&r, &c, &sts));
    ASSERT_OK(nb_buf_nul_terminate(&sts));
    assert_string_equal((char *)sts.data,
                        "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    ASSERT_OK(nb_buf_nul_terminate(&c));
    s3_header extra[] = {{"StringToSign", (char *)sts.data}, {"CanonicalRequest", (char *)c.data}};
    ASSERT_OK(
        s3_error_xml_ex(&body, S3_ERR_SIGNATURE_DOES_NOT_MATCH, NULL, "/test.txt", "R", extra, 2));
    ASSERT_OK(nb_buf_nul_terminate(&body));
    assert_non_null(
        strstr((char *)body.data, "<StringToSign>AWS4-HMAC-SHA256&#xA;20130524T000000Z"));
    assert_non_null(strstr((char *)body.data, "<CanonicalRequest>GET&#xA;/test.txt&#xA;"));
    nb_buf_free(&c);
    nb_buf_free(&sts);
    nb_buf_free(&body);
}

static void test_put_object_example(void **state)
{
    (void)state;
    s3_header h[] = {
        {"Host", "examplebucket.s3.amazonaws.com"},
        {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
        {"Authorization",
         "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
         "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
         "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
        {"x-amz-date", "20130524T000000Z"},
        {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
        {"x-amz-content-sha256",
         "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"},
    };
    s3_http_req r = {"PUT", "/test%24file.text", NULL, h, NB_ARRAY_LEN(h), NULL};
    s3_auth a;
    ASSERT_OK(check(&r, NOW, &a));
    uint8_t d[S3_DIGEST_MAX];
    s3_digest_once(S3_DIGEST_SHA256, "Welcome to Amazon S3.", 21, d);
    ASSERT_OK(s3_auth_payload_check(&a, d));
    /* The same key written unencoded ("$" is not unreserved) signs the same. */
    r.path = "/test$file.text";
    ASSERT_OK(check(&r, NOW, &a));
    r.path = "/test%24file.text";
    flip_everything(&r, NOW);
}

static void test_get_lifecycle_and_list_examples(void **state)
{
    (void)state;
    s3_header h[] = {
        {"Host", "examplebucket.s3.amazonaws.com"},
        {"x-amz-date", "20130524T000000Z"},
        {"x-amz-content-sha256", EMPTY},
        {"Authorization",
         "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
         "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
         "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
    };
    s3_http_req r = {"GET", "/", "lifecycle", h, NB_ARRAY_LEN(h), NULL};
    s3_auth a;
    ASSERT_OK(check(&r, NOW, &a));
    r.query = "lifecycle=";
    ASSERT_OK(check(&r, NOW, &a));
    r.query = "lifecycle";
    flip_everything(&r, NOW);

    h[3].value = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                 "aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
                 "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7";
    r.query = "max-keys=2&prefix=J";
    ASSERT_OK(check(&r, NOW, &a));
    r.query = "prefix=J&max-keys=2"; /* order does not matter */
    ASSERT_OK(check(&r, NOW, &a));
    r.query = "prefix=%4A&max-keys=2"; /* nor needless escapes */
    ASSERT_OK(check(&r, NOW, &a));
    r.query = "prefix=K&max-keys=2";
    ASSERT_RC(check(&r, NOW, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH);
    r.query = "max-keys=2&prefix=J";
    flip_everything(&r, NOW);
}

static void test_presigned_example(void **state)
{
    (void)state;
    s3_header h[] = {{"Host", "examplebucket.s3.amazonaws.com"}};
    s3_http_req r = {
        "GET",
        "/test.txt",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
        "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
        "X-Amz-SignedHeaders=host&X-Amz-Signature="
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        h,
        NB_ARRAY_LEN(h),
        NULL};
    s3_auth a;
    ASSERT_OK(check(&r, NOW, &a));
    assert_true(a.presigned);
    assert_int_equal(a.payload, S3_PAYLOAD_UNSIGNED);
    ASSERT_OK(check(&r, NOW + 86400, &a));
    ASSERT_RC(check(&r, NOW + 86401, &a), S3_ERR_EXPIRED_REQUEST);
    ASSERT_RC(check(&r, NOW - 3600, &a), S3_ERR_NOT_YET_VALID);
    assert_string_equal(s3_error_of(S3_ERR_EXPIRED_REQUEST)->code, "AccessDenied");
    flip_everything(&r, NOW);
    nb_buf c = NB_BUF_INIT, sts = NB_BUF_INIT;
    ASSERT_OK(s3_auth_explain(&r, &c, &sts));
    ASSERT_OK(nb_buf_nul_terminate(&c));
    assert_non_null(strstr((char *)c.data, "X-Amz-Expires=86400&X-Amz-SignedHeaders=host\nhost:"));
    assert_null(strstr((char *)c.data, "X-Amz-Signature"));
    nb_buf_free(&c);
    nb_buf_free(&sts);

    /* Expires beyond 7 days, a missing parameter, a bad algorithm. */
    r.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
              "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=604801&"
              "X-Amz-SignedHeaders=host&X-Amz-Signature="
              "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
    ASSERT_RC(check(&r, NOW, &a), S3_ERR_AUTH_QUERY_ERROR);
    r.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00";
    ASSERT_RC(check(&r, NOW, &a), S3_ERR_AUTH_QUERY_ERROR);
    /* Header and query auth at once. */
    s3_header h2[] = {{"Host", "x"}, {"Authorization", "AWS4-HMAC-SHA256 Credential=x"}};
    s3_http_req r2 = {"GET", "/", "X-Amz-Signature=1", h2, 2, NULL};
    ASSERT_RC(check(&r2, NOW, &a), S3_ERR_INVALID_ARGUMENT);
}

static void test_malformed_headers(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 ",
        "AWS4-HMAC-SHA256 Credential=",
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AK/2013052/us-east-1/s3/aws4_request,SignedHeaders=host,"
        "Signature=00",
        "AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,"
        "Signature=00",
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/ec2/aws4_request,SignedHeaders=host,"
        "Signature=00",
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=range,"
        "Signature=00",
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=Host,"
        "Signature=00",
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,Bogus=1",
        "AWS4-HMAC-SHA256 Credential=AK/20130524//s3/aws4_request,SignedHeaders=host,Signature=0",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f/g,SignedHeaders=host,Signature=0",
        "AWS4-HMAC-SHA256 ,,,,",
        "AWS4-HMAC-SHA256 =,=,=",
    };
    for (size_t i = 0; i < NB_ARRAY_LEN(bad); i++) {
        s3_header h[] = {{"Host", "h"},
                         {"x-amz-date", "20130524T000000Z"},
                         {"x-amz-content-sha256", EMPTY},
                         {"Authorization", bad[i]}};
        s3_http_req r = {"GET", "/", NULL, h, NB_ARRAY_LEN(h), NULL};
        s3_auth a;
        int rc = check(&r, NOW, &a);
        if (rc == 0)
            fail_msg("accepted %s", bad[i]);
        assert_true(s3_is_s3_error(rc));
    }
    /* Missing x-amz-content-sha256, unknown payload mode, no date. */
    const char *ok =
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;x-amz-date,Signature=0000000000000000000000000000000000000000000000"
        "000000000000000000";
    s3_header h[] = {{"Host", "h"}, {"x-amz-date", "20130524T000000Z"}, {"Authorization", ok}};
    s3_http_req r = {"GET", "/", NULL, h, NB_ARRAY_LEN(h), NULL};
    s3_auth a;
    ASSERT_RC(check(&r, NOW, &a), S3_ERR_INVALID_REQUEST);
    s3_header h2[] = {{"Host", "h"},
                      {"x-amz-date", "20130524T000000Z"},
                      {"x-amz-content-sha256", "BOGUS"},
                      {"Authorization", ok}};
    r.headers = h2;
    r.n_headers = 4;
    ASSERT_RC(check(&r, NOW, &a), S3_ERR_INVALID_ARGUMENT);
    s3_header h3[] = {{"Host", "h"}, {"x-amz-content-sha256", EMPTY}, {"Authorization", ok}};
    r.headers = h3;
    r.n_headers = 3;
    ASSERT_RC(check(&r, NOW, &a), S3_ERR_ACCESS_DENIED);
    /* Unknown scheme; anonymous. */
    s3_header h4[] = {{"Host", "h"}, {"Authorization", "Bearer x"}};
    r.headers = h4;
    r.n_headers = 2;
    ASSERT_RC(check(&r, NOW, &a), S3_ERR_INVALID_ARGUMENT);
    r.n_headers = 1;
    ASSERT_OK(check(&r, NOW, &a));
    assert_int_equal(a.version, 0);
}

/* ---- chunked upload --------------------------------------------------- */

#define SEED "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define SIG1 "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
#define SIG2 "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
#define SIG3 "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"

static s3_header chunk_headers[] = {
    {"Host", "s3.amazonaws.com"},
    {"x-amz-date", "20130524T000000Z"},
    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
    {"Authorization",
     "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
     "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
     "x-amz-decoded-content-length;x-amz-storage-class,Signature=" SEED},
    {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
    {"Content-Encoding", "aws-chunked"},
    {"x-amz-decoded-content-length", "66560"},
    {"Content-Length", "66824"},
};

static nb_buf example_body(void)
{
    nb_buf b = NB_BUF_INIT;
    uint8_t *a = nb_xmalloc(65536);
    memset(a, 'a', 65536);
    assert_int_equal(nb_buf_append_str(&b, "10000;chunk-signature=" SIG1 "\r\n"), 0);
    assert_int_equal(nb_buf_append(&b, a, 65536), 0);
    assert_int_equal(nb_buf_append_str(&b, "\r\n400;chunk-signature=" SIG2 "\r\n"), 0);
    assert_int_equal(nb_buf_append(&b, a, 1024), 0);
    assert_int_equal(nb_buf_append_str(&b, "\r\n0;chunk-signature=" SIG3 "\r\n\r\n"), 0);
    free(a);
    assert_int_equal(b.len, 66824);
    return b;
}

typedef struct sink {
    uint64_t n;
    bool all_a;
} sink;

static int sink_fn(void *ctx, const uint8_t *p, size_t n)
{
    sink *s = ctx;
    for (size_t i = 0; i < n; i++)
        s->all_a &= p[i] == 'a';
    s->n += n;
    return 0;
}

static int decode(const s3_auth *a, const uint8_t *p, size_t n, size_t piece, int64_t declen,
                  sink *s)
{
    s3_chunked *c;
    int rc = s3_chunked_new(a, declen, &c);
    if (rc)
        return rc;
    s->n = 0;
    s->all_a = true;
    for (size_t off = 0; off < n && !rc; off += piece)
        rc = s3_chunked_feed(c, p + off, n - off < piece ? n - off : piece, sink_fn, s);
    if (!rc)
        rc = s3_chunked_finish(c);
    s3_chunked_free(c);
    return rc;
}

static void test_chunked_example(void **state)
{
    (void)state;
    s3_http_req r = {"PUT",         "/examplebucket/chunkObject.txt", NULL,
                     chunk_headers, NB_ARRAY_LEN(chunk_headers),      NULL};
    s3_auth a;
    ASSERT_OK(check(&r, NOW, &a));
    assert_int_equal(a.payload, S3_PAYLOAD_STREAMING);
    assert_string_equal(a.seed_signature, SEED);
    nb_buf b = example_body();
    static const size_t pieces[] = {1, 2, 7, 64, 4096, 65536 + 87, 1 << 20};
    for (size_t i = 0; i < NB_ARRAY_LEN(pieces); i++) {
        sink s;
        ASSERT_OK(decode(&a, b.data, b.len, pieces[i], 66560, &s));
        assert_int_equal(s.n, 66560);
        assert_true(s.all_a);
    }
    sink s;
    ASSERT_OK(decode(&a, b.data, b.len, b.len, -1, &s));
    /* The decoded length must match x-amz-decoded-content-length. */
    assert_true(decode(&a, b.data, b.len, 4096, 66559, &s) != 0);
    ASSERT_RC(decode(&a, b.data, b.len, 4096, 66561, &s), S3_ERR_INCOMPLETE_BODY);
    /* Truncated anywhere: not complete. */
    for (size_t cut = 0; cut < b.len; cut += cut < 200 ? 1 : 1021)
        assert_true(decode(&a, b.data, cut, 8192, -1, &s) != 0);
    assert_true(decode(&a, b.data, b.len - 1, 8192, -1, &s) != 0);
    /* Flip a byte in every framing position and in a sample of data. */
    for (size_t i = 0; i < b.len; i++) {
        bool framing = i < 90 || (i >= 65536 + 88 && i < 65536 + 88 + 90) || i >= b.len - 90;
        if (!framing && i % 997)
            continue;
        b.data[i] ^= 1;
        int rc = decode(&a, b.data, b.len, 65536, -1, &s);
        if (rc == 0)
            fail_msg("flip at %zu decoded fine", i);
        b.data[i] ^= 1;
    }
    /* Chunks in a different order do not chain. */
    nb_buf sw = NB_BUF_INIT;
    ASSERT_OK(nb_buf_append_str(&sw, "400;chunk-signature=" SIG2 "\r\n"));
    ASSERT_OK(nb_buf_append(&sw, b.data + 88, 1024));
    ASSERT_OK(nb_buf_append_str(&sw, "\r\n"));
    ASSERT_OK(nb_buf_append(&sw, b.data, 88 + 65536 + 2));
    ASSERT_OK(nb_buf_append_str(&sw, "0;chunk-signature=" SIG3 "\r\n\r\n"));
    ASSERT_RC(decode(&a, sw.data, sw.len, 4096, -1, &s), S3_ERR_SIGNATURE_DOES_NOT_MATCH);
    /* Bytes after the final chunk. */
    ASSERT_OK(nb_buf_append_str(&b, "x"));
    assert_true(decode(&a, b.data, b.len, 4096, -1, &s) != 0);
    nb_buf_free(&sw);
    nb_buf_free(&b);
    /* A non-streaming auth cannot make a decoder. */
    s3_auth plain = a;
    plain.payload = S3_PAYLOAD_UNSIGNED;
    s3_chunked *c;
    ASSERT_RC(s3_chunked_new(&plain, -1, &c), NB_EUSAGE);
    assert_null(c);
}

static void sign_hex(const uint8_t key[32], const char *sts, char out[65])
{
    /* The trailer tests sign with the decoder's own primitive: they check
     * framing and chaining; the published vectors check the primitive. */
    uint8_t mac[32];
    s3__hmac_sha256(key, 32, sts, strlen(sts), mac);
    s3_hex_encode(mac, 32, out);
}

static void test_chunked_trailers(void **state)
{
    (void)state;
    s3_auth a;
    memset(&a, 0, sizeof a);
    a.version = 4;
    a.payload = S3_PAYLOAD_STREAMING_TRAILER;
    s3_sigv4_signing_key(SK, "20130524", "us-east-1", "s3", a.signing_key);
    strcpy(a.seed_signature, SEED);
    strcpy(a.amz_date, "20130524T000000Z");
    strcpy(a.scope, "20130524/us-east-1/s3/aws4_request");

    uint8_t h[S3_DIGEST_MAX];
    char hh[65], sig1[65], sig2[65], tsig[65], sts[512];
    s3_digest_once(S3_DIGEST_SHA256, "hello", 5, h);
    s3_hex_encode(h, 32, hh);
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n" EMPTY "\n%s", a.amz_date,
             a.scope, SEED, hh);
    sign_hex(a.signing_key, sts, sig1);
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n" EMPTY "\n" EMPTY, a.amz_date,
             a.scope, sig1);
    sign_hex(a.signing_key, sts, sig2);
    s3_digest_once(S3_DIGEST_SHA256, "x-amz-checksum-crc32:NhCmhg==\n", 30, h);
    s3_hex_encode(h, 32, hh);
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s", a.amz_date, a.scope, sig2,
             hh);
    sign_hex(a.signing_key, sts, tsig);
    char *body = nb_xasprintf("5;chunk-signature=%s\r\nhello\r\n0;chunk-signature=%s\r\n"
                              "x-amz-checksum-crc32:NhCmhg==\r\nx-amz-trailer-signature:%s\r\n\r\n",
                              sig1, sig2, tsig);
    size_t n = strlen(body);
    for (size_t piece = 1; piece <= n; piece += piece < 8 ? 1 : 37) {
        s3_chunked *c;
        ASSERT_OK(s3_chunked_new(&a, 5, &c));
        int rc = 0;
        for (size_t off = 0; off < n && !rc; off += piece)
            rc = s3_chunked_feed(c, (uint8_t *)body + off, n - off < piece ? n - off : piece, NULL,
                                 NULL);
        ASSERT_OK(rc);
        ASSERT_OK(s3_chunked_finish(c));
        assert_string_equal(s3_chunked_trailer(c, "x-amz-checksum-crc32"), "NhCmhg==");
        assert_null(s3_chunked_trailer(c, "x-amz-checksum-sha1"));
        assert_int_equal(s3_chunked_decoded(c), 5);
        s3_chunked_free(c);
    }
    for (size_t i = 0; i < n; i++) {
        body[i] ^= 1;
        s3_chunked *c;
        ASSERT_OK(s3_chunked_new(&a, -1, &c));
        int rc = s3_chunked_feed(c, (uint8_t *)body, n, NULL, NULL);
        if (!rc)
            rc = s3_chunked_finish(c);
        if (rc == 0)
            fail_msg("flip at %zu accepted", i);
        s3_chunked_free(c);
        body[i] ^= 1;
    }
    free(body);

    /* Unsigned trailer mode: plain chunk sizes. */
    a.payload = S3_PAYLOAD_STREAMING_UNSIGNED;
    const char *ub = "5\r\nhello\r\n3\r\nabc\r\n0\r\nx-amz-checksum-crc32c:AAAAAA==\r\n\r\n";
    s3_chunked *c;
    ASSERT_OK(s3_chunked_new(&a, 8, &c));
    ASSERT_OK(s3_chunked_feed(c, (const uint8_t *)ub, strlen(ub), NULL, NULL));
    ASSERT_OK(s3_chunked_finish(c));
    assert_string_equal(s3_chunked_trailer(c, "X-Amz-Checksum-Crc32c"), "AAAAAA==");
    s3_chunked_free(c);
    static const char *const bad[] = {
        "5\r\nhello\r\n0\r\n",
        "5\r\nhellox\r\n0\r\n\r\n",
        "g\r\n",
        "\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "0\r\nnocolon\r\n\r\n",
        "0\r\n:v\r\n\r\n",
        "ffffffffffffffffff\r\n",
    };
    for (size_t i = 0; i < NB_ARRAY_LEN(bad); i++) {
        ASSERT_OK(s3_chunked_new(&a, -1, &c));
        int rc = s3_chunked_feed(c, (const uint8_t *)bad[i], strlen(bad[i]), NULL, NULL);
        if (!rc)
            rc = s3_chunked_finish(c);
        if (!rc)
            fail_msg("accepted %s", bad[i]);
        s3_chunked_free(c);
    }
    /* A header line longer than the line buffer fails instead of growing. */
    ASSERT_OK(s3_chunked_new(&a, -1, &c));
    assert_null(s3_chunked_trailer(c, "x-amz-checksum-crc32")); /* none yet */
    char *longline = nb_xmalloc(10000);
    memset(longline, '1', 10000);
    assert_true(s3_chunked_feed(c, (uint8_t *)longline, 10000, NULL, NULL) != 0);
    free(longline);
    s3_chunked_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_object_example),
        cmocka_unit_test(test_put_object_example),
        cmocka_unit_test(test_get_lifecycle_and_list_examples),
        cmocka_unit_test(test_presigned_example),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_chunked_example),
        cmocka_unit_test(test_chunked_trailers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
