/*
 * io.c — our reads of /dev/fuse and writes to it (fuse_session_custom_io),
 * for what libfuse 3.14 does not pass on.
 *
 * FUSE_HANDLE_KILLPRIV_V2 (protocol 7.33): the file system clears setuid
 * and setgid itself when a caller without CAP_FSETID writes or truncates
 * a file, and in exchange the kernel marks the superblock SB_NOSEC. Then,
 * once the kernel has checked an inode for security.capability and found
 * none, it stops asking: without it, every write(2) is preceded by a
 * GETXATTR of security.capability (file_remove_privs), two round trips a
 * write. libfuse 3.14 can neither offer the flag nor tell the write,
 * setattr and open handlers the kernel's "kill" bits, so:
 * - reading a request, we note its kill bit in a thread-local the handler
 *   (run next on the same worker thread) reads with nbfuse__req_kill();
 * - writing the INIT reply, we add FUSE_HANDLE_KILLPRIV_V2 when the kernel
 *   offered it.
 * And every FUSE_IOCTL is answered ENOTTY as it is read (answer_ioctl),
 * and the RELEASE of a descriptor with nothing to publish is done and
 * answered as it is read (release_quick).
 */
#include <errno.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/common.h"
#include "fuse/fuse_int.h"

static _Thread_local bool req_kill;

bool nbfuse__req_kill(void)
{
    return req_kill;
}

/* Whether the request in buf carries the kernel's "kill setuid/setgid". */
static bool kill_bit(const char *buf, size_t n)
{
    const struct fuse_in_header *h = (const void *)buf;
    const char *arg = buf + sizeof *h;
    size_t alen = n - sizeof *h;
    switch (h->opcode) {
    case FUSE_WRITE:
        if (alen >= offsetof(struct fuse_write_in, lock_owner)) {
            struct fuse_write_in w;
            memcpy(&w, arg, offsetof(struct fuse_write_in, lock_owner));
            return (w.write_flags & FUSE_WRITE_KILL_SUIDGID) != 0;
        }
        return false;
    case FUSE_SETATTR:
        if (alen >= sizeof(struct fuse_setattr_in)) {
            struct fuse_setattr_in s;
            memcpy(&s, arg, sizeof s);
            return (s.valid & FATTR_KILL_SUIDGID) != 0;
        }
        return false;
    case FUSE_OPEN:
        if (alen >= sizeof(struct fuse_open_in)) {
            struct fuse_open_in o;
            memcpy(&o, arg, sizeof o);
            return (o.open_flags & FUSE_OPEN_KILL_SUIDGID) != 0;
        }
        return false;
    case FUSE_CREATE:
        if (alen >= sizeof(struct fuse_create_in)) {
            struct fuse_create_in c;
            memcpy(&c, arg, sizeof c);
            return (c.open_flags & FUSE_OPEN_KILL_SUIDGID) != 0;
        }
        return false;
    default:
        return false;
    }
}

/* FUSE_IOCTL: we implement no ioctl, and the kernel sends one for every
 * ioctl(2) on a file under the mount. Python's open() alone asks isatty()
 * (TCGETS) of each file it opens: one round trip per DataLoader sample.
 * The kernel cannot be told to stop: fs/fuse/ioctl.c turns an ENOSYS
 * reply into ENOTTY on every call and keeps no "no ioctl" flag (as it
 * does for FLUSH, FSYNC, GETXATTR...). So the reply is the ENOTTY the
 * program sees either way, written here at once: no request allocation,
 * dispatch or worker bookkeeping. A write error means the kernel dropped
 * the request (interrupted, or the connection is going): nothing to do. */
static void answer_ioctl(int fd, uint64_t unique)
{
    struct fuse_out_header oh = {.len = sizeof oh, .error = -ENOTTY, .unique = unique};
    if (write(fd, &oh, sizeof oh) < 0 && errno != ENOENT)
        NB_DEBUG("FUSE ioctl reply: %s", strerror(errno));
}

/* FUSE_RELEASE of a descriptor whose inode holds nothing to publish (no
 * shared handle: a read-only open, a DataLoader sample) is ended here as
 * it is read, the same way op_release would end it, and answered: the
 * kernel sends one for every close and does not wait for it, so only its
 * cost in server CPU counts, and libfuse's request handling was a large
 * part of that. Anything else goes to libfuse (false). */
static bool release_quick(nbfuse *f, int fd, const void *buf, size_t n)
{
    const struct fuse_in_header *h = buf;
    struct fuse_release_in in;
    if (n < sizeof *h + sizeof in)
        return false;
    memcpy(&in, (const char *)buf + sizeof *h, sizeof in);
    if (!nbfuse__release_quick(f, in.fh))
        return false;
    struct fuse_out_header oh = {.len = sizeof oh, .error = 0, .unique = h->unique};
    if (write(fd, &oh, sizeof oh) < 0 && errno != ENOENT)
        NB_DEBUG("FUSE release reply: %s", strerror(errno));
    return true;
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
    nbfuse *f = userdata;
    ssize_t n;
    const struct fuse_in_header *h = buf;
    for (;;) {
        n = read(fd, buf, len);
        req_kill = false;
        if (n < (ssize_t)sizeof(struct fuse_in_header))
            return n; /* errno is libfuse's to read */
        if (h->opcode == FUSE_IOCTL)
            answer_ioctl(fd, h->unique);
        else if (h->opcode != FUSE_RELEASE || !release_quick(f, fd, buf, (size_t)n))
            break;
    }
    if (h->opcode == FUSE_INIT) {
        struct fuse_init_in in;
        memset(&in, 0, sizeof in);
        size_t alen = (size_t)n - sizeof *h;
        memcpy(&in, (const char *)buf + sizeof *h, alen < sizeof in ? alen : sizeof in);
        /* Only a kernel that knows the flag may be told we handle it. */
        if (in.major == 7 && in.minor >= 33 && (in.flags & FUSE_HANDLE_KILLPRIV_V2)) {
            f->init_unique = h->unique;
            atomic_store(&f->init_seen, true);
        }
        return n;
    }
    req_kill = kill_bit(buf, (size_t)n);
    return n;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
    nbfuse *f = userdata;
    if (atomic_load(&f->init_seen) && !atomic_load(&f->killpriv_v2) && count >= 2 &&
        iov[0].iov_len >= sizeof(struct fuse_out_header) &&
        iov[1].iov_len >= offsetof(struct fuse_init_out, flags) + sizeof(uint32_t)) {
        struct fuse_out_header *oh = iov[0].iov_base;
        if (oh->unique == f->init_unique && oh->error == 0) {
            struct fuse_init_out *out = iov[1].iov_base;
            out->flags |= FUSE_HANDLE_KILLPRIV_V2;
            atomic_store(&f->killpriv_v2, true); /* INIT is answered before anything else */
        }
    }
    return writev(fd, iov, count);
}

int nbfuse__io_install(nbfuse *f)
{
    static const struct fuse_custom_io io = {.read = io_read, .writev = io_writev};
    return fuse_session_custom_io(f->se, &io, fuse_session_fd(f->se));
}
