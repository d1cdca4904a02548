"""rclone (Debian's) against `nebula server`: sync a generated tree of a
few thousand files of mixed sizes (empty, small, a few MiB, one large
enough for a multipart upload), `rclone check` clean, a second sync
transfers nothing, then local changes (modified, deleted, added files)
sync and check clean again. rclone is configured by a config file in a
temporary directory: provider Other, SigV4, path style."""
import hashlib
import json
import os
import random
import shutil
import subprocess

import pytest

from test_s3_helpers import S3Server

RCLONE = "/usr/bin/rclone"
NFILES = 2000
# Multipart from 8 MiB on, in 5 MiB parts: the large file has 3 parts.
CUTOFF = "8Mi"
CHUNK = "5Mi"
LARGE = 12 << 20 | 12345

pytestmark = pytest.mark.skipif(not os.path.exists(RCLONE), reason="rclone not installed")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = S3Server(str(tmp_path_factory.mktemp("rclone") / "data"))
    yield s
    assert s.stop() == 0


class Rclone:
    def __init__(self, srv, tmp):
        self.conf = tmp / "rclone.conf"
        self.conf.write_text(
            "[neb]\ntype = s3\nprovider = Other\nenv_auth = false\n"
            "access_key_id = %s\nsecret_access_key = %s\nendpoint = %s\n"
            "region = us-east-1\nforce_path_style = true\nv2_auth = false\n"
            "upload_cutoff = %s\nchunk_size = %s\n"
            % (srv.access_key, srv.secret_key, srv.endpoint, CUTOFF, CHUNK))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RCLONE_", "AWS_"))}
        self.env.update(HOME=str(tmp), XDG_CACHE_HOME=str(tmp / "cache"),
                        XDG_CONFIG_HOME=str(tmp / "config"))

    def run(self, *args, check=True):
        r = subprocess.run([RCLONE, "--config", str(self.conf), "--low-level-retries", "1",
                            "--retries", "1", "--transfers", "8", "--checkers", "16", *args],
                           capture_output=True, text=True, env=self.env, timeout=240)
        if check:
            assert r.returncode == 0, (args, r.stdout[-4000:], r.stderr[-4000:])
        return r

    def sync(self, src, dst):
        """Syncs and returns rclone's final stats (from its JSON log)."""
        r = self.run("sync", str(src), dst, "--use-json-log", "--log-level", "INFO",
                     "--stats", "1h", "--stats-log-level", "NOTICE")
        stats = None
        for line in r.stderr.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            assert rec.get("level") not in ("error", "critical"), line
            if "stats" in rec:
                stats = rec["stats"]
        assert stats is not None, r.stderr[-4000:]
        assert stats["errors"] == 0, stats
        return stats


def make_tree(root, rnd):
    """NFILES files over nested directories: mostly small, some empty, a
    few of several MiB and one multipart-sized. Returns {relpath: size}."""
    sizes = {}
    big = os.urandom(LARGE)
    for i in range(NFILES):
        d = "d%02d/e%d" % (i % 37, i % 5) if i % 3 else "d%02d" % (i % 37)
        if i % 50 == 0:
            n = 0
        elif i % 400 == 7:
            n = (2 << 20) + rnd.randrange(2 << 20)
        else:
            n = rnd.randrange(1, 20000)
        p = root / d / ("f%05d.bin" % i)
        p.parent.mkdir(parents=True, exist_ok=True)
        start = rnd.randrange(LARGE - n) if n else 0
        p.write_bytes(big[start:start + n])
        sizes["%s/%s" % (d, p.name)] = n
    (root / "large").mkdir()
    (root / "large" / "multipart.bin").write_bytes(big)
    sizes["large/multipart.bin"] = LARGE
    return sizes


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_rclone_sync_check(srv, tmp_path):
    rnd = random.Random(6)
    rc = Rclone(srv, tmp_path)
    tree = tmp_path / "tree"
    sizes = make_tree(tree, rnd)
    rc.run("mkdir", "neb:rclone")
    dst = "neb:rclone/tree"

    st = rc.sync(tree, dst)
    assert st["transfers"] == len(sizes), st
    assert st["bytes"] == sum(sizes.values()), st
    rc.run("check", str(tree), dst)
    # The server holds the same bytes under the same keys: the listing
    # has every key with its size, and a few objects read back through
    # boto3 (not rclone) match.
    out = rc.run("lsjson", "-R", "--files-only", dst).stdout
    listed = {e["Path"]: e["Size"] for e in json.loads(out)}
    assert listed == sizes
    s3 = srv.client()
    for k in ("large/multipart.bin", "d00/f00000.bin", "d07/e2/f00007.bin"):
        body = s3.get_object(Bucket="rclone", Key="tree/" + k)["Body"].read()
        assert hashlib.md5(body).hexdigest() == md5(tree / k)
    head = s3.head_object(Bucket="rclone", Key="tree/large/multipart.bin")
    assert head["ETag"].endswith('-3"'), head["ETag"]  # it went up in parts

    # Nothing changed: nothing is transferred, nothing deleted.
    st = rc.sync(tree, dst)
    assert st["transfers"] == 0 and st["deletes"] == 0, st
    assert st["bytes"] == 0, st

    # Modify some files (same size and other sizes), delete some, add
    # some, replace the large one.
    keys = sorted(sizes)
    changed = rnd.sample([k for k in keys if sizes[k] and not k.startswith("large")], 40)
    for k in changed[:20]:
        p = tree / k
        b = bytearray(p.read_bytes())
        b[0] ^= 0xFF
        p.write_bytes(bytes(b))
        os.utime(p, (1_700_000_000, 1_700_000_000))
    for k in changed[20:]:
        (tree / k).write_bytes(os.urandom(rnd.randrange(1, 70000)))
    gone = rnd.sample([k for k in keys if k not in changed and not k.startswith("large")], 30)
    for k in gone:
        (tree / k).unlink()
    shutil.rmtree(tree / "d05")  # a whole directory
    gone_dir = [k for k in keys if k.startswith("d05/") and k not in gone]
    for i in range(10):
        (tree / "new" / ("n%d" % i)).parent.mkdir(exist_ok=True)
        (tree / "new" / ("n%d" % i)).write_bytes(os.urandom(i * 1000))
    (tree / "large" / "multipart.bin").write_bytes(os.urandom(LARGE - 1))

    st = rc.sync(tree, dst)
    modified = [k for k in changed if not k.startswith("d05/")]
    assert st["transfers"] == len(modified) + 10 + 1, st
    assert st["deletes"] == len(set(gone) | set(gone_dir)) + 0, st
    rc.run("check", str(tree), dst)
    out = rc.run("lsjson", "-R", "--files-only", dst).stdout
    listed = {e["Path"]: e["Size"] for e in json.loads(out)}
    assert listed == {str(p.relative_to(tree)): p.stat().st_size
                      for p in tree.rglob("*") if p.is_file()}
    # Deleting the last object of a directory removes its prefix.
    r = s3.list_objects_v2(Bucket="rclone", Prefix="tree/d05/")
    assert r["KeyCount"] == 0

    # And a third sync is idle again.
    st = rc.sync(tree, dst)
    assert st["transfers"] == 0 and st["deletes"] == 0, st
