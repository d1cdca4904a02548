/*
 * dump.c — `nebula dump` and `nebula load`: the metadata of a namespace
 * as one readable JSON document (docs/vfs.md "Dump format").
 *
 *   {"format": "nebulastore-metadata-dump", "version": 1,
 *    "slice_id_high": N,
 *    "nodes": [ {"parent": 0, "name": "", "ino": 1, ...attributes},   <- the root
 *               {"parent": 1, "name": "a", "ino": 7, "mode": 33188, ...},
 *               {"parent": 9, "name": "hardlink", "ino": 7}, ... ],
 *    "versions": [ {"bucket": 9, "key": "a/b", "seq": N, "version_id": "...",
 *                   "delete_marker": 0, "mtime_ns": N, "noncurrent_ns": N,
 *                   "ino": 12, ...attributes as for a node}, ... ],
 *    "uploads": [ {"bucket": 9, "id": N, "key": "big", "initiated_ns": N, "owner": ...,
 *                  "objrec": hex, "parts": [ {"number": 1, "etag": "\"...\"", "size": N,
 *                  "mtime_ns": N, "slices": [[id, size, off, len], ...]}, ... ]}, ... ],
 *    "users": [ {"access_key": ..., "secret_key": ..., "name": ..., "ctime_ns": N} ]}
 *
 * Nodes come in breadth-first order, so a directory precedes its entries.
 * An inode's attributes, symlink target, xattrs (hex), chunk maps
 * ([id, size, off, len, pos] per slice; inline slices add their bytes in
 * hex), object record (hex) and bucket
 * record come with its first name only; further names of it (hard links)
 * carry parent, name and ino. Inode numbers are the dump's own: load
 * allocates new ones. Slices keep their ids, so a load must sit next to
 * the same block store. S3 versions ('V' records) come after the nodes,
 * per bucket in key order, newest first; they keep their seq (a slice id,
 * which load never hands out again) and version id. In-progress multipart
 * uploads follow, with their parts; they keep their upload ids (from the
 * slice id space too), so a client can go on with an upload after a load.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "vfs/vfs_int.h"
#include "vfs/vfs_json.h"

/* A u64 -> u64 map (open addressing; key 0 = empty). */
typedef struct u64map {
    uint64_t *k, *v;
    size_t cap, n;
} u64map;

static uint64_t *map_slot(u64map *m, uint64_t key, bool add)
{
    if (add && (m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 1024;
        uint64_t *nk = nb_xcalloc(ncap, 8), *nv = nb_xcalloc(ncap, 8);
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->k[i])
                continue;
            size_t j = (size_t)(m->k[i] * 0x9E3779B97F4A7C15ull) & (ncap - 1);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = m->k[i];
            nv[j] = m->v[i];
        }
        free(m->k);
        free(m->v);
        m->k = nk;
        m->v = nv;
        m->cap = ncap;
    }
    if (!m->cap)
        return NULL;
    size_t j = (size_t)(key * 0x9E3779B97F4A7C15ull) & (m->cap - 1);
    while (m->k[j] && m->k[j] != key)
        j = (j + 1) & (m->cap - 1);
    if (m->k[j] == key)
        return &m->v[j];
    if (!add)
        return NULL;
    m->k[j] = key;
    m->n++;
    return &m->v[j];
}

static void map_free(u64map *m)
{
    free(m->k);
    free(m->v);
}

static void put_hex(FILE *out, const uint8_t *p, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%02x", p[i]);
    fputc('"', out);
}

static int get_hex(const char *s, size_t n, nb_buf *out)
{
    nb_buf_reset(out);
    if (n % 2)
        return NB_CORRUPT("dump: odd hex string");
    for (size_t i = 0; i < n; i += 2) {
        char h[3] = {s[i], s[i + 1], 0};
        char *e;
        unsigned long v = strtoul(h, &e, 16);
        if (*e)
            return NB_CORRUPT("dump: bad hex string");
        int rc = nb_buf_put_u8(out, (uint8_t)v);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- dump -------------------------------------------------------------------------------------
 */

typedef struct dumper {
    meta *m;
    FILE *out;
    u64map seen;
    uint64_t *queue;
    size_t qn, qcap;
    uint64_t cur;
    bool first;
    int err;
    uint64_t *buckets; /* directories under the root, for their versions */
    size_t nb;
} dumper;

static int dump_inode(dumper *d, const meta_attr *a)
{
    FILE *o = d->out;
    fprintf(o,
            ", \"mode\": %u, \"uid\": %u, \"gid\": %u, \"nlink\": %u, \"size\": %llu, "
            "\"atime_ns\": %lld, \"mtime_ns\": %lld, \"ctime_ns\": %lld, \"btime_ns\": %lld, "
            "\"rdev\": %llu",
            a->mode, a->uid, a->gid, a->nlink, (unsigned long long)a->size, (long long)a->atime_ns,
            (long long)a->mtime_ns, (long long)a->ctime_ns, (long long)a->btime_ns,
            (unsigned long long)a->rdev);
    nb_buf b = NB_BUF_INIT, v = NB_BUF_INIT;
    int rc = 0;
    if (S_ISLNK(a->mode)) {
        rc = meta_readlink(d->m, a->ino, &b);
        if (rc == 0) {
            fputs(", \"target\": ", o);
            vfs__json_put_str(o, (const char *)b.data, b.len);
        }
    }
    if (rc == 0)
        rc = meta_xattr_list(d->m, NULL, a->ino, &b);
    if (rc == 0 && b.len) {
        fputs(", \"xattrs\": [", o);
        bool first = true;
        for (size_t i = 0; rc == 0 && i < b.len;) {
            const char *n = (const char *)b.data + i;
            size_t l = strnlen(n, b.len - i);
            rc = meta_xattr_get(d->m, NULL, a->ino, n, &v);
            if (rc == 0) {
                fprintf(o, "%s{\"name\": ", first ? "" : ", ");
                vfs__json_put_str(o, n, l);
                fputs(", \"value\": ", o);
                put_hex(o, v.data, v.len);
                fputc('}', o);
                first = false;
            }
            i += l + 1;
        }
        fputc(']', o);
    }
    if (rc == 0 && S_ISREG(a->mode) && a->size) {
        uint64_t nchunks = (a->size + META_CHUNK_SIZE - 1) / META_CHUNK_SIZE;
        bool first = true;
        for (uint64_t c = 0; rc == 0 && c < nchunks; c++) {
            meta_slice *s = NULL;
            size_t n = 0;
            rc = meta_chunk_read(d->m, a->ino, (uint32_t)c, &s, &n);
            if (rc == 0 && n) {
                fprintf(o, "%s{\"index\": %llu, \"slices\": [", first ? ", \"chunks\": [" : ", ",
                        (unsigned long long)c);
                for (size_t i = 0; rc == 0 && i < n; i++) {
                    fprintf(o, "%s[%llu, %u, %u, %u, %u", i ? ", " : "",
                            (unsigned long long)s[i].id, s[i].size, s[i].off, s[i].len, s[i].pos);
                    if (s[i].id & META_SLICE_INLINE) { /* its bytes, hex */
                        rc = meta_inline_get(d->m, s[i].id, &v);
                        if (rc == 0) {
                            fputs(", ", o);
                            put_hex(o, v.data, v.len);
                        }
                    }
                    fputc(']', o);
                }
                fputs("]}", o);
                first = false;
            }
            free(s);
        }
        if (!first)
            fputc(']', o);
    }
    if (rc == 0) {
        rc = meta_objrec_get(d->m, a->ino, &v);
        if (rc == 0) {
            fputs(", \"objrec\": ", o);
            put_hex(o, v.data, v.len);
        }
        if (rc == NB_ENOTFOUND)
            rc = 0;
    }
    nb_buf_free(&b);
    nb_buf_free(&v);
    return rc;
}

static int dump_bucket(dumper *d, const char *name)
{
    meta_bucket bk;
    int rc = meta_bucket_get(d->m, name, &bk);
    if (rc == NB_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    FILE *o = d->out;
    fputs(", \"bucket\": {\"owner\": ", o);
    vfs__json_put_str(o, bk.owner ? bk.owner : "", bk.owner ? strlen(bk.owner) : 0);
    fprintf(o, ", \"ctime_ns\": %lld, \"versioning\": %u, \"public_read\": %u",
            (long long)bk.ctime_ns, bk.versioning, bk.public_read);
    const nb_buf *blobs[4] = {&bk.cors, &bk.lifecycle, &bk.tagging, &bk.policy};
    const char *names[4] = {"cors", "lifecycle", "tagging", "policy"};
    for (int i = 0; i < 4; i++) {
        fprintf(o, ", \"%s\": ", names[i]);
        put_hex(o, blobs[i]->data, blobs[i]->len);
    }
    fputc('}', o);
    meta_bucket_free(&bk);
    return 0;
}

static int dump_node(dumper *d, uint64_t parent, const char *name, size_t nl, const meta_attr *a)
{
    FILE *o = d->out;
    fprintf(o, "%s\n  {\"parent\": %llu, \"name\": ", d->first ? "" : ",",
            (unsigned long long)parent);
    d->first = false;
    vfs__json_put_str(o, name, nl);
    fprintf(o, ", \"ino\": %llu", (unsigned long long)a->ino);
    int rc = 0;
    if (!map_slot(&d->seen, a->ino, false)) {
        *map_slot(&d->seen, a->ino, true) = 1;
        rc = dump_inode(d, a);
        if (rc == 0 && parent == VFS_ROOT_INO && S_ISDIR(a->mode)) {
            rc = dump_bucket(d, name);
            d->buckets = nb_xrealloc(d->buckets, (d->nb + 1) * sizeof(*d->buckets));
            d->buckets[d->nb++] = a->ino;
        }
        if (S_ISDIR(a->mode)) {
            if (d->qn == d->qcap) {
                d->qcap = d->qcap ? d->qcap * 2 : 64;
                d->queue = nb_xrealloc(d->queue, d->qcap * sizeof(*d->queue));
            }
            d->queue[d->qn++] = a->ino;
        }
    }
    fputc('}', o);
    return rc;
}

static int dump_cb(void *arg, const meta_dirent *e)
{
    dumper *d = arg;
    if (!e->attr)
        return 0; /* vanished: fsck reports dangling entries */
    d->err = dump_node(d, d->cur, e->name, e->name_len, e->attr);
    return d->err != 0;
}

/* Collects the version records of one bucket (a copy each). */
typedef struct vcollect {
    meta_version *v;
    size_t n, cap;
} vcollect;

static int vcollect_cb(void *arg, const meta_version *v)
{
    vcollect *c = arg;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = nb_xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    c->v[c->n] = *v;
    c->v[c->n++].key = nb_xstrdup(v->key);
    return 0;
}

/* The noncurrent versions and delete markers of bucket, in key order and
 * newest first. An object version's inode has no name in the namespace,
 * so its attributes, chunks and object record come here (the first time
 * it is met; a version that is also a hard link elsewhere names its ino). */
static int dump_versions(dumper *d, uint64_t bucket)
{
    vcollect c = {0};
    int rc = meta_version_list(d->m, bucket, NULL, 0, vcollect_cb, &c);
    FILE *o = d->out;
    for (size_t i = 0; rc == 0 && i < c.n; i++) {
        const meta_version *v = &c.v[i];
        fprintf(o, "%s\n  {\"bucket\": %llu, \"key\": ", d->first ? "" : ",",
                (unsigned long long)bucket);
        d->first = false;
        vfs__json_put_str(o, v->key, strlen(v->key));
        fprintf(o, ", \"seq\": %llu, \"version_id\": ", (unsigned long long)v->seq);
        vfs__json_put_str(o, v->version_id, strlen(v->version_id));
        fprintf(o, ", \"delete_marker\": %d, \"mtime_ns\": %lld, \"noncurrent_ns\": %lld",
                v->delete_marker ? 1 : 0, (long long)v->mtime_ns, (long long)v->noncurrent_ns);
        if (v->ino) {
            fprintf(o, ", \"ino\": %llu", (unsigned long long)v->ino);
            if (!map_slot(&d->seen, v->ino, false)) {
                *map_slot(&d->seen, v->ino, true) = 1;
                meta_attr a;
                rc = meta_getattr(d->m, v->ino, &a);
                if (rc == 0)
                    rc = dump_inode(d, &a);
            }
        }
        fputc('}', o);
    }
    for (size_t i = 0; i < c.n; i++)
        meta_version_free(&c.v[i]);
    free(c.v);
    return rc;
}

static int dump_part_cb(void *arg, const meta_part *p)
{
    dumper *d = arg;
    FILE *o = d->out;
    fprintf(o, "%s{\"number\": %u, \"etag\": ", d->first ? "" : ", ", p->number);
    d->first = false;
    vfs__json_put_str(o, p->etag ? p->etag : "", p->etag ? strlen(p->etag) : 0);
    fprintf(o, ", \"size\": %llu, \"mtime_ns\": %lld, \"slices\": [", (unsigned long long)p->size,
            (long long)p->mtime_ns);
    for (size_t i = 0; i < p->nslices; i++) {
        const meta_slice *s = &p->slices[i];
        fprintf(o, "%s[%llu, %u, %u, %u]", i ? ", " : "", (unsigned long long)s->id, s->size,
                s->off, s->len);
    }
    fputs("]}", o);
    return 0;
}

/* One in-progress multipart upload and its parts, written as the upload
 * list meets it: their slices are block-stored (a part is never inline)
 * and keep their ids. */
static int dump_upload_cb(void *arg, const meta_upload *u)
{
    dumper *d = arg;
    FILE *o = d->out;
    fprintf(o, "%s\n  {\"bucket\": %llu, \"id\": %llu, \"key\": ", d->first ? "" : ",",
            (unsigned long long)u->bucket, (unsigned long long)u->id);
    d->first = false;
    vfs__json_put_str(o, u->key, strlen(u->key));
    fprintf(o, ", \"initiated_ns\": %lld", (long long)u->initiated_ns);
    if (u->owner) {
        fputs(", \"owner\": ", o);
        vfs__json_put_str(o, u->owner, strlen(u->owner));
    }
    if (u->objrec.len) {
        fputs(", \"objrec\": ", o);
        put_hex(o, u->objrec.data, u->objrec.len);
    }
    fputs(", \"parts\": [", o);
    d->first = true;
    d->err = meta_part_list(d->m, u->id, 0, dump_part_cb, d);
    d->first = false;
    fputs("]}", o);
    return d->err != 0;
}

static int dump_uploads(dumper *d, uint64_t bucket)
{
    d->err = 0;
    int rc = meta_upload_list(d->m, bucket, NULL, 0, dump_upload_cb, d);
    return rc ? rc : d->err;
}

/* S3 users, secrets included: a dump restores a working server. */
static int dump_user_cb(void *arg, const meta_user *u)
{
    dumper *d = arg;
    FILE *o = d->out;
    fputs(d->first ? "\n  {\"access_key\": " : ",\n  {\"access_key\": ", o);
    d->first = false;
    vfs__json_put_str(o, u->access_key, strlen(u->access_key));
    fputs(", \"secret_key\": ", o);
    vfs__json_put_str(o, u->secret_key, strlen(u->secret_key));
    fputs(", \"name\": ", o);
    vfs__json_put_str(o, u->name ? u->name : "", u->name ? strlen(u->name) : 0);
    fprintf(o, ", \"ctime_ns\": %lld}", (long long)u->ctime_ns);
    return 0;
}

int vfs_dump(const char *data_dir, FILE *out)
{
    vfs_options o;
    vfs_options_init(&o);
    o.data_dir = data_dir;
    dumper d;
    memset(&d, 0, sizeof(d));
    d.out = out;
    d.first = true;
    data_store *ds;
    int rc = vfs__open_stores(&o, &d.m, &ds);
    if (rc != 0)
        return rc;
    fprintf(out,
            "{\"format\": \"nebulastore-metadata-dump\", \"version\": 1, \"slice_id_high\": "
            "%llu,\n \"nodes\": [",
            (unsigned long long)meta_id_high(d.m, META_ID_SLICE));
    meta_attr root;
    rc = meta_getattr(d.m, VFS_ROOT_INO, &root);
    if (rc == 0)
        rc = dump_node(&d, 0, "", 0, &root);
    for (size_t qi = 0; rc == 0 && qi < d.qn; qi++) {
        d.cur = d.queue[qi];
        rc = meta_readdir(d.m, d.cur, 0, META_READDIR_ATTRS, dump_cb, &d);
        if (rc == 0)
            rc = d.err;
    }
    fputs("\n],\n \"versions\": [", out);
    d.first = true;
    for (size_t i = 0; rc == 0 && i < d.nb; i++)
        rc = dump_versions(&d, d.buckets[i]);
    fputs("\n],\n \"uploads\": [", out);
    d.first = true;
    for (size_t i = 0; rc == 0 && i < d.nb; i++)
        rc = dump_uploads(&d, d.buckets[i]);
    fputs("\n],\n \"users\": [", out);
    d.first = true;
    if (rc == 0)
        rc = meta_user_list(d.m, dump_user_cb, &d);
    fputs("\n]}\n", out);
    if (rc == 0 && (fflush(out) != 0 || ferror(out)))
        rc = -EIO;
    free(d.queue);
    free(d.buckets);
    map_free(&d.seen);
    meta_close(d.m);
    data_store_close(ds);
    return rc;
}

/* ---- load -------------------------------------------------------------------------------------
 */

static int load_attrs(meta *m, uint64_t ino, const vfs__json *n)
{
    int rc = 0;
    const vfs__json *x = vfs__json_get(n, "xattrs");
    nb_buf v = NB_BUF_INIT;
    for (size_t i = 0; rc == 0 && x && x->type == VFS__J_ARR && i < x->n; i++) {
        const char *name = vfs__json_str(x->kids[i], "name", NULL);
        size_t hl;
        const char *hex = vfs__json_str(x->kids[i], "value", &hl);
        if (!name || !hex)
            return NB_CORRUPT("dump: bad xattr");
        rc = get_hex(hex, hl, &v);
        if (rc == 0)
            rc = meta_xattr_set(m, NULL, ino, name, nb_buf_slice(&v), 0);
    }
    size_t hl;
    const char *hex = vfs__json_str(n, "objrec", &hl);
    if (rc == 0 && hex) {
        rc = get_hex(hex, hl, &v);
        if (rc == 0)
            rc = meta_objrec_set(m, ino, nb_buf_slice(&v));
    }
    nb_buf_free(&v);
    if (rc != 0)
        return rc;
    meta_sattr sa;
    memset(&sa, 0, sizeof(sa));
    uint32_t mode = (uint32_t)vfs__json_u64(n, "mode", 0);
    sa.valid = META_SET_UID | META_SET_GID | META_SET_ATIME | META_SET_MTIME | META_SET_CTIME;
    if (!S_ISLNK(mode)) {
        sa.valid |= META_SET_MODE;
        sa.mode = mode & 07777;
    }
    sa.uid = (uint32_t)vfs__json_u64(n, "uid", 0);
    sa.gid = (uint32_t)vfs__json_u64(n, "gid", 0);
    sa.atime_ns = (int64_t)vfs__json_u64(n, "atime_ns", 0);
    sa.mtime_ns = (int64_t)vfs__json_u64(n, "mtime_ns", 0);
    sa.ctime_ns = (int64_t)vfs__json_u64(n, "ctime_ns", 0);
    rc = meta_setattr(m, NULL, ino, &sa, NULL);
    if (rc == 0 && (mode & 06000) && !S_ISLNK(mode)) {
        /* chown clears setuid/setgid: put them back */
        sa.valid = META_SET_MODE | META_SET_CTIME;
        rc = meta_setattr(m, NULL, ino, &sa, NULL);
    }
    return rc;
}

static int load_data(meta *m, uint64_t ino, const vfs__json *n)
{
    uint64_t size = vfs__json_u64(n, "size", 0);
    const vfs__json *ch = vfs__json_get(n, "chunks");
    size_t cap = 0, nw = 0;
    meta_write *w = NULL;
    for (size_t i = 0; ch && ch->type == VFS__J_ARR && i < ch->n; i++) {
        uint32_t idx = (uint32_t)vfs__json_u64(ch->kids[i], "index", 0);
        const vfs__json *sl = vfs__json_get(ch->kids[i], "slices");
        for (size_t k = 0; sl && sl->type == VFS__J_ARR && k < sl->n; k++) {
            const vfs__json *s = sl->kids[k];
            if (s->type != VFS__J_ARR || (s->n != 5 && s->n != 6)) {
                free(w);
                return NB_CORRUPT("dump: bad slice");
            }
            if (nw == cap) {
                cap = cap ? cap * 2 : 16;
                w = nb_xrealloc(w, cap * sizeof(*w));
            }
            w[nw].chunk = idx;
            w[nw].slice.id = strtoull(s->kids[0]->str ? s->kids[0]->str : "0", NULL, 10);
            w[nw].slice.size = (uint32_t)strtoul(s->kids[1]->str ? s->kids[1]->str : "0", NULL, 10);
            w[nw].slice.off = (uint32_t)strtoul(s->kids[2]->str ? s->kids[2]->str : "0", NULL, 10);
            w[nw].slice.len = (uint32_t)strtoul(s->kids[3]->str ? s->kids[3]->str : "0", NULL, 10);
            w[nw].slice.pos = (uint32_t)strtoul(s->kids[4]->str ? s->kids[4]->str : "0", NULL, 10);
            if (s->n == 6) { /* an inline slice and its bytes */
                nb_buf b = NB_BUF_INIT;
                int hrc = !(w[nw].slice.id & META_SLICE_INLINE) || !s->kids[5]->str
                              ? NB_CORRUPT("dump: bad inline slice")
                              : get_hex(s->kids[5]->str, s->kids[5]->len, &b);
                if (hrc == 0)
                    hrc = meta_inline_put(m, w[nw].slice.id, nb_buf_slice(&b));
                nb_buf_free(&b);
                if (hrc != 0) {
                    free(w);
                    return hrc;
                }
            }
            nw++;
        }
    }
    int rc;
    if (nw) {
        rc = meta_publish(m, ino, w, nw, size, META_PUBLISH_SIZE, 0, nb_slice_of(NULL, 0), 0, NULL);
    } else {
        meta_sattr sa;
        memset(&sa, 0, sizeof(sa));
        sa.valid = META_SET_SIZE;
        sa.size = size;
        rc = size ? meta_setattr(m, NULL, ino, &sa, NULL) : 0;
    }
    free(w);
    return rc;
}

static int load_bucket(meta *m, const char *name, uint32_t mode, const vfs__json *bj, uint64_t *ino)
{
    meta_bucket b;
    memset(&b, 0, sizeof(b));
    const char *owner = vfs__json_str(bj, "owner", NULL);
    b.owner = nb_xstrdup(owner ? owner : "");
    b.versioning = (uint32_t)vfs__json_u64(bj, "versioning", 0);
    b.public_read = (uint32_t)vfs__json_u64(bj, "public_read", 0);
    nb_buf *blobs[4] = {&b.cors, &b.lifecycle, &b.tagging, &b.policy};
    const char *names[4] = {"cors", "lifecycle", "tagging", "policy"};
    int rc = 0;
    for (int i = 0; rc == 0 && i < 4; i++) {
        size_t hl;
        const char *hex = vfs__json_str(bj, names[i], &hl);
        if (hex)
            rc = get_hex(hex, hl, blobs[i]);
    }
    if (rc == 0)
        rc = meta_bucket_create(m, NULL, name, mode & 07777, &b);
    if (rc == 0)
        *ino = b.ino;
    meta_bucket_free(&b);
    return rc;
}

static int load_node(meta *m, u64map *inos, const vfs__json *n)
{
    uint64_t parent = vfs__json_u64(n, "parent", 0);
    uint64_t old = vfs__json_u64(n, "ino", 0);
    const char *name = vfs__json_str(n, "name", NULL);
    if (!old || !name)
        return NB_CORRUPT("dump: node without ino or name");
    if (parent == 0) {
        *map_slot(inos, old, true) = VFS_ROOT_INO;
        return load_attrs(m, VFS_ROOT_INO, n);
    }
    uint64_t *np = map_slot(inos, parent, false);
    if (!np)
        return NB_CORRUPT("dump: node %s before its directory", name);
    uint64_t *have = map_slot(inos, old, false);
    if (have)
        return meta_link(m, NULL, *have, *np, name, NULL);
    uint32_t mode = (uint32_t)vfs__json_u64(n, "mode", 0);
    meta_attr a;
    int rc;
    const vfs__json *bj = vfs__json_get(n, "bucket");
    if (S_ISDIR(mode) && *np == VFS_ROOT_INO && bj) {
        rc = load_bucket(m, name, mode, bj, &a.ino);
    } else if (S_ISDIR(mode)) {
        rc = meta_mkdir(m, NULL, *np, name, mode & 07777, &a);
    } else if (S_ISLNK(mode)) {
        const char *t = vfs__json_str(n, "target", NULL);
        rc = t ? meta_symlink(m, NULL, *np, name, t, &a) : NB_CORRUPT("dump: symlink target");
    } else {
        rc = meta_mknod(m, NULL, *np, name, mode, vfs__json_u64(n, "rdev", 0), &a);
    }
    if (rc != 0)
        return rc;
    *map_slot(inos, old, true) = a.ino;
    if (S_ISREG(mode))
        rc = load_data(m, a.ino, n);
    if (rc == 0)
        rc = load_attrs(m, a.ino, n);
    return rc;
}

/* One version record: an object version's inode is made unnamed, filled
 * like a file's and then linked by the record (a hard link of an inode
 * loaded before just gains the record as a link). */
static int load_version(meta *m, u64map *inos, const vfs__json *vj)
{
    uint64_t *bucket = map_slot(inos, vfs__json_u64(vj, "bucket", 0), false);
    const char *key = vfs__json_str(vj, "key", NULL);
    const char *id = vfs__json_str(vj, "version_id", NULL);
    if (!bucket || !key || !id || strlen(id) == 0 || strlen(id) > META_VERSION_ID_MAX)
        return NB_CORRUPT("load: bad version record");
    meta_version v = {.bucket = *bucket,
                      .key = (char *)key,
                      .seq = vfs__json_u64(vj, "seq", 0),
                      .delete_marker = vfs__json_u64(vj, "delete_marker", 0) != 0,
                      .mtime_ns = (int64_t)vfs__json_u64(vj, "mtime_ns", 0),
                      .noncurrent_ns = (int64_t)vfs__json_u64(vj, "noncurrent_ns", 0)};
    strcpy(v.version_id, id);
    uint64_t old = vfs__json_u64(vj, "ino", 0);
    if (!old || v.delete_marker)
        return old ? NB_CORRUPT("load: a delete marker with an inode")
                   : meta_version_restore(m, &v);
    uint64_t *have = map_slot(inos, old, false);
    if (have) {
        v.ino = *have;
        return meta_version_restore(m, &v);
    }
    meta_attr a;
    int rc = meta_tmpfile(m, NULL, *bucket, (uint32_t)vfs__json_u64(vj, "mode", 0644), &a);
    if (rc != 0)
        return rc;
    *map_slot(inos, old, true) = v.ino = a.ino;
    rc = load_data(m, a.ino, vj);
    if (rc == 0)
        rc = meta_version_restore(m, &v);
    if (rc == 0) /* after the link: setattr's times are the last word */
        rc = load_attrs(m, a.ino, vj);
    int rrc = meta_release(m, a.ino);
    return rc ? rc : rrc;
}

static int load_upload(meta *m, u64map *inos, const vfs__json *uj)
{
    uint64_t *bucket = map_slot(inos, vfs__json_u64(uj, "bucket", 0), false);
    meta_upload u = {.id = vfs__json_u64(uj, "id", 0),
                     .key = (char *)vfs__json_str(uj, "key", NULL),
                     .initiated_ns = (int64_t)vfs__json_u64(uj, "initiated_ns", 0),
                     .owner = (char *)vfs__json_str(uj, "owner", NULL),
                     .objrec = NB_BUF_INIT};
    if (!bucket || !u.id || !u.key)
        return NB_CORRUPT("load: bad upload record");
    u.bucket = *bucket;
    size_t hl;
    const char *hex = vfs__json_str(uj, "objrec", &hl);
    int rc = hex ? get_hex(hex, hl, &u.objrec) : 0;
    if (rc == 0)
        rc = meta_upload_restore(m, &u);
    nb_buf_free(&u.objrec);
    const vfs__json *parts = vfs__json_get(uj, "parts");
    for (size_t i = 0; rc == 0 && parts && parts->type == VFS__J_ARR && i < parts->n; i++) {
        const vfs__json *pj = parts->kids[i], *sl = vfs__json_get(pj, "slices");
        meta_part p = {.number = (uint32_t)vfs__json_u64(pj, "number", 0),
                       .etag = (char *)vfs__json_str(pj, "etag", NULL),
                       .size = vfs__json_u64(pj, "size", 0),
                       .mtime_ns = (int64_t)vfs__json_u64(pj, "mtime_ns", 0)};
        if (p.number < 1 || p.number > 10000 || !p.etag || (sl && sl->type != VFS__J_ARR))
            return NB_CORRUPT("load: bad part of upload %llu", (unsigned long long)u.id);
        p.nslices = sl ? sl->n : 0;
        p.slices = nb_xcalloc(p.nslices ? p.nslices : 1, sizeof(*p.slices));
        for (size_t k = 0; rc == 0 && k < p.nslices; k++) {
            const vfs__json *s = sl->kids[k];
            if (s->type != VFS__J_ARR || s->n != 4) {
                rc = NB_CORRUPT("load: bad slice of upload %llu", (unsigned long long)u.id);
                break;
            }
            uint64_t f[4];
            for (int j = 0; j < 4; j++)
                f[j] = strtoull(s->kids[j]->str ? s->kids[j]->str : "0", NULL, 10);
            p.slices[k] = (meta_slice){
                .id = f[0], .size = (uint32_t)f[1], .off = (uint32_t)f[2], .len = (uint32_t)f[3]};
        }
        if (rc == 0)
            rc = meta_part_put(m, u.id, &p);
        free(p.slices);
    }
    return rc;
}

static int empty_cb(void *arg, const meta_dirent *e)
{
    (void)e;
    *(bool *)arg = false;
    return 1;
}

int vfs_load(const char *data_dir, FILE *in)
{
    nb_buf text = NB_BUF_INIT;
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, in)) > 0)
        rc = nb_buf_append(&text, chunk, n);
    if (rc == 0 && ferror(in))
        rc = -EIO;
    vfs__json *doc = NULL;
    if (rc == 0)
        rc = vfs__json_parse(text.data ? (const char *)text.data : "", text.len, &doc);
    nb_buf_free(&text);
    if (rc != 0)
        return rc;
    const char *fmt = vfs__json_str(doc, "format", NULL);
    const vfs__json *nodes = vfs__json_get(doc, "nodes");
    if (!fmt || strcmp(fmt, "nebulastore-metadata-dump") != 0 || !nodes ||
        nodes->type != VFS__J_ARR) {
        vfs__json_free(doc);
        return NB_CORRUPT("load: not a nebulastore metadata dump");
    }
    if (vfs__json_u64(doc, "version", 0) != 1) {
        vfs__json_free(doc);
        return NB_EVERSION;
    }
    vfs_options o;
    vfs_options_init(&o);
    o.data_dir = data_dir;
    meta *m;
    data_store *ds;
    rc = vfs__open_stores(&o, &m, &ds);
    if (rc != 0) {
        vfs__json_free(doc);
        return rc;
    }
    bool empty = true;
    rc = meta_readdir(m, VFS_ROOT_INO, 0, 0, empty_cb, &empty);
    if (rc == 0 && !empty)
        rc = -ENOTEMPTY;
    u64map inos = {0};
    for (size_t i = 0; rc == 0 && i < nodes->n; i++)
        rc = load_node(m, &inos, nodes->kids[i]);
    /* S3 versions (absent in dumps from before they were dumped). */
    const vfs__json *vers = vfs__json_get(doc, "versions");
    for (size_t i = 0; rc == 0 && vers && vers->type == VFS__J_ARR && i < vers->n; i++)
        rc = load_version(m, &inos, vers->kids[i]);
    /* In-progress multipart uploads (absent in dumps from before they were dumped). */
    const vfs__json *ups = vfs__json_get(doc, "uploads");
    for (size_t i = 0; rc == 0 && ups && ups->type == VFS__J_ARR && i < ups->n; i++)
        rc = load_upload(m, &inos, ups->kids[i]);
    /* S3 users (absent in dumps from before they existed). */
    const vfs__json *users = vfs__json_get(doc, "users");
    for (size_t i = 0; rc == 0 && users && users->type == VFS__J_ARR && i < users->n; i++) {
        const vfs__json *uj = users->kids[i];
        const char *name = vfs__json_str(uj, "name", NULL);
        meta_user u = {
            .access_key = (char *)vfs__json_str(uj, "access_key", NULL),
            .secret_key = (char *)vfs__json_str(uj, "secret_key", NULL),
            .ctime_ns = (int64_t)vfs__json_u64(uj, "ctime_ns", 0),
            .name = name && *name ? (char *)name : NULL,
        };
        rc = u.access_key && u.secret_key ? meta_user_add(m, &u)
                                          : NB_CORRUPT("load: a user without keys");
    }
    /* Never hand out a slice id the dump already uses. */
    uint64_t high = vfs__json_u64(doc, "slice_id_high", 0);
    while (rc == 0 && meta_id_high(m, META_ID_SLICE) < high) {
        uint64_t gap = high - meta_id_high(m, META_ID_SLICE), first;
        rc = meta_id_alloc(m, META_ID_SLICE, gap > (1u << 30) ? (1u << 30) : (uint32_t)gap, &first);
    }
    if (rc == 0)
        rc = meta_sync(m);
    map_free(&inos);
    vfs__json_free(doc);
    meta_close(m);
    data_store_close(ds);
    return rc;
}
