/*
 * meta_dir.c — listing directories: by cookie (readdir, stable offsets)
 * and by name (S3 listings). Both read one kv snapshot and take no lock.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/coding.h"
#include "common/log.h"
#include "meta/meta_int.h"

static int open_dir(meta *m, uint64_t dir, kv_snapshot **snap, meta__inode *in)
{
    int rc = kv_snapshot_new(m->kv, snap);
    if (rc != 0)
        return rc;
    rc = meta__inode_get(m, *snap, dir, in);
    if (rc == 0 && !S_ISDIR(in->a.mode))
        rc = -ENOTDIR;
    return rc;
}

/* Calls cb for one entry; *stop set when cb asks to stop. */
static int emit(meta *m, kv_snapshot *snap, unsigned flags, const char *name, size_t len,
                uint64_t ino, uint32_t type, uint64_t next_off, meta_dirent_cb cb, void *arg,
                int *stop)
{
    char nbuf[META_NAME_MAX + 1];
    if (len > META_NAME_MAX)
        return NB_CORRUPT("dentry name of %zu bytes", len);
    memcpy(nbuf, name, len);
    nbuf[len] = 0;
    meta__inode child;
    meta_dirent e = {.name = nbuf, .name_len = len, .ino = ino, .type = type, .next_off = next_off};
    if (flags & META_READDIR_ATTRS) {
        int rc = meta__inode_get(m, snap, ino, &child);
        if (rc == 0)
            e.attr = &child.a;
        else if (rc != -ENOENT)
            return rc;
    }
    *stop = cb(arg, &e) != 0;
    return 0;
}

int meta_readdir(meta *m, uint64_t dir, uint64_t off, unsigned flags, meta_dirent_cb cb, void *arg)
{
    kv_snapshot *snap = NULL;
    meta__inode din;
    int stop = 0;
    int rc = open_dir(m, dir, &snap, &din);
    if (rc == 0 && (flags & META_READDIR_DOTS)) {
        if (off == 0)
            rc = emit(m, snap, flags, ".", 1, dir, S_IFDIR, 1, cb, arg, &stop);
        if (rc == 0 && !stop && off <= 1)
            rc = emit(m, snap, flags, "..", 2, din.a.parent, S_IFDIR, 2, cb, arg, &stop);
    }
    kv_iter *it = NULL;
    uint8_t p[9], start[17];
    meta__key_ino(p, META_K_DCOOKIE, dir);
    meta__key_cookie(start, dir, off > META_COOKIE_FIRST ? off : META_COOKIE_FIRST);
    kv_iter_options io = {.snap = snap, .prefix = nb_slice_of(p, 9)};
    if (rc == 0 && !stop)
        rc = kv_iter_new(m->kv, &io, &it);
    if (it) {
        for (kv_iter_seek(it, nb_slice_of(start, 17)); kv_iter_valid(it) && !stop && rc == 0;
             kv_iter_next(it)) {
            nb_slice k = kv_iter_key(it), v = kv_iter_value(it);
            if (k.len != 17 || v.len < META_DCOOKIE_HDR || v.ptr[0] != META_DCOOKIE_V1) {
                rc = NB_CORRUPT("bad readdir entry in %llu", (unsigned long long)dir);
                break;
            }
            uint64_t cookie = nb_get_u64be(k.ptr + 9);
            rc = emit(m, snap, flags, (const char *)v.ptr + META_DCOOKIE_HDR,
                      v.len - META_DCOOKIE_HDR, nb_get_u64le(v.ptr + 2), (uint32_t)v.ptr[1] << 12,
                      cookie + 1, cb, arg, &stop);
        }
        if (rc == 0)
            rc = kv_iter_status(it);
        kv_iter_free(it);
    }
    kv_snapshot_free(snap);
    return rc;
}

int meta_list(meta *m, uint64_t dir, const char *after, unsigned flags, meta_dirent_cb cb,
              void *arg)
{
    kv_snapshot *snap = NULL;
    meta__inode din;
    int stop = 0;
    int rc = open_dir(m, dir, &snap, &din);
    kv_iter *it = NULL;
    uint8_t p[9];
    nb_buf start = NB_BUF_INIT;
    size_t alen = after ? strlen(after) : 0;
    meta__key_ino(p, META_K_DENTRY, dir);
    meta__key_dentry(&start, dir, after ? after : "", alen);
    kv_iter_options io = {.snap = snap, .prefix = nb_slice_of(p, 9)};
    if (rc == 0)
        rc = kv_iter_new(m->kv, &io, &it);
    if (it) {
        for (kv_iter_seek(it, nb_buf_slice(&start)); kv_iter_valid(it) && !stop && rc == 0;
             kv_iter_next(it)) {
            nb_slice k = kv_iter_key(it), v = kv_iter_value(it);
            if (v.len < META_DENTRY_LEN || v.ptr[0] != META_DENTRY_V1) {
                rc = NB_CORRUPT("bad dentry in %llu", (unsigned long long)dir);
                break;
            }
            if (alen && k.len == 9 + alen && memcmp(k.ptr + 9, after, alen) == 0)
                continue;
            rc = emit(m, snap, flags, (const char *)k.ptr + 9, k.len - 9, nb_get_u64le(v.ptr + 2),
                      (uint32_t)v.ptr[1] << 12, 0, cb, arg, &stop);
        }
        if (rc == 0)
            rc = kv_iter_status(it);
        kv_iter_free(it);
    }
    nb_buf_free(&start);
    kv_snapshot_free(snap);
    return rc;
}
