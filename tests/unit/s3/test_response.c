/* Response headers: system metadata, response-* overrides, CORS, ids. */
#include <pthread.h>

#include "s3/s3.h"

#include "test.h"

static const char *get(const s3_meta *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[i].name, name) == 0)
            return m->items[i].value;
    return NULL;
}

static void test_sysmeta(void **state)
{
    (void)state;
    s3_header h[] = {{"Content-Type", "text/plain"},
                     {"Cache-Control", "no-cache"},
                     {"Content-Encoding", "aws-chunked, gzip"},
                     {"Content-Disposition", "attachment"},
                     {"Expires", "Thu, 01 Dec 1994 16:00:00 GMT"},
                     {"X-Other", "x"}};
    s3_http_req r = {"PUT", "/b/k", NULL, h, NB_ARRAY_LEN(h), NULL};
    s3_meta m;
    ASSERT_OK(s3_sysmeta_collect(&r, &m));
    assert_string_equal(get(&m, "Content-Type"), "text/plain");
    assert_string_equal(get(&m, "Cache-Control"), "no-cache");
    assert_string_equal(get(&m, "Content-Encoding"), "gzip");
    assert_string_equal(get(&m, "Content-Disposition"), "attachment");
    assert_non_null(get(&m, "Expires"));
    assert_null(get(&m, "Content-Language"));
    assert_null(get(&m, "X-Other"));
    s3_meta_free(&m);
    s3_header h2[] = {{"Content-Encoding", "aws-chunked"}};
    r.headers = h2;
    r.n_headers = 1;
    ASSERT_OK(s3_sysmeta_collect(&r, &m));
    assert_string_equal(get(&m, "Content-Type"), "binary/octet-stream");
    assert_null(get(&m, "Content-Encoding"));
    s3_meta_free(&m);
}

static void test_overrides(void **state)
{
    (void)state;
    s3_query q;
    ASSERT_OK(s3_query_parse("response-content-type=text%2Fhtml&response-content-disposition="
                             "attachment%3B%20filename%3Dx&versionId=1",
                             &q));
    s3_meta m;
    ASSERT_OK(s3_response_overrides(&q, false, &m));
    assert_int_equal(m.n, 2);
    assert_string_equal(get(&m, "Content-Type"), "text/html");
    assert_string_equal(get(&m, "Content-Disposition"), "attachment; filename=x");
    s3_meta_free(&m);
    ASSERT_RC(s3_response_overrides(&q, true, &m), S3_ERR_INVALID_REQUEST);
    assert_int_equal(m.n, 0);
    s3_query_free(&q);
}

static void test_cors_headers(void **state)
{
    (void)state;
    s3_cors c;
    const char *doc = "<CORSConfiguration><CORSRule><AllowedOrigin>http://*.example.com"
                      "</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT"
                      "</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag"
                      "</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule><CORSRule>"
                      "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
                      "</CORSRule></CORSConfiguration>";
    ASSERT_OK(s3_parse_cors(doc, strlen(doc), &c));
    const s3_cors_rule *r = s3_cors_match(&c, "http://a.example.com", "PUT", "X-Amz-Date");
    assert_ptr_equal(r, &c.rules[0]);
    s3_meta m;
    ASSERT_OK(s3_cors_headers(r, "http://a.example.com", "X-Amz-Date", true, &m));
    assert_string_equal(get(&m, "Access-Control-Allow-Origin"), "http://a.example.com");
    assert_string_equal(get(&m, "Access-Control-Allow-Methods"), "GET, PUT");
    assert_string_equal(get(&m, "Access-Control-Allow-Credentials"), "true");
    assert_string_equal(get(&m, "Access-Control-Allow-Headers"), "x-amz-date");
    assert_string_equal(get(&m, "Access-Control-Expose-Headers"), "ETag");
    assert_string_equal(get(&m, "Access-Control-Max-Age"), "600");
    assert_non_null(get(&m, "Vary"));
    s3_meta_free(&m);
    r = s3_cors_match(&c, "http://other.org", "GET", NULL);
    assert_ptr_equal(r, &c.rules[1]);
    ASSERT_OK(s3_cors_headers(r, "http://other.org", NULL, false, &m));
    assert_string_equal(get(&m, "Access-Control-Allow-Origin"), "*");
    assert_null(get(&m, "Access-Control-Allow-Credentials"));
    assert_null(get(&m, "Access-Control-Max-Age"));
    s3_meta_free(&m);
    s3_cors_free(&c);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_request_ids(void **state)
{
    (void)state;
    enum { N = 20000 };
    char(*ids)[17] = nb_xmalloc(N * sizeof *ids);
    for (int i = 0; i < N; i++) {
        s3_request_id(ids[i]);
        assert_int_equal(strlen(ids[i]), 16);
        for (int j = 0; j < 16; j++)
            assert_true((ids[i][j] >= '0' && ids[i][j] <= '9') ||
                        (ids[i][j] >= 'A' && ids[i][j] <= 'F'));
    }
    qsort(ids, N, sizeof *ids, cmp_str);
    for (int i = 1; i < N; i++)
        assert_true(strcmp(ids[i - 1], ids[i]) != 0);
    free(ids);
}

/* Ids from several threads at once stay unique (run under TSAN too). */
enum { THREADS = 4, PER_THREAD = 5000 };
static char thread_ids[THREADS * PER_THREAD][17];

static void *id_thread(void *arg)
{
    size_t t = (size_t)(uintptr_t)arg;
    for (size_t i = 0; i < PER_THREAD; i++)
        s3_request_id(thread_ids[t * PER_THREAD + i]);
    return NULL;
}

static void test_request_ids_threads(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (size_t t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, id_thread, (void *)(uintptr_t)t), 0);
    for (size_t t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    qsort(thread_ids, THREADS * PER_THREAD, sizeof thread_ids[0], cmp_str);
    for (size_t i = 1; i < THREADS * PER_THREAD; i++)
        assert_true(strcmp(thread_ids[i - 1], thread_ids[i]) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sysmeta),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_cors_headers),
        cmocka_unit_test(test_request_ids),
        cmocka_unit_test(test_request_ids_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
