/* fsutil.c — file-system helpers (fsutil.h). */
#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"

int nb_mkdir_p(const char *dir, mode_t mode)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path)
        return -ENAMETOOLONG;
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, mode) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, mode) != 0) {
        if (errno != EEXIST)
            return -errno;
        struct stat st;
        if (stat(path, &st) != 0)
            return -errno;
        if (!S_ISDIR(st.st_mode))
            return -ENOTDIR;
    }
    return 0;
}

int nb_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static void dir_of(const char *path, char *out, size_t outlen)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, outlen, ".");
    else if (slash == path)
        snprintf(out, outlen, "/");
    else
        snprintf(out, outlen, "%.*s", (int)(slash - path), path);
}

int nb_write_file_atomic(const char *path, const void *data, size_t n, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    int rc = nb_pwrite_full(fd, data, n, 0);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    return nb_fsync_dir(dir);
}

int nb_read_file(const char *path, size_t max, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        return -EFBIG;
    }
    char *buf = nb_xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    int rc = nb_pread_full(fd, buf, (size_t)st.st_size, 0, &got);
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[got] = 0;
    *out = buf;
    *len = got;
    return 0;
}

int nb_pwrite_full(int fd, const void *buf, size_t n, off_t off)
{
    const char *p = buf;
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

int nb_pread_full(int fd, void *buf, size_t n, off_t off, size_t *got)
{
    char *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, p + done, n - done, off + (off_t)done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *got = done;
            return -errno;
        }
        if (r == 0)
            break; /* end of file */
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

int nb_lock_file(const char *path, int *fd_out, pid_t *holder_pid)
{
    *fd_out = -1;
    if (holder_pid)
        *holder_pid = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err == EWOULDBLOCK && holder_pid) {
            char buf[32] = {0};
            size_t got = 0;
            if (nb_pread_full(fd, buf, sizeof buf - 1, 0, &got) == 0)
                *holder_pid = (pid_t)atoi(buf);
        }
        close(fd);
        return err == EWOULDBLOCK ? NB_ELOCKED : -err;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || nb_pwrite_full(fd, pid, (size_t)n, 0) != 0) {
        int rc = -errno;
        close(fd);
        return rc ? rc : -EIO;
    }
    *fd_out = fd;
    return 0;
}

void nb_unlock_file(int fd)
{
    if (fd >= 0)
        close(fd); /* closing drops the flock */
}
