/* user.c — S3 users for the gateway and the admin tools: a pass-through to
 * meta's user records (read-only namespaces refuse changes). */
#include "vfs/vfs_int.h"

int vfs_user_add(vfs *v, const vfs_user *u)
{
    int rc = vfs__ro(v);
    return rc ? rc : meta_user_add(v->m, u);
}

int vfs_user_get(vfs *v, const char *access_key, vfs_user *u)
{
    return meta_user_get(v->m, access_key, u);
}

int vfs_user_remove(vfs *v, const char *access_key)
{
    int rc = vfs__ro(v);
    return rc ? rc : meta_user_remove(v->m, access_key);
}

int vfs_user_list(vfs *v, int (*cb)(void *arg, const vfs_user *u), void *arg)
{
    return meta_user_list(v->m, cb, arg);
}

void vfs_user_free(vfs_user *u)
{
    meta_user_free(u);
}
