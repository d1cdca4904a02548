/*
 * meta_xattr.c — extended attributes, one kv record per (inode, name).
 *
 * Namespaces: "user." needs read (get, list shows it regardless) or write
 * (set, remove) permission and is allowed only on regular files and
 * directories (-EPERM otherwise, as Linux does); "trusted." is root only
 * (invisible to others in list, -ENODATA on get, -EPERM on set); other
 * prefixes ("security.", "system.") are stored as given. Unknown
 * namespaces are -EOPNOTSUPP. Setting or removing updates ctime.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/coding.h"
#include "meta/meta_int.h"

static int xattr_key(nb_buf *k, uint64_t ino, const char *name)
{
    size_t n = strlen(name);
    if (n == 0)
        return -EINVAL;
    if (n > META_XATTR_NAME_MAX)
        return -ERANGE;
    if (strncmp(name, "user.", 5) && strncmp(name, "trusted.", 8) &&
        strncmp(name, "security.", 9) && strncmp(name, "system.", 7))
        return -EOPNOTSUPP;
    nb_buf_reset(k);
    int rc = nb_buf_put_u8(k, META_K_XATTR);
    rc |= nb_buf_put_u64be(k, ino);
    rc |= nb_buf_append(k, name, n);
    NB_ASSERT(rc == 0);
    return 0;
}

/* Permission for name on a; write selects set/remove. */
static int xattr_perm(const meta_cred *c, const meta_attr *a, const char *name, int write)
{
    if (!strncmp(name, "trusted.", 8))
        return (!c || c->uid == 0) ? 0 : write ? -EPERM : -ENODATA;
    if (!strncmp(name, "user.", 5)) {
        if (!S_ISREG(a->mode) && !S_ISDIR(a->mode))
            return write ? -EPERM : -ENODATA;
        if (write && S_ISDIR(a->mode) && (a->mode & S_ISVTX) && c && c->uid != 0 &&
            c->uid != a->uid)
            return -EPERM;
        return meta__perm(c, a, write ? W_OK : R_OK);
    }
    return 0;
}

int meta_xattr_get(meta *m, const meta_cred *c, uint64_t ino, const char *name, nb_buf *out)
{
    nb_buf k = NB_BUF_INIT;
    meta_attr a;
    int rc = xattr_key(&k, ino, name);
    if (rc == 0)
        rc = meta_getattr(m, ino, &a);
    if (rc == 0)
        rc = xattr_perm(c, &a, name, 0);
    if (rc == 0) {
        rc = kv_get(m->kv, NULL, nb_buf_slice(&k), out);
        if (rc == NB_ENOTFOUND)
            rc = -ENODATA;
    }
    nb_buf_free(&k);
    return rc;
}

static int xattr_change(meta *m, const meta_cred *c, uint64_t ino, const char *name,
                        const nb_slice *value, int flags)
{
    nb_buf k = NB_BUF_INIT, old = NB_BUF_INIT;
    int rc = xattr_key(&k, ino, name);
    if (rc != 0)
        return rc;
    if (value && value->len > META_XATTR_SIZE_MAX) {
        nb_buf_free(&k);
        return -E2BIG;
    }
    meta__txn t;
    meta__txn_init(&t, m);
    meta__txn_lock(&t, &ino, 1);
    meta__inode in;
    rc = meta__inode_get(m, NULL, ino, &in);
    if (rc == 0)
        rc = xattr_perm(c, &in.a, name, 1);
    int exists = 0;
    if (rc == 0) {
        rc = kv_get(m->kv, NULL, nb_buf_slice(&k), &old);
        exists = rc == 0;
        rc = rc == NB_ENOTFOUND ? 0 : rc;
    }
    if (rc == 0) {
        if (value && (flags & META_XATTR_CREATE) && exists)
            rc = -EEXIST;
        else if ((!value || (flags & META_XATTR_REPLACE)) && !exists)
            rc = -ENODATA;
    }
    if (rc == 0) {
        if (value)
            kv_batch_put(t.b, nb_buf_slice(&k), *value);
        else
            kv_batch_delete(t.b, nb_buf_slice(&k));
        if (value)
            in.flags &= (uint8_t)~META_INO_F_NOXATTR;
        in.a.ctime_ns = meta__now();
        meta__inode_put(&t, &in);
        rc = meta__txn_commit(&t, 0);
    }
    meta__txn_end(&t);
    nb_buf_free(&k);
    nb_buf_free(&old);
    return rc;
}

int meta_xattr_set(meta *m, const meta_cred *c, uint64_t ino, const char *name, nb_slice value,
                   int flags)
{
    if (flags & ~(META_XATTR_CREATE | META_XATTR_REPLACE))
        return -EINVAL;
    return xattr_change(m, c, ino, name, &value, flags);
}

int meta_xattr_remove(meta *m, const meta_cred *c, uint64_t ino, const char *name)
{
    return xattr_change(m, c, ino, name, NULL, 0);
}

int meta_xattr_list(meta *m, const meta_cred *c, uint64_t ino, nb_buf *out)
{
    nb_buf_reset(out);
    meta_attr a;
    int rc = meta_getattr(m, ino, &a);
    if (rc != 0)
        return rc;
    uint8_t p[9];
    meta__key_ino(p, META_K_XATTR, ino);
    kv_iter_options io = {.prefix = nb_slice_of(p, 9)};
    kv_iter *it = NULL;
    rc = kv_iter_new(m->kv, &io, &it);
    if (rc != 0)
        return rc;
    int root = !c || c->uid == 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it) && rc == 0; kv_iter_next(it)) {
        nb_slice k = kv_iter_key(it);
        const char *name = (const char *)k.ptr + 9;
        size_t n = k.len - 9;
        if (!root && n >= 8 && !memcmp(name, "trusted.", 8))
            continue;
        rc = nb_buf_append(out, name, n);
        if (rc == 0)
            rc = nb_buf_put_u8(out, 0);
    }
    if (rc == 0)
        rc = kv_iter_status(it);
    kv_iter_free(it);
    return rc;
}
