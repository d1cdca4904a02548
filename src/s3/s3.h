/*
 * s3.h — the protocol layer of the S3 gateway: everything the request
 * handlers need that does not touch the namespace.
 *
 *   errors     the S3 error table (code, HTTP status, message) as int codes
 *              S3_ERR_* in the reserved range -31001..-31999, the mapping
 *              from NB_E* and -errno, and the <Error> document
 *   auth       SigV4 (header, presigned query, signed/unsigned/streaming
 *              payloads) and SigV2 (header, query) verification
 *   chunked    the incremental aws-chunked body decoder with per-chunk
 *              signature verification
 *   digest     MD5/SHA-1/SHA-256/CRC32/CRC32C, incremental, for ETags,
 *              payload hashes and x-amz-checksum-*
 *   xml        a small XML writer for responses and expat-based parsers for
 *              request bodies
 *   request    bucket/key from host and path, name rules, Range,
 *              conditional headers, HTTP dates, ETags, user metadata,
 *              x-amz-checksum-*
 *   route      method + target + sub-resources → operation; copy source,
 *              listing arguments, part sizes
 *   response   stored system metadata, response-* overrides, CORS
 *              headers, request ids
 *
 * How a handler uses all this, step by step: docs/s3.md, "Handler
 * interface".
 *
 * Error convention: every fallible function returns int: 0, an S3_ERR_*
 * code, or (rarely) an NB_E* code. s3_error_of() turns any of them into the
 * S3 error to send, so handlers can return whatever they got.
 *
 * Parsers are pure: bytes in, struct out, no I/O, no global state; they are
 * fuzzed (tests/fuzz/s3). Thread safety: everything is reentrant; an object
 * (s3_chunked, s3_digest, s3_xml, parsed results) belongs to one thread at a
 * time.
 */
#ifndef NB_S3_S3_H
#define NB_S3_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/status.h"

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* XX(name, value, code, http status, message). Values are fixed forever. */
#define S3_ERR_MAP(XX)                                                                             \
    XX(ACCESS_DENIED, -31001, "AccessDenied", 403, "Access Denied")                                \
    XX(AUTH_HEADER_MALFORMED, -31002, "AuthorizationHeaderMalformed", 400,                         \
       "The authorization header is malformed.")                                                   \
    XX(AUTH_QUERY_ERROR, -31003, "AuthorizationQueryParametersError", 400,                         \
       "Error parsing the X-Amz-Credential parameter or another presigned query parameter.")       \
    XX(BAD_DIGEST, -31004, "BadDigest", 400,                                                       \
       "The Content-MD5 or checksum you specified did not match what we received.")                \
    XX(BUCKET_ALREADY_EXISTS, -31005, "BucketAlreadyExists", 409,                                  \
       "The requested bucket name is not available. The bucket namespace is shared by all users "  \
       "of the system. Please select a different name and try again.")                             \
    XX(BUCKET_ALREADY_OWNED, -31006, "BucketAlreadyOwnedByYou", 409,                               \
       "Your previous request to create the named bucket succeeded and you already own it.")       \
    XX(BUCKET_NOT_EMPTY, -31007, "BucketNotEmpty", 409,                                            \
       "The bucket you tried to delete is not empty")                                              \
    XX(ENTITY_TOO_LARGE, -31008, "EntityTooLarge", 400,                                            \
       "Your proposed upload exceeds the maximum allowed size")                                    \
    XX(ENTITY_TOO_SMALL, -31009, "EntityTooSmall", 400,                                            \
       "Your proposed upload is smaller than the minimum allowed object size.")                    \
    XX(ILLEGAL_VERSIONING, -31010, "IllegalVersioningConfigurationException", 400,                 \
       "The versioning configuration specified in the request is invalid.")                        \
    XX(INCOMPLETE_BODY, -31011, "IncompleteBody", 400,                                             \
       "You did not provide the number of bytes specified by the Content-Length HTTP header.")     \
    XX(INTERNAL_ERROR, -31012, "InternalError", 500,                                               \
       "We encountered an internal error. Please try again.")                                      \
    XX(INVALID_ACCESS_KEY_ID, -31013, "InvalidAccessKeyId", 403,                                   \
       "The AWS Access Key Id you provided does not exist in our records.")                        \
    XX(INVALID_ARGUMENT, -31014, "InvalidArgument", 400, "Invalid Argument")                       \
    XX(INVALID_BUCKET_NAME, -31015, "InvalidBucketName", 400,                                      \
       "The specified bucket is not valid.")                                                       \
    XX(INVALID_DIGEST, -31016, "InvalidDigest", 400,                                               \
       "The Content-MD5 you specified is not valid.")                                              \
    XX(INVALID_PART, -31017, "InvalidPart", 400,                                                   \
       "One or more of the specified parts could not be found. The part may not have been "        \
       "uploaded, or the specified entity tag may not match the part's entity tag.")               \
    XX(INVALID_PART_ORDER, -31018, "InvalidPartOrder", 400,                                        \
       "The list of parts was not in ascending order. Parts must be ordered by part number.")      \
    XX(INVALID_RANGE, -31019, "InvalidRange", 416, "The requested range is not satisfiable")       \
    XX(INVALID_REQUEST, -31020, "InvalidRequest", 400, "Invalid Request")                          \
    XX(INVALID_TAG, -31021, "InvalidTag", 400, "The tag provided was not a valid tag.")            \
    XX(INVALID_URI, -31022, "InvalidURI", 400, "Couldn't parse the specified URI.")                \
    XX(KEY_TOO_LONG, -31023, "KeyTooLongError", 400, "Your key is too long")                       \
    XX(MALFORMED_XML, -31024, "MalformedXML", 400,                                                 \
       "The XML you provided was not well-formed or did not validate against our published "       \
       "schema")                                                                                   \
    XX(METADATA_TOO_LARGE, -31025, "MetadataTooLarge", 400,                                        \
       "Your metadata headers exceed the maximum allowed metadata size")                           \
    XX(METHOD_NOT_ALLOWED, -31026, "MethodNotAllowed", 405,                                        \
       "The specified method is not allowed against this resource.")                               \
    XX(MISSING_CONTENT_LENGTH, -31027, "MissingContentLength", 411,                                \
       "You must provide the Content-Length HTTP header.")                                         \
    XX(MISSING_SECURITY_HEADER, -31028, "MissingSecurityHeader", 400,                              \
       "Your request was missing a required header")                                               \
    XX(NO_SUCH_BUCKET, -31029, "NoSuchBucket", 404, "The specified bucket does not exist")         \
    XX(NO_SUCH_KEY, -31030, "NoSuchKey", 404, "The specified key does not exist.")                 \
    XX(NO_SUCH_UPLOAD, -31031, "NoSuchUpload", 404,                                                \
       "The specified multipart upload does not exist. The upload ID might be invalid, or the "    \
       "multipart upload might have been aborted or completed.")                                   \
    XX(NO_SUCH_VERSION, -31032, "NoSuchVersion", 404, "The specified version does not exist.")     \
    XX(NO_SUCH_TAG_SET, -31033, "NoSuchTagSet", 404, "The TagSet does not exist")                  \
    XX(NO_SUCH_CORS, -31034, "NoSuchCORSConfiguration", 404,                                       \
       "The CORS configuration does not exist")                                                    \
    XX(NO_SUCH_LIFECYCLE, -31035, "NoSuchLifecycleConfiguration", 404,                             \
       "The lifecycle configuration does not exist")                                               \
    XX(NOT_IMPLEMENTED, -31036, "NotImplemented", 501,                                             \
       "A header you provided implies functionality that is not implemented")                      \
    XX(NOT_MODIFIED, -31037, "NotModified", 304, "Not Modified")                                   \
    XX(PRECONDITION_FAILED, -31038, "PreconditionFailed", 412,                                     \
       "At least one of the pre-conditions you specified did not hold")                            \
    XX(REQUEST_TIME_TOO_SKEWED, -31039, "RequestTimeTooSkewed", 403,                               \
       "The difference between the request time and the server's time is too large.")              \
    XX(SIGNATURE_DOES_NOT_MATCH, -31040, "SignatureDoesNotMatch", 403,                             \
       "The request signature we calculated does not match the signature you provided. Check "     \
       "your key and signing method.")                                                             \
    XX(SLOW_DOWN, -31041, "SlowDown", 503, "Please reduce your request rate.")                     \
    XX(CONTENT_SHA256_MISMATCH, -31042, "XAmzContentSHA256Mismatch", 400,                          \
       "The provided 'x-amz-content-sha256' header does not match what was computed.")             \
    XX(TOO_MANY_BUCKETS, -31043, "TooManyBuckets", 400,                                            \
       "You have attempted to create more buckets than allowed")                                   \
    XX(REQUEST_TIMEOUT, -31044, "RequestTimeout", 400,                                             \
       "Your socket connection to the server was not read from or written to within the "          \
       "timeout period.")                                                                          \
    XX(MAX_MESSAGE_LENGTH, -31045, "MaxMessageLengthExceeded", 400, "Your request was too big.")   \
    XX(EXPIRED_REQUEST, -31046, "AccessDenied", 403, "Request has expired")                        \
    XX(NOT_YET_VALID, -31047, "AccessDenied", 403, "Request is not valid yet")                     \
    XX(INVALID_STORAGE_CLASS, -31048, "InvalidStorageClass", 400,                                  \
       "The storage class you specified is not valid")                                             \
    XX(MALFORMED_POLICY_OR_DATE, -31049, "InvalidArgument", 400, "Invalid date or time value")     \
    XX(UNEXPECTED_CONTENT, -31050, "UnexpectedContent", 400,                                       \
       "This request does not support content")                                                    \
    XX(SERVICE_UNAVAILABLE, -31051, "ServiceUnavailable", 503, "Please reduce your request rate.") \
    XX(INVALID_PART_NUMBER, -31060, "InvalidPartNumber", 416,                                      \
       "The requested partnumber is not satisfiable")                                              \
    XX(NO_SUCH_USER, -31061, "NoSuchEntity", 404,                                                  \
       "The user with the given access key does not exist.")                                       \
    /* Not an AWS code (AWS never fills up): a full store, as WebDAV says it. */                   \
    XX(INSUFFICIENT_STORAGE, -31062, "InsufficientStorage", 507,                                   \
       "The server has no space left to store this data.")

enum {
#define S3__ERR_ENUM(name, value, code, status, msg) S3_ERR_##name = (value),
    S3_ERR_MAP(S3__ERR_ENUM)
#undef S3__ERR_ENUM
};

typedef struct s3_error {
    int rc;              /* the S3_ERR_* code */
    const char *code;    /* "NoSuchKey" */
    int http_status;     /* 404 */
    const char *message; /* AWS's default message */
} s3_error;

/* The S3 error to answer for rc: an S3_ERR_* code maps to its own entry;
 * NB_E* and -errno map through the table in docs/s3.md (NB_ENOTFOUND and
 * -ENOENT → NoSuchKey, -ENAMETOOLONG → KeyTooLongError, NB_ETOOBIG →
 * EntityTooLarge, NB_ECHECKSUM → BadDigest, NB_EAGAIN → SlowDown, ...);
 * anything unknown is InternalError. rc == 0 is a caller bug and also gives
 * InternalError. Never NULL; the entry is static. */
const s3_error *s3_error_of(int rc);

/* True when rc is one of the S3_ERR_* codes. */
bool s3_is_s3_error(int rc);

/* Appends the <Error> document (XML declaration, Code, Message, Resource,
 * RequestId, HostId) for rc to out. message overrides the default message
 * when not NULL; resource and request_id may be NULL (omitted). Borrows
 * every pointer. NB_ETOOBIG when out's cap is hit. */
int s3_error_xml(nb_buf *out, int rc, const char *message, const char *resource,
                 const char *request_id) NB_MUST_CHECK;

/* ------------------------------------------------------------------------ */
/* XML output                                                                */
/* ------------------------------------------------------------------------ */

#define S3_XMLNS     "http://s3.amazonaws.com/doc/2006-03-01/"
#define S3_XML_DEPTH 16

/* A streaming XML writer over an nb_buf, embedded by the caller. Errors
 * (the buffer's cap, nesting deeper than S3_XML_DEPTH) are sticky and
 * reported by s3_xml_end, so a document is written without checking every
 * call. Element names are borrowed until the element is closed (use
 * literals); text is escaped. */
typedef struct s3_xml {
    nb_buf *out;
    const char *stack[S3_XML_DEPTH];
    int depth;
    int rc;
} s3_xml;

/* Starts a document with the XML declaration. Borrows out. */
void s3_xml_begin(s3_xml *x, nb_buf *out);
/* <name>, or <name xmlns="S3_XMLNS"> for the root of S3 documents. */
void s3_xml_open(s3_xml *x, const char *name);
void s3_xml_open_ns(s3_xml *x, const char *name);
/* Closes the innermost open element. */
void s3_xml_close(s3_xml *x);
/* <name>text</name> (escaped); text NULL writes <name></name>. */
void s3_xml_elem(s3_xml *x, const char *name, const char *text);
void s3_xml_elem_n(s3_xml *x, const char *name, const char *text, size_t n);
void s3_xml_elemf(s3_xml *x, const char *name, const char *fmt, ...) NB_PRINTF(3, 4);
void s3_xml_elem_u64(s3_xml *x, const char *name, uint64_t v);
void s3_xml_elem_bool(s3_xml *x, const char *name, bool v);
/* <name>2013-05-24T00:00:00.000Z</name> */
void s3_xml_elem_time(s3_xml *x, const char *name, int64_t t, int ms);
/* Closes what is still open; returns 0 or the first error met. */
int s3_xml_end(s3_xml *x) NB_MUST_CHECK;
/* Appends s escaped for XML text and attributes (& < > " ' and control
 * characters as character references). */
int s3_xml_escape(nb_buf *out, const char *s, size_t n) NB_MUST_CHECK;

/* Fixed documents. Borrow every pointer; NB_ETOOBIG at out's cap. */
int s3_xml_location(nb_buf *out, const char *region) NB_MUST_CHECK;
int s3_xml_copy_result(nb_buf *out, const char *etag, int64_t mtime, bool part) NB_MUST_CHECK;
int s3_xml_initiate_upload(nb_buf *out, const char *bucket, const char *key,
                           const char *upload_id) NB_MUST_CHECK;
int s3_xml_complete_upload(nb_buf *out, const char *location, const char *bucket, const char *key,
                           const char *etag) NB_MUST_CHECK;
/* status: "Enabled", "Suspended" or NULL (never configured: empty). */
int s3_xml_versioning(nb_buf *out, const char *status) NB_MUST_CHECK;

/* Listing documents. The handler gathers a page (at most max-keys
 * entries), then writes it: *_begin with the page's parameters, one call
 * per entry, s3_xml_end. With url_encode (encoding-type=url) keys,
 * prefixes, delimiters and markers are written with s3_url_encode_key.
 * Every pointer is borrowed for the call; NULL strings are left out. */
typedef struct s3_owner {
    const char *id;
    const char *display_name;
} s3_owner;

/* Appends s as S3 listings do for encoding-type=url: unreserved
 * characters, '/' and '*' as-is, space as '+', the rest %XX. */
int s3_url_encode_key(nb_buf *out, const char *s, size_t n) NB_MUST_CHECK;

/* ListAllMyBucketsResult. */
void s3_xml_buckets_begin(s3_xml *x, nb_buf *out, const s3_owner *owner);
void s3_xml_bucket(s3_xml *x, const char *name, int64_t created);

typedef struct s3_list_params {
    bool v2;         /* ListObjectsV2 */
    bool url_encode; /* encoding-type=url */
    bool truncated;
    const char *bucket;
    const char *prefix;
    const char *delimiter;
    uint32_t max_keys;
    const char *marker;                  /* v1 */
    const char *next_marker;             /* v1 */
    const char *start_after;             /* v2 */
    const char *continuation_token;      /* v2 */
    const char *next_continuation_token; /* v2 */
    uint32_t key_count;                  /* v2: objects + common prefixes in the page */
} s3_list_params;

typedef struct s3_list_object {
    const char *key;
    int64_t mtime;
    int mtime_ms;
    const char *etag; /* unquoted */
    uint64_t size;
    const char *storage_class; /* NULL: STANDARD */
    const s3_owner *owner;     /* NULL: no <Owner> (v2 without fetch-owner) */
    /* ListObjectVersions only: */
    const char *version_id; /* NULL: "null" */
    bool is_latest;
    bool delete_marker;
} s3_list_object;

/* ListBucketResult (v1 and v2). */
void s3_xml_list_begin(s3_xml *x, nb_buf *out, const s3_list_params *p);
void s3_xml_list_object(s3_xml *x, const s3_list_params *p, const s3_list_object *o);
/* One <CommonPrefixes><Prefix>p</Prefix></CommonPrefixes>; also for the
 * version and upload listings. */
void s3_xml_common_prefix(s3_xml *x, bool url_encode, const char *prefix);

typedef struct s3_versions_params {
    bool url_encode;
    bool truncated;
    const char *bucket;
    const char *prefix;
    const char *delimiter;
    uint32_t max_keys;
    const char *key_marker;
    const char *version_id_marker;
    const char *next_key_marker;
    const char *next_version_id_marker;
} s3_versions_params;

/* ListVersionsResult: <Version> or, for o->delete_marker, <DeleteMarker>. */
void s3_xml_versions_begin(s3_xml *x, nb_buf *out, const s3_versions_params *p);
void s3_xml_version(s3_xml *x, bool url_encode, const s3_list_object *o);

typedef struct s3_parts_params {
    const char *bucket;
    const char *key;
    const char *upload_id;
    uint32_t part_number_marker;
    uint32_t next_part_number_marker;
    uint32_t max_parts;
    bool truncated;
    const s3_owner *owner; /* Initiator and Owner */
    const char *storage_class;
} s3_parts_params;

/* ListPartsResult. */
void s3_xml_parts_begin(s3_xml *x, nb_buf *out, const s3_parts_params *p);
void s3_xml_part(s3_xml *x, uint32_t number, int64_t mtime, const char *etag, uint64_t size);

typedef struct s3_uploads_params {
    bool url_encode;
    bool truncated;
    const char *bucket;
    const char *prefix;
    const char *delimiter;
    uint32_t max_uploads;
    const char *key_marker;
    const char *upload_id_marker;
    const char *next_key_marker;
    const char *next_upload_id_marker;
} s3_uploads_params;

/* ListMultipartUploadsResult. */
void s3_xml_uploads_begin(s3_xml *x, nb_buf *out, const s3_uploads_params *p);
void s3_xml_upload(s3_xml *x, bool url_encode, const char *key, const char *upload_id,
                   const s3_owner *owner, int64_t initiated);

/* DeleteResult: one <Deleted> per removed key (left out in quiet mode by
 * the caller), one <Error> per failure (rc through s3_error_of). */
void s3_xml_delete_begin(s3_xml *x, nb_buf *out);
void s3_xml_deleted(s3_xml *x, const char *key, const char *version_id, bool delete_marker,
                    const char *delete_marker_version_id);
void s3_xml_delete_error(s3_xml *x, const char *key, const char *version_id, int rc);

/* ------------------------------------------------------------------------ */
/* XML request bodies                                                        */
/* ------------------------------------------------------------------------ */

/* Bodies larger than this are refused before parsing (MalformedXML); the
 * handler should stop reading at this size too. */
#define S3_XML_BODY_MAX        (2u << 20)
#define S3_DELETE_MAX_KEYS     1000
#define S3_MAX_PARTS           10000
#define S3_OBJECT_TAGS_MAX     10
#define S3_BUCKET_TAGS_MAX     50
#define S3_TAG_KEY_MAX         128 /* characters */
#define S3_TAG_VALUE_MAX       256
#define S3_CORS_RULES_MAX      100
#define S3_LIFECYCLE_RULES_MAX 1000

/* All parsers: body is borrowed; the result is owned by the caller and
 * freed with the matching _free (which accepts a zeroed or half-filled
 * struct, so call it on failure too). Malformed, hostile or oversized input
 * gives MalformedXML (or the specific code named) and never crashes. DTDs
 * and entity declarations are refused. */

typedef struct s3_delete_obj {
    char *key;
    char *version_id; /* NULL when absent */
} s3_delete_obj;
typedef struct s3_delete_req {
    bool quiet;
    size_t n;
    s3_delete_obj *objects;
} s3_delete_req;
/* <Delete><Quiet>true</Quiet><Object><Key/><VersionId/></Object>...: 1 to
 * 1000 objects, each with a Key. */
int s3_parse_delete(const void *body, size_t n, s3_delete_req *out) NB_MUST_CHECK;
void s3_delete_req_free(s3_delete_req *r);

typedef struct s3_complete_part {
    uint32_t number;
    char *etag; /* quotes removed */
} s3_complete_part;
typedef struct s3_complete_req {
    size_t n;
    s3_complete_part *parts;
} s3_complete_req;
/* <CompleteMultipartUpload><Part><PartNumber/><ETag/></Part>...: at least
 * one part; numbers 1..10000 (else InvalidArgument) in strictly ascending
 * order (else InvalidPartOrder). */
int s3_parse_complete(const void *body, size_t n, s3_complete_req *out) NB_MUST_CHECK;
void s3_complete_req_free(s3_complete_req *r);

typedef struct s3_tag {
    char *key;
    char *value;
} s3_tag;
typedef struct s3_tagset {
    size_t n;
    s3_tag *tags;
} s3_tagset;
/* <Tagging><TagSet><Tag><Key/><Value/></Tag>...: at most 10 tags for an
 * object, 50 for a bucket; keys 1..128 characters, values 0..256, no
 * duplicate keys, no "aws:" prefix (else InvalidTag). */
int s3_parse_tagging(const void *body, size_t n, bool bucket, s3_tagset *out) NB_MUST_CHECK;
/* The x-amz-tagging header form "k1=v1&k2=v2", same rules (object). */
int s3_parse_tagging_header(const char *value, s3_tagset *out) NB_MUST_CHECK;
void s3_tagset_free(s3_tagset *t);
/* <Tagging><TagSet>...</TagSet></Tagging> for GetObjectTagging. */
int s3_xml_tagging(nb_buf *out, const s3_tagset *t) NB_MUST_CHECK;

typedef enum s3_versioning_status {
    S3_VERSIONING_UNSET,
    S3_VERSIONING_ENABLED,
    S3_VERSIONING_SUSPENDED,
} s3_versioning_status;
typedef struct s3_versioning {
    s3_versioning_status status;
    bool mfa_delete; /* MfaDelete=Enabled: the handler answers NotImplemented */
} s3_versioning;
/* <VersioningConfiguration><Status>Enabled|Suspended</Status>
 * [<MfaDelete>Enabled|Disabled</MfaDelete>]. */
int s3_parse_versioning(const void *body, size_t n, s3_versioning *out) NB_MUST_CHECK;

typedef struct s3_strlist {
    size_t n;
    char **v;
} s3_strlist;
typedef struct s3_cors_rule {
    char *id; /* NULL when absent */
    s3_strlist origins, methods, headers, expose;
    int64_t max_age; /* -1 when absent */
} s3_cors_rule;
typedef struct s3_cors {
    size_t n;
    s3_cors_rule *rules;
} s3_cors;
/* <CORSConfiguration><CORSRule>...: 1..100 rules, each with at least one
 * AllowedOrigin and AllowedMethod (GET PUT POST DELETE HEAD, else
 * InvalidRequest), at most one '*' per origin and allowed header. */
int s3_parse_cors(const void *body, size_t n, s3_cors *out) NB_MUST_CHECK;
void s3_cors_free(s3_cors *c);
/* The first rule allowing a request from origin with method and the
 * comma-separated Access-Control-Request-Headers (may be NULL), or NULL.
 * Borrowed from c. */
const s3_cors_rule *s3_cors_match(const s3_cors *c, const char *origin, const char *method,
                                  const char *req_headers);

typedef struct s3_lifecycle_rule {
    char *id; /* "" when absent */
    bool enabled;
    char *prefix;            /* filter prefix, "" for all */
    s3_tagset tags;          /* filter tags (all must match) */
    int64_t size_gt;         /* ObjectSizeGreaterThan, -1 unset */
    int64_t size_lt;         /* ObjectSizeLessThan, -1 unset */
    int32_t expiration_days; /* -1 unset */
    int64_t expiration_date; /* seconds, -1 unset */
    bool expired_delete_marker;
    int32_t noncurrent_days;   /* -1 unset */
    int32_t newer_noncurrent;  /* -1 unset */
    int32_t abort_upload_days; /* -1 unset */
    bool has_transition;       /* stored; executed with the cold tier */
} s3_lifecycle_rule;
typedef struct s3_lifecycle {
    size_t n;
    s3_lifecycle_rule *rules;
} s3_lifecycle;
/* <LifecycleConfiguration><Rule>...: 1..1000 rules with unique IDs (<= 255
 * chars), Status Enabled|Disabled, one filter form, at least one action,
 * Days >= 1, Dates at midnight UTC; ExpiredObjectDeleteMarker and
 * AbortIncompleteMultipartUpload not combined with tag filters. Value
 * errors are InvalidArgument, a rule without action InvalidRequest,
 * structure errors MalformedXML. */
int s3_parse_lifecycle(const void *body, size_t n, s3_lifecycle *out) NB_MUST_CHECK;
void s3_lifecycle_free(s3_lifecycle *l);

/* ------------------------------------------------------------------------ */
/* Encodings and digests                                                     */
/* ------------------------------------------------------------------------ */

/* Lowercase hex of n bytes into out (2n+1 bytes with the NUL). */
void s3_hex_encode(const uint8_t *p, size_t n, char *out);
/* Decodes exactly 2n hex digits (either case) from s into out[n]; -1 on a
 * bad digit or length. */
int s3_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n);
/* Standard base64 with padding; returns the length written (out must hold
 * 4*ceil(n/3)+1 bytes). */
size_t s3_base64_encode(const uint8_t *p, size_t n, char *out);
/* Decodes canonical padded base64; returns the decoded length or -1 when s
 * is not valid base64 or would not fit in outcap. */
long s3_base64_decode(const char *s, size_t slen, uint8_t *out, size_t outcap);

/* Percent-decodes [s, s+n) into out (at most outcap-1 bytes + NUL); plus
 * as space when plus_is_space. Returns the decoded length, -1 on a bad
 * escape or a decoded NUL, -2 when it does not fit. */
long s3_uri_decode(const char *s, size_t n, bool plus_is_space, char *out, size_t outcap);
/* Appends the AWS SigV4 URI encoding of [s, s+n): unreserved characters
 * (A-Z a-z 0-9 - . _ ~) as-is, '/' as-is when keep_slash, everything else
 * %XX uppercase. */
int s3_uri_encode(nb_buf *out, const char *s, size_t n, bool keep_slash) NB_MUST_CHECK;

typedef enum s3_digest_alg {
    S3_DIGEST_MD5,
    S3_DIGEST_SHA1,
    S3_DIGEST_SHA256,
    S3_DIGEST_CRC32,  /* zlib's CRC-32, 4 bytes big-endian as S3 sends it */
    S3_DIGEST_CRC32C, /* Castagnoli, 4 bytes big-endian */
} s3_digest_alg;

#define S3_DIGEST_MAX 32

typedef struct s3_digest s3_digest;

/* An incremental digest. *out is owned; free with s3_digest_free. */
int s3_digest_new(s3_digest_alg alg, s3_digest **out) NB_MUST_CHECK;
void s3_digest_update(s3_digest *d, const void *p, size_t n);
/* Writes the digest (its length is returned: 16, 20, 32 or 4) into out
 * (S3_DIGEST_MAX bytes) and resets d for reuse. */
size_t s3_digest_final(s3_digest *d, uint8_t out[S3_DIGEST_MAX]);
/* The digest size of alg. */
size_t s3_digest_size(s3_digest_alg alg);
/* One-shot digest of [p, p+n); returns its length. */
size_t s3_digest_once(s3_digest_alg alg, const void *p, size_t n, uint8_t out[S3_DIGEST_MAX]);
void s3_digest_free(s3_digest *d);

/* ------------------------------------------------------------------------ */
/* Dates                                                                     */
/* ------------------------------------------------------------------------ */

/* Parses an HTTP date: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", also
 * with "+0000" or "UTC" as SigV2 clients send), RFC 850 and asctime forms.
 * *out is seconds since the epoch. -1 when s is not a date. */
int s3_http_date_parse(const char *s, int64_t *out) NB_MUST_CHECK;
/* Formats t as IMF-fixdate into out (at least 30 bytes). */
void s3_http_date_format(int64_t t, char *out, size_t cap);
/* Parses ISO 8601 basic "20130524T000000Z"; -1 when malformed. */
int s3_iso8601_basic_parse(const char *s, int64_t *out) NB_MUST_CHECK;
/* Formats t as "20130524T000000Z" (out: at least 17 bytes). */
void s3_iso8601_basic_format(int64_t t, char *out, size_t cap);
/* Formats t (and milliseconds) as "2013-05-24T00:00:00.000Z" for XML
 * (out: at least 25 bytes). */
void s3_iso8601_format(int64_t t, int ms, char *out, size_t cap);
/* Parses "2013-05-24T00:00:00Z", optional fraction and "Z" or "+00:00"; -1
 * when malformed. */
int s3_iso8601_parse(const char *s, int64_t *out) NB_MUST_CHECK;

/* ------------------------------------------------------------------------ */
/* Requests as the auth code sees them                                       */
/* ------------------------------------------------------------------------ */

/* One request header; names compare case-insensitively. Borrowed. */
typedef struct s3_header {
    const char *name;
    const char *value;
} s3_header;

/* A request as received. Everything is borrowed for the duration of a
 * call. path and query must be the raw bytes from the request line (still
 * percent-encoded: with libmicrohttpd take them from
 * MHD_OPTION_URI_LOG_CALLBACK, since the access handler sees them decoded). */
typedef struct s3_http_req {
    const char *method; /* "GET" */
    const char *path;   /* raw path, "/bucket/a%20b" */
    const char *query;  /* raw query without '?', or NULL */
    const s3_header *headers;
    size_t n_headers;
    const char *vhost_bucket; /* bucket taken from the Host header
                                 (virtual-hosted style), or NULL: SigV2
                                 puts it into the canonical resource */
} s3_http_req;

/* The value of header name (case-insensitive), or NULL. Borrowed from req. */
const char *s3_req_header(const s3_http_req *req, const char *name);

/* A parsed query string: decoded name/value pairs in request order.
 * Values of parameters without '=' are "". */
typedef struct s3_query_param {
    char *name;
    char *value;
} s3_query_param;
typedef struct s3_query {
    s3_query_param *params; /* owned */
    size_t n;
} s3_query;

/* Parses a raw query (NULL or "" gives an empty one). '+' decodes as a
 * space. S3_ERR_INVALID_URI on a bad escape. *q is owned; free with
 * s3_query_free (also on failure). */
int s3_query_parse(const char *raw, s3_query *q) NB_MUST_CHECK;
/* The value of the first parameter called name, or NULL. Borrowed. */
const char *s3_query_get(const s3_query *q, const char *name);
void s3_query_free(s3_query *q);

/* ------------------------------------------------------------------------ */
/* Authentication                                                            */
/* ------------------------------------------------------------------------ */

#define S3_ACCESS_KEY_MAX 128
#define S3_SECRET_KEY_MAX 128
/* Clock skew accepted between the request's date and ours. */
#define S3_MAX_SKEW_S (15 * 60)
/* Longest X-Amz-Expires SigV4 accepts: 7 days. */
#define S3_PRESIGN_MAX_EXPIRES_S (7 * 24 * 3600)

/* Looks up the secret key of access_key into secret (cap bytes with the
 * NUL). Returns 0, or NB_ENOTFOUND for an unknown key (→ InvalidAccessKeyId). */
typedef int (*s3_secret_fn)(void *ctx, const char *access_key, char *secret, size_t cap);

typedef enum s3_payload_mode {
    S3_PAYLOAD_EMPTY_OR_ANY,       /* anonymous, SigV2 or presigned: nothing to check */
    S3_PAYLOAD_UNSIGNED,           /* UNSIGNED-PAYLOAD */
    S3_PAYLOAD_SHA256,             /* a hex SHA-256: check it with s3_auth_payload_check */
    S3_PAYLOAD_STREAMING,          /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD */
    S3_PAYLOAD_STREAMING_TRAILER,  /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER */
    S3_PAYLOAD_STREAMING_UNSIGNED, /* STREAMING-UNSIGNED-PAYLOAD-TRAILER */
} s3_payload_mode;

/* The outcome of a successful check. A plain value; copy it freely. */
typedef struct s3_auth {
    int version;                            /* 0 anonymous, 2 or 4 */
    bool presigned;                         /* query-string auth */
    char access_key[S3_ACCESS_KEY_MAX + 1]; /* "" when anonymous */
    s3_payload_mode payload;
    uint8_t payload_sha256[32]; /* S3_PAYLOAD_SHA256 */
    int64_t request_time;       /* seconds since the epoch */
    /* SigV4 state the chunked decoder chains from. */
    uint8_t signing_key[32];
    char seed_signature[65];
    char amz_date[17]; /* "20130524T000000Z" */
    char scope[128];   /* "20130524/us-east-1/s3/aws4_request" */
} s3_auth;

/* Authenticates req at time now (seconds since the epoch): SigV4 from the
 * Authorization header or the X-Amz-* query, SigV2 from "AWS ak:sig" or
 * AWSAccessKeyId/Expires/Signature; no credentials at all give version 0
 * (anonymous — the handler decides whether that is allowed). secret finds
 * the key. Returns 0 and fills *out, or AccessDenied,
 * AuthorizationHeaderMalformed, AuthorizationQueryParametersError,
 * InvalidAccessKeyId, SignatureDoesNotMatch, RequestTimeTooSkewed,
 * (expired) AccessDenied, MissingSecurityHeader, InvalidArgument. */
int s3_auth_check(const s3_http_req *req, s3_secret_fn secret, void *ctx, int64_t now,
                  s3_auth *out) NB_MUST_CHECK;

/* For S3_PAYLOAD_SHA256: compares the SHA-256 of the body the caller
 * computed with the signed one; XAmzContentSHA256Mismatch when they
 * differ. 0 for every other mode. */
int s3_auth_payload_check(const s3_auth *a, const uint8_t sha256[32]) NB_MUST_CHECK;

/* SigV4 building blocks, exposed for tests and for clients we may write. */
void s3_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                          const char *service, uint8_t out[32]);
/* Appends the canonical request of req (signed_headers ';'-separated,
 * lowercase, sorted; payload_hash as it goes into the last line). With
 * presigned, X-Amz-Signature is left out of the query. */
int s3_sigv4_canonical_request(nb_buf *out, const s3_http_req *req, const char *signed_headers,
                               const char *payload_hash, bool presigned) NB_MUST_CHECK;

/* Signs req (SigV4, header form) for a client: req must carry the
 * headers host, x-amz-date (ISO 8601 basic) and x-amz-content-sha256,
 * which are the ones signed. Writes the Authorization header value into
 * authz (cap bytes). NB_EUSAGE when a header is missing or cap is short. */
int s3_sigv4_sign(const s3_http_req *req, const char *access_key, const char *secret_key,
                  const char *region, char *authz, size_t cap) NB_MUST_CHECK;
/* New user credentials: a 20-character access key (A-Z, 2-7) and a
 * 40-character secret (base62), from getrandom. */
int s3_user_keys_generate(char access_key[21], char secret_key[41]) NB_MUST_CHECK;

/* For the body of a SignatureDoesNotMatch answer and for logs: the
 * canonical request (SigV4 only; left empty for V2) and the string to sign
 * the server computed for req, as AWS returns them so a client author can
 * compare with their own. Does not verify anything and needs no secret.
 * Returns 0, or the parse error s3_auth_check would give. */
int s3_auth_explain(const s3_http_req *req, nb_buf *canonical,
                    nb_buf *string_to_sign) NB_MUST_CHECK;

/* Like s3_error_xml, with extra child elements after RequestId/HostId
 * (name/value pairs, e.g. StringToSign and CanonicalRequest). */
int s3_error_xml_ex(nb_buf *out, int rc, const char *message, const char *resource,
                    const char *request_id, const s3_header *extra, size_t n_extra) NB_MUST_CHECK;

/* SigV2 string to sign for req. date_or_expires is the Date (header form)
 * or Expires (query form) line. */
int s3_sigv2_string_to_sign(nb_buf *out, const s3_http_req *req, const char *date_or_expires,
                            bool query_form) NB_MUST_CHECK;

/* ------------------------------------------------------------------------ */
/* aws-chunked bodies                                                        */
/* ------------------------------------------------------------------------ */

/* Decodes a STREAMING-* body fed in arbitrary pieces:
 *
 *   <hex size>;chunk-signature=<64 hex>\r\n<size bytes>\r\n ...
 *   0;chunk-signature=<64 hex>\r\n[trailer lines\r\n]\r\n
 *
 * verifying every chunk signature in a chain from the seed signature (and
 * the trailer signature for -TRAILER), with memory bounded by a small
 * header buffer whatever the chunk size. Decoded bytes are handed to the
 * callback as they arrive, before their chunk's signature is known to be
 * good: the caller must not publish anything until s3_chunked_finish()
 * returns 0. */
typedef struct s3_chunked s3_chunked;

/* Receives decoded payload bytes; a non-zero return stops the decoder and
 * is returned by s3_chunked_feed. */
typedef int (*s3_chunk_data_fn)(void *ctx, const uint8_t *p, size_t n);

/* a must be a successful auth with a STREAMING-* payload mode (borrowed
 * for the call only). decoded_length is x-amz-decoded-content-length, or -1
 * when absent. *out is owned; free with s3_chunked_free. */
int s3_chunked_new(const s3_auth *a, int64_t decoded_length, s3_chunked **out) NB_MUST_CHECK;
/* Consumes [p, p+n). Returns 0, SignatureDoesNotMatch, IncompleteBody (bad
 * framing), or the callback's code. After an error every call fails. */
int s3_chunked_feed(s3_chunked *c, const uint8_t *p, size_t n, s3_chunk_data_fn fn,
                    void *ctx) NB_MUST_CHECK;
/* Call at the end of the body: 0 when the final chunk (and trailers) were
 * seen and verified and the decoded length matches; otherwise
 * IncompleteBody or the error met before. */
int s3_chunked_finish(s3_chunked *c) NB_MUST_CHECK;
/* A trailer value seen after the final chunk ("x-amz-checksum-crc32"), or
 * NULL. Borrowed; valid until s3_chunked_free. */
const char *s3_chunked_trailer(const s3_chunked *c, const char *name);
/* Decoded bytes so far. */
uint64_t s3_chunked_decoded(const s3_chunked *c);
void s3_chunked_free(s3_chunked *c);

/* ------------------------------------------------------------------------ */
/* Request helpers                                                           */
/* ------------------------------------------------------------------------ */

#define S3_BUCKET_NAME_MAX 63
#define S3_KEY_MAX         1024
#define S3_META_MAX        2048 /* user metadata: bytes of names + values */
#define S3_ETAG_MAX        48   /* "<32 hex>-10000" and the NUL */

/* AWS bucket naming rules: 3-63 characters of a-z 0-9 . -, starting and
 * ending with a letter or digit, no "..", not an IPv4 address, none of
 * the reserved prefixes (xn--, sthree-, amzn-s3-demo-) and suffixes
 * (-s3alias, --ol-s3, .mrap, --x-s3). 0 or InvalidBucketName. */
int s3_bucket_name_check(const char *name) NB_MUST_CHECK;

/* What a request addresses. */
typedef struct s3_target {
    char bucket[S3_BUCKET_NAME_MAX + 1]; /* "" for the service (ListBuckets) */
    char key[S3_KEY_MAX + 1];            /* decoded; "" when none */
    size_t key_len;
    bool vhost; /* the bucket came from the Host header */
} s3_target;

/* Splits a request into bucket and key. host is the Host header (port
 * ignored, may be NULL); domain is the configured base domain for
 * virtual-hosted style ("s3.example.com": "b.s3.example.com" addresses
 * bucket "b"), NULL for path-style only. raw_path is the path as sent.
 * InvalidURI for a bad escape or a NUL, KeyTooLongError beyond 1024 bytes,
 * InvalidBucketName for a bucket segment longer than 63 bytes (other rules
 * are checked by s3_bucket_name_check when a bucket is created). */
int s3_target_parse(const char *host, const char *raw_path, const char *domain,
                    s3_target *out) NB_MUST_CHECK;

/* A byte range, inclusive. */
typedef struct s3_range {
    bool partial; /* false: send the whole object with 200 */
    uint64_t start, end;
} s3_range;

/* Evaluates a Range header against an object of size bytes, as S3 does:
 * "bytes=a-b" (b clamped to size-1), "bytes=a-", "bytes=-n" (the last n;
 * all of it when n >= size). A header that is absent, not "bytes=",
 * syntactically invalid or lists several ranges is ignored (whole object,
 * 200). Unsatisfiable (a >= size, "-0", any range of an empty object):
 * InvalidRange (416). */
int s3_range_parse(const char *header, uint64_t size, s3_range *out) NB_MUST_CHECK;
/* "bytes a-b/size" for a 206, or "bytes * /size" (no space) for a 416
 * when r is NULL. */
void s3_content_range(const s3_range *r, uint64_t size, char *out, size_t cap);

/* The four conditional headers (borrowed, each may be NULL). */
typedef struct s3_cond {
    const char *if_match;
    const char *if_none_match;
    const char *if_modified_since;
    const char *if_unmodified_since;
} s3_cond;

/* Fills c from req's headers; prefix "" for GET/HEAD/PUT conditions or
 * "x-amz-copy-source-" for CopyObject source conditions. */
void s3_cond_from_req(const s3_http_req *req, const char *prefix, s3_cond *c);
/* Evaluates c against an object with etag (unquoted) and mtime (seconds),
 * with AWS's precedence: If-Match true overrides a false
 * If-Unmodified-Since; If-None-Match false overrides a true
 * If-Modified-Since. Returns 0 (proceed), PreconditionFailed (412) or, when
 * allow_304 (GET/HEAD), NotModified (304); without allow_304 the
 * If-None-Match/If-Modified-Since failures are 412 too (copy source). An
 * unparseable date is ignored. */
int s3_cond_eval(const s3_cond *c, const char *etag, int64_t mtime, bool allow_304) NB_MUST_CHECK;

/* The length of the payload of a PUT/POST/UploadPart: for aws-chunked
 * bodies (a STREAMING-* auth) x-amz-decoded-content-length, which is then
 * required; otherwise Content-Length. MissingContentLength when it cannot
 * be known (plain HTTP chunked), InvalidArgument for a malformed number,
 * EntityTooLarge beyond max. */
int s3_payload_length(const s3_http_req *req, const s3_auth *a, uint64_t max,
                      uint64_t *out) NB_MUST_CHECK;

/* ETag of a simple object: the hex MD5 (out: 33 bytes). */
void s3_etag_md5(const uint8_t md5[16], char *out);
/* ETag of a multipart object: hex MD5 of the concatenated binary part
 * MD5s, "-" and the part count. part_etags are hex (quotes allowed).
 * InvalidPart when one is not an MD5. out: S3_ETAG_MAX bytes. */
int s3_etag_multipart(const char *const *part_etags, size_t n, char *out) NB_MUST_CHECK;
/* Decodes a Content-MD5 header (base64 of 16 bytes); InvalidDigest
 * otherwise. */
int s3_content_md5_parse(const char *b64, uint8_t out[16]) NB_MUST_CHECK;

/* User metadata: x-amz-meta-* headers, names lowercased without the
 * prefix, repeated headers joined with ','. Owned; free with
 * s3_meta_free. */
typedef struct s3_meta_item {
    char *name;
    char *value;
} s3_meta_item;
typedef struct s3_meta {
    size_t n;
    s3_meta_item *items;
    size_t bytes; /* names + values */
} s3_meta;
/* MetadataTooLarge beyond S3_META_MAX bytes. */
int s3_meta_collect(const s3_http_req *req, s3_meta *out) NB_MUST_CHECK;
void s3_meta_free(s3_meta *m);

/* Additional checksums (x-amz-checksum-*). */
typedef struct s3_checksum {
    bool present;
    s3_digest_alg alg;  /* CRC32, CRC32C, SHA1 or SHA256 */
    const char *header; /* "x-amz-checksum-crc32", static */
    bool trailer;       /* value arrives in the aws-chunked trailer */
    char expected[64];  /* base64 from the header, "" when trailing */
} s3_checksum;

/* Reads x-amz-checksum-{crc32,crc32c,sha1,sha256}, or the algorithm named
 * by x-amz-sdk-checksum-algorithm / x-amz-trailer. InvalidRequest for two
 * checksums, an unknown algorithm or a value that is not base64 of the
 * right size. */
int s3_checksum_from_req(const s3_http_req *req, s3_checksum *out) NB_MUST_CHECK;
/* Compares the computed digest with the expected base64 value (or with
 * trailer_value when the checksum trails); BadDigest when they differ.
 * b64_out (64 bytes, may be NULL) receives the value to return. */
int s3_checksum_verify(const s3_checksum *c, const uint8_t *digest, const char *trailer_value,
                       char *b64_out) NB_MUST_CHECK;

/* ------------------------------------------------------------------------ */
/* Routing and operation arguments                                           */
/* ------------------------------------------------------------------------ */

#define S3_OP_MAP(XX)                                                                              \
    XX(LIST_BUCKETS, "ListBuckets")                                                                \
    XX(CREATE_BUCKET, "CreateBucket")                                                              \
    XX(DELETE_BUCKET, "DeleteBucket")                                                              \
    XX(HEAD_BUCKET, "HeadBucket")                                                                  \
    XX(GET_BUCKET_LOCATION, "GetBucketLocation")                                                   \
    XX(PUT_BUCKET_TAGGING, "PutBucketTagging")                                                     \
    XX(GET_BUCKET_TAGGING, "GetBucketTagging")                                                     \
    XX(DELETE_BUCKET_TAGGING, "DeleteBucketTagging")                                               \
    XX(PUT_BUCKET_VERSIONING, "PutBucketVersioning")                                               \
    XX(GET_BUCKET_VERSIONING, "GetBucketVersioning")                                               \
    XX(PUT_BUCKET_CORS, "PutBucketCors")                                                           \
    XX(GET_BUCKET_CORS, "GetBucketCors")                                                           \
    XX(DELETE_BUCKET_CORS, "DeleteBucketCors")                                                     \
    XX(PUT_BUCKET_LIFECYCLE, "PutBucketLifecycleConfiguration")                                    \
    XX(GET_BUCKET_LIFECYCLE, "GetBucketLifecycleConfiguration")                                    \
    XX(DELETE_BUCKET_LIFECYCLE, "DeleteBucketLifecycle")                                           \
    XX(LIST_OBJECTS, "ListObjects")                                                                \
    XX(LIST_OBJECTS_V2, "ListObjectsV2")                                                           \
    XX(LIST_OBJECT_VERSIONS, "ListObjectVersions")                                                 \
    XX(LIST_MULTIPART_UPLOADS, "ListMultipartUploads")                                             \
    XX(DELETE_OBJECTS, "DeleteObjects")                                                            \
    XX(PUT_OBJECT, "PutObject")                                                                    \
    XX(COPY_OBJECT, "CopyObject")                                                                  \
    XX(GET_OBJECT, "GetObject")                                                                    \
    XX(HEAD_OBJECT, "HeadObject")                                                                  \
    XX(DELETE_OBJECT, "DeleteObject")                                                              \
    XX(PUT_OBJECT_TAGGING, "PutObjectTagging")                                                     \
    XX(GET_OBJECT_TAGGING, "GetObjectTagging")                                                     \
    XX(DELETE_OBJECT_TAGGING, "DeleteObjectTagging")                                               \
    XX(CREATE_MULTIPART_UPLOAD, "CreateMultipartUpload")                                           \
    XX(UPLOAD_PART, "UploadPart")                                                                  \
    XX(UPLOAD_PART_COPY, "UploadPartCopy")                                                         \
    XX(COMPLETE_MULTIPART_UPLOAD, "CompleteMultipartUpload")                                       \
    XX(ABORT_MULTIPART_UPLOAD, "AbortMultipartUpload")                                             \
    XX(LIST_PARTS, "ListParts")                                                                    \
    XX(CORS_PREFLIGHT, "PreflightRequest")                                                         \
    XX(GET_BUCKET_ACL, "GetBucketAcl")                                                             \
    XX(PUT_BUCKET_ACL, "PutBucketAcl")                                                             \
    XX(GET_OBJECT_ACL, "GetObjectAcl")                                                             \
    XX(PUT_OBJECT_ACL, "PutObjectAcl")

typedef enum s3_op {
#define S3__OP_ENUM(name, str) S3_OP_##name,
    S3_OP_MAP(S3__OP_ENUM)
#undef S3__OP_ENUM
        S3_OP_COUNT
} s3_op;

/* "PutObject"; "?" for a value out of range. Static. */
const char *s3_op_name(s3_op op);

/* Picks the operation from the method, the target (service, bucket or
 * object), the sub-resources in q and, for PUT, x-amz-copy-source.
 * NotImplemented (501) for S3 operations the gateway does not have (?acl,
 * ?policy, ?website, POST object, ...), MethodNotAllowed (405) for methods
 * S3 has no operation for. */
int s3_route(const s3_http_req *req, const s3_target *t, const s3_query *q,
             s3_op *out) NB_MUST_CHECK;

/* x-amz-copy-source: "[/]bucket/key[?versionId=v]", URL-encoded. */
typedef struct s3_copy_source {
    char bucket[S3_BUCKET_NAME_MAX + 1];
    char key[S3_KEY_MAX + 1];
    char version_id[128]; /* "" when absent */
} s3_copy_source;
/* InvalidArgument when malformed, KeyTooLongError, InvalidBucketName. */
int s3_copy_source_parse(const char *header, s3_copy_source *out) NB_MUST_CHECK;
/* x-amz-copy-source-range "bytes=a-b" against a source of size bytes: both
 * ends required, a <= b < size; InvalidArgument when malformed,
 * InvalidRange when outside the source. */
int s3_copy_range_parse(const char *header, uint64_t size, s3_range *out) NB_MUST_CHECK;

/* Arguments of the listing operations, from the query. */
typedef struct s3_list_args {
    const char *prefix;         /* "" when absent; borrowed from q */
    const char *delimiter;      /* NULL when absent or empty */
    const char *marker;         /* v1 marker, v2 start-after, versions/uploads key-marker */
    const char *version_marker; /* version-id-marker / upload-id-marker */
    char *continuation;         /* v2: decoded continuation-token (owned), NULL */
    uint32_t max_keys;          /* max-keys/max-uploads/max-parts, default 1000, capped */
    uint32_t part_marker;       /* ListParts part-number-marker */
    bool url_encode;            /* encoding-type=url */
    bool fetch_owner;           /* v2 fetch-owner=true */
} s3_list_args;
/* Reads the query of op (a listing op or ListParts). InvalidArgument for a
 * negative or non-numeric max-keys, an encoding-type other than url, a bad
 * continuation token. Free with s3_list_args_free. */
int s3_list_args_parse(s3_op op, const s3_query *q, s3_list_args *out) NB_MUST_CHECK;
void s3_list_args_free(s3_list_args *a);
/* Makes the opaque continuation token for a v2 page ending after key
 * (base64 of the key). out: at least 4*ceil(len/3)+1 bytes. */
void s3_continuation_token(const char *key, char *out);

/* Canned ACLs (x-amz-acl), the only ACLs the gateway keeps: they decide
 * whether anonymous requests may read (public-read) or write
 * (public-read-write) a bucket. */
typedef enum s3_acl {
    S3_ACL_PRIVATE,
    S3_ACL_PUBLIC_READ,
    S3_ACL_PUBLIC_READ_WRITE,
    S3_ACL_AUTHENTICATED_READ,
    S3_ACL_BUCKET_OWNER_READ,
    S3_ACL_BUCKET_OWNER_FULL_CONTROL,
} s3_acl;
/* From x-amz-acl (absent: private). InvalidArgument for an unknown canned
 * ACL; NotImplemented for x-amz-grant-* headers (explicit grants). */
int s3_acl_from_req(const s3_http_req *req, s3_acl *out) NB_MUST_CHECK;
/* "public-read" */
const char *s3_acl_name(s3_acl acl);
/* An AccessControlPolicy body (PutBucketAcl) as one of the canned ACLs the
 * gateway keeps: FULL_CONTROL for the CanonicalUser owner_id is required,
 * READ for the AllUsers group makes it public-read. Any other grant, or
 * none for the owner: NotImplemented; an Owner other than owner_id:
 * AccessDenied; a Grant without Grantee or Permission, an unknown
 * permission or no AccessControlList: MalformedXML. */
int s3_parse_acl(const void *body, size_t n, const char *owner_id, s3_acl *out) NB_MUST_CHECK;
/* The AccessControlPolicy document of a canned ACL for GetBucketAcl and
 * GetObjectAcl: FULL_CONTROL for the owner plus the grants it implies. */
int s3_xml_acl(nb_buf *out, const s3_owner *owner, s3_acl acl) NB_MUST_CHECK;

/* Size rules. */
#define S3_MAX_PUT_SIZE  (5ull << 30) /* PutObject, UploadPart: 5 GiB */
#define S3_MIN_PART_SIZE (5ull << 20) /* every part but the last: 5 MiB */
#define S3_MAX_OBJECT    (5ull << 40) /* 5 TiB */
/* Checks the sizes of the parts of a CompleteMultipartUpload in order:
 * EntityTooSmall when a part other than the last is below 5 MiB,
 * EntityTooLarge when the total exceeds 5 TiB. */
int s3_parts_size_check(const uint64_t *sizes, size_t n) NB_MUST_CHECK;

/* ------------------------------------------------------------------------ */
/* Response headers                                                          */
/* ------------------------------------------------------------------------ */

/* The lists below reuse s3_meta as an owned list of (name, value) headers
 * with their names as they go on the wire. */

/* System metadata stored with an object: Content-Type (binary/octet-stream
 * when absent, as S3 stores it), Cache-Control, Content-Disposition,
 * Content-Encoding (with the transport-only "aws-chunked" removed, left
 * out when nothing remains), Content-Language, Expires. */
int s3_sysmeta_collect(const s3_http_req *req, s3_meta *out) NB_MUST_CHECK;

/* GetObject's response-* overrides (response-content-type,
 * -content-language, -expires, -cache-control, -content-disposition,
 * -content-encoding) as the headers they replace. InvalidRequest for an
 * anonymous request that uses them, as S3 answers. */
int s3_response_overrides(const s3_query *q, bool anonymous, s3_meta *out) NB_MUST_CHECK;

/* CORS response headers for a request from origin allowed by rule r
 * (s3_cors_match): Access-Control-Allow-Origin (origin, or "*" for a "*"
 * rule), -Allow-Methods, -Allow-Credentials, -Expose-Headers, -Max-Age,
 * Vary, and for a preflight -Allow-Headers echoing req_headers. */
int s3_cors_headers(const s3_cors_rule *r, const char *origin, const char *req_headers,
                    bool preflight, s3_meta *out) NB_MUST_CHECK;

/* A fresh request id for x-amz-request-id: 16 uppercase hex characters,
 * unique within the process (out: 17 bytes). Thread-safe. */
void s3_request_id(char *out);

/* ------------------------------------------------------------------------ */
/* Gateway: the request handlers (gateway*.c, docs/s3.md "Gateway")         */
/* ------------------------------------------------------------------------ */

/* The gateway serves S3 over the namespace on libmicrohttpd connections
 * that src/server accepts: the server hands every request that is not an
 * admin endpoint to s3_gw_handle. A request context is made when the
 * request line arrives (with the raw URI, which MHD decodes before the
 * access handler sees it) and ends in s3_gw_req_done. Bodies stream both
 * ways: PUT bytes go into vfs_put_write as they arrive, GET bytes are read
 * with vfs_read as MHD sends them; memory per request is a few hundred KiB
 * whatever the object size. Thread safety: one s3_gw serves every MHD
 * thread; a request context belongs to the thread MHD runs it on. */

typedef struct vfs vfs;
struct MHD_Connection;

typedef struct s3_gw s3_gw;
typedef struct s3_gw_req s3_gw_req;

/* Called after an S3 change to the namespace, so a FUSE mount drops what
 * the kernel cached: for each (parent, name) whose entry changed (ino 0)
 * and for each replaced or removed inode (parent 0, name NULL). */
typedef void (*s3_gw_invalidate_fn)(void *ctx, uint64_t parent, const char *name, uint64_t ino);

typedef struct s3_gw_options {
    vfs *ns;                /* borrowed; outlives the gateway */
    const char *access_key; /* root credentials (copied) */
    const char *secret_key;
    const char *region;             /* NULL: "us-east-1" */
    const char *domain;             /* virtual-hosted style base domain; NULL: path style only */
    s3_gw_invalidate_fn invalidate; /* NULL without a mount */
    void *invalidate_ctx;
    double lifecycle_interval_s; /* lifecycle scans this often; <= 0: none */
    double lifecycle_day_s;      /* a lifecycle "day" (tests); <= 0: 86400 */
} s3_gw_options;

/* What one lifecycle scan did (docs/s3.md "Lifecycle"). */
typedef struct s3_lifecycle_report {
    uint64_t buckets;            /* buckets with a lifecycle configuration */
    uint64_t expired;            /* current objects expired (deleted or marked) */
    uint64_t noncurrent_removed; /* noncurrent versions removed */
    uint64_t markers_removed;    /* expired delete markers removed */
    uint64_t uploads_aborted;
} s3_lifecycle_report;
/* Runs every bucket's lifecycle rules once, as of now_ns (wall clock). */
int s3_gw_lifecycle_run(s3_gw *g, int64_t now_ns, s3_lifecycle_report *rep) NB_MUST_CHECK;

/* Makes a gateway. *out is owned; free with s3_gw_free. The MHD daemon
 * must allow suspending connections (MHD_ALLOW_SUSPEND_RESUME): commits
 * run on the gateway's own workers while their connection is suspended. */
int s3_gw_new(const s3_gw_options *o, s3_gw **out) NB_MUST_CHECK;
/* Waits until no request's work runs on the gateway's workers (each such
 * request's connection has been resumed). Call before MHD_stop_daemon,
 * which must not meet suspended connections. */
void s3_gw_drain(s3_gw *g);
void s3_gw_free(s3_gw *g);
/* A context for the request whose raw request-target (path and query as
 * sent) is raw_uri (copied). Owned; end it with s3_gw_req_done. */
s3_gw_req *s3_gw_req_new(s3_gw *g, const char *raw_uri);
/* The MHD access handler for r (same arguments as MHD's, MHD_Result as
 * int): authenticates and routes on the first call (before MHD answers
 * Expect: 100-continue), consumes the body as it arrives, answers at the
 * end. */
int s3_gw_handle(s3_gw_req *r, struct MHD_Connection *c, const char *method, const char *upload,
                 size_t *upload_size);
/* Ends r (completed: MHD finished the request normally); an unfinished
 * upload is dropped. Returns the HTTP status answered, 0 when none. NULL is
 * a no-op. */
unsigned s3_gw_req_done(s3_gw_req *r, bool completed);
/* True on the first call for r, false after: the server's own endpoints
 * answer on the second call, once MHD has read the whole request (an
 * answer queued on the first call makes MHD close the connection). */
bool s3_gw_req_first_call(s3_gw_req *r);

/* How GET bodies were sent since the gateway started (for /metrics and the
 * tests that prove the zero-copy paths are taken; gw_get.c). */
typedef enum s3_get_path {
    S3_GET_MEMORY,   /* read into one buffer, sent with the header */
    S3_GET_SENDFILE, /* one contiguous range of a block-store file: sendfile */
    S3_GET_MAPPED,   /* several block-store ranges mapped, one I/O vector */
    S3_GET_STREAM,   /* copied through vfs_read as MHD sends */
    S3_GET_COLD,     /* a large answer over blocks not yet verified: copied
                      * from the snapshot as each block is verified, while
                      * the next ones load */
    S3_GET_NPATHS
} s3_get_path;
/* Name of a path for labels ("memory", "sendfile", "mapped", "stream"). */
const char *s3_get_path_name(s3_get_path p);
/* GET bodies answered by path p so far. */
uint64_t s3_gw_get_count(s3_gw *g, s3_get_path p);

#endif
