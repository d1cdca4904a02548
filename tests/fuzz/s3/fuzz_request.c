/* libFuzzer target: the string parsers of request.c and util.c — target,
 * Range, dates, conditionals, tagging header, query, base64, URI. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 14)
        return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    s3_target t;
    (void)!s3_target_parse(s, s, "s3.example.com", &t);
    (void)!s3_bucket_name_check(s);
    s3_range r;
    (void)!s3_range_parse(s, size, &r);
    int64_t when;
    (void)!s3_http_date_parse(s, &when);
    (void)!s3_iso8601_basic_parse(s, &when);
    (void)!s3_iso8601_parse(s, &when);
    s3_cond c = {s, s, s, s};
    (void)!s3_cond_eval(&c, "abc", 1000, true);
    s3_tagset tags;
    if (s3_parse_tagging_header(s, &tags) == 0)
        s3_tagset_free(&tags);
    s3_query q;
    (void)!s3_query_parse(s, &q);
    s3_query_free(&q);
    uint8_t raw[64];
    (void)s3_base64_decode(s, size, raw, sizeof raw);
    uint8_t md5[16];
    (void)!s3_content_md5_parse(s, md5);
    char *dec = malloc(size + 1);
    (void)s3_uri_decode(s, size, size & 1, dec, size + 1);
    free(dec);
    const char *parts[] = {s};
    char etag[S3_ETAG_MAX];
    (void)!s3_etag_multipart(parts, 1, etag);
    s3_copy_source cs;
    (void)!s3_copy_source_parse(s, &cs);
    (void)!s3_copy_range_parse(s, size, &r);
    s3_query lq;
    if (s3_query_parse(s, &lq) == 0) {
        s3_list_args la;
        for (int op = S3_OP_LIST_OBJECTS; op <= S3_OP_LIST_MULTIPART_UPLOADS; op++)
            if (s3_list_args_parse((s3_op)op, &lq, &la) == 0)
                s3_list_args_free(&la);
        s3_http_req req = {s, "/", s, NULL, 0, NULL};
        s3_op op;
        (void)!s3_route(&req, &t, &lq, &op);
    }
    s3_query_free(&lq);
    free(s);
    return 0;
}
