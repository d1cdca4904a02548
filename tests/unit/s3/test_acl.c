/* AccessControlPolicy bodies (s3_parse_acl) and canned ACL headers, the
 * SigV4 signer our tools use (s3_sigv4_sign) against the verifier, and
 * generated user keys. */
#include <stdio.h>
#include <string.h>

#include "s3/s3.h"

#include "test.h"

#define OWNER   "AKOWNER000000000000A"
#define ALLUSRS "http://acs.amazonaws.com/groups/global/AllUsers"

static char *policy(const char *owner, const char *grants)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
             "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">%s"
             "<AccessControlList>%s</AccessControlList></AccessControlPolicy>",
             owner, grants);
    return buf;
}

#define G_OWNER                                                                                    \
    "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "                     \
    "xsi:type=\"CanonicalUser\"><ID>" OWNER "</ID><DisplayName>o</DisplayName></Grantee>"          \
    "<Permission>FULL_CONTROL</Permission></Grant>"
#define G_PUBLIC                                                                                   \
    "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "                     \
    "xsi:type=\"Group\"><URI>" ALLUSRS "</URI></Grantee><Permission>READ</Permission></Grant>"
#define OWNER_EL "<Owner><ID>" OWNER "</ID></Owner>"

static int parse(const char *doc, s3_acl *acl)
{
    return s3_parse_acl(doc, strlen(doc), OWNER, acl);
}

static void test_policies(void **state)
{
    (void)state;
    s3_acl acl;
    ASSERT_OK(parse(policy(OWNER_EL, G_OWNER), &acl));
    assert_int_equal(acl, S3_ACL_PRIVATE);
    ASSERT_OK(parse(policy(OWNER_EL, G_OWNER G_PUBLIC), &acl));
    assert_int_equal(acl, S3_ACL_PUBLIC_READ);
    ASSERT_OK(parse(policy("", G_PUBLIC G_OWNER), &acl)); /* no Owner, any order */
    assert_int_equal(acl, S3_ACL_PUBLIC_READ);
    /* Whitespace around values, as clients pretty-print. */
    ASSERT_OK(parse(policy(OWNER_EL, "<Grant><Grantee><ID>\n " OWNER " </ID></Grantee>"
                                     "<Permission> FULL_CONTROL\n</Permission></Grant>"),
                    &acl));
    /* Grants the gateway cannot keep. */
    ASSERT_RC(parse(policy(OWNER_EL, G_OWNER "<Grant><Grantee><URI>" ALLUSRS "</URI></Grantee>"
                                             "<Permission>WRITE</Permission></Grant>"),
                    &acl),
              S3_ERR_NOT_IMPLEMENTED);
    ASSERT_RC(parse(policy(OWNER_EL, G_OWNER "<Grant><Grantee><ID>SOMEONEELSE</ID></Grantee>"
                                             "<Permission>READ</Permission></Grant>"),
                    &acl),
              S3_ERR_NOT_IMPLEMENTED);
    ASSERT_RC(parse(policy(OWNER_EL, G_OWNER "<Grant><Grantee><URI>http://acs.amazonaws.com/"
                                             "groups/global/AuthenticatedUsers</URI></Grantee>"
                                             "<Permission>READ</Permission></Grant>"),
                    &acl),
              S3_ERR_NOT_IMPLEMENTED);
    ASSERT_RC(parse(policy(OWNER_EL, G_OWNER "<Grant><Grantee><EmailAddress>a@b</EmailAddress>"
                                             "</Grantee><Permission>READ</Permission></Grant>"),
                    &acl),
              S3_ERR_NOT_IMPLEMENTED);
    ASSERT_RC(parse(policy(OWNER_EL, G_PUBLIC), &acl), S3_ERR_NOT_IMPLEMENTED); /* no owner grant */
    ASSERT_RC(parse(policy(OWNER_EL, ""), &acl), S3_ERR_NOT_IMPLEMENTED);
    /* Another owner. */
    ASSERT_RC(parse(policy("<Owner><ID>X</ID></Owner>", G_OWNER), &acl), S3_ERR_ACCESS_DENIED);
    ASSERT_RC(parse(policy("<Owner></Owner>", G_OWNER), &acl), S3_ERR_ACCESS_DENIED);
    /* Malformed. */
    ASSERT_RC(parse(policy(OWNER_EL, "<Grant><Permission>READ</Permission></Grant>"), &acl),
              S3_ERR_MALFORMED_XML);
    ASSERT_RC(parse(policy(OWNER_EL, "<Grant><Grantee><ID>" OWNER "</ID></Grantee></Grant>"), &acl),
              S3_ERR_MALFORMED_XML);
    ASSERT_RC(parse(policy(OWNER_EL, "<Grant><Grantee><ID>" OWNER "</ID></Grantee>"
                                     "<Permission>ALL</Permission></Grant>"),
                    &acl),
              S3_ERR_MALFORMED_XML);
    ASSERT_RC(parse("<AccessControlPolicy>" OWNER_EL "</AccessControlPolicy>", &acl),
              S3_ERR_MALFORMED_XML);
    ASSERT_RC(parse("<Tagging/>", &acl), S3_ERR_MALFORMED_XML);
    ASSERT_RC(parse("<AccessControlPolicy>", &acl), S3_ERR_MALFORMED_XML);
    ASSERT_RC(s3_parse_acl("", 0, OWNER, &acl), S3_ERR_MALFORMED_XML);
    /* Every truncation of a valid document fails cleanly. */
    const char *doc = policy(OWNER_EL, G_OWNER G_PUBLIC);
    size_t n = strlen(doc);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(s3_parse_acl(doc, i, OWNER, &acl), 0);
}

static void test_canned_headers(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value;
        int rc;
        s3_acl acl;
    } cases[] = {
        {"x-amz-acl", "private", 0, S3_ACL_PRIVATE},
        {"x-amz-acl", "public-read", 0, S3_ACL_PUBLIC_READ},
        {"x-amz-acl", "public-read-write", 0, S3_ACL_PUBLIC_READ_WRITE},
        {"x-amz-acl", "Public-Read", S3_ERR_INVALID_ARGUMENT, S3_ACL_PRIVATE},
        {"x-amz-grant-read", "uri=" ALLUSRS, S3_ERR_NOT_IMPLEMENTED, S3_ACL_PRIVATE},
        {"x-other", "x", 0, S3_ACL_PRIVATE},
    };
    for (size_t i = 0; i < NB_ARRAY_LEN(cases); i++) {
        s3_header h[] = {{cases[i].name, cases[i].value}};
        s3_http_req r = {"PUT", "/b", "acl", h, 1, NULL};
        s3_acl acl = S3_ACL_AUTHENTICATED_READ;
        ASSERT_RC(s3_acl_from_req(&r, &acl), cases[i].rc);
        if (!cases[i].rc)
            assert_int_equal(acl, cases[i].acl);
    }
}

static int secret_fn(void *ctx, const char *ak, char *sk, size_t cap)
{
    (void)ctx;
    if (strcmp(ak, "ADMINKEY") != 0)
        return NB_ENOTFOUND;
    snprintf(sk, cap, "%s", "adminsecret");
    return 0;
}

static void test_signer(void **state)
{
    (void)state;
    static const char empty[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    char authz[512];
    s3_header h[4] = {{"host", "127.0.0.1:8080"},
                      {"x-amz-content-sha256", empty},
                      {"x-amz-date", "20261121T100000Z"},
                      {"Authorization", authz}};
    s3_http_req r = {"DELETE", "/_nebula/admin/users/AK%2B1", "name=a%20b&x=1", h, 3, NULL};
    ASSERT_OK(s3_sigv4_sign(&r, "ADMINKEY", "adminsecret", "us-east-1", authz, sizeof authz));
    assert_true(strncmp(authz, "AWS4-HMAC-SHA256 Credential=ADMINKEY/20261121/us-east-1/s3/", 59) ==
                0);
    r.n_headers = 4;
    s3_auth a;
    int64_t now;
    ASSERT_OK(s3_iso8601_basic_parse("20261121T100100Z", &now));
    ASSERT_OK(s3_auth_check(&r, secret_fn, NULL, now, &a));
    assert_int_equal(a.version, 4);
    assert_string_equal(a.access_key, "ADMINKEY");
    /* The signature covers the path, the query and the date. */
    r.path = "/_nebula/admin/users/AK%2B2";
    ASSERT_RC(s3_auth_check(&r, secret_fn, NULL, now, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH);
    r.path = "/_nebula/admin/users/AK%2B1";
    r.query = "name=a%20c&x=1";
    ASSERT_RC(s3_auth_check(&r, secret_fn, NULL, now, &a), S3_ERR_SIGNATURE_DOES_NOT_MATCH);
    /* Missing headers or no room: usage errors. */
    r.n_headers = 2;
    ASSERT_RC(s3_sigv4_sign(&r, "ADMINKEY", "adminsecret", "us-east-1", authz, sizeof authz),
              NB_EUSAGE);
    r.n_headers = 3;
    ASSERT_RC(s3_sigv4_sign(&r, "ADMINKEY", "adminsecret", "us-east-1", authz, 40), NB_EUSAGE);
}

static void test_user_keys(void **state)
{
    (void)state;
    char ak[21], sk[41], ak2[21], sk2[41];
    ASSERT_OK(s3_user_keys_generate(ak, sk));
    ASSERT_OK(s3_user_keys_generate(ak2, sk2));
    assert_int_equal(strlen(ak), 20);
    assert_int_equal(strlen(sk), 40);
    assert_int_equal(strspn(ak, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), 20);
    assert_int_equal(strspn(sk, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
                     40);
    assert_string_not_equal(ak, ak2);
    assert_string_not_equal(sk, sk2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policies),
        cmocka_unit_test(test_canned_headers),
        cmocka_unit_test(test_signer),
        cmocka_unit_test(test_user_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
