"""Real S3 clients against `nebula server`: the aws cli (s3 and s3api),
s3cmd with SigV4 and with SigV2, and boto3's transfer manager, including a
64 MiB object through multipart uploads."""
import hashlib
import json
import os

import pytest
from boto3.s3.transfer import TransferConfig

from test_s3_helpers import S3Server

BIG = 64 << 20


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = S3Server(str(tmp_path_factory.mktemp("s3cli") / "data"))
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    p = tmp_path_factory.mktemp("big") / "big.bin"
    block = os.urandom(1 << 20)
    with open(p, "wb") as f:
        for i in range(BIG >> 20):
            f.write(bytes([i]) + block[1:])
    return p


def md5_file(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_aws_cli(srv, big, tmp_path):
    srv.aws("s3", "mb", "s3://awscli")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    for i in range(5):
        (tree / ("f%d.txt" % i)).write_bytes(b"file %d\n" % i * (i + 1))
    (tree / "sub" / "deep.bin").write_bytes(os.urandom(300000))
    srv.aws("s3", "sync", "--no-progress", str(tree), "s3://awscli/tree")
    out = srv.aws("s3", "ls", "--recursive", "s3://awscli/").stdout
    assert "tree/sub/deep.bin" in out and "tree/f4.txt" in out
    # A second sync transfers nothing.
    assert srv.aws("s3", "sync", "--no-progress", str(tree), "s3://awscli/tree").stdout == ""
    # 64 MiB: multipart upload (8 MiB parts), ranged parallel download.
    srv.aws("s3", "cp", "--no-progress", str(big), "s3://awscli/big/obj.bin")
    head = json.loads(srv.aws("s3api", "head-object", "--bucket", "awscli", "--key",
                              "big/obj.bin").stdout)
    assert head["ContentLength"] == BIG
    assert head["ETag"].endswith('-8"')
    # Server-side copy of a large object: multipart with UploadPartCopy.
    srv.aws("s3", "cp", "--no-progress", "s3://awscli/big/obj.bin", "s3://awscli/big/copy.bin")
    head = json.loads(srv.aws("s3api", "head-object", "--bucket", "awscli", "--key",
                              "big/copy.bin").stdout)
    assert head["ContentLength"] == BIG and head["ETag"].endswith('-8"')
    back = tmp_path / "back.bin"
    srv.aws("s3", "cp", "--no-progress", "s3://awscli/big/copy.bin", str(back))
    assert md5_file(back) == md5_file(big)
    r = srv.aws("s3api", "get-object", "--bucket", "awscli", "--key", "nope", str(tmp_path / "x"),
                check=False)
    assert r.returncode != 0 and "NoSuchKey" in r.stderr
    r = srv.aws("s3", "rb", "s3://awscli", check=False)
    assert r.returncode != 0 and "BucketNotEmpty" in r.stderr
    srv.aws("s3", "rm", "--recursive", "s3://awscli/")
    srv.aws("s3", "rb", "s3://awscli")
    r = srv.aws("s3api", "head-bucket", "--bucket", "awscli", check=False)
    assert r.returncode != 0 and "404" in r.stderr


def test_boto3_transfer_manager(srv, big, tmp_path):
    s3 = srv.client()
    s3.create_bucket(Bucket="transfer")
    cfg = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20,
                         max_concurrency=4)
    s3.upload_file(str(big), "transfer", "a/big.bin", Config=cfg)
    h = s3.head_object(Bucket="transfer", Key="a/big.bin")
    assert h["ContentLength"] == BIG and h["ETag"].endswith('-8"')
    out = tmp_path / "down.bin"
    s3.download_file("transfer", "a/big.bin", str(out), Config=cfg)
    assert md5_file(out) == md5_file(big)
    r = s3.get_object(Bucket="transfer", Key="a/big.bin", Range="bytes=%d-%d" % (BIG - 10, BIG))
    with open(big, "rb") as f:
        f.seek(BIG - 10)
        assert r["Body"].read() == f.read()


@pytest.mark.parametrize("v2", [False, True], ids=["sigv4", "sigv2"])
def test_s3cmd(srv, tmp_path, v2):
    conf = srv.s3cmd_config(str(tmp_path / "s3cfg"), v2=v2)
    b = "s3cmd-v2" if v2 else "s3cmd-v4"
    srv.s3cmd(conf, "mb", "s3://" + b)
    assert "s3://" + b in srv.s3cmd(conf, "ls").stdout
    src = tmp_path / "small.txt"
    src.write_bytes(b"s3cmd small object\n")
    srv.s3cmd(conf, "put", str(src), "s3://%s/dir/small.txt" % b)
    odd = tmp_path / "odd.txt"
    odd.write_bytes(b"odd name")
    srv.s3cmd(conf, "put", str(odd), "s3://%s/we ird+name=1&x.txt" % b)
    # 12 MiB with 5 MiB parts: multipart through s3cmd.
    mid = tmp_path / "mid.bin"
    mid.write_bytes(os.urandom(12 << 20))
    srv.s3cmd(conf, "put", str(mid), "s3://%s/mid.bin" % b)
    ls = srv.s3cmd(conf, "ls", "--recursive", "s3://%s" % b).stdout
    assert "dir/small.txt" in ls and "we ird+name=1&x.txt" in ls and "mid.bin" in ls
    out = tmp_path / "out"
    out.mkdir()
    srv.s3cmd(conf, "get", "s3://%s/dir/small.txt" % b, str(out / "s"))
    assert (out / "s").read_bytes() == src.read_bytes()
    srv.s3cmd(conf, "get", "s3://%s/we ird+name=1&x.txt" % b, str(out / "o"))
    assert (out / "o").read_bytes() == b"odd name"
    srv.s3cmd(conf, "get", "s3://%s/mid.bin" % b, str(out / "m"))
    assert md5_file(out / "m") == md5_file(mid)
    info = srv.s3cmd(conf, "info", "s3://%s/dir/small.txt" % b).stdout
    assert hashlib.md5(src.read_bytes()).hexdigest() in info
    r = srv.s3cmd(conf, "get", "s3://%s/missing" % b, str(out / "x"), check=False)
    assert r.returncode != 0 and "does not exist" in (r.stderr + r.stdout)
    srv.s3cmd(conf, "del", "--recursive", "--force", "s3://%s" % b)
    srv.s3cmd(conf, "rb", "s3://" + b)
    assert "s3://" + b not in srv.s3cmd(conf, "ls").stdout
    # A wrong secret is refused.
    with open(conf) as f:
        text = f.read()
    sk = srv.secret_key
    wrong = ("y" if sk[0] == "x" else "x") + sk[1:]  # differs even when sk starts with "x"
    with open(conf, "w") as f:
        f.write(text.replace(sk, wrong))
    r = srv.s3cmd(conf, "ls", check=False)
    assert r.returncode != 0 and "SignatureDoesNotMatch" in (r.stderr + r.stdout)
