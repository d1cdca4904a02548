/* s3_int.h — private declarations shared by the files of the s3 module. */
#ifndef NB_S3_S3_INT_H
#define NB_S3_S3_INT_H

#include "s3/s3.h"

/* An empty buffer of the calling thread, reused by the next call on it
 * (freed when the thread ends): scratch space for one step of a request. */
nb_buf *s3__thread_buf(void);
/* HMAC of [p, p+n) under key; out holds 32 (SHA-256) or 20 (SHA-1) bytes. */
void s3__hmac_sha256(const void *key, size_t klen, const void *p, size_t n, uint8_t out[32]);
void s3__hmac_sha1(const void *key, size_t klen, const void *p, size_t n, uint8_t out[20]);
/* Constant-time comparison of n bytes: 1 when equal. */
int s3__ct_equal(const void *a, const void *b, size_t n);
/* Case-insensitive ASCII comparison of n bytes / of C strings. */
int s3__strncaseeq(const char *a, const char *b, size_t n);
/* Seconds since the epoch of a UTC civil time; -1 when a field is out of
 * range. */
int64_t s3__timegm(int year, int mon, int day, int hour, int min, int sec);
/* Splits t into UTC civil fields. */
void s3__gmtime(int64_t t, int *year, int *mon, int *day, int *hour, int *min, int *sec, int *wday);

/* SigV2 verification (sigv2.c), called by s3_auth_check. */
int s3__sigv2_check_header(const s3_http_req *req, const char *authz, s3_secret_fn secret,
                           void *ctx, int64_t now, s3_auth *out);
int s3__sigv2_check_query(const s3_http_req *req, const s3_query *q, s3_secret_fn secret, void *ctx,
                          int64_t now, s3_auth *out);

#endif
