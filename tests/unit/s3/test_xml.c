/* XML: the writer and error documents, and every request-body parser with
 * good, bad and hostile input. */
#include <errno.h>

#include "s3/s3.h"

#include "test.h"

static char *str(nb_buf *b)
{
    assert_int_equal(nb_buf_nul_terminate(b), 0);
    return (char *)b->data;
}

static void test_writer_and_errors(void **state)
{
    (void)state;
    nb_buf b = NB_BUF_INIT;
    ASSERT_OK(s3_error_xml(&b, S3_ERR_NO_SUCH_KEY, NULL, "/bucket/a<b>&\"c'", "REQ1"));
    assert_string_equal(str(&b),
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                        "<Error><Code>NoSuchKey</Code><Message>The specified key does "
                        "not exist.</Message><Resource>/bucket/a&lt;b&gt;&amp;&quot;c&apos;"
                        "</Resource><RequestId>REQ1</RequestId><HostId>REQ1</HostId>"
                        "</Error>");
    nb_buf_reset(&b);

    /* Mapping from our codes. */
    assert_string_equal(s3_error_of(NB_ENOTFOUND)->code, "NoSuchKey");
    assert_string_equal(s3_error_of(-ENOENT)->code, "NoSuchKey");
    assert_string_equal(s3_error_of(-ENAMETOOLONG)->code, "KeyTooLongError");
    assert_string_equal(s3_error_of(NB_ETOOBIG)->code, "EntityTooLarge");
    assert_string_equal(s3_error_of(NB_ECHECKSUM)->code, "BadDigest");
    assert_string_equal(s3_error_of(NB_EAGAIN)->code, "SlowDown");
    assert_int_equal(s3_error_of(NB_EAGAIN)->http_status, 503);
    assert_string_equal(s3_error_of(-ENOTEMPTY)->code, "BucketNotEmpty");
    assert_string_equal(s3_error_of(-EIO)->code, "InternalError");
    assert_int_equal(s3_error_of(-EIO)->http_status, 500);
    assert_string_equal(s3_error_of(12345)->code, "InternalError");
    assert_int_equal(s3_error_of(S3_ERR_INVALID_RANGE)->http_status, 416);
    assert_int_equal(s3_error_of(S3_ERR_METHOD_NOT_ALLOWED)->http_status, 405);
    assert_int_equal(s3_error_of(S3_ERR_MISSING_CONTENT_LENGTH)->http_status, 411);
    assert_int_equal(s3_error_of(S3_ERR_NOT_IMPLEMENTED)->http_status, 501);
    assert_int_equal(s3_error_of(S3_ERR_NOT_MODIFIED)->http_status, 304);
    assert_int_equal(s3_error_of(S3_ERR_PRECONDITION_FAILED)->http_status, 412);
    assert_int_equal(s3_error_of(S3_ERR_BUCKET_ALREADY_OWNED)->http_status, 409);
    assert_true(s3_is_s3_error(S3_ERR_SERVICE_UNAVAILABLE));
    assert_false(s3_is_s3_error(NB_ENOTFOUND));

    /* A listing built with the generic writer; control characters escape. */
    s3_xml x;
    s3_xml_begin(&x, &b);
    s3_xml_open_ns(&x, "ListBucketResult");
    s3_xml_elem(&x, "Name", "bkt");
    s3_xml_elem(&x, "Prefix", "");
    s3_xml_elem_u64(&x, "MaxKeys", 1000);
    s3_xml_elem_bool(&x, "IsTruncated", false);
    s3_xml_open(&x, "Contents");
    s3_xml_elem(&x, "Key", "a\x01\tb");
    s3_xml_elem_time(&x, "LastModified", 1369353600, 7);
    s3_xml_elemf(&x, "ETag", "\"%s\"", "abc");
    ASSERT_OK(s3_xml_end(&x));
    assert_string_equal(
        str(&b),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
        "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix></Prefix>"
        "<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>a&#x1;&#x9;b</Key>"
        "<LastModified>2013-05-24T00:00:00.007Z</LastModified><ETag>&quot;abc&quot;</ETag>"
        "</Contents></ListBucketResult>");
    nb_buf_free(&b);

    /* The cap is reported once, at the end. */
    nb_buf small;
    nb_buf_init(&small, 64);
    s3_xml_begin(&x, &small);
    s3_xml_open(&x, "A");
    for (int i = 0; i < 100; i++)
        s3_xml_elem(&x, "B", "0123456789");
    ASSERT_RC(s3_xml_end(&x), NB_ETOOBIG);
    nb_buf_free(&small);
    /* Too deep. */
    nb_buf deep = NB_BUF_INIT;
    s3_xml_begin(&x, &deep);
    for (int i = 0; i < S3_XML_DEPTH + 1; i++)
        s3_xml_open(&x, "D");
    ASSERT_RC(s3_xml_end(&x), NB_EUSAGE);
    nb_buf_free(&deep);

    /* Fixed documents. */
    nb_buf d = NB_BUF_INIT;
    ASSERT_OK(s3_xml_location(&d, "us-east-1"));
    assert_non_null(strstr(str(&d), "<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/"
                                    "2006-03-01/\"></LocationConstraint>"));
    nb_buf_reset(&d);
    ASSERT_OK(s3_xml_location(&d, "eu-west-1"));
    assert_non_null(strstr(str(&d), ">eu-west-1</LocationConstraint>"));
    nb_buf_reset(&d);
    ASSERT_OK(s3_xml_copy_result(&d, "d41d8cd98f00b204e9800998ecf8427e", 0, false));
    assert_non_null(strstr(str(&d), "<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/"
                                    "2006-03-01/\"><LastModified>1970-01-01T00:00:00.000Z"
                                    "</LastModified><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e"
                                    "&quot;</ETag></CopyObjectResult>"));
    nb_buf_reset(&d);
    ASSERT_OK(s3_xml_initiate_upload(&d, "b", "k&", "U1"));
    assert_non_null(strstr(str(&d), "<Bucket>b</Bucket><Key>k&amp;</Key><UploadId>U1</UploadId>"));
    nb_buf_reset(&d);
    ASSERT_OK(s3_xml_complete_upload(&d, "http://h/b/k", "b", "k", "abc-2"));
    assert_non_null(strstr(str(&d), "<ETag>&quot;abc-2&quot;</ETag>"));
    nb_buf_reset(&d);
    ASSERT_OK(s3_xml_versioning(&d, NULL));
    assert_non_null(strstr(str(&d), "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/"
                                    "doc/2006-03-01/\"></VersioningConfiguration>"));
    nb_buf_reset(&d);
    ASSERT_OK(s3_xml_versioning(&d, "Enabled"));
    assert_non_null(strstr(str(&d), "<Status>Enabled</Status>"));
    nb_buf_free(&d);
}

static void test_listings(void **state)
{
    (void)state;
    nb_buf b = NB_BUF_INIT;
    s3_xml x;
    s3_owner me = {"id1", "root"};

    s3_xml_buckets_begin(&x, &b, &me);
    s3_xml_bucket(&x, "b1", 1369353600);
    ASSERT_OK(s3_xml_end(&x));
    assert_non_null(strstr(str(&b),
                           "<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/"
                           "2006-03-01/\"><Owner><ID>id1</ID><DisplayName>root</DisplayName>"
                           "</Owner><Buckets><Bucket><Name>b1</Name><CreationDate>"
                           "2013-05-24T00:00:00.000Z</CreationDate></Bucket></Buckets>"
                           "</ListAllMyBucketsResult>"));
    nb_buf_reset(&b);

    /* v1 with url encoding */
    s3_list_params p = {.url_encode = true,
                        .truncated = true,
                        .bucket = "bkt",
                        .prefix = "a b/",
                        .delimiter = "/",
                        .max_keys = 2,
                        .next_marker = "a b/c+d"};
    s3_list_object o = {.key = "a b/c+d", .mtime = 0, .etag = "e1", .size = 5, .owner = &me};
    s3_xml_list_begin(&x, &b, &p);
    s3_xml_list_object(&x, &p, &o);
    s3_xml_common_prefix(&x, true, "a b/x y/");
    ASSERT_OK(s3_xml_end(&x));
    assert_string_equal(
        str(&b),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
        "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix>a+b/</Prefix>"
        "<Marker></Marker><NextMarker>a+b/c%2Bd</NextMarker><MaxKeys>2</MaxKeys><Delimiter>/"
        "</Delimiter><IsTruncated>true</IsTruncated><EncodingType>url</EncodingType><Contents>"
        "<Key>a+b/c%2Bd</Key><LastModified>1970-01-01T00:00:00.000Z</LastModified><ETag>&quot;e1"
        "&quot;</ETag><Size>5</Size><Owner><ID>id1</ID><DisplayName>root</DisplayName></Owner>"
        "<StorageClass>STANDARD</StorageClass></Contents><CommonPrefixes><Prefix>a+b/x+y/</Prefix>"
        "</CommonPrefixes></ListBucketResult>");
    nb_buf_reset(&b);

    /* v2 without owner */
    s3_list_params p2 = {.v2 = true,
                         .bucket = "bkt",
                         .max_keys = 1000,
                         .continuation_token = "tok",
                         .next_continuation_token = "tok2",
                         .start_after = "a&b",
                         .key_count = 1};
    o.owner = NULL;
    o.key = "k<1>";
    s3_xml_list_begin(&x, &b, &p2);
    s3_xml_list_object(&x, &p2, &o);
    ASSERT_OK(s3_xml_end(&x));
    const char *v2 = str(&b);
    assert_non_null(strstr(v2, "<Prefix></Prefix><StartAfter>a&amp;b</StartAfter><Continuation"
                               "Token>tok</ContinuationToken><NextContinuationToken>tok2"
                               "</NextContinuationToken><KeyCount>1</KeyCount><MaxKeys>1000"
                               "</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>k&lt;1&gt;"
                               "</Key>"));
    assert_null(strstr(v2, "<Owner>"));
    assert_null(strstr(v2, "<Marker>"));
    nb_buf_reset(&b);

    /* versions with a delete marker */
    s3_versions_params vp = {
        .bucket = "bkt", .max_keys = 10, .next_key_marker = "k", .next_version_id_marker = "v9"};
    s3_xml_versions_begin(&x, &b, &vp);
    s3_list_object v = {
        .key = "k", .etag = "e", .size = 1, .version_id = "v1", .is_latest = false, .owner = &me};
    s3_xml_version(&x, false, &v);
    s3_list_object dm = {
        .key = "k", .version_id = "v2", .is_latest = true, .delete_marker = true, .owner = &me};
    s3_xml_version(&x, false, &dm);
    ASSERT_OK(s3_xml_end(&x));
    const char *vs = str(&b);
    assert_non_null(strstr(vs, "<Version><Key>k</Key><VersionId>v1</VersionId><IsLatest>false"
                               "</IsLatest>"));
    assert_non_null(strstr(vs, "<DeleteMarker><Key>k</Key><VersionId>v2</VersionId><IsLatest>true"
                               "</IsLatest><LastModified>1970-01-01T00:00:00.000Z</LastModified>"
                               "<Owner><ID>id1</ID><DisplayName>root</DisplayName></Owner>"
                               "</DeleteMarker>"));
    assert_non_null(strstr(vs, "<NextVersionIdMarker>v9</NextVersionIdMarker>"));
    nb_buf_reset(&b);

    s3_parts_params pp = {.bucket = "b",
                          .key = "k",
                          .upload_id = "u",
                          .max_parts = 1000,
                          .next_part_number_marker = 2,
                          .owner = &me};
    s3_xml_parts_begin(&x, &b, &pp);
    s3_xml_part(&x, 2, 0, "abc", 5 << 20);
    ASSERT_OK(s3_xml_end(&x));
    assert_non_null(strstr(str(&b), "<Part><PartNumber>2</PartNumber><LastModified>1970-01-01T00:"
                                    "00:00.000Z</LastModified><ETag>&quot;abc&quot;</ETag><Size>"
                                    "5242880</Size></Part></ListPartsResult>"));
    nb_buf_reset(&b);

    s3_uploads_params up = {.bucket = "b", .max_uploads = 1000, .url_encode = true};
    s3_xml_uploads_begin(&x, &b, &up);
    s3_xml_upload(&x, true, "a b", "u1", &me, 0);
    s3_xml_common_prefix(&x, true, "p/");
    ASSERT_OK(s3_xml_end(&x));
    assert_non_null(strstr(str(&b), "<Upload><Key>a+b</Key><UploadId>u1</UploadId><Initiator>"));
    nb_buf_reset(&b);

    s3_xml_delete_begin(&x, &b);
    s3_xml_deleted(&x, "a", NULL, false, NULL);
    s3_xml_deleted(&x, "b", "v1", true, "v2");
    s3_xml_delete_error(&x, "c", NULL, -EACCES);
    ASSERT_OK(s3_xml_end(&x));
    assert_non_null(strstr(str(&b), "<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/"
                                    "\"><Deleted><Key>a</Key></Deleted><Deleted><Key>b</Key>"
                                    "<VersionId>v1</VersionId><DeleteMarker>true</DeleteMarker>"
                                    "<DeleteMarkerVersionId>v2</DeleteMarkerVersionId></Deleted>"
                                    "<Error><Key>c</Key><Code>AccessDenied</Code><Message>Access "
                                    "Denied</Message></Error></DeleteResult>"));
    nb_buf_free(&b);

    nb_buf e = NB_BUF_INIT;
    ASSERT_OK(s3_url_encode_key(&e, "a/b c*~+%\xc3\xa9", strlen("a/b c*~+%\xc3\xa9")));
    ASSERT_OK(nb_buf_nul_terminate(&e));
    assert_string_equal((char *)e.data, "a/b+c*~%2B%25%C3%A9");
    nb_buf_free(&e);
}

#define P(s) s, strlen(s)

static void test_delete(void **state)
{
    (void)state;
    s3_delete_req r;
    ASSERT_OK(s3_parse_delete(
        P("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
          "<Object><Key>a &amp; b</Key></Object><Object><Key> sp </Key>"
          "<VersionId>v1</VersionId></Object></Delete>"),
        &r));
    assert_true(r.quiet);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.objects[0].key, "a & b");
    assert_null(r.objects[0].version_id);
    assert_string_equal(r.objects[1].key, " sp ");
    assert_string_equal(r.objects[1].version_id, "v1");
    s3_delete_req_free(&r);

    static const char *const bad[] = {
        "",
        "<Delete/>",
        "<Delete><Object></Object></Delete>",
        "<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>",
        "<Delete><Quiet>maybe</Quiet><Object><Key>a</Key></Object></Delete>",
        "<Remove><Object><Key>a</Key></Object></Remove>",
        "<Delete><Object><Key>a</Key></Object>",
        "<Delete><Object><Key>a</Key></Object></Delete><Delete/>",
        "<!DOCTYPE d [<!ENTITY x \"y\">]><Delete><Object><Key>&x;</Key></Object></Delete>",
        "<Delete><Object><Key>&undefined;</Key></Object></Delete>",
        "\xff\xfe<Delete>",
        "<Delete><Object><Key>a\xff</Key></Object></Delete>",
    };
    for (size_t i = 0; i < NB_ARRAY_LEN(bad); i++)
        ASSERT_RC(s3_parse_delete(P(bad[i]), &r), S3_ERR_MALFORMED_XML);

    /* 1000 keys are fine, 1001 are not. */
    nb_buf b = NB_BUF_INIT;
    ASSERT_OK(nb_buf_append_str(&b, "<Delete>"));
    for (int i = 0; i < 1000; i++)
        ASSERT_OK(nb_buf_appendf(&b, "<Object><Key>k%d</Key></Object>", i));
    ASSERT_OK(nb_buf_append_str(&b, "</Delete>"));
    ASSERT_OK(s3_parse_delete(b.data, b.len, &r));
    assert_int_equal(r.n, 1000);
    assert_string_equal(r.objects[999].key, "k999");
    s3_delete_req_free(&r);
    b.len -= strlen("</Delete>");
    ASSERT_OK(nb_buf_append_str(&b, "<Object><Key>x</Key></Object></Delete>"));
    ASSERT_RC(s3_parse_delete(b.data, b.len, &r), S3_ERR_MALFORMED_XML);
    nb_buf_free(&b);

    /* Billion laughs, deep nesting and oversized bodies are refused. */
    const char *laughs =
        "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\">"
        "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;\">]>"
        "<Delete><Object><Key>&c;</Key></Object></Delete>";
    ASSERT_RC(s3_parse_delete(P(laughs), &r), S3_ERR_MALFORMED_XML);
    nb_buf deep = NB_BUF_INIT;
    ASSERT_OK(nb_buf_append_str(&deep, "<Delete>"));
    for (int i = 0; i < 10000; i++)
        ASSERT_OK(nb_buf_append_str(&deep, "<x>"));
    ASSERT_RC(s3_parse_delete(deep.data, deep.len, &r), S3_ERR_MALFORMED_XML);
    nb_buf_free(&deep);
    char *big = nb_xmalloc(S3_XML_BODY_MAX + 1);
    memset(big, ' ', S3_XML_BODY_MAX + 1);
    ASSERT_RC(s3_parse_delete(big, S3_XML_BODY_MAX + 1, &r), S3_ERR_MALFORMED_XML);
    free(big);
}

static void test_complete(void **state)
{
    (void)state;
    s3_complete_req r;
    ASSERT_OK(s3_parse_complete(
        P("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
          "<Part><PartNumber>1</PartNumber><ETag>\"aaa\"</ETag></Part>"
          "<Part><ETag>&quot;bbb&quot;</ETag><PartNumber> 3 </PartNumber>"
          "<ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>"),
        &r));
    assert_int_equal(r.n, 2);
    assert_int_equal(r.parts[0].number, 1);
    assert_string_equal(r.parts[0].etag, "aaa");
    assert_int_equal(r.parts[1].number, 3);
    assert_string_equal(r.parts[1].etag, "bbb");
    s3_complete_req_free(&r);

#define PART(n) "<Part><PartNumber>" #n "</PartNumber><ETag>e</ETag></Part>"
    ASSERT_RC(s3_parse_complete(
                  P("<CompleteMultipartUpload>" PART(2) PART(1) "</CompleteMultipartUpload>"), &r),
              S3_ERR_INVALID_PART_ORDER);
    ASSERT_RC(s3_parse_complete(
                  P("<CompleteMultipartUpload>" PART(2) PART(2) "</CompleteMultipartUpload>"), &r),
              S3_ERR_INVALID_PART_ORDER);
    ASSERT_RC(
        s3_parse_complete(P("<CompleteMultipartUpload>" PART(0) "</CompleteMultipartUpload>"), &r),
        S3_ERR_INVALID_ARGUMENT);
    ASSERT_RC(s3_parse_complete(
                  P("<CompleteMultipartUpload>" PART(10001) "</CompleteMultipartUpload>"), &r),
              S3_ERR_INVALID_ARGUMENT);
    ASSERT_RC(
        s3_parse_complete(P("<CompleteMultipartUpload>" PART(x) "</CompleteMultipartUpload>"), &r),
        S3_ERR_MALFORMED_XML);
    ASSERT_RC(s3_parse_complete(P("<CompleteMultipartUpload></CompleteMultipartUpload>"), &r),
              S3_ERR_MALFORMED_XML);
    ASSERT_RC(s3_parse_complete(P("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                                  "</Part></CompleteMultipartUpload>"),
                                &r),
              S3_ERR_MALFORMED_XML);
    ASSERT_RC(
        s3_parse_complete(
            P("<CompleteMultipartUpload>" PART(99999999999) "</CompleteMultipartUpload>"), &r),
        S3_ERR_MALFORMED_XML);
}

static void test_tagging(void **state)
{
    (void)state;
    s3_tagset t;
    ASSERT_OK(s3_parse_tagging(P("<Tagging><TagSet><Tag><Key>k1</Key><Value>v1</Value></Tag>"
                                 "<Tag><Key>k2</Key><Value></Value></Tag></TagSet></Tagging>"),
                               false, &t));
    assert_int_equal(t.n, 2);
    assert_string_equal(t.tags[1].key, "k2");
    assert_string_equal(t.tags[1].value, "");
    nb_buf b = NB_BUF_INIT;
    ASSERT_OK(s3_xml_tagging(&b, &t));
    ASSERT_OK(nb_buf_nul_terminate(&b));
    assert_non_null(strstr((char *)b.data, "<TagSet><Tag><Key>k1</Key><Value>v1</Value></Tag><Tag>"
                                           "<Key>k2</Key><Value></Value></Tag></TagSet>"));
    nb_buf_free(&b);
    s3_tagset_free(&t);

    /* Limits: 10 object tags, 50 bucket tags. */
    nb_buf x = NB_BUF_INIT;
    ASSERT_OK(nb_buf_append_str(&x, "<Tagging><TagSet>"));
    for (int i = 0; i < 11; i++)
        ASSERT_OK(nb_buf_appendf(&x, "<Tag><Key>k%d</Key><Value>v</Value></Tag>", i));
    ASSERT_OK(nb_buf_append_str(&x, "</TagSet></Tagging>"));
    ASSERT_RC(s3_parse_tagging(x.data, x.len, false, &t), S3_ERR_INVALID_TAG);
    ASSERT_OK(s3_parse_tagging(x.data, x.len, true, &t));
    s3_tagset_free(&t);
    nb_buf_free(&x);

    char key[300], val[300];
    memset(key, 'k', sizeof key);
    memset(val, 'v', sizeof val);
    char *doc = nb_xasprintf("<Tagging><TagSet><Tag><Key>%.*s</Key><Value>%.*s</Value></Tag>"
                             "</TagSet></Tagging>",
                             128, key, 256, val);
    ASSERT_OK(s3_parse_tagging(P(doc), false, &t));
    s3_tagset_free(&t);
    free(doc);
    doc = nb_xasprintf("<Tagging><TagSet><Tag><Key>%.*s</Key><Value>v</Value></Tag>"
                       "</TagSet></Tagging>",
                       129, key);
    ASSERT_RC(s3_parse_tagging(P(doc), false, &t), S3_ERR_INVALID_TAG);
    free(doc);
    doc = nb_xasprintf("<Tagging><TagSet><Tag><Key>k</Key><Value>%.*s</Value></Tag>"
                       "</TagSet></Tagging>",
                       257, val);
    ASSERT_RC(s3_parse_tagging(P(doc), false, &t), S3_ERR_INVALID_TAG);
    free(doc);
    /* 128 two-byte characters are 128 characters. */
    nb_buf u = NB_BUF_INIT;
    ASSERT_OK(nb_buf_append_str(&u, "<Tagging><TagSet><Tag><Key>"));
    for (int i = 0; i < 128; i++)
        ASSERT_OK(nb_buf_append_str(&u, "\xc3\xa9"));
    ASSERT_OK(nb_buf_append_str(&u, "</Key></Tag></TagSet></Tagging>"));
    ASSERT_OK(s3_parse_tagging(u.data, u.len, false, &t));
    s3_tagset_free(&t);
    nb_buf_free(&u);

    ASSERT_RC(s3_parse_tagging(P("<Tagging><TagSet><Tag><Key>a</Key></Tag><Tag><Key>a</Key>"
                                 "</Tag></TagSet></Tagging>"),
                               false, &t),
              S3_ERR_INVALID_TAG);
    ASSERT_RC(s3_parse_tagging(P("<Tagging><TagSet><Tag><Key></Key></Tag></TagSet></Tagging>"),
                               false, &t),
              S3_ERR_INVALID_TAG);
    ASSERT_RC(s3_parse_tagging(P("<Tagging><TagSet><Tag><Key>aws:x</Key></Tag></TagSet>"
                                 "</Tagging>"),
                               false, &t),
              S3_ERR_INVALID_TAG);
    ASSERT_RC(s3_parse_tagging(P("<Tagging></Tagging>"), false, &t), S3_ERR_MALFORMED_XML);
    ASSERT_RC(s3_parse_tagging(P("<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet>"
                                 "</Tagging>"),
                               false, &t),
              S3_ERR_MALFORMED_XML);

    ASSERT_OK(s3_parse_tagging_header("a=1&b=two%20words&c=", &t));
    assert_int_equal(t.n, 3);
    assert_string_equal(t.tags[1].value, "two words");
    s3_tagset_free(&t);
    ASSERT_RC(s3_parse_tagging_header("a=1&a=2", &t), S3_ERR_INVALID_TAG);
    ASSERT_RC(s3_parse_tagging_header("a=%zz", &t), S3_ERR_INVALID_TAG);
}

static void test_versioning(void **state)
{
    (void)state;
    s3_versioning v;
    ASSERT_OK(s3_parse_versioning(P("<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/"
                                    "doc/2006-03-01/\"><Status>Enabled</Status>"
                                    "</VersioningConfiguration>"),
                                  &v));
    assert_int_equal(v.status, S3_VERSIONING_ENABLED);
    ASSERT_OK(s3_parse_versioning(P("<VersioningConfiguration><Status>Suspended</Status>"
                                    "<MfaDelete>Disabled</MfaDelete></VersioningConfiguration>"),
                                  &v));
    assert_int_equal(v.status, S3_VERSIONING_SUSPENDED);
    assert_false(v.mfa_delete);
    ASSERT_RC(s3_parse_versioning(P("<VersioningConfiguration><Status>On</Status>"
                                    "</VersioningConfiguration>"),
                                  &v),
              S3_ERR_MALFORMED_XML);
    ASSERT_RC(s3_parse_versioning(P("<Versioning/>"), &v), S3_ERR_MALFORMED_XML);
}

static void test_cors(void **state)
{
    (void)state;
    s3_cors c;
    ASSERT_OK(s3_parse_cors(P("<CORSConfiguration><CORSRule><ID>r1</ID>"
                              "<AllowedOrigin>http://*.example.com</AllowedOrigin>"
                              "<AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod>"
                              "<AllowedHeader>x-amz-*</AllowedHeader>"
                              "<ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds>"
                              "</CORSRule><CORSRule><AllowedOrigin>*</AllowedOrigin>"
                              "<AllowedMethod>HEAD</AllowedMethod></CORSRule></CORSConfiguration>"),
                            &c));
    assert_int_equal(c.n, 2);
    assert_string_equal(c.rules[0].id, "r1");
    assert_int_equal(c.rules[0].max_age, 3000);
    assert_int_equal(c.rules[1].max_age, -1);
    assert_ptr_equal(s3_cors_match(&c, "http://www.example.com", "PUT", "X-Amz-Date, x-amz-meta-a"),
                     &c.rules[0]);
    assert_null(s3_cors_match(&c, "http://www.example.com", "PUT", "Authorization"));
    assert_null(s3_cors_match(&c, "http://www.example.org", "GET", NULL));
    assert_ptr_equal(s3_cors_match(&c, "http://anything", "HEAD", NULL), &c.rules[1]);
    assert_null(s3_cors_match(&c, "http://anything", "DELETE", NULL));
    s3_cors_free(&c);

    ASSERT_RC(
        s3_parse_cors(P("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
                        "<AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>"),
                      &c),
        S3_ERR_INVALID_REQUEST);
    ASSERT_RC(s3_parse_cors(P("<CORSConfiguration><CORSRule><AllowedOrigin>*.*</AllowedOrigin>"
                              "<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"),
                            &c),
              S3_ERR_INVALID_REQUEST);
    ASSERT_RC(s3_parse_cors(P("<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod>"
                              "</CORSRule></CORSConfiguration>"),
                            &c),
              S3_ERR_MALFORMED_XML);
    ASSERT_RC(s3_parse_cors(P("<CORSConfiguration></CORSConfiguration>"), &c),
              S3_ERR_MALFORMED_XML);
}

static void test_lifecycle(void **state)
{
    (void)state;
    s3_lifecycle l;
    ASSERT_OK(s3_parse_lifecycle(
        P("<LifecycleConfiguration>"
          "<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>"
          "<Expiration><Days>30</Days></Expiration>"
          "<NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays>"
          "<NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration>"
          "<AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation>"
          "</AbortIncompleteMultipartUpload></Rule>"
          "<Rule><ID>tagged</ID><Filter><And><Prefix>a/</Prefix><Tag><Key>t</Key><Value>1</Value>"
          "</Tag><Tag><Key>u</Key><Value>2</Value></Tag><ObjectSizeGreaterThan>10"
          "</ObjectSizeGreaterThan></And></Filter><Status>Disabled</Status>"
          "<Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>"
          "<Rule><Prefix></Prefix><Status>Enabled</Status><Expiration>"
          "<ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>"
          "<Rule><ID>t</ID><Filter/><Status>Enabled</Status><Transition><Days>30</Days>"
          "<StorageClass>GLACIER</StorageClass></Transition></Rule>"
          "</LifecycleConfiguration>"),
        &l));
    assert_int_equal(l.n, 4);
    assert_string_equal(l.rules[0].prefix, "logs/");
    assert_true(l.rules[0].enabled);
    assert_int_equal(l.rules[0].expiration_days, 30);
    assert_int_equal(l.rules[0].noncurrent_days, 7);
    assert_int_equal(l.rules[0].newer_noncurrent, 2);
    assert_int_equal(l.rules[0].abort_upload_days, 3);
    assert_false(l.rules[1].enabled);
    assert_string_equal(l.rules[1].prefix, "a/");
    assert_int_equal(l.rules[1].tags.n, 2);
    assert_int_equal(l.rules[1].size_gt, 10);
    assert_int_equal(l.rules[1].expiration_date, 1893456000);
    assert_true(l.rules[2].expired_delete_marker);
    assert_string_equal(l.rules[2].id, "");
    assert_true(l.rules[3].has_transition);
    s3_lifecycle_free(&l);

#define RULE(body) "<LifecycleConfiguration><Rule>" body "</Rule></LifecycleConfiguration>"
    static const struct {
        const char *doc;
        int rc;
    } bad[] = {
        {RULE("<Status>Enabled</Status>"), S3_ERR_INVALID_REQUEST},
        {RULE("<Status>On</Status><Expiration><Days>1</Days></Expiration>"), S3_ERR_MALFORMED_XML},
        {RULE("<Expiration><Days>1</Days></Expiration>"), S3_ERR_MALFORMED_XML},
        {RULE("<Status>Enabled</Status><Expiration><Days>0</Days></Expiration>"),
         S3_ERR_INVALID_ARGUMENT},
        {RULE("<Status>Enabled</Status><Expiration><Days>x</Days></Expiration>"),
         S3_ERR_MALFORMED_XML},
        {RULE("<Status>Enabled</Status><Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date>"
              "</Expiration>"),
         S3_ERR_MALFORMED_XML},
        {RULE("<Status>Enabled</Status><Expiration><Date>2030-01-01T01:00:00Z</Date>"
              "</Expiration>"),
         S3_ERR_INVALID_ARGUMENT},
        {RULE("<Prefix>a</Prefix><Filter><Prefix>a</Prefix></Filter><Status>Enabled</Status>"
              "<Expiration><Days>1</Days></Expiration>"),
         S3_ERR_MALFORMED_XML},
        {RULE("<Filter><Prefix>a</Prefix><Tag><Key>k</Key></Tag></Filter><Status>Enabled</Status>"
              "<Expiration><Days>1</Days></Expiration>"),
         S3_ERR_MALFORMED_XML},
        {RULE("<Filter><Tag><Key>k</Key></Tag></Filter><Status>Enabled</Status>"
              "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
              "</AbortIncompleteMultipartUpload>"),
         S3_ERR_INVALID_ARGUMENT},
        {RULE("<Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
              "<ObjectSizeLessThan>5</ObjectSizeLessThan></And></Filter><Status>Enabled</Status>"
              "<Expiration><Days>1</Days></Expiration>"),
         S3_ERR_INVALID_ARGUMENT},
        {"<LifecycleConfiguration><Rule><ID>x</ID><Status>Enabled</Status><Expiration><Days>1"
         "</Days></Expiration></Rule><Rule><ID>x</ID><Status>Enabled</Status><Expiration><Days>2"
         "</Days></Expiration></Rule></LifecycleConfiguration>",
         S3_ERR_INVALID_ARGUMENT},
        {"<LifecycleConfiguration></LifecycleConfiguration>", S3_ERR_MALFORMED_XML},
    };
    for (size_t i = 0; i < NB_ARRAY_LEN(bad); i++) {
        int rc = s3_parse_lifecycle(P(bad[i].doc), &l);
        if (rc != bad[i].rc)
            fail_msg("case %zu: got %s want %s", i, nb_errname(rc), nb_errname(bad[i].rc));
    }
}

/* Every prefix and single-byte corruption of valid documents parses or
 * fails cleanly (ASan/UBSan watch). */
static void test_hostile_mutations(void **state)
{
    (void)state;
    const char *docs[] = {
        "<Delete><Quiet>true</Quiet><Object><Key>a</Key><VersionId>v</VersionId></Object></Delete>",
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part>"
        "</CompleteMultipartUpload>",
        "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>",
        "<LifecycleConfiguration><Rule><ID>i</ID><Filter><And><Prefix>p</Prefix><Tag><Key>k</Key>"
        "<Value>v</Value></Tag></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days>"
        "</Expiration></Rule></LifecycleConfiguration>",
        "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET"
        "</AllowedMethod></CORSRule></CORSConfiguration>",
    };
    for (size_t d = 0; d < NB_ARRAY_LEN(docs); d++) {
        size_t n = strlen(docs[d]);
        char *m = nb_xmalloc(n);
        for (size_t len = 0; len <= n; len++) {
            for (size_t i = 0; i < (len ? len : 1); i++) {
                memcpy(m, docs[d], n);
                if (len == n)
                    m[i] = (char)(m[i] ^ (i % 3 == 0 ? 0x20 : i % 3 == 1 ? 0x01 : 0x7f));
                s3_delete_req a;
                s3_complete_req b;
                s3_tagset c;
                s3_lifecycle e;
                s3_cors f;
                s3_versioning g;
                if (!s3_parse_delete(m, len, &a))
                    s3_delete_req_free(&a);
                if (!s3_parse_complete(m, len, &b))
                    s3_complete_req_free(&b);
                if (!s3_parse_tagging(m, len, true, &c))
                    s3_tagset_free(&c);
                if (!s3_parse_lifecycle(m, len, &e))
                    s3_lifecycle_free(&e);
                if (!s3_parse_cors(m, len, &f))
                    s3_cors_free(&f);
                if (s3_parse_versioning(m, len, &g) == 0)
                    assert_true(g.status <= S3_VERSIONING_SUSPENDED);
                if (len && len < n)
                    break; /* prefixes: unmutated only */
            }
        }
        free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_and_errors),
        cmocka_unit_test(test_listings),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_complete),
        cmocka_unit_test(test_tagging),
        cmocka_unit_test(test_versioning),
        cmocka_unit_test(test_cors),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_hostile_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
