/*
 * vfs.h — the one namespace API of NebulaStore. Both front ends, the S3
 * gateway (src/s3) and the FUSE mount (src/fuse), call only this; it sits
 * on the metadata model (src/meta) and the data path (src/data). See
 * docs/vfs.md for the semantics, the consistency model, the S3<->POSIX
 * mapping, the write path and the lock order.
 *
 * Model. A vfs is opened over a data directory holding the metadata store
 * (DIR/meta) and the block store (DIR/blocks). Every call carries the
 * caller's credentials (vfs_cred: uid, gid, supplementary groups); a NULL
 * cred means an internal caller and skips permission checks. Inodes are
 * named by 64-bit numbers (VFS_ROOT_INO is the root); file data goes
 * through open handles (vfs_file).
 *
 * Consistency. Writes through a handle are buffered in the handle and
 * published — blocks written and synced first, then one metadata batch —
 * on vfs_flush, vfs_fsync and vfs_release (and early when the buffer is
 * large). A handle reads its own unpublished writes; other handles see
 * published data only: close-to-open consistency, as NFS and FUSE with
 * writeback caching give. Namespace operations are visible to every
 * caller at once. Durable: after vfs_fsync (or vfs_sync) returns, and
 * after an S3 put commits.
 *
 * Thread safety: a vfs may be used by any number of threads at once.
 * Operations on one inode serialize, independent ones run in parallel. A
 * vfs_file may be used by several threads at once (calls on it serialize).
 *
 * Errors: 0 or -errno exactly as a Linux file system returns them
 * (-ENOENT, -EEXIST, -ENOTDIR, -EISDIR, -ENOTEMPTY, -EINVAL,
 * -ENAMETOOLONG, -ELOOP, -EACCES, -EPERM, -EMLINK, -EXDEV, -EBADF,
 * -EFBIG, -ENOSPC, -EROFS, -EIO for a block that fails its checksum,
 * ...). vfs_open and the tools may also return NB_E* codes.
 *
 * Types: the value types (attributes, credentials, setattr requests (vfs_sattr),
 * directory entries, object and bucket records) are those of the metadata
 * model, re-exported under vfs_ names; callers use only the vfs_ names.
 */
#ifndef NB_VFS_VFS_H
#define NB_VFS_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/status.h"
#include "meta/meta.h"

typedef struct vfs vfs;
typedef struct vfs_file vfs_file;

typedef meta_cred vfs_cred;
typedef meta_attr vfs_attr;
typedef meta_sattr vfs_sattr;
typedef meta_dirent vfs_dirent;
typedef meta_dirent_cb vfs_dirent_cb;
typedef meta_objrec vfs_objrec;
typedef meta_kvpair vfs_kvpair;
typedef meta_bucket vfs_bucket;
typedef meta_user vfs_user;

#define VFS_ROOT_INO      META_ROOT_INO
#define VFS_NAME_MAX      META_NAME_MAX
#define VFS_MAX_FILE_SIZE META_MAX_FILE_SIZE
#define VFS_KEY_MAX       1024 /* bytes in an S3 key */
#define VFS_SYMLOOP_MAX   40   /* symlinks followed in one path walk */

/* setattr valid bits (vfs_setattr.valid). */
#define VFS_SET_MODE      META_SET_MODE
#define VFS_SET_UID       META_SET_UID
#define VFS_SET_GID       META_SET_GID
#define VFS_SET_SIZE      META_SET_SIZE
#define VFS_SET_ATIME     META_SET_ATIME
#define VFS_SET_MTIME     META_SET_MTIME
#define VFS_SET_ATIME_NOW META_SET_ATIME_NOW
#define VFS_SET_MTIME_NOW META_SET_MTIME_NOW
#define VFS_SET_CTIME     META_SET_CTIME

#define VFS_READDIR_ATTRS META_READDIR_ATTRS /* readdirplus */
#define VFS_READDIR_DOTS  META_READDIR_DOTS

#define VFS_RENAME_NOREPLACE META_RENAME_NOREPLACE
#define VFS_RENAME_EXCHANGE  META_RENAME_EXCHANGE

#define VFS_XATTR_CREATE  META_XATTR_CREATE
#define VFS_XATTR_REPLACE META_XATTR_REPLACE

/* ---- Opening ------------------------------------------------------------------------------ */

typedef struct vfs_options {
    const char *data_dir;         /* required: DIR/meta and DIR/blocks live here */
    const char *meta_engine;      /* kv backend; NULL = kv default */
    const char *block_store;      /* for a new directory: "disk" or "dir"; NULL = dir. A
                                     directory keeps the store it was made with */
    uint64_t disk_size;           /* disk store: bound of its data file; 0 = grow while
                                     the file system keeps disk_reserve free */
    uint64_t disk_reserve;        /* disk store: free space left; 0 = 5 %, at most 4 GiB */
    const char *disk_files;       /* disk store of a new directory: its data files, comma
                                     separated, relative to DIR/disk unless absolute;
                                     NULL = one, data.0 */
    size_t cache_bytes;           /* block cache; 0 = data default (256 MiB) */
    size_t kv_cache_bytes;        /* the metadata kv's block cache (inline small files
                                     live there too); 0 = kv default */
    unsigned threads;             /* block I/O threads; 0 = data defaults */
    bool read_only;               /* every modifying call returns -EROFS */
    uint64_t capacity_bytes;      /* statfs size and ENOSPC limit; 0 = unlimited */
    uint64_t capacity_inodes;     /* 0 = unlimited */
    bool sync;                    /* every namespace operation durable on return */
    size_t write_buffer_bytes;    /* per-handle in-memory dirty bound; 0 = 8 MiB */
    int64_t maintain_interval_ms; /* background compactor+collector period; 0 = 30 s,
                                     < 0 = no timer thread (vfs_maintain only) */
    uint64_t collect_grace_ns;    /* unreferenced blocks younger than this are kept;
                                     0 = data default (1 hour) */
} vfs_options;

void vfs_options_init(vfs_options *o);

/* Opens (creating if empty) the namespace in o->data_dir. Borrows o. Takes
 * the block store's directory lock (NB_ELOCKED if another process has it).
 * *out is owned (close with vfs_close), NULL on failure. */
int vfs_open(const vfs_options *o, vfs **out) NB_MUST_CHECK;
/* Stops the background thread and closes. Handles still open are
 * published and released first. NULL is a no-op. */
void vfs_close(vfs *v);
/* Makes every completed namespace operation durable (syncfs). */
int vfs_sync(vfs *v) NB_MUST_CHECK;

/* ---- Attributes and names ----------------------------------------------------------------- */

/* Looks name up in parent (search permission on parent). out may be NULL. */
int vfs_lookup(vfs *v, const vfs_cred *c, uint64_t parent, const char *name,
               vfs_attr *out) NB_MUST_CHECK;
/* Attributes of ino. The size includes writes buffered in open handles,
 * and mtime and ctime are at least the time of the latest of them. */
int vfs_getattr(vfs *v, uint64_t ino, vfs_attr *out) NB_MUST_CHECK;
/* chmod/chown/truncate/utimensat rules. f (may be NULL) is the handle the
 * change goes through (ftruncate: no write-permission check; its buffered
 * writes are published first). out may be NULL. */
int vfs_setattr(vfs *v, const vfs_cred *c, uint64_t ino, vfs_file *f, const vfs_sattr *sa,
                vfs_attr *out) NB_MUST_CHECK;
/* access(2): mask of R_OK|W_OK|X_OK, 0 = existence. W_OK on a read-only
 * vfs is -EROFS. */
int vfs_access(vfs *v, const vfs_cred *c, uint64_t ino, int mask) NB_MUST_CHECK;

/* Node creation. mode carries the type (S_IFREG, S_IFIFO, S_IFSOCK,
 * S_IFCHR, S_IFBLK for mknod) and permission bits, umask already applied
 * by the caller. out may be NULL. */
int vfs_mknod(vfs *v, const vfs_cred *c, uint64_t parent, const char *name, uint32_t mode,
              uint64_t rdev, vfs_attr *out) NB_MUST_CHECK;
int vfs_mkdir(vfs *v, const vfs_cred *c, uint64_t parent, const char *name, uint32_t mode,
              vfs_attr *out) NB_MUST_CHECK;
int vfs_symlink(vfs *v, const vfs_cred *c, uint64_t parent, const char *name, const char *target,
                vfs_attr *out) NB_MUST_CHECK;
int vfs_link(vfs *v, const vfs_cred *c, uint64_t ino, uint64_t newparent, const char *newname,
             vfs_attr *out) NB_MUST_CHECK;
int vfs_unlink(vfs *v, const vfs_cred *c, uint64_t parent, const char *name) NB_MUST_CHECK;
int vfs_rmdir(vfs *v, const vfs_cred *c, uint64_t parent, const char *name) NB_MUST_CHECK;
/* renameat2 with 0, VFS_RENAME_NOREPLACE or VFS_RENAME_EXCHANGE. */
int vfs_rename(vfs *v, const vfs_cred *c, uint64_t parent, const char *name, uint64_t newparent,
               const char *newname, unsigned flags) NB_MUST_CHECK;
/* The target of symlink ino into out (reset first; NUL-terminated). */
int vfs_readlink(vfs *v, uint64_t ino, nb_buf *out) NB_MUST_CHECK;

/* Path walk from the root ("a/b/c", "/a/b", leading, doubled and trailing
 * slashes ignored), following symlinks in the middle (and at the end
 * with VFS_RESOLVE_FOLLOW), at most VFS_SYMLOOP_MAX of them (-ELOOP).
 * Absolute symlink targets restart at the vfs root. */
#define VFS_RESOLVE_FOLLOW 1u
int vfs_resolve(vfs *v, const vfs_cred *c, const char *path, unsigned flags,
                vfs_attr *out) NB_MUST_CHECK;
/* Resolves the directory that holds the last component of path into
 * *parent and points *leaf into path at that component (borrowed from
 * path; may end with '/' characters, which callers strip or refuse).
 * -EINVAL for a path with no last component ("" or "/"). */
int vfs_resolve_parent(vfs *v, const vfs_cred *c, const char *path, uint64_t *parent,
                       const char **leaf) NB_MUST_CHECK;

/* ---- Directories -------------------------------------------------------------------------- */

/* Checks read permission on a directory (-ENOTDIR, -EACCES). */
int vfs_opendir(vfs *v, const vfs_cred *c, uint64_t ino) NB_MUST_CHECK;
/* Lists from cookie off (0 = start); each entry's next_off continues after
 * it, stable under concurrent creates and removes. With VFS_READDIR_ATTRS
 * each entry carries its attributes (readdirplus). cb returns non-zero to
 * stop. */
int vfs_readdir(vfs *v, uint64_t ino, uint64_t off, unsigned flags, vfs_dirent_cb cb,
                void *arg) NB_MUST_CHECK;

/* ---- Files -------------------------------------------------------------------------------- */

/* Opens regular file ino with open(2) flags (O_RDONLY/O_WRONLY/O_RDWR,
 * O_APPEND, O_TRUNC; O_CREAT/O_EXCL belong to vfs_create). Checks
 * read/write permission for the mode. -EISDIR for a directory opened for
 * writing, -EINVAL for other non-regular files, -ELOOP for a symlink.
 * *out is owned; end it with vfs_release. */
int vfs_file_open(vfs *v, const vfs_cred *c, uint64_t ino, int flags, vfs_file **out) NB_MUST_CHECK;
/* open(O_CREAT): creates name in parent and opens it. With O_EXCL an
 * existing name is -EEXIST; without, the existing file is opened
 * (honouring O_TRUNC). *out as for vfs_file_open; attr (may be NULL) gets
 * the file's attributes. */
int vfs_create(vfs *v, const vfs_cred *c, uint64_t parent, const char *name, uint32_t mode,
               int flags, vfs_attr *attr, vfs_file **out) NB_MUST_CHECK;
/* Reads up to len bytes at off into buf; *got is short only at end of
 * file. Sees this handle's own unpublished writes. -EBADF if not opened
 * for reading. Give it a 64-byte-aligned buf (page-aligned is best): warm
 * reads are one kernel copy out of the page cache, which on this machine
 * costs 4x the CPU into a buffer 1-31 bytes off its source's place in a
 * cache line (a malloc'd buffer is 16 bytes off; docs/vfs.md §9). */
int vfs_read(vfs_file *f, uint64_t off, void *buf, size_t len, size_t *got) NB_MUST_CHECK;
/* Writes len bytes at off (at the end of file for O_APPEND handles) into
 * the handle's buffer. *end_off (may be NULL) gets the offset after the
 * write. -EBADF if not opened for writing, -EFBIG past the largest file. */
int vfs_write(vfs_file *f, uint64_t off, const void *buf, size_t len,
              uint64_t *end_off) NB_MUST_CHECK;
/* Publishes buffered writes (close(2) on one of several descriptors). */
int vfs_flush(vfs_file *f) NB_MUST_CHECK;
/* Publishes buffered writes and makes them and the metadata durable. */
int vfs_fsync(vfs_file *f, bool datasync) NB_MUST_CHECK;
/* Publishes, drops the open (an unlinked file goes with its last open) and
 * frees f. Returns the publish error, if any; f is gone either way. NULL
 * is a no-op. */
int vfs_release(vfs_file *f);
uint64_t vfs_file_ino(const vfs_file *f);
/* The attributes the open was checked against, as read then (no read
 * now): for a caller that wants the size at open without another read. */
const vfs_attr *vfs_file_open_attr(const vfs_file *f);

/* fallocate(2): mode 0 and FALLOC_FL_KEEP_SIZE (the store is sparse, so
 * nothing is reserved: only the size grows for mode 0),
 * FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE and FALLOC_FL_ZERO_RANGE
 * (with or without KEEP_SIZE); others -EOPNOTSUPP. */
int vfs_fallocate(vfs_file *f, int mode, uint64_t off, uint64_t len) NB_MUST_CHECK;
/* lseek(2) with SEEK_DATA or SEEK_HOLE: the next data or hole offset at or
 * after off into *out. -ENXIO past the end. Other whence: -EINVAL. */
int vfs_lseek(vfs_file *f, uint64_t off, int whence, uint64_t *out) NB_MUST_CHECK;
/* copy_file_range(2): copies len bytes by sharing the source's slices
 * (metadata only, no data is read or written; both handles' buffers are
 * published first). *copied is short only at the source's end of file.
 * fin must be readable, fout writable and not O_APPEND (-EBADF); the same
 * file with overlapping ranges is -EINVAL. */
int vfs_copy_range(vfs_file *fin, uint64_t off_in, vfs_file *fout, uint64_t off_out, size_t len,
                   size_t *copied) NB_MUST_CHECK;

/* ---- File system ------------------------------------------------------------------------ */

typedef struct vfs_statfs {
    uint32_t bsize; /* preferred I/O size */
    uint32_t namemax;
    uint64_t blocks; /* in bsize units */
    uint64_t bfree;
    uint64_t bavail;
    uint64_t files;
    uint64_t ffree;
} vfs_statfs;
int vfs_statfs_get(vfs *v, vfs_statfs *out) NB_MUST_CHECK;

/* Extended attributes (names and flags as getxattr(2) & co). get/list
 * write into out (reset first); -ENODATA, -ERANGE is the caller's (it
 * knows its buffer). Names under "trusted.nebula." are reserved. */
int vfs_xattr_get(vfs *v, const vfs_cred *c, uint64_t ino, const char *name,
                  nb_buf *out) NB_MUST_CHECK;
int vfs_xattr_set(vfs *v, const vfs_cred *c, uint64_t ino, const char *name, nb_slice value,
                  int flags) NB_MUST_CHECK;
int vfs_xattr_list(vfs *v, const vfs_cred *c, uint64_t ino, nb_buf *out) NB_MUST_CHECK;
int vfs_xattr_remove(vfs *v, const vfs_cred *c, uint64_t ino, const char *name) NB_MUST_CHECK;

/* ---- S3 on the namespace (docs/vfs.md "S3 <-> POSIX") --------------------------------------- */

/* A bucket is a directory under the root; an object key "a/b/c" is the
 * file a/b/c in it. Parent directories a PUT needs are created
 * ("implicit" directories) and removed again by the DELETE that empties
 * them. A key ending in '/' is a directory marker: an empty object that is
 * the directory itself. Keys that cannot be paths — empty segments
 * ("a//b", "/a"), "." or ".." segments, a NUL byte, a segment over 255
 * bytes (-ENAMETOOLONG), over VFS_KEY_MAX bytes (-ENAMETOOLONG) — are
 * -EINVAL. A key whose parent path crosses a file is -ENOTDIR; a PUT onto
 * a non-empty directory is -EISDIR. Nothing is created on any error. */
int vfs_s3_key_check(const char *key) NB_MUST_CHECK;

/* Resolves bucket/key to an object: a regular file, or for a key ending
 * in '/' a directory (a marker, size 0). -ENOENT when there is no such
 * object (also for "a" naming a directory, or "a/" naming a file), no
 * symlinks are followed (-ENOENT). */
int vfs_s3_lookup(vfs *v, const vfs_cred *c, const char *bucket, const char *key,
                  vfs_attr *out) NB_MUST_CHECK;

/* Atomic whole-object PUT. Bytes stream into new slices of an unnamed
 * file; commit publishes them and puts the file at the key in one metadata
 * transaction replacing any old object: readers see the old object or the
 * new one, never a mix. Memory per put is bounded by a few blocks. */
typedef struct vfs_put vfs_put;
/* Starts a put. Checks the key and the bucket; mode is the new file's
 * permission bits. *out is owned: end it with vfs_put_commit or
 * vfs_put_abort. */
int vfs_put_begin(vfs *v, const vfs_cred *c, const char *bucket, const char *key, uint32_t mode,
                  vfs_put **out) NB_MUST_CHECK;
/* Appends bytes (borrowed). */
int vfs_put_write(vfs_put *p, const void *buf, size_t len) NB_MUST_CHECK;
/* Makes the bytes durable, creates missing parent directories and
 * installs the object with record rec (encoded with vfs_objrec_encode;
 * rec.ptr NULL = none), durably. The record is stored with its
 * etag_mtime_ns set to the mtime the commit gives the file. Frees p
 * either way. out may be NULL. */
int vfs_put_commit(vfs_put *p, nb_slice rec, vfs_attr *out) NB_MUST_CHECK;
/* Drops the put; nothing becomes visible. NULL is a no-op. */
void vfs_put_abort(vfs_put *p);

/* Zero-copy reads (S3 GET): bytes [off, off+len) of a file opened for
 * reading, as pieces to send with sendfile or to map: each is len bytes
 * at offset off of descriptor fd (borrowed), or zeros when fd is -1. A
 * piece is verified by the block store before it is handed out, or
 * (vfs_refs_check_span true: the disk store) must be mapped, checked on
 * the mapping with vfs_refs_check and sent from that mapping. The pieces stay valid
 * until vfs_refs_free, even if the file is changed or deleted meanwhile.
 * Only published bytes are seen (a handle's own buffered writes are
 * not): -EAGAIN for a handle with unpublished writes. The range is
 * clipped at the end of file: the pieces' lengths add up to fewer bytes
 * then. */
typedef struct vfs_piece {
    int fd;
    uint64_t off;
    size_t len;
} vfs_piece;
typedef struct vfs_refs vfs_refs;
int vfs_read_refs(vfs_file *f, uint64_t off, uint64_t len, vfs_refs **out) NB_MUST_CHECK;
/* The pieces of r, in file order; *n gets their count. */
const vfs_piece *vfs_refs_pieces(const vfs_refs *r, size_t *n);
/* Whether piece i must be checked before it is sent; if so, a mapping
 * given to vfs_refs_check must cover bytes [*lo, *hi) of its fd. */
bool vfs_refs_check_span(const vfs_refs *r, size_t i, uint64_t *lo, uint64_t *hi);
/* Checks piece i on map, a mapping of its fd's bytes [map_off, map_off +
 * map_len) covering vfs_refs_check_span's range: 0 (also when no check is
 * needed), -EIO when its bytes fail their CRCs (logged), -EINVAL when the
 * mapping does not cover the range. */
int vfs_refs_check(const vfs_refs *r, size_t i, const void *map, uint64_t map_off,
                   size_t map_len) NB_MUST_CHECK;
/* Releases the pieces (their blocks may go) and frees r. NULL is a no-op. */
void vfs_refs_free(vfs_refs *r);

/* An S3 GET or HEAD without opening the file (refs.c): the object's
 * attributes and record and, with data, chunk 0's map, all from one
 * metadata snapshot (meta_obj_get), with a data pin held from before the
 * snapshot until vfs_s3_obj_free so the blocks that map names stay.
 * -ENOENT, -EINVAL, -ENAMETOOLONG as vfs_s3_lookup (the caller tells
 * NoSuchBucket from NoSuchKey). The attributes count unpublished writes
 * of open handles, as vfs_getattr does. */
typedef struct vfs_s3_obj vfs_s3_obj;
int vfs_s3_get(vfs *v, const char *bucket, const char *key, bool data,
               vfs_s3_obj **out) NB_MUST_CHECK;
const vfs_attr *vfs_s3_obj_attr(const vfs_s3_obj *o);
/* The encoded object record; len 0 when the object has none. */
nb_slice vfs_s3_obj_rec(const vfs_s3_obj *o);
/* Bytes [off, off+len) of the object as of the snapshot (off + len <= its
 * size): into buf, or as zero-copy pieces (vfs_read_refs). -EAGAIN when
 * the snapshot cannot answer (no data asked, more than one chunk, an open
 * handle's unpublished writes; refs: inline slices): open the file. */
int vfs_s3_obj_read(vfs_s3_obj *o, uint64_t off, void *buf, size_t len) NB_MUST_CHECK;
int vfs_s3_obj_refs(vfs_s3_obj *o, uint64_t off, uint64_t len, vfs_refs **out) NB_MUST_CHECK;
/* Where bytes [off, off+len) lie in the snapshot, when they are all in
 * the newest slice of chunk 0 and it is inline (a small PUT): valid until
 * vfs_s3_obj_free, read-only. NULL otherwise (vfs_s3_obj_read copies). */
const uint8_t *vfs_s3_obj_inline(const vfs_s3_obj *o, uint64_t off, uint64_t len);
/* True when zero-copy pieces of [off, off+len) would first read blocks
 * from the device to verify them all (data_chunk_cold): a stream of the
 * snapshot (vfs_s3_obj_stream) then starts sending sooner. */
bool vfs_s3_obj_cold(vfs_s3_obj *o, uint64_t off, uint64_t len);
/* vfs_s3_obj_cold for an open file (versions, objects over one chunk):
 * looks at the chunk holding off only, the start of the answer. */
bool vfs_s3_file_cold(vfs_file *f, uint64_t off, uint64_t len);
/* vfs_s3_obj_read for one reader going through the object in order (one
 * thread at a time): the blocks ahead of it load in the background, as
 * for an open file's sequential reads. */
int vfs_s3_obj_stream(vfs_s3_obj *o, uint64_t off, void *buf, size_t len) NB_MUST_CHECK;
/* Ends the pin. NULL is a no-op. */
void vfs_s3_obj_free(vfs_s3_obj *o);

/* Opens the object for reading (a vfs_file; read with vfs_read). */
int vfs_s3_open(vfs *v, const vfs_cred *c, const char *bucket, const char *key,
                vfs_file **out) NB_MUST_CHECK;
/* Deletes the object and then every implicit parent directory it leaves
 * empty. A marker "a/" of a non-empty directory is not an object of its
 * own: deleting it succeeds and changes nothing. -ENOENT if absent. */
int vfs_s3_delete(vfs *v, const vfs_cred *c, const char *bucket, const char *key) NB_MUST_CHECK;

/* Object records (ETag, headers, user metadata, tags). */
int vfs_objrec_encode(const vfs_objrec *r, nb_buf *out) NB_MUST_CHECK;
int vfs_objrec_decode(nb_slice in, vfs_objrec *r) NB_MUST_CHECK;
void vfs_objrec_free(vfs_objrec *r);
/* The encoded record of ino into out; NB_ENOTFOUND if it has none. */
int vfs_objrec_get(vfs *v, uint64_t ino, nb_buf *out) NB_MUST_CHECK;
int vfs_objrec_set(vfs *v, uint64_t ino, nb_slice rec) NB_MUST_CHECK;

/* Buckets: directories under the root with a record (meta_bucket). */
int vfs_bucket_create(vfs *v, const vfs_cred *c, const char *name, uint32_t mode,
                      vfs_bucket *b) NB_MUST_CHECK;
int vfs_bucket_get(vfs *v, const char *name, vfs_bucket *b) NB_MUST_CHECK;
int vfs_bucket_update(vfs *v, const char *name, const vfs_bucket *b) NB_MUST_CHECK;
void vfs_bucket_free(vfs_bucket *b);
/* Removes an empty bucket (-ENOTEMPTY otherwise). */
int vfs_bucket_delete(vfs *v, const vfs_cred *c, const char *name) NB_MUST_CHECK;

/* S3 users beyond root (meta_user_*; user.c): kept in metadata, every
 * change synced. */
int vfs_user_add(vfs *v, const vfs_user *u) NB_MUST_CHECK;
int vfs_user_get(vfs *v, const char *access_key, vfs_user *u) NB_MUST_CHECK;
int vfs_user_remove(vfs *v, const char *access_key) NB_MUST_CHECK;
int vfs_user_list(vfs *v, int (*cb)(void *arg, const vfs_user *u), void *arg) NB_MUST_CHECK;
void vfs_user_free(vfs_user *u);

/* ListObjects over a bucket in S3 key order (byte order of the full key,
 * so "a.txt" comes before "a/b"). Calls cb for each key or common prefix
 * in order, at most max_keys of them (0 = 1000); sets *truncated when more
 * follow, and *next (owned, free with free(); NULL when not truncated) to
 * the last key or prefix returned, which as start_after continues the
 * listing without repeats or skips. */
typedef struct vfs_list_opts {
    const char *prefix;      /* NULL = "" */
    const char *delimiter;   /* NULL = none; any string */
    const char *start_after; /* exclusive; NULL = from the start */
    size_t max_keys;
} vfs_list_opts;
typedef struct vfs_list_entry {
    const char *key; /* the key or the common prefix; valid during the callback */
    size_t key_len;
    bool is_prefix;       /* a CommonPrefixes entry: attr is NULL */
    const vfs_attr *attr; /* objects: the file's (or marker directory's) attributes */
} vfs_list_entry;
typedef int (*vfs_list_cb)(void *arg, const vfs_list_entry *e);
int vfs_s3_list(vfs *v, const vfs_cred *c, const char *bucket, const vfs_list_opts *o,
                vfs_list_cb cb, void *arg, bool *truncated, char **next) NB_MUST_CHECK;

/* ---- S3 multipart uploads ------------------------------------------------------------------- */

/* An upload is a metadata record (meta_upload) with its parts; a part's
 * bytes are slices written when it is uploaded, and Complete makes the
 * object from those same slices (no data is copied): one metadata
 * transaction installs it at the key, replacing any old object, and
 * drops the upload. The gateway validates part order, ETags and sizes
 * (InvalidPart, InvalidPartOrder, EntityTooSmall) from vfs_part_list. */
typedef meta_upload vfs_upload;
typedef meta_part vfs_part_info;

/* Starts an upload of bucket/key (key rules as for PUT; a marker key is
 * -EINVAL). owner may be NULL; rec is the encoded record the completed
 * object gets. Nothing appears in the namespace until Complete. */
int vfs_mpu_create(vfs *v, const vfs_cred *c, const char *bucket, const char *key,
                   const char *owner, nb_slice rec, uint64_t *upload_id) NB_MUST_CHECK;
/* The upload's record into *u (free with vfs_upload_free). NB_ENOTFOUND
 * for an unknown upload (NoSuchUpload). */
int vfs_mpu_get(vfs *v, uint64_t upload_id, vfs_upload *u) NB_MUST_CHECK;
void vfs_upload_free(vfs_upload *u);
/* Uploads of bucket in S3 order (key, then upload id) after (after_key,
 * after_id); cb's argument is valid during the call, non-zero stops. */
int vfs_mpu_list(vfs *v, const vfs_cred *c, const char *bucket, const char *after_key,
                 uint64_t after_id, int (*cb)(void *arg, const vfs_upload *u),
                 void *arg) NB_MUST_CHECK;
/* Aborts: the upload and its parts go, their blocks are collected. */
int vfs_mpu_abort(vfs *v, uint64_t upload_id) NB_MUST_CHECK;
/* Parts in number order after `after` (cb's argument valid during the call). */
int vfs_part_list(vfs *v, uint64_t upload_id, uint32_t after,
                  int (*cb)(void *arg, const vfs_part_info *p), void *arg) NB_MUST_CHECK;

/* UploadPart, streamed like a PUT: begin, write, commit (durable; replaces
 * an earlier part with the same number). number is 1..10000 (-EINVAL). */
typedef struct vfs_part vfs_part;
int vfs_part_begin(vfs *v, uint64_t upload_id, uint32_t number, vfs_part **out) NB_MUST_CHECK;
int vfs_part_write(vfs_part *p, const void *buf, size_t len) NB_MUST_CHECK;
/* etag (borrowed) is stored with the part. Frees p either way. */
int vfs_part_commit(vfs_part *p, const char *etag) NB_MUST_CHECK;
void vfs_part_abort(vfs_part *p);

/* The part sizes of multipart object ino (size bytes, parts parts) as its
 * chunk maps show them, for records written before the sizes were kept:
 * Complete lays each part's slices end to end, so when the file (still as
 * completed) shows exactly `parts` runs of pieces, each run a slice read
 * in order, those are the parts. NB_ENOTFOUND when the maps do not tell
 * (a part of several slices, a file rewritten or compacted since). */
int vfs_mpu_part_sizes(vfs *v, uint64_t ino, uint64_t size, uint32_t parts,
                       uint64_t *sizes) NB_MUST_CHECK;
/* CompleteMultipartUpload: the object is parts numbers[0..n) concatenated
 * (each must exist: NB_ENOTFOUND otherwise, nothing changes), with record
 * rec (rec.ptr NULL: the one given at create). Atomic and durable like a
 * PUT. out may be NULL. */
int vfs_mpu_complete(vfs *v, const vfs_cred *c, uint64_t upload_id, const uint32_t *numbers,
                     size_t n, nb_slice rec, vfs_attr *out) NB_MUST_CHECK;

/* CompleteMultipartUpload into a bucket with versioning (VFS_VER_*), as
 * vfs_put_versioning says for a PUT. */
int vfs_mpu_complete_ver(vfs *v, const vfs_cred *c, uint64_t upload_id, const uint32_t *numbers,
                         size_t n, nb_slice rec, int versioning, vfs_attr *out) NB_MUST_CHECK;

/* ---- S3 versions (docs/vfs.md "Versions") ------------------------------------------------ */

/* The current version of a key is the file in the namespace (what the
 * mount shows); noncurrent versions and delete markers are meta's version
 * records, invisible to lookup and readdir. An object version keeps its
 * inode, so a noncurrent version is read with vfs_file_open(v->ino). */
typedef meta_version vfs_version;
#define VFS_VER_OFF         META_VERSIONING_OFF       /* the replaced object goes */
#define VFS_VER_ENABLED     META_VERSIONING_ENABLED   /* the replaced object is kept */
#define VFS_VER_SUSPENDED   META_VERSIONING_SUSPENDED /* the new object is the null version */
#define VFS_VERSION_ID_MAX  META_VERSION_ID_MAX
#define VFS_ACL_NONE        META_ACL_NONE        /* an object's ACL: as its bucket */
#define VFS_ACL_PRIVATE     META_ACL_PRIVATE     /* its owner only */
#define VFS_ACL_PUBLIC_READ META_ACL_PUBLIC_READ /* anyone may read it */

/* How the put's commit treats the object it replaces (VFS_VER_*; default
 * VFS_VER_OFF). The version id is the caller's, in the record. */
void vfs_put_versioning(vfs_put *p, int versioning);
/* A new version id: 16 lowercase hex digits, never handed out before. */
int vfs_version_id_new(vfs *v, char out[17]) NB_MUST_CHECK;
/* The version id of the current object ino ("null" when its record has
 * none) into out. */
int vfs_version_id_of(vfs *v, uint64_t ino, char out[VFS_VERSION_ID_MAX + 1]) NB_MUST_CHECK;
/* DELETE without a version id in a versioned bucket: a delete marker
 * named version_id ("null" when suspended) becomes the newest version of
 * key, the current object (if any) a noncurrent one. Implicit directories
 * left empty go. *out (may be NULL; free with vfs_version_free) gets the
 * marker. */
int vfs_version_mark(vfs *v, const char *bucket, const char *key, int versioning,
                     const char *version_id, vfs_version *out) NB_MUST_CHECK;
/* The noncurrent version (or delete marker) version_id of key;
 * NB_ENOTFOUND. Free with vfs_version_free. */
int vfs_version_get(vfs *v, const char *bucket, const char *key, const char *version_id,
                    vfs_version *out) NB_MUST_CHECK;
/* Removes version version_id of key for good, current or not. When the
 * current one or the newest delete marker goes, the newest remaining
 * version becomes current if it is an object. *was_marker (may be NULL)
 * tells whether a delete marker went. NB_ENOTFOUND: no such version. */
int vfs_version_delete(vfs *v, const char *bucket, const char *key, const char *version_id,
                       bool *was_marker) NB_MUST_CHECK;
/* Version records of bucket (noncurrent versions and markers) in key
 * order, newest first within a key, from (key, seq) inclusive (key NULL:
 * all; seq UINT64_MAX: every version of key). Non-zero from cb stops. */
int vfs_version_list(vfs *v, const char *bucket, const char *key, uint64_t seq,
                     int (*cb)(void *arg, const vfs_version *ver), void *arg) NB_MUST_CHECK;
void vfs_version_free(vfs_version *ver);

/* ---- Change notifications ---------------------------------------------------------------------
 */

/* Changes made through the S3 calls (PUT, DELETE with the implicit
 * directories it removes, multipart Complete, bucket create/delete) are
 * reported to one callback, so the FUSE front end can invalidate the
 * kernel's caches for them (fuse_lowlevel_notify_inval_entry/_inode):
 * the kernel knows about changes made through the mount, not these.
 *   VFS_NOTIFY_ENTRY: name in directory parent now names another inode
 *                     or nothing (ino: the old inode, 0 if none known)
 *   VFS_NOTIFY_INODE: ino's data or attributes changed
 * The callback runs on the caller's thread after the change is committed,
 * with no vfs lock held; it may call vfs but should be quick. name is
 * valid during the call. */
enum { VFS_NOTIFY_ENTRY = 1, VFS_NOTIFY_INODE = 2 };
typedef struct vfs_notify {
    int kind;
    uint64_t parent;
    const char *name;
    uint64_t ino;
} vfs_notify;
typedef void (*vfs_notify_cb)(void *arg, const vfs_notify *n);
/* Sets (cb NULL: clears) the callback. Set it before other threads use v. */
void vfs_set_notify(vfs *v, vfs_notify_cb cb, void *arg);

/* ---- Background work ---------------------------------------------------------------------- */

typedef struct vfs_maint_report {
    uint64_t chunks_compacted;
    uint64_t slices_released; /* from meta's garbage list */
    uint64_t blocks_freed;    /* by the collector (crash leftovers, lost releases) */
} vfs_maint_report;
/* Runs the compactor and the collector now (what the timer thread does).
 * report may be NULL. */
int vfs_maintain(vfs *v, vfs_maint_report *report) NB_MUST_CHECK;

/* ---- Tools (nebula fsck | dump | load) ---------------------------------------------------- */

/* Checks the namespace in data_dir (not open elsewhere): dentry<->inode
 * links, link counts, chunk maps against the blocks, orphans, usage
 * counters; writes one line per problem and a summary to report (may be
 * NULL). With repair, fixes what is safe (frees unreferenced blocks,
 * collects garbage). Returns 0 when clean (or repaired), NB_ECORRUPT when
 * problems remain, or another error. */
int vfs_fsck(const char *data_dir, bool repair, FILE *report) NB_MUST_CHECK;
/* Writes the metadata of data_dir as one readable JSON document. */
int vfs_dump(const char *data_dir, FILE *json_out) NB_MUST_CHECK;
/* Loads a vfs_dump document into data_dir, whose metadata must be empty;
 * blocks are not copied (the document refers to slices by id, so load it
 * next to the same blocks). */
int vfs_load(const char *data_dir, FILE *json_in) NB_MUST_CHECK;

#endif
