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
    if (r->parts && r->part_sizes) {
        nb_buf f = NB_BUF_INIT;
        for (uint32_t i = 0; i < r->parts && rc == 0; i++)
            rc = nb_buf_put_u64le(&f, r->part_sizes[i]);
        rc = rc ? rc : put_field(out, META_OR_PART_SIZES, nb_buf_slice(&f));
        nb_buf_free(&f);
    }
    if (r->acl) {
        uint8_t acl = r->acl;
        rc = rc ? rc : put_field(out, META_OR_ACL, nb_slice_of(&acl, 1));
    }
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
    size_t nsizes = 0;
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
        case META_OR_PART_SIZES:
            if (v.len % 8 != 0 || v.len == 0) {
                rc = NB_CORRUPT("part sizes field of %zu bytes", v.len);
                break;
            }
            free(r->part_sizes);
            nsizes = v.len / 8;
            r->part_sizes = nb_xmalloc(v.len);
            for (size_t i = 0; i < nsizes; i++)
                r->part_sizes[i] = nb_get_u64le(v.ptr + 8 * i);
            break;
        case META_OR_ACL:
            if (v.len != 1 || (v.ptr[0] != META_ACL_PRIVATE && v.ptr[0] != META_ACL_PUBLIC_READ))
                rc = NB_CORRUPT("bad object ACL field");
            else
                r->acl = v.ptr[0];
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
    if (rc == 0 && r->part_sizes && nsizes != r->parts)
        rc = NB_CORRUPT("%zu part sizes for %u parts", nsizes, r->parts);
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
    free(r->part_sizes);
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
        if (rec.ptr && (in.flags & META_INO_F_NOOBJREC)) {
            in.flags &= (uint8_t)~META_INO_F_NOOBJREC;
            meta__inode_put(&t, &in);
        }
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

/* ---- multipart uploads ---- */

static void upload_key(uint8_t k[9], uint64_t id)
{
    meta__key_ino(k, META_K_UPLOAD, id);
}

static void upindex_key(nb_buf *k, uint64_t bucket, const char *key, uint64_t id)
{
    nb_buf_reset(k);
    int rc = nb_buf_put_u8(k, META_K_UPINDEX);
    rc |= nb_buf_put_u64be(k, bucket);
    rc |= nb_buf_append_str(k, key);
    rc |= nb_buf_put_u8(k, 0);
    rc |= nb_buf_put_u64be(k, id);
    NB_ASSERT(rc == 0);
}

static void part_key(uint8_t k[13], uint64_t upload, uint32_t part)
{
    k[0] = META_K_PART;
    nb_put_u64be(k + 1, upload);
    nb_put_u32be(k + 9, part);
}

static int upload_decode(nb_slice in, uint64_t id, meta_upload *u)
{
    memset(u, 0, sizeof(*u));
    u->id = id;
    const uint8_t *p = in.ptr, *end = in.ptr + in.len;
    int rc = check_version(in, &p);
    uint8_t tag;
    nb_slice v = {0};
    while (rc == 0 && (rc = next_field(&p, end, &tag, &v)) == 1) {
        rc = 0;
        if ((tag == META_UR_BUCKET || tag == META_UR_INITIATED) && v.len != 8)
            rc = NB_CORRUPT("upload %llu: field %u", (unsigned long long)id, tag);
        else if (tag == META_UR_BUCKET)
            u->bucket = nb_get_u64le(v.ptr);
        else if (tag == META_UR_INITIATED)
            u->initiated_ns = (int64_t)nb_get_u64le(v.ptr);
        else if (tag == META_UR_KEY && !u->key)
            u->key = dup_slice(v);
        else if (tag == META_UR_OWNER && !u->owner)
            u->owner = dup_slice(v);
        else if (tag == META_UR_OBJREC)
            rc = nb_buf_append(&u->objrec, v.ptr, v.len);
    }
    if (rc == 0 && !u->key)
        rc = NB_CORRUPT("upload %llu without a key", (unsigned long long)id);
    if (rc != 0)
        meta_upload_free(u);
    return rc;
}

void meta_upload_free(meta_upload *u)
{
    if (!u)
        return;
    free(u->key);
    free(u->owner);
    nb_buf_free(&u->objrec);
    memset(u, 0, sizeof(*u));
}

/* The upload record and its bucket index entry, in one batch. */
static int upload_write(meta *m, const meta_upload *u)
{
    nb_buf rec = NB_BUF_INIT, ik = NB_BUF_INIT;
    int rc = nb_buf_put_u8(&rec, META_REC_V1);
    rc = rc ? rc : put_u64(&rec, META_UR_BUCKET, u->bucket);
    rc = rc ? rc : put_str(&rec, META_UR_KEY, u->key);
    rc = rc ? rc : put_u64(&rec, META_UR_INITIATED, (uint64_t)u->initiated_ns);
    rc = rc ? rc : put_str(&rec, META_UR_OWNER, u->owner);
    if (u->objrec.len)
        rc = rc ? rc : put_field(&rec, META_UR_OBJREC, nb_buf_slice(&u->objrec));
    if (rc == 0) {
        meta__txn t;
        meta__txn_init(&t, m);
        uint8_t k[9];
        upload_key(k, u->id);
        kv_batch_put(t.b, nb_slice_of(k, 9), nb_buf_slice(&rec));
        upindex_key(&ik, u->bucket, u->key, u->id);
        kv_batch_put(t.b, nb_buf_slice(&ik), nb_slice_of("", 0));
        rc = meta__txn_commit(&t, 0);
        meta__txn_end(&t);
    }
    nb_buf_free(&rec);
    nb_buf_free(&ik);
    return rc;
}

int meta_upload_create(meta *m, meta_upload *u)
{
    if (!u->key)
        return -EINVAL;
    int rc = meta_id_alloc(m, META_ID_SLICE, 1, &u->id);
    if (rc != 0)
        return rc;
    u->initiated_ns = meta__now();
    return upload_write(m, u);
}

int meta_upload_restore(meta *m, const meta_upload *u)
{
    if (!u->key || !u->id)
        return -EINVAL;
    return upload_write(m, u);
}

int meta_upload_get(meta *m, uint64_t id, meta_upload *u)
{
    memset(u, 0, sizeof(*u));
    uint8_t k[9];
    upload_key(k, id);
    nb_buf v = NB_BUF_INIT;
    int rc = kv_get(m->kv, NULL, nb_slice_of(k, 9), &v);
    if (rc == 0)
        rc = upload_decode(nb_buf_slice(&v), id, u);
    nb_buf_free(&v);
    return rc;
}

int meta_upload_list(meta *m, uint64_t bucket, const char *after_key, uint64_t after_id,
                     int (*cb)(void *arg, const meta_upload *u), void *arg)
{
    uint8_t p[9];
    meta__key_ino(p, META_K_UPINDEX, bucket);
    nb_buf start = NB_BUF_INIT;
    if (after_key)
        upindex_key(&start, bucket, after_key, after_id);
    kv_iter_options io = {.prefix = nb_slice_of(p, 9)};
    kv_iter *it = NULL;
    int rc = kv_iter_new(m->kv, &io, &it);
    if (rc != 0) {
        nb_buf_free(&start);
        return rc;
    }
    if (after_key)
        kv_iter_seek(it, nb_buf_slice(&start));
    else
        kv_iter_seek_first(it);
    int stop = 0;
    for (; kv_iter_valid(it) && !stop && rc == 0; kv_iter_next(it)) {
        nb_slice k = kv_iter_key(it);
        if (after_key && nb_slice_eq(k, nb_buf_slice(&start)))
            continue;
        if (k.len < 9 + 1 + 8)
            continue;
        meta_upload u;
        rc = meta_upload_get(m, nb_get_u64be(k.ptr + k.len - 8), &u);
        if (rc == NB_ENOTFOUND) {
            rc = 0; /* completed or aborted meanwhile */
            continue;
        }
        if (rc == 0)
            stop = cb(arg, &u);
        meta_upload_free(&u);
    }
    if (rc == 0)
        rc = kv_iter_status(it);
    kv_iter_free(it);
    nb_buf_free(&start);
    return rc;
}

int meta__part_decode(nb_slice in, uint32_t number, meta_part *pt)
{
    memset(pt, 0, sizeof(*pt));
    pt->number = number;
    const uint8_t *p = in.ptr, *end = in.ptr + in.len;
    int rc = check_version(in, &p);
    uint8_t tag;
    nb_slice v = {0};
    while (rc == 0 && (rc = next_field(&p, end, &tag, &v)) == 1) {
        rc = 0;
        if ((tag == META_PR_SIZE || tag == META_PR_MTIME) && v.len != 8) {
            rc = NB_CORRUPT("part %u: field %u", number, tag);
        } else if (tag == META_PR_SIZE) {
            pt->size = nb_get_u64le(v.ptr);
        } else if (tag == META_PR_MTIME) {
            pt->mtime_ns = (int64_t)nb_get_u64le(v.ptr);
        } else if (tag == META_PR_ETAG && !pt->etag) {
            pt->etag = dup_slice(v);
        } else if (tag == META_PR_SLICES) {
            if (v.len % META_SLICE_LEN || pt->slices) {
                rc = NB_CORRUPT("part %u: slice list", number);
                continue;
            }
            pt->nslices = v.len / META_SLICE_LEN;
            pt->slices = nb_xcalloc(pt->nslices ? pt->nslices : 1, sizeof(meta_slice));
            for (size_t i = 0; i < pt->nslices; i++) {
                const uint8_t *q = v.ptr + i * META_SLICE_LEN;
                pt->slices[i] = (meta_slice){.id = nb_get_u64le(q),
                                             .size = nb_get_u32le(q + 8),
                                             .off = nb_get_u32le(q + 12),
                                             .len = nb_get_u32le(q + 16),
                                             .pos = nb_get_u32le(q + 20)};
            }
        }
    }
    if (rc != 0)
        meta_part_free(pt);
    return rc;
}

void meta_part_free(meta_part *p)
{
    if (!p)
        return;
    free(p->etag);
    free(p->slices);
    memset(p, 0, sizeof(*p));
}

/* Moves the slices of the stored part at key k (if any) to the garbage
 * list, except those in keep (n ids). */
static int garbage_part(meta__txn *t, nb_slice k, const uint64_t *keep, size_t nkeep)
{
    nb_buf v = NB_BUF_INIT;
    int rc = kv_get(t->m->kv, NULL, k, &v);
    if (rc == NB_ENOTFOUND) {
        nb_buf_free(&v);
        return 0;
    }
    meta_part old;
    if (rc == 0)
        rc = meta__part_decode(nb_buf_slice(&v), nb_get_u32be(k.ptr + 9), &old);
    if (rc == 0) {
        for (size_t i = 0; i < old.nslices; i++) {
            int kept = 0;
            for (size_t j = 0; j < nkeep && !kept; j++)
                kept = keep[j] == old.slices[i].id;
            if (!kept)
                meta__garbage_add(t, old.slices[i].id, old.slices[i].size);
        }
        meta_part_free(&old);
    }
    nb_buf_free(&v);
    return rc;
}

int meta_part_put(meta *m, uint64_t upload, const meta_part *p)
{
    if (p->number == 0 || (p->nslices && !p->slices))
        return -EINVAL;
    nb_buf rec = NB_BUF_INIT, sl = NB_BUF_INIT;
    int rc = nb_buf_put_u8(&rec, META_REC_V1);
    rc = rc ? rc : put_str(&rec, META_PR_ETAG, p->etag);
    rc = rc ? rc : put_u64(&rec, META_PR_SIZE, p->size);
    rc = rc ? rc : put_u64(&rec, META_PR_MTIME, (uint64_t)p->mtime_ns);
    for (size_t i = 0; i < p->nslices && rc == 0; i++) {
        const meta_slice *s = &p->slices[i];
        rc |= nb_buf_put_u64le(&sl, s->id);
        rc |= nb_buf_put_u32le(&sl, s->size);
        rc |= nb_buf_put_u32le(&sl, s->off);
        rc |= nb_buf_put_u32le(&sl, s->len);
        rc |= nb_buf_put_u32le(&sl, s->pos);
    }
    rc = rc ? rc : put_field(&rec, META_PR_SLICES, nb_buf_slice(&sl));
    meta__txn t;
    meta__txn_init(&t, m);
    meta__txn_lock(&t, &upload, 1);
    uint8_t uk[9], pk[13];
    upload_key(uk, upload);
    part_key(pk, upload, p->number);
    nb_buf v = NB_BUF_INIT;
    if (rc == 0)
        rc = kv_get(m->kv, NULL, nb_slice_of(uk, 9), &v);
    /* The same slice in the old and the new part stays. */
    uint64_t *keep = nb_xcalloc(p->nslices ? p->nslices : 1, sizeof(*keep));
    for (size_t i = 0; i < p->nslices; i++)
        keep[i] = p->slices[i].id;
    if (rc == 0)
        rc = garbage_part(&t, nb_slice_of(pk, 13), keep, p->nslices);
    if (rc == 0) {
        kv_batch_put(t.b, nb_slice_of(pk, 13), nb_buf_slice(&rec));
        rc = meta__txn_commit(&t, 0);
    }
    meta__txn_end(&t);
    free(keep);
    nb_buf_free(&v);
    nb_buf_free(&rec);
    nb_buf_free(&sl);
    return rc;
}

int meta_part_list(meta *m, uint64_t upload, uint32_t after,
                   int (*cb)(void *arg, const meta_part *p), void *arg)
{
    uint8_t p[9], start[13];
    meta__key_ino(p, META_K_PART, upload);
    part_key(start, upload, after + 1);
    kv_iter_options io = {.prefix = nb_slice_of(p, 9)};
    kv_iter *it = NULL;
    int rc = kv_iter_new(m->kv, &io, &it);
    if (rc != 0)
        return rc;
    int stop = after == UINT32_MAX;
    for (kv_iter_seek(it, nb_slice_of(start, 13)); kv_iter_valid(it) && !stop && rc == 0;
         kv_iter_next(it)) {
        nb_slice k = kv_iter_key(it);
        if (k.len != 13)
            continue;
        meta_part pt;
        rc = meta__part_decode(kv_iter_value(it), nb_get_u32be(k.ptr + 9), &pt);
        if (rc == 0)
            stop = cb(arg, &pt);
        meta_part_free(&pt);
    }
    if (rc == 0)
        rc = kv_iter_status(it);
    kv_iter_free(it);
    return rc;
}

/* Deletes upload `id` (record, index, parts) into t's batch; part slices
 * not in keep become garbage. The caller holds the upload's lock. */
static int upload_drop(meta__txn *t, uint64_t id, const uint64_t *keep, size_t nkeep)
{
    meta_upload u;
    int rc = meta_upload_get(t->m, id, &u);
    if (rc != 0)
        return rc;
    uint8_t k[9], p[9];
    upload_key(k, id);
    kv_batch_delete(t->b, nb_slice_of(k, 9));
    nb_buf ik = NB_BUF_INIT;
    upindex_key(&ik, u.bucket, u.key, id);
    kv_batch_delete(t->b, nb_buf_slice(&ik));
    nb_buf_free(&ik);
    meta_upload_free(&u);
    meta__key_ino(p, META_K_PART, id);
    kv_iter_options io = {.prefix = nb_slice_of(p, 9)};
    kv_iter *it = NULL;
    rc = kv_iter_new(t->m->kv, &io, &it);
    if (rc != 0)
        return rc;
    for (kv_iter_seek_first(it); kv_iter_valid(it) && rc == 0; kv_iter_next(it)) {
        nb_slice pk = kv_iter_key(it);
        if (pk.len != 13)
            continue;
        rc = garbage_part(t, pk, keep, nkeep);
        kv_batch_delete(t->b, pk);
    }
    if (rc == 0)
        rc = kv_iter_status(it);
    kv_iter_free(it);
    return rc;
}

int meta_upload_abort(meta *m, uint64_t upload)
{
    meta__txn t;
    meta__txn_init(&t, m);
    meta__txn_lock(&t, &upload, 1);
    int rc = upload_drop(&t, upload, NULL, 0);
    if (rc == 0)
        rc = meta__txn_commit(&t, 0);
    meta__txn_end(&t);
    return rc;
}

typedef struct complete_ctx {
    uint64_t upload;
    uint64_t ino;
} complete_ctx;

static int complete_hook(meta__txn *t, void *arg)
{
    complete_ctx *cc = arg;
    /* The slices the new file references stay; the rest of the parts go. */
    nb_buf ids = NB_BUF_INIT;
    uint8_t p[9];
    meta__key_ino(p, META_K_CHUNK, cc->ino);
    kv_iter_options io = {.prefix = nb_slice_of(p, 9)};
    kv_iter *it = NULL;
    int rc = kv_iter_new(t->m->kv, &io, &it);
    if (rc != 0)
        return rc;
    for (kv_iter_seek_first(it); rc == 0 && kv_iter_valid(it); kv_iter_next(it)) {
        nb_slice v = kv_iter_value(it);
        for (size_t off = 1; rc == 0 && off + META_SLICE_LEN <= v.len; off += META_SLICE_LEN)
            rc = nb_buf_put_u64le(&ids, nb_get_u64le(v.ptr + off));
    }
    if (rc == 0)
        rc = kv_iter_status(it);
    kv_iter_free(it);
    if (rc == 0)
        rc = upload_drop(t, cc->upload, (const uint64_t *)ids.data, ids.len / 8);
    nb_buf_free(&ids);
    return rc;
}

int meta_upload_complete(meta *m, const meta_cred *c, uint64_t upload, uint64_t ino,
                         uint64_t parent, const char *name, unsigned flags, nb_slice objrec,
                         meta_attr *out)
{
    complete_ctx cc = {.upload = upload, .ino = ino};
    return meta__install(m, c, ino, parent, name, flags, objrec, upload, 0, complete_hook, &cc,
                         out);
}

typedef struct complete_ver_ctx {
    complete_ctx cc;
    meta__verhook vh;
} complete_ver_ctx;

static int complete_ver_hook(meta__txn *t, void *arg)
{
    complete_ver_ctx *x = arg;
    int rc = complete_hook(t, &x->cc);
    return rc ? rc : meta__version_hook(t, &x->vh);
}

int meta_upload_complete_ver(meta *m, const meta_cred *c, uint64_t upload, uint64_t ino,
                             uint64_t parent, const char *name, nb_slice objrec,
                             const meta_verput *vp, meta_attr *out)
{
    complete_ver_ctx x = {.cc = {.upload = upload, .ino = ino},
                          .vh = {.vp = vp, .parent = parent, .name = name}};
    return meta__install(m, c, ino, parent, name, META_INSTALL_REPLACE | META__INSTALL_HOOK_OLD,
                         objrec, upload, meta__version_lock(vp->bucket, vp->key), complete_ver_hook,
                         &x, out);
}
