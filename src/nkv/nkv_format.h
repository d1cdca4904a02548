/*
 * nkv_format.h — on-disk constants of nkv. docs/nkv.md describes each
 * format byte by byte; the owning .c file repeats the table it implements.
 */
#ifndef NKV_NKV_FORMAT_H
#define NKV_NKV_FORMAT_H

/* WAL and MANIFEST records (wal.c). */
#define NKV_WAL_BLOCK  32768
#define NKV_WAL_HEADER 7 /* masked crc32c u32 | length u16 | type u8 */
enum {
    NKV_REC_ZERO = 0, /* preallocated / padding, never written */
    NKV_REC_FULL = 1,
    NKV_REC_FIRST = 2,
    NKV_REC_MIDDLE = 3,
    NKV_REC_LAST = 4,
};

/* SST (sst.c). */
#define NKV_SST_MAGIC     0x6e6b7673737431ull /* "1tssvkn" little-endian: "nkvsst1" */
#define NKV_SST_VERSION   1
#define NKV_SST_FOOTER    56
#define NKV_BLOCK_TRAILER 5  /* compression u8 | masked crc32c u32 */
#define NKV_MAX_HANDLE    20 /* two varint64 */
#define NKV_META_FILTER   "nkv.bloom"
#define NKV_META_PROPS    "nkv.props"

/* MANIFEST version-edit tags (version.c). */
enum {
    NKV_TAG_LOG_NUMBER = 2,
    NKV_TAG_NEXT_FILE = 3,
    NKV_TAG_LAST_SEQ = 4,
    NKV_TAG_COMPACT_PTR = 5,
    NKV_TAG_DELETED_FILE = 6,
    NKV_TAG_NEW_FILE = 7,
};

#endif
