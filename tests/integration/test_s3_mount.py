"""One namespace: with `nebula server --mount DIR`, an object PUT through
S3 is a file under the mount with the same bytes at once, and a file
written under the mount is an object GET returns (Content-Length, ETag =
MD5 of its bytes, docs/s3.md "ETags")."""
import calendar
import hashlib
import os
import subprocess
import time

import pytest

from test_s3_helpers import mounted_s3_server


@pytest.fixture(scope="module")
def m(tmp_path_factory):
    with mounted_s3_server(tmp_path_factory.mktemp("s3mount")) as s:
        yield s


def test_s3_put_is_a_file_at_once(m):
    s3 = m.client()
    s3.create_bucket(Bucket="shared")
    assert os.path.isdir(m.mnt / "shared")
    s3.put_object(Bucket="shared", Key="dir/a.txt", Body=b"version one")
    p = m.mnt / "shared" / "dir" / "a.txt"
    assert p.read_bytes() == b"version one"
    # Overwrite: the mount shows the new bytes right after the PUT (the
    # kernel's cached attributes and pages were dropped).
    s3.put_object(Bucket="shared", Key="dir/a.txt", Body=b"version two, longer")
    assert p.read_bytes() == b"version two, longer"
    assert os.stat(p).st_size == len(b"version two, longer")
    s3.put_object(Bucket="shared", Key="dir/a.txt", Body=b"3")
    with open(p, "rb") as f:
        assert f.read() == b"3"
    # Multipart and copy land as files too; an upload in progress is
    # invisible in the namespace until Complete.
    before = sorted(os.listdir(m.mnt))
    uid = s3.create_multipart_upload(Bucket="shared", Key="mp.bin")["UploadId"]
    p1, p2 = os.urandom(5 << 20), b"end"
    e1 = s3.upload_part(Bucket="shared", Key="mp.bin", UploadId=uid, PartNumber=1, Body=p1)
    e2 = s3.upload_part(Bucket="shared", Key="mp.bin", UploadId=uid, PartNumber=2, Body=p2)
    assert not (m.mnt / "shared" / "mp.bin").exists()
    assert sorted(os.listdir(m.mnt)) == before
    s3.complete_multipart_upload(
        Bucket="shared", Key="mp.bin", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1["ETag"]},
                                   {"PartNumber": 2, "ETag": e2["ETag"]}]})
    assert (m.mnt / "shared" / "mp.bin").read_bytes() == p1 + p2
    assert sorted(os.listdir(m.mnt)) == before
    s3.delete_object(Bucket="shared", Key="mp.bin")
    s3.copy_object(Bucket="shared", Key="copy.txt", CopySource="shared/dir/a.txt")
    assert (m.mnt / "shared" / "copy.txt").read_bytes() == b"3"
    # Delete: gone from the mount, implicit directories with it.
    s3.delete_object(Bucket="shared", Key="dir/a.txt")
    assert not p.exists()
    assert not (m.mnt / "shared" / "dir").exists()
    s3.delete_object(Bucket="shared", Key="copy.txt")
    s3.delete_bucket(Bucket="shared")
    assert not (m.mnt / "shared").exists()


def test_file_written_under_mount_is_an_object(m):
    s3 = m.client()
    os.mkdir(m.mnt / "posix")
    d = m.mnt / "posix" / "x" / "y"
    os.makedirs(d)
    data = os.urandom(3 << 20) + b"tail"
    with open(d / "f.bin", "wb") as f:
        f.write(data)
    (m.mnt / "posix" / "small").write_bytes(b"small file")
    # A top-level directory made under the mount is a bucket.
    assert "posix" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    g = s3.get_object(Bucket="posix", Key="x/y/f.bin")
    assert g["ContentLength"] == len(data)
    assert g["Body"].read() == data
    assert g["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    r = s3.list_objects_v2(Bucket="posix")
    assert [(o["Key"], o["Size"], o["ETag"]) for o in r["Contents"]] == [
        ("small", 10, '"%s"' % hashlib.md5(b"small file").hexdigest()),
        ("x/y/f.bin", len(data), '"%s"' % hashlib.md5(data).hexdigest())]
    # Rewritten through the mount after an S3 PUT: the ETag follows the bytes.
    s3.put_object(Bucket="posix", Key="small", Body=b"from s3")
    assert s3.head_object(Bucket="posix", Key="small")["ETag"] == \
        '"%s"' % hashlib.md5(b"from s3").hexdigest()
    with open(m.mnt / "posix" / "small", "r+b") as f:
        f.write(b"FROM")
    h = s3.head_object(Bucket="posix", Key="small")
    assert h["ETag"] == '"%s"' % hashlib.md5(b"FROM s3").hexdigest()
    assert s3.get_object(Bucket="posix", Key="small")["Body"].read() == b"FROM s3"
    # Ranges work on files from the mount too.
    g = s3.get_object(Bucket="posix", Key="x/y/f.bin", Range="bytes=-4")
    assert g["Body"].read() == b"tail"


@pytest.mark.parametrize("cache", ["--no-writeback-cache", "--writeback-cache"])
def test_close_publishes_small_writes_with_either_cache(tmp_path, cache):
    """close(2) makes a file's bytes an object at once, with or without the
    kernel's write-back cache (off by default: docs/fuse.md), also when
    they came in many small writes and a read-only descriptor of the same
    file was opened and closed meanwhile (its close publishes nothing and,
    without the write-back cache, is not even sent to the server)."""
    with mounted_s3_server(tmp_path, cache) as s:
        s3 = s.client()
        os.mkdir(s.mnt / "b")
        p = s.mnt / "b" / "f.bin"
        data = os.urandom(400 * 4000)
        with open(p, "wb") as f:
            for i in range(0, len(data), 4000):
                f.write(data[i:i + 4000])
                f.flush()
                if i == 200 * 4000:
                    with open(p, "rb") as r:
                        assert r.read() == data[:i + 4000]
        g = s3.get_object(Bucket="b", Key="f.bin")
        assert g["ContentLength"] == len(data)
        assert g["Body"].read() == data
        assert g["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
        # An overwrite in the middle through a second open, then S3 again.
        with open(p, "r+b") as f:
            f.seek(1000)
            f.write(b"Z" * 10)
        want = data[:1000] + b"Z" * 10 + data[1010:]
        assert s3.get_object(Bucket="b", Key="f.bin")["Body"].read() == want
        os.unlink(p)
        os.rmdir(s.mnt / "b")


def test_last_modified_is_the_files_mtime(m):
    """A file closed under the mount: HEAD, GET and the listing give its
    mtime as Last-Modified (whole seconds, S3's resolution), and a new
    mtime set under the mount (touch -d) or by a write shows at once."""
    s3 = m.client()
    os.mkdir(m.mnt / "times")
    p = m.mnt / "times" / "f.txt"
    data = b"written under the mount"
    with open(p, "wb") as f:
        f.write(data)

    def s3_times():
        h = s3.head_object(Bucket="times", Key="f.txt")
        assert h["ContentLength"] == len(data)
        assert h["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
        g = s3.get_object(Bucket="times", Key="f.txt")
        assert g["Body"].read() == data
        (o,) = s3.list_objects_v2(Bucket="times")["Contents"]
        return [int(x.timestamp()) for x in (h["LastModified"], g["LastModified"],
                                             o["LastModified"])]

    assert s3_times() == [int(os.stat(p).st_mtime)] * 3
    subprocess.run(["touch", "-d", "2001-02-03 04:05:06.75 UTC", str(p)], check=True)
    want = calendar.timegm((2001, 2, 3, 4, 5, 6))
    assert int(os.stat(p).st_mtime) == want
    assert s3_times() == [want] * 3
    # A write under the mount moves it to now; the bytes stay the same
    # length so the ETag check above still holds with the new bytes.
    data = b"WRITTEN under the mount"
    before = int(time.time())
    with open(p, "r+b") as f:
        f.write(b"WRITTEN")
    mtime = int(os.stat(p).st_mtime)
    assert before <= mtime <= int(time.time())
    assert s3_times() == [mtime] * 3
    os.unlink(p)
    os.rmdir(m.mnt / "times")
