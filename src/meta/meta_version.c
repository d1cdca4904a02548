/*
 * meta_version.c — S3 object versions. The current version of a key is
 * the file in the namespace; noncurrent versions and delete markers are
 * version records of their bucket, keyed 'V' bucket key 00 ~seq so that a
 * prefix scan walks keys in S3 order and each key's versions newest first
 * (docs/metadata-format.md). An object version keeps its inode: the
 * record stands for the link the dentry had, so chunk maps, object record
 * and xattrs stay, and the collector sees its slices as referenced.
 *
 * Every change to the versions of one key holds the key's lock (a stripe
 * picked by a hash of bucket and key) besides the inodes it touches, so
 * changes of one key serialize even when no directory holds it.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/coding.h"
#include "common/hash.h"
#include "common/mem.h"
#include "meta/meta_int.h"

uint64_t meta__version_lock(uint64_t bucket, const char *key)
{
    return nb_hash64(key, strlen(key), bucket) | 1u;
}

void meta_version_free(meta_version *v)
{
    if (!v)
        return;
    free(v->key);
    v->key = NULL;
}

static void vkey(nb_buf *k, uint64_t bucket, const char *key, uint64_t seq)
{
    nb_buf_reset(k);
    int rc = nb_buf_put_u8(k, META_K_VERSION);
    rc |= nb_buf_put_u64be(k, bucket);
    if (key) {
        rc |= nb_buf_append_str(k, key);
        rc |= nb_buf_put_u8(k, 0);
        rc |= nb_buf_put_u64be(k, ~seq);
    }
    NB_ASSERT(rc == 0);
}

static int vdecode(nb_slice k, nb_slice v, meta_version *out)
{
    memset(out, 0, sizeof(*out));
    if (k.len < 1 + 8 + 1 + 8 || k.ptr[k.len - 9] != 0 || v.len < META_VERSION_HDR + 1 ||
        v.len > META_VERSION_HDR + META_VERSION_ID_MAX)
        return NB_CORRUPT("bad version record");
    if (v.ptr[0] != META_VERSION_V1)
        return v.ptr[0] > META_VERSION_V1 ? NB_EVERSION : NB_CORRUPT("version record version 0");
    out->bucket = nb_get_u64be(k.ptr + 1);
    out->key = nb_xstrndup((const char *)k.ptr + 9, k.len - 9 - 9);
    out->seq = ~nb_get_u64be(k.ptr + k.len - 8);
    out->delete_marker = (v.ptr[1] & META_VERSION_MARKER) != 0;
    out->ino = nb_get_u64le(v.ptr + 2);
    out->mtime_ns = (int64_t)nb_get_u64le(v.ptr + 10);
    out->noncurrent_ns = (int64_t)nb_get_u64le(v.ptr + 18);
    memcpy(out->version_id, v.ptr + META_VERSION_HDR, v.len - META_VERSION_HDR);
    out->version_id[v.len - META_VERSION_HDR] = 0;
    return 0;
}

static int vput(meta__txn *t, const meta_version *ver)
{
    size_t idl = strlen(ver->version_id);
    if (idl == 0 || idl > META_VERSION_ID_MAX)
        return -EINVAL;
    uint8_t v[META_VERSION_HDR + META_VERSION_ID_MAX];
    v[0] = META_VERSION_V1;
    v[1] = ver->delete_marker ? META_VERSION_MARKER : 0;
    nb_put_u64le(v + 2, ver->ino);
    nb_put_u64le(v + 10, (uint64_t)ver->mtime_ns);
    nb_put_u64le(v + 18, (uint64_t)ver->noncurrent_ns);
    memcpy(v + META_VERSION_HDR, ver->version_id, idl);
    nb_buf k = NB_BUF_INIT;
    vkey(&k, ver->bucket, ver->key, ver->seq);
    kv_batch_put(t->b, nb_buf_slice(&k), nb_slice_of(v, META_VERSION_HDR + idl));
    nb_buf_free(&k);
    return 0;
}

static void vdel(meta__txn *t, uint64_t bucket, const char *key, uint64_t seq)
{
    nb_buf k = NB_BUF_INIT;
    vkey(&k, bucket, key, seq);
    kv_batch_delete(t->b, nb_buf_slice(&k));
    nb_buf_free(&k);
}

int meta_version_list(meta *m, uint64_t bucket, const char *key, uint64_t seq,
                      int (*cb)(void *arg, const meta_version *v), void *arg)
{
    nb_buf p = NB_BUF_INIT, start = NB_BUF_INIT;
    vkey(&p, bucket, NULL, 0);
    if (key)
        vkey(&start, bucket, key, seq);
    kv_iter_options io = {.prefix = nb_buf_slice(&p)};
    kv_iter *it = NULL;
    int rc = kv_iter_new(m->kv, &io, &it);
    if (rc == 0) {
        if (key)
            kv_iter_seek(it, nb_buf_slice(&start));
        else
            kv_iter_seek_first(it);
        int stop = 0;
        for (; rc == 0 && !stop && kv_iter_valid(it); kv_iter_next(it)) {
            meta_version v;
            rc = vdecode(kv_iter_key(it), kv_iter_value(it), &v);
            if (rc == 0)
                stop = cb(arg, &v);
            meta_version_free(&v);
        }
        if (rc == 0)
            rc = kv_iter_status(it);
        kv_iter_free(it);
    }
    nb_buf_free(&p);
    nb_buf_free(&start);
    return rc;
}

/* Collects the versions of one key (newest first). */
typedef struct vlist {
    const char *key;
    meta_version *v;
    size_t n, cap;
    size_t max; /* 0: all */
} vlist;

static int vlist_cb(void *arg, const meta_version *v)
{
    vlist *l = arg;
    if (strcmp(v->key, l->key) != 0)
        return 1;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->v = nb_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n] = *v;
    l->v[l->n].key = nb_xstrdup(v->key);
    l->n++;
    return l->max && l->n >= l->max;
}

static void vlist_free(vlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        meta_version_free(&l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int key_versions(meta *m, uint64_t bucket, const char *key, size_t max, vlist *l)
{
    memset(l, 0, sizeof(*l));
    l->key = key;
    l->max = max;
    return meta_version_list(m, bucket, key, UINT64_MAX, vlist_cb, l);
}

int meta_version_find(meta *m, uint64_t bucket, const char *key, const char *version_id,
                      meta_version *out)
{
    vlist l;
    int rc = key_versions(m, bucket, key, 0, &l);
    if (rc == 0)
        rc = NB_ENOTFOUND;
    for (size_t i = 0; rc == NB_ENOTFOUND && i < l.n; i++) {
        if (strcmp(l.v[i].version_id, version_id) == 0) {
            *out = l.v[i];
            l.v[i].key = NULL; /* moved to out */
            rc = 0;
        }
    }
    vlist_free(&l);
    return rc;
}

int meta_version_any(meta *m, uint64_t bucket)
{
    nb_buf p = NB_BUF_INIT;
    vkey(&p, bucket, NULL, 0);
    kv_iter_options io = {.prefix = nb_buf_slice(&p)};
    kv_iter *it = NULL;
    int rc = kv_iter_new(m->kv, &io, &it);
    if (rc == 0) {
        kv_iter_seek_first(it);
        int any = kv_iter_valid(it);
        rc = kv_iter_status(it);
        kv_iter_free(it);
        if (rc == 0)
            rc = any;
    }
    nb_buf_free(&p);
    return rc;
}

/* Drops the link a version record held (the inode goes at 0 links, or
 * with its last reader). */
static int drop_version_inode(meta__txn *t, uint64_t ino, int64_t now)
{
    meta__inode in;
    int rc = meta__inode_get(t->m, NULL, ino, &in);
    if (rc == -ENOENT)
        return NB_CORRUPT("version record names missing inode %llu", (unsigned long long)ino);
    if (rc == 0 && in.a.nlink == 0)
        return NB_CORRUPT("version inode %llu has no link", (unsigned long long)ino);
    return rc ? rc : meta__drop_link(t, &in, now);
}

/* With null_new: the null version among the noncurrent ones goes. */
static int drop_null_versions(meta__txn *t, const meta_verput *vp, int64_t now)
{
    vlist l;
    int rc = key_versions(t->m, vp->bucket, vp->key, 0, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        if (strcmp(l.v[i].version_id, "null") != 0)
            continue;
        vdel(t, vp->bucket, vp->key, l.v[i].seq);
        if (l.v[i].ino)
            rc = drop_version_inode(t, l.v[i].ino, now);
    }
    vlist_free(&l);
    return rc;
}

/* The version id stored in the object record of ino ("null" without). */
static int current_version_id(meta *m, uint64_t ino, char id[META_VERSION_ID_MAX + 1])
{
    nb_buf v = NB_BUF_INIT;
    strcpy(id, "null");
    int rc = meta_objrec_get(m, ino, &v);
    if (rc == NB_ENOTFOUND) {
        rc = 0;
    } else if (rc == 0) {
        meta_objrec r;
        rc = meta_objrec_decode(nb_buf_slice(&v), &r);
        if (rc == 0 && r.version_id && *r.version_id && strlen(r.version_id) <= META_VERSION_ID_MAX)
            strcpy(id, r.version_id);
        meta_objrec_free(&r);
    }
    nb_buf_free(&v);
    return rc;
}

/* The current file prev (its dentry already gone or going) becomes the
 * newest noncurrent version, or goes for good when it is the null
 * version and the new one is too. */
static int retire_current(meta__txn *t, const meta_verput *vp, meta__inode *prev, int64_t now)
{
    meta_version ver = {.bucket = vp->bucket, .key = (char *)vp->key};
    int rc = current_version_id(t->m, prev->a.ino, ver.version_id);
    if (rc != 0)
        return rc;
    if (vp->null_new && strcmp(ver.version_id, "null") == 0)
        return meta__drop_link(t, prev, now);
    rc = meta_id_alloc(t->m, META_ID_SLICE, 1, &ver.seq);
    if (rc != 0)
        return rc;
    ver.ino = prev->a.ino;
    ver.mtime_ns = prev->a.mtime_ns;
    ver.noncurrent_ns = now;
    prev->a.ctime_ns = now;
    meta__inode_put(t, prev);
    return vput(t, &ver);
}

int meta__version_hook(meta__txn *t, void *arg)
{
    meta__verhook *h = arg;
    int64_t now = meta__now();
    int rc = h->vp->null_new ? drop_null_versions(t, h->vp, now) : 0;
    uint64_t old = 0;
    uint32_t type = 0;
    if (rc == 0) {
        rc = meta__dentry_get(t->m, NULL, h->parent, h->name, strlen(h->name), &old, &type, NULL);
        if (rc == -ENOENT)
            return 0;
    }
    meta__inode prev;
    if (rc == 0)
        rc = meta__inode_get(t->m, NULL, old, &prev);
    if (rc == 0 && S_ISDIR(prev.a.mode))
        return 0; /* install refuses it */
    return rc ? rc : retire_current(t, h->vp, &prev, now);
}

int meta_install_ver(meta *m, const meta_cred *c, uint64_t ino, uint64_t parent, const char *name,
                     nb_slice objrec, const meta_verput *vp, meta_attr *out)
{
    meta__verhook h = {.vp = vp, .parent = parent, .name = name};
    return meta__install(m, c, ino, parent, name, META_INSTALL_REPLACE | META__INSTALL_HOOK_OLD,
                         objrec, meta__version_lock(vp->bucket, vp->key), 0, meta__version_hook, &h,
                         out);
}

int meta_version_mark(meta *m, const meta_verput *vp, uint64_t parent, const char *name,
                      const char *version_id, meta_version *out)
{
    if (strlen(version_id) == 0 || strlen(version_id) > META_VERSION_ID_MAX)
        return -EINVAL;
    size_t len = name ? strlen(name) : 0;
    uint64_t old = 0, cookie = 0;
    uint32_t type = 0;
    meta__txn t;
    uint64_t lk[2] = {meta__version_lock(vp->bucket, vp->key), parent};
    int rc = meta__txn_lock_entry(&t, m, parent, name, len, lk, 2, &old, &type, &cookie);
    if (rc != 0)
        return rc;
    int64_t now = meta__now();
    meta__inode dir, prev;
    if (old) {
        rc = meta__inode_get(m, NULL, old, &prev);
        if (rc == 0 && !S_ISREG(prev.a.mode))
            old = 0; /* a directory is no version: leave it */
    }
    if (rc == 0 && vp->null_new)
        rc = drop_null_versions(&t, vp, now);
    if (rc == 0 && old) {
        rc = meta__inode_get(m, NULL, parent, &dir);
        if (rc == 0) {
            meta__dentry_del(&t, parent, name, len, cookie);
            dir.a.mtime_ns = dir.a.ctime_ns = now;
            meta__inode_put(&t, &dir);
            rc = retire_current(&t, vp, &prev, now);
        }
    }
    meta_version mk = {.bucket = vp->bucket,
                       .key = (char *)vp->key,
                       .delete_marker = true,
                       .mtime_ns = now,
                       .noncurrent_ns = now};
    snprintf(mk.version_id, sizeof mk.version_id, "%s", version_id);
    if (rc == 0)
        rc = meta_id_alloc(m, META_ID_SLICE, 1, &mk.seq);
    if (rc == 0)
        rc = vput(&t, &mk);
    if (rc == 0)
        rc = meta__txn_commit(&t, 1);
    meta__txn_end(&t);
    if (rc == 0 && out) {
        *out = mk;
        out->key = nb_xstrdup(vp->key);
    }
    return rc;
}

int meta_version_remove(meta *m, uint64_t bucket, const char *key, uint64_t seq)
{
    for (;;) {
        vlist l;
        int rc = key_versions(m, bucket, key, 0, &l);
        meta_version *v = NULL;
        for (size_t i = 0; rc == 0 && i < l.n && !v; i++)
            if (l.v[i].seq == seq)
                v = &l.v[i];
        if (rc == 0 && !v)
            rc = NB_ENOTFOUND;
        if (rc != 0) {
            vlist_free(&l);
            return rc;
        }
        uint64_t ino = v->ino;
        vlist_free(&l);
        meta__txn t;
        meta__txn_init(&t, m);
        uint64_t lk[2] = {meta__version_lock(bucket, key), ino};
        meta__txn_lock(&t, lk, 2);
        /* Again under the lock: the record may have gone meanwhile. */
        nb_buf k = NB_BUF_INIT, val = NB_BUF_INIT;
        vkey(&k, bucket, key, seq);
        rc = kv_get(m->kv, NULL, nb_buf_slice(&k), &val);
        meta_version cur;
        if (rc == 0) {
            rc = vdecode(nb_buf_slice(&k), nb_buf_slice(&val), &cur);
            if (rc == 0 && cur.ino != ino) {
                meta_version_free(&cur);
                nb_buf_free(&k);
                nb_buf_free(&val);
                meta__txn_end(&t);
                continue;
            }
            meta_version_free(&cur);
        }
        if (rc == 0) {
            kv_batch_delete(t.b, nb_buf_slice(&k));
            if (ino)
                rc = drop_version_inode(&t, ino, meta__now());
        }
        if (rc == 0)
            rc = meta__txn_commit(&t, 1);
        meta__txn_end(&t);
        nb_buf_free(&k);
        nb_buf_free(&val);
        return rc;
    }
}

/* Makes the newest version v (an object) current at dir/name: its record
 * goes and a dentry takes over its link. dir and v->ino are locked. */
static int promote_locked(meta__txn *t, meta__inode *dir, const char *name, const meta_version *v,
                          int64_t now)
{
    meta__inode in;
    int rc = meta__inode_get(t->m, NULL, v->ino, &in);
    if (rc != 0)
        return rc;
    vdel(t, v->bucket, v->key, v->seq);
    meta__dentry_add(t, dir, name, strlen(name), v->ino, S_IFREG);
    dir->a.mtime_ns = dir->a.ctime_ns = now;
    meta__inode_put(t, dir);
    in.a.parent = dir->a.ino;
    in.a.ctime_ns = now;
    meta__inode_put(t, &in);
    return 0;
}

int meta_version_remove_current(meta *m, uint64_t bucket, const char *key, uint64_t parent,
                                const char *name, uint64_t ino, int *promoted)
{
    *promoted = 0;
    size_t len = strlen(name);
    for (;;) {
        vlist l;
        int rc = key_versions(m, bucket, key, 1, &l);
        if (rc != 0) {
            vlist_free(&l);
            return rc;
        }
        meta__txn t;
        meta__txn_init(&t, m);
        uint64_t top = l.n ? l.v[0].seq : 0, top_ino = l.n ? l.v[0].ino : 0;
        uint64_t lk[4] = {meta__version_lock(bucket, key), parent, ino, top_ino};
        meta__txn_lock(&t, lk, 4);
        vlist l2;
        rc = key_versions(m, bucket, key, 1, &l2);
        if (rc == 0 && (l2.n ? l2.v[0].seq : 0) != top) {
            vlist_free(&l);
            vlist_free(&l2);
            meta__txn_end(&t);
            continue;
        }
        uint64_t x = 0, cookie = 0;
        uint32_t type = 0;
        if (rc == 0)
            rc = meta__dentry_get(m, NULL, parent, name, len, &x, &type, &cookie);
        if (rc == 0 && x != ino)
            rc = -ENOENT;
        meta__inode dir, in;
        if (rc == 0)
            rc = meta__inode_get(m, NULL, parent, &dir);
        if (rc == 0)
            rc = meta__inode_get(m, NULL, ino, &in);
        int64_t now = meta__now();
        if (rc == 0) {
            meta__dentry_del(&t, parent, name, len, cookie);
            rc = meta__drop_link(&t, &in, now);
        }
        if (rc == 0 && l2.n && !l2.v[0].delete_marker) {
            rc = promote_locked(&t, &dir, name, &l2.v[0], now);
            *promoted = rc == 0;
        } else if (rc == 0) {
            dir.a.mtime_ns = dir.a.ctime_ns = now;
            meta__inode_put(&t, &dir);
        }
        if (rc == 0)
            rc = meta__txn_commit(&t, 1);
        if (rc != 0)
            *promoted = 0;
        meta__txn_end(&t);
        vlist_free(&l);
        vlist_free(&l2);
        return rc;
    }
}

int meta_version_promote(meta *m, uint64_t bucket, const char *key, uint64_t parent,
                         const char *name, int *promoted)
{
    *promoted = 0;
    size_t len = strlen(name);
    for (;;) {
        vlist l;
        int rc = key_versions(m, bucket, key, 1, &l);
        if (rc != 0 || l.n == 0 || l.v[0].delete_marker) {
            vlist_free(&l);
            return rc;
        }
        meta__txn t;
        meta__txn_init(&t, m);
        uint64_t lk[3] = {meta__version_lock(bucket, key), parent, l.v[0].ino};
        meta__txn_lock(&t, lk, 3);
        vlist l2;
        rc = key_versions(m, bucket, key, 1, &l2);
        if (rc == 0 && (!l2.n || l2.v[0].seq != l.v[0].seq)) {
            vlist_free(&l);
            vlist_free(&l2);
            meta__txn_end(&t);
            continue;
        }
        uint64_t x = 0;
        uint32_t type = 0;
        if (rc == 0) {
            rc = meta__dentry_get(m, NULL, parent, name, len, &x, &type, NULL);
            rc = rc == -ENOENT ? 0 : rc == 0 ? -EEXIST : rc;
        }
        meta__inode dir;
        if (rc == 0)
            rc = meta__inode_get(m, NULL, parent, &dir);
        if (rc == 0 && (!S_ISDIR(dir.a.mode) || dir.a.nlink == 0))
            rc = -ENOENT;
        if (rc == 0)
            rc = promote_locked(&t, &dir, name, &l2.v[0], meta__now());
        if (rc == 0)
            rc = meta__txn_commit(&t, 1);
        *promoted = rc == 0;
        meta__txn_end(&t);
        vlist_free(&l);
        vlist_free(&l2);
        return rc;
    }
}

int meta_version_restore(meta *m, const meta_version *v)
{
    if ((v->ino == 0) != v->delete_marker || !v->key)
        return -EINVAL;
    meta__txn t;
    meta__txn_init(&t, m);
    uint64_t lk[2] = {meta__version_lock(v->bucket, v->key), v->ino};
    meta__txn_lock(&t, lk, 2);
    nb_buf k = NB_BUF_INIT, val = NB_BUF_INIT;
    vkey(&k, v->bucket, v->key, v->seq);
    int rc = kv_get(m->kv, NULL, nb_buf_slice(&k), &val);
    rc = rc == NB_ENOTFOUND ? 0 : rc == 0 ? -EEXIST : rc;
    if (rc == 0 && v->ino) {
        meta__inode in;
        rc = meta__inode_get(m, NULL, v->ino, &in);
        if (rc == 0 && !S_ISREG(in.a.mode))
            rc = -EINVAL;
        if (rc == 0) {
            if (in.a.nlink == 0) { /* unnamed: the record is its first link */
                uint8_t ok[9];
                meta__key_ino(ok, META_K_ORPHAN, v->ino);
                kv_batch_delete(t.b, nb_slice_of(ok, 9));
            }
            in.a.nlink++;
            meta__inode_put(&t, &in);
        }
    }
    if (rc == 0)
        rc = vput(&t, v);
    if (rc == 0)
        rc = meta__txn_commit(&t, 0);
    meta__txn_end(&t);
    nb_buf_free(&k);
    nb_buf_free(&val);
    return rc;
}
