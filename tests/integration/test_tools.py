"""`nebula fsck`, `nebula dump` and `nebula load` on a real data directory
filled through the FUSE mount."""
import json
import os
import shutil
import signal

import pytest

from nebula_proc import Server, run
from test_fuse import Mounted

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse")


def fill(mt):
    os.makedirs(mt.p("dir", "sub"))
    with open(mt.p("dir", "sub", "file.bin"), "wb") as f:
        f.write(os.urandom(5 << 20) + b"end")
    os.symlink("sub/file.bin", mt.p("dir", "link"))
    os.link(mt.p("dir", "sub", "file.bin"), mt.p("hard"))


def test_fsck_dump_load_roundtrip(tmp_path):
    mt = Mounted(tmp_path).start()
    fill(mt)
    body = open(mt.p("hard"), "rb").read()
    # While the server runs, the tools refuse to touch its directory.
    r = run("fsck", mt.data)
    assert r.returncode == 2 and "in use by a running nebula server" in r.stderr
    assert mt.stop() == 0

    r = run("fsck", mt.data)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("dump", mt.data)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert "file.bin" in r.stdout and isinstance(doc, dict)

    # Load the dump next to a copy of the same blocks, without the metadata.
    copy = tmp_path / "copy"
    shutil.copytree(mt.data, copy, symlinks=True)
    shutil.rmtree(copy / "meta")
    dump = tmp_path / "meta.json"
    dump.write_text(r.stdout)
    with open(dump) as f:
        import subprocess
        lr = subprocess.run([os.environ["NEBULA_BIN"], "load", str(copy)], stdin=f,
                            capture_output=True, text=True, timeout=60)
    assert lr.returncode == 0, lr.stderr
    assert run("fsck", str(copy)).returncode == 0

    mt2 = Mounted(tmp_path / "m2", mnt=tmp_path / "mnt2")
    mt2.data = str(copy)
    mt2.start()
    try:
        assert open(mt2.p("dir", "link"), "rb").read() == body
        assert os.stat(mt2.p("hard")).st_nlink == 2
    finally:
        mt2.stop()


def test_fsck_after_sigkill_is_clean(tmp_path):
    mt = Mounted(tmp_path).start()
    fill(mt)
    fd = os.open(mt.p("synced"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"x" * 100000)
    os.fsync(fd)
    mt.stop(signal.SIGKILL)
    try:
        os.close(fd)
    except OSError:
        pass
    os.system("umount -l '%s' 2>/dev/null" % mt.mnt)
    r = run("fsck", mt.data)
    assert r.returncode == 0, r.stdout + r.stderr


def test_tool_usage():
    for cmd in ("fsck", "dump", "load"):
        r = run(cmd)
        assert r.returncode == 2 and "missing argument" in r.stderr
        assert run(cmd, "--help").returncode == 0
    r = run("fsck", "/nonexistent/nebula")
    assert r.returncode == 2 and "/nonexistent/nebula" in r.stderr
