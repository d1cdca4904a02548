/*
 * fsutil.h — small file-system helpers every storage module needs: create a
 * directory tree, make a rename or file creation durable, write a file
 * atomically, and hold an exclusive lock file.
 */
#ifndef NB_COMMON_FSUTIL_H
#define NB_COMMON_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "common/status.h"

/* Creates dir and its missing parents with `mode`; existing dirs are fine.
 * Returns 0 or -errno (-ENOTDIR when a component is a file). */
int nb_mkdir_p(const char *dir, mode_t mode) NB_MUST_CHECK;
/* fsyncs a directory so that entries created or renamed in it survive a
 * power loss. */
int nb_fsync_dir(const char *dir) NB_MUST_CHECK;
/* Writes data to path via a temporary file, fsync, rename and a directory
 * fsync: after a crash the file holds either the old or the new content. */
int nb_write_file_atomic(const char *path, const void *data, size_t n, mode_t mode) NB_MUST_CHECK;
/* Reads a whole file of at most max bytes into *out (owned; free with
 * free(); NUL-terminated beyond *len). -EFBIG if larger. */
int nb_read_file(const char *path, size_t max, char **out, size_t *len) NB_MUST_CHECK;
/* pread/pwrite that loop over short transfers and EINTR; return 0 or
 * -errno. At end of file nb_pread_full stops early and reports the bytes
 * read in *got (< n) rather than an error, so callers can name the
 * truncation themselves. */
int nb_pwrite_full(int fd, const void *buf, size_t n, off_t off) NB_MUST_CHECK;
int nb_pread_full(int fd, void *buf, size_t n, off_t off, size_t *got) NB_MUST_CHECK;

/* Takes an exclusive lock on path (created if missing) and writes our pid
 * into it. On success *fd_out holds the open, locked descriptor: the lock
 * lasts until it is closed or the process dies (so a SIGKILLed holder never
 * leaves a stale lock). NB_ELOCKED when another process holds it, with its
 * pid in *holder_pid (0 if unknown). */
int nb_lock_file(const char *path, int *fd_out, pid_t *holder_pid) NB_MUST_CHECK;
/* Releases a lock taken by nb_lock_file. -1 is a no-op. */
void nb_unlock_file(int fd);

#endif
