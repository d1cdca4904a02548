/*
 * vfs_int.h — private to src/vfs: the handle, open-inode table, open
 * files with their write buffers, and helpers shared by the files of the
 * module.
 *
 * Lock order (docs/vfs.md): a lock is taken only while holding locks
 * above it in this list.
 *   1. vfs_file.mu     one handle's state (never two at once)
 *   2. vfs__inode.mu   per open inode: publishes, appends, truncates
 *   3. v->maint_mu     one maintenance pass at a time
 *   4. v->share_lk     copy_range (read) / collector (write)
 *   5. meta's locks    taken inside meta calls (rename mutex, stripes)
 *   6. leaf mutexes    v->itab_mu, v->timer_mu, data's internals
 * Namespace operations (create, unlink, rename, ...) take no vfs lock at
 * all: they are one meta call each, and meta orders its own locks, so a
 * rename cannot deadlock against a create or an unlink.
 */
#ifndef NB_VFS_VFS_INT_H
#define NB_VFS_VFS_INT_H

#include <pthread.h>

#include "data/data.h"
#include "vfs/vfs.h"

#define VFS__IBUCKETS       1024
#define VFS__WRITER_MIN     (128u << 10) /* writes this large go to a slice writer */
#define VFS__WRITER_MAX     (256u << 20) /* a slice writer is finished at this length */
#define VFS__SEG_TO_WR      (1u << 20)   /* a single coalesced segment this big becomes a writer */
#define VFS__MAX_PENDING    512          /* published early beyond this many pending pieces */
#define VFS__INLINE_MAX     (16u << 10)  /* slices up to this size are kept in metadata */
#define VFS__IMPLICIT_XATTR "trusted.nebula.implicit"
#define VFS__RESERVED_XATTR "trusted.nebula."

/* Drops a result on purpose (a cast to void does not silence
 * warn_unused_result). */
#define VFS__IGNORE(expr)                                                                          \
    do {                                                                                           \
        int vfs__ignored = (expr);                                                                 \
        (void)vfs__ignored;                                                                        \
    } while (0)

typedef struct vfs__inode {
    uint64_t ino;
    unsigned refs; /* open handles (under v->itab_mu) */
    pthread_mutex_t mu;
    uint64_t append_end;    /* end of the last O_APPEND reservation (under mu) */
    struct vfs_file *files; /* its open handles (under v->itab_mu) */
    struct vfs__inode *next;
} vfs__inode;

/* An in-memory dirty segment: bytes for [off, off+len). */
typedef struct vfs__seg {
    uint64_t off;
    size_t len, cap;
    uint8_t *buf;
} vfs__seg;

struct vfs_file {
    vfs *v;
    vfs__inode *in;
    uint64_t ino;
    int flags;
    meta_attr open_attr; /* as read by the open (vfs_file_open_attr) */
    bool rd, wr, append;
    pthread_mutex_t mu;
    data_ra *ra;
    /* Readahead into the next chunk already issued: chunk index + 1 (0:
     * none) and how many of its first bytes. */
    uint32_t ra_chunk;
    uint64_t ra_len;
    /* The slice being streamed (sequential writes). */
    data_writer *w;
    uint64_t w_id;
    uint64_t w_off; /* file offset of the slice's first byte */
    /* In-memory segments, oldest first; all newer than pw. */
    vfs__seg *segs;
    size_t nsegs, capsegs, seg_bytes;
    /* Written (durable, held) but unpublished pieces, oldest first. */
    meta_write *pw;
    size_t npw, cappw;
    uint64_t *held, *held_size; /* slices written for this handle, and their sizes */
    size_t nheld, capheld;
    /* Unpublished inline slices (their pieces are in pw): bytes owned. */
    meta_inline *inl;
    size_t ninl, capinl;
    uint64_t pend_end;              /* the end of the furthest unpublished write (0: none);
                                       written under mu, read atomically by getattr */
    int64_t pend_mtime_ns;          /* wall time of the latest unpublished write (0: none);
                                       like pend_end: getattr's mtime before the publish */
    int wb_err;                     /* a deferred write-back error, returned by the next flush */
    struct vfs_file *prev, *next;   /* v->files (under v->itab_mu) */
    struct vfs_file *iprev, *inext; /* in->files (under v->itab_mu) */
};

struct vfs {
    vfs_options o;
    char *data_dir;
    meta *m;
    data_store *ds;
    pthread_mutex_t itab_mu;
    vfs__inode *itab[VFS__IBUCKETS];
    vfs_file *files; /* every open handle (under itab_mu) */
    uint64_t nfiles; /* how many: read without the lock by getattr's fast path */
    pthread_mutex_t maint_mu;
    /* Slices may be shared between inodes (copy_file_range). Copies hold
     * it for reading from their map read to their publish; the collector
     * holds it for writing while it decides which garbage slices are
     * still referenced elsewhere (maint.c). */
    pthread_rwlock_t share_lk;
    pthread_mutex_t timer_mu;
    pthread_cond_t timer_cv;
    pthread_t timer;
    bool timer_on, stop;
    uint64_t collect_grace_ns;
    vfs_notify_cb notify;
    void *notify_arg;
    /* Published slices whose blocks are not synced yet (sync.c), and the
     * group commit's tickets; all under sync_mu (a leaf lock). */
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    uint64_t *us_id, *us_size;
    size_t nus, capus;
    uint64_t us_bytes;
    uint64_t sync_req, sync_done;
    bool sync_busy;
};

/* Maps data-path codes to the errno a file system returns: checksum,
 * corruption and missing blocks are -EIO, a full device -ENOSPC. */
int vfs__errno(int rc);
/* -EROFS on a read-only vfs. */
int vfs__ro(vfs *v);

/* Opens the meta store and block store of data_dir (used by vfs_open and
 * the tools). */
int vfs__open_stores(const vfs_options *o, meta **m, data_store **ds) NB_MUST_CHECK;

/* Open-inode table. vfs__inode_find: the entry or NULL, v->itab_mu held. */
vfs__inode *vfs__inode_find(vfs *v, uint64_t ino);
vfs__inode *vfs__inode_get(vfs *v, uint64_t ino);
void vfs__inode_put(vfs *v, vfs__inode *in);

/* Publishes f's buffered writes (f->mu held). sync: durable on return. */
int vfs__file_publish(vfs_file *f, bool sync) NB_MUST_CHECK;
/* Converts meta slices to data slices (out has room for n). */
void vfs__to_data(const meta_slice *s, size_t n, data_slice *out);
/* The furthest end of unpublished writes of any handle on ino (0: none). */
uint64_t vfs__pending_end(vfs *v, uint64_t ino);
/* Points inline slices of out[0..n) at their bytes: from f's unpublished
 * inline slices (f may be NULL), else read from meta into bufs[i] (bufs
 * has room for n, zeroed; free with vfs__bufs_free). -EIO if missing. */
int vfs__inline_load(vfs *v, vfs_file *f, data_slice *out, size_t n, nb_buf *bufs) NB_MUST_CHECK;
void vfs__bufs_free(nb_buf *bufs, size_t n);

/* S3 helpers shared by s3.c and mpu.c. */
int vfs__bucket_ino(vfs *v, const vfs_cred *c, const char *bucket, uint64_t *ino) NB_MUST_CHECK;
/* Walks the directories of key from *dir (creating implicit ones with
 * create); leaf gets the last segment ("" for a marker). */
int vfs__walk_parents(vfs *v, const vfs_cred *c, const char *key, bool create, uint64_t *dir,
                      char leaf[VFS_NAME_MAX + 1]) NB_MUST_CHECK;

/* Names the unnamed file ino at bucket/key with record rec, as a PUT
 * commit (upload 0) or as CompleteMultipartUpload of upload (dropping the
 * upload in the same batch), keeping or dropping the replaced object as
 * versioning (VFS_VER_*) says. Missing parents are made; when a
 * concurrent DELETE removes them meanwhile it tries again a few times
 * (versions.c). */
int vfs__install_key(vfs *v, const vfs_cred *c, uint64_t bucket, const char *key, uint64_t ino,
                     uint64_t upload, nb_slice rec, int versioning, vfs_attr *out) NB_MUST_CHECK;

/* Reports a change to the notification callback, if any. */
void vfs__notify(vfs *v, int kind, uint64_t parent, const char *name, uint64_t ino);

/* Ordered write-back (sync.c). vfs__unsynced_add lists published slices
 * whose blocks are not synced; true when the list is full (the caller
 * then calls vfs__sync). vfs__sync makes every listed slice and all
 * metadata durable, sharing the work with concurrent callers.
 * vfs__recover_unsynced checks the slices recorded unsynced after a
 * crash and drops lost ones from the chunk maps (*lost may be NULL). */
void vfs__sync_init(vfs *v);
void vfs__sync_destroy(vfs *v);
bool vfs__unsynced_add(vfs *v, const uint64_t *ids, const uint64_t *sizes, size_t n);
int vfs__sync(vfs *v) NB_MUST_CHECK;
int vfs__recover_unsynced(meta *m, data_store *ds, uint64_t *lost) NB_MUST_CHECK;

/* Maintenance (maint.c). */
int vfs__maint_start(vfs *v) NB_MUST_CHECK;
void vfs__maint_stop(vfs *v);
/* Live-set callback for data_collect: every slice meta references. */
int vfs__live_fn(void *arg, data_live *l);

#endif
