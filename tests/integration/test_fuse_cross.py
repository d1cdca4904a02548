"""Cross-protocol checks beyond test_s3_mount.py, and a crash with writers
running under the mount:

- ListObjectsV2 (paged) of a bucket equals `find` under the mount;
- a multipart upload by the aws cli is one file with the right bytes;
- overwrite, rename and delete on either side are seen at once by the other
  (also through cached attributes and open handles);
- versioned deletes, removing a delete marker and lifecycle expiry are seen
  at once through the kernel's caches, even with hour-long cache timeouts;
- SIGKILL of the server while several writers run: after restart every file
  whose fsync returned is intact and `nebula fsck` is clean."""
import hashlib
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from nebula_proc import run
from test_s3_helpers import mounted_s3_server
from test_fuse import Mounted, is_mounted

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse")


@pytest.fixture(scope="module")
def m(tmp_path_factory):
    with mounted_s3_server(tmp_path_factory.mktemp("cross")) as s:
        yield s


def list_all(s3, bucket, page):
    keys = {}
    kw = {"Bucket": bucket, "MaxKeys": page}
    while True:
        r = s3.list_objects_v2(**kw)
        for o in r.get("Contents", []):
            assert o["Key"] not in keys, "listed twice: " + o["Key"]
            keys[o["Key"]] = o["Size"]
        if not r["IsTruncated"]:
            return keys
        kw["ContinuationToken"] = r["NextContinuationToken"]


def find_files(root):
    """Relative path -> size of every regular file (find -type f), and
    "path/" -> 0 for every empty directory: S3 lists those as directory
    markers (docs/s3.md)."""
    out = subprocess.run(["find", root, "-mindepth", "1", "(", "-type", "f", "-printf",
                          "%P\\t%s\\n", ")", "-o", "(", "-type", "d", "-empty", "-printf",
                          "%P/\\t0\\n", ")"], capture_output=True, text=True, check=True).stdout
    return {p: int(n) for p, n in (line.split("\t") for line in out.splitlines())}


def test_list_objects_equals_find(m):
    s3 = m.client()
    b = os.path.join(m.mnt, "lst")
    os.mkdir(b)
    rng = random.Random(1)
    # Files made under the mount, objects PUT through S3, names that sort
    # differently as keys than as a directory walk ("a/b" vs "a-b", "a.b").
    for i in range(120):
        d = os.path.join(b, *["d%d" % rng.randrange(4) for _ in range(rng.randrange(0, 3))])
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%d" % i), "wb") as f:
            f.write(rng.randbytes(rng.randrange(0, 3000)))
    for name in ("a/b", "a-b", "a.b", "a0", "z/y/x", "d0/put-%d"):
        s3.put_object(Bucket="lst", Key=name.replace("%d", "1"), Body=b"s3 " + name.encode())
    os.makedirs(os.path.join(b, "only", "empty", "dirs"))
    want = find_files(b)
    assert len(want) == 127 and want["only/empty/dirs/"] == 0
    for page in (7, 1000):
        assert list_all(s3, "lst", page) == want
    # Keys come in byte order of the full key, as S3 promises.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lst", MaxKeys=1000)["Contents"]]
    assert keys == sorted(keys, key=lambda k: k.encode())
    # After removals on both sides the listing still equals find.
    os.unlink(os.path.join(b, "a.b"))
    s3.delete_object(Bucket="lst", Key="z/y/x")
    assert list_all(s3, "lst", 50) == find_files(b)
    subprocess.run(["rm", "-rf", b], check=True)


def test_multipart_upload_is_one_file(m, tmp_path):
    os.mkdir(os.path.join(m.mnt, "mpu"))
    data = os.urandom((13 << 20) + 12345)  # three parts of the cli's 8 MiB... and a tail
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    m.aws("s3", "cp", str(src), "s3://mpu/deep/big.bin")
    head = m.client().head_object(Bucket="mpu", Key="deep/big.bin")
    assert head["ETag"].endswith('-2"')  # it really was a multipart upload
    p = os.path.join(m.mnt, "mpu", "deep", "big.bin")
    assert os.stat(p).st_size == len(data)
    with open(p, "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()
    with open(p, "rb") as f:
        f.seek((8 << 20) - 10)  # across the part boundary
        assert f.read(20) == data[(8 << 20) - 10:(8 << 20) + 10]
    os.unlink(p)
    # The directory stays (POSIX unlink), an empty one: a marker in S3.
    r = m.client().list_objects_v2(Bucket="mpu")
    assert [(o["Key"], o["Size"]) for o in r["Contents"]] == [("deep/", 0)]


def test_changes_are_seen_at_once_both_ways(m):
    s3 = m.client()
    os.mkdir(os.path.join(m.mnt, "xp"))
    p = os.path.join(m.mnt, "xp", "f")

    # Mount -> S3: write, overwrite shorter, rename, delete; each visible
    # to the next S3 request.
    with open(p, "wb") as f:
        f.write(b"written under the mount")
    assert s3.get_object(Bucket="xp", Key="f")["Body"].read() == b"written under the mount"
    with open(p, "wb") as f:
        f.write(b"short")
    g = s3.get_object(Bucket="xp", Key="f")
    assert (g["ContentLength"], g["Body"].read()) == (5, b"short")
    assert g["ETag"] == '"%s"' % hashlib.md5(b"short").hexdigest()
    os.rename(p, os.path.join(m.mnt, "xp", "g"))
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="xp", Key="f")
    assert s3.get_object(Bucket="xp", Key="g")["Body"].read() == b"short"
    os.unlink(os.path.join(m.mnt, "xp", "g"))
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="xp", Key="g")

    # S3 -> mount, with the kernel holding cached attributes and pages.
    s3.put_object(Bucket="xp", Key="h", Body=b"first version of h")
    h = os.path.join(m.mnt, "xp", "h")
    assert os.stat(h).st_size == 18
    assert open(h, "rb").read() == b"first version of h"
    s3.put_object(Bucket="xp", Key="h", Body=b"v2")
    assert os.stat(h).st_size == 2
    assert open(h, "rb").read() == b"v2"
    # A copy over it is an overwrite too.
    s3.put_object(Bucket="xp", Key="src", Body=b"copied bytes")
    s3.copy_object(Bucket="xp", Key="h", CopySource="xp/src")
    assert open(h, "rb").read() == b"copied bytes"
    # Delete: gone from lookups and listings at once.
    assert "h" in os.listdir(os.path.join(m.mnt, "xp"))
    s3.delete_object(Bucket="xp", Key="h")
    assert not os.path.exists(h)
    assert "h" not in os.listdir(os.path.join(m.mnt, "xp"))
    with pytest.raises(FileNotFoundError):
        open(h, "rb")
    # Re-created through S3 right after: the new object, not a cached miss.
    s3.put_object(Bucket="xp", Key="h", Body=b"back")
    assert open(h, "rb").read() == b"back"
    # A file under the mount overwritten through S3 while a reader holds
    # it open: the next open sees the new bytes.
    fd = os.open(h, os.O_RDONLY)
    try:
        assert os.pread(fd, 10, 0) == b"back"
        s3.put_object(Bucket="xp", Key="h", Body=b"replaced while open")
        assert open(h, "rb").read() == b"replaced while open"
    finally:
        os.close(fd)
    subprocess.run(["rm", "-rf", os.path.join(m.mnt, "xp")], check=True)


def test_versions_and_lifecycle_invalidate_the_mount(tmp_path):
    """The kernel may keep names and attributes for an hour here, so only
    explicit invalidation can make these changes visible."""
    with mounted_s3_server(tmp_path, "--entry-timeout", "3600", "--attr-timeout", "3600",
                           "--lifecycle-interval", "0.3", "--lifecycle-day-seconds", "1") as m:
        s3 = m.client()
        s3.create_bucket(Bucket="ver")
        s3.put_bucket_versioning(Bucket="ver", VersioningConfiguration={"Status": "Enabled"})
        p = os.path.join(m.mnt, "ver", "d", "k")
        v1 = s3.put_object(Bucket="ver", Key="d/k", Body=b"version one")["VersionId"]
        assert open(p, "rb").read() == b"version one"
        # A delete marker: the file is gone at once.
        dm = s3.delete_object(Bucket="ver", Key="d/k")["VersionId"]
        assert not os.path.exists(p)
        # Removing the marker makes v1 current again: no cached miss hides it.
        s3.delete_object(Bucket="ver", Key="d/k", VersionId=dm)
        assert open(p, "rb").read() == b"version one"
        # Deleting the current version by id brings back the older one.
        v2 = s3.put_object(Bucket="ver", Key="d/k", Body=b"two")["VersionId"]
        assert (os.stat(p).st_size, open(p, "rb").read()) == (3, b"two")
        s3.delete_object(Bucket="ver", Key="d/k", VersionId=v2)
        assert (os.stat(p).st_size, open(p, "rb").read()) == (11, b"version one")
        s3.delete_object(Bucket="ver", Key="d/k", VersionId=v1)
        assert not os.path.exists(p)

        # Lifecycle expiry, unversioned and versioned (a marker), of files
        # the kernel has looked up, stat'ed and read.
        s3.create_bucket(Bucket="lcx")
        s3.put_bucket_lifecycle_configuration(Bucket="lcx", LifecycleConfiguration={"Rules": [
            {"ID": "x", "Status": "Enabled", "Filter": {"Prefix": "x/"},
             "Expiration": {"Days": 1}}]})
        s3.put_bucket_lifecycle_configuration(Bucket="ver", LifecycleConfiguration={"Rules": [
            {"ID": "x", "Status": "Enabled", "Filter": {"Prefix": "x/"},
             "Expiration": {"Days": 1}}]})
        for b in ("lcx", "ver"):
            s3.put_object(Bucket=b, Key="x/old", Body=b"expires")
            s3.put_object(Bucket=b, Key="keep", Body=b"stays")
            assert open(os.path.join(m.mnt, b, "x", "old"), "rb").read() == b"expires"
            assert os.stat(os.path.join(m.mnt, b, "keep")).st_size == 5
        deadline = time.monotonic() + 30
        while any(s3.list_objects_v2(Bucket=b, Prefix="x/")["KeyCount"] for b in ("lcx", "ver")):
            assert time.monotonic() < deadline, "lifecycle did not expire x/old"
            time.sleep(0.2)
        for b in ("lcx", "ver"):
            assert not os.path.exists(os.path.join(m.mnt, b, "x", "old"))
            assert os.listdir(os.path.join(m.mnt, b)) == ["keep"]
            assert open(os.path.join(m.mnt, b, "keep"), "rb").read() == b"stays"


WRITER = r"""
import hashlib, os, random, sys
root, wid = sys.argv[1], int(sys.argv[2])
rng = random.Random(wid)
log = os.path.join(root, "w%d.log" % wid)
logfd = os.open(log, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
logged = 0
i = 0
try:
    while True:
        p = os.path.join(root, "w%d-%05d" % (wid, i))
        data = rng.randbytes(rng.choice([1, 500, 5000, 70000, 600000, 3 << 20]))
        fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        for o in range(0, len(data), 1 << 17):
            os.write(fd, data[o:o + (1 << 17)])
        os.fsync(fd)
        os.close(fd)
        line = b"%d %d\n" % (i, logged)
        os.write(logfd, line)
        os.fsync(logfd)
        logged += len(line)
        # Only now is it promised: tell the test.
        print(p, len(data), hashlib.sha256(data).hexdigest(), log, logged, flush=True)
        i += 1
except OSError:
    pass  # the server is gone
"""


def test_sigkill_with_writers_keeps_every_fsynced_file(tmp_path):
    mt = Mounted(tmp_path).start()
    try:
        root = mt.p("w")
        os.mkdir(root)
        script = tmp_path / "writer.py"
        script.write_text(WRITER)
        writers = [subprocess.Popen([sys.executable, str(script), root, str(w)],
                                    stdout=subprocess.PIPE, text=True) for w in range(4)]
        done = [[] for _ in writers]
        # Let every writer get a few files durable, then kill the server
        # with writes in flight.
        for w, proc in enumerate(writers):
            while len(done[w]) < 3:
                line = proc.stdout.readline()
                assert line, "writer %d stopped early" % w
                done[w].append(line.split())
        mt.stop(signal.SIGKILL)
        for w, proc in enumerate(writers):
            # Read through the same buffered stream as readline() above:
            # communicate() reads the raw pipe and would drop lines that
            # stream already holds. Writers exit once the mount is gone.
            out = proc.stdout.read()
            proc.wait(timeout=60)
            done[w] += [line.split() for line in out.splitlines()]
        assert not run("fsck", mt.data).returncode, "fsck after SIGKILL"
        mt.start()
        assert "reclaimed" in mt.server.stderr()
        for w in range(len(writers)):
            for p, n, h, log, logged in done[w]:
                with open(p, "rb") as f:
                    data = f.read()
                assert (len(data), hashlib.sha256(data).hexdigest()) == (int(n), h), p
            # The fsynced appends to the log are all there, in order.
            _, _, _, log, logged = done[w][-1]
            with open(log, "rb") as f:
                text = f.read()
            assert len(text) >= int(logged)
            lines = text[:int(logged)].decode().splitlines()
            assert [int(x.split()[0]) for x in lines] == list(range(len(done[w])))
        assert mt.stop() == 0
        r = run("fsck", mt.data)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        if mt.server.proc.poll() is None:
            mt.stop(signal.SIGKILL)
        if is_mounted(mt.mnt):
            subprocess.run(["umount", "-l", str(mt.mnt)])
