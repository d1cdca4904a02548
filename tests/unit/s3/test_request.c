/* Request helpers: targets, bucket names, Range, conditionals, dates,
 * ETags, metadata, checksums, encodings and digests. */
#include "s3/s3.h"

#include "test.h"

static void test_bucket_names(void **state)
{
    (void)state;
    static const char *const good[] = {"abc", "my-bucket", "my.bucket.name", "a1b2c3",
                                       "123", "xn-valid",  "a-b-c"};
    for (size_t i = 0; i < NB_ARRAY_LEN(good); i++)
        if (s3_bucket_name_check(good[i]))
            fail_msg("refused %s", good[i]);
    char max[64];
    memset(max, 'a', 63);
    max[63] = 0;
    ASSERT_OK(s3_bucket_name_check(max));
    static const char *const bad[] = {
        "ab",      "ABC",        "-abc",           "abc-",     ".abc",   "abc.",
        "a..b",    "a.-b",       "a-.b",           "a_b",      "a b",    "192.168.5.4",
        "xn--abc", "sthree-abc", "bucket-s3alias", "b--ol-s3", "x.mrap", "amzn-s3-demo-x",
        "y--x-s3", "",           "caf\xc3\xa9",
    };
    for (size_t i = 0; i < NB_ARRAY_LEN(bad); i++)
        ASSERT_RC(s3_bucket_name_check(bad[i]), S3_ERR_INVALID_BUCKET_NAME);
    char toolong[65];
    memset(toolong, 'a', 64);
    toolong[64] = 0;
    ASSERT_RC(s3_bucket_name_check(toolong), S3_ERR_INVALID_BUCKET_NAME);
}

static void test_targets(void **state)
{
    (void)state;
    s3_target t;
    ASSERT_OK(s3_target_parse("localhost:8080", "/", NULL, &t));
    assert_string_equal(t.bucket, "");
    assert_string_equal(t.key, "");
    ASSERT_OK(s3_target_parse("localhost:8080", "/bkt", NULL, &t));
    assert_string_equal(t.bucket, "bkt");
    assert_string_equal(t.key, "");
    ASSERT_OK(s3_target_parse("localhost:8080", "/bkt/", NULL, &t));
    assert_string_equal(t.key, "");
    ASSERT_OK(s3_target_parse("localhost", "/bkt/dir/a%20b%2Bc+d", NULL, &t));
    assert_string_equal(t.bucket, "bkt");
    assert_string_equal(t.key, "dir/a b+c+d");
    assert_int_equal(t.key_len, 11);
    ASSERT_OK(s3_target_parse("localhost", "/bkt/a//b/", NULL, &t));
    assert_string_equal(t.key, "a//b/");
    /* Virtual-hosted style. */
    ASSERT_OK(s3_target_parse("My.Bucket.s3.example.com:8080", "/k/x", "s3.example.com", &t));
    assert_true(t.vhost);
    assert_string_equal(t.bucket, "my.bucket");
    assert_string_equal(t.key, "k/x");
    ASSERT_OK(s3_target_parse("s3.example.com", "/bkt/k", "s3.example.com", &t));
    assert_false(t.vhost);
    assert_string_equal(t.bucket, "bkt");
    ASSERT_OK(s3_target_parse("127.0.0.1:8080", "/bkt/k", "s3.example.com", &t));
    assert_string_equal(t.bucket, "bkt");
    ASSERT_OK(s3_target_parse("bkt.s3.example.com", "/", "s3.example.com", &t));
    assert_string_equal(t.bucket, "bkt");
    assert_string_equal(t.key, "");
    /* Errors. */
    ASSERT_RC(s3_target_parse("h", "/bkt/a%zz", NULL, &t), S3_ERR_INVALID_URI);
    ASSERT_RC(s3_target_parse("h", "/bkt/a%00b", NULL, &t), S3_ERR_INVALID_URI);
    ASSERT_RC(s3_target_parse("h", "/bkt/a%", NULL, &t), S3_ERR_INVALID_URI);
    ASSERT_RC(s3_target_parse("h", "//key", NULL, &t), S3_ERR_INVALID_URI);
    ASSERT_RC(s3_target_parse("h", "bkt/key", NULL, &t), S3_ERR_INVALID_URI);
    /* An encoded slash stays in its segment. */
    ASSERT_OK(s3_target_parse("h", "/b%2Fc/k%2Fl", NULL, &t));
    assert_string_equal(t.bucket, "b/c");
    assert_string_equal(t.key, "k/l");
    ASSERT_RC(s3_bucket_name_check(t.bucket), S3_ERR_INVALID_BUCKET_NAME);
    ASSERT_OK(s3_target_parse("h", "/%62kt/k", NULL, &t));
    assert_string_equal(t.bucket, "bkt");
    ASSERT_RC(s3_target_parse("h", "/b%zz/k", NULL, &t), S3_ERR_INVALID_URI);
    char *path = nb_xmalloc(2000);
    strcpy(path, "/bkt/");
    memset(path + 5, 'k', 1024);
    path[5 + 1024] = 0;
    ASSERT_OK(s3_target_parse("h", path, NULL, &t));
    assert_int_equal(t.key_len, 1024);
    strcat(path, "k");
    ASSERT_RC(s3_target_parse("h", path, NULL, &t), S3_ERR_KEY_TOO_LONG);
    memset(path + 1, 'b', 64);
    path[65] = 0;
    ASSERT_RC(s3_target_parse("h", path, NULL, &t), S3_ERR_INVALID_BUCKET_NAME);
    free(path);
}

static void test_ranges(void **state)
{
    (void)state;
    s3_range r;
    ASSERT_OK(s3_range_parse(NULL, 100, &r));
    assert_false(r.partial);
    ASSERT_OK(s3_range_parse("bytes=0-9", 100, &r));
    assert_true(r.partial);
    assert_int_equal(r.start, 0);
    assert_int_equal(r.end, 9);
    ASSERT_OK(s3_range_parse("bytes=90-200", 100, &r));
    assert_int_equal(r.start, 90);
    assert_int_equal(r.end, 99);
    ASSERT_OK(s3_range_parse("bytes=99-", 100, &r));
    assert_int_equal(r.start, 99);
    assert_int_equal(r.end, 99);
    ASSERT_OK(s3_range_parse("bytes=-10", 100, &r));
    assert_int_equal(r.start, 90);
    assert_int_equal(r.end, 99);
    ASSERT_OK(s3_range_parse("bytes=-1000", 100, &r));
    assert_int_equal(r.start, 0);
    assert_int_equal(r.end, 99);
    char cr[64];
    s3_content_range(&r, 100, cr, sizeof cr);
    assert_string_equal(cr, "bytes 0-99/100");
    s3_content_range(NULL, 100, cr, sizeof cr);
    assert_string_equal(cr, "bytes */100");
    /* Unsatisfiable. */
    ASSERT_RC(s3_range_parse("bytes=100-", 100, &r), S3_ERR_INVALID_RANGE);
    ASSERT_RC(s3_range_parse("bytes=100-200", 100, &r), S3_ERR_INVALID_RANGE);
    ASSERT_RC(s3_range_parse("bytes=-0", 100, &r), S3_ERR_INVALID_RANGE);
    ASSERT_RC(s3_range_parse("bytes=0-", 0, &r), S3_ERR_INVALID_RANGE);
    ASSERT_RC(s3_range_parse("bytes=-5", 0, &r), S3_ERR_INVALID_RANGE);
    /* Ignored: whole object. */
    static const char *const ignored[] = {"bytes=5-1", "items=0-1", "bytes=",
                                          "bytes=-",   "bytes=a-b", "bytes=0-1,3-4",
                                          "bytes=1",   "0-1",       "bytes=99999999999999999999-",
                                          "bytes=- 1"};
    for (size_t i = 0; i < NB_ARRAY_LEN(ignored); i++) {
        ASSERT_OK(s3_range_parse(ignored[i], 100, &r));
        if (r.partial)
            fail_msg("%s taken as a range", ignored[i]);
    }
}

static void test_conditionals(void **state)
{
    (void)state;
    const char *etag = "abc";
    int64_t mtime = 1000000000; /* Sun, 09 Sep 2001 01:46:40 GMT */
    const char *before = "Sun, 09 Sep 2001 01:46:39 GMT", *same = "Sun, 09 Sep 2001 01:46:40 GMT",
               *after = "Sun, 09 Sep 2001 01:46:41 GMT";
    s3_cond c = {0};
    ASSERT_OK(s3_cond_eval(&c, etag, mtime, true));
    c.if_match = "\"abc\"";
    ASSERT_OK(s3_cond_eval(&c, etag, mtime, true));
    c.if_match = "\"x\", \"abc\"";
    ASSERT_OK(s3_cond_eval(&c, etag, mtime, true));
    c.if_match = "*";
    ASSERT_OK(s3_cond_eval(&c, etag, mtime, true));
    c.if_match = "\"x\"";
    ASSERT_RC(s3_cond_eval(&c, etag, mtime, true), S3_ERR_PRECONDITION_FAILED);
    /* If-Match true wins over If-Unmodified-Since false. */
    c.if_match = "abc";
    c.if_unmodified_since = before;
    ASSERT_OK(s3_cond_eval(&c, etag, mtime, true));
    c.if_match = NULL;
    ASSERT_RC(s3_cond_eval(&c, etag, mtime, true), S3_ERR_PRECONDITION_FAILED);
    c.if_unmodified_since = same;
    ASSERT_OK(s3_cond_eval(&c, etag, mtime, true));
    c.if_unmodified_since = "garbage";
    ASSERT_OK(s3_cond_eval(&c, etag, mtime, true));
    c.if_unmodified_since = NULL;
    /* If-None-Match. */
    c.if_none_match = "\"abc\"";
    ASSERT_RC(s3_cond_eval(&c, etag, mtime, true), S3_ERR_NOT_MODIFIED);
    ASSERT_RC(s3_cond_eval(&c, etag, mtime, false), S3_ERR_PRECONDITION_FAILED);
    c.if_none_match = "W/\"abc\"";
    ASSERT_RC(s3_cond_eval(&c, etag, mtime, true), S3_ERR_NOT_MODIFIED);
    c.if_none_match = "*";
    ASSERT_RC(s3_cond_eval(&c, etag, mtime, true), S3_ERR_NOT_MODIFIED);
    /* If-None-Match false wins over If-Modified-Since true (not modified). */
    c.if_none_match = "\"other\"";
    c.if_modified_since = after;
    ASSERT_OK(s3_cond_eval(&c, etag, mtime, true));
    c.if_none_match = NULL;
    ASSERT_RC(s3_cond_eval(&c, etag, mtime, true), S3_ERR_NOT_MODIFIED);
    c.if_modified_since = same;
    ASSERT_RC(s3_cond_eval(&c, etag, mtime, true), S3_ERR_NOT_MODIFIED);
    c.if_modified_since = before;
    ASSERT_OK(s3_cond_eval(&c, etag, mtime, true));
    /* 412 takes precedence over 304. */
    c.if_match = "\"nope\"";
    c.if_modified_since = after;
    ASSERT_RC(s3_cond_eval(&c, etag, mtime, true), S3_ERR_PRECONDITION_FAILED);

    s3_header h[] = {{"x-amz-copy-source-if-match", "abc"}, {"If-None-Match", "abc"}};
    s3_http_req req = {"GET", "/", NULL, h, 2, NULL};
    s3_cond cc;
    s3_cond_from_req(&req, "x-amz-copy-source-", &cc);
    assert_string_equal(cc.if_match, "abc");
    assert_null(cc.if_none_match);
    s3_cond_from_req(&req, "", &cc);
    assert_null(cc.if_match);
    assert_string_equal(cc.if_none_match, "abc");
}

static void test_dates(void **state)
{
    (void)state;
    int64_t t;
    ASSERT_OK(s3_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t));
    assert_int_equal(t, 784111777);
    ASSERT_OK(s3_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t));
    assert_int_equal(t, 784111777);
    ASSERT_OK(s3_http_date_parse("Sun Nov  6 08:49:37 1994", &t));
    assert_int_equal(t, 784111777);
    ASSERT_OK(s3_http_date_parse("Sun, 06 Nov 1994 08:49:37 +0000", &t));
    assert_int_equal(t, 784111777);
    char buf[64];
    s3_http_date_format(784111777, buf, sizeof buf);
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    s3_http_date_format(951782400, buf, sizeof buf); /* a leap day */
    assert_string_equal(buf, "Tue, 29 Feb 2000 00:00:00 GMT");
    static const char *const bad[] = {
        "",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 PST",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 29 Feb 2001 00:00:00 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "garbage",
        "Sun Nov  6 08:49:37 1994 extra",
        ",",
    };
    for (size_t i = 0; i < NB_ARRAY_LEN(bad); i++)
        if (s3_http_date_parse(bad[i], &t) == 0)
            fail_msg("parsed %s", bad[i]);
    ASSERT_OK(s3_iso8601_basic_parse("20130524T000000Z", &t));
    assert_int_equal(t, 1369353600);
    s3_iso8601_basic_format(t, buf, sizeof buf);
    assert_string_equal(buf, "20130524T000000Z");
    assert_int_equal(s3_iso8601_basic_parse("20130524T000000", &t), -1);
    assert_int_equal(s3_iso8601_basic_parse("20131324T000000Z", &t), -1);
    ASSERT_OK(s3_iso8601_parse("2013-05-24T00:00:00.123Z", &t));
    assert_int_equal(t, 1369353600);
    ASSERT_OK(s3_iso8601_parse("2013-05-24", &t));
    assert_int_equal(t, 1369353600);
    s3_iso8601_format(1369353600, 5, buf, sizeof buf);
    assert_string_equal(buf, "2013-05-24T00:00:00.005Z");
    /* Round trips over a wide span. */
    for (int64_t x = 0; x < 4102444800; x += 86400 * 37 + 3601) {
        s3_http_date_format(x, buf, sizeof buf);
        ASSERT_OK(s3_http_date_parse(buf, &t));
        assert_int_equal(t, x);
        s3_iso8601_basic_format(x, buf, sizeof buf);
        ASSERT_OK(s3_iso8601_basic_parse(buf, &t));
        assert_int_equal(t, x);
    }
}

static void test_etags_and_digests(void **state)
{
    (void)state;
    uint8_t d[S3_DIGEST_MAX];
    char hex[80], b64[80];
    assert_int_equal(s3_digest_once(S3_DIGEST_MD5, "", 0, d), 16);
    s3_etag_md5(d, hex);
    assert_string_equal(hex, "d41d8cd98f00b204e9800998ecf8427e");
    assert_int_equal(s3_digest_once(S3_DIGEST_SHA1, "abc", 3, d), 20);
    s3_hex_encode(d, 20, hex);
    assert_string_equal(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    /* CRC32 and CRC32C of "123456789", big-endian, base64 as S3 sends. */
    assert_int_equal(s3_digest_once(S3_DIGEST_CRC32, "123456789", 9, d), 4);
    s3_hex_encode(d, 4, hex);
    assert_string_equal(hex, "cbf43926");
    s3_digest_once(S3_DIGEST_CRC32C, "123456789", 9, d);
    s3_hex_encode(d, 4, hex);
    assert_string_equal(hex, "e3069283");
    /* Incremental equals one-shot. */
    s3_digest *g;
    ASSERT_OK(s3_digest_new(S3_DIGEST_SHA256, &g));
    s3_digest_update(g, "Welcome to ", 11);
    s3_digest_update(g, "Amazon S3.", 10);
    s3_digest_final(g, d);
    s3_hex_encode(d, 32, hex);
    assert_string_equal(hex, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    s3_digest_update(g, "", 0); /* reset after final */
    s3_digest_final(g, d);
    s3_hex_encode(d, 32, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    s3_digest_free(g);
    s3_digest_free(NULL);

    /* Multipart ETag: MD5 of the binary part MD5s, "-N". */
    const char *parts[] = {"\"d41d8cd98f00b204e9800998ecf8427e\"",
                           "0cc175b9c0f1b6a831c399e269772661"};
    char etag[S3_ETAG_MAX];
    ASSERT_OK(s3_etag_multipart(parts, 2, etag));
    uint8_t cat[32];
    assert_int_equal(
        s3_hex_decode("d41d8cd98f00b204e9800998ecf8427e0cc175b9c0f1b6a831c399e269772661", 64, cat,
                      32),
        0);
    s3_digest_once(S3_DIGEST_MD5, cat, 32, d);
    s3_hex_encode(d, 16, hex);
    strcat(hex, "-2");
    assert_string_equal(etag, hex);
    const char *badp[] = {"xyz"};
    ASSERT_RC(s3_etag_multipart(badp, 1, etag), S3_ERR_INVALID_PART);

    /* Content-MD5. */
    uint8_t md5[16];
    ASSERT_OK(s3_content_md5_parse("1B2M2Y8AsgTpgAmY7PhCfg==", md5));
    s3_hex_encode(md5, 16, hex);
    assert_string_equal(hex, "d41d8cd98f00b204e9800998ecf8427e");
    ASSERT_RC(s3_content_md5_parse("1B2M2Y8AsgTpgAmY7PhC", md5), S3_ERR_INVALID_DIGEST);
    ASSERT_RC(s3_content_md5_parse("not base64!!", md5), S3_ERR_INVALID_DIGEST);
    ASSERT_RC(s3_content_md5_parse(NULL, md5), S3_ERR_INVALID_DIGEST);

    /* base64 and hex edge cases. */
    assert_int_equal(s3_base64_encode((const uint8_t *)"ab", 2, b64), 4);
    assert_string_equal(b64, "YWI=");
    uint8_t raw[8];
    assert_int_equal(s3_base64_decode("YWI=", 4, raw, sizeof raw), 2);
    assert_int_equal(s3_base64_decode("YW=I", 4, raw, sizeof raw), -1);
    assert_int_equal(s3_base64_decode("YWI", 3, raw, sizeof raw), -1);
    assert_int_equal(s3_base64_decode("", 0, raw, sizeof raw), 0);
    assert_int_equal(s3_hex_decode("0g", 2, raw, 1), -1);
    /* URI encoding, AWS style. */
    nb_buf u = NB_BUF_INIT;
    ASSERT_OK(s3_uri_encode(&u, "a b/~*+é", strlen("a b/~*+é"), true));
    ASSERT_OK(nb_buf_nul_terminate(&u));
    assert_string_equal((char *)u.data, "a%20b/~%2A%2B%C3%A9");
    nb_buf_reset(&u);
    ASSERT_OK(s3_uri_encode(&u, "a/b", 3, false));
    ASSERT_OK(nb_buf_nul_terminate(&u));
    assert_string_equal((char *)u.data, "a%2Fb");
    nb_buf_free(&u);
    char dec[16];
    assert_int_equal(s3_uri_decode("a+b%41", 6, true, dec, sizeof dec), 4);
    assert_string_equal(dec, "a bA");
    assert_int_equal(s3_uri_decode("a+b", 3, false, dec, sizeof dec), 3);
    assert_string_equal(dec, "a+b");
    assert_int_equal(s3_uri_decode("abcdef", 6, false, dec, 4), -2);

    s3_query q;
    ASSERT_OK(s3_query_parse("a=1&b&c=x%20y&&d=", &q));
    assert_int_equal(q.n, 4);
    assert_string_equal(s3_query_get(&q, "b"), "");
    assert_string_equal(s3_query_get(&q, "c"), "x y");
    assert_null(s3_query_get(&q, "e"));
    s3_query_free(&q);
    ASSERT_RC(s3_query_parse("a=%G0", &q), S3_ERR_INVALID_URI);
    s3_query_free(&q);
}

static void test_metadata(void **state)
{
    (void)state;
    s3_header h[] = {{"X-Amz-Meta-Color", "red"},
                     {"Content-Type", "text/plain"},
                     {"x-amz-meta-color", "blue"},
                     {"x-amz-meta-empty", ""}};
    s3_http_req r = {"PUT", "/b/k", NULL, h, NB_ARRAY_LEN(h), NULL};
    s3_meta m;
    ASSERT_OK(s3_meta_collect(&r, &m));
    assert_int_equal(m.n, 2);
    assert_string_equal(m.items[0].name, "color");
    assert_string_equal(m.items[0].value, "red,blue");
    assert_string_equal(m.items[1].name, "empty");
    assert_int_equal(m.bytes, strlen("color") + strlen("red,blue") + strlen("empty"));
    s3_meta_free(&m);

    char *big = nb_xmalloc(3000);
    memset(big, 'v', 2043);
    big[2043] = 0; /* "k" + 2043 = 2044 bytes, +"k2"+"vv" = 2048: fits */
    s3_header h2[] = {{"x-amz-meta-k", big}, {"x-amz-meta-k2", "vv"}};
    r.headers = h2;
    r.n_headers = 2;
    ASSERT_OK(s3_meta_collect(&r, &m));
    assert_int_equal(m.bytes, 2048);
    s3_meta_free(&m);
    h2[1].value = "vvv";
    ASSERT_RC(s3_meta_collect(&r, &m), S3_ERR_METADATA_TOO_LARGE);
    assert_int_equal(m.n, 0);
    free(big);
}

static void test_payload_length(void **state)
{
    (void)state;
    s3_auth a;
    memset(&a, 0, sizeof a);
    a.payload = S3_PAYLOAD_SHA256;
    s3_header h[] = {{"Content-Length", "1024"}, {"x-amz-decoded-content-length", "1000"}};
    s3_http_req r = {"PUT", "/b/k", NULL, h, 2, NULL};
    uint64_t n;
    ASSERT_OK(s3_payload_length(&r, &a, S3_MAX_PUT_SIZE, &n));
    assert_int_equal(n, 1024);
    a.payload = S3_PAYLOAD_STREAMING_UNSIGNED;
    ASSERT_OK(s3_payload_length(&r, &a, S3_MAX_PUT_SIZE, &n));
    assert_int_equal(n, 1000);
    ASSERT_RC(s3_payload_length(&r, &a, 999, &n), S3_ERR_ENTITY_TOO_LARGE);
    r.n_headers = 1;
    ASSERT_RC(s3_payload_length(&r, &a, S3_MAX_PUT_SIZE, &n), S3_ERR_MISSING_CONTENT_LENGTH);
    a.payload = S3_PAYLOAD_UNSIGNED;
    r.n_headers = 0;
    ASSERT_RC(s3_payload_length(&r, &a, S3_MAX_PUT_SIZE, &n), S3_ERR_MISSING_CONTENT_LENGTH);
    s3_header bad[] = {{"Content-Length", "12x"}};
    r.headers = bad;
    r.n_headers = 1;
    ASSERT_RC(s3_payload_length(&r, &a, S3_MAX_PUT_SIZE, &n), S3_ERR_INVALID_ARGUMENT);
}

static void test_checksums(void **state)
{
    (void)state;
    uint8_t d[S3_DIGEST_MAX];
    char b64[64];
    s3_digest_once(S3_DIGEST_CRC32, "hello", 5, d);
    s3_base64_encode(d, 4, b64);
    s3_header h[] = {{"x-amz-checksum-crc32", b64}};
    s3_http_req r = {"PUT", "/b/k", NULL, h, 1, NULL};
    s3_checksum c;
    ASSERT_OK(s3_checksum_from_req(&r, &c));
    assert_true(c.present);
    assert_int_equal(c.alg, S3_DIGEST_CRC32);
    char out[64];
    ASSERT_OK(s3_checksum_verify(&c, d, NULL, out));
    assert_string_equal(out, b64);
    d[0] ^= 1;
    ASSERT_RC(s3_checksum_verify(&c, d, NULL, out), S3_ERR_BAD_DIGEST);

    /* SHA-256 of "" in base64. */
    s3_header h2[] = {{"x-amz-checksum-sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}};
    r.headers = h2;
    ASSERT_OK(s3_checksum_from_req(&r, &c));
    s3_digest_once(S3_DIGEST_SHA256, "", 0, d);
    ASSERT_OK(s3_checksum_verify(&c, d, NULL, NULL));

    /* Trailing checksums name the algorithm; the value comes later. */
    s3_header h3[] = {{"x-amz-trailer", "x-amz-checksum-crc32c"},
                      {"x-amz-sdk-checksum-algorithm", "CRC32C"}};
    r.headers = h3;
    r.n_headers = 2;
    ASSERT_OK(s3_checksum_from_req(&r, &c));
    assert_true(c.trailer);
    assert_int_equal(c.alg, S3_DIGEST_CRC32C);
    s3_digest_once(S3_DIGEST_CRC32C, "x", 1, d);
    s3_base64_encode(d, 4, b64);
    ASSERT_OK(s3_checksum_verify(&c, d, b64, NULL));
    ASSERT_RC(s3_checksum_verify(&c, d, "AAAAAA==", NULL), S3_ERR_BAD_DIGEST);
    ASSERT_RC(s3_checksum_verify(&c, d, NULL, NULL), S3_ERR_INVALID_REQUEST);

    /* Errors. */
    s3_header bad1[] = {{"x-amz-checksum-crc32", "AAAAAA=="}, {"x-amz-checksum-sha1", "x"}};
    r.headers = bad1;
    r.n_headers = 2;
    ASSERT_RC(s3_checksum_from_req(&r, &c), S3_ERR_INVALID_REQUEST);
    s3_header bad2[] = {{"x-amz-checksum-crc32", "AAAA"}};
    r.headers = bad2;
    r.n_headers = 1;
    ASSERT_RC(s3_checksum_from_req(&r, &c), S3_ERR_INVALID_REQUEST);
    s3_header bad3[] = {{"x-amz-sdk-checksum-algorithm", "MD4"}};
    r.headers = bad3;
    ASSERT_RC(s3_checksum_from_req(&r, &c), S3_ERR_INVALID_REQUEST);
    s3_header none[] = {{"Host", "h"}};
    r.headers = none;
    ASSERT_OK(s3_checksum_from_req(&r, &c));
    assert_false(c.present);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_names),   cmocka_unit_test(test_targets),
        cmocka_unit_test(test_ranges),         cmocka_unit_test(test_conditionals),
        cmocka_unit_test(test_dates),          cmocka_unit_test(test_etags_and_digests),
        cmocka_unit_test(test_metadata),       cmocka_unit_test(test_checksums),
        cmocka_unit_test(test_payload_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
