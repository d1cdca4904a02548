/* libFuzzer target: s3_auth_check on an arbitrary request.
 *
 * Input: "METHOD\npath\nquery\nname: value\n...". The clock is fixed at
 * 2013-05-24 so dated inputs reach signature computation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int secret_fn(void *ctx, const char *ak, char *sk, size_t cap)
{
    (void)ctx;
    if (strcmp(ak, "AKIAIOSFODNN7EXAMPLE") != 0)
        return NB_ENOTFOUND;
    strncpy(sk, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", cap - 1);
    sk[cap - 1] = 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    char *lines[64];
    size_t n = 0;
    for (char *p = buf; p && n < 64;) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        p = nl ? nl + 1 : NULL;
    }
    s3_header h[60];
    size_t nh = 0;
    for (size_t i = 3; i < n && nh < 60; i++) {
        char *colon = strchr(lines[i], ':');
        if (!colon)
            continue;
        *colon = 0;
        h[nh].name = lines[i];
        h[nh].value = colon[1] == ' ' ? colon + 2 : colon + 1;
        nh++;
    }
    s3_http_req req = {
        n > 0 ? lines[0] : "GET",    n > 1 ? lines[1] : "/", n > 2 ? lines[2] : NULL, h, nh,
        (size & 1) ? "bucket" : NULL};
    nb_buf canon = NB_BUF_INIT, sts = NB_BUF_INIT;
    (void)!s3_auth_explain(&req, &canon, &sts);
    nb_buf_free(&canon);
    nb_buf_free(&sts);
    s3_auth a;
    if (s3_auth_check(&req, secret_fn, NULL, 1369353600, &a) == 0 &&
        (a.payload == S3_PAYLOAD_STREAMING || a.payload == S3_PAYLOAD_STREAMING_TRAILER ||
         a.payload == S3_PAYLOAD_STREAMING_UNSIGNED)) {
        s3_chunked *c;
        if (s3_chunked_new(&a, -1, &c) == 0) {
            if (s3_chunked_feed(c, data, size, NULL, NULL) == 0)
                (void)!s3_chunked_finish(c);
            s3_chunked_free(c);
        }
    }
    free(buf);
    return 0;
}
