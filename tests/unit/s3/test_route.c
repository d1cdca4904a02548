/* Routing of method + target + sub-resources to operations, copy source
 * and copy range, listing arguments, part sizes. */
#include "s3/s3.h"

#include "test.h"

static int route(const char *method, const char *path, const char *query, const char *copy,
                 s3_op *op)
{
    s3_header h[] = {{"Host", "localhost"}, {"x-amz-copy-source", copy}};
    s3_http_req r = {method, path, query, h, copy ? 2 : 1, NULL};
    s3_target t;
    int rc = s3_target_parse("localhost", path, NULL, &t);
    if (rc)
        return rc;
    s3_query q;
    rc = s3_query_parse(query, &q);
    if (!rc)
        rc = s3_route(&r, &t, &q, op);
    s3_query_free(&q);
    return rc;
}

static void test_routes(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *query, *copy;
        s3_op op;
    } ok[] = {
        {"GET", "/", NULL, NULL, S3_OP_LIST_BUCKETS},
        {"PUT", "/b", NULL, NULL, S3_OP_CREATE_BUCKET},
        {"DELETE", "/b", NULL, NULL, S3_OP_DELETE_BUCKET},
        {"HEAD", "/b", NULL, NULL, S3_OP_HEAD_BUCKET},
        {"GET", "/b", "location", NULL, S3_OP_GET_BUCKET_LOCATION},
        {"PUT", "/b", "tagging", NULL, S3_OP_PUT_BUCKET_TAGGING},
        {"GET", "/b", "tagging", NULL, S3_OP_GET_BUCKET_TAGGING},
        {"DELETE", "/b", "tagging", NULL, S3_OP_DELETE_BUCKET_TAGGING},
        {"PUT", "/b", "versioning", NULL, S3_OP_PUT_BUCKET_VERSIONING},
        {"GET", "/b", "versioning", NULL, S3_OP_GET_BUCKET_VERSIONING},
        {"PUT", "/b", "cors", NULL, S3_OP_PUT_BUCKET_CORS},
        {"GET", "/b", "cors", NULL, S3_OP_GET_BUCKET_CORS},
        {"DELETE", "/b", "cors", NULL, S3_OP_DELETE_BUCKET_CORS},
        {"PUT", "/b", "lifecycle", NULL, S3_OP_PUT_BUCKET_LIFECYCLE},
        {"GET", "/b", "lifecycle", NULL, S3_OP_GET_BUCKET_LIFECYCLE},
        {"DELETE", "/b", "lifecycle", NULL, S3_OP_DELETE_BUCKET_LIFECYCLE},
        {"GET", "/b", "prefix=a&delimiter=/", NULL, S3_OP_LIST_OBJECTS},
        {"GET", "/b", "list-type=2&prefix=a", NULL, S3_OP_LIST_OBJECTS_V2},
        {"GET", "/b", "versions", NULL, S3_OP_LIST_OBJECT_VERSIONS},
        {"GET", "/b", "uploads", NULL, S3_OP_LIST_MULTIPART_UPLOADS},
        {"POST", "/b", "delete", NULL, S3_OP_DELETE_OBJECTS},
        {"OPTIONS", "/b", NULL, NULL, S3_OP_CORS_PREFLIGHT},
        {"OPTIONS", "/b/k", NULL, NULL, S3_OP_CORS_PREFLIGHT},
        {"PUT", "/b/k", NULL, NULL, S3_OP_PUT_OBJECT},
        {"PUT", "/b/k", NULL, "/src/k", S3_OP_COPY_OBJECT},
        {"GET", "/b/k", "versionId=1&response-content-type=x", NULL, S3_OP_GET_OBJECT},
        {"HEAD", "/b/k", "partNumber=1", NULL, S3_OP_HEAD_OBJECT},
        {"DELETE", "/b/k", NULL, NULL, S3_OP_DELETE_OBJECT},
        {"PUT", "/b/k", "tagging", NULL, S3_OP_PUT_OBJECT_TAGGING},
        {"GET", "/b/k", "tagging&versionId=3", NULL, S3_OP_GET_OBJECT_TAGGING},
        {"DELETE", "/b/k", "tagging", NULL, S3_OP_DELETE_OBJECT_TAGGING},
        {"POST", "/b/k", "uploads", NULL, S3_OP_CREATE_MULTIPART_UPLOAD},
        {"PUT", "/b/k", "partNumber=2&uploadId=u", NULL, S3_OP_UPLOAD_PART},
        {"PUT", "/b/k", "partNumber=2&uploadId=u", "/s/k", S3_OP_UPLOAD_PART_COPY},
        {"POST", "/b/k", "uploadId=u", NULL, S3_OP_COMPLETE_MULTIPART_UPLOAD},
        {"DELETE", "/b/k", "uploadId=u", NULL, S3_OP_ABORT_MULTIPART_UPLOAD},
        {"GET", "/b/k", "uploadId=u&max-parts=3", NULL, S3_OP_LIST_PARTS},
        {"GET", "/b", "acl", NULL, S3_OP_GET_BUCKET_ACL},
        {"PUT", "/b", "acl", NULL, S3_OP_PUT_BUCKET_ACL},
        {"GET", "/b/k", "acl", NULL, S3_OP_GET_OBJECT_ACL},
        {"PUT", "/b/k", "acl&versionId=1", NULL, S3_OP_PUT_OBJECT_ACL},
    };
    for (size_t i = 0; i < NB_ARRAY_LEN(ok); i++) {
        s3_op op;
        int rc = route(ok[i].method, ok[i].path, ok[i].query, ok[i].copy, &op);
        if (rc || op != ok[i].op)
            fail_msg("%s %s?%s: rc %d op %s, want %s", ok[i].method, ok[i].path,
                     ok[i].query ? ok[i].query : "", rc, s3_op_name(op), s3_op_name(ok[i].op));
    }
    static const struct {
        const char *method, *path, *query;
        int rc;
    } bad[] = {
        {"PUT", "/", NULL, S3_ERR_METHOD_NOT_ALLOWED},
        {"OPTIONS", "/", NULL, S3_ERR_METHOD_NOT_ALLOWED},
        {"PATCH", "/b/k", NULL, S3_ERR_METHOD_NOT_ALLOWED},
        {"PATCH", "/b", NULL, S3_ERR_METHOD_NOT_ALLOWED},
        {"DELETE", "/b", "acl", S3_ERR_METHOD_NOT_ALLOWED},
        {"DELETE", "/b/k", "acl", S3_ERR_METHOD_NOT_ALLOWED},
        {"PUT", "/b", "policy", S3_ERR_NOT_IMPLEMENTED},
        {"POST", "/b/k", "restore", S3_ERR_NOT_IMPLEMENTED},
        {"POST", "/b/k", NULL, S3_ERR_NOT_IMPLEMENTED},
        {"POST", "/b", NULL, S3_ERR_NOT_IMPLEMENTED},
        {"POST", "/b", "location", S3_ERR_METHOD_NOT_ALLOWED},
        {"DELETE", "/b", "versioning", S3_ERR_METHOD_NOT_ALLOWED},
        {"PUT", "/b/k", "partNumber=1", S3_ERR_INVALID_ARGUMENT},
        {"POST", "/b/k", "tagging", S3_ERR_METHOD_NOT_ALLOWED},
    };
    for (size_t i = 0; i < NB_ARRAY_LEN(bad); i++) {
        s3_op op;
        int rc = route(bad[i].method, bad[i].path, bad[i].query, NULL, &op);
        if (rc != bad[i].rc)
            fail_msg("%s %s?%s: got %s want %s", bad[i].method, bad[i].path,
                     bad[i].query ? bad[i].query : "", s3_error_of(rc)->code,
                     s3_error_of(bad[i].rc)->code);
    }
    assert_string_equal(s3_op_name(S3_OP_PUT_OBJECT), "PutObject");
    assert_string_equal(s3_op_name(S3_OP_COUNT), "?");
}

static void test_copy_source(void **state)
{
    (void)state;
    s3_copy_source cs;
    ASSERT_OK(s3_copy_source_parse("/src/dir/a%20b%3Fc", &cs));
    assert_string_equal(cs.bucket, "src");
    assert_string_equal(cs.key, "dir/a b?c");
    assert_string_equal(cs.version_id, "");
    ASSERT_OK(s3_copy_source_parse("src/k+1?versionId=v%2B1", &cs));
    assert_string_equal(cs.key, "k+1");
    assert_string_equal(cs.version_id, "v+1");
    static const char *const bad[] = {
        "", "/", "/src", "/src/", "src", "/src/k?x=1", "/src/k?versionId=", "/src/%zz", "//k"};
    for (size_t i = 0; i < NB_ARRAY_LEN(bad); i++)
        ASSERT_RC(s3_copy_source_parse(bad[i], &cs), S3_ERR_INVALID_ARGUMENT);
    char *big = nb_xmalloc(1200);
    strcpy(big, "/b/");
    memset(big + 3, 'k', 1025);
    big[1028] = 0;
    ASSERT_RC(s3_copy_source_parse(big, &cs), S3_ERR_KEY_TOO_LONG);
    free(big);

    s3_range r;
    ASSERT_OK(s3_copy_range_parse("bytes=0-9", 10, &r));
    assert_int_equal(r.start, 0);
    assert_int_equal(r.end, 9);
    ASSERT_RC(s3_copy_range_parse("bytes=0-10", 10, &r), S3_ERR_INVALID_RANGE);
    ASSERT_RC(s3_copy_range_parse("bytes=5-", 10, &r), S3_ERR_INVALID_ARGUMENT);
    ASSERT_RC(s3_copy_range_parse("bytes=-5", 10, &r), S3_ERR_INVALID_ARGUMENT);
    ASSERT_RC(s3_copy_range_parse("bytes=5-4", 10, &r), S3_ERR_INVALID_ARGUMENT);
    ASSERT_RC(s3_copy_range_parse(NULL, 10, &r), S3_ERR_INVALID_ARGUMENT);
}

static void test_list_args(void **state)
{
    (void)state;
    s3_query q;
    s3_list_args a;
    ASSERT_OK(s3_query_parse("list-type=2&prefix=a%20b&delimiter=%2F&max-keys=5000&"
                             "encoding-type=url&fetch-owner=true&start-after=x",
                             &q));
    ASSERT_OK(s3_list_args_parse(S3_OP_LIST_OBJECTS_V2, &q, &a));
    assert_string_equal(a.prefix, "a b");
    assert_string_equal(a.delimiter, "/");
    assert_int_equal(a.max_keys, 1000);
    assert_true(a.url_encode);
    assert_true(a.fetch_owner);
    assert_string_equal(a.marker, "x");
    assert_null(a.continuation);
    s3_list_args_free(&a);
    s3_query_free(&q);

    char tok[64], query[128];
    s3_continuation_token("dir/last key", tok);
    nb_buf enc = NB_BUF_INIT;
    ASSERT_OK(s3_uri_encode(&enc, tok, strlen(tok), false));
    ASSERT_OK(nb_buf_nul_terminate(&enc));
    snprintf(query, sizeof query, "list-type=2&continuation-token=%s&max-keys=0", enc.data);
    nb_buf_free(&enc);
    ASSERT_OK(s3_query_parse(query, &q));
    ASSERT_OK(s3_list_args_parse(S3_OP_LIST_OBJECTS_V2, &q, &a));
    assert_string_equal(a.continuation, "dir/last key");
    assert_int_equal(a.max_keys, 0);
    assert_string_equal(a.prefix, "");
    assert_null(a.delimiter);
    s3_list_args_free(&a);
    s3_query_free(&q);

    static const struct {
        s3_op op;
        const char *query;
    } bad[] = {
        {S3_OP_LIST_OBJECTS, "max-keys=-1"},
        {S3_OP_LIST_OBJECTS, "max-keys=abc"},
        {S3_OP_LIST_OBJECTS, "encoding-type=base64"},
        {S3_OP_LIST_OBJECTS_V2, "continuation-token=%21%21"},
        {S3_OP_LIST_MULTIPART_UPLOADS, "max-uploads=x"},
        {S3_OP_LIST_PARTS, "part-number-marker=10001"},
    };
    for (size_t i = 0; i < NB_ARRAY_LEN(bad); i++) {
        ASSERT_OK(s3_query_parse(bad[i].query, &q));
        ASSERT_RC(s3_list_args_parse(bad[i].op, &q, &a), S3_ERR_INVALID_ARGUMENT);
        s3_query_free(&q);
    }
    ASSERT_OK(s3_query_parse("key-marker=k&version-id-marker=v&max-keys=3", &q));
    ASSERT_OK(s3_list_args_parse(S3_OP_LIST_OBJECT_VERSIONS, &q, &a));
    assert_string_equal(a.marker, "k");
    assert_string_equal(a.version_marker, "v");
    assert_int_equal(a.max_keys, 3);
    s3_list_args_free(&a);
    ASSERT_RC(s3_list_args_parse(S3_OP_PUT_OBJECT, &q, &a), NB_EUSAGE);
    s3_query_free(&q);
    ASSERT_OK(s3_query_parse("uploadId=u&part-number-marker=7&max-parts=2", &q));
    ASSERT_OK(s3_list_args_parse(S3_OP_LIST_PARTS, &q, &a));
    assert_int_equal(a.part_marker, 7);
    assert_int_equal(a.max_keys, 2);
    s3_list_args_free(&a);
    s3_query_free(&q);
}

static void test_acls(void **state)
{
    (void)state;
    s3_header h[] = {{"x-amz-acl", "public-read"}};
    s3_http_req r = {"PUT", "/b", "acl", h, 1, NULL};
    s3_acl acl;
    ASSERT_OK(s3_acl_from_req(&r, &acl));
    assert_int_equal(acl, S3_ACL_PUBLIC_READ);
    assert_string_equal(s3_acl_name(acl), "public-read");
    r.n_headers = 0;
    ASSERT_OK(s3_acl_from_req(&r, &acl));
    assert_int_equal(acl, S3_ACL_PRIVATE);
    s3_header bad[] = {{"x-amz-acl", "public"}};
    r.headers = bad;
    r.n_headers = 1;
    ASSERT_RC(s3_acl_from_req(&r, &acl), S3_ERR_INVALID_ARGUMENT);
    s3_header grant[] = {{"x-amz-grant-read", "uri=x"}};
    r.headers = grant;
    ASSERT_RC(s3_acl_from_req(&r, &acl), S3_ERR_NOT_IMPLEMENTED);

    nb_buf b = NB_BUF_INIT;
    s3_owner me = {"id1", "root"};
    ASSERT_OK(s3_xml_acl(&b, &me, S3_ACL_PUBLIC_READ));
    ASSERT_OK(nb_buf_nul_terminate(&b));
    const char *x = (const char *)b.data;
    assert_non_null(strstr(x, "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/"
                              "\"><Owner><ID>id1</ID><DisplayName>root</DisplayName></Owner>"));
    assert_non_null(strstr(x, "xsi:type=\"CanonicalUser\"><ID>id1</ID><DisplayName>root"
                              "</DisplayName></Grantee><Permission>FULL_CONTROL</Permission>"));
    assert_non_null(strstr(x, "<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI>"
                              "</Grantee><Permission>READ</Permission>"));
    assert_null(strstr(x, "WRITE"));
    nb_buf_free(&b);
}

static void test_part_sizes(void **state)
{
    (void)state;
    uint64_t ok[] = {S3_MIN_PART_SIZE, S3_MIN_PART_SIZE, 1};
    ASSERT_OK(s3_parts_size_check(ok, 3));
    ASSERT_OK(s3_parts_size_check(ok + 2, 1));
    uint64_t small[] = {S3_MIN_PART_SIZE - 1, 1};
    ASSERT_RC(s3_parts_size_check(small, 2), S3_ERR_ENTITY_TOO_SMALL);
    uint64_t big[] = {S3_MAX_PUT_SIZE + 1};
    ASSERT_RC(s3_parts_size_check(big, 1), S3_ERR_ENTITY_TOO_LARGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),     cmocka_unit_test(test_copy_source),
        cmocka_unit_test(test_list_args),  cmocka_unit_test(test_acls),
        cmocka_unit_test(test_part_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
