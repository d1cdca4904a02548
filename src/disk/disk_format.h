/*
 * disk_format.h — the on-disk formats of the disk engine, shared by the
 * engine, its recovery and the tools. All integers are little-endian. A
 * "masked CRC" is nb_crc32c_mask(nb_crc32c(0, bytes)). docs/disk.md has
 * the full description and the rules below in prose.
 *
 * Files in an engine directory:
 *
 *   LOCK            exclusive lock (flock) held while open; holds the pid
 *   data.0          superblock (first allocation unit) + data region
 *   CHECKPOINT      the index at some WAL position (replaced atomically)
 *   wal-%016x.log   WAL files, numbered; replay starts at CHECKPOINT.wal_seq
 *   wal-spare.log   a retired WAL file kept for reuse (never replayed)
 *
 * SUPERBLOCK (offset 0 of data.0, 64 bytes used, rest of the AU zero)
 *
 *   OFFSET SIZE  FIELD
 *        0    8  magic "NBDDATA\n"
 *        8    4  format version (4)
 *       12    4  au_size: allocation unit in bytes (power of two >= 4096)
 *       16   16  uuid of the engine (random at creation)
 *       32    8  data_size: size of data.0 at creation (superblock included)
 *       40    8  creation time, ns since the epoch
 *       48   12  zero
 *       60    4  masked CRC of bytes 0..59
 *
 *   The data region is [au_size, file size rounded down to au_size); an
 *   extent is a byte offset in data.0 (a multiple of au_size) and a length.
 *
 * EXTENT (format 4)
 *
 *   A blob of len bytes: its bytes at the extent's start, zeros to the AU.
 *   When len > DISK_SEG_SIZE (64 KiB), the next AU starts its segment
 *   table: ceil(len / 64 KiB) CRC32Cs (4 bytes each, unmasked), one per
 *   64 KiB segment (the last one shorter), zeros to the AU. The extent
 *   takes ceil(len / au) + ceil(table / au) AUs. Records and checkpoint
 *   entries keep the CRC32C of the whole blob; the table is checked by its
 *   CRCs combining into it (crc32c_combine), then each segment read by
 *   its own. A PUTD is never longer than 64 KiB and has no table.
 *   The file grows (fallocate, then fsync) before any extent in the new
 *   part is handed out, so every durable record points inside it.
 *
 * WAL FILE HEADER (64 bytes at offset 0 of every WAL file)
 *
 *   OFFSET SIZE  FIELD
 *        0    8  magic "NBDWAL\r\n"
 *        8    4  format version (4)
 *       12    4  record size (48)
 *       16    8  seq: the file's number (as in its name)
 *       24    8  start_lsn: LSN of the file's first record
 *       32   16  uuid of the engine
 *       48   12  zero
 *       60    4  masked CRC of bytes 0..59
 *
 * WAL RECORD (48 bytes, back to back after the header)
 *
 *   OFFSET SIZE  FIELD
 *        0    4  masked CRC of bytes 4..47
 *        4    1  type: 1 PUT, 2 DELETE, 3 PUTD (format 3: a PUT whose data follows),
 *                4 SYNC (format 3: the data files were synced after every
 *                record with an lsn below `off` was written)
 *        5    1  flags: 1 = END, the last record of a group commit batch;
 *                2 = NOSYNC (format 3), a put acknowledged unsynced
 *                (DISK_PUT_NOSYNC): its data is checked at recovery
 *                unless a later SYNC record or WAL file covers it
 *        6    2  zero
 *        8    8  lsn: start_lsn for the first record, then +1 each
 *       16    8  id.hi
 *       24    8  id.lo
 *       32    8  PUT: extent offset in data.0; DELETE: 0
 *       40    4  PUT: blob length in bytes; DELETE: 0
 *       44    4  PUT: CRC32C of the blob bytes (unmasked); DELETE: 0
 *
 *   PUTD (format 3): the 48-byte record as for PUT, then the blob's len
 *   bytes, then zeros up to a multiple of 16 (DISK_WAL_ALIGN); the next
 *   record starts after them. The data is written to the extent as well,
 *   but not synced: the batch syncs the WAL alone. A PUTD whose data fails
 *   its CRC ends the WAL like a torn record. Recovery writes the data of
 *   every PUTD still in the index back to its extent and syncs the data
 *   files before the engine is used; a checkpoint syncs the data files
 *   before it names an extent, so the WAL files it retires are no longer
 *   needed for it.
 *
 *   WAL files are preallocated (written with zeros, or a retired file
 *   reused) and extended by zeros DISK_WAL_STEP at a time ahead of the
 *   records, so appending rarely changes a file's size and fdatasync
 *   rarely commits metadata. When the data file is O_DIRECT the WAL is too: a
 *   batch is written as whole 4 KiB blocks, rewriting the partial last
 *   block with its earlier bytes unchanged (a torn rewrite leaves them
 *   intact, sector by sector) and zeros after the batch. A file's records end at the first record
 * that is short, fails its CRC, or whose lsn is not the expected one; what follows is zeros, a torn
 * write, or records of the file's previous life (whose lsns are all lower than start_lsn), and is
 * ignored. A header that is damaged or names another seq (a reuse cut short by a crash) ends the
 * WAL, and is legal only in the last file.
 *
 *   Batches: a group commit writes its records in one pwrite, the last one
 *   flagged END, then syncs the WAL and the data file together (in
 *   parallel with io_uring), and up to two batches are synced at once. So a
 *   batch's records are acknowledged only if all of them, up to END, are on
 *   disk, and only the last two complete batches can point at data that did
 *   not reach the disk. Replay therefore drops the records after a file's
 *   last END (a batch cut short: none of it was acknowledged), and checks
 *   the data CRC of every PUT in the final two complete batches, dropping
 *   the PUTs whose data is not there (never acknowledged either). The next
 *   file starts at the lsn after the last END. The next file's start_lsn must continue
 *   the previous file's last lsn, else durable records are missing
 *   (NB_ECORRUPT).
 *
 * CHECKPOINT (80-byte header, then n_entries 32-byte entries)
 *
 *   OFFSET SIZE  FIELD
 *        0    8  magic "NBDCKPT\n"
 *        8    4  format version (4)
 *       12    4  entry size (32)
 *       16   16  uuid of the engine
 *       32    8  wal_seq: the first WAL file to replay
 *       40    8  next_lsn: the lsn the first replayed record must carry
 *       48    8  n_entries
 *       56    8  data_size: size of data.0 when written (the file is at least this long)
 *       64    4  au_size
 *       68    4  masked CRC of the entries
 *       72    4  zero
 *       76    4  masked CRC of bytes 0..75
 *
 *   ENTRY:  0 8 id.hi | 8 8 id.lo | 16 8 extent offset | 24 4 length |
 *           28 4 CRC32C of the blob bytes
 *
 *   The allocator state is the complement of the entries' extents; it is
 *   rebuilt from them at load rather than stored twice.
 */
#ifndef NB_DISK_DISK_FORMAT_H
#define NB_DISK_DISK_FORMAT_H

#include <stdint.h>

/* 4: a segment CRC table after the data of every blob over DISK_SEG_SIZE
 * (3: PUTD records, a put's data inside the WAL). Engines of format 3 or
 * older are refused with NB_EVERSION. */
#define DISK_FORMAT_VERSION 4u
#define DISK_FORMAT_SEGS    4u /* the oldest format this build opens */

/* WAL files are created with, and extended by, this many bytes of zeros. */
#define DISK_WAL_STEP (4u << 20)

#define DISK_SUPER_MAGIC "NBDDATA\n"
#define DISK_WAL_MAGIC   "NBDWAL\r\n"
#define DISK_CKPT_MAGIC  "NBDCKPT\n"

#define DISK_SUPER_SIZE      64u
#define DISK_WAL_HEADER_SIZE 64u
#define DISK_WAL_REC_SIZE    48u
#define DISK_CKPT_HEADER     80u
#define DISK_CKPT_ENTRY      32u

#define DISK_REC_PUT    1u
#define DISK_REC_DEL    2u
#define DISK_REC_PUTD   3u /* a PUT followed by its data, padded to DISK_WAL_ALIGN */
#define DISK_REC_SYNC   4u /* the data of every record before lsn `off` is durable */
#define DISK_WAL_ALIGN  16u
#define DISK_REC_END    1u
#define DISK_REC_NOSYNC 2u /* format 3: a put acknowledged before any sync */

#define DISK_DATA_FILE  "data.0"
#define DISK_CKPT_FILE  "CHECKPOINT"
#define DISK_CKPT_FILE2 "CHECKPOINT.1"
#define DISK_FILES_FILE "DATAFILES"
#define DISK_SIZE_FILE  "SIZE" /* the capacity, decimal bytes and a newline */
#define DISK_LOCK_FILE  "LOCK"
#define DISK_WAL_SPARE  "wal-spare.log"

#endif
