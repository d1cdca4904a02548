/* fuse_int.h — private state of the FUSE front end. */
#ifndef NB_FUSE_FUSE_INT_H
#define NB_FUSE_FUSE_INT_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "fuse/fuse.h"

/* One vfs handle per inode open under the mount, shared by every FUSE
 * handle on it (see opens.c): the kernel keeps one page cache and one
 * size per inode, so all descriptors must see one write buffer. */
typedef struct nbfuse_open {
    uint64_t ino;
    /* Opened on the first need (nbfuse__vf): a file only ever opened for
     * reading is read through each handle's own reader, and never costs
     * a second vfs open. NULL means nothing was ever buffered here. */
    _Atomic(vfs_file *) vf;
    pthread_mutex_t vf_mu;     /* serialises opening vf */
    unsigned refs;             /* FUSE handles on it; under nbfuse.opens_mu */
    pthread_mutex_t append_mu; /* makes "find the end, write there" atomic */
    struct nbfuse_open *next;  /* hash chain */
    /* Whether vf may hold unpublished writes (see nbfuse__clean). */
    pthread_mutex_t st_mu;
    unsigned writes_in_flight;
    uint64_t write_gen, clean_gen; /* writes finished; of those, published */
} nbfuse_open;

/* What fi->fh points to: one per FUSE open. Reads while the inode's
 * shared handle holds no unpublished writes go through rd, a read-only
 * vfs handle of this descriptor's own, so readers of one file (DataLoader
 * workers, fio jobs) do not queue on the shared handle's lock, and each
 * keeps its own sequential-read state for prefetching. */
typedef struct nbfuse_handle {
    nbfuse_open *o;
    _Atomic(vfs_file *) rd; /* opened on first use */
} nbfuse_handle;

#define NBFUSE_OPEN_BUCKETS 256

struct nbfuse {
    vfs *v;
    nbfuse_options opts;
    char *mountpoint;
    struct fuse_session *se;
    pthread_t loop_thread;
    bool loop_started;
    _Atomic bool loop_done;
    dev_t dev; /* of the mounted file system: names its connection in sysfs */
    pthread_mutex_t opens_mu;
    nbfuse_open *opens[NBFUSE_OPEN_BUCKETS];
    /* Preloading small files into the kernel's page cache at open (ops.c,
     * "preload"): changes a preload could race with are counted here. */
    atomic_uint changing;        /* size changes in flight without a shared handle */
    _Atomic uint64_t change_gen; /* bumped by each such change and S3 invalidation */
    atomic_uint preloading;      /* preloads in flight (at most half the threads) */
    /* FUSE_HANDLE_KILLPRIV_V2 (io.c): the kernel offered it in INIT (the
     * request's unique), and our INIT reply took it. */
    uint64_t init_unique;
    atomic_bool init_seen;
    atomic_bool killpriv_v2;
};

/* Installs our reads and writes of /dev/fuse (io.c); after the mount. */
int nbfuse__io_install(nbfuse *f);
/* Whether the request this thread is handling carries the kernel's "kill
 * setuid/setgid" (a write, truncate or O_TRUNC open by a caller without
 * CAP_FSETID, with FUSE_HANDLE_KILLPRIV_V2). */
bool nbfuse__req_kill(void);

/* Ends the FUSE handle fh (a RELEASE) if its inode has no shared vfs
 * handle, so nothing can need publishing; false (and nothing done) if it
 * has one: then op_release must run. */
bool nbfuse__release_quick(nbfuse *f, uint64_t fh);

/* Brackets a change to file contents that does not go through a shared
 * handle (truncate by path; S3 changes bump change_gen only). */
void nbfuse__change_begin(nbfuse *f);
void nbfuse__change_end(nbfuse *f);

/* The shared open of ino with one more reference. With rw its vfs handle
 * is opened now if it is not yet (read-write when the store allows,
 * without permission checks: the caller has checked the requester's);
 * without, it is left to nbfuse__vf. */
int nbfuse__open_get(nbfuse *f, uint64_t ino, bool rw, nbfuse_open **out);
/* o's shared vfs handle, opened on first use. */
int nbfuse__vf(nbfuse *f, nbfuse_open *o, vfs_file **out);
/* Adopts vf, just opened by vfs_create, as ino's shared open; if another
 * thread opened ino meanwhile, vf is released and that one is used. */
nbfuse_open *nbfuse__open_adopt(nbfuse *f, uint64_t ino, vfs_file *vf);
/* The shared open of ino with one more reference, or NULL if ino is not
 * open under the mount. */
nbfuse_open *nbfuse__open_find(nbfuse *f, uint64_t ino);
/* Drops a reference; the last one releases the vfs handle (publishing its
 * writes) and returns that result. */
int nbfuse__open_put(nbfuse *f, nbfuse_open *o);
/* Bracket every call that buffers writes in o->vf. */
void nbfuse__write_begin(nbfuse_open *o);
void nbfuse__write_end(nbfuse_open *o);
/* Bracket a publish of o->vf (flush, fsync): returns the write count
 * that the publish will cover; _end with its result. */
uint64_t nbfuse__publish_begin(nbfuse_open *o);
void nbfuse__publish_end(nbfuse_open *o, uint64_t gen, int rc);
/* True if every write buffered in o->vf so far has been published, so a
 * read may go through another handle. A write racing with the read is
 * ordered after it. */
bool nbfuse__clean(nbfuse_open *o);
/* h's read-only handle, opened on first use; NULL if that fails (with
 * the reason in *rc when rc is not NULL). */
vfs_file *nbfuse__reader(nbfuse *f, nbfuse_handle *h, int *rc);

/* At unmount, after the loop ended: releases opens the kernel never
 * released (an aborted connection sends no RELEASE). */
void nbfuse__opens_close(nbfuse *f);

/* The low-level operation table (ops.c). */
extern const struct fuse_lowlevel_ops nbfuse__ops;

#endif
