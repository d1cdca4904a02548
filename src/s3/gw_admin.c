/*
 * gw_admin.c — the user administration API of a running server, for
 * `nebula admin user add|list|remove` (which cannot open the data
 * directory while the server holds its lock):
 *
 *   POST   /_nebula/admin/users[?name=NAME]  → 200 {"access_key", "secret_key", "name", "created"}
 *   GET    /_nebula/admin/users              → 200 {"users": [{"access_key", "name", "created"}]}
 *   DELETE /_nebula/admin/users/ACCESS_KEY   → 204, or 404 NoSuchEntity
 *
 * Requests are signed like S3 requests (SigV4 or V2, header or query)
 * and must come from root; users get AccessDenied, unsigned requests too.
 * Bodies are not accepted. Errors are S3 error documents.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/common.h"
#include "s3/gw_int.h"
#include "s3/s3_int.h"

#define ADMIN_USERS GW_ADMIN_PREFIX "users"

bool gw_is_admin(const s3_gw_req *r)
{
    return strncmp(r->path, GW_ADMIN_PREFIX, strlen(GW_ADMIN_PREFIX)) == 0;
}

static int random_string(char *out, size_t n, const char *alphabet)
{
    uint8_t raw[64];
    if (n > sizeof raw || getrandom(raw, n, 0) != (ssize_t)n)
        return NB_EINTERNAL;
    size_t k = strlen(alphabet);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[raw[i] % k];
    out[n] = 0;
    return 0;
}

int s3_user_keys_generate(char access_key[21], char secret_key[41])
{
    int rc = random_string(access_key, 20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    if (rc == 0)
        rc = random_string(secret_key, 40,
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
    return rc;
}

static int json_str(nb_buf *b, const char *s)
{
    int rc = nb_buf_append_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && rc == 0; p++) {
        if (*p == '"' || *p == '\\')
            rc = nb_buf_appendf(b, "\\%c", *p);
        else if (*p < 0x20)
            rc = nb_buf_appendf(b, "\\u%04x", *p);
        else
            rc = nb_buf_append(b, p, 1);
    }
    return rc ? rc : nb_buf_append_str(b, "\"");
}

static int json_user(nb_buf *b, const vfs_user *u, bool secret)
{
    int y, mo, d, h, mi, s, wd;
    s3__gmtime(u->ctime_ns / (int64_t)NB_NS_PER_SEC, &y, &mo, &d, &h, &mi, &s, &wd);
    int rc = nb_buf_append_str(b, "{\"access_key\":");
    rc = rc ? rc : json_str(b, u->access_key);
    if (secret) {
        rc = rc ? rc : nb_buf_append_str(b, ",\"secret_key\":");
        rc = rc ? rc : json_str(b, u->secret_key);
    }
    rc = rc ? rc : nb_buf_append_str(b, ",\"name\":");
    rc = rc ? rc : json_str(b, u->name ? u->name : "");
    rc = rc ? rc
            : nb_buf_appendf(b, ",\"created\":\"%04d-%02d-%02dT%02d:%02d:%02dZ\"}", y, mo, d, h, mi,
                             s);
    return rc;
}

static int list_cb(void *arg, const vfs_user *u)
{
    nb_buf *b = arg;
    int rc = 0;
    if (b->len && b->data[b->len - 1] == '}')
        rc = nb_buf_append_str(b, ",");
    return rc ? rc : json_user(b, u, false);
}

/* A display name: 1..255 printable characters. */
static bool name_ok(const char *n)
{
    size_t l = strlen(n);
    if (l == 0 || l > 255)
        return false;
    for (const unsigned char *p = (const unsigned char *)n; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static int add_user(s3_gw_req *r, gw_answer *a)
{
    const char *name = s3_query_get(&r->q, "name");
    if (name && !name_ok(name))
        return S3_ERR_INVALID_ARGUMENT;
    char ak[21], sk[41];
    vfs_user u = {.access_key = ak, .secret_key = sk, .name = (char *)name};
    int rc;
    /* A key taken (by root or a user) is drawn again. */
    for (int tries = 0;; tries++) {
        rc = s3_user_keys_generate(ak, sk);
        u.ctime_ns = (int64_t)nb_wall_ns();
        if (rc == 0)
            rc = strcmp(ak, r->g->access_key) == 0 ? -EEXIST : vfs_user_add(r->g->ns, &u);
        if (rc != -EEXIST || tries == 8)
            break;
    }
    if (rc == 0)
        rc = json_user(&a->body, &u, true);
    if (rc == 0)
        rc = nb_buf_append_str(&a->body, "\n");
    if (rc == 0)
        NB_INFO("s3: user %s (%s) added", ak, name ? name : "");
    return rc;
}

static int list_users(s3_gw_req *r, gw_answer *a)
{
    int rc = nb_buf_append_str(&a->body, "{\"users\":[");
    rc = rc ? rc : vfs_user_list(r->g->ns, list_cb, &a->body);
    rc = rc ? rc : nb_buf_append_str(&a->body, "]}\n");
    return rc;
}

static int remove_user(s3_gw_req *r, gw_answer *a, const char *raw_key)
{
    char ak[S3_ACCESS_KEY_MAX + 1];
    long n = s3_uri_decode(raw_key, strlen(raw_key), false, ak, sizeof ak);
    if (n <= 0)
        return S3_ERR_NO_SUCH_USER;
    int rc = vfs_user_remove(r->g->ns, ak);
    if (rc == NB_ENOTFOUND)
        return S3_ERR_NO_SUCH_USER;
    if (rc == 0) {
        NB_INFO("s3: user %s removed", ak);
        a->status = 204;
    }
    return rc;
}

int gw_admin(s3_gw_req *r, const char *method, gw_answer *a)
{
    int rc = s3_auth_check(&r->req, gw_secret_of, r->g, (int64_t)(nb_wall_ns() / NB_NS_PER_SEC),
                           &r->auth);
    if (rc != 0)
        return rc;
    if (!gw_is_root(r))
        return S3_ERR_ACCESS_DENIED;
    /* No body is read: a signed payload must be the empty one. */
    uint8_t empty[S3_DIGEST_MAX];
    s3_digest_once(S3_DIGEST_SHA256, "", 0, empty);
    rc = s3_auth_payload_check(&r->auth, empty);
    if (rc == 0)
        rc = s3_query_parse(r->query, &r->q);
    if (rc != 0)
        return rc;
    if (strcmp(r->path, ADMIN_USERS) == 0) {
        if (strcmp(method, "GET") == 0)
            rc = list_users(r, a);
        else if (strcmp(method, "POST") == 0)
            rc = add_user(r, a);
        else
            rc = S3_ERR_METHOD_NOT_ALLOWED;
    } else if (strncmp(r->path, ADMIN_USERS "/", strlen(ADMIN_USERS) + 1) == 0) {
        if (strcmp(method, "DELETE") == 0)
            rc = remove_user(r, a, r->path + strlen(ADMIN_USERS) + 1);
        else
            rc = S3_ERR_METHOD_NOT_ALLOWED;
    } else {
        rc = S3_ERR_INVALID_URI;
    }
    if (rc == 0 && a->body.len)
        gw_hdr(a, "Content-Type", "application/json");
    return rc;
}
