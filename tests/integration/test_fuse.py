"""The POSIX mount: `nebula server --mount DIR` served through the kernel's
FUSE, exercised with ordinary system calls and programs."""
import ctypes
import errno
import fcntl
import mmap
import os
import shutil
import signal
import stat
import struct
import subprocess
import time

import pytest

from nebula_proc import Server, is_mounted

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse")

libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
AT_FDCWD = -100


def renameat2(old, new, flags):
    r = libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), flags)
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Mounted:
    def __init__(self, tmp_path, *extra, mnt=None):
        self.data = str(tmp_path / "data")
        self.mnt = mnt or tmp_path / "mnt"
        self.mnt.mkdir(exist_ok=True)
        self.extra = extra
        self.server = None

    def start(self):
        self.server = Server(self.data, "--mount", str(self.mnt), *self.extra)
        assert is_mounted(self.mnt)
        return self

    def stop(self, sig=signal.SIGTERM):
        rc = self.server.stop(sig)
        self.server.__exit__(None, None, None)
        return rc

    def p(self, *parts):
        return os.path.join(str(self.mnt), *parts)


@pytest.fixture
def m(tmp_path):
    mt = Mounted(tmp_path).start()
    yield mt
    if mt.server.proc.poll() is None:
        mt.stop()
    if is_mounted(mt.mnt):
        subprocess.run(["umount", "-l", str(mt.mnt)])


def expect_errno(code, fn, *args):
    with pytest.raises(OSError) as ei:
        fn(*args)
    assert ei.value.errno == code, (os.strerror(ei.value.errno), os.strerror(code))


def test_files_read_write_truncate_append(m):
    p = m.p("f")
    with open(p, "wb") as f:
        f.write(b"hello world")
    with open(p, "rb") as f:
        assert f.read() == b"hello world"
    with open(p, "ab") as f:
        f.write(b"!!")
    assert open(p, "rb").read() == b"hello world!!"
    os.truncate(p, 5)
    assert open(p, "rb").read() == b"hello"
    os.truncate(p, 10)
    assert open(p, "rb").read() == b"hello" + b"\0" * 5
    fd = os.open(p, os.O_RDWR)
    os.pwrite(fd, b"XY", 2)
    assert os.pread(fd, 10, 0) == b"heXYo" + b"\0" * 5
    os.close(fd)
    st = os.stat(p)
    assert stat.S_ISREG(st.st_mode) and st.st_size == 10 and st.st_nlink == 1


def test_small_file_opened_for_reading_sees_every_change(m):
    # A read-only open of a small file stores its bytes in the kernel's page
    # cache; that must never put older bytes over newer ones.
    p = m.p("small")
    with open(p, "wb") as f:
        f.write(b"old-" * 1000)
    assert open(p, "rb").read() == b"old-" * 1000
    # A writer's bytes still in the kernel (write-back cache, not yet closed).
    w = os.open(p, os.O_RDWR)
    os.pwrite(w, b"NEW!", 0)
    os.pwrite(w, b"tail", 5000)
    with open(p, "rb") as f:
        got = f.read()
    assert got[:8] == b"NEW!old-" and got[5000:5004] == b"tail" and len(got) == 5004, got[:16]
    os.close(w)
    assert open(p, "rb").read() == got
    # Truncate by path, down and up, with no descriptor open.
    os.truncate(p, 6)
    assert open(p, "rb").read() == b"NEW!ol"
    os.truncate(p, 9)
    assert open(p, "rb").read() == b"NEW!ol\0\0\0"
    # Many opens of many small files read back exactly.
    names = [m.p("s%03d" % i) for i in range(50)]
    for i, q in enumerate(names):
        with open(q, "wb") as f:
            f.write(bytes([i]) * (100 * i + 1))
    for i, q in enumerate(names):
        with open(q, "rb") as f:
            assert f.read() == bytes([i]) * (100 * i + 1)


def test_large_file_roundtrip(m):
    data = os.urandom(9 << 20)  # crosses 4 MiB blocks
    with open(m.p("big"), "wb") as f:
        for i in range(0, len(data), 1 << 20):
            f.write(data[i:i + (1 << 20)])
    with open(m.p("big"), "rb") as f:
        assert f.read() == data
    with open(m.p("big"), "rb") as f:
        f.seek(5 << 20)
        assert f.read(12345) == data[5 << 20:(5 << 20) + 12345]


def test_sparse_files_and_holes(m):
    fd = os.open(m.p("sparse"), os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, b"tail", 10 << 20)
    os.fsync(fd)
    assert os.fstat(fd).st_size == (10 << 20) + 4
    assert os.pread(fd, 8, 1 << 20) == b"\0" * 8
    data_off = os.lseek(fd, 0, os.SEEK_DATA)
    assert data_off > 0 and data_off <= 10 << 20
    assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
    os.close(fd)


def test_directories_and_errnos(m):
    os.mkdir(m.p("d"))
    open(m.p("d", "x"), "w").close()
    expect_errno(errno.EEXIST, os.mkdir, m.p("d"))
    expect_errno(errno.ENOENT, os.stat, m.p("nope"))
    expect_errno(errno.ENOTDIR, os.mkdir, m.p("d", "x", "y"))
    expect_errno(errno.EISDIR, open, m.p("d"), "w")
    expect_errno(errno.ENOTEMPTY, os.rmdir, m.p("d"))
    expect_errno(errno.ENOTDIR, os.rmdir, m.p("d", "x"))
    expect_errno(errno.EISDIR, os.unlink, m.p("d"))
    expect_errno(errno.ENAMETOOLONG, open, m.p("n" * 256), "w")
    open(m.p("n" * 255), "w").close()
    expect_errno(errno.EEXIST, os.open, m.p("d", "x"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    expect_errno(errno.EINVAL, os.rename, m.p("d"), m.p("d", "sub"))
    assert sorted(os.listdir(m.p())) == sorted(["d", "n" * 255])
    os.unlink(m.p("d", "x"))
    os.rmdir(m.p("d"))
    assert not os.path.exists(m.p("d"))


def test_rename_semantics(m):
    for n, body in (("a", b"A"), ("b", b"B")):
        with open(m.p(n), "wb") as f:
            f.write(body)
    os.mkdir(m.p("dir1"))
    os.mkdir(m.p("dir2"))
    os.rename(m.p("a"), m.p("dir1", "a"))  # across directories
    os.rename(m.p("b"), m.p("dir1", "a"))  # over an existing target
    assert open(m.p("dir1", "a"), "rb").read() == b"B"
    assert not os.path.exists(m.p("b"))
    with open(m.p("c"), "wb") as f:
        f.write(b"C")
    expect_errno(errno.EEXIST, renameat2, m.p("c"), m.p("dir1", "a"), RENAME_NOREPLACE)
    renameat2(m.p("c"), m.p("dir1", "a"), RENAME_EXCHANGE)
    assert open(m.p("c"), "rb").read() == b"B"
    assert open(m.p("dir1", "a"), "rb").read() == b"C"
    open(m.p("dir2", "f"), "w").close()
    expect_errno(errno.ENOTEMPTY, os.rename, m.p("dir1"), m.p("dir2"))
    expect_errno(errno.EXDEV, os.rename, m.p("c"), "/tmp/nebula-xdev-test")


def test_links(m):
    with open(m.p("t"), "w") as f:
        f.write("target")
    os.link(m.p("t"), m.p("h"))
    assert os.stat(m.p("t")).st_nlink == 2
    assert os.stat(m.p("h")).st_ino == os.stat(m.p("t")).st_ino
    os.symlink("t", m.p("s"))
    assert os.readlink(m.p("s")) == "t"
    assert open(m.p("s")).read() == "target"
    assert stat.S_ISLNK(os.lstat(m.p("s")).st_mode)
    os.symlink("loop2", m.p("loop1"))
    os.symlink("loop1", m.p("loop2"))
    expect_errno(errno.ELOOP, open, m.p("loop1"))
    os.unlink(m.p("t"))
    assert os.stat(m.p("h")).st_nlink == 1
    assert open(m.p("h")).read() == "target"


def test_unlink_open_file(m):
    fd = os.open(m.p("u"), os.O_CREAT | os.O_RDWR, 0o644)
    os.write(fd, b"still here")
    os.unlink(m.p("u"))
    assert not os.path.exists(m.p("u"))
    assert os.pread(fd, 100, 0) == b"still here"
    os.close(fd)


def test_xattrs(m):
    p = m.p("x")
    open(p, "w").close()
    os.setxattr(p, "user.color", b"blue")
    assert os.getxattr(p, "user.color") == b"blue"
    assert "user.color" in os.listxattr(p)
    expect_errno(errno.EEXIST, os.setxattr, p, "user.color", b"red", os.XATTR_CREATE)
    os.removexattr(p, "user.color")
    expect_errno(errno.ENODATA, os.getxattr, p, "user.color")


def test_timestamps_and_modes(m):
    p = m.p("t")
    open(p, "w").close()
    os.utime(p, ns=(1_000_000_123, 2_000_000_456))
    st = os.stat(p)
    assert st.st_atime_ns == 1_000_000_123 and st.st_mtime_ns == 2_000_000_456
    os.chmod(p, 0o600)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    os.chown(p, 1234, 5678)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    before = os.stat(p).st_mtime_ns
    time.sleep(0.01)
    with open(p, "a") as f:
        f.write("x")
    assert os.stat(p).st_mtime_ns > before
    # A write marks mtime and ctime at once, not only when the close
    # publishes it (the kernel keeps no times of its own without the
    # write-back cache): stat before the close sees them move.
    st = os.stat(p)
    time.sleep(0.01)
    with open(p, "r+b") as f:
        f.write(b"y")
        f.flush()
        during = os.fstat(f.fileno())
        assert during.st_mtime_ns > st.st_mtime_ns and during.st_ctime_ns > st.st_ctime_ns
        assert os.stat(p).st_mtime_ns == during.st_mtime_ns
    assert os.stat(p).st_mtime_ns >= during.st_mtime_ns


def run_as(uid, gid, fn):
    """Runs fn in a child with the given ids; returns the errno it raised (0 if none)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            fn()
        except OSError as e:
            code = e.errno
        except BaseException:
            code = 255
        os.write(w, bytes([code]))
        os._exit(0)
    os.close(w)
    code = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    return code[0]


@pytest.fixture
def m_shared(tmp_path, request):
    """A mount other users may enter (allow_other), on a path they can reach."""
    import pathlib
    import tempfile
    top = pathlib.Path(tempfile.mkdtemp(prefix="nebula-fuse-"))
    top.chmod(0o755)
    extra = getattr(request, "param", ())
    mt = Mounted(tmp_path, "--allow-other", *extra, mnt=top / "mnt").start()
    os.chmod(str(mt.mnt), 0o755)
    yield mt
    if mt.server.proc.poll() is None:
        mt.stop()
    if is_mounted(mt.mnt):
        subprocess.run(["umount", "-l", str(mt.mnt)])
    shutil.rmtree(str(top), ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_permissions_and_sticky_bit(m_shared):
    m = m_shared
    assert run_as(1000, 1000, lambda: os.listdir(m.p())) == 0
    p = m.p("rootfile")
    with open(p, "w") as f:
        f.write("secret")
    os.chmod(p, 0o640)
    assert run_as(1000, 1000, lambda: open(p).read()) == errno.EACCES
    assert run_as(1000, 1000, lambda: open(p, "a")) == errno.EACCES
    os.chmod(p, 0o644)
    assert run_as(1000, 1000, lambda: open(p).read()) == 0
    assert run_as(1000, 1000, lambda: os.chmod(p, 0o777)) == errno.EPERM
    # A sticky, world-writable directory: only owners delete their files.
    os.mkdir(m.p("tmp"))
    os.chmod(m.p("tmp"), 0o1777)
    assert run_as(1000, 1000, lambda: open(m.p("tmp", "mine"), "w").close()) == 0
    assert run_as(1001, 1001, lambda: os.unlink(m.p("tmp", "mine"))) == errno.EPERM
    assert run_as(1000, 1000, lambda: os.unlink(m.p("tmp", "mine"))) == 0
    os.mkdir(m.p("closed"), 0o700)
    assert run_as(1000, 1000, lambda: os.listdir(m.p("closed"))) == errno.EACCES


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
@pytest.mark.parametrize("m_shared", [(), ("--writeback-cache",)], indirect=True,
                         ids=["plain", "writeback"])
def test_changes_by_others_clear_setuid_and_setgid(m_shared):
    """As on a local file system: a write, truncate, O_TRUNC open or
    fallocate by a user without CAP_FSETID clears setuid, and setgid if
    the group may execute; root's write keeps them; chown clears them."""
    m = m_shared

    def fresh(name, mode):
        p = m.p(name)
        with open(p, "wb") as f:
            f.write(b"0123456789")
        os.chown(p, 1000, 1000)
        os.chmod(p, mode)
        return p

    def pwrite(p):
        fd = os.open(p, os.O_WRONLY)
        for i in range(3):  # later writes skip the kernel's capability check
            os.pwrite(fd, b"x", i)
        os.close(fd)

    def fallocate(p):
        fd = os.open(p, os.O_WRONLY)
        os.posix_fallocate(fd, 0, 4096)
        os.close(fd)

    changes = {
        "write": pwrite,
        "truncate": lambda p: os.truncate(p, 3),
        "otrunc": lambda p: os.close(os.open(p, os.O_WRONLY | os.O_TRUNC)),
        "fallocate": fallocate,
    }
    for name, change in changes.items():
        p = fresh(name, 0o6775)
        assert run_as(1000, 1000, lambda: change(p)) == 0, name
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o775, name
        # Without group execute, setgid marks mandatory locking: kept.
        p = fresh(name + "-nx", 0o6765)
        assert run_as(1000, 1000, lambda: change(p)) == 0, name
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o2765, name
    p = fresh("root", 0o6775)
    pwrite(p)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o6775
    os.chown(p, 1001, 1001)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o775
    # The bits are set again after the kernel saw them cleared: a write
    # must clear them again.
    p = fresh("again", 0o6775)
    assert run_as(1000, 1000, lambda: pwrite(p)) == 0
    os.chmod(p, 0o6775)
    assert run_as(1000, 1000, lambda: pwrite(p)) == 0
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o775
    # A file capability goes with any write, root's included.
    cap = struct.pack("<5I", 0x02000000, 1 << 10, 0, 0, 0)  # v2, CAP_NET_BIND_SERVICE
    for who in ("root", "user"):
        p = fresh("cap-" + who, 0o755)
        pwrite(p)  # the kernel has seen this inode without a capability
        os.setxattr(p, "security.capability", cap)
        if who == "root":
            pwrite(p)
        else:
            assert run_as(1000, 1000, lambda: pwrite(p)) == 0
        assert "security.capability" not in os.listxattr(p), who


def test_fallocate_and_copy_clear_setuid_by_capability(m_shared):
    """fallocate and copy_file_range carry no kill bit from the kernel, so
    the server asks what the kernel would: whether the caller holds
    CAP_FSETID. Root without it clears setuid/setgid; a user holding it
    keeps them; a user without it clears them (as on a local file
    system)."""
    m = m_shared
    src = m.p("src")
    with open(src, "wb") as f:
        f.write(b"abcd")
    os.chmod(src, 0o644)
    code = (
        "import os, sys\n"
        "what, p, src = sys.argv[1:]\n"
        "fd = os.open(p, os.O_WRONLY)\n"
        "if what == 'fallocate':\n"
        "    os.posix_fallocate(fd, 0, 4096)\n"
        "else:\n"
        "    s = os.open(src, os.O_RDONLY)\n"
        "    assert os.copy_file_range(s, fd, 4, 0, 2) == 4\n"
    )
    who = {
        "root-nocap": (["--bounding-set=-fsetid", "--inh-caps=-fsetid"], 0o775),
        "user-cap": (
            ["--reuid=1000", "--regid=1000", "--clear-groups", "--inh-caps=+fsetid",
             "--ambient-caps=+fsetid"],
            0o6775,
        ),
        "user": (["--reuid=1000", "--regid=1000", "--clear-groups"], 0o775),
    }
    for name, (priv, want) in who.items():
        for what in ("fallocate", "copy"):
            p = m.p(name + "-" + what)
            with open(p, "wb") as f:
                f.write(b"0123456789")
            os.chown(p, 1000, 1000)
            os.chmod(p, 0o6775)
            subprocess.run(["setpriv", *priv, "/usr/bin/python3", "-c", code, what, p, src],
                           check=True)
            assert stat.S_IMODE(os.stat(p).st_mode) == want, (name, what)
    with open(m.p("user-copy"), "rb") as f:
        assert f.read() == b"01abcd6789"


def test_ioctl_is_not_a_tty(m):
    """Every ioctl fails with ENOTTY, as an ioctl a file system does not
    know fails on a local one: isatty() is false (Python's open() asks),
    on files and directories, the same on repeated calls, and the file
    stays usable between them."""
    import termios

    p = m.p("f")
    with open(p, "wb") as f:
        f.write(b"data")
    d = os.open(m.p(""), os.O_RDONLY | os.O_DIRECTORY)
    try:
        with open(p, "rb") as f:
            for _ in range(3):
                assert not f.isatty()
                assert not os.isatty(d)
                expect_errno(errno.ENOTTY, fcntl.ioctl, f.fileno(), termios.TCGETS, bytes(64))
                expect_errno(errno.ENOTTY, fcntl.ioctl, d, termios.TIOCGWINSZ, bytes(8))
                assert f.read() == b"data"
                f.seek(0)
    finally:
        os.close(d)


def test_statfs(m):
    s = os.statvfs(m.p())
    assert s.f_namemax == 255 and s.f_bsize > 0


def test_locks_between_processes(m):
    p = m.p("lock")
    open(p, "w").close()
    fd = os.open(p, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        fd2 = os.open(p, os.O_RDWR)
        try:
            fcntl.lockf(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(w, b"L")
        except OSError as e:
            os.write(w, b"B" if e.errno in (errno.EAGAIN, errno.EACCES) else b"?")
        os._exit(0)
    assert os.read(r, 1) == b"B"
    os.waitpid(pid, 0)
    fcntl.lockf(fd, fcntl.LOCK_UN)
    os.close(fd)


def _child_tries(fn):
    """Runs fn() in a forked child: b"L" if it returned, b"B" if it failed
    with EWOULDBLOCK/EAGAIN/EACCES (lock held elsewhere), b"?" otherwise."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            fn()
            os.write(w, b"L")
        except OSError as e:
            os.write(w, b"B" if e.errno in (errno.EAGAIN, errno.EACCES) else b"?")
        os._exit(0)
    got = os.read(r, 1)
    os.waitpid(pid, 0)
    os.close(r)
    os.close(w)
    return got


def test_flock_and_posix_ranges_between_processes(m):
    """BSD flock(2) and byte-range POSIX locks, each held in one process and
    refused to another until released: the kernel keeps both for the mount
    (no getlk/setlk/flock handlers), so this is what programs rely on."""
    p = m.p("flock")
    with open(p, "wb") as f:
        f.write(b"x" * 100)
    fd = os.open(p, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)

    def try_flock():
        fd2 = os.open(p, os.O_RDWR)
        fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)

    assert _child_tries(try_flock) == b"B"
    fcntl.flock(fd, fcntl.LOCK_UN)
    assert _child_tries(try_flock) == b"L"
    # A POSIX lock of bytes 0..9: another process may lock 10..19, not 5..14.
    fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)

    def try_range(start):
        def f():
            fd2 = os.open(p, os.O_RDWR)
            fcntl.lockf(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, start)
        return f

    assert _child_tries(try_range(10)) == b"L"
    assert _child_tries(try_range(5)) == b"B"
    fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)
    assert _child_tries(try_range(5)) == b"L"
    os.close(fd)


def test_splice_in_and_out(m):
    """splice(2) between a pipe and files on the mount, both directions."""
    data = os.urandom(300000)
    src = m.p("splice_src")
    with open(src, "wb") as f:
        f.write(data)
    r, w = os.pipe()
    fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ: the whole file fits
    fin = os.open(src, os.O_RDONLY)
    fout = os.open(m.p("splice_dst"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    moved = 0
    while moved < len(data):
        n = os.splice(fin, w, len(data) - moved)
        assert n > 0
        left = n
        while left:
            k = os.splice(r, fout, left)
            assert k > 0
            left -= k
        moved += n
    os.close(fin)
    os.close(fout)
    os.close(r)
    os.close(w)
    with open(m.p("splice_dst"), "rb") as f:
        assert f.read() == data


def test_fifo_and_socket_nodes(m):
    """mknod of a FIFO and a socket under the mount; the FIFO carries bytes
    (the kernel serves it locally, the node is ours)."""
    fifo = m.p("fifo")
    os.mkfifo(fifo, 0o644)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    os.write(fd, b"through the fifo")
    assert os.read(fd, 100) == b"through the fifo"
    os.close(fd)
    sock = m.p("sock")
    os.mknod(sock, stat.S_IFSOCK | 0o600)
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert sorted(n for n in os.listdir(m.mnt) if n in ("fifo", "sock")) == ["fifo", "sock"]
    os.unlink(fifo)
    os.unlink(sock)
    assert not os.path.exists(fifo)


def test_sigint_unmounts_cleanly(tmp_path):
    mt = Mounted(tmp_path).start()
    with open(mt.p("f"), "wb") as f:
        f.write(b"kept")
    assert mt.stop(signal.SIGINT) == 0
    assert not is_mounted(mt.mnt)
    mt.start()
    with open(mt.p("f"), "rb") as f:
        assert f.read() == b"kept"
    assert mt.stop() == 0


def test_read_only_mount(tmp_path):
    mt = Mounted(tmp_path).start()
    with open(mt.p("f"), "wb") as f:
        f.write(b"before")
    os.mkdir(mt.p("d"))
    assert mt.stop() == 0
    mt = Mounted(tmp_path, "--mount-read-only").start()
    try:
        with open(mt.p("f"), "rb") as f:
            assert f.read() == b"before"
        assert os.listdir(mt.p("d")) == []
        for fn, args in ((os.open, (mt.p("f"), os.O_WRONLY)),
                         (os.open, (mt.p("new"), os.O_WRONLY | os.O_CREAT, 0o644)),
                         (os.unlink, (mt.p("f"),)), (os.mkdir, (mt.p("e"),)),
                         (os.rename, (mt.p("f"), mt.p("g"))), (os.chmod, (mt.p("f"), 0o600))):
            expect_errno(errno.EROFS, fn, *args)
        assert os.statvfs(str(mt.mnt)).f_flag & os.ST_RDONLY
    finally:
        assert mt.stop() == 0


def test_shared_mmap_writes_reach_storage(tmp_path):
    mt = Mounted(tmp_path).start()
    p = mt.p("mm")
    with open(p, "wb") as f:
        f.write(b"\0" * 8192)
    with open(p, "r+b") as f:
        mm = mmap.mmap(f.fileno(), 8192)
        mm[100:105] = b"MMAP!"
        mm.flush()
        mm.close()
    assert mt.stop() == 0
    mt.start()
    with open(p, "rb") as f:
        assert f.read()[100:105] == b"MMAP!"
    mt.stop()


def test_data_survives_restart_and_sigkill_after_fsync(tmp_path):
    mt = Mounted(tmp_path).start()
    with open(mt.p("closed"), "wb") as f:
        f.write(b"closed file")
    fd = os.open(mt.p("synced"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"fsynced bytes")
    os.fsync(fd)
    mt.stop(signal.SIGKILL)
    try:
        os.close(fd)  # the connection is gone: closing fails at once, it must not hang
    except OSError as e:
        assert e.errno == errno.ENOTCONN
    # A killed server leaves a dead mount point; the next start reclaims it.
    expect_errno(errno.ENOTCONN, os.stat, str(mt.mnt))
    mt.start()
    assert "reclaimed" in mt.server.stderr()
    assert open(mt.p("synced"), "rb").read() == b"fsynced bytes"
    # Closed but never fsynced: not promised durable, but never half there.
    if os.path.exists(mt.p("closed")):
        assert open(mt.p("closed"), "rb").read() in (b"", b"closed file")
    assert mt.stop() == 0
    assert not is_mounted(mt.mnt)


def test_external_unmount_keeps_server(tmp_path):
    mt = Mounted(tmp_path).start()
    subprocess.run(["fusermount3", "-u", str(mt.mnt)], check=True)
    time.sleep(0.3)
    assert not is_mounted(mt.mnt)
    assert mt.server.proc.poll() is None
    assert mt.stop() == 0


def test_busy_mount_does_not_block_shutdown(tmp_path):
    mt = Mounted(tmp_path).start()
    holder = subprocess.Popen(["sleep", "60"], cwd=str(mt.mnt))
    try:
        t = time.monotonic()
        assert mt.stop() == 0
        assert time.monotonic() - t < 20
    finally:
        holder.kill()
        holder.wait()
    subprocess.run(["umount", "-l", str(mt.mnt)], stderr=subprocess.DEVNULL)


def test_real_programs_tar_and_diff(m):
    src = os.path.join(os.environ.get("NB_SOURCE_DIR", "."), "src")
    subprocess.run(["tar", "-C", src, "-cf", m.p("src.tar"), "."], check=True)
    os.mkdir(m.p("tree"))
    subprocess.run(["tar", "-C", m.p("tree"), "-xf", m.p("src.tar")], check=True)
    subprocess.run(["diff", "-r", src, m.p("tree")], check=True)
    shutil.rmtree(m.p("tree"))
    assert not os.path.exists(m.p("tree"))
