/*
 * meta_int.h — private to src/meta: the handle, the inode record in
 * memory, transactions (a lock set plus one kv batch) and the helpers the
 * files of the module share.
 *
 * Lock order (docs/meta.md):
 *   1. m->rename_mu — only renames that move a directory to another parent
 *   2. inode stripe locks, in ascending stripe index, each at most once
 *   3. leaf mutexes, never held while taking another: id_mu, open_mu
 * Readers take no lock at all.
 */
#ifndef NB_META_META_INT_H
#define NB_META_META_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "kv/kv.h"
#include "meta/meta.h"
#include "meta/meta_format.h"

typedef struct meta__inode {
    meta_attr a;
    uint64_t cookie; /* directories: next readdir cookie */
    uint8_t flags;   /* META_INO_F_* */
} meta__inode;

typedef struct meta__ocnt {
    uint64_t ino;
    uint32_t n;
    /* An orphan record was written for it while open (maybe since linked
     * again): the last release reads the inode to see whether it goes.
     * Without it the inode has links and the last release reads nothing. */
    bool orphan;
    struct meta__ocnt *next;
} meta__ocnt;

#define META__OBUCKETS 4096

/* meta_obj_get's recent answers, valid while kv_last_seq is unchanged
 * (meta_objcache.c). get makes out share a kept answer (true) or returns
 * false; put keeps o, read at seq, moving its buffers into the table and
 * making o share them; unref lets go of a meta_obj's share. */
typedef struct meta__objcache meta__objcache;
meta__objcache *meta__objcache_new(void);
void meta__objcache_free(meta__objcache *c);
bool meta__objcache_get(meta__objcache *c, uint64_t seq, const char *bucket, const char *key,
                        unsigned flags, meta_obj *out);
void meta__objcache_put(meta__objcache *c, uint64_t seq, const char *bucket, const char *key,
                        unsigned flags, meta_obj *o);
void meta__objcache_unref(void *shared);

struct meta {
    kv_db *kv;
    meta_options opts;
    pthread_mutex_t stripes[META_NSTRIPES];
    pthread_mutex_t rename_mu;
    /* Usage per stripe; written only under that stripe's lock, read by
     * statfs without it (hence atomics). */
    _Atomic int64_t use_inodes[META_NSTRIPES];
    _Atomic int64_t use_bytes[META_NSTRIPES];
    /* Per stripe, raised by every commit under it before and after its
     * kv write (odd while one is in flight): see meta__gens. */
    _Atomic uint64_t gens[META_NSTRIPES];
    pthread_mutex_t id_mu;
    uint64_t id_next[2];
    uint64_t id_limit[2];
    pthread_mutex_t open_mu;
    meta__ocnt *open[META__OBUCKETS];
    meta__objcache *objcache; /* meta_obj_get's answers (meta_objcache.c) */
};

/* A transaction: locks held and the batch that will commit the change. */
typedef struct meta__txn {
    meta *m;
    kv_batch *b;
    uint32_t stripes[8];
    int nstripes;
    int rename_locked;
    int64_t d_inodes; /* usage deltas applied on commit */
    int64_t d_bytes;
} meta__txn;

void meta__txn_init(meta__txn *t, meta *m);
/* Locks the stripes of inos (0 entries are skipped), ascending, deduplicated.
 * The txn must hold no stripe yet. */
void meta__txn_lock(meta__txn *t, const uint64_t *inos, int n);
void meta__txn_unlock(meta__txn *t);
/* Writes the batch (with the usage record of the lowest stripe held if
 * usage changed); applies the usage deltas in memory on success. */
int meta__txn_commit(meta__txn *t, int sync) NB_MUST_CHECK;
/* Group commit: writes the batch unsynced and sets *seq for kv_sync_to(),
 * which the caller runs after meta__txn_end so that concurrent commits
 * under the same locks share one WAL sync instead of taking turns at it. */
int meta__txn_commit_seq(meta__txn *t, uint64_t *seq) NB_MUST_CHECK;
/* Unlocks and frees; safe after a failed or skipped commit. */
void meta__txn_end(meta__txn *t);

uint32_t meta__stripe(uint64_t ino);

/* Optimistic reads (a seqlock per stripe): note the generations of the
 * stripes guarding what you read (a dentry and a directory inode: the
 * directory's stripe; an inode: its own), read without locks, lock, and
 * if meta__gens_same() nothing was committed under those stripes since
 * the notes, so the reads are what the store holds now and need not be
 * repeated under the locks. Load each generation before the reads it
 * guards. Keeps the reads out of the critical section: writers in one
 * directory overlap their reads with each other's commits. */
typedef struct meta__gens {
    uint32_t s[4];
    uint64_t g[4];
    int n;
} meta__gens;
void meta__gens_note(meta *m, meta__gens *g, uint64_t ino);
bool meta__gens_same(meta *m, const meta__gens *g);

/* Keys. */
void meta__key_ino(uint8_t k[9], uint8_t tag, uint64_t ino);
void meta__key_dentry(nb_buf *k, uint64_t parent, const char *name, size_t len);
void meta__key_cookie(uint8_t k[17], uint64_t parent, uint64_t cookie);
void meta__key_chunk(uint8_t k[13], uint64_t ino, uint32_t idx);

/* Inode records. */
int meta__inode_get(meta *m, const kv_snapshot *s, uint64_t ino, meta__inode *out) NB_MUST_CHECK;
int meta__inode_decode(nb_slice v, uint64_t ino, meta__inode *out) NB_MUST_CHECK;
void meta__inode_put(meta__txn *t, const meta__inode *in);

/* Chunk maps and inline slices at a snapshot (NULL: the latest state). */
int meta__chunk_read_at(meta *m, const kv_snapshot *snap, uint64_t ino, uint32_t idx,
                        meta_slice **out, size_t *n) NB_MUST_CHECK;
int meta__inline_get_at(meta *m, const kv_snapshot *snap, uint64_t id, nb_buf *out) NB_MUST_CHECK;

/* Dentries. Returns 0 and fills ino/type/cookie, or -ENOENT. */
int meta__dentry_get(meta *m, const kv_snapshot *s, uint64_t parent, const char *name, size_t len,
                     uint64_t *ino, uint32_t *type, uint64_t *cookie) NB_MUST_CHECK;
/* Adds a dentry to dir (both keys), taking the next cookie of dir. */
void meta__dentry_add(meta__txn *t, meta__inode *dir, const char *name, size_t len, uint64_t ino,
                      uint32_t type);
void meta__dentry_del(meta__txn *t, uint64_t parent, const char *name, size_t len, uint64_t cookie);
/* 1 if dir has no entries, 0 if it has, <0 on error. */
int meta__dir_empty(meta *m, uint64_t dir) NB_MUST_CHECK;

/* Drops one link of in (already locked); destroys or orphans it at 0.
 * in is updated (and put) as needed. */
int meta__drop_link(meta__txn *t, meta__inode *in, int64_t now) NB_MUST_CHECK;
/* Adds the deletion of every record of in to the batch. */
/* Deletes inode in and its records. orphaned: it may have an orphan record
 * (it had no link before this transaction; an inode with links never has
 * one). */
int meta__destroy(meta__txn *t, const meta__inode *in, bool orphaned) NB_MUST_CHECK;
/* Chunk map trimming for a size change down to size (locked). */
int meta__truncate_chunks(meta__txn *t, uint64_t ino, uint64_t oldsize,
                          uint64_t size) NB_MUST_CHECK;
void meta__garbage_add(meta__txn *t, uint64_t id, uint32_t size);

uint32_t meta__open_count(meta *m, uint64_t ino);
void meta__open_add(meta *m, uint64_t ino);
/* Writes ino's orphan record into t and marks ino's open count (if it is
 * open; call it again after counting the open of a new orphan). */
void meta__orphan_put(meta__txn *t, uint64_t ino, int64_t now);
void meta__open_mark_orphan(meta *m, uint64_t ino);

/* Looks up parent/name (*ino 0 when there is no such entry; parent 0:
 * none) and locks the stripes of that inode and of locks[0..n) (n <= 5),
 * looking again under the locks and starting over while the entry
 * changed meanwhile. On 0, t (initialized here) holds the locks: end it
 * with meta__txn_end. On error nothing is held. */
int meta__txn_lock_entry(meta__txn *t, meta *m, uint64_t parent, const char *name, size_t len,
                         const uint64_t *locks, int n, uint64_t *ino, uint32_t *type,
                         uint64_t *cookie) NB_MUST_CHECK;

/* Names: 0, -EINVAL ('/' or empty), -ENAMETOOLONG. */
int meta__check_name(const char *name, size_t *len) NB_MUST_CHECK;
int meta__is_dot(const char *name, size_t len);

/* Permissions (meta_perm.c). All return 0 or -EACCES/-EPERM; c NULL = 0. */
int meta__perm(const meta_cred *c, const meta_attr *a, int mask) NB_MUST_CHECK;
int meta__in_group(const meta_cred *c, uint32_t gid);
int meta__is_owner(const meta_cred *c, const meta_attr *a);
int meta__sticky_ok(const meta_cred *c, const meta_attr *dir,
                    const meta_attr *victim) NB_MUST_CHECK;

/* meta_mkdir that also puts rec under key (tag, new ino) in the same batch. */
int meta__mkdir_rec(meta *m, const meta_cred *c, uint64_t parent, const char *name, uint32_t mode,
                    uint8_t tag, nb_slice rec, meta_attr *out) NB_MUST_CHECK;

/* meta_install with an extra lock (0: none) and a hook that adds to the
 * batch under the locks, before the commit (S3 multipart completion). */
typedef int (*meta__install_fn)(meta__txn *t, void *arg);
/* Flag: the hook takes care of the replaced file's link (S3 versioning
 * keeps it as a noncurrent version); install only removes its dentry. */
#define META__INSTALL_HOOK_OLD 0x100u
int meta__install(meta *m, const meta_cred *c, uint64_t ino, uint64_t parent, const char *name,
                  unsigned flags, nb_slice objrec, uint64_t extra_lock, uint64_t extra_lock2,
                  meta__install_fn extra, void *arg, meta_attr *out) NB_MUST_CHECK;

/* S3 versioning (meta_version.c). The lock standing for one key of a
 * bucket, and the install hook that keeps the replaced file as a
 * noncurrent version (arg: a meta__verhook). */
typedef struct meta__verhook {
    const meta_verput *vp;
    uint64_t parent;
    const char *name;
} meta__verhook;
uint64_t meta__version_lock(uint64_t bucket, const char *key);
int meta__version_hook(meta__txn *t, void *arg) NB_MUST_CHECK;

/* Decodes a stored multipart part record (meta_s3.c). */
int meta__part_decode(nb_slice in, uint32_t number, meta_part *pt) NB_MUST_CHECK;

int64_t meta__now(void);
int meta__alloc_ino(meta *m, uint64_t *ino) NB_MUST_CHECK;
uint32_t meta__type(uint32_t mode);

#endif
