/*
 * disk_io.h — the I/O table under the disk engine.
 *
 * The engine does every file operation through a disk_io_ops table, so that
 * tests can run it over a layer that keeps unsynced writes in memory and
 * drops or tears them at a chosen crash point (tests/unit/disk/memfs.c), as
 * LevelDB's fault_injection_test does with its Env. The real tables are
 * disk__io_posix (pread/pwrite) and the io_uring one built at open.
 *
 * Every function returns 0 or a negative errno. Paths are borrowed. A "fd"
 * is whatever int the table hands out; only the real tables hand out real
 * file descriptors (disk_read_ref() passes it to callers).
 */
#ifndef NB_DISK_DISK_IO_H
#define NB_DISK_DISK_IO_H

#include <stddef.h>
#include <stdint.h>

#define DISK_O_CREAT  1u /* create when missing */
#define DISK_O_RDONLY 2u
#define DISK_O_DIRECT 4u /* O_DIRECT; -EINVAL when the file system refuses it */
#define DISK_O_TRUNC  8u

typedef struct disk_io_ops {
    /* Opens path; -ENOENT when missing and DISK_O_CREAT is not set. */
    int (*open)(void *ctx, const char *path, unsigned flags, int *fd);
    int (*close)(void *ctx, int fd);
    /* Reads n bytes at off; *got < n only at end of file. */
    int (*pread)(void *ctx, int fd, void *buf, size_t n, uint64_t off, size_t *got);
    /* Writes all n bytes at off. */
    int (*pwrite)(void *ctx, int fd, const void *buf, size_t n, uint64_t off);
    /* Optional (NULL: the engine computes the CRC first, then writes):
     * writes like pwrite and, while the write is in flight, sets *crc to
     * the CRC32C of crc_buf[0, crc_len) (the blob, when buf is a padded
     * copy of it). */
    int (*pwrite_crc)(void *ctx, int fd, const void *buf, size_t n, uint64_t off,
                      const void *crc_buf, size_t crc_len, uint32_t *crc);
    /* Optional (NULL: the engine writes, then calls fn): writes like
     * pwrite and calls fn(arg) while the write is in flight. */
    int (*pwrite_fn)(void *ctx, int fd, const void *buf, size_t n, uint64_t off, void (*fn)(void *),
                     void *arg);
    /* Optional (NULL: the engine calls fn, then writes both): pwrite_fn,
     * and once fn has run (it may fill buf2), writes n2 bytes of buf2 at
     * off2 beside the first write, so that both are in flight together (a
     * blob's segment table after its data); returns when both are done. */
    int (*pwrite_fn2)(void *ctx, int fd, const void *buf, size_t n, uint64_t off,
                      void (*fn)(void *), void *arg, const void *buf2, size_t n2, uint64_t off2);
    /* Makes the file's written data (and its size) durable: fdatasync. */
    int (*sync)(void *ctx, int fd);
    /* Syncs two files, at once when it can (a group commit's data file and
     * WAL); no order between them is promised. */
    int (*sync2)(void *ctx, int fd1, int fd2);
    int (*size)(void *ctx, int fd, uint64_t *size);
    /* Sets the file size, allocating blocks when the file grows. */
    int (*resize)(void *ctx, int fd, uint64_t size);
    int (*rename)(void *ctx, const char *from, const char *to);
    /* -ENOENT when missing. */
    int (*unlink)(void *ctx, const char *path);
    /* Makes creations, renames and unlinks in dir durable. */
    int (*sync_dir)(void *ctx, const char *dir);
} disk_io_ops;

/* The real file system through pread/pwrite; ctx is unused (NULL). */
extern const disk_io_ops disk__io_posix;

#endif
