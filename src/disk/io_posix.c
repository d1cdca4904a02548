/*
 * io_posix.c — the real file system through plain system calls: the
 * default I/O table, and the base of the io_uring one.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

#include "disk_int.h"

#ifndef FALLOC_FL_WRITE_ZEROES
#define FALLOC_FL_WRITE_ZEROES 0x80 /* linux/falloc.h of 6.17 */
#endif

static int px_open(void *ctx, const char *path, unsigned flags, int *fd)
{
    (void)ctx;
    int of = O_CLOEXEC | ((flags & DISK_O_RDONLY) ? O_RDONLY : O_RDWR);
    if (flags & DISK_O_CREAT)
        of |= O_CREAT;
    if (flags & DISK_O_TRUNC)
        of |= O_TRUNC;
    if (flags & DISK_O_DIRECT)
        of |= O_DIRECT;
    int f = open(path, of, 0644);
    if (f < 0)
        return -errno;
    *fd = f;
    return 0;
}

static int px_close(void *ctx, int fd)
{
    (void)ctx;
    return close(fd) == 0 ? 0 : -errno;
}

static int px_pread(void *ctx, int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    (void)ctx;
    return nb_pread_full(fd, buf, n, (off_t)off, got);
}

static int px_pwrite(void *ctx, int fd, const void *buf, size_t n, uint64_t off)
{
    (void)ctx;
    return nb_pwrite_full(fd, buf, n, (off_t)off);
}

static int px_sync(void *ctx, int fd)
{
    (void)ctx;
    return fdatasync(fd) == 0 ? 0 : -errno;
}

static int px_sync2(void *ctx, int fd1, int fd2)
{
    int rc = px_sync(ctx, fd1);
    return rc ? rc : px_sync(ctx, fd2);
}

static int px_size(void *ctx, int fd, uint64_t *size)
{
    (void)ctx;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    if (S_ISBLK(st.st_mode)) { /* st_size is 0 for a block device */
        off_t end = lseek(fd, 0, SEEK_END);
        if (end < 0)
            return -errno;
        *size = (uint64_t)end;
    }
    return 0;
}

static int px_resize(void *ctx, int fd, uint64_t size)
{
    (void)ctx;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if ((uint64_t)st.st_size < size) {
        /* Written zeros where the device zeroes cheaply (Linux 6.17+, e.g.
         * NVMe deallocate): the first write into such blocks needs no
         * extent conversion at its fdatasync. Refused elsewhere (this VM's
         * virtio disk: EOPNOTSUPP), then unwritten extents as before. */
        if (fallocate(fd, FALLOC_FL_WRITE_ZEROES, st.st_size,
                      (off_t)(size - (uint64_t)st.st_size)) == 0 &&
            fstat(fd, &st) == 0 && (uint64_t)st.st_size >= size)
            return 0;
        /* Allocate the blocks now so a full disk shows at creation, not
         * as a failed put later. posix_fallocate returns the error. */
        int rc = posix_fallocate(fd, 0, (off_t)size);
        if (rc == 0)
            return 0;
        if (rc != EOPNOTSUPP && rc != EINVAL)
            return -rc;
    }
    return ftruncate(fd, (off_t)size) == 0 ? 0 : -errno;
}

static int px_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return rename(from, to) == 0 ? 0 : -errno;
}

static int px_unlink(void *ctx, const char *path)
{
    (void)ctx;
    return unlink(path) == 0 ? 0 : -errno;
}

static int px_sync_dir(void *ctx, const char *dir)
{
    (void)ctx;
    return nb_fsync_dir(dir);
}

const disk_io_ops disk__io_posix = {
    .open = px_open,
    .close = px_close,
    .pread = px_pread,
    .pwrite = px_pwrite,
    .sync = px_sync,
    .sync2 = px_sync2,
    .size = px_size,
    .resize = px_resize,
    .rename = px_rename,
    .unlink = px_unlink,
    .sync_dir = px_sync_dir,
};
