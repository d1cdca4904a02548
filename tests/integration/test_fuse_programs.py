"""Real programs on the mount, unchanged: git, make + gcc, sqlite3 (rollback
journal and WAL), rsync in and out, and a PyTorch DataLoader with worker
processes. Each checks its own result (git fsck, PRAGMA integrity_check,
diff -r, the program's output, the bytes the loader returns)."""
import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess

import pytest

from test_fuse import Mounted, is_mounted

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse")


@pytest.fixture(scope="module")
def m(tmp_path_factory):
    mt = Mounted(tmp_path_factory.mktemp("programs")).start()
    yield mt
    try:
        if mt.server.proc.poll() is None:
            assert mt.stop() == 0
    finally:
        if mt.server.proc.poll() is None:
            mt.stop(signal.SIGKILL)
        if is_mounted(mt.mnt):
            subprocess.run(["umount", "-l", str(mt.mnt)])


def sh(*args, cwd=None, env=None, timeout=120):
    r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def make_tree(root, rng, files=60, symlinks=True):
    """A small tree of text and binary files in nested directories."""
    for i in range(files):
        d = os.path.join(root, "d%d" % (i % 5), "s%d" % (i % 3))
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "f%03d%s" % (i, ".txt" if i % 2 else ".bin"))
        n = rng.choice([0, 1, 100, 4096, 70000, 300000])
        with open(p, "wb") as f:
            f.write(rng.randbytes(n) if i % 2 == 0 else ("line %d\n" % i * (n // 8 + 1)).encode())
        os.chmod(p, rng.choice([0o644, 0o600, 0o755]))
    if symlinks:
        os.symlink("d0/s0/f000.bin", os.path.join(root, "link"))
        os.symlink("missing-target", os.path.join(root, "dangling"))
    os.makedirs(os.path.join(root, "empty"), exist_ok=True)


GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@x", GIT_CONFIG_NOSYSTEM="1", HOME="/nonexistent")


def git(repo, *args):
    return sh("git", "-c", "init.defaultBranch=main", "-c", "safe.directory=*", *args, cwd=repo,
              env=GIT_ENV)


def test_git_init_add_commit_checkout_log_fsck(m):
    repo = m.p("repo")
    os.mkdir(repo)
    rng = random.Random(7)
    make_tree(repo, rng, files=40)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    first = {p: open(os.path.join(repo, p), "rb").read()
             for p in git(repo, "ls-files").split() if not os.path.islink(os.path.join(repo, p))}
    git(repo, "checkout", "-q", "-b", "topic")
    with open(os.path.join(repo, "d0", "s0", "f000.bin"), "ab") as f:
        f.write(b"more")
    os.unlink(os.path.join(repo, "d1", "s1", "f001.txt"))
    with open(os.path.join(repo, "new.txt"), "w") as f:
        f.write("new file\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second")
    git(repo, "gc", "-q")  # packs objects: rewrites and renames under the mount
    git(repo, "checkout", "-q", "main")
    assert not os.path.exists(os.path.join(repo, "new.txt"))
    for p, data in first.items():
        assert open(os.path.join(repo, p), "rb").read() == data, p
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "log", "--format=%s", "topic").split() == ["second", "first"]
    git(repo, "checkout", "-q", "topic")
    assert open(os.path.join(repo, "new.txt")).read() == "new file\n"
    git(repo, "fsck", "--full", "--strict")
    # A clone out of the mount has the same history.
    clone = os.path.join(m.p(), "clone")
    git(m.p(), "clone", "-q", repo, clone)
    assert git(clone, "log", "--format=%s").split() == ["second", "first"]
    shutil.rmtree(clone)
    shutil.rmtree(repo)


C_FILES = {
    "util.h": "int add(int a, int b);\nint mul(int a, int b);\n",
    "add.c": '#include "util.h"\nint add(int a, int b) { return a + b; }\n',
    "mul.c": '#include "util.h"\nint mul(int a, int b) { return a * b; }\n',
    "main.c": '#include <stdio.h>\n#include "util.h"\n'
              'int main(void) { printf("%d %d\\n", add(2, 3), mul(4, 5)); return 0; }\n',
    "Makefile": "OBJS = main.o add.o mul.o\n"
                "prog: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n"
                "%.o: %.c util.h\n\t$(CC) -O2 -Wall -Werror -c -o $@ $<\n",
}


def test_make_and_gcc_build_a_program(m):
    d = m.p("cproj")
    os.mkdir(d)
    for name, text in C_FILES.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    sh("make", "-j2", "CC=gcc", cwd=d)
    assert sh(os.path.join(d, "prog")) == "5 20\n"
    # Timestamps drive make: nothing to do now, one rebuild after an edit.
    assert "up to date" in sh("make", "CC=gcc", cwd=d)
    with open(os.path.join(d, "mul.c"), "w") as f:
        f.write('#include "util.h"\nint mul(int a, int b) { return a * b + 1; }\n')
    out = sh("make", "CC=gcc", cwd=d)
    assert "mul.c" in out and "add.c" not in out and "main.c" not in out
    assert sh(os.path.join(d, "prog")) == "5 21\n"
    shutil.rmtree(d)


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_sqlite_many_transactions_integrity(m, journal):
    path = m.p("db-%s.sqlite" % journal)
    rng = random.Random(11)
    expect = {}
    con = sqlite3.connect(path, isolation_level=None)
    assert con.execute("PRAGMA journal_mode=%s" % journal).fetchone()[0] == journal
    con.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    con.execute("CREATE INDEX tv ON t (v)")
    for txn in range(200):
        con.execute("BEGIN")
        for _ in range(rng.randrange(1, 8)):
            k = rng.randrange(2000)
            if rng.random() < 0.2 and k in expect:
                con.execute("DELETE FROM t WHERE k = ?", (k,))
                del expect[k]
            else:
                v = rng.randbytes(rng.randrange(1, 3000))
                con.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (k, v))
                expect[k] = v
        if txn % 10 == 9:
            con.execute("ROLLBACK")  # undo this one in the model too
            expect = dict(con.execute("SELECT k, v FROM t"))
        else:
            con.execute("COMMIT")
        if journal == "wal" and txn % 70 == 69:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert dict(con.execute("SELECT k, v FROM t")) == expect
    con.close()
    out = sh("sqlite3", path, "PRAGMA integrity_check; SELECT count(*) FROM t;")
    assert out.split() == ["ok", str(len(expect))]
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)


def test_rsync_in_and_out(m, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    make_tree(str(src), random.Random(3))
    dst = m.p("rsynced")
    sh("rsync", "-a", str(src) + "/", dst + "/")
    sh("diff", "-r", "--no-dereference", str(src), dst)
    # An incremental run: changed, new and deleted files (rsync writes a
    # temporary file and renames it over the old one).
    with open(src / "d0" / "s0" / "f000.bin", "ab") as f:
        f.write(b"appended")
    (src / "d2" / "fresh").write_bytes(os.urandom(12345))
    os.unlink(src / "d3" / "s0" / "f003.txt")
    sh("rsync", "-a", "--delete", str(src) + "/", dst + "/")
    sh("diff", "-r", "--no-dereference", str(src), dst)
    back = tmp_path / "back"
    sh("rsync", "-a", dst + "/", str(back) + "/")
    sh("diff", "-r", "--no-dereference", str(src), str(back))
    # Modes and mtimes came through both ways.
    for p in ("d0/s0/f000.bin", "d1/s1/f001.txt"):
        a, b = os.stat(src / p), os.stat(back / p)
        assert (a.st_mode, a.st_mtime_ns // 10**9) == (b.st_mode, b.st_mtime_ns // 10**9), p
    shutil.rmtree(dst)


LOADER = r"""
import hashlib, os, sys
import torch
from torch.utils.data import DataLoader, Dataset

class Files(Dataset):
    def __init__(self, root):
        self.paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
    def __len__(self):
        return len(self.paths)
    def __getitem__(self, i):
        with open(self.paths[i], "rb") as f:
            return os.path.relpath(self.paths[i], sys.argv[1]), f.read()

dl = DataLoader(Files(sys.argv[1]), batch_size=16, num_workers=2, shuffle=True,
                collate_fn=lambda b: b, generator=torch.Generator().manual_seed(1))
for batch in dl:
    for name, data in batch:
        print(name, len(data), hashlib.sha256(data).hexdigest())
"""


def test_pytorch_dataloader_reads_exact_bytes(m, tmp_path):
    rng = random.Random(5)
    local = tmp_path / "samples"
    expect = {}
    for i in range(2000):
        rel = "c%02d/s%05d.bin" % (i % 20, i)
        data = rng.randbytes(rng.randrange(100, 8192))
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)
        expect[rel] = (len(data), hashlib.sha256(data).hexdigest())
    dst = m.p("samples")
    shutil.copytree(local, dst)
    script = tmp_path / "loader.py"
    script.write_text(LOADER)
    out = sh("/usr/bin/python3", str(script), dst, timeout=300)
    got = {}
    for line in out.splitlines():
        name, n, h = line.split()
        assert name not in got, "sample %s returned twice" % name
        got[name] = (int(n), h)
    assert got == expect
    shutil.rmtree(dst)


def test_programs_leave_a_clean_store(m):
    """Runs last in this file: after all of the above, fsck finds nothing
    wrong (the fixture does not restart the server)."""
    from nebula_proc import run
    assert m.stop() == 0
    r = run("fsck", m.data)
    assert r.returncode == 0, r.stdout + r.stderr
