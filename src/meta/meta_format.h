/*
 * meta_format.h — key layout and value encodings of the metadata store.
 * The byte-by-byte specification is docs/metadata-format.md; change both
 * together, and bump META_FORMAT_VERSION for anything an older reader
 * would misread.
 *
 * Every key starts with a one-byte tag. Integers in keys are big-endian
 * (so they sort numerically); integers in values are little-endian.
 *
 *   tag  key                              value
 *   'F'  'F'                              format record
 *   'I'  'I' kind:u8                      id allocator high-water mark
 *   'U'  'U' stripe:u16                   usage counters of one lock stripe
 *   'A'  'A' ino:u64                      inode record
 *   'D'  'D' parent:u64 name              dentry (by name)
 *   'd'  'd' parent:u64 cookie:u64        dentry (by cookie, for readdir)
 *   'S'  'S' ino:u64                      symlink target
 *   'X'  'X' ino:u64 name                 xattr value
 *   'C'  'C' ino:u64 chunk:u32            chunk map
 *   'O'  'O' ino:u64                      orphan (open but unlinked)
 *   'G'  'G' slice:u64                    garbage slice
 *   'W'  'W' slice:u64                    unsynced slice (published, blocks not yet durable)
 *   'L'  'L' slice:u64                    inline slice bytes (id has bit 63 set)
 *   'o'  'o' ino:u64                      S3 object record
 *   'b'  'b' ino:u64                      S3 bucket record
 *   'M'  'M' upload:u64                   S3 multipart upload
 *   'm'  'm' bucket:u64 key 0x00 upload:u64   upload index by bucket and key (empty value)
 *   'P'  'P' upload:u64 part:u32          S3 multipart part
 *   'K'  'K' access-key bytes             S3 user (secret, created, name)
 */
#ifndef NB_META_META_FORMAT_H
#define NB_META_META_FORMAT_H

#define META_FORMAT_VERSION 3u          /* 2: inline slices ('L'); 3: object ACLs */
#define META_FORMAT_MAGIC   0x444d424eu /* "NBMD" little-endian */

#define META_K_FORMAT  'F'
#define META_K_IDS     'I'
#define META_K_USAGE   'U'
#define META_K_INODE   'A'
#define META_K_DENTRY  'D'
#define META_K_DCOOKIE 'd'
#define META_K_SYMLINK 'S'
#define META_K_XATTR   'X'
#define META_K_CHUNK   'C'
#define META_K_ORPHAN  'O'
#define META_K_GARBAGE 'G'
#define META_K_UNSYNC  'W'
#define META_K_INLINE  'L'
#define META_K_OBJREC  'o'
#define META_K_BUCKET  'b'
#define META_K_UPLOAD  'M'
#define META_K_UPINDEX 'm'
#define META_K_PART    'P'
#define META_K_VERSION 'V' /* S3 noncurrent version / delete marker */
#define META_K_USER    'K'

/* Format record: magic u32, version u32, created_ns u64, flags u32. */
#define META_FORMAT_REC_LEN 20

/* Inode record, version 1: fixed 96 bytes (readers accept longer records
 * of version 1 and ignore the tail, so fields can be appended). */
#define META_INODE_V1      1
#define META_INODE_LEN     96
#define META_INO_OFF_VER   0  /* u8 */
#define META_INO_OFF_FLAGS 1  /* u8: META_INO_F_* (0 in records that predate them) */
#define META_INO_OFF_RES   2  /* u16: reserved, 0 */
#define META_INO_OFF_MODE  4  /* u32 */
#define META_INO_OFF_UID   8  /* u32 */
#define META_INO_OFF_GID   12 /* u32 */
#define META_INO_OFF_NLINK 16 /* u32 */
#define META_INO_OFF_RES2  20 /* u32: reserved, 0 */
#define META_INO_OFF_SIZE  24 /* u64 */
#define META_INO_OFF_ATIME 32 /* i64 ns */
#define META_INO_OFF_MTIME 40 /* i64 ns */
#define META_INO_OFF_CTIME 48 /* i64 ns */
#define META_INO_OFF_BTIME 56 /* i64 ns */
#define META_INO_OFF_RDEV  64 /* u64 */
#define META_INO_OFF_GEN   72 /* u64 */
#define META_INO_OFF_PAR   80 /* u64 */
#define META_INO_OFF_COOK  88 /* u64: directories: next readdir cookie */

/* Inode flags: set when an inode is made and cleared for good by the
 * first xattr set / first publish, so destroying an inode that never had
 * any skips the prefix scan for them. 0 (old records) means "may have". */
#define META_INO_F_NOXATTR  0x01u /* no 'X' record was ever written */
#define META_INO_F_NOCHUNK  0x02u /* no 'C' record was ever written */
#define META_INO_F_NOOBJREC 0x04u /* no 'O' record was ever written */

/* Dentry value ('D'), version 1: ver u8, type u8, ino u64, cookie u64. */
#define META_DENTRY_V1  1
#define META_DENTRY_LEN 18
/* Cookie entry value ('d'), version 1: ver u8, type u8, ino u64, name. */
#define META_DCOOKIE_V1  1
#define META_DCOOKIE_HDR 10
/* The first cookie of a directory: offsets 0 and 1 are "." and "..". */
#define META_COOKIE_FIRST 2

/* Chunk map value ('C'), version 1: ver u8, then 24-byte slices:
 * id u64, size u32, off u32, len u32, pos u32. */
#define META_CHUNK_V1  1
#define META_SLICE_LEN 24

/* Orphan value ('O'): ver u8 = 1, since_ns i64. */
#define META_ORPHAN_V1 1
/* Garbage value ('G'): ver u8 = 1, size u32. */
#define META_GARBAGE_V1 1
/* Unsynced value ('W'): ver u8 = 1, size u32 (as garbage). */
#define META_UNSYNCED_V1 1
/* Inline slice value ('L'): ver u8 = 1, then the slice's bytes. */
#define META_INLINE_V1 1
/* Usage value ('U'): ver u8 = 1, inodes i64, bytes i64. */
#define META_USAGE_V1 1
/* Id value ('I'): ver u8 = 1, high u64. */
#define META_IDS_V1 1

/* Object and bucket records: ver u8 = 1, then fields: tag u8, varint len,
 * bytes. Unknown tags are skipped, so fields can be added within v1. */
#define META_REC_V1 1
enum {
    META_OR_ETAG = 1,
    META_OR_CTYPE = 2,
    META_OR_CACHE_CONTROL = 3,
    META_OR_DISPOSITION = 4,
    META_OR_ENCODING = 5,
    META_OR_LANGUAGE = 6,
    META_OR_EXPIRES = 7,
    META_OR_STORAGE_CLASS = 8,
    META_OR_VERSION_ID = 9,
    META_OR_CSUM_ALGO = 10,
    META_OR_CSUM = 11,
    META_OR_ETAG_MTIME = 12, /* 8 bytes i64 LE */
    META_OR_PARTS = 13,      /* 4 bytes u32 LE */
    META_OR_PART_SIZES = 14, /* parts x u64 LE */
    META_OR_ACL = 15,        /* 1 byte: META_ACL_PRIVATE or META_ACL_PUBLIC_READ */
    META_OR_META = 20,       /* varint klen, key, value */
    META_OR_TAG = 21,        /* varint klen, key, value */
};
enum {
    META_BR_CTIME = 1, /* 8 bytes i64 LE */
    META_BR_OWNER = 2,
    META_BR_VERSIONING = 3, /* 4 bytes u32 LE */
    META_BR_PUBLIC = 4,     /* 4 bytes u32 LE */
    META_BR_CORS = 5,
    META_BR_LIFECYCLE = 6,
    META_BR_TAGGING = 7,
    META_BR_POLICY = 8,
};

enum {
    META_USR_SECRET = 1,
    META_USR_CTIME = 2, /* 8 bytes i64 LE */
    META_USR_NAME = 3,
};
enum {
    META_UR_BUCKET = 1, /* 8 bytes u64 LE */
    META_UR_KEY = 2,
    META_UR_INITIATED = 3, /* 8 bytes i64 LE */
    META_UR_OWNER = 4,
    META_UR_OBJREC = 5,
};
enum {
    META_PR_ETAG = 1,
    META_PR_SIZE = 2,   /* 8 bytes u64 LE */
    META_PR_MTIME = 3,  /* 8 bytes i64 LE */
    META_PR_SLICES = 4, /* n x 24-byte slice entries, as in chunk maps */
};

/* S3 version record ('V' bucket:u64 key 00 ~seq:u64): ver u8 = 1,
 * flags u8, ino u64, mtime i64, noncurrent-since i64, version id bytes. */
#define META_VERSION_V1     1
#define META_VERSION_HDR    26
#define META_VERSION_MARKER 1u /* flags: a delete marker (ino 0) */

#define META_NSTRIPES 1024  /* lock stripes = usage counter keys */
#define META_ID_BATCH 65536 /* ids reserved per allocator write (one synced write each) */

#endif
