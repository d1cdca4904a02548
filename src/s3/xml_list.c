/*
 * xml_list.c — the listing and multi-object documents: ListBuckets,
 * ListObjects v1/v2, ListObjectVersions, ListParts, ListMultipartUploads,
 * DeleteResult. Element order follows AWS's responses.
 */
#include <string.h>

#include "s3/s3_int.h"

int s3_url_encode_key(nb_buf *out, const char *s, size_t n)
{
    static const char digits[] = "0123456789ABCDEF";
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        int c = (unsigned char)s[i];
        bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == '*';
        if (keep) {
            rc = nb_buf_put_u8(out, (uint8_t)c);
        } else if (c == ' ') {
            rc = nb_buf_put_u8(out, '+');
        } else {
            char e[3] = {'%', digits[c >> 4], digits[c & 15]};
            rc = nb_buf_append(out, e, 3);
        }
    }
    return rc;
}

/* <name>s</name>, URL-encoded when asked; nothing when s is NULL. */
static void key_elem(s3_xml *x, const char *name, const char *s, bool url_encode)
{
    if (!s || x->rc)
        return;
    if (!url_encode) {
        s3_xml_elem(x, name, s);
        return;
    }
    nb_buf b = NB_BUF_INIT;
    x->rc = s3_url_encode_key(&b, s, strlen(s));
    if (!x->rc)
        s3_xml_elem_n(x, name, b.data ? (const char *)b.data : "", b.len);
    nb_buf_free(&b);
}

static void opt_elem(s3_xml *x, const char *name, const char *s)
{
    if (s)
        s3_xml_elem(x, name, s);
}

static void owner_elem(s3_xml *x, const char *name, const s3_owner *o)
{
    if (!o)
        return;
    s3_xml_open(x, name);
    s3_xml_elem(x, "ID", o->id ? o->id : "");
    s3_xml_elem(x, "DisplayName", o->display_name ? o->display_name : "");
    s3_xml_close(x);
}

static void etag_elem(s3_xml *x, const char *etag)
{
    s3_xml_elemf(x, "ETag", "\"%s\"", etag ? etag : "");
}

void s3_xml_buckets_begin(s3_xml *x, nb_buf *out, const s3_owner *owner)
{
    s3_xml_begin(x, out);
    s3_xml_open_ns(x, "ListAllMyBucketsResult");
    owner_elem(x, "Owner", owner);
    s3_xml_open(x, "Buckets");
}

void s3_xml_bucket(s3_xml *x, const char *name, int64_t created)
{
    s3_xml_open(x, "Bucket");
    s3_xml_elem(x, "Name", name);
    s3_xml_elem_time(x, "CreationDate", created, 0);
    s3_xml_close(x);
}

void s3_xml_list_begin(s3_xml *x, nb_buf *out, const s3_list_params *p)
{
    bool u = p->url_encode;
    s3_xml_begin(x, out);
    s3_xml_open_ns(x, "ListBucketResult");
    s3_xml_elem(x, "Name", p->bucket);
    key_elem(x, "Prefix", p->prefix ? p->prefix : "", u);
    if (p->v2) {
        key_elem(x, "StartAfter", p->start_after, u);
        opt_elem(x, "ContinuationToken", p->continuation_token);
        opt_elem(x, "NextContinuationToken", p->next_continuation_token);
        s3_xml_elem_u64(x, "KeyCount", p->key_count);
    } else {
        key_elem(x, "Marker", p->marker ? p->marker : "", u);
        key_elem(x, "NextMarker", p->next_marker, u);
    }
    s3_xml_elem_u64(x, "MaxKeys", p->max_keys);
    key_elem(x, "Delimiter", p->delimiter, u);
    s3_xml_elem_bool(x, "IsTruncated", p->truncated);
    if (u)
        s3_xml_elem(x, "EncodingType", "url");
}

static void object_body(s3_xml *x, bool url_encode, const s3_list_object *o, bool versions)
{
    key_elem(x, "Key", o->key, url_encode);
    if (versions) {
        s3_xml_elem(x, "VersionId", o->version_id ? o->version_id : "null");
        s3_xml_elem_bool(x, "IsLatest", o->is_latest);
    }
    s3_xml_elem_time(x, "LastModified", o->mtime, o->mtime_ms);
    if (!o->delete_marker) {
        etag_elem(x, o->etag);
        s3_xml_elem_u64(x, "Size", o->size);
    }
    owner_elem(x, "Owner", o->owner);
    if (!o->delete_marker)
        s3_xml_elem(x, "StorageClass", o->storage_class ? o->storage_class : "STANDARD");
}

void s3_xml_list_object(s3_xml *x, const s3_list_params *p, const s3_list_object *o)
{
    s3_xml_open(x, "Contents");
    object_body(x, p->url_encode, o, false);
    s3_xml_close(x);
}

void s3_xml_common_prefix(s3_xml *x, bool url_encode, const char *prefix)
{
    s3_xml_open(x, "CommonPrefixes");
    key_elem(x, "Prefix", prefix, url_encode);
    s3_xml_close(x);
}

void s3_xml_versions_begin(s3_xml *x, nb_buf *out, const s3_versions_params *p)
{
    bool u = p->url_encode;
    s3_xml_begin(x, out);
    s3_xml_open_ns(x, "ListVersionsResult");
    s3_xml_elem(x, "Name", p->bucket);
    key_elem(x, "Prefix", p->prefix ? p->prefix : "", u);
    key_elem(x, "KeyMarker", p->key_marker ? p->key_marker : "", u);
    s3_xml_elem(x, "VersionIdMarker", p->version_id_marker ? p->version_id_marker : "");
    key_elem(x, "NextKeyMarker", p->next_key_marker, u);
    opt_elem(x, "NextVersionIdMarker", p->next_version_id_marker);
    s3_xml_elem_u64(x, "MaxKeys", p->max_keys);
    key_elem(x, "Delimiter", p->delimiter, u);
    s3_xml_elem_bool(x, "IsTruncated", p->truncated);
    if (u)
        s3_xml_elem(x, "EncodingType", "url");
}

void s3_xml_version(s3_xml *x, bool url_encode, const s3_list_object *o)
{
    s3_xml_open(x, o->delete_marker ? "DeleteMarker" : "Version");
    object_body(x, url_encode, o, true);
    s3_xml_close(x);
}

void s3_xml_parts_begin(s3_xml *x, nb_buf *out, const s3_parts_params *p)
{
    s3_xml_begin(x, out);
    s3_xml_open_ns(x, "ListPartsResult");
    s3_xml_elem(x, "Bucket", p->bucket);
    s3_xml_elem(x, "Key", p->key);
    s3_xml_elem(x, "UploadId", p->upload_id);
    owner_elem(x, "Initiator", p->owner);
    owner_elem(x, "Owner", p->owner);
    s3_xml_elem(x, "StorageClass", p->storage_class ? p->storage_class : "STANDARD");
    s3_xml_elem_u64(x, "PartNumberMarker", p->part_number_marker);
    s3_xml_elem_u64(x, "NextPartNumberMarker", p->next_part_number_marker);
    s3_xml_elem_u64(x, "MaxParts", p->max_parts);
    s3_xml_elem_bool(x, "IsTruncated", p->truncated);
}

void s3_xml_part(s3_xml *x, uint32_t number, int64_t mtime, const char *etag, uint64_t size)
{
    s3_xml_open(x, "Part");
    s3_xml_elem_u64(x, "PartNumber", number);
    s3_xml_elem_time(x, "LastModified", mtime, 0);
    etag_elem(x, etag);
    s3_xml_elem_u64(x, "Size", size);
    s3_xml_close(x);
}

void s3_xml_uploads_begin(s3_xml *x, nb_buf *out, const s3_uploads_params *p)
{
    bool u = p->url_encode;
    s3_xml_begin(x, out);
    s3_xml_open_ns(x, "ListMultipartUploadsResult");
    s3_xml_elem(x, "Bucket", p->bucket);
    key_elem(x, "KeyMarker", p->key_marker ? p->key_marker : "", u);
    s3_xml_elem(x, "UploadIdMarker", p->upload_id_marker ? p->upload_id_marker : "");
    key_elem(x, "NextKeyMarker", p->next_key_marker ? p->next_key_marker : "", u);
    s3_xml_elem(x, "NextUploadIdMarker", p->next_upload_id_marker ? p->next_upload_id_marker : "");
    key_elem(x, "Prefix", p->prefix ? p->prefix : "", u);
    key_elem(x, "Delimiter", p->delimiter, u);
    s3_xml_elem_u64(x, "MaxUploads", p->max_uploads);
    s3_xml_elem_bool(x, "IsTruncated", p->truncated);
    if (u)
        s3_xml_elem(x, "EncodingType", "url");
}

void s3_xml_upload(s3_xml *x, bool url_encode, const char *key, const char *upload_id,
                   const s3_owner *owner, int64_t initiated)
{
    s3_xml_open(x, "Upload");
    key_elem(x, "Key", key, url_encode);
    s3_xml_elem(x, "UploadId", upload_id);
    owner_elem(x, "Initiator", owner);
    owner_elem(x, "Owner", owner);
    s3_xml_elem(x, "StorageClass", "STANDARD");
    s3_xml_elem_time(x, "Initiated", initiated, 0);
    s3_xml_close(x);
}

void s3_xml_delete_begin(s3_xml *x, nb_buf *out)
{
    s3_xml_begin(x, out);
    s3_xml_open_ns(x, "DeleteResult");
}

void s3_xml_deleted(s3_xml *x, const char *key, const char *version_id, bool delete_marker,
                    const char *delete_marker_version_id)
{
    s3_xml_open(x, "Deleted");
    s3_xml_elem(x, "Key", key);
    opt_elem(x, "VersionId", version_id);
    if (delete_marker) {
        s3_xml_elem_bool(x, "DeleteMarker", true);
        opt_elem(x, "DeleteMarkerVersionId", delete_marker_version_id);
    }
    s3_xml_close(x);
}

void s3_xml_delete_error(s3_xml *x, const char *key, const char *version_id, int rc)
{
    const s3_error *e = s3_error_of(rc);
    s3_xml_open(x, "Error");
    s3_xml_elem(x, "Key", key);
    opt_elem(x, "VersionId", version_id);
    s3_xml_elem(x, "Code", e->code);
    s3_xml_elem(x, "Message", e->message);
    s3_xml_close(x);
}
