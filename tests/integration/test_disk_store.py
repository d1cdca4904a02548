"""The disk engine as the server's block store: the default for a new data
directory, a small footprint that grows, the --disk-size bound (puts past
it fail, the server keeps serving what it holds; recorded in the store),
a data file added with `nebula disk add-file`, and an existing `dir`
store keeping its kind. Real server, real S3 client, `nebula disk`."""
import os

import pytest
from botocore.exceptions import ClientError

from nebula_proc import run
from test_s3_helpers import S3Server


def disk_stats(data):
    r = run("disk", "stats", os.path.join(data, "disk"))
    assert r.returncode == 0, r.stderr
    pairs = (line.split(None, 1) for line in r.stdout.splitlines())
    return {k: v if k.startswith("file.") else int(float(v)) for k, v in pairs}


def test_default_store_grows_and_is_bounded(tmp_path):
    data = str(tmp_path / "d")
    srv = S3Server(data, "--disk-size", "48M")
    try:
        # A new directory gets the disk engine, with a small data file.
        assert os.path.isdir(os.path.join(data, "disk"))
        assert not os.path.exists(os.path.join(data, "blocks"))
        size0 = os.path.getsize(os.path.join(data, "disk", "data.0"))
        assert size0 <= 16 << 20
        c = srv.client()
        c.create_bucket(Bucket="bkt")
        body = os.urandom(4 << 20)
        stored, err = [], None
        for i in range(20):  # 80 MiB asked, 48 MiB allowed
            try:
                c.put_object(Bucket="bkt", Key="k%d" % i, Body=body)
                stored.append(i)
            except ClientError as e:
                err = e
                break
        assert err is not None, "puts past --disk-size succeeded"
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 507
        assert err.response["Error"]["Code"] == "InsufficientStorage"
        assert 6 <= len(stored) <= 11, stored
        size1 = os.path.getsize(os.path.join(data, "disk", "data.0"))
        assert size0 < size1 <= 48 << 20
        # Still serving what it holds.
        for i in stored:
            assert c.get_object(Bucket="bkt", Key="k%d" % i)["Body"].read() == body
    finally:
        assert srv.server.stop() == 0
    st = disk_stats(data)
    # The tool knows no --disk-size: it reads the bound recorded in the store.
    assert st["region"] == size1 - 4096 and st["capacity"] == (48 << 20) - 4096
    assert st["files"] == 1 and st["file.0.path"].endswith("/disk/data.0")
    assert int(st["file.0.size"]) == size1
    assert st["bytes_live"] >= len(stored) * (4 << 20)
    assert run("disk", "check", os.path.join(data, "disk")).returncode == 0

    # Restarted with a larger bound, it grows again; the objects are there.
    srv = S3Server(data, "--disk-size", "64M")
    try:
        c = srv.client()
        assert c.get_object(Bucket="bkt", Key="k0")["Body"].read() == body
        c.put_object(Bucket="bkt", Key="more", Body=body)
    finally:
        assert srv.server.stop() == 0
    assert os.path.getsize(os.path.join(data, "disk", "data.0")) > size1
    # The grown bound is recorded; a smaller one cannot be asked for.
    assert disk_stats(data)["capacity"] == (64 << 20) - 4096
    r = run("server", "--data", data, "--port", "0", "--disk-size", "32M")
    assert r.returncode != 0

    # A second data file, added offline (after a server raised the bound,
    # so there is room for it), is used by the next server.
    srv = S3Server(data, "--disk-size", "96M")
    assert srv.server.stop() == 0
    ddir = os.path.join(data, "disk")
    r = run("disk", "add-file", ddir, "data.1")
    assert r.returncode == 0, r.stderr
    assert run("disk", "add-file", ddir, "data.1").returncode == 2  # listed already
    srv = S3Server(data)
    try:
        c = srv.client()
        for i in range(3):
            c.put_object(Bucket="bkt", Key="after%d" % i, Body=body)
        assert c.get_object(Bucket="bkt", Key="k0")["Body"].read() == body
    finally:
        assert srv.server.stop() == 0
    st = disk_stats(data)
    assert st["files"] == 2 and st["file.1.path"].endswith("/disk/data.1")
    assert int(st["file.1.allocated"]) > 0
    assert run("disk", "check", ddir).returncode == 0


@pytest.mark.parametrize("kind", ["dir", "disk"])
def test_directory_keeps_its_block_store(tmp_path, kind):
    data = str(tmp_path / "d")
    srv = S3Server(data, "--block-store", kind)
    try:
        c = srv.client()
        c.create_bucket(Bucket="bkt")
        c.put_object(Bucket="bkt", Key="k", Body=b"hello")
    finally:
        assert srv.server.stop() == 0
    other = "disk" if kind == "dir" else "dir"
    assert os.path.isdir(os.path.join(data, "disk" if kind == "disk" else "blocks"))
    # Asking for the other kind (or the default) does not hide the data.
    for extra in (["--block-store", other], []):
        srv = S3Server(data, *extra)
        try:
            assert srv.client().get_object(Bucket="bkt", Key="k")["Body"].read() == b"hello"
        finally:
            assert srv.server.stop() == 0
    assert not os.path.exists(os.path.join(data, "blocks" if kind == "disk" else "disk"))


def test_bad_block_store_option(tmp_path):
    r = run("server", "--data", str(tmp_path / "d"), "--block-store", "tape")
    assert r.returncode == 2
    assert "--block-store" in r.stderr and "tape" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run("server", "--help")
    assert "--disk-size" in r.stdout and "--block-store" in r.stdout


def test_several_data_files(tmp_path):
    data = str(tmp_path / "d")
    elsewhere = tmp_path / "other-disk"
    elsewhere.mkdir()
    third = str(elsewhere / "nebula.dat")
    srv = S3Server(data, "--disk-files", "data.0,data.1,%s" % third)
    bodies = {}
    try:
        c = srv.client()
        c.create_bucket(Bucket="bkt")
        for i in range(12):
            bodies["k%d" % i] = os.urandom(100000 + i)
            c.put_object(Bucket="bkt", Key="k%d" % i, Body=bodies["k%d" % i])
    finally:
        assert srv.server.stop() == 0
    st = disk_stats(data)
    assert st["files"] == 3
    assert st["file.2.path"] == third and os.path.getsize(third) > 0
    for i in range(3):  # blobs spread over every file
        assert int(st["file.%d.allocated" % i]) > 0, st
    r = run("disk", "check", os.path.join(data, "disk"))
    assert r.returncode == 0 and third in r.stdout, r.stdout
    # The recorded list is used without the option; another one is refused.
    srv = S3Server(data)
    try:
        c = srv.client()
        for k, body in bodies.items():
            assert c.get_object(Bucket="bkt", Key=k)["Body"].read() == body
    finally:
        assert srv.server.stop() == 0
    r = run("server", "--data", data, "--listen", "127.0.0.1:0", "--disk-files", "data.0")
    assert r.returncode != 0 and "cannot open the namespace" in r.stderr
