/*
 * meta_s3.c — what the S3 gateway keeps beyond the namespace: the object
 * record attached to a file's inode and the bucket record attached to a
 * top-level directory's inode. Both are versioned TLV records
 * (docs/metadata-format.md): a version byte, then fields (tag u8, varint
 * length, bytes); unknown tags are skipped so fields can be added.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/coding.h"
#include "common/mem.h"
#include "meta/meta_int.h"

static int put_field(nb_buf *b, uint8_t tag, nb_slice v)
{
    int rc = nb_buf_put_u8(b, tag);
    if (rc == 0)
        rc = nb_buf_put_lenprefixed(b, v);
    return rc;
}

static int put_str(nb_buf *b, uint8_t tag, const char *s)
{
    return s ? put_field(b, tag, nb_slice_str(s)) : 0;
}

static int put_u64(nb_buf *b, uint8_t tag, uint64_t v)
{
    uint8_t x[8];
    nb_put_u64le(x, v);
    return put_field(b, tag, nb_slice_of(x, 8));
}

static int put_u32(nb_buf *b, uint8_t tag, uint32_t v)
{
    uint8_t x[4];
    nb_put_u32le(x, v);
    return put_field(b, tag, nb_slice_of(x, 4));
}

static int put_pair(nb_buf *b, uint8_t tag, const meta_kvpair *p)
{
    nb_buf f = NB_BUF_INIT;
    int rc = nb_buf_put_lenprefixed(&f, nb_slice_str(p->key ? p->key : ""));
    if (rc == 0)
        rc = nb_buf_append_str(&f, p->value ? p->value : "");
    if (rc == 0)
        rc = put_field(b, tag, nb_buf_slice(&f));
    nb_buf_free(&f);
    return rc;
}

int meta_objrec_encode(const meta_objrec *r, nb_buf *out)
{
    int rc = nb_buf_put_u8(out, META_REC_V1);
    rc = rc ? rc : put_str(out, META_OR_ETAG, r->etag);
    rc = rc ? rc : put_str(out, META_OR_CTYPE, r->content_type);
    rc = rc ? rc : put_str(out, META_OR_CACHE_CONTROL, r->cache_control);
    rc = rc ? rc : put_str(out, META_OR_DISPOSITION, r->content_disposition);
    rc = rc ? rc : put_str(out, META_OR_ENCODING, r->content_encoding);
    rc = rc ? rc : put_str(out, META_OR_LANGUAGE, r->content_language);
    rc = rc ? rc : put_str(out, META_OR_EXPIRES, r->expires);
    rc = rc ? rc : put_str(out, META_OR_STORAGE_CLASS, r->storage_class);
    rc = rc ? rc : put_str(out, META_OR_VERSION_ID, r->version_id);
    rc = rc ? rc : put_str(out, META_OR_CSUM_ALGO, r->checksum_algo);
    rc = rc ? rc : put_str(out, META_OR_CSUM, r->checksum);
    if (r->etag_mtime_ns)
        rc = rc ? rc : put_u64(out, META_OR_ETAG_MTIME, (uint64_t)r->etag_mtime_ns);
    if (r->parts)
        rc = rc ? rc : put_u32(out, META_OR_PARTS, r->parts);
    for (size_t i = 0; i < r->nmeta && rc == 0; i++)
        rc = put_pair(out, META_OR_META, &r->meta[i]);
    for (size_t i = 0; i < r->ntags && rc == 0; i++)
        rc = put_pair(out, META_OR_TAG, &r->tags[i]);
    return rc;
}

/* Iterates fields: returns 1 with tag/val, 0 at the end, <0 on bad input. */
static int next_field(const uint8_t **p, const uint8_t *end, uint8_t *tag, nb_slice *val)
{
    if (*p == end)
        return 0;
    *tag = *(*p)++;
    uint64_t n;
    const uint8_t *q = nb_varint_decode(*p, end, &n);
    if (!q || n > (uint64_t)(end - q))
        return NB_CORRUPT("truncated record field %u", *tag);
    *val = nb_slice_of(q, n);
    *p = q + n;
    return 1;
}

static char *dup_slice(nb_slice v)
{
    return nb_xstrndup((const char *)v.ptr, v.len);
}

static int decode_pair(nb_slice v, meta_kvpair **arr, size_t *n)
{
    uint64_t kl;
    const uint8_t *q = nb_varint_decode(v.ptr, v.ptr + v.len, &kl);
    if (!q || kl > (uint64_t)(v.ptr + v.len - q))
        return NB_CORRUPT("bad key/value pair");
    *arr = nb_xrealloc(*arr, (*n + 1) * sizeof(**arr));
    (*arr)[*n].key = nb_xstrndup((const char *)q, kl);
    (*arr)[*n].value = nb_xstrndup((const char *)q + kl, (size_t)(v.ptr + v.len - q - kl));
    (*n)++;
    return 0;
}

static int check_version(nb_slice in, const uint8_t **p)
{
    if (in.len < 1)
        return NB_CORRUPT("empty record");
    if (in.ptr[0] != META_REC_V1)
        return in.ptr[0] > META_REC_V1 ? NB_EVERSION : NB_CORRUPT("record version 0");
    *p = in.ptr + 1;
    return 0;
}

int meta_objrec_decode(nb_slice in, meta_objrec *r)
{
    memset(r, 0, sizeof(*r));
    const uint8_t *p = in.ptr, *end = in.ptr + in.len;
    int rc = check_version(in, &p);
    uint8_t tag;
    nb_slice v = {0};
    while (rc == 0 && (rc = next_field(&p, end, &tag, &v)) == 1) {
        rc = 0;
        char **s = NULL;
        switch (tag) {
        case META_OR_ETAG:
            s = &r->etag;
            break;
        case META_OR_CTYPE:
            s = &r->content_type;
            break;
        case META_OR_CACHE_CONTROL:
            s = &r->cache_control;
            break;
        case META_OR_DISPOSITION:
            s = &r->content_disposition;
            break;
        case META_OR_ENCODING:
            s = &r->content_encoding;
            break;
        case META_OR_LANGUAGE:
            s = &r->content_language;
            break;
        case META_OR_EXPIRES:
            s = &r->expires;
            break;
        case META_OR_STORAGE_CLASS:
            s = &r->storage_class;
            break;
        case META_OR_VERSION_ID:
            s = &r->version_id;
            break;
        case META_OR_CSUM_ALGO:
            s = &r->checksum_algo;
            break;
        case META_OR_CSUM:
            s = &r->checksum;
            break;
        case META_OR_ETAG_MTIME:
            if (v.len != 8)
                rc = NB_CORRUPT("etag mtime field of %zu bytes", v.len);
            else
                r->etag_mtime_ns = (int64_t)nb_get_u64le(v.ptr);
            break;
        case META_OR_PARTS:
            if (v.len != 4)
                rc = NB_CORRUPT("parts field of %zu bytes", v.len);
            else
                r->parts = nb_get_u32le(v.ptr);
            break;
        case META_OR_META:
            rc = decode_pair(v, &r->meta, &r->nmeta);
            break;
        case META_OR_TAG:
            rc = decode_pair(v, &r->tags, &r->ntags);
            break;
        default:
            break; /* a field from a newer writer: skip */
        }
        if (s) {
            free(*s);
            *s = dup_slice(v);
        }
    }
    if (rc != 0)
        meta_objrec_free(r);
    return rc;
}

static void free_pairs(meta_kvpair *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].key);
        free(p[i].value);
    }
    free(p);
}

void meta_objrec_free(meta_objrec *r)
{
    if (!r)
        return;
    char *strs[] = {r->etag,
                    r->content_type,
                    r->cache_control,
                    r->content_disposition,
                    r->content_encoding,
                    r->content_language,
                    r->expires,
                    r->storage_class,
                    r->version_id,
                    r->checksum_algo,
                    r->checksum};
    for (size_t i = 0; i < NB_ARRAY_LEN(strs); i++)
        free(strs[i]);
    free_pairs(r->meta, r->nmeta);
    free_pairs(r->tags, r->ntags);
    memset(r, 0, sizeof(*r));
}

int meta_objrec_get(meta *m, uint64_t ino, nb_buf *out)
{
    uint8_t k[9];
    meta__key_ino(k, META_K_OBJREC, ino);
    return kv_get(m->kv, NULL, nb_slice_of(k, 9), out);
}

int meta_objrec_set(meta *m, uint64_t ino, nb_slice rec)
{
    meta__txn t;
    meta__txn_init(&t, m);
    meta__txn_lock(&t, &ino, 1);
    meta__inode in;
    int rc = meta__inode_get(m, NULL, ino, &in);
    if (rc == 0) {
        uint8_t k[9];
        meta__key_ino(k, META_K_OBJREC, ino);
        if (rec.ptr)
            kv_batch_put(t.b, nb_slice_of(k, 9), rec);
        else
            kv_batch_delete(t.b, nb_slice_of(k, 9));
        rc = meta__txn_commit(&t, 0);
    }
    meta__txn_end(&t);
    return rc;
}

/* ---- buckets ---- */

static int bucket_encode(const meta_bucket *b, nb_buf *out)
{
    int rc = nb_buf_put_u8(out, META_REC_V1);
    rc = rc ? rc : put_u64(out, META_BR_CTIME, (uint64_t)b->ctime_ns);
    rc = rc ? rc : put_str(out, META_BR_OWNER, b->owner);
    rc = rc ? rc : put_u32(out, META_BR_VERSIONING, b->versioning);
    rc = rc ? rc : put_u32(out, META_BR_PUBLIC, b->public_read);
    if (b->cors.len)
        rc = rc ? rc : put_field(out, META_BR_CORS, nb_buf_slice(&b->cors));
    if (b->lifecycle.len)
        rc = rc ? rc : put_field(out, META_BR_LIFECYCLE, nb_buf_slice(&b->lifecycle));
    if (b->tagging.len)
        rc = rc ? rc : put_field(out, META_BR_TAGGING, nb_buf_slice(&b->tagging));
    if (b->policy.len)
        rc = rc ? rc : put_field(out, META_BR_POLICY, nb_buf_slice(&b->policy));
    return rc;
}

static int bucket_decode(nb_slice in, meta_bucket *b)
{
    const uint8_t *p = in.ptr, *end = in.ptr + in.len;
    int rc = check_version(in, &p);
    uint8_t tag;
    nb_slice v = {0};
    while (rc == 0 && (rc = next_field(&p, end, &tag, &v)) == 1) {
        rc = 0;
        nb_buf *blob = NULL;
        switch (tag) {
        case META_BR_CTIME:
            if (v.len == 8)
                b->ctime_ns = (int64_t)nb_get_u64le(v.ptr);
            else
                rc = NB_CORRUPT("bucket ctime");
            break;
        case META_BR_OWNER:
            free(b->owner);
            b->owner = dup_slice(v);
            break;
        case META_BR_VERSIONING:
            if (v.len == 4)
                b->versioning = nb_get_u32le(v.ptr);
            else
                rc = NB_CORRUPT("bucket versioning");
            break;
        case META_BR_PUBLIC:
            if (v.len == 4)
                b->public_read = nb_get_u32le(v.ptr);
            else
                rc = NB_CORRUPT("bucket public flag");
            break;
        case META_BR_CORS:
            blob = &b->cors;
            break;
        case META_BR_LIFECYCLE:
            blob = &b->lifecycle;
            break;
        case META_BR_TAGGING:
            blob = &b->tagging;
            break;
        case META_BR_POLICY:
            blob = &b->policy;
            break;
        default:
            break;
        }
        if (blob) {
            nb_buf_reset(blob);
            rc = nb_buf_append(blob, v.ptr, v.len);
        }
    }
    return rc;
}

void meta_bucket_free(meta_bucket *b)
{
    if (!b)
        return;
    free(b->owner);
    nb_buf_free(&b->cors);
    nb_buf_free(&b->lifecycle);
    nb_buf_free(&b->tagging);
    nb_buf_free(&b->policy);
    memset(b, 0, sizeof(*b));
}

int meta_bucket_create(meta *m, const meta_cred *c, const char *name, uint32_t mode, meta_bucket *b)
{
    nb_buf rec = NB_BUF_INIT;
    b->ctime_ns = meta__now();
    int rc = bucket_encode(b, &rec);
    meta_attr a;
    if (rc == 0)
        rc =
            meta__mkdir_rec(m, c, META_ROOT_INO, name, mode, META_K_BUCKET, nb_buf_slice(&rec), &a);
    if (rc == 0)
        b->ino = a.ino;
    nb_buf_free(&rec);
    return rc;
}

static int bucket_ino(meta *m, const char *name, uint64_t *ino)
{
    meta_attr a;
    int rc = meta_lookup(m, NULL, META_ROOT_INO, name, &a);
    if (rc == 0 && !S_ISDIR(a.mode))
        rc = -ENOTDIR;
    if (rc == 0)
        *ino = a.ino;
    return rc;
}

int meta_bucket_get(meta *m, const char *name, meta_bucket *b)
{
    memset(b, 0, sizeof(*b));
    uint64_t ino;
    int rc = bucket_ino(m, name, &ino);
    if (rc != 0)
        return rc;
    uint8_t k[9];
    meta__key_ino(k, META_K_BUCKET, ino);
    nb_buf v = NB_BUF_INIT;
    rc = kv_get(m->kv, NULL, nb_slice_of(k, 9), &v);
    if (rc == 0)
        rc = bucket_decode(nb_buf_slice(&v), b);
    if (rc == 0)
        b->ino = ino;
    else
        meta_bucket_free(b);
    nb_buf_free(&v);
    return rc;
}

int meta_bucket_update(meta *m, const char *name, const meta_bucket *b)
{
    uint64_t ino;
    int rc = bucket_ino(m, name, &ino);
    if (rc != 0)
        return rc;
    meta__txn t;
    meta__txn_init(&t, m);
    meta__txn_lock(&t, &ino, 1);
    meta__inode in;
    meta_bucket cur;
    memset(&cur, 0, sizeof(cur));
    nb_buf v = NB_BUF_INIT, rec = NB_BUF_INIT;
    uint8_t k[9];
    meta__key_ino(k, META_K_BUCKET, ino);
    rc = meta__inode_get(m, NULL, ino, &in);
    if (rc == 0) {
        cur.ctime_ns = in.a.btime_ns;
        rc = kv_get(m->kv, NULL, nb_slice_of(k, 9), &v);
        if (rc == 0)
            rc = bucket_decode(nb_buf_slice(&v), &cur);
        else if (rc == NB_ENOTFOUND)
            rc = 0;
    }
    if (rc == 0) {
        meta_bucket nb = *b;
        nb.ctime_ns = cur.ctime_ns;
        rc = bucket_encode(&nb, &rec);
    }
    if (rc == 0) {
        kv_batch_put(t.b, nb_slice_of(k, 9), nb_buf_slice(&rec));
        rc = meta__txn_commit(&t, 0);
    }
    meta__txn_end(&t);
    meta_bucket_free(&cur);
    nb_buf_free(&v);
    nb_buf_free(&rec);
    return rc;
}
