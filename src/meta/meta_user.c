/*
 * meta_user.c — S3 users beyond root: one record per access key, key
 * 'K' access-key-bytes (docs/metadata-format.md). The value is a versioned
 * field list like the object and bucket records. Every change is written
 * with sync: `nebula admin user add` prints a secret that must survive a
 * crash, and a removed key must not come back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "common/coding.h"
#include "common/mem.h"
#include "meta/meta_int.h"

/* Serializes add (check, then put) against add and remove. */
static pthread_mutex_t user_mu = PTHREAD_MUTEX_INITIALIZER;

int meta_user_key_check(const char *access_key)
{
    size_t n = access_key ? strlen(access_key) : 0;
    if (n < META_USER_KEY_MIN || n > META_USER_KEY_MAX)
        return NB_EUSAGE;
    for (const char *p = access_key; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
        if (!ok)
            return NB_EUSAGE;
    }
    return 0;
}

static int put_str(nb_buf *b, uint8_t tag, const char *s)
{
    if (!s)
        return 0;
    int rc = nb_buf_put_u8(b, tag);
    return rc ? rc : nb_buf_put_lenprefixed(b, nb_slice_str(s));
}

int meta_user_encode(const meta_user *u, nb_buf *out)
{
    if (!u->secret_key || !u->secret_key[0])
        return NB_EUSAGE;
    uint8_t t[8];
    nb_put_u64le(t, (uint64_t)u->ctime_ns);
    int rc = nb_buf_put_u8(out, META_REC_V1);
    rc = rc ? rc : put_str(out, META_USR_SECRET, u->secret_key);
    rc = rc ? rc : nb_buf_put_u8(out, META_USR_CTIME);
    rc = rc ? rc : nb_buf_put_lenprefixed(out, nb_slice_of(t, 8));
    rc = rc ? rc : put_str(out, META_USR_NAME, u->name);
    return rc;
}

int meta_user_decode(nb_slice key, nb_slice in, meta_user *u)
{
    memset(u, 0, sizeof(*u));
    if (in.len < 1)
        return NB_CORRUPT("empty user record");
    if (in.ptr[0] != META_REC_V1)
        return in.ptr[0] > META_REC_V1 ? NB_EVERSION : NB_CORRUPT("user record version 0");
    const uint8_t *p = in.ptr + 1, *end = in.ptr + in.len;
    int rc = 0;
    while (rc == 0 && p < end) {
        uint8_t tag = *p++;
        uint64_t n;
        const uint8_t *q = nb_varint_decode(p, end, &n);
        if (!q || n > (uint64_t)(end - q)) {
            rc = NB_CORRUPT("truncated user record field %u", tag);
            break;
        }
        nb_slice v = nb_slice_of(q, n);
        p = q + n;
        switch (tag) {
        case META_USR_SECRET:
            free(u->secret_key);
            u->secret_key = nb_xstrndup((const char *)v.ptr, v.len);
            break;
        case META_USR_CTIME:
            if (v.len != 8)
                rc = NB_CORRUPT("user ctime of %zu bytes", v.len);
            else
                u->ctime_ns = (int64_t)nb_get_u64le(v.ptr);
            break;
        case META_USR_NAME:
            free(u->name);
            u->name = nb_xstrndup((const char *)v.ptr, v.len);
            break;
        default: /* a field added later: skipped */
            break;
        }
    }
    if (rc == 0 && (!u->secret_key || !u->secret_key[0]))
        rc = NB_CORRUPT("user record without a secret key");
    if (rc == 0)
        u->access_key = nb_xstrndup((const char *)key.ptr, key.len);
    if (rc != 0)
        meta_user_free(u);
    return rc;
}

void meta_user_free(meta_user *u)
{
    if (!u)
        return;
    free(u->access_key);
    free(u->secret_key);
    free(u->name);
    memset(u, 0, sizeof(*u));
}

static void user_key(nb_buf *k, const char *access_key)
{
    nb_buf_reset(k);
    int rc = nb_buf_put_u8(k, META_K_USER);
    if (rc == 0)
        rc = nb_buf_append_str(k, access_key);
    NB_ASSERT(rc == 0); /* unbounded buffer */
}

int meta_user_add(meta *m, const meta_user *u)
{
    int rc = meta_user_key_check(u->access_key);
    if (rc != 0)
        return rc;
    nb_buf k = NB_BUF_INIT, v = NB_BUF_INIT, old = NB_BUF_INIT;
    user_key(&k, u->access_key);
    rc = meta_user_encode(u, &v);
    pthread_mutex_lock(&user_mu);
    if (rc == 0) {
        rc = kv_get(m->kv, NULL, nb_buf_slice(&k), &old);
        rc = rc == 0 ? -EEXIST : rc == NB_ENOTFOUND ? 0 : rc;
    }
    if (rc == 0) {
        kv_batch *b = kv_batch_new();
        kv_batch_put(b, nb_buf_slice(&k), nb_buf_slice(&v));
        rc = kv_write(m->kv, b, KV_SYNC);
        kv_batch_free(b);
    }
    pthread_mutex_unlock(&user_mu);
    nb_buf_free(&k);
    nb_buf_free(&v);
    nb_buf_free(&old);
    return rc;
}

int meta_user_get(meta *m, const char *access_key, meta_user *u)
{
    memset(u, 0, sizeof(*u));
    if (meta_user_key_check(access_key) != 0)
        return NB_ENOTFOUND;
    nb_buf k = NB_BUF_INIT, v = NB_BUF_INIT;
    user_key(&k, access_key);
    int rc = kv_get(m->kv, NULL, nb_buf_slice(&k), &v);
    if (rc == 0)
        rc = meta_user_decode(nb_slice_str(access_key), nb_buf_slice(&v), u);
    nb_buf_free(&k);
    nb_buf_free(&v);
    return rc;
}

int meta_user_remove(meta *m, const char *access_key)
{
    if (meta_user_key_check(access_key) != 0)
        return NB_ENOTFOUND;
    nb_buf k = NB_BUF_INIT, v = NB_BUF_INIT;
    user_key(&k, access_key);
    pthread_mutex_lock(&user_mu);
    int rc = kv_get(m->kv, NULL, nb_buf_slice(&k), &v);
    if (rc == 0) {
        kv_batch *b = kv_batch_new();
        kv_batch_delete(b, nb_buf_slice(&k));
        rc = kv_write(m->kv, b, KV_SYNC);
        kv_batch_free(b);
    }
    pthread_mutex_unlock(&user_mu);
    nb_buf_free(&k);
    nb_buf_free(&v);
    return rc;
}

int meta_user_list(meta *m, int (*cb)(void *arg, const meta_user *u), void *arg)
{
    uint8_t p[1] = {META_K_USER};
    kv_iter_options io = {.prefix = nb_slice_of(p, 1)};
    kv_iter *it = NULL;
    int rc = kv_iter_new(m->kv, &io, &it);
    if (rc != 0)
        return rc;
    for (kv_iter_seek_first(it); kv_iter_valid(it) && rc == 0; kv_iter_next(it)) {
        nb_slice k = kv_iter_key(it);
        meta_user u;
        rc = meta_user_decode(nb_slice_of(k.ptr + 1, k.len - 1), kv_iter_value(it), &u);
        if (rc == 0) {
            rc = cb(arg, &u);
            meta_user_free(&u);
        }
    }
    if (rc == 0)
        rc = kv_iter_status(it);
    kv_iter_free(it);
    return rc;
}
