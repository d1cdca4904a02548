/*
 * versions.c — S3 object versions on the namespace (docs/vfs.md
 * "Versions"): the current version is the file at the key, noncurrent
 * versions and delete markers are meta's version records. This file maps
 * DELETE with and without a version id onto them, keeping the namespace
 * (and so the mount) showing the current version only.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "vfs/vfs_int.h"

int vfs__install_key(vfs *v, const vfs_cred *c, uint64_t bucket, const char *key, uint64_t ino,
                     uint64_t upload, nb_slice rec, int versioning, vfs_attr *out)
{
    meta_verput vp = {.bucket = bucket, .key = key, .null_new = versioning == VFS_VER_SUSPENDED};
    int rc = 0;
    for (int tries = 0; rc == 0 && tries < 4; tries++) {
        uint64_t dir = bucket;
        char leaf[VFS_NAME_MAX + 1];
        rc = vfs__walk_parents(v, c, key, true, &dir, leaf);
        /* An upload that is gone stays NB_ENOTFOUND (NoSuchUpload). */
        if (rc == 0 && upload && versioning != VFS_VER_OFF)
            rc = meta_upload_complete_ver(v->m, c, upload, ino, dir, leaf, rec, &vp, out);
        else if (rc == 0 && upload)
            rc = meta_upload_complete(v->m, c, upload, ino, dir, leaf, META_INSTALL_REPLACE, rec,
                                      out);
        else if (rc == 0 && versioning != VFS_VER_OFF)
            rc = vfs__errno(meta_install_ver(v->m, c, ino, dir, leaf, rec, &vp, out));
        else if (rc == 0)
            rc = vfs__errno(meta_install(v->m, c, ino, dir, leaf, META_INSTALL_REPLACE, rec, out));
        if (rc == 0)
            vfs__notify(v, VFS_NOTIFY_ENTRY, dir, leaf, 0);
        if (rc != -ENOENT)
            break;
        if (tries < 3)
            rc = 0;
    }
    return rc;
}

int vfs_version_id_new(vfs *v, char out[17])
{
    uint64_t id = 0;
    int rc = meta_id_alloc(v->m, META_ID_SLICE, 1, &id);
    if (rc == 0)
        snprintf(out, 17, "%016llx", (unsigned long long)id);
    return rc;
}

int vfs_version_id_of(vfs *v, uint64_t ino, char out[VFS_VERSION_ID_MAX + 1])
{
    strcpy(out, "null");
    nb_buf b = NB_BUF_INIT;
    int rc = meta_objrec_get(v->m, ino, &b);
    if (rc == NB_ENOTFOUND) {
        rc = 0;
    } else if (rc == 0) {
        meta_objrec r;
        rc = meta_objrec_decode(nb_buf_slice(&b), &r);
        if (rc == 0 && r.version_id && *r.version_id && strlen(r.version_id) <= VFS_VERSION_ID_MAX)
            strcpy(out, r.version_id);
        meta_objrec_free(&r);
    }
    nb_buf_free(&b);
    return rc;
}

void vfs_version_free(vfs_version *ver)
{
    meta_version_free(ver);
}

/* The directory holding key's file and the leaf name, without creating
 * anything: -ENOENT when a directory on the way is missing. */
static int key_dir(vfs *v, uint64_t bino, const char *key, uint64_t *dir,
                   char leaf[VFS_NAME_MAX + 1])
{
    *dir = bino;
    return vfs__walk_parents(v, NULL, key, false, dir, leaf);
}

/* Removes the implicit directories of key that are left empty, deepest
 * first (as a DELETE does). */
static void prune_parents(vfs *v, uint64_t bino, const char *key)
{
    char *k = nb_xstrdup(key);
    for (;;) {
        char *slash = strrchr(k, '/');
        if (!slash)
            break;
        *slash = 0;
        uint64_t dir = bino;
        char leaf[VFS_NAME_MAX + 1];
        if (key_dir(v, bino, k, &dir, leaf) != 0)
            break;
        meta_attr a;
        if (meta_lookup(v->m, NULL, dir, leaf, &a) != 0 || !S_ISDIR(a.mode))
            break;
        nb_buf x = NB_BUF_INIT;
        int xrc = meta_xattr_get(v->m, NULL, a.ino, VFS__IMPLICIT_XATTR, &x);
        nb_buf_free(&x);
        if (xrc != 0 || meta_rmdir(v->m, NULL, dir, leaf) != 0)
            break;
        vfs__notify(v, VFS_NOTIFY_ENTRY, dir, leaf, a.ino);
    }
    free(k);
}

static int check_key(vfs *v, const char *bucket, const char *key, uint64_t *bino)
{
    int rc = vfs__ro(v);
    if (rc == 0)
        rc = vfs_s3_key_check(key);
    if (rc == 0 && key[strlen(key) - 1] == '/')
        rc = -EINVAL; /* directory markers have no versions */
    if (rc == 0)
        rc = vfs__bucket_ino(v, NULL, bucket, bino);
    return rc;
}

int vfs_version_mark(vfs *v, const char *bucket, const char *key, int versioning,
                     const char *version_id, vfs_version *out)
{
    uint64_t bino = 0;
    int rc = check_key(v, bucket, key, &bino);
    if (rc != 0)
        return rc;
    uint64_t dir = 0;
    char leaf[VFS_NAME_MAX + 1] = "";
    meta_attr a = {0};
    if (key_dir(v, bino, key, &dir, leaf) != 0)
        dir = 0;
    else if (meta_lookup(v->m, NULL, dir, leaf, &a) != 0 || !S_ISREG(a.mode))
        a.ino = 0;
    meta_verput vp = {.bucket = bino, .key = key, .null_new = versioning == VFS_VER_SUSPENDED};
    rc = vfs__errno(meta_version_mark(v->m, &vp, dir, leaf, version_id, out));
    if (rc == 0 && a.ino) {
        vfs__notify(v, VFS_NOTIFY_ENTRY, dir, leaf, a.ino);
        prune_parents(v, bino, key);
    }
    return rc;
}

int vfs_version_get(vfs *v, const char *bucket, const char *key, const char *version_id,
                    vfs_version *out)
{
    uint64_t bino = 0;
    int rc = vfs__bucket_ino(v, NULL, bucket, &bino);
    return rc ? rc : meta_version_find(v->m, bino, key, version_id, out);
}

int vfs_version_list(vfs *v, const char *bucket, const char *key, uint64_t seq,
                     int (*cb)(void *arg, const vfs_version *ver), void *arg)
{
    uint64_t bino = 0;
    int rc = vfs__bucket_ino(v, NULL, bucket, &bino);
    return rc ? rc : meta_version_list(v->m, bino, key, seq, cb, arg);
}

/* The newest version record of key. */
typedef struct top_ctx {
    const char *key;
    bool found, marker;
    uint64_t seq;
} top_ctx;

static int top_cb(void *arg, const meta_version *ver)
{
    top_ctx *t = arg;
    if (strcmp(ver->key, t->key) == 0) {
        t->found = true;
        t->marker = ver->delete_marker;
        t->seq = ver->seq;
    }
    return 1;
}

static int newest(vfs *v, uint64_t bino, const char *key, top_ctx *t)
{
    memset(t, 0, sizeof(*t));
    t->key = key;
    return meta_version_list(v->m, bino, key, UINT64_MAX, top_cb, t);
}

/* After the newest marker went: the newest object version becomes
 * current (its directories made again if they went with the marker). */
static int promote(vfs *v, uint64_t bino, const char *key)
{
    for (int tries = 0; tries < 4; tries++) {
        top_ctx t;
        int rc = newest(v, bino, key, &t);
        if (rc != 0 || !t.found || t.marker)
            return rc;
        uint64_t dir = bino;
        char leaf[VFS_NAME_MAX + 1];
        int promoted = 0;
        rc = vfs__walk_parents(v, NULL, key, true, &dir, leaf);
        if (rc == 0)
            rc = vfs__errno(meta_version_promote(v->m, bino, key, dir, leaf, &promoted));
        if (rc == 0 && promoted)
            vfs__notify(v, VFS_NOTIFY_ENTRY, dir, leaf, 0);
        if (rc != -ENOENT)
            return rc == -EEXIST ? 0 : rc;
    }
    return -ENOENT;
}

int vfs_version_delete(vfs *v, const char *bucket, const char *key, const char *version_id,
                       bool *was_marker)
{
    if (was_marker)
        *was_marker = false;
    uint64_t bino = 0;
    int rc = check_key(v, bucket, key, &bino);
    if (rc != 0)
        return rc;
    /* The current object? */
    uint64_t dir = 0;
    char leaf[VFS_NAME_MAX + 1];
    meta_attr a;
    if (key_dir(v, bino, key, &dir, leaf) == 0 && meta_lookup(v->m, NULL, dir, leaf, &a) == 0 &&
        S_ISREG(a.mode)) {
        char cur[VFS_VERSION_ID_MAX + 1];
        rc = vfs_version_id_of(v, a.ino, cur);
        if (rc != 0)
            return rc;
        if (strcmp(cur, version_id) == 0) {
            int promoted = 0;
            rc = vfs__errno(
                meta_version_remove_current(v->m, bino, key, dir, leaf, a.ino, &promoted));
            if (rc == 0) {
                vfs__notify(v, VFS_NOTIFY_ENTRY, dir, leaf, a.ino);
                if (!promoted)
                    prune_parents(v, bino, key);
            }
            return rc;
        }
    }
    meta_version ver;
    rc = meta_version_find(v->m, bino, key, version_id, &ver);
    if (rc != 0)
        return rc;
    /* Was it the newest version record (the latest when no file is)? */
    top_ctx t;
    rc = newest(v, bino, key, &t);
    bool was_top = rc == 0 && t.found && t.seq == ver.seq;
    if (rc == 0)
        rc = vfs__errno(meta_version_remove(v->m, bino, key, ver.seq));
    if (rc == 0 && was_marker)
        *was_marker = ver.delete_marker;
    if (rc == 0 && ver.delete_marker && was_top)
        rc = promote(v, bino, key);
    meta_version_free(&ver);
    return rc;
}
