/*
 * errors.c — the S3 error table and the translation of our status codes
 * into S3 errors (the one place that does it, docs/errors.md: "only the
 * edges translate").
 */
#include <errno.h>

#include "s3/s3_int.h"

static const s3_error table[] = {
#define S3__ERR_ROW(name, value, code, status, msg) {value, code, status, msg},
    S3_ERR_MAP(S3__ERR_ROW)
#undef S3__ERR_ROW
};

static const s3_error *by_rc(int rc)
{
    int i = -31001 - rc;
    if (i >= 0 && (size_t)i < NB_ARRAY_LEN(table) && table[i].rc == rc)
        return &table[i];
    for (size_t j = 0; j < NB_ARRAY_LEN(table); j++)
        if (table[j].rc == rc)
            return &table[j];
    return NULL;
}

bool s3_is_s3_error(int rc)
{
    return by_rc(rc) != NULL;
}

/* NB_E* and -errno → S3. Context-dependent codes (NoSuchBucket vs
 * NoSuchKey, BucketAlreadyExists vs BucketAlreadyOwnedByYou) are the
 * handler's to pick; this is the fallback when it has nothing better. */
static int map_status(int rc)
{
    switch (rc) {
    case NB_ENOTFOUND:
    case -ENOENT:
        return S3_ERR_NO_SUCH_KEY;
    case NB_EEXIST:
    case -EEXIST:
        return S3_ERR_BUCKET_ALREADY_EXISTS;
    case -ENOTEMPTY:
        return S3_ERR_BUCKET_NOT_EMPTY;
    case -ENAMETOOLONG:
        return S3_ERR_KEY_TOO_LONG;
    case NB_ETOOBIG:
    case -EFBIG:
        return S3_ERR_ENTITY_TOO_LARGE;
    case NB_ECHECKSUM:
        return S3_ERR_BAD_DIGEST;
    case NB_EAGAIN:
    case -EAGAIN:
    case NB_ECONFLICT:
        return S3_ERR_SLOW_DOWN;
    case NB_ECLOSED:
    case NB_ELOCKED:
        return S3_ERR_SERVICE_UNAVAILABLE;
    case -EACCES:
    case -EPERM:
        return S3_ERR_ACCESS_DENIED;
    case NB_EUSAGE:
    case -EINVAL:
    case -ENOTDIR:
    case -EISDIR:
        return S3_ERR_INVALID_ARGUMENT;
    case -ENOSYS:
    case -EOPNOTSUPP:
        return S3_ERR_NOT_IMPLEMENTED;
    case -ETIMEDOUT:
        return S3_ERR_REQUEST_TIMEOUT;
    case NB_ENOSPACE:
    case -ENOSPC:
    case -EDQUOT:
        return S3_ERR_INSUFFICIENT_STORAGE;
    default:
        return S3_ERR_INTERNAL_ERROR;
    }
}

const s3_error *s3_error_of(int rc)
{
    const s3_error *e = by_rc(rc);
    if (!e)
        e = by_rc(map_status(rc));
    return e;
}

int s3_error_xml(nb_buf *out, int rc, const char *message, const char *resource,
                 const char *request_id)
{
    return s3_error_xml_ex(out, rc, message, resource, request_id, NULL, 0);
}

int s3_error_xml_ex(nb_buf *out, int rc, const char *message, const char *resource,
                    const char *request_id, const s3_header *extra, size_t n_extra)
{
    const s3_error *e = s3_error_of(rc);
    s3_xml x;
    s3_xml_begin(&x, out);
    s3_xml_open(&x, "Error");
    s3_xml_elem(&x, "Code", e->code);
    s3_xml_elem(&x, "Message", message ? message : e->message);
    if (resource)
        s3_xml_elem(&x, "Resource", resource);
    if (request_id) {
        s3_xml_elem(&x, "RequestId", request_id);
        s3_xml_elem(&x, "HostId", request_id);
    }
    for (size_t i = 0; i < n_extra; i++)
        s3_xml_elem(&x, extra[i].name, extra[i].value);
    return s3_xml_end(&x);
}
