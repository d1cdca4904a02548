/*
 * sign.c — SigV4 signing of a request, the client side of sigv4.c, for
 * our own tools (`nebula admin`): the Authorization header over the
 * headers host, x-amz-content-sha256 and x-amz-date.
 */
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "s3/s3_int.h"

int s3_sigv4_sign(const s3_http_req *req, const char *access_key, const char *secret_key,
                  const char *region, char *authz, size_t cap)
{
    const char *date = s3_req_header(req, "x-amz-date");
    const char *hash = s3_req_header(req, "x-amz-content-sha256");
    if (!date || strlen(date) != 16 || !hash || !s3_req_header(req, "host"))
        return NB_EUSAGE;
    static const char signed_headers[] = "host;x-amz-content-sha256;x-amz-date";
    nb_buf canon = NB_BUF_INIT, sts = NB_BUF_INIT;
    int rc = s3_sigv4_canonical_request(&canon, req, signed_headers, hash, false);
    char date8[9], scope[128], hex[65];
    snprintf(date8, sizeof date8, "%.8s", date);
    snprintf(scope, sizeof scope, "%s/%s/s3/aws4_request", date8, region);
    uint8_t d[S3_DIGEST_MAX], key[32], sig[32];
    if (rc == 0) {
        s3_digest_once(S3_DIGEST_SHA256, canon.data, canon.len, d);
        s3_hex_encode(d, 32, hex);
        rc = nb_buf_appendf(&sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", date, scope, hex);
    }
    if (rc == 0) {
        s3_sigv4_signing_key(secret_key, date8, region, "s3", key);
        s3__hmac_sha256(key, 32, sts.data, sts.len, sig);
        s3_hex_encode(sig, 32, hex);
        int n = snprintf(authz, cap,
                         "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                         access_key, scope, signed_headers, hex);
        if (n < 0 || (size_t)n >= cap)
            rc = NB_EUSAGE;
    }
    nb_buf_free(&canon);
    nb_buf_free(&sts);
    return rc;
}
