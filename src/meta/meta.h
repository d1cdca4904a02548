/*
 * meta.h — the metadata model of the one namespace, on top of kv.
 *
 * Inodes, directory entries, symlink targets, xattrs, hard links, chunk
 * maps (64 MiB chunks → ordered slices → 4 MiB blocks in the block store),
 * open-but-unlinked inodes, statfs usage counters, a persistent id
 * allocator, a per-object record for S3 and bucket records. Every
 * namespace operation is one atomic kv write batch and returns the errno a
 * Linux file system returns (as -errno). The on-disk layout is specified in
 * docs/metadata-format.md; the model, lock order and permission rules in
 * docs/meta.md.
 *
 * Thread safety: a meta handle may be used by any number of threads at
 * once. Operations on one inode or directory serialize on a striped lock
 * table; independent ones run in parallel. Readers take no locks:
 * getattr, lookup and chunk reads read single records (each one written
 * atomically), readdir and list read one kv snapshot.
 *
 * Who checks what: meta checks POSIX permissions for every operation that
 * takes a meta_cred (search/write on directories, sticky bit, owner rules
 * for chmod/chown/utimes, xattr namespaces). Opening a file (read/write
 * permission for the open mode) is checked by the caller with
 * meta_access(); data access through an open handle is not rechecked.
 * A NULL cred means "internal caller": no permission checks.
 *
 * Errors: 0, -errno (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, EINVAL,
 * ENAMETOOLONG, EACCES, EPERM, EMLINK, ENODATA, ERANGE, E2BIG, ENOSPC,
 * EBUSY, EXDEV, EFBIG, ...) or NB_E* (NB_ECORRUPT, NB_EVERSION,
 * NB_ECONFLICT, NB_ENOTFOUND for non-namespace records).
 */
#ifndef NB_META_META_H
#define NB_META_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/status.h"

typedef struct meta meta;

#define META_ROOT_INO       1ull
#define META_CHUNK_SIZE     (64ull << 20) /* bytes of file per chunk map */
#define META_BLOCK_SIZE     (4u << 20)    /* a slice is stored as blocks of at most this */
#define META_NAME_MAX       255           /* bytes in one name */
#define META_SYMLINK_MAX    4095          /* bytes in a symlink target */
#define META_XATTR_NAME_MAX 255
#define META_XATTR_SIZE_MAX 65536
#define META_LINK_MAX       65000        /* hard links per inode (EMLINK) */
#define META_MAX_FILE_SIZE  (1ull << 50) /* EFBIG beyond */

/* ---- Opening ------------------------------------------------------------------------------ */

typedef struct meta_options {
    const char *engine;  /* kv backend name; NULL = kv default */
    int sync;            /* 1: every namespace operation is durable on return */
    uint64_t max_bytes;  /* statfs capacity and ENOSPC limit; 0 = unlimited */
    uint64_t max_inodes; /* statfs inode capacity and ENOSPC limit; 0 = unlimited */
    uint32_t root_mode;  /* permission bits of a new root directory (default 0755) */
    uint32_t root_uid, root_gid;
    size_t kv_cache_bytes;   /* passed to kv */
    int protected_hardlinks; /* Linux's fs.protected_hardlinks rule in meta_link (default 1) */
} meta_options;

void meta_options_init(meta_options *o);
/* The kv backend a store is made with when meta_options.engine is NULL
 * ("nkv" when built in). Static storage. */
const char *meta_default_engine(void);

/* Opens (creating if empty) the metadata store in dir. Borrows all
 * arguments (o may be NULL). Reclaims inodes left open-but-unlinked by a
 * previous process. NB_EVERSION for a store written by a newer format,
 * NB_ECORRUPT for a non-empty store without a format record. *out is owned;
 * close with meta_close(), NULL on failure. */
int meta_open(const char *dir, const meta_options *o, meta **out) NB_MUST_CHECK;
/* NULL is a no-op. Open counts are dropped: inodes still open and
 * unlinked are reclaimed at the next open. */
void meta_close(meta *m);
/* Makes every completed operation durable (the fsync of the metadata). */
int meta_sync(meta *m) NB_MUST_CHECK;

/* ---- Credentials -------------------------------------------------------------------------- */

typedef struct meta_cred {
    uint32_t uid;
    uint32_t gid;
    uint32_t ngroups;
    const uint32_t *groups; /* supplementary groups; borrowed for the call */
} meta_cred;

/* ---- Attributes --------------------------------------------------------------------------- */

typedef struct meta_attr {
    uint64_t ino;
    uint32_t mode; /* S_IFMT type bits | permission bits */
    uint32_t uid;
    uint32_t gid;
    uint32_t nlink;
    uint64_t size; /* bytes; for symlinks the target length; for dirs 0 */
    int64_t atime_ns;
    int64_t mtime_ns;
    int64_t ctime_ns;
    int64_t btime_ns; /* creation */
    uint64_t rdev;
    uint64_t generation;
    uint64_t parent; /* directories: the parent directory; others: first parent (a hint) */
} meta_attr;

/* Reads the attributes of ino. -ENOENT when it does not exist. No
 * permission check (like stat on an open file). */
int meta_getattr(meta *m, uint64_t ino, meta_attr *out) NB_MUST_CHECK;

/* Looks name up in directory parent: needs search (x) permission on
 * parent. "." and ".." work. out may be NULL. -ENOENT, -ENOTDIR, -EACCES,
 * -EINVAL, -ENAMETOOLONG. */
int meta_lookup(meta *m, const meta_cred *c, uint64_t parent, const char *name,
                meta_attr *out) NB_MUST_CHECK;

/* access(2)-style check: mask of R_OK|W_OK|X_OK (0 = existence). -EACCES. */
int meta_access(meta *m, const meta_cred *c, uint64_t ino, int mask) NB_MUST_CHECK;
/* The same check on attributes the caller already holds (no read). */
int meta_perm(const meta_cred *c, const meta_attr *a, int mask) NB_MUST_CHECK;

enum {
    META_SET_MODE = 1u << 0,
    META_SET_UID = 1u << 1,
    META_SET_GID = 1u << 2,
    META_SET_SIZE = 1u << 3,
    META_SET_ATIME = 1u << 4,     /* to atime_ns */
    META_SET_MTIME = 1u << 5,     /* to mtime_ns */
    META_SET_ATIME_NOW = 1u << 6, /* to the current time */
    META_SET_MTIME_NOW = 1u << 7,
    META_SET_CTIME = 1u << 8,  /* to ctime_ns (otherwise ctime becomes now on any change) */
    META_SET_HANDLE = 1u << 9, /* size change through an open handle: skip the W check */
};

typedef struct meta_sattr {
    uint32_t valid; /* META_SET_* */
    uint32_t mode;  /* permission bits (type bits ignored) */
    uint32_t uid;
    uint32_t gid;
    uint64_t size;
    int64_t atime_ns;
    int64_t mtime_ns;
    int64_t ctime_ns;
} meta_sattr;

/* Changes attributes with the chmod/chown/truncate/utimensat rules: chmod
 * by the owner or root (setgid dropped when the caller is not in the
 * group); chown of uid by root only, of gid by the owner into one of their
 * groups; chown and size changes clear setuid/setgid as Linux does;
 * explicit times by the owner or root, "now" also by a writer. A size
 * change trims chunk maps. out (may be NULL) gets the new attributes.
 * -EPERM, -EACCES, -EISDIR (size of a dir), -EINVAL, -EFBIG, -ENOENT. */
int meta_setattr(meta *m, const meta_cred *c, uint64_t ino, const meta_sattr *sa,
                 meta_attr *out) NB_MUST_CHECK;

/* ---- Namespace ---------------------------------------------------------------------------- */

/* Creates a node of type mode & S_IFMT (S_IFREG, S_IFDIR, S_IFIFO,
 * S_IFSOCK, S_IFCHR, S_IFBLK; 0 means S_IFREG) named name in parent,
 * owned by the caller (group from a setgid parent). The caller applies the
 * umask. Devices need root (-EPERM). out may be NULL.
 * -EEXIST, -ENOENT (parent gone), -ENOTDIR, -EACCES, -ENOSPC, -EMLINK. */
int meta_mknod(meta *m, const meta_cred *c, uint64_t parent, const char *name, uint32_t mode,
               uint64_t rdev, meta_attr *out) NB_MUST_CHECK;
int meta_mkdir(meta *m, const meta_cred *c, uint64_t parent, const char *name, uint32_t mode,
               meta_attr *out) NB_MUST_CHECK;
/* meta_mknod for a regular file that is also opened (open count +1) in the
 * same step, as open(O_CREAT|O_EXCL) needs; pair with meta_release(). */
int meta_create(meta *m, const meta_cred *c, uint64_t parent, const char *name, uint32_t mode,
                meta_attr *out) NB_MUST_CHECK;
int meta_symlink(meta *m, const meta_cred *c, uint64_t parent, const char *name, const char *target,
                 meta_attr *out) NB_MUST_CHECK;
/* A new name for ino. -EPERM for directories, -EMLINK, -EEXIST; -EPERM
 * also when protected_hardlinks is on and a non-owner links a file that is
 * not a plain regular file they can read and write. */
int meta_link(meta *m, const meta_cred *c, uint64_t ino, uint64_t parent, const char *name,
              meta_attr *out) NB_MUST_CHECK;
/* Removes a non-directory name. The inode goes when its last link and last
 * open are gone (its slices move to the garbage list). -EISDIR, -EPERM
 * (sticky), -EACCES, -ENOENT. */
int meta_unlink(meta *m, const meta_cred *c, uint64_t parent, const char *name) NB_MUST_CHECK;
/* Removes an empty directory. -ENOTDIR, -ENOTEMPTY, -EBUSY (root),
 * -EINVAL ("."). */
int meta_rmdir(meta *m, const meta_cred *c, uint64_t parent, const char *name) NB_MUST_CHECK;

#define META_RENAME_NOREPLACE 1u /* = RENAME_NOREPLACE */
#define META_RENAME_EXCHANGE  2u /* = RENAME_EXCHANGE */

/* rename(2)/renameat2(2) with flags 0, NOREPLACE or EXCHANGE, atomically.
 * A replaced target loses a link. -EINVAL (into its own subtree, bad
 * flags), -ENOTEMPTY, -EISDIR, -ENOTDIR, -EEXIST (NOREPLACE), -ENOENT,
 * -EACCES, -EPERM (sticky), -EMLINK. */
int meta_rename(meta *m, const meta_cred *c, uint64_t parent, const char *name, uint64_t newparent,
                const char *newname, unsigned flags) NB_MUST_CHECK;

/* The target of a symlink into out (reset first). -EINVAL if not a symlink. */
int meta_readlink(meta *m, uint64_t ino, nb_buf *out) NB_MUST_CHECK;

/* ---- Directories -------------------------------------------------------------------------- */

typedef struct meta_dirent {
    const char *name; /* NUL-terminated; valid during the callback */
    size_t name_len;
    uint64_t ino;
    uint32_t type;         /* S_IFMT bits of the child */
    uint64_t next_off;     /* pass as off to continue after this entry */
    const meta_attr *attr; /* with META_READDIR_ATTRS (NULL if the child vanished) */
} meta_dirent;

/* Returns 0 to continue, non-zero to stop (that value is not an error). */
typedef int (*meta_dirent_cb)(void *arg, const meta_dirent *e);

#define META_READDIR_ATTRS 1u /* fill e->attr (readdirplus) */
#define META_READDIR_DOTS  2u /* emit "." and ".." first (FUSE wants them) */

/* Lists dir from offset off (0 = start) in a stable order: every entry has
 * a cookie assigned at creation, so a listing continued with next_off
 * never repeats or skips an entry that exists throughout, whatever is
 * created or removed meanwhile (a renamed entry may appear twice, as POSIX
 * allows). The listing is read from one kv snapshot per call. No
 * permission check (the caller checked read permission at opendir).
 * -ENOTDIR, -ENOENT. */
int meta_readdir(meta *m, uint64_t dir, uint64_t off, unsigned flags, meta_dirent_cb cb,
                 void *arg) NB_MUST_CHECK;

/* Lists dir in byte order of names, starting after `after` (NULL or "" =
 * from the first name): what S3 listings merge. next_off is 0. */
int meta_list(meta *m, uint64_t dir, const char *after, unsigned flags, meta_dirent_cb cb,
              void *arg) NB_MUST_CHECK;

/* ---- Open files --------------------------------------------------------------------------- */

/* Counts an open of ino (in memory). While an inode is open, unlinking its
 * last name keeps it (in the orphan set) until meta_release() drops the
 * last open. -ENOENT if ino does not exist. */
int meta_open_inode(meta *m, uint64_t ino) NB_MUST_CHECK;
/* meta_open_inode that also gives the inode's attributes, as of the open
 * (one inode read for both; checks nothing: pair a refused open with
 * meta_release()). */
int meta_open_attr(meta *m, uint64_t ino, meta_attr *out) NB_MUST_CHECK;
/* Drops one open; reclaims the inode if that was the last open of an
 * unlinked inode. */
int meta_release(meta *m, uint64_t ino) NB_MUST_CHECK;

/* Creates an unnamed regular file (O_TMPFILE): nlink 0, opened once, in
 * the orphan set. Give it a name with meta_install(). */
int meta_tmpfile(meta *m, const meta_cred *c, uint64_t parent, uint32_t mode,
                 meta_attr *out) NB_MUST_CHECK;

#define META_INSTALL_REPLACE 1u /* replace an existing non-directory */

/* Links the unnamed file ino (from meta_tmpfile) at parent/name in one
 * batch, optionally replacing an existing file there (which loses that
 * link) and optionally attaching an object record (objrec.ptr NULL = keep
 * none): how an S3 PUT publishes a whole object atomically. -EEXIST
 * without REPLACE, -EISDIR when name is a directory. */
int meta_install(meta *m, const meta_cred *c, uint64_t ino, uint64_t parent, const char *name,
                 unsigned flags, nb_slice objrec, meta_attr *out) NB_MUST_CHECK;

/* ---- Chunk maps --------------------------------------------------------------------------- */

/* One slice reference in a chunk map. Bytes [pos, pos+len) of the chunk
 * are bytes [off, off+len) of slice id, a slice of size bytes stored as
 * ceil(size / META_BLOCK_SIZE) blocks keyed (id, block index). id 0 is a
 * hole (zeros). */
/* A slice id with this bit set is an inline slice: a small slice whose
 * bytes are kept in metadata ('L' record, meta_inline_get) instead of the
 * block store. Ids from meta_id_alloc never have it. */
#define META_SLICE_INLINE (1ull << 63)

typedef struct meta_slice {
    uint64_t id;
    uint32_t size;
    uint32_t off;
    uint32_t len;
    uint32_t pos;
} meta_slice;

/* Reads chunk index idx of ino: *out (owned; free with free()) receives
 * the slices oldest first, *n their count (0 and NULL for an empty chunk). */
int meta_chunk_read(meta *m, uint64_t ino, uint32_t idx, meta_slice **out, size_t *n) NB_MUST_CHECK;

/* Resolves slices (oldest first, newest wins) into non-overlapping pieces
 * covering [0, limit) in order, holes as id 0: what a read assembles.
 * *out is owned (free with free()). Pure function. */
void meta_chunk_resolve(const meta_slice *s, size_t n, uint32_t limit, meta_slice **out,
                        size_t *nout);

typedef struct meta_write {
    uint32_t chunk;   /* chunk index */
    meta_slice slice; /* pos + len <= META_CHUNK_SIZE */
} meta_write;

#define META_PUBLISH_SIZE     1u /* set the size to `size` exactly (else max(size, old, ends)) */
#define META_PUBLISH_KILLPRIV 2u /* clear setuid/setgid (a write by a non-root caller) */
#define META_PUBLISH_UNSYNCED 4u /* blocks not durable yet: record the slices as unsynced */

/* Publishes written slices: appends them to their chunk maps, grows the
 * size to cover them (or sets it, with META_PUBLISH_SIZE), sets mtime and
 * ctime to mtime_ns (0 = now), clears setuid/setgid with KILLPRIV, and, if objrec.ptr is
 * not NULL, replaces the object record — all in one batch. sync: durable
 * on return. out may be NULL. -EFBIG, -ENOSPC, -EISDIR, -ENOENT. */
int meta_publish(meta *m, uint64_t ino, const meta_write *w, size_t n, uint64_t size,
                 unsigned flags, int64_t mtime_ns, nb_slice objrec, int sync,
                 meta_attr *out) NB_MUST_CHECK;
/* The bytes of a new inline slice (id has META_SLICE_INLINE). */
typedef struct meta_inline {
    uint64_t id;
    nb_slice bytes; /* borrowed */
} meta_inline;
/* meta_publish that also stores inline slices' bytes in the same batch. */
int meta_publish_inline(meta *m, uint64_t ino, const meta_write *w, size_t n, uint64_t size,
                        unsigned flags, int64_t mtime_ns, nb_slice objrec, int sync,
                        const meta_inline *inl, size_t ninl, meta_attr *out) NB_MUST_CHECK;
/* The bytes of inline slice id into *out (replaced). NB_ENOTFOUND if
 * there is none. */
int meta_inline_get(meta *m, uint64_t id, nb_buf *out) NB_MUST_CHECK;
/* Stores inline slice bytes by themselves (nebula load). */
int meta_inline_put(meta *m, uint64_t id, nb_slice bytes) NB_MUST_CHECK;
/* Deletes the bytes of inline slices nothing references any more (the
 * collector's counterpart of deleting blocks). */
int meta_inline_drop(meta *m, const uint64_t *ids, size_t n) NB_MUST_CHECK;

/* Compaction: if chunk idx still begins with the first nold slices equal
 * to old, replaces those with the nnew slices in repl (appended later
 * slices stay on top). Slices no longer referenced go to the garbage list.
 * NB_ECONFLICT if the map changed. */
int meta_chunk_replace(meta *m, uint64_t ino, uint32_t idx, const meta_slice *old, size_t nold,
                       const meta_slice *repl, size_t nnew) NB_MUST_CHECK;

/* ---- Garbage slices (for the block collector) -------------------------------------------- */

typedef struct meta_garbage {
    uint64_t id;   /* slice id */
    uint32_t size; /* slice size in bytes: blocks 0..ceil(size/BLOCK)-1 */
} meta_garbage;

/* Up to max garbage slices with id > after, in id order, into out;
 * *n receives the count. */
int meta_garbage_list(meta *m, uint64_t after, meta_garbage *out, size_t max,
                      size_t *n) NB_MUST_CHECK;
/* Forgets garbage slices whose blocks the collector has deleted. */
int meta_garbage_done(meta *m, const uint64_t *ids, size_t n) NB_MUST_CHECK;

/* Unsynced slices: published with META_PUBLISH_UNSYNCED, their blocks not
 * yet known durable. The record goes in the publish's own batch and is
 * removed (meta_unsynced_done) only after the blocks were synced, so
 * whenever metadata naming such a slice survives a crash, so does its
 * record, and recovery can check the blocks (docs/vfs.md). Same shape as
 * the garbage list. */
int meta_unsynced_list(meta *m, uint64_t after, meta_garbage *out, size_t max,
                       size_t *n) NB_MUST_CHECK;
int meta_unsynced_done(meta *m, const uint64_t *ids, size_t n) NB_MUST_CHECK;
/* Recovery of lost unsynced slices: removes every piece of the slices
 * ids[0..n) from every chunk map (the bytes below show through: older
 * slices or zeros) and their unsynced records, in one batch, durably.
 * Offline only (no other meta call may run at the same time). */
int meta_slices_forget(meta *m, const uint64_t *ids, size_t n) NB_MUST_CHECK;

/* Calls cb for every slice referenced by any chunk map, then for every
 * slice held by a multipart part (with ino 0 and chunk = part number) (for the collector
 * after a crash: a block whose slice is neither referenced nor garbage and
 * whose id is below meta_id_high() was written but never published). */
typedef int (*meta_slice_cb)(void *arg, uint64_t ino, uint32_t chunk, const meta_slice *s);
int meta_slice_scan(meta *m, meta_slice_cb cb, void *arg) NB_MUST_CHECK;

/* ---- Ids ---------------------------------------------------------------------------------- */

enum { META_ID_INODE = 0, META_ID_SLICE = 1 };

/* Allocates count consecutive ids of kind (never reused, across restarts
 * and crashes) and puts the first in *first. */
int meta_id_alloc(meta *m, int kind, uint32_t count, uint64_t *first) NB_MUST_CHECK;
/* An id above every id handed out so far for kind. */
uint64_t meta_id_high(meta *m, int kind);

/* ---- Extended attributes ------------------------------------------------------------------ */

#define META_XATTR_CREATE  1 /* = XATTR_CREATE: -EEXIST if it exists */
#define META_XATTR_REPLACE 2 /* = XATTR_REPLACE: -ENODATA if it does not */

/* user.* needs read/write permission (and a regular file or directory),
 * trusted.* needs root; others are passed through. */
int meta_xattr_get(meta *m, const meta_cred *c, uint64_t ino, const char *name,
                   nb_buf *out) NB_MUST_CHECK;
int meta_xattr_set(meta *m, const meta_cred *c, uint64_t ino, const char *name, nb_slice value,
                   int flags) NB_MUST_CHECK;
/* Names as "a\0b\0" into out (reset first); trusted.* only for root. */
int meta_xattr_list(meta *m, const meta_cred *c, uint64_t ino, nb_buf *out) NB_MUST_CHECK;
int meta_xattr_remove(meta *m, const meta_cred *c, uint64_t ino, const char *name) NB_MUST_CHECK;

/* ---- statfs ------------------------------------------------------------------------------- */

typedef struct meta_statfs {
    uint64_t bytes_used;   /* sum of regular file sizes */
    uint64_t inodes_used;  /* inodes that exist, including orphans */
    uint64_t bytes_total;  /* max_bytes or 0 */
    uint64_t inodes_total; /* max_inodes or 0 */
} meta_statfs;

void meta_statfs_get(meta *m, meta_statfs *out);

/* ---- S3 object records -------------------------------------------------------------------- */

typedef struct meta_kvpair {
    char *key;
    char *value;
} meta_kvpair;

/* What S3 keeps per object beyond the inode. Strings may be NULL. Encoded
 * as a versioned record (docs/metadata-format.md) attached to the inode. */
typedef struct meta_objrec {
    char *etag;
    char *content_type;
    char *cache_control;
    char *content_disposition;
    char *content_encoding;
    char *content_language;
    char *expires;
    char *storage_class;
    char *version_id;
    char *checksum_algo;   /* "CRC32", "CRC32C", "SHA1", "SHA256" */
    char *checksum;        /* base64 as S3 returns it */
    int64_t etag_mtime_ns; /* the inode mtime the ETag was computed for */
    uint32_t parts;        /* multipart part count (0: single PUT) */
    uint64_t *part_sizes;  /* sizes of the parts in order (owned; NULL or `parts` entries) */
    uint8_t acl;           /* META_ACL_*: the object's own canned ACL */
    size_t nmeta;
    meta_kvpair *meta; /* x-amz-meta-* (key without the prefix) */
    size_t ntags;
    meta_kvpair *tags;
} meta_objrec;

/* An object's own ACL. NONE (no x-amz-acl given, or written before
 * object ACLs): as readable as its bucket. */
enum { META_ACL_NONE = 0, META_ACL_PRIVATE = 1, META_ACL_PUBLIC_READ = 2 };

/* Encodes r into out (appended). Borrows r. */
int meta_objrec_encode(const meta_objrec *r, nb_buf *out) NB_MUST_CHECK;
/* Decodes into *r (zeroed first; owns its strings; free with
 * meta_objrec_free). NB_ECORRUPT for malformed input, NB_EVERSION for a
 * newer record version. */
int meta_objrec_decode(nb_slice in, meta_objrec *r) NB_MUST_CHECK;
void meta_objrec_free(meta_objrec *r);

/* The encoded record of ino into out (reset first); NB_ENOTFOUND if none. */
int meta_objrec_get(meta *m, uint64_t ino, nb_buf *out) NB_MUST_CHECK;
/* Replaces (rec.ptr != NULL) or removes (rec.ptr == NULL) the record. */
int meta_objrec_set(meta *m, uint64_t ino, nb_slice rec) NB_MUST_CHECK;

/* What an S3 GET or HEAD needs of an object, read at one snapshot
 * (meta_get.c): bucket/key walked through dentries alone (their type
 * says which are directories; no permission checks, the gateway decides
 * access itself), then the object's inode and record, and with
 * META_OBJ_DATA the map of chunk 0 with the bytes of its inline slices.
 * A key ending in '/' names the directory (a marker). Returns 0, -ENOENT
 * (a segment missing, not a directory, or the leaf not a regular file),
 * or an error. Free with meta_obj_free. */
#define META_OBJ_DATA 1u
typedef struct meta_obj {
    meta_attr a;
    nb_buf rec;      /* the encoded object record; len 0: none */
    meta_slice *map; /* chunk 0's slices (META_OBJ_DATA), newest last */
    size_t nmap;
    nb_buf *inl; /* per slice of map: an inline slice's bytes, else empty */
    /* Non-NULL when the fields above belong to a kept answer that other
     * callers share (meta_objcache.c): read them, never change or free
     * them; meta_obj_free lets go of the share. */
    void *shared;
} meta_obj;
int meta_obj_get(meta *m, const char *bucket, const char *key, unsigned flags,
                 meta_obj *out) NB_MUST_CHECK;
void meta_obj_free(meta_obj *o);

/* ---- Buckets ------------------------------------------------------------------------------ */

enum { META_VERSIONING_OFF = 0, META_VERSIONING_ENABLED = 1, META_VERSIONING_SUSPENDED = 2 };

typedef struct meta_bucket {
    uint64_t ino;         /* the bucket's directory under the root */
    int64_t ctime_ns;     /* creation time */
    char *owner;          /* access key id of the owner (owned) */
    uint32_t versioning;  /* META_VERSIONING_* */
    uint32_t public_read; /* anonymous reads allowed */
    nb_buf cors;          /* opaque blobs (XML as received), owned */
    nb_buf lifecycle;
    nb_buf tagging;
    nb_buf policy;
} meta_bucket;

/* A bucket is a directory directly under the root; its record is attached
 * to the directory's inode (so rmdir of the directory, from either front
 * end, removes the record in the same batch). A top-level directory made
 * through the mount has no record: the gateway treats it as a bucket with
 * default settings. */

/* Frees the strings and blobs of b (not b itself). */
void meta_bucket_free(meta_bucket *b);

/* Creates directory name under the root (mode, owned by c) and attaches
 * the record *b to it in one batch; b->ino and b->ctime_ns are filled in.
 * -EEXIST and the other meta_mkdir errors. */
int meta_bucket_create(meta *m, const meta_cred *c, const char *name, uint32_t mode,
                       meta_bucket *b) NB_MUST_CHECK;
/* Reads the record of bucket name into *b (zeroed first; free with
 * meta_bucket_free). -ENOENT when there is no such directory, NB_ENOTFOUND
 * when the directory has no record. */
int meta_bucket_get(meta *m, const char *name, meta_bucket *b) NB_MUST_CHECK;
/* Rewrites the record of bucket name (ino and ctime_ns kept). -ENOENT. */
int meta_bucket_update(meta *m, const char *name, const meta_bucket *b) NB_MUST_CHECK;

/* ---- S3 users -------------------------------------------------------------------------------- */

/* A user beyond root: S3 credentials kept under key 'K' access-key
 * (docs/metadata-format.md). Root's credentials are not here (the server
 * takes them from its environment or DATA/root-credentials). */
typedef struct meta_user {
    char *access_key; /* 3..128 of A-Z a-z 0-9 - _ . (meta_user_key_check) */
    char *secret_key; /* never empty */
    int64_t ctime_ns; /* when it was added */
    char *name;       /* display name; may be NULL */
} meta_user;

#define META_USER_KEY_MIN 3
#define META_USER_KEY_MAX 128

/* 0 when access_key is a valid user access key, NB_EUSAGE otherwise. */
int meta_user_key_check(const char *access_key) NB_MUST_CHECK;
/* Adds u (borrowed), synced. -EEXIST when the access key is taken,
 * NB_EUSAGE for a bad access key or an empty secret. */
int meta_user_add(meta *m, const meta_user *u) NB_MUST_CHECK;
/* Reads the user of access_key into *u (zeroed first; free with
 * meta_user_free). NB_ENOTFOUND when there is none. */
int meta_user_get(meta *m, const char *access_key, meta_user *u) NB_MUST_CHECK;
/* Removes the user, synced. NB_ENOTFOUND when there is none. */
int meta_user_remove(meta *m, const char *access_key) NB_MUST_CHECK;
/* Every user in access-key byte order; cb's argument is valid during the
 * call; non-zero from cb stops and is returned. */
int meta_user_list(meta *m, int (*cb)(void *arg, const meta_user *u), void *arg) NB_MUST_CHECK;
void meta_user_free(meta_user *u);
/* The record value without its key, and back (for tests and tools). */
int meta_user_encode(const meta_user *u, nb_buf *out) NB_MUST_CHECK;
int meta_user_decode(nb_slice access_key, nb_slice in, meta_user *u) NB_MUST_CHECK;

/* ---- S3 multipart uploads ----------------------------------------------------------------- */

typedef struct meta_upload {
    uint64_t id;     /* upload id (unique, never reused) */
    uint64_t bucket; /* the bucket directory's inode */
    char *key;       /* object key (owned) */
    int64_t initiated_ns;
    char *owner;   /* owned; may be NULL */
    nb_buf objrec; /* encoded meta_objrec for the completed object (owned) */
} meta_upload;

typedef struct meta_part {
    uint32_t number; /* 1..10000 */
    char *etag;      /* owned */
    uint64_t size;
    int64_t mtime_ns;
    size_t nslices;
    meta_slice *slices; /* the part's bytes in order (pos unused); owned */
} meta_part;

/* Records a new upload; fills u->id and u->initiated_ns. Borrows u. */
int meta_upload_create(meta *m, meta_upload *u) NB_MUST_CHECK;
/* `nebula load`: records u as it was dumped, keeping its id and
 * initiated_ns (ids come from the slice id space, which load raises past
 * every dumped id). Borrows u. */
int meta_upload_restore(meta *m, const meta_upload *u) NB_MUST_CHECK;
/* Reads upload id into *u (zeroed first; free with meta_upload_free).
 * NB_ENOTFOUND (NoSuchUpload). */
int meta_upload_get(meta *m, uint64_t id, meta_upload *u) NB_MUST_CHECK;
void meta_upload_free(meta_upload *u);
/* Uploads of bucket in S3 order (key bytes, then upload id), starting
 * after (after_key, after_id) (after_key NULL: from the start). cb's
 * argument is valid during the call; non-zero stops. */
int meta_upload_list(meta *m, uint64_t bucket, const char *after_key, uint64_t after_id,
                     int (*cb)(void *arg, const meta_upload *u), void *arg) NB_MUST_CHECK;
/* Stores part p of upload (borrowed), replacing an earlier part with the
 * same number (whose slices become garbage). NB_ENOTFOUND. */
int meta_part_put(meta *m, uint64_t upload, const meta_part *p) NB_MUST_CHECK;
/* Parts in number order after `after`; non-zero from cb stops. */
int meta_part_list(meta *m, uint64_t upload, uint32_t after,
                   int (*cb)(void *arg, const meta_part *p), void *arg) NB_MUST_CHECK;
void meta_part_free(meta_part *p);
/* Drops the upload and its parts; all their slices become garbage. */
int meta_upload_abort(meta *m, uint64_t upload) NB_MUST_CHECK;
/* CompleteMultipartUpload: meta_install of the unnamed file ino (whose
 * chunk maps the caller filled from the parts' slices with meta_publish)
 * and removal of the upload in one batch; part slices the file does not
 * use become garbage. NB_ENOTFOUND if the upload is gone. */
int meta_upload_complete(meta *m, const meta_cred *c, uint64_t upload, uint64_t ino,
                         uint64_t parent, const char *name, unsigned flags, nb_slice objrec,
                         meta_attr *out) NB_MUST_CHECK;

/* ---- S3 versions ------------------------------------------------------------------------- */

/* The current version of a key is the file in the namespace; noncurrent
 * versions and delete markers are version records of the bucket
 * ('V', docs/metadata-format.md), invisible to lookup and readdir. An
 * object version keeps its inode (chunk maps, object record, xattrs): the
 * version record counts as its link, so its slices stay referenced until
 * the version is removed. seq orders the versions of a key (larger is
 * newer); version ids are names only ("null" for the null version). */
#define META_VERSION_ID_MAX 64 /* bytes of a version id */

typedef struct meta_version {
    uint64_t bucket;
    char *key; /* owned */
    uint64_t seq;
    char version_id[META_VERSION_ID_MAX + 1];
    bool delete_marker;
    uint64_t ino;          /* object versions: the kept inode; markers: 0 */
    int64_t mtime_ns;      /* Last-Modified of the version */
    int64_t noncurrent_ns; /* when it stopped being the current version */
} meta_version;
void meta_version_free(meta_version *v);

/* How a change treats the versions of bucket/key: with null_new the new
 * version is the null one, so the previous null version (current or not)
 * is removed for good; otherwise the replaced file is always kept. */
typedef struct meta_verput {
    uint64_t bucket;
    const char *key;
    bool null_new;
} meta_verput;

/* meta_install (REPLACE) in a versioned bucket: the replaced file becomes
 * the newest noncurrent version instead of losing its link. */
int meta_install_ver(meta *m, const meta_cred *c, uint64_t ino, uint64_t parent, const char *name,
                     nb_slice objrec, const meta_verput *vp, meta_attr *out) NB_MUST_CHECK;
/* meta_upload_complete (REPLACE) in a versioned bucket, likewise. */
int meta_upload_complete_ver(meta *m, const meta_cred *c, uint64_t upload, uint64_t ino,
                             uint64_t parent, const char *name, nb_slice objrec,
                             const meta_verput *vp, meta_attr *out) NB_MUST_CHECK;
/* DELETE without a version id: a delete marker named version_id becomes
 * the newest version; the current file at parent/name (parent 0: no
 * directory) is kept as noncurrent (or removed, see null_new). *out (may
 * be NULL) gets the marker. */
int meta_version_mark(meta *m, const meta_verput *vp, uint64_t parent, const char *name,
                      const char *version_id, meta_version *out) NB_MUST_CHECK;
/* Version records of bucket in key order, newest first within a key,
 * from (key, seq) inclusive (key NULL: from the start; seq UINT64_MAX:
 * every version of key). cb's argument is valid during the call;
 * non-zero stops. */
int meta_version_list(meta *m, uint64_t bucket, const char *key, uint64_t seq,
                      int (*cb)(void *arg, const meta_version *v), void *arg) NB_MUST_CHECK;
/* The noncurrent version version_id of key; NB_ENOTFOUND. */
int meta_version_find(meta *m, uint64_t bucket, const char *key, const char *version_id,
                      meta_version *out) NB_MUST_CHECK;
/* Removes noncurrent version seq of key for good (an object's inode goes
 * with its last link, or when its last reader closes). NB_ENOTFOUND. */
int meta_version_remove(meta *m, uint64_t bucket, const char *key, uint64_t seq) NB_MUST_CHECK;
/* Removes the current file ino at parent/name for good; in the same batch
 * the newest noncurrent version becomes current when it is an object
 * (*promoted = 1). -ENOENT when parent/name is no longer ino. */
int meta_version_remove_current(meta *m, uint64_t bucket, const char *key, uint64_t parent,
                                const char *name, uint64_t ino, int *promoted) NB_MUST_CHECK;
/* When parent/name is free and the newest version of key is an object,
 * makes it current again (*promoted = 1). */
int meta_version_promote(meta *m, uint64_t bucket, const char *key, uint64_t parent,
                         const char *name, int *promoted) NB_MUST_CHECK;
/* 1 when bucket has version records, 0 when not, <0 on error. */
int meta_version_any(meta *m, uint64_t bucket) NB_MUST_CHECK;
/* `nebula load`: writes version record *v as it was dumped (seq and
 * version id kept). An object version's inode v->ino is an unnamed file
 * from meta_tmpfile (or a file that has names already, a hard link): the
 * record becomes one more link of it. -EEXIST when (key, seq) is taken. */
int meta_version_restore(meta *m, const meta_version *v) NB_MUST_CHECK;

/* ---- Consistency check ---------------------------------------------------------------------- */

typedef struct meta_check_report {
    uint64_t inodes, dirs, files, dentries;
    uint64_t problems; /* inconsistencies found */
    uint64_t repaired; /* of those, fixed (with META_CHECK_REPAIR) */
} meta_check_report;

/* Receives one line per problem found (valid during the call). */
typedef void (*meta_check_log)(void *arg, const char *msg);

#define META_CHECK_REPAIR 1u

/* Checks every invariant of docs/metadata-format.md on the raw records
 * (dentry twins and types, link counts, directory parents and cookies,
 * orphans, records of missing inodes, chunk map shapes, id allocator
 * marks, usage counters) and, with META_CHECK_REPAIR, fixes what is safe
 * in one synced batch. Offline: no other thread may use m meanwhile.
 * Returns 0 (problems are counted in *out, not errors), or an error. */
int meta_check(meta *m, unsigned flags, meta_check_log log, void *arg,
               meta_check_report *out) NB_MUST_CHECK;

#endif
