/* libFuzzer target: the aws-chunked decoder in every mode, fed in pieces
 * whose sizes come from the input. Byte 0 picks the mode and piece size. */
#include <stdint.h>
#include <string.h>

#include "s3/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *ctx, const uint8_t *p, size_t n)
{
    uint64_t *total = ctx;
    for (size_t i = 0; i < n; i++)
        *total += p[i];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const s3_payload_mode modes[] = {S3_PAYLOAD_STREAMING, S3_PAYLOAD_STREAMING_TRAILER,
                                            S3_PAYLOAD_STREAMING_UNSIGNED};
    s3_auth a;
    memset(&a, 0, sizeof a);
    a.version = 4;
    a.payload = modes[data[0] % 3];
    s3_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3",
                         a.signing_key);
    strcpy(a.seed_signature, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
    strcpy(a.amz_date, "20130524T000000Z");
    strcpy(a.scope, "20130524/us-east-1/s3/aws4_request");
    size_t piece = 1 + (data[0] >> 2);
    int64_t declen = (data[0] & 0x80) ? 5 : -1;
    data++;
    size--;
    s3_chunked *c;
    if (s3_chunked_new(&a, declen, &c))
        return 0;
    uint64_t total = 0;
    int rc = 0;
    for (size_t off = 0; off < size && !rc; off += piece)
        rc = s3_chunked_feed(c, data + off, size - off < piece ? size - off : piece, sink, &total);
    if (!rc && s3_chunked_finish(c) == 0)
        (void)s3_chunked_trailer(c, "x-amz-checksum-crc32");
    s3_chunked_free(c);
    return 0;
}
