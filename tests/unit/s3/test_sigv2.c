/* SigV2: the examples of the AWS "Signing and Authenticating REST
 * Requests" page (computed for bucket "johnsmith", which the page later
 * renamed without re-signing), header and query forms, flips, skew. */
#include "s3/s3_int.h"

#include "test.h"

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static int secret_fn(void *ctx, const char *ak, char *sk, size_t cap)
{
    (void)ctx;
    if (strcmp(ak, AK) != 0)
        return NB_ENOTFOUND;
    snprintf(sk, cap, "%s", SK);
    return 0;
}

static int64_t at(const char *date)
{
    int64_t t;
    assert_int_equal(s3_http_date_parse(date, &t), 0);
    return t;
}

static int check(const s3_http_req *r, int64_t now)
{
    s3_auth a;
    int rc = s3_auth_check(r, secret_fn, NULL, now, &a);
    if (rc == 0) {
        assert_int_equal(a.version, 2);
        assert_string_equal(a.access_key, AK);
    }
    return rc;
}

static void flip_all(s3_http_req *r, int64_t now)
{
    s3_header *h = (s3_header *)r->headers;
    for (size_t i = 0; i < r->n_headers; i++) {
        const char *orig = h[i].value;
        char *v = nb_xstrdup(orig);
        h[i].value = v;
        for (size_t j = 0; v[j]; j++) {
            v[j] ^= 1;
            if (check(r, now) == 0 && strcasecmp(h[i].name, "host") != 0 &&
                strcasecmp(h[i].name, "user-agent") != 0 &&
                strcasecmp(h[i].name, "content-length") != 0 &&
                strcasecmp(h[i].name, "content-disposition") != 0 &&
                strcasecmp(h[i].name, "content-encoding") != 0)
                fail_msg("flip %zu of %s accepted", j, h[i].name);
            v[j] ^= 1;
        }
        h[i].value = orig;
        free(v);
    }
    const char *orig = r->path;
    char *v = nb_xstrdup(orig);
    r->path = v;
    for (size_t j = 0; v[j]; j++) {
        v[j] ^= 1;
        if (check(r, now) == 0)
            fail_msg("flip %zu of path accepted", j);
        v[j] ^= 1;
    }
    r->path = orig;
    free(v);
    ASSERT_OK(check(r, now));
}

static void test_object_get_put_delete(void **state)
{
    (void)state;
    s3_header get[] = {{"Host", "johnsmith.s3.amazonaws.com"},
                       {"Date", "Tue, 27 Mar 2007 19:36:42 +0000"},
                       {"Authorization", "AWS " AK ":bWq2s1WEIj+Ydj0vQ697zp+IXMU="}};
    s3_http_req r = {"GET", "/photos/puppy.jpg", NULL, get, 3, "johnsmith"};
    int64_t now = at("Tue, 27 Mar 2007 19:36:42 +0000");
    ASSERT_OK(check(&r, now));
    nb_buf c = NB_BUF_INIT, sts = NB_BUF_INIT;
    ASSERT_OK(s3_auth_explain(&r, &c, &sts));
    ASSERT_OK(nb_buf_nul_terminate(&sts));
    assert_string_equal((char *)sts.data,
                        "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg");
    assert_int_equal(c.len, 0);
    nb_buf_free(&c);
    nb_buf_free(&sts);
    ASSERT_OK(check(&r, now + 900));
    ASSERT_RC(check(&r, now + 901), S3_ERR_REQUEST_TIME_TOO_SKEWED);
    flip_all(&r, now);
    r.vhost_bucket = NULL; /* path-style would sign "/photos/..." */
    ASSERT_RC(check(&r, now), S3_ERR_SIGNATURE_DOES_NOT_MATCH);
    r.vhost_bucket = "johnsmith";

    s3_header put[] = {{"Content-Type", "image/jpeg"},
                       {"Content-Length", "94328"},
                       {"Host", "johnsmith.s3.amazonaws.com"},
                       {"Date", "Tue, 27 Mar 2007 21:15:45 +0000"},
                       {"Authorization", "AWS " AK ":MyyxeRY7whkBe+bq8fHCL/2kKUg="}};
    s3_http_req p = {"PUT", "/photos/puppy.jpg", NULL, put, 5, "johnsmith"};
    now = at("Tue, 27 Mar 2007 21:15:45 +0000");
    ASSERT_OK(check(&p, now));
    flip_all(&p, now);

    /* Path-style, with x-amz-date on the Date line as documented. */
    s3_header del[] = {{"User-Agent", "dotnet"},
                       {"Host", "s3.amazonaws.com"},
                       {"Date", "Tue, 27 Mar 2007 21:20:27 +0000"},
                       {"x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"},
                       {"Authorization", "AWS " AK ":lx3byBScXR6KzyMaifNkardMwNk="}};
    s3_http_req d = {"DELETE", "/johnsmith/photos/puppy.jpg", NULL, del, 5, NULL};
    now = at("Tue, 27 Mar 2007 21:20:26 +0000");
    ASSERT_OK(check(&d, now));
}

static void test_list_acl_upload_unicode(void **state)
{
    (void)state;
    s3_header list[] = {{"User-Agent", "Mozilla/5.0"},
                        {"Host", "johnsmith.s3.amazonaws.com"},
                        {"Date", "Tue, 27 Mar 2007 19:42:41 +0000"},
                        {"Authorization", "AWS " AK ":htDYFYduRNen8P9ZfE/s9SuKy0U="}};
    s3_http_req r = {"GET", "/", "prefix=photos&max-keys=50&marker=puppy", list, 4, "johnsmith"};
    int64_t now = at("Tue, 27 Mar 2007 19:42:41 +0000");
    ASSERT_OK(check(&r, now));

    s3_header acl[] = {{"Host", "johnsmith.s3.amazonaws.com"},
                       {"Date", "Tue, 27 Mar 2007 19:44:46 +0000"},
                       {"Authorization", "AWS " AK ":c2WLPFtWHVgbEmeEG93a4cG37dM="}};
    s3_http_req a = {"GET", "/", "acl", acl, 3, "johnsmith"};
    now = at("Tue, 27 Mar 2007 19:44:46 +0000");
    ASSERT_OK(check(&a, now));
    a.query = NULL; /* the sub-resource is signed */
    ASSERT_RC(check(&a, now), S3_ERR_SIGNATURE_DOES_NOT_MATCH);

    s3_header up[] = {
        {"User-Agent", "curl/7.15.5"},
        {"Host", "static.johnsmith.net:8080"},
        {"Date", "Tue, 27 Mar 2007 21:06:08 +0000"},
        {"x-amz-acl", "public-read"},
        {"content-type", "application/x-download"},
        {"Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="},
        {"X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"},
        {"X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"},
        {"X-Amz-Meta-FileChecksum", "0x02661779"},
        {"X-Amz-Meta-ChecksumAlgorithm", "crc32"},
        {"Content-Disposition", "attachment; filename=database.dat"},
        {"Content-Encoding", "gzip"},
        {"Content-Length", "5913339"},
        {"Authorization", "AWS " AK ":ilyl83RwaSoYIEdixDQcA4OnAnc="},
    };
    s3_http_req u = {"PUT", "/db-backup.dat.gz", NULL,
                     up,    NB_ARRAY_LEN(up),    "static.johnsmith.net"};
    now = at("Tue, 27 Mar 2007 21:06:08 +0000");
    nb_buf sts = NB_BUF_INIT;
    ASSERT_OK(s3_sigv2_string_to_sign(&sts, &u, "Tue, 27 Mar 2007 21:06:08 +0000", false));
    ASSERT_OK(nb_buf_nul_terminate(&sts));
    assert_string_equal((char *)sts.data,
                        "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\n"
                        "Tue, 27 Mar 2007 21:06:08 +0000\nx-amz-acl:public-read\n"
                        "x-amz-meta-checksumalgorithm:crc32\nx-amz-meta-filechecksum:0x02661779\n"
                        "x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n"
                        "/static.johnsmith.net/db-backup.dat.gz");
    nb_buf_free(&sts);
    ASSERT_OK(check(&u, now));
    flip_all(&u, now);

    s3_header all[] = {{"Host", "s3.amazonaws.com"},
                       {"Date", "Wed, 28 Mar 2007 01:29:59 +0000"},
                       {"Authorization", "AWS " AK ":qGdzdERIC03wnaRNKh6OqZehG9s="}};
    s3_http_req l = {"GET", "/", NULL, all, 3, NULL};
    ASSERT_OK(check(&l, at("Wed, 28 Mar 2007 01:29:59 +0000")));

    s3_header uni[] = {{"Host", "s3.amazonaws.com"},
                       {"Date", "Wed, 28 Mar 2007 01:49:49 +0000"},
                       {"Authorization", "AWS " AK ":DNEZGsoieTZ92F3bUfSPQcbGmlM="}};
    s3_http_req x = {"GET", "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re", NULL, uni, 3, NULL};
    ASSERT_OK(check(&x, at("Wed, 28 Mar 2007 01:49:49 +0000")));
}

static void test_query_form(void **state)
{
    (void)state;
    s3_header h[] = {{"Host", "johnsmith.s3.amazonaws.com"}};
    s3_http_req r = {"GET",
                     "/photos/puppy.jpg",
                     "AWSAccessKeyId=" AK "&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&"
                     "Expires=1175139620",
                     h,
                     1,
                     "johnsmith"};
    s3_auth a;
    ASSERT_OK(s3_auth_check(&r, secret_fn, NULL, 1175139620 - 3600, &a));
    assert_true(a.presigned);
    ASSERT_OK(s3_auth_check(&r, secret_fn, NULL, 1175139620, &a));
    ASSERT_RC(s3_auth_check(&r, secret_fn, NULL, 1175139621, &a), S3_ERR_EXPIRED_REQUEST);
    r.query = "AWSAccessKeyId=" AK "&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139621";
    ASSERT_RC(s3_auth_check(&r, secret_fn, NULL, 1175139000, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH);
    r.query = "AWSAccessKeyId=" AK "&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D";
    ASSERT_RC(s3_auth_check(&r, secret_fn, NULL, 1175139000, &a), S3_ERR_ACCESS_DENIED);
    r.query = "AWSAccessKeyId=NOBODY&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620";
    ASSERT_RC(s3_auth_check(&r, secret_fn, NULL, 1175139000, &a), S3_ERR_INVALID_ACCESS_KEY_ID);
}

/* s3cmd signs the AWS encoding of the key; the request line may carry
 * another (legal) encoding of the same key. */
static void test_reencoded_path(void **state)
{
    (void)state;
    /* Signed over "/b/a%20b%28c%29", sent as "/b/a%20b(c)". */
    s3_header h[] = {{"Host", "localhost"},
                     {"x-amz-date", "Tue, 27 Mar 2007 19:36:42 +0000"},
                     {"Authorization", "AWS " AK ":placeholder"}};
    s3_http_req r = {"GET", "/b/a%20b%28c%29", NULL, h, 3, NULL};
    nb_buf sts = NB_BUF_INIT;
    ASSERT_OK(s3_sigv2_string_to_sign(&sts, &r, "", false));
    uint8_t mac[20];
    s3__hmac_sha1(SK, strlen(SK), sts.data, sts.len, mac);
    char b64[40], authz[80];
    s3_base64_encode(mac, 20, b64);
    snprintf(authz, sizeof authz, "AWS " AK ":%s", b64);
    h[2].value = authz;
    int64_t now = at("Tue, 27 Mar 2007 19:36:42 +0000");
    ASSERT_OK(check(&r, now));
    r.path = "/b/a%20b(c)";
    ASSERT_OK(check(&r, now));
    r.path = "/b/a%20b(d)";
    ASSERT_RC(check(&r, now), S3_ERR_SIGNATURE_DOES_NOT_MATCH);
    nb_buf_free(&sts);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {"AWS ", "AWS :", "AWS AK:", "AWS :sig", "AWS nocolon"};
    for (size_t i = 0; i < NB_ARRAY_LEN(bad); i++) {
        s3_header h[] = {
            {"Host", "h"}, {"Date", "Tue, 27 Mar 2007 19:36:42 +0000"}, {"Authorization", bad[i]}};
        s3_http_req r = {"GET", "/", NULL, h, 3, NULL};
        assert_true(check(&r, at("Tue, 27 Mar 2007 19:36:42 +0000")) != 0);
    }
    s3_header h[] = {{"Host", "h"}, {"Authorization", "AWS " AK ":bWq2s1WEIj+Ydj0vQ697zp+IXMU="}};
    s3_http_req r = {"GET", "/", NULL, h, 2, NULL};
    ASSERT_RC(check(&r, 0), S3_ERR_ACCESS_DENIED); /* no date */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_get_put_delete),
        cmocka_unit_test(test_list_acl_upload_unicode),
        cmocka_unit_test(test_query_form),
        cmocka_unit_test(test_reencoded_path),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
