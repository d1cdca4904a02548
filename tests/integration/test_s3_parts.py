"""GET/HEAD ?partNumber= of multipart objects whose record predates part
sizes (object record field 14). Such records are made for real: objects
are completed through boto3, the data directory is dumped with `nebula
dump`, field 14 is cut out of their object records, and the dump is
loaded next to the same blocks (docs/s3.md "partNumber")."""
import hashlib
import json
import os
import shutil
import subprocess

import pytest
from botocore.exceptions import ClientError

from nebula_proc import NEBULA, run
from test_s3_helpers import S3Server, error_code

MIB = 1 << 20


def varint(b, i):
    v = shift = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return v, i


def fields(rec):
    """An object record's (tag, bytes) fields (docs/metadata-format.md)."""
    assert rec[0] == 1
    out, i = [], 1
    while i < len(rec):
        tag = rec[i]
        n, i = varint(rec, i + 1)
        out.append((tag, rec[i:i + n]))
        i += n
    return out


def encode(fs):
    out = bytearray([1])
    for tag, val in fs:
        out.append(tag)
        n = len(val)
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                break
        out += val
    return bytes(out)


def legacy(rec_hex, parts=None):
    """The record as written before part sizes: field 14 gone (and, with
    parts, a part count the chunk maps do not bear out)."""
    fs = [(t, v) for t, v in fields(bytes.fromhex(rec_hex)) if t != 14]
    assert any(t == 13 for t, _ in fs)
    if parts is not None:
        fs = [(t, parts.to_bytes(4, "little") if t == 13 else v) for t, v in fs]
    return encode(fs).hex()


def test_part_number_of_objects_without_part_sizes(tmp_path):
    data = str(tmp_path / "data")
    srv = S3Server(data)
    p1, p2, p3 = os.urandom(5 * MIB), os.urandom(5 * MIB + 7), os.urandom(MIB // 2)
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="parts")
        for key in ("mp", "odd"):
            up = s3.create_multipart_upload(Bucket="parts", Key=key)["UploadId"]
            tags = [s3.upload_part(Bucket="parts", Key=key, UploadId=up, PartNumber=i + 1,
                                   Body=b)["ETag"] for i, b in enumerate((p1, p2, p3))]
            s3.complete_multipart_upload(
                Bucket="parts", Key=key, UploadId=up,
                MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e}
                                           for i, e in enumerate(tags)]})
    finally:
        assert srv.stop() == 0
    r = run("dump", data, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    for n in doc["nodes"]:
        if n["name"] == "mp":
            n["objrec"] = legacy(n["objrec"])
        elif n["name"] == "odd":  # 3 parts in the maps, 2 in the record
            n["objrec"] = legacy(n["objrec"], parts=2)
    copy = tmp_path / "copy"
    shutil.copytree(data, copy, symlinks=True)
    shutil.rmtree(copy / "meta")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEBULA_")}
    lr = subprocess.run([NEBULA, "load", str(copy)], input=json.dumps(doc), capture_output=True,
                        text=True, timeout=60, env=env)
    assert lr.returncode == 0, lr.stderr

    s2 = S3Server(str(copy))
    try:
        s3 = s2.client()
        whole = p1 + p2 + p3
        # The boundaries come from the chunk maps: each part is a slice.
        for n, body in ((1, p1), (2, p2), (3, p3)):
            g = s3.get_object(Bucket="parts", Key="mp", PartNumber=n)
            assert g["PartsCount"] == 3 and g["ContentLength"] == len(body)
            assert hashlib.md5(g["Body"].read()).digest() == hashlib.md5(body).digest()
            start = sum(map(len, (p1, p2, p3)[:n - 1]))
            assert g["ContentRange"] == "bytes %d-%d/%d" % (start, start + len(body) - 1,
                                                            len(whole))
        h = s3.head_object(Bucket="parts", Key="mp", PartNumber=2)
        assert h["PartsCount"] == 3 and h["ContentLength"] == len(p2)
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket="parts", Key="mp", PartNumber=4)
        assert error_code(e) == ("InvalidPartNumber", 416)
        # When the maps do not tell, the object answers as one part.
        g = s3.get_object(Bucket="parts", Key="odd", PartNumber=1)
        assert "PartsCount" not in g and g["ContentLength"] == len(whole)
        assert g["Body"].read() == whole
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket="parts", Key="odd", PartNumber=2)
        assert error_code(e)[1] == 416
        # The aws cli's view of the parts count.
        r = s2.aws("s3api", "head-object", "--bucket", "parts", "--key", "mp",
                   "--part-number", "3")
        assert json.loads(r.stdout)["PartsCount"] == 3
    finally:
        assert s2.stop() == 0
