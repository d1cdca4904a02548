"""GET bodies on every path the gateway sends them by (src/s3/gw_get.c):
small objects read into memory, one block piece by sendfile, several
pieces (blocks, multipart slices, chunks) mapped, with ranges across
every kind of edge; and a corrupted block answers InternalError instead
of wrong bytes."""
import glob
import os
import random
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from test_s3_helpers import S3Server, error_code

MIB = 1 << 20


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("s3get") / "data"
    s = S3Server(str(d))
    s.data_dir = str(d)
    yield s
    assert s.stop() == 0


def check_ranges(s3, key, body, ranges):
    for a, b in ranges:
        b = min(b, len(body) - 1)
        g = s3.get_object(Bucket="get", Key=key, Range="bytes=%d-%d" % (a, b))
        assert g["ContentLength"] == b - a + 1, (key, a, b)
        assert g["Body"].read() == body[a:b + 1], (key, a, b)


def test_get_paths(srv):
    s3 = srv.client()
    s3.create_bucket(Bucket="get")
    rnd = random.Random(7)
    # Around the small-body limit (64 KiB), one block (4 MiB), two blocks,
    # and past the first 64 MiB chunk.
    sizes = [1, 4096, 65535, 65536, 65537, MIB, 4 * MIB - 1, 4 * MIB, 4 * MIB + 1,
             9 * MIB + 3, 64 * MIB + 5 * MIB + 7]
    for n in sizes:
        body = rnd.randbytes(n)
        key = "o%d" % n
        s3.put_object(Bucket="get", Key=key, Body=body)
        assert s3.get_object(Bucket="get", Key=key)["Body"].read() == body, n
        edges = [0, 1, 65535, 65536, 4 * MIB - 1, 4 * MIB, 8 * MIB, 64 * MIB - 1, 64 * MIB]
        ranges = [(e, e + d) for e in edges if e < n for d in (0, 1, 70000, 5 * MIB)]
        ranges += [(rnd.randrange(n), rnd.randrange(n)) for _ in range(5)]
        check_ranges(s3, key, body, [(min(a, b), max(a, b)) for a, b in ranges])


def test_get_multipart_slices(srv):
    """A completed multipart object is the parts' slices end to end: a GET
    crosses slices (and their block edges) in one answer."""
    s3 = srv.client()
    rnd = random.Random(8)
    parts = [rnd.randbytes(5 * MIB + 11), rnd.randbytes(5 * MIB), rnd.randbytes(123457)]
    up = s3.create_multipart_upload(Bucket="get", Key="mp")["UploadId"]
    done = []
    for i, p in enumerate(parts, 1):
        e = s3.upload_part(Bucket="get", Key="mp", UploadId=up, PartNumber=i, Body=p)["ETag"]
        done.append({"PartNumber": i, "ETag": e})
    s3.complete_multipart_upload(Bucket="get", Key="mp", UploadId=up,
                                 MultipartUpload={"Parts": done})
    body = b"".join(parts)
    assert s3.get_object(Bucket="get", Key="mp")["Body"].read() == body
    b1 = len(parts[0])
    check_ranges(s3, "mp", body, [(b1 - 10, b1 + 10), (4 * MIB - 3, b1 + 4 * MIB + 3),
                                  (b1 - 70000, b1 + 70000), (0, len(body))])


def block_files(data_dir):
    """The dir block store's block files (blocks/.../<slice>.<block>)."""
    return {p for p in glob.glob(os.path.join(data_dir, "**", "*.*"), recursive=True)
            if os.path.isfile(p) and os.path.getsize(p) > MIB}


def test_get_corrupt_block(srv):
    s3 = srv.client()
    body = random.Random(9).randbytes(3 * MIB)
    s3.put_object(Bucket="get", Key="bad", Body=body)
    before = block_files(srv.data_dir)
    s3.put_object(Bucket="get", Key="bad2", Body=body)
    new = block_files(srv.data_dir) - before
    if len(new) != 1:
        pytest.skip("not the dir block store (a file per block)")
    (path,) = new
    with open(path, "r+b") as f:  # one payload byte in the middle
        f.seek(os.path.getsize(path) - MIB)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="get", Key="bad2")["Body"].read()
    assert error_code(e) == ("InternalError", 500)
    # A range that does not touch the bad 64 KiB segment still reads.
    g = s3.get_object(Bucket="get", Key="bad2", Range="bytes=0-99999")
    assert g["Body"].read() == body[:100000]
    # The other object is intact, and the server still serves.
    assert s3.get_object(Bucket="get", Key="bad")["Body"].read() == body


def test_get_verifies_again_after_eviction(srv):
    """A range verified by an earlier GET is trusted only while its pages
    stay in the page cache: once they are dropped, bytes come from the
    device again and are verified again."""
    s3 = srv.client()
    body = random.Random(10).randbytes(2 * MIB)
    before = block_files(srv.data_dir)
    s3.put_object(Bucket="get", Key="evict", Body=body)
    new = block_files(srv.data_dir) - before
    if len(new) != 1:
        pytest.skip("not the dir block store (a file per block)")
    (path,) = new
    assert s3.get_object(Bucket="get", Key="evict")["Body"].read() == body
    fd = os.open(path, os.O_RDWR)
    try:
        off = os.path.getsize(path) - MIB
        b = os.pread(fd, 1, off)
        os.pwrite(fd, bytes([b[0] ^ 1]), off)
        # Dropping pages is best effort (pages still in a per-CPU batch
        # stay): ask until fincore shows none left.
        for _ in range(50):
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            res = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", path],
                                 capture_output=True, text=True, check=True).stdout.strip()
            if res == "0":
                break
            time.sleep(0.1)
        else:
            pytest.skip("the page cache kept the block's pages")
    finally:
        os.close(fd)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="get", Key="evict")["Body"].read()
    assert error_code(e) == ("InternalError", 500)
