/*
 * meta_get.c — an S3 GET's reads in one snapshot: the walk from the
 * bucket to the object through dentries, the object's inode and record,
 * and chunk 0's map with its inline bytes (meta.h, meta_obj_get).
 *
 * Why: a GET through meta_lookup reads each parent's inode to check that
 * it is a searchable directory and the child's inode again per call;
 * the dentry's type already says "directory", and the gateway checks
 * access itself, so a GET of "bucket/key" costs 2 dentry reads, one inode,
 * one record, one chunk map (and an inline slice) — one consistent view,
 * instead of three separate lookups that a concurrent PUT could change
 * in between.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "meta/meta_int.h"

/* The dentry name..name+len under dir: its inode and type. */
static int step(meta *m, const kv_snapshot *s, uint64_t dir, const char *name, size_t len,
                uint64_t *ino, uint32_t *type)
{
    if (len == 0 || len > META_NAME_MAX || meta__is_dot(name, len))
        return -ENOENT;
    return meta__dentry_get(m, s, dir, name, len, ino, type, NULL);
}

static int walk(meta *m, const kv_snapshot *s, const char *bucket, const char *key, uint64_t *ino)
{
    uint32_t type;
    int rc = step(m, s, META_ROOT_INO, bucket, strlen(bucket), ino, &type);
    if (rc == 0 && !S_ISDIR(type))
        return -ENOENT;
    const char *p = key;
    while (rc == 0 && *p) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        rc = step(m, s, *ino, p, l, ino, &type);
        if (rc == 0 && (e ? !S_ISDIR(type) : !S_ISREG(type)))
            rc = -ENOENT;
        p = e ? e + 1 : p + l;
    }
    return rc;
}

static int read_data(meta *m, const kv_snapshot *s, meta_obj *o)
{
    int rc = meta__chunk_read_at(m, s, o->a.ino, 0, &o->map, &o->nmap);
    if (rc != 0 || o->nmap == 0)
        return rc;
    o->inl = nb_xcalloc(o->nmap, sizeof *o->inl);
    for (size_t i = 0; rc == 0 && i < o->nmap; i++) {
        uint64_t id = o->map[i].id;
        if (!(id & META_SLICE_INLINE))
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = o->map[j].id == id;
        if (!seen)
            rc = meta__inline_get_at(m, s, id, &o->inl[i]);
    }
    return rc;
}

int meta_obj_get(meta *m, const char *bucket, const char *key, unsigned flags, meta_obj *out)
{
    memset(out, 0, sizeof *out);
    /* Read before the snapshot: an answer kept with it is reused only
     * while no write has been applied since (meta_objcache.c). */
    uint64_t seq = kv_last_seq(m->kv);
    if (meta__objcache_get(m->objcache, seq, bucket, key, flags, out))
        return 0;
    kv_snapshot *s = NULL;
    int rc = kv_snapshot_new(m->kv, &s);
    uint64_t ino = 0;
    if (rc == 0)
        rc = walk(m, s, bucket, key, &ino);
    meta__inode in;
    if (rc == 0)
        rc = meta__inode_get(m, s, ino, &in);
    if (rc == 0) {
        out->a = in.a;
        uint8_t k[9];
        meta__key_ino(k, META_K_OBJREC, ino);
        rc = kv_get(m->kv, s, nb_slice_of(k, 9), &out->rec);
        if (rc == NB_ENOTFOUND) {
            nb_buf_reset(&out->rec);
            rc = 0;
        }
    }
    if (rc == 0 && (flags & META_OBJ_DATA) && S_ISREG(in.a.mode))
        rc = read_data(m, s, out);
    kv_snapshot_free(s);
    if (rc != 0)
        meta_obj_free(out);
    else
        meta__objcache_put(m->objcache, seq, bucket, key, flags, out);
    return rc;
}

void meta_obj_free(meta_obj *o)
{
    if (!o)
        return;
    if (o->shared) {
        meta__objcache_unref(o->shared);
        memset(o, 0, sizeof *o);
        return;
    }
    nb_buf_free(&o->rec);
    for (size_t i = 0; o->inl && i < o->nmap; i++)
        nb_buf_free(&o->inl[i]);
    free(o->inl);
    free(o->map);
    memset(o, 0, sizeof *o);
}
