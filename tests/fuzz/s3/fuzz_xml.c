/* libFuzzer target: every XML request-body parser on the same input. */
#include <stdint.h>

#include "s3/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s3_delete_req d;
    if (s3_parse_delete(data, size, &d) == 0)
        s3_delete_req_free(&d);
    s3_complete_req c;
    if (s3_parse_complete(data, size, &c) == 0)
        s3_complete_req_free(&c);
    s3_tagset t;
    if (s3_parse_tagging(data, size, size & 1, &t) == 0) {
        nb_buf b = NB_BUF_INIT;
        (void)!s3_xml_tagging(&b, &t);
        nb_buf_free(&b);
        s3_tagset_free(&t);
    }
    s3_versioning v;
    (void)!s3_parse_versioning(data, size, &v);
    s3_cors cors;
    if (s3_parse_cors(data, size, &cors) == 0) {
        (void)s3_cors_match(&cors, "http://a.example.com", "GET", "x-amz-date, content-type");
        s3_cors_free(&cors);
    }
    s3_lifecycle l;
    if (s3_parse_lifecycle(data, size, &l) == 0)
        s3_lifecycle_free(&l);
    return 0;
}
