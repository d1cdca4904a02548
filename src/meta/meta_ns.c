/*
 * meta_ns.c — namespace operations: lookup, create/mknod/mkdir/symlink,
 * link, unlink, rmdir, rename, setattr, readlink, tmpfile/install.
 *
 * Each mutation locks the inodes it reads-and-writes (parents and
 * children) through one meta__txn, checks errors in the order Linux's VFS
 * does (so callers see the same errno as on ext4 or tmpfs), and commits
 * one kv batch. Children are found before locking; after locking the
 * dentry is read again and the operation restarts if it changed.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/coding.h"
#include "common/log.h"
#include "meta/meta_int.h"

/* A directory the caller may search: -ENOENT, -ENOTDIR, -EACCES. */
static int get_dir(meta *m, const meta_cred *c, uint64_t ino, meta__inode *out)
{
    int rc = meta__inode_get(m, NULL, ino, out);
    if (rc != 0)
        return rc;
    if (!S_ISDIR(out->a.mode))
        return -ENOTDIR;
    return meta__perm(c, &out->a, X_OK);
}

/* Search permission is never refused to these callers (root, or no
 * credentials: vfs-internal and S3-authorized calls). */
static bool privileged(const meta_cred *c)
{
    return !c || c->uid == 0;
}

/* The inode name points to in parent, for a name that is not "." or "..".
 * A dentry exists only in a directory, so when the caller may search any
 * directory the directory's own record is read only to explain a miss
 * (ENOTDIR, ENOENT of parent): one kv read fewer for lookup and unlink. */
static int name_get(meta *m, const meta_cred *c, uint64_t parent, const char *name, size_t len,
                    uint64_t *ino, uint64_t *cookie)
{
    meta__inode dir;
    uint32_t type;
    int rc;
    if (!privileged(c)) {
        rc = get_dir(m, c, parent, &dir);
        if (rc != 0)
            return rc;
        return meta__dentry_get(m, NULL, parent, name, len, ino, &type, cookie);
    }
    rc = meta__dentry_get(m, NULL, parent, name, len, ino, &type, cookie);
    if (rc != 0) {
        int drc = get_dir(m, c, parent, &dir);
        if (drc != 0)
            return drc;
    }
    return rc;
}

static void touch_dir(meta__inode *dir, int64_t now)
{
    dir->a.mtime_ns = dir->a.ctime_ns = now;
}

int meta_lookup(meta *m, const meta_cred *c, uint64_t parent, const char *name, meta_attr *out)
{
    size_t len;
    int rc = meta__check_name(name, &len);
    if (rc != 0)
        return rc;
    meta__inode dir, child;
    uint64_t ino;
    if (meta__is_dot(name, len)) {
        rc = get_dir(m, c, parent, &dir);
        if (rc != 0)
            return rc;
        ino = len == 1 ? parent : dir.a.parent;
    } else {
        rc = name_get(m, c, parent, name, len, &ino, NULL);
        if (rc != 0)
            return rc;
    }
    rc = meta__inode_get(m, NULL, ino, &child);
    if (rc == 0 && out)
        *out = child.a;
    return rc;
}

/* ---- creation ---- */

typedef struct mk_args {
    uint32_t mode;
    uint64_t rdev;
    const char *target; /* symlinks */
    int open;           /* count an open of the new inode */
    int tmpfile;        /* no name: nlink 0, orphan */
    uint8_t rec_tag;    /* if not 0, also put rec under (rec_tag, ino) */
    nb_slice rec;
} mk_args;

static int check_space(meta *m, int64_t inodes)
{
    meta_statfs st;
    if (!m->opts.max_inodes || inodes <= 0)
        return 0;
    meta_statfs_get(m, &st);
    return st.inodes_used + (uint64_t)inodes > m->opts.max_inodes ? -ENOSPC : 0;
}

/* What creation reads: the directory, and that name is free in it. */
static int make_reads(meta *m, const meta_cred *c, uint64_t parent, const char *name, size_t len,
                      int tmpfile, meta__inode *dir)
{
    int rc = get_dir(m, c, parent, dir);
    if (rc == 0 && !tmpfile) {
        uint64_t x;
        uint32_t xt;
        if (meta__is_dot(name, len))
            rc = -EEXIST;
        else
            rc = meta__dentry_get(m, NULL, parent, name, len, &x, &xt, NULL);
        rc = rc == -ENOENT ? 0 : rc == 0 ? -EEXIST : rc;
    }
    return rc;
}

static int do_make(meta *m, const meta_cred *c, uint64_t parent, const char *name,
                   const mk_args *ma, meta_attr *out)
{
    size_t len = 0, tlen = 0;
    int rc = 0;
    if (!ma->tmpfile) {
        rc = meta__check_name(name, &len);
        if (rc != 0)
            return rc;
    }
    uint32_t type = meta__type(ma->mode);
    if (type == 0)
        type = S_IFREG;
    switch (type) {
    case S_IFREG:
    case S_IFDIR:
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFLNK:
        break;
    case S_IFCHR:
    case S_IFBLK:
        if (c && c->uid != 0)
            return -EPERM;
        break;
    default:
        return -EINVAL;
    }
    if (type == S_IFLNK) {
        tlen = strlen(ma->target);
        if (tlen == 0)
            return -ENOENT;
        if (tlen > META_SYMLINK_MAX)
            return -ENAMETOOLONG;
    }
    /* Read before locking; again under the lock only if a commit in this
     * directory's stripe came between (meta__gens). */
    meta__gens g = {0};
    meta__gens_note(m, &g, parent);
    meta__inode dir, in;
    rc = make_reads(m, c, parent, name, len, ma->tmpfile, &dir);
    meta__txn t;
    meta__txn_init(&t, m);
    meta__txn_lock(&t, &parent, 1);
    if (!meta__gens_same(m, &g))
        rc = make_reads(m, c, parent, name, len, ma->tmpfile, &dir);
    if (rc == 0)
        rc = meta__perm(c, &dir.a, W_OK | X_OK);
    if (rc == 0 && dir.a.nlink == 0)
        rc = -ENOENT;
    if (rc == 0 && type == S_IFDIR && dir.a.nlink >= META_LINK_MAX)
        rc = -EMLINK;
    if (rc == 0)
        rc = check_space(m, 1);
    uint64_t ino = 0;
    if (rc == 0)
        rc = meta__alloc_ino(m, &ino);
    if (rc != 0)
        goto out;

    int64_t now = meta__now();
    memset(&in, 0, sizeof(in));
    in.a.ino = ino;
    in.a.mode = type | (ma->mode & 07777);
    in.a.uid = c ? c->uid : 0;
    in.a.gid = c ? c->gid : 0;
    if (dir.a.mode & S_ISGID) {
        in.a.gid = dir.a.gid;
        if (type == S_IFDIR)
            in.a.mode |= S_ISGID;
    }
    if (type != S_IFDIR && (in.a.mode & S_ISGID) && c && c->uid != 0 &&
        !meta__in_group(c, in.a.gid))
        in.a.mode &= ~(uint32_t)S_ISGID;
    in.a.nlink = ma->tmpfile ? 0 : type == S_IFDIR ? 2 : 1;
    in.a.size = type == S_IFLNK ? tlen : 0;
    in.a.atime_ns = in.a.mtime_ns = in.a.ctime_ns = in.a.btime_ns = now;
    in.a.rdev = (type == S_IFCHR || type == S_IFBLK) ? ma->rdev : 0;
    in.a.generation = 1;
    in.a.parent = parent;
    in.cookie = META_COOKIE_FIRST;
    in.flags = META_INO_F_NOXATTR | META_INO_F_NOCHUNK;
    if (ma->rec_tag != META_K_OBJREC)
        in.flags |= META_INO_F_NOOBJREC;
    meta__inode_put(&t, &in);
    if (type == S_IFLNK) {
        uint8_t k[9];
        meta__key_ino(k, META_K_SYMLINK, ino);
        kv_batch_put(t.b, nb_slice_of(k, 9), nb_slice_of(ma->target, tlen));
    }
    if (ma->rec_tag) {
        uint8_t k[9];
        meta__key_ino(k, ma->rec_tag, ino);
        kv_batch_put(t.b, nb_slice_of(k, 9), ma->rec);
    }
    if (ma->tmpfile) {
        meta__orphan_put(&t, ino, now);
    } else {
        meta__dentry_add(&t, &dir, name, len, ino, type);
        touch_dir(&dir, now);
        if (type == S_IFDIR)
            dir.a.nlink++;
        meta__inode_put(&t, &dir);
    }
    t.d_inodes = 1;
    rc = meta__txn_commit(&t, 0);
    if (rc == 0 && ma->open)
        meta__open_add(m, ino);
    if (rc == 0 && ma->open && ma->tmpfile)
        meta__open_mark_orphan(m, ino); /* counted only now */
    if (rc == 0 && out)
        *out = in.a;
out:
    meta__txn_end(&t);
    return rc;
}

int meta_mknod(meta *m, const meta_cred *c, uint64_t parent, const char *name, uint32_t mode,
               uint64_t rdev, meta_attr *out)
{
    if (S_ISLNK(mode))
        return -EINVAL;
    mk_args ma = {.mode = mode, .rdev = rdev};
    return do_make(m, c, parent, name, &ma, out);
}

int meta_mkdir(meta *m, const meta_cred *c, uint64_t parent, const char *name, uint32_t mode,
               meta_attr *out)
{
    mk_args ma = {.mode = S_IFDIR | (mode & 07777)};
    return do_make(m, c, parent, name, &ma, out);
}

int meta__mkdir_rec(meta *m, const meta_cred *c, uint64_t parent, const char *name, uint32_t mode,
                    uint8_t tag, nb_slice rec, meta_attr *out)
{
    mk_args ma = {.mode = S_IFDIR | (mode & 07777), .rec_tag = tag, .rec = rec};
    return do_make(m, c, parent, name, &ma, out);
}

int meta_create(meta *m, const meta_cred *c, uint64_t parent, const char *name, uint32_t mode,
                meta_attr *out)
{
    mk_args ma = {.mode = S_IFREG | (mode & 07777), .open = 1};
    return do_make(m, c, parent, name, &ma, out);
}

int meta_symlink(meta *m, const meta_cred *c, uint64_t parent, const char *name, const char *target,
                 meta_attr *out)
{
    mk_args ma = {.mode = S_IFLNK | 0777, .target = target};
    return do_make(m, c, parent, name, &ma, out);
}

int meta_tmpfile(meta *m, const meta_cred *c, uint64_t parent, uint32_t mode, meta_attr *out)
{
    mk_args ma = {.mode = S_IFREG | (mode & 07777), .open = 1, .tmpfile = 1};
    return do_make(m, c, parent, NULL, &ma, out);
}

/* ---- link ---- */

int meta_link(meta *m, const meta_cred *c, uint64_t ino, uint64_t parent, const char *name,
              meta_attr *out)
{
    size_t len;
    int rc = meta__check_name(name, &len);
    if (rc != 0)
        return rc;
    meta__txn t;
    meta__txn_init(&t, m);
    uint64_t lk[2] = {ino, parent};
    meta__txn_lock(&t, lk, 2);
    meta__inode dir, in;
    rc = make_reads(m, c, parent, name, len, 0, &dir);
    if (rc == 0)
        rc = meta__inode_get(m, NULL, ino, &in);
    if (rc == 0 && m->opts.protected_hardlinks && !meta__is_owner(c, &in.a)) {
        /* Linux's may_linkat(): only "safe" sources for non-owners. */
        uint32_t md = in.a.mode;
        if (!S_ISREG(md) || (md & S_ISUID) || (md & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) ||
            meta__perm(c, &in.a, R_OK | W_OK) != 0)
            rc = -EPERM;
    }
    if (rc == 0)
        rc = meta__perm(c, &dir.a, W_OK | X_OK);
    if (rc == 0 && S_ISDIR(in.a.mode))
        rc = -EPERM;
    if (rc == 0 && (in.a.nlink == 0 || dir.a.nlink == 0))
        rc = -ENOENT;
    if (rc == 0 && in.a.nlink >= META_LINK_MAX)
        rc = -EMLINK;
    if (rc == 0) {
        int64_t now = meta__now();
        meta__dentry_add(&t, &dir, name, len, ino, meta__type(in.a.mode));
        touch_dir(&dir, now);
        meta__inode_put(&t, &dir);
        in.a.nlink++;
        in.a.ctime_ns = now;
        meta__inode_put(&t, &in);
        rc = meta__txn_commit(&t, 0);
        if (rc == 0 && out)
            *out = in.a;
    }
    meta__txn_end(&t);
    return rc;
}

/* ---- unlink / rmdir ---- */

static int do_remove(meta *m, const meta_cred *c, uint64_t parent, const char *name, int isdir)
{
    size_t len;
    int rc = meta__check_name(name, &len);
    if (rc != 0)
        return rc;
    for (;;) {
        meta__inode dir, in;
        if (meta__is_dot(name, len)) {
            rc = get_dir(m, c, parent, &dir);
            if (rc != 0)
                return rc;
            return !isdir ? -EISDIR : len == 1 ? -EINVAL : -ENOTEMPTY;
        }
        uint64_t ino, cookie;
        uint32_t type;
        meta__gens g = {0};
        meta__gens_note(m, &g, parent);
        rc = name_get(m, c, parent, name, len, &ino, &cookie);
        if (rc != 0)
            return rc;
        /* The reads the checks need, before locking (meta__gens). */
        meta__gens_note(m, &g, ino);
        int pre = get_dir(m, c, parent, &dir);
        if (pre == 0)
            pre = meta__inode_get(m, NULL, ino, &in);

        meta__txn t;
        meta__txn_init(&t, m);
        uint64_t lk[2] = {parent, ino};
        meta__txn_lock(&t, lk, 2);
        if (meta__gens_same(m, &g)) {
            rc = pre;
        } else {
            uint64_t ino2 = 0;
            rc = get_dir(m, c, parent, &dir);
            if (rc == 0)
                rc = meta__dentry_get(m, NULL, parent, name, len, &ino2, &type, &cookie);
            if (rc == 0 && ino2 != ino) {
                meta__txn_end(&t);
                continue; /* the name changed before we locked: start over */
            }
            if (rc == 0)
                rc = meta__inode_get(m, NULL, ino, &in);
        }
        if (rc == 0)
            rc = meta__perm(c, &dir.a, W_OK | X_OK);
        if (rc == 0)
            rc = meta__sticky_ok(c, &dir.a, &in.a);
        if (rc == 0 && !isdir && S_ISDIR(in.a.mode))
            rc = -EISDIR;
        if (rc == 0 && isdir && !S_ISDIR(in.a.mode))
            rc = -ENOTDIR;
        if (rc == 0 && isdir && ino == META_ROOT_INO)
            rc = -EBUSY;
        if (rc == 0 && isdir) {
            rc = meta__dir_empty(m, ino);
            rc = rc == 1 ? 0 : rc == 0 ? -ENOTEMPTY : rc;
        }
        if (rc == 0) {
            int64_t now = meta__now();
            meta__dentry_del(&t, parent, name, len, cookie);
            touch_dir(&dir, now);
            if (isdir)
                dir.a.nlink--;
            meta__inode_put(&t, &dir);
            rc = meta__drop_link(&t, &in, now);
        }
        if (rc == 0)
            rc = meta__txn_commit(&t, 0);
        meta__txn_end(&t);
        return rc;
    }
}

int meta_unlink(meta *m, const meta_cred *c, uint64_t parent, const char *name)
{
    return do_remove(m, c, parent, name, 0);
}

int meta_rmdir(meta *m, const meta_cred *c, uint64_t parent, const char *name)
{
    return do_remove(m, c, parent, name, 1);
}

/* ---- rename ---- */

/* 1 if anc is dir or one of its ancestors, 0 if not, <0 on error. Parent
 * pointers of directories only change under rename_mu, which the caller
 * holds. */
static int is_ancestor(meta *m, uint64_t anc, uint64_t dir)
{
    for (int depth = 0; depth < 100000; depth++) {
        if (dir == anc)
            return 1;
        if (dir == META_ROOT_INO)
            return 0;
        meta__inode in;
        int rc = meta__inode_get(m, NULL, dir, &in);
        if (rc != 0)
            return rc == -ENOENT ? 0 : rc;
        dir = in.a.parent;
    }
    return NB_CORRUPT("directory parent chain loops at %llu", (unsigned long long)dir);
}

/* Rewrites the dentry parent/name in place (same cookie) to point at ino. */
static void dentry_set(meta__txn *t, uint64_t parent, const char *name, size_t len, uint64_t cookie,
                       uint64_t ino, uint32_t type)
{
    meta__inode fake;
    memset(&fake, 0, sizeof(fake));
    fake.a.ino = parent;
    fake.cookie = cookie;
    meta__dentry_add(t, &fake, name, len, ino, type);
}

typedef struct rn_state {
    meta__inode op, np, src, dst;
    meta__inode *npp; /* &op when both parents are the same */
    uint64_t src_cookie, dst_cookie;
    int have_dst;
} rn_state;

static int rename_locked(meta *m, const meta_cred *c, meta__txn *t, rn_state *s, const char *name,
                         size_t len, const char *newname, size_t newlen, unsigned flags)
{
    meta__inode *op = &s->op, *np = s->npp, *src = &s->src, *dst = &s->dst;
    int xchg = (flags & META_RENAME_EXCHANGE) != 0;
    int src_dir = S_ISDIR(src->a.mode), dst_dir = s->have_dst && S_ISDIR(dst->a.mode);
    int rc;
    if ((flags & META_RENAME_NOREPLACE) && s->have_dst)
        return -EEXIST;
    if (xchg && !s->have_dst)
        return -ENOENT;
    if (op->a.ino != np->a.ino) {
        /* Source must not be an ancestor of the target's directory; the
         * target must not be an ancestor of the source's directory. */
        rc = is_ancestor(m, src->a.ino, np->a.ino);
        if (rc != 0)
            return rc < 0 ? rc : -EINVAL;
        if (s->have_dst) {
            rc = is_ancestor(m, dst->a.ino, op->a.ino);
            if (rc != 0)
                return rc < 0 ? rc : xchg ? -EINVAL : -ENOTEMPTY;
        }
    }
    if (s->have_dst && src->a.ino == dst->a.ino)
        return 0; /* two names of one inode: nothing to do */
    if ((rc = meta__perm(c, &op->a, W_OK | X_OK)) != 0)
        return rc;
    if ((rc = meta__sticky_ok(c, &op->a, &src->a)) != 0)
        return rc;
    if ((rc = meta__perm(c, &np->a, W_OK | X_OK)) != 0)
        return rc;
    if (s->have_dst) {
        if ((rc = meta__sticky_ok(c, &np->a, &dst->a)) != 0)
            return rc;
        if (!xchg && src_dir && !dst_dir)
            return -ENOTDIR;
        if (!xchg && !src_dir && dst_dir)
            return -EISDIR;
    }
    if (op->a.ino != np->a.ino) {
        if (src_dir && (rc = meta__perm(c, &src->a, W_OK)) != 0)
            return rc;
        if (xchg && dst_dir && (rc = meta__perm(c, &dst->a, W_OK)) != 0)
            return rc;
        if (src_dir && !dst_dir && np->a.nlink >= META_LINK_MAX)
            return -EMLINK;
        if (xchg && dst_dir && !src_dir && op->a.nlink >= META_LINK_MAX)
            return -EMLINK;
    }
    if (!xchg && dst_dir) {
        rc = meta__dir_empty(m, dst->a.ino);
        if (rc != 1)
            return rc == 0 ? -ENOTEMPTY : rc;
    }
    if (np->a.nlink == 0)
        return -ENOENT;

    int64_t now = meta__now();
    uint32_t st = meta__type(src->a.mode);
    if (xchg) {
        uint32_t dt = meta__type(dst->a.mode);
        dentry_set(t, op->a.ino, name, len, s->src_cookie, dst->a.ino, dt);
        dentry_set(t, np->a.ino, newname, newlen, s->dst_cookie, src->a.ino, st);
        if (op->a.ino != np->a.ino) {
            if (src_dir) {
                op->a.nlink--;
                np->a.nlink++;
                src->a.parent = np->a.ino;
            }
            if (dst_dir) {
                np->a.nlink--;
                op->a.nlink++;
                dst->a.parent = op->a.ino;
            }
        }
        dst->a.ctime_ns = now;
        meta__inode_put(t, dst);
    } else {
        if (s->have_dst) {
            meta__dentry_del(t, np->a.ino, newname, newlen, s->dst_cookie);
            if (dst_dir)
                np->a.nlink--;
            rc = meta__drop_link(t, dst, now);
            if (rc != 0)
                return rc;
        }
        meta__dentry_del(t, op->a.ino, name, len, s->src_cookie);
        meta__dentry_add(t, np, newname, newlen, src->a.ino, st);
        if (src_dir && op->a.ino != np->a.ino) {
            op->a.nlink--;
            np->a.nlink++;
            src->a.parent = np->a.ino;
        }
    }
    src->a.ctime_ns = now;
    meta__inode_put(t, src);
    touch_dir(op, now);
    meta__inode_put(t, op);
    if (np != op) {
        touch_dir(np, now);
        meta__inode_put(t, np);
    }
    return meta__txn_commit(t, 0);
}

int meta_rename(meta *m, const meta_cred *c, uint64_t parent, const char *name, uint64_t newparent,
                const char *newname, unsigned flags)
{
    if (flags & ~(META_RENAME_NOREPLACE | META_RENAME_EXCHANGE))
        return -EINVAL;
    if ((flags & META_RENAME_NOREPLACE) && (flags & META_RENAME_EXCHANGE))
        return -EINVAL;
    size_t len, newlen;
    int rc = meta__check_name(name, &len);
    if (rc == 0)
        rc = meta__check_name(newname, &newlen);
    if (rc != 0)
        return rc;
    for (;;) {
        rn_state s;
        memset(&s, 0, sizeof(s));
        /* Everything read before locking, again under the locks only if a
         * commit under one of their stripes came between (meta__gens). */
        meta__gens g = {0};
        meta__gens_note(m, &g, parent);
        meta__gens_note(m, &g, newparent);
        rc = get_dir(m, c, parent, &s.op);
        if (rc == 0)
            rc = get_dir(m, c, newparent, &s.np);
        if (rc != 0)
            return rc;
        if (meta__is_dot(name, len))
            return -EBUSY;
        if (meta__is_dot(newname, newlen))
            return (flags & META_RENAME_NOREPLACE) ? -EEXIST : -EBUSY;
        uint64_t sino, dino = 0;
        uint32_t stype, dtype = 0;
        rc = meta__dentry_get(m, NULL, parent, name, len, &sino, &stype, &s.src_cookie);
        if (rc != 0)
            return rc;
        rc = meta__dentry_get(m, NULL, newparent, newname, newlen, &dino, &dtype, &s.dst_cookie);
        if (rc == -ENOENT)
            dino = 0;
        else if (rc != 0)
            return rc;
        meta__gens_note(m, &g, sino);
        if (dino)
            meta__gens_note(m, &g, dino);
        int pre = meta__inode_get(m, NULL, sino, &s.src);
        if (pre == 0 && dino)
            pre = meta__inode_get(m, NULL, dino, &s.dst);

        meta__txn t;
        meta__txn_init(&t, m);
        if (parent != newparent && (S_ISDIR(stype) || (dino && S_ISDIR(dtype)))) {
            pthread_mutex_lock(&m->rename_mu);
            t.rename_locked = 1;
        }
        uint64_t lk[4] = {parent, newparent, sino, dino};
        meta__txn_lock(&t, lk, 4);
        if (meta__gens_same(m, &g)) {
            rc = pre;
        } else {
            uint64_t s2 = 0, d2 = 0;
            rc = get_dir(m, c, parent, &s.op);
            if (rc == 0)
                rc = get_dir(m, c, newparent, &s.np);
            if (rc == 0)
                rc = meta__dentry_get(m, NULL, parent, name, len, &s2, &stype, &s.src_cookie);
            if (rc == 0) {
                rc = meta__dentry_get(m, NULL, newparent, newname, newlen, &d2, &dtype,
                                      &s.dst_cookie);
                if (rc == -ENOENT) {
                    d2 = 0;
                    rc = 0;
                }
            }
            if (rc == 0 && (s2 != sino || d2 != dino)) {
                meta__txn_end(&t);
                continue;
            }
            if (rc == 0)
                rc = meta__inode_get(m, NULL, sino, &s.src);
            if (rc == 0 && dino)
                rc = meta__inode_get(m, NULL, dino, &s.dst);
        }
        s.npp = parent == newparent ? &s.op : &s.np;
        s.have_dst = dino != 0;
        if (rc == 0)
            rc = rename_locked(m, c, &t, &s, name, len, newname, newlen, flags);
        meta__txn_end(&t);
        return rc;
    }
}

/* ---- install (S3 PUT of a whole object) ---- */

int meta_install(meta *m, const meta_cred *c, uint64_t ino, uint64_t parent, const char *name,
                 unsigned flags, nb_slice objrec, meta_attr *out)
{
    return meta__install(m, c, ino, parent, name, flags, objrec, 0, 0, NULL, NULL, out);
}

int meta__txn_lock_entry(meta__txn *t, meta *m, uint64_t parent, const char *name, size_t len,
                         const uint64_t *locks, int n, uint64_t *ino, uint32_t *type,
                         uint64_t *cookie)
{
    NB_ASSERT(n <= 5);
    for (;;) {
        uint64_t old = 0, lk[6];
        int rc =
            parent ? meta__dentry_get(m, NULL, parent, name, len, &old, type, cookie) : -ENOENT;
        if (rc != 0 && rc != -ENOENT)
            return rc;
        memcpy(lk, locks, (size_t)n * sizeof *lk);
        lk[n] = old = rc == 0 ? old : 0;
        meta__txn_init(t, m);
        meta__txn_lock(t, lk, n + 1);
        rc = parent ? meta__dentry_get(m, NULL, parent, name, len, ino, type, cookie) : -ENOENT;
        if (rc == -ENOENT) {
            *ino = 0;
            rc = 0;
        }
        if (rc == 0 && *ino == old)
            return 0;
        meta__txn_end(t);
        if (rc != 0)
            return rc;
        /* the name changed before we locked: start over */
    }
}

int meta__install(meta *m, const meta_cred *c, uint64_t ino, uint64_t parent, const char *name,
                  unsigned flags, nb_slice objrec, uint64_t extra_lock, uint64_t extra_lock2,
                  meta__install_fn extra, void *arg, meta_attr *out)
{
    size_t len;
    int rc = meta__check_name(name, &len);
    if (rc != 0)
        return rc;
    if (meta__is_dot(name, len))
        return -EEXIST;
    uint64_t old = 0, cookie = 0, seq = 0;
    uint32_t otype = 0;
    meta__txn t;
    uint64_t lk[4] = {ino, parent, extra_lock, extra_lock2};
    rc = meta__txn_lock_entry(&t, m, parent, name, len, lk, 4, &old, &otype, &cookie);
    if (rc != 0)
        return rc;
    meta__inode dir, in, prev;
    rc = get_dir(m, c, parent, &dir);
    if (rc == 0)
        rc = meta__inode_get(m, NULL, ino, &in);
    if (rc == 0 && (in.a.nlink != 0 || !S_ISREG(in.a.mode)))
        rc = -EINVAL;
    if (rc == 0)
        rc = meta__perm(c, &dir.a, W_OK | X_OK);
    if (rc == 0 && dir.a.nlink == 0)
        rc = -ENOENT;
    if (rc == 0 && old) {
        rc = meta__inode_get(m, NULL, old, &prev);
        if (rc == 0 && !(flags & META_INSTALL_REPLACE))
            rc = -EEXIST;
        if (rc == 0 && S_ISDIR(prev.a.mode))
            rc = -EISDIR;
        if (rc == 0)
            rc = meta__sticky_ok(c, &dir.a, &prev.a);
    }
    if (rc == 0 && extra)
        rc = extra(&t, arg);
    int64_t now = meta__now();
    if (rc == 0 && old) {
        meta__dentry_del(&t, parent, name, len, cookie);
        /* With HOOK_OLD the hook kept or dropped the old file's link. */
        if (!(flags & META__INSTALL_HOOK_OLD))
            rc = meta__drop_link(&t, &prev, now);
    }
    if (rc == 0) {
        meta__dentry_add(&t, &dir, name, len, ino, S_IFREG);
        touch_dir(&dir, now);
        meta__inode_put(&t, &dir);
        in.a.nlink = 1;
        in.a.ctime_ns = now;
        in.a.parent = parent;
        if (objrec.ptr)
            in.flags &= (uint8_t)~META_INO_F_NOOBJREC;
        meta__inode_put(&t, &in);
        uint8_t k[9];
        meta__key_ino(k, META_K_ORPHAN, ino);
        kv_batch_delete(t.b, nb_slice_of(k, 9));
        if (objrec.ptr) {
            meta__key_ino(k, META_K_OBJREC, ino);
            kv_batch_put(t.b, nb_slice_of(k, 9), objrec);
        }
        rc = meta__txn_commit_seq(&t, &seq);
        if (rc == 0 && out)
            *out = in.a;
    }
    meta__txn_end(&t);
    /* Durable before we return, but synced after the directory's lock is
     * released: concurrent installs into one directory (PUTs into one
     * bucket) share a WAL sync. Until then others may already see it. */
    if (rc == 0)
        rc = kv_sync_to(m->kv, seq);
    return rc;
}

/* ---- readlink ---- */

int meta_readlink(meta *m, uint64_t ino, nb_buf *out)
{
    uint8_t k[9];
    meta__key_ino(k, META_K_SYMLINK, ino);
    nb_buf_reset(out);
    int rc = kv_get(m->kv, NULL, nb_slice_of(k, 9), out);
    if (rc == NB_ENOTFOUND) {
        meta_attr a;
        rc = meta_getattr(m, ino, &a);
        return rc == 0 ? -EINVAL : rc;
    }
    return rc;
}

/* ---- setattr ---- */

int meta_setattr(meta *m, const meta_cred *c, uint64_t ino, const meta_sattr *sa, meta_attr *out)
{
    meta__txn t;
    meta__txn_init(&t, m);
    meta__txn_lock(&t, &ino, 1);
    meta__inode in;
    int rc = meta__inode_get(m, NULL, ino, &in);
    if (rc != 0)
        goto out;
    meta_attr *a = &in.a;
    uint32_t v = sa->valid;
    int root = !c || c->uid == 0;
    int64_t now = meta__now();
    int changed = 0;

    if (v & (META_SET_UID | META_SET_GID)) {
        uint32_t nuid = (v & META_SET_UID) ? sa->uid : a->uid;
        uint32_t ngid = (v & META_SET_GID) ? sa->gid : a->gid;
        if (!root) {
            if ((v & META_SET_UID) && (nuid != a->uid || c->uid != a->uid)) {
                rc = -EPERM;
                goto out;
            }
            if ((v & META_SET_GID) &&
                (c->uid != a->uid || (ngid != a->gid && !meta__in_group(c, ngid)))) {
                rc = -EPERM;
                goto out;
            }
        }
        a->uid = nuid;
        a->gid = ngid;
        if (!S_ISDIR(a->mode)) {
            a->mode &= ~(uint32_t)S_ISUID;
            if (a->mode & S_IXGRP)
                a->mode &= ~(uint32_t)S_ISGID;
        }
        changed = 1;
    }
    if (v & META_SET_MODE) {
        if (!meta__is_owner(c, a)) {
            rc = -EPERM;
            goto out;
        }
        uint32_t mode = sa->mode & 07777;
        if (!root && !meta__in_group(c, a->gid))
            mode &= ~(uint32_t)S_ISGID;
        a->mode = meta__type(a->mode) | mode;
        changed = 1;
    }
    if (v & META_SET_SIZE) {
        if (S_ISDIR(a->mode)) {
            rc = -EISDIR;
            goto out;
        }
        if (!S_ISREG(a->mode)) {
            rc = -EINVAL;
            goto out;
        }
        if (sa->size > META_MAX_FILE_SIZE) {
            rc = -EFBIG;
            goto out;
        }
        if (!(v & META_SET_HANDLE) && (rc = meta__perm(c, a, W_OK)) != 0)
            goto out;
        if (sa->size > a->size && m->opts.max_bytes) {
            meta_statfs st;
            meta_statfs_get(m, &st);
            if (st.bytes_used + (sa->size - a->size) > m->opts.max_bytes) {
                rc = -ENOSPC;
                goto out;
            }
        }
        if (sa->size < a->size && (rc = meta__truncate_chunks(&t, ino, a->size, sa->size)) != 0)
            goto out;
        t.d_bytes += (int64_t)sa->size - (int64_t)a->size;
        a->size = sa->size;
        a->mtime_ns = now;
        if (!root && (a->mode & S_ISUID))
            a->mode &= ~(uint32_t)S_ISUID;
        if (!root && (a->mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
            a->mode &= ~(uint32_t)S_ISGID;
        changed = 1;
    }
    if (v & (META_SET_ATIME | META_SET_MTIME)) {
        if (!meta__is_owner(c, a)) {
            rc = -EPERM;
            goto out;
        }
    } else if (v & (META_SET_ATIME_NOW | META_SET_MTIME_NOW)) {
        if (!meta__is_owner(c, a) && (rc = meta__perm(c, a, W_OK)) != 0)
            goto out;
    }
    if (v & META_SET_ATIME)
        a->atime_ns = sa->atime_ns;
    if (v & META_SET_ATIME_NOW)
        a->atime_ns = now;
    if (v & META_SET_MTIME)
        a->mtime_ns = sa->mtime_ns;
    if (v & META_SET_MTIME_NOW)
        a->mtime_ns = now;
    if (v & (META_SET_ATIME | META_SET_MTIME | META_SET_ATIME_NOW | META_SET_MTIME_NOW))
        changed = 1;
    if (changed || (v & META_SET_CTIME)) {
        a->ctime_ns = (v & META_SET_CTIME) ? sa->ctime_ns : now;
        meta__inode_put(&t, &in);
        rc = meta__txn_commit(&t, 0);
    }
    if (rc == 0 && out)
        *out = in.a;
out:
    meta__txn_end(&t);
    return rc;
}
