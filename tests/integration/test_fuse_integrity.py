"""Random-operation integrity test on the real mount: one seeded sequence of
pwrite, truncate, pread, mmap write/read, hole punching, O_APPEND writes,
fsync and close/reopen runs on a file under the mount and on a local file
in lock-step; every read must match byte for byte. The file crosses the
4 MiB block boundary now and then.

NB_SEED=N reruns one sequence; a failure names its seed and the last
operations. NB_SOAK=1 (ctest label soak) runs more and longer sequences."""
import ctypes
import mmap
import os
import random
import signal
import subprocess

import pytest

from test_fuse import Mounted, is_mounted

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse")

SOAK = os.environ.get("NB_SOAK") == "1"
OPS = 20000 if SOAK else 2000
SEEDS = 8 if SOAK else 1
BLOCK = 4 << 20
PAGE = mmap.PAGESIZE
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def punch(fd, off, length):
    if libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def pick_offset(rng, size):
    """Mostly inside the file, often near the block boundary, sometimes past the end."""
    r = rng.random()
    if r < 0.15:
        return max(0, BLOCK - rng.randrange(1, 3 * PAGE))
    if r < 0.25 or size == 0:
        return rng.randrange(0, size + 64 * 1024)
    return rng.randrange(0, size)


def pick_len(rng):
    r = rng.random()
    if r < 0.5:
        return rng.randrange(1, 4096)
    if r < 0.9:
        return rng.randrange(4096, 256 * 1024)
    return rng.randrange(256 * 1024, 2 << 20)


class Pair:
    """The file under the mount (a) and its local twin (b), opened alike."""

    def __init__(self, a, b):
        self.a, self.b = a, b
        self.fa = self.fb = None
        self.reopen(os.O_CREAT | os.O_TRUNC)

    def reopen(self, extra=0):
        self.close()
        self.fa = os.open(self.a, os.O_RDWR | extra, 0o644)
        self.fb = os.open(self.b, os.O_RDWR | extra, 0o644)

    def close(self):
        for fd in (self.fa, self.fb):
            if fd is not None:
                os.close(fd)
        self.fa = self.fb = None

    def size(self):
        return os.fstat(self.fb).st_size


def run_sequence(seed, a, b, ops):
    rng = random.Random(seed)
    log = []
    pair = Pair(a, b)

    def check(what, x, y):
        if x != y:
            where = ""
            if isinstance(x, bytes) and isinstance(y, bytes):
                n = min(len(x), len(y))
                first = next((i for i in range(n) if x[i] != y[i]), n)
                where = " (lengths %d/%d, first difference at %d)" % (len(x), len(y), first)
            pytest.fail("seed=%d op #%d %s: mount and local differ%s; last ops:\n  %s"
                        % (seed, len(log), what, where, "\n  ".join(log[-12:])))

    def compare_all(what):
        size = pair.size()
        check(what + " size", os.fstat(pair.fa).st_size, size)
        check(what + " contents", os.pread(pair.fa, size + 1, 0), os.pread(pair.fb, size + 1, 0))

    try:
        for _ in range(ops):
            size = pair.size()
            r = rng.random()
            if r < 0.30:
                off, n = pick_offset(rng, size), pick_len(rng)
                data = rng.randbytes(n)
                log.append("pwrite(%d, %d)" % (off, n))
                check("pwrite", os.pwrite(pair.fa, data, off), os.pwrite(pair.fb, data, off))
            elif r < 0.55:
                off, n = pick_offset(rng, size), pick_len(rng)
                log.append("pread(%d, %d)" % (off, n))
                check("pread", os.pread(pair.fa, n, off), os.pread(pair.fb, n, off))
            elif r < 0.62:
                n = rng.choice([0, rng.randrange(0, size + 1), rng.randrange(0, BLOCK + 3 * PAGE),
                                size + rng.randrange(1, 100000)])
                log.append("ftruncate(%d)" % n)
                os.ftruncate(pair.fa, n)
                os.ftruncate(pair.fb, n)
                check("size after truncate", os.fstat(pair.fa).st_size, n)
            elif r < 0.72 and size > 0:
                # Shared mapping of a page-aligned window; write or read through it.
                start = rng.randrange(0, size) // PAGE * PAGE
                length = min(size - start, rng.randrange(1, 64 * 1024))
                write = rng.random() < 0.6
                ma = mmap.mmap(pair.fa, length, offset=start)
                mb = mmap.mmap(pair.fb, length, offset=start)
                try:
                    if write:
                        o = rng.randrange(0, length)
                        n = rng.randrange(1, length - o + 1)
                        data = rng.randbytes(n)
                        log.append("mmap write(%d, %d)" % (start + o, n))
                        ma[o:o + n] = data
                        mb[o:o + n] = data
                        if rng.random() < 0.5:
                            ma.flush()
                            mb.flush()
                    else:
                        log.append("mmap read(%d, %d)" % (start, length))
                        check("mmap read", ma[:], mb[:])
                finally:
                    ma.close()
                    mb.close()
            elif r < 0.76 and size > 0:
                off = rng.randrange(0, size)
                n = rng.randrange(1, min(size - off, 1 << 20) + 1)
                log.append("punch hole(%d, %d)" % (off, n))
                punch(pair.fa, off, n)
                punch(pair.fb, off, n)
            elif r < 0.82:
                data = rng.randbytes(pick_len(rng) // 4 + 1)
                log.append("O_APPEND write(%d)" % len(data))
                for path in (a, b):
                    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                    try:
                        os.write(fd, data)
                    finally:
                        os.close(fd)
            elif r < 0.86:
                log.append("fsync")
                os.fsync(pair.fa)
            elif r < 0.92:
                log.append("close, reopen")
                pair.reopen()
                compare_all("after reopen")
            else:
                # A fresh read-only open sees the same bytes (separate handle).
                log.append("read through a second handle")
                fd = os.open(a, os.O_RDONLY)
                try:
                    got = os.pread(fd, size + 1, 0)
                finally:
                    os.close(fd)
                check("second handle", got, os.pread(pair.fb, size + 1, 0))
        log.append("final compare")
        compare_all("final")
    finally:
        pair.close()


@pytest.fixture(params=["writeback", "writethrough"])
def m(tmp_path, request):
    extra = () if request.param == "writeback" else ("--no-writeback-cache",)
    mt = Mounted(tmp_path, *extra).start()
    yield mt
    if mt.server.proc.poll() is None:
        mt.stop(signal.SIGKILL)
    if is_mounted(mt.mnt):
        subprocess.run(["umount", "-l", str(mt.mnt)])


def seeds():
    if os.environ.get("NB_SEED"):
        return [int(os.environ["NB_SEED"])]
    base = random.SystemRandom().randrange(1 << 31)
    return [base + i for i in range(SEEDS)]


def test_random_operations_match_a_local_file(m, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    # Write-through (no kernel write-back cache) is the rarer setup: half.
    ops = OPS if "--no-writeback-cache" not in m.extra else OPS // 2
    for seed in seeds():
        print("seed=%d" % seed)
        a, b = m.p("f%d" % seed), str(local / ("f%d" % seed))
        run_sequence(seed, a, b, ops)
        # The bytes also survive a restart of the server.
        assert m.stop() == 0
        m.start()
        with open(a, "rb") as fa, open(b, "rb") as fb:
            assert fa.read() == fb.read(), "seed=%d: differs after a restart" % seed
        os.unlink(a)
        os.unlink(b)


def test_descriptors_of_one_file_see_each_others_writes(m):
    """Two descriptors are one file: a write through one is read through
    the other before any close, an O_APPEND write lands after the other's
    unclosed writes, and a truncate by path cuts them (they must not come
    back at close)."""
    p = m.p("shared")
    a = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    b = os.open(p, os.O_RDWR)
    c = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        os.pwrite(a, b"0123456789", 0)
        assert os.pread(b, 10, 0) == b"0123456789"
        os.write(c, b"+tail")
        assert os.pread(b, 20, 0) == b"0123456789+tail"
        os.pwrite(b, b"AB", 100)
        os.truncate(p, 4)
        os.pwrite(a, b"!", 6)
    finally:
        for fd in (a, b, c):
            os.close(fd)
    assert open(p, "rb").read() == b"0123\0\0!"
