/*
 * meta_perm.c — POSIX permission rules with the caller's credentials.
 *
 * The classic owner/group/other check (the first class that matches
 * decides, even if a later class would grant more), supplementary groups,
 * root (uid 0) bypassing read and write always and execute when any x bit
 * is set or the inode is a directory, and the sticky-bit rule for removing
 * or renaming entries. A NULL cred is an internal caller and passes.
 */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/meta_int.h"

int meta__in_group(const meta_cred *c, uint32_t gid)
{
    if (c->gid == gid)
        return 1;
    for (uint32_t i = 0; i < c->ngroups; i++) {
        if (c->groups[i] == gid)
            return 1;
    }
    return 0;
}

int meta__is_owner(const meta_cred *c, const meta_attr *a)
{
    return !c || c->uid == 0 || c->uid == a->uid;
}

int meta__perm(const meta_cred *c, const meta_attr *a, int mask)
{
    if (!c || mask == 0)
        return 0;
    mask &= R_OK | W_OK | X_OK;
    if (c->uid == 0) {
        if (!(mask & X_OK) || S_ISDIR(a->mode) || (a->mode & 0111))
            return 0;
        return -EACCES;
    }
    uint32_t bits;
    if (c->uid == a->uid)
        bits = (a->mode >> 6) & 7;
    else if (meta__in_group(c, a->gid))
        bits = (a->mode >> 3) & 7;
    else
        bits = a->mode & 7;
    /* R_OK, W_OK, X_OK are 4, 2, 1: the same layout as the mode bits. */
    return ((uint32_t)mask & ~bits) ? -EACCES : 0;
}

int meta__sticky_ok(const meta_cred *c, const meta_attr *dir, const meta_attr *victim)
{
    if (!c || !(dir->mode & S_ISVTX) || c->uid == 0)
        return 0;
    if (c->uid == victim->uid || c->uid == dir->uid)
        return 0;
    return -EPERM;
}

int meta_perm(const meta_cred *c, const meta_attr *a, int mask)
{
    return meta__perm(c, a, mask);
}

int meta_access(meta *m, const meta_cred *c, uint64_t ino, int mask)
{
    meta_attr a;
    int rc = meta_getattr(m, ino, &a);
    if (rc != 0)
        return rc;
    return meta__perm(c, &a, mask);
}
