/*
 * meta_check.c — an offline consistency check of the metadata records,
 * with optional repair: the invariants listed at the end of
 * docs/metadata-format.md, checked on the raw key space.
 *
 * One pass per key type, in key order, with an in-memory table of every
 * inode. Repairs go into one batch written at the end, and only do what
 * is safe without guessing:
 *   - dentries naming a missing inode are removed; a missing twin ('D' or
 *     'd') is rewritten from the other; a wrong type byte is fixed;
 *   - directory parent pointers and next-cookie values are fixed;
 *   - link counts are set to the names found; a non-directory with no name
 *     and no orphan record becomes an orphan (reclaimed at the next open);
 *   - records of missing inodes (symlink, xattr, chunk map, orphan, S3)
 *     are removed, their slices moved to the garbage list;
 *   - id allocator marks are raised above every id in use;
 *   - usage counters are recomputed.
 * A directory no name reaches is reported, not moved (there is no
 * lost+found).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/coding.h"
#include "common/log.h"
#include "common/mem.h"
#include "meta/meta_int.h"

typedef struct iinfo {
    uint64_t ino; /* 0: empty slot */
    uint32_t mode;
    uint32_t nlink;
    uint64_t size;
    uint64_t parent;
    uint64_t cookie;
    uint32_t names;
    uint32_t subdirs;
    uint64_t seen_parent; /* directories: the parent a dentry put them in */
    uint64_t max_cookie;  /* directories: largest cookie of an entry */
    int orphan;
    int has_symlink;
    uint8_t flags;       /* META_INO_F_* of the record */
    uint8_t clear_flags; /* flags a record of the inode contradicts */
    int fix;             /* the inode record must be rewritten */
} iinfo;

typedef struct ck {
    meta *m;
    unsigned flags;
    meta_check_log log;
    void *arg;
    meta_check_report *rep;
    kv_batch *b;
    iinfo *t;
    size_t cap, n;
    uint64_t max_slice;
} ck;

static iinfo *find(ck *c, uint64_t ino, int add)
{
    if (add && (c->n + 1) * 2 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 1024;
        iinfo *nt = nb_xcalloc(ncap, sizeof(*nt));
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->t[i].ino)
                continue;
            size_t j = (size_t)(c->t[i].ino * 0x9E3779B97F4A7C15ull) & (ncap - 1);
            while (nt[j].ino)
                j = (j + 1) & (ncap - 1);
            nt[j] = c->t[i];
        }
        free(c->t);
        c->t = nt;
        c->cap = ncap;
    }
    if (!c->cap)
        return NULL;
    size_t j = (size_t)(ino * 0x9E3779B97F4A7C15ull) & (c->cap - 1);
    while (c->t[j].ino && c->t[j].ino != ino)
        j = (j + 1) & (c->cap - 1);
    if (c->t[j].ino == ino)
        return &c->t[j];
    if (!add)
        return NULL;
    c->t[j].ino = ino;
    c->n++;
    return &c->t[j];
}

static void problem(ck *c, int repaired, const char *fmt, ...) NB_PRINTF(3, 4);
static void problem(ck *c, int repaired, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->rep->problems++;
    if (repaired)
        c->rep->repaired++;
    if (c->log) {
        char line[600];
        snprintf(line, sizeof(line), "%s%s", msg, repaired ? " (repaired)" : "");
        c->log(c->arg, line);
    }
}

#define REPAIR(c) (((c)->flags & META_CHECK_REPAIR) != 0)

typedef int (*scan_fn)(ck *c, nb_slice k, nb_slice v);

static int scan(ck *c, uint8_t tag, scan_fn fn)
{
    uint8_t p[1] = {tag};
    kv_iter_options io = {.prefix = nb_slice_of(p, 1)};
    kv_iter *it = NULL;
    int rc = kv_iter_new(c->m->kv, &io, &it);
    if (rc != 0)
        return rc;
    for (kv_iter_seek_first(it); kv_iter_valid(it) && rc == 0; kv_iter_next(it))
        rc = fn(c, kv_iter_key(it), kv_iter_value(it));
    if (rc == 0)
        rc = kv_iter_status(it);
    kv_iter_free(it);
    return rc;
}

static int scan_inode(ck *c, nb_slice k, nb_slice v)
{
    if (k.len != 9) {
        problem(c, REPAIR(c), "inode key of %zu bytes", k.len);
        if (REPAIR(c))
            kv_batch_delete(c->b, k);
        return 0;
    }
    uint64_t ino = nb_get_u64be(k.ptr + 1);
    meta__inode in;
    int rc = meta__inode_decode(v, ino, &in);
    if (rc != 0) {
        problem(c, 0, "inode %llu: unreadable record (%s)", (unsigned long long)ino,
                nb_errname(rc));
        return 0;
    }
    iinfo *i = find(c, ino, 1);
    i->mode = in.a.mode;
    i->nlink = in.a.nlink;
    i->size = in.a.size;
    i->parent = in.a.parent;
    i->cookie = in.cookie;
    i->flags = in.flags;
    c->rep->inodes++;
    return 0;
}

static void put_dentry_pair(ck *c, uint64_t parent, nb_slice name, uint64_t ino, uint32_t type,
                            uint64_t cookie)
{
    meta__txn t = {.m = c->m, .b = c->b};
    meta__inode fake;
    memset(&fake, 0, sizeof(fake));
    fake.a.ino = parent;
    fake.cookie = cookie;
    meta__dentry_add(&t, &fake, (const char *)name.ptr, name.len, ino, type);
}

static int scan_dentry(ck *c, nb_slice k, nb_slice v)
{
    if (k.len < 10 || v.len < META_DENTRY_LEN || v.ptr[0] != META_DENTRY_V1) {
        problem(c, REPAIR(c), "malformed dentry record");
        if (REPAIR(c))
            kv_batch_delete(c->b, k);
        return 0;
    }
    uint64_t parent = nb_get_u64be(k.ptr + 1);
    nb_slice name = nb_slice_of(k.ptr + 9, k.len - 9);
    uint32_t type = (uint32_t)v.ptr[1] << 12;
    uint64_t ino = nb_get_u64le(v.ptr + 2), cookie = nb_get_u64le(v.ptr + 10);
    c->rep->dentries++;
    iinfo *p = find(c, parent, 0), *i = find(c, ino, 0);
    uint8_t ck17[17];
    meta__key_cookie(ck17, parent, cookie);
    if (!p || !S_ISDIR(p->mode) || !i) {
        problem(c, REPAIR(c), "dentry %llu/%.*s: %s", (unsigned long long)parent, (int)name.len,
                name.ptr, !i ? "names a missing inode" : "its directory is missing");
        if (REPAIR(c)) {
            kv_batch_delete(c->b, k);
            kv_batch_delete(c->b, nb_slice_of(ck17, 17));
        }
        return 0;
    }
    uint32_t real = meta__type(i->mode);
    if (real != type)
        problem(c, REPAIR(c), "dentry %llu/%.*s: type %o, inode has %o", (unsigned long long)parent,
                (int)name.len, name.ptr, type, real);
    nb_buf tw = NB_BUF_INIT;
    int rc = kv_get(c->m->kv, NULL, nb_slice_of(ck17, 17), &tw);
    int twin_ok = rc == 0 && tw.len >= META_DCOOKIE_HDR && tw.data[0] == META_DCOOKIE_V1 &&
                  nb_get_u64le(tw.data + 2) == ino && tw.len - META_DCOOKIE_HDR == name.len &&
                  memcmp(tw.data + META_DCOOKIE_HDR, name.ptr, name.len) == 0;
    nb_buf_free(&tw);
    if (rc != 0 && rc != NB_ENOTFOUND)
        return rc;
    if (!twin_ok)
        problem(c, REPAIR(c), "dentry %llu/%.*s: readdir entry missing or different",
                (unsigned long long)parent, (int)name.len, name.ptr);
    if ((real != type || !twin_ok) && REPAIR(c))
        put_dentry_pair(c, parent, name, ino, real, cookie);
    i->names++;
    if (cookie > p->max_cookie)
        p->max_cookie = cookie;
    if (S_ISDIR(i->mode)) {
        p->subdirs++;
        i->seen_parent = parent;
    }
    return 0;
}

static int scan_cookie(ck *c, nb_slice k, nb_slice v)
{
    int bad = k.len != 17 || v.len < META_DCOOKIE_HDR || v.ptr[0] != META_DCOOKIE_V1;
    if (!bad) {
        uint64_t parent = nb_get_u64be(k.ptr + 1), cookie = nb_get_u64be(k.ptr + 9);
        uint64_t ino, dc;
        uint32_t type;
        int rc = meta__dentry_get(c->m, NULL, parent, (const char *)v.ptr + META_DCOOKIE_HDR,
                                  v.len - META_DCOOKIE_HDR, &ino, &type, &dc);
        if (rc != 0 && rc != -ENOENT)
            return rc;
        bad = rc != 0 || dc != cookie || ino != nb_get_u64le(v.ptr + 2);
    }
    if (bad) {
        problem(c, REPAIR(c), "readdir entry without its dentry");
        if (REPAIR(c))
            kv_batch_delete(c->b, k);
    }
    return 0;
}

/* Records of one inode ('S', 'X', 'C', 'O', 'o', 'b'). */
static int scan_owned(ck *c, nb_slice k, nb_slice v)
{
    uint8_t tag = k.ptr[0];
    if (k.len < 9) {
        problem(c, REPAIR(c), "record '%c' with a short key", tag);
        if (REPAIR(c))
            kv_batch_delete(c->b, k);
        return 0;
    }
    uint64_t ino = nb_get_u64be(k.ptr + 1);
    iinfo *i = find(c, ino, 0);
    int slices_ok = 1;
    if (tag == META_K_CHUNK) {
        slices_ok = k.len == 13 && v.len >= 1 && v.ptr[0] == META_CHUNK_V1 &&
                    (v.len - 1) % META_SLICE_LEN == 0;
        for (size_t off = 1; slices_ok && off < v.len; off += META_SLICE_LEN) {
            uint64_t id = nb_get_u64le(v.ptr + off) & ~META_SLICE_INLINE;
            if (id > c->max_slice)
                c->max_slice = id;
        }
    }
    const char *why = NULL;
    if (!i)
        why = "belongs to a missing inode";
    else if (!slices_ok)
        why = "is malformed";
    else if (tag == META_K_CHUNK && !S_ISREG(i->mode))
        why = "belongs to an inode that is not a regular file";
    else if (tag == META_K_SYMLINK && !S_ISLNK(i->mode))
        why = "belongs to an inode that is not a symlink";
    else if (tag == META_K_ORPHAN && i->nlink != 0)
        why = "names an inode that still has links";
    if (why) {
        problem(c, REPAIR(c), "record '%c' of inode %llu %s", tag, (unsigned long long)ino, why);
        if (REPAIR(c)) {
            kv_batch_delete(c->b, k);
            if (tag == META_K_CHUNK && slices_ok) {
                meta__txn t = {.m = c->m, .b = c->b};
                for (size_t off = 1; off < v.len; off += META_SLICE_LEN)
                    meta__garbage_add(&t, nb_get_u64le(v.ptr + off), nb_get_u32le(v.ptr + off + 8));
            }
        }
        return 0;
    }
    if (tag == META_K_ORPHAN)
        i->orphan = 1;
    if (tag == META_K_SYMLINK)
        i->has_symlink = 1;
    /* A "never had one" flag over a record that exists would make the
     * inode's destruction skip the record (and leak a chunk's blocks). */
    uint8_t flag = tag == META_K_XATTR    ? META_INO_F_NOXATTR
                   : tag == META_K_CHUNK  ? META_INO_F_NOCHUNK
                   : tag == META_K_OBJREC ? META_INO_F_NOOBJREC
                                          : 0;
    if (i->flags & flag & ~i->clear_flags) {
        problem(c, REPAIR(c), "inode %llu: has a '%c' record but its flags say it never had one",
                (unsigned long long)ino, tag);
        i->clear_flags |= flag;
        i->fix = 1;
    }
    return 0;
}

static int scan_slice_ids(ck *c, nb_slice k, nb_slice v)
{
    (void)v;
    if (k.len >= 9) {
        uint64_t id = nb_get_u64be(k.ptr + 1) & ~META_SLICE_INLINE;
        if (id > c->max_slice)
            c->max_slice = id;
    }
    return 0;
}

static int scan_part(ck *c, nb_slice k, nb_slice v)
{
    if (k.len != 13) {
        problem(c, REPAIR(c), "part key of %zu bytes", k.len);
        if (REPAIR(c))
            kv_batch_delete(c->b, k);
        return 0;
    }
    meta_part pt;
    int rc = meta__part_decode(v, nb_get_u32be(k.ptr + 9), &pt);
    if (rc != 0) {
        problem(c, 0, "part %u of upload %llu is unreadable", nb_get_u32be(k.ptr + 9),
                (unsigned long long)nb_get_u64be(k.ptr + 1));
        return 0;
    }
    for (size_t i = 0; i < pt.nslices; i++) {
        if ((pt.slices[i].id & ~META_SLICE_INLINE) > c->max_slice)
            c->max_slice = pt.slices[i].id & ~META_SLICE_INLINE;
    }
    meta_part_free(&pt);
    return 0;
}

/* S3 version records ('V'): an object version stands for one link of a
 * regular file; a record whose bucket or inode is gone is dropped (the
 * inode then has one name less and, with none left, becomes an orphan). */
static int scan_version(ck *c, nb_slice k, nb_slice v)
{
    int bad = k.len < 1 + 8 + 1 + 8 || k.ptr[k.len - 9] != 0 || v.len <= META_VERSION_HDR ||
              v.len > META_VERSION_HDR + META_VERSION_ID_MAX || v.ptr[0] != META_VERSION_V1;
    uint64_t bucket = bad ? 0 : nb_get_u64be(k.ptr + 1);
    uint64_t ino = bad ? 0 : nb_get_u64le(v.ptr + 2);
    uint64_t seq = bad ? 0 : ~nb_get_u64be(k.ptr + k.len - 8);
    int marker = !bad && (v.ptr[1] & META_VERSION_MARKER);
    iinfo *b = bad ? NULL : find(c, bucket, 0);
    iinfo *i = bad || marker ? NULL : find(c, ino, 0);
    const char *why = bad                                    ? "is malformed"
                      : !b || !S_ISDIR(b->mode)              ? "belongs to a missing bucket"
                      : marker && ino                        ? "is a delete marker with an inode"
                      : !marker && (!i || !S_ISREG(i->mode)) ? "names a missing inode"
                                                             : NULL;
    if (why) {
        problem(c, REPAIR(c), "version record of bucket %llu %s", (unsigned long long)bucket, why);
        if (REPAIR(c))
            kv_batch_delete(c->b, k);
        return 0;
    }
    if (seq > c->max_slice)
        c->max_slice = seq;
    if (i)
        i->names++;
    return 0;
}

static void check_inodes(ck *c, int64_t *inodes, int64_t *bytes, uint64_t *max_ino)
{
    for (size_t s = 0; s < c->cap; s++) {
        iinfo *i = &c->t[s];
        if (!i->ino)
            continue;
        if (i->ino > *max_ino)
            *max_ino = i->ino;
        (*inodes)++;
        if (S_ISREG(i->mode))
            *bytes += (int64_t)i->size;
        if (S_ISDIR(i->mode)) {
            c->rep->dirs++;
            uint32_t want = 2 + i->subdirs;
            if (i->ino != META_ROOT_INO && i->names == 0) {
                problem(c, 0, "directory %llu is not reachable", (unsigned long long)i->ino);
                continue;
            }
            if (i->ino != META_ROOT_INO && i->names > 1)
                problem(c, 0, "directory %llu has %u names", (unsigned long long)i->ino, i->names);
            if (i->nlink != want) {
                problem(c, REPAIR(c), "directory %llu: nlink %u, want %u",
                        (unsigned long long)i->ino, i->nlink, want);
                i->nlink = want;
                i->fix = 1;
            }
            uint64_t par = i->ino == META_ROOT_INO ? META_ROOT_INO : i->seen_parent;
            if (i->parent != par) {
                problem(c, REPAIR(c), "directory %llu: parent %llu, it is in %llu",
                        (unsigned long long)i->ino, (unsigned long long)i->parent,
                        (unsigned long long)par);
                i->parent = par;
                i->fix = 1;
            }
            if (i->max_cookie && i->cookie <= i->max_cookie) {
                problem(c, REPAIR(c), "directory %llu: next cookie %llu is in use",
                        (unsigned long long)i->ino, (unsigned long long)i->cookie);
                i->cookie = i->max_cookie + 1;
                i->fix = 1;
            }
            continue;
        }
        c->rep->files++;
        if (i->orphan && i->names > 0) {
            problem(c, REPAIR(c), "inode %llu is an orphan with %u names",
                    (unsigned long long)i->ino, i->names);
            if (REPAIR(c)) {
                uint8_t k[9];
                meta__key_ino(k, META_K_ORPHAN, i->ino);
                kv_batch_delete(c->b, nb_slice_of(k, 9));
            }
        }
        if (S_ISLNK(i->mode) && !i->has_symlink)
            problem(c, 0, "symlink %llu has no target", (unsigned long long)i->ino);
        if (i->names == 0 && !i->orphan) {
            problem(c, REPAIR(c), "inode %llu has no name and is not an orphan",
                    (unsigned long long)i->ino);
            if (REPAIR(c)) {
                meta__txn t = {.m = c->m, .b = c->b};
                meta__orphan_put(&t, i->ino, meta__now());
            }
            i->nlink = 0;
            i->fix = 1;
        } else if (i->nlink != i->names) {
            problem(c, REPAIR(c), "inode %llu: nlink %u, names %u", (unsigned long long)i->ino,
                    i->nlink, i->names);
            i->nlink = i->names;
            i->fix = 1;
        }
    }
}

static int rewrite_fixed(ck *c)
{
    meta__txn t = {.m = c->m, .b = c->b};
    for (size_t s = 0; s < c->cap; s++) {
        iinfo *i = &c->t[s];
        if (!i->ino || !i->fix)
            continue;
        meta__inode in;
        int rc = meta__inode_get(c->m, NULL, i->ino, &in);
        if (rc != 0)
            return rc;
        in.a.nlink = i->nlink;
        in.a.parent = i->parent;
        in.cookie = i->cookie;
        in.flags &= (uint8_t)~i->clear_flags;
        meta__inode_put(&t, &in);
    }
    return 0;
}

/* S3 users: the key is a valid access key and the value decodes. A bad
 * record is reported, not repaired: deleting a user is the operator's
 * call (`nebula admin user remove`). */
static int scan_user(ck *c, nb_slice k, nb_slice v)
{
    char ak[META_USER_KEY_MAX + 1];
    size_t n = k.len - 1;
    if (n > META_USER_KEY_MAX)
        n = META_USER_KEY_MAX;
    memcpy(ak, k.ptr + 1, n);
    ak[n] = 0;
    meta_user u;
    if (k.len - 1 > META_USER_KEY_MAX || memchr(k.ptr + 1, 0, k.len - 1) ||
        meta_user_key_check(ak) != 0)
        problem(c, 0, "user record with a bad access key of %zu bytes", k.len - 1);
    else if (meta_user_decode(nb_slice_of(k.ptr + 1, k.len - 1), v, &u) != 0)
        problem(c, 0, "user %s: record unreadable", ak);
    else
        meta_user_free(&u);
    return 0;
}

int meta_check(meta *m, unsigned flags, meta_check_log log, void *arg, meta_check_report *out)
{
    memset(out, 0, sizeof(*out));
    ck c = {.m = m, .flags = flags, .log = log, .arg = arg, .rep = out};
    c.b = kv_batch_new();
    int rc = scan(&c, META_K_INODE, scan_inode);
    if (rc == 0 && !find(&c, META_ROOT_INO, 0)) {
        problem(&c, 0, "the root directory is missing");
        rc = NB_ECORRUPT;
    }
    static const uint8_t owned[] = {META_K_SYMLINK, META_K_XATTR,  META_K_CHUNK,
                                    META_K_ORPHAN,  META_K_OBJREC, META_K_BUCKET};
    for (size_t i = 0; rc == 0 && i < sizeof(owned); i++)
        rc = scan(&c, owned[i], scan_owned);
    if (rc == 0)
        rc = scan(&c, META_K_DENTRY, scan_dentry);
    if (rc == 0)
        rc = scan(&c, META_K_DCOOKIE, scan_cookie);
    if (rc == 0)
        rc = scan(&c, META_K_VERSION, scan_version);
    if (rc == 0)
        rc = scan(&c, META_K_GARBAGE, scan_slice_ids);
    if (rc == 0)
        rc = scan(&c, META_K_UPLOAD, scan_slice_ids);
    if (rc == 0)
        rc = scan(&c, META_K_PART, scan_part);
    if (rc == 0)
        rc = scan(&c, META_K_USER, scan_user);
    int64_t inodes = 0, bytes = 0;
    uint64_t max_ino = 0;
    if (rc == 0) {
        check_inodes(&c, &inodes, &bytes, &max_ino);
        if (REPAIR(&c))
            rc = rewrite_fixed(&c);
    }
    /* Ids: every id in use must be below the allocator's mark. */
    uint64_t hi[2] = {meta_id_high(m, META_ID_INODE), meta_id_high(m, META_ID_SLICE)};
    uint64_t need[2] = {max_ino + 1, c.max_slice + 1};
    for (int k = 0; rc == 0 && k < 2; k++) {
        if (need[k] <= hi[k])
            continue;
        problem(&c, REPAIR(&c), "%s ids up to %llu in use, allocator mark %llu",
                k ? "slice" : "inode", (unsigned long long)need[k] - 1, (unsigned long long)hi[k]);
        if (REPAIR(&c)) {
            pthread_mutex_lock(&m->id_mu);
            uint8_t key[2] = {META_K_IDS, (uint8_t)k}, v[9];
            v[0] = META_IDS_V1;
            nb_put_u64le(v + 1, need[k]);
            kv_batch_put(c.b, nb_slice_of(key, 2), nb_slice_of(v, 9));
            if (m->id_next[k] < need[k])
                m->id_next[k] = m->id_limit[k] = need[k];
            pthread_mutex_unlock(&m->id_mu);
        }
    }
    /* Usage: the sums must match what exists. */
    meta_statfs st;
    meta_statfs_get(m, &st);
    int usage_fix = 0;
    if (rc == 0 && (st.inodes_used != (uint64_t)inodes || st.bytes_used != (uint64_t)bytes)) {
        problem(&c, REPAIR(&c),
                "usage counters say %llu inodes and %llu bytes, found %lld and %lld",
                (unsigned long long)st.inodes_used, (unsigned long long)st.bytes_used,
                (long long)inodes, (long long)bytes);
        usage_fix = REPAIR(&c);
    }
    if (rc == 0 && usage_fix) {
        for (uint32_t s = 0; s < META_NSTRIPES; s++) {
            uint8_t key[3] = {META_K_USAGE, (uint8_t)(s >> 8), (uint8_t)s};
            kv_batch_delete(c.b, nb_slice_of(key, 3));
        }
        uint8_t key[3] = {META_K_USAGE, 0, 0}, v[17];
        v[0] = META_USAGE_V1;
        nb_put_u64le(v + 1, (uint64_t)inodes);
        nb_put_u64le(v + 9, (uint64_t)bytes);
        kv_batch_put(c.b, nb_slice_of(key, 3), nb_slice_of(v, 17));
    }
    if (rc == 0 && kv_batch_count(c.b) > 0)
        rc = kv_write(m->kv, c.b, KV_SYNC);
    if (rc == 0 && usage_fix) {
        for (uint32_t s = 0; s < META_NSTRIPES; s++) {
            atomic_store(&m->use_inodes[s], s ? 0 : inodes);
            atomic_store(&m->use_bytes[s], s ? 0 : bytes);
        }
    }
    kv_batch_free(c.b);
    free(c.t);
    return rc;
}
