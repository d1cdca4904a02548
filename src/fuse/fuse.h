/*
 * fuse.h — the POSIX mount: the vfs namespace served through the kernel's
 * FUSE on libfuse3's low-level API with its multi-threaded loop.
 *
 * Every FUSE request is answered by one vfs call with the caller's uid,
 * gid and supplementary groups; inode numbers are vfs inode numbers (they
 * are stable, so lookups are not counted and forget is a no-op). See
 * docs/fuse.md for the operation table, the caches and the lifecycle.
 *
 * Names: the public symbols take the prefix `nbfuse_` instead of `fuse_`,
 * which belongs to libfuse itself.
 *
 * Thread safety: nbfuse_mount/unmount from one controlling thread; the
 * nbfuse_invalidate_* calls from any thread.
 */
#ifndef NB_FUSE_FUSE_H
#define NB_FUSE_FUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "vfs/vfs.h"

typedef struct nbfuse nbfuse;

typedef struct nbfuse_options {
    const char *mountpoint;   /* an existing directory */
    bool allow_other;         /* let users other than the mounter in (-o allow_other) */
    bool default_permissions; /* let the kernel check permissions from the attributes */
    bool read_only;           /* mount read-only (-o ro) */
    bool writeback_cache;     /* kernel write-back caching of file data */
    double entry_timeout;     /* seconds the kernel caches names */
    double attr_timeout;      /* seconds the kernel caches attributes */
    unsigned max_threads;     /* FUSE worker threads at most */
} nbfuse_options;

/* Defaults: writeback cache off, 60 s entry and attribute timeouts (every
 * S3 change invalidates), 16 threads, everything else off. */
void nbfuse_options_init(nbfuse_options *o);

/* Mounts v at o->mountpoint and starts serving on background threads.
 * A mount point left behind by a killed server ("Transport endpoint is
 * not connected") is reclaimed first. Borrows v (it must outlive the
 * mount) and o. On failure returns an error with a one-line explanation
 * in err and *out is NULL. */
int nbfuse_mount(vfs *v, const nbfuse_options *o, nbfuse **out, char *err,
                 size_t errlen) NB_MUST_CHECK;

/* True while the kernel mount is being served (false after an external
 * `fusermount3 -u`). */
bool nbfuse_active(nbfuse *f);

/* Tells the kernel to forget what it cached about name in parent / about
 * ino's attributes and data, after a change made outside the mount (an S3
 * PUT or DELETE). Returns 0, or -ENOENT when the kernel had nothing. */
int nbfuse_invalidate_entry(nbfuse *f, uint64_t parent, const char *name);
int nbfuse_invalidate_inode(nbfuse *f, uint64_t ino);

/* Unmounts (lazily, so a busy mount point does not block shutdown; open
 * files are cut off after a grace period), stops the threads and frees
 * f. NULL is a no-op. */
void nbfuse_unmount(nbfuse *f);

#endif
