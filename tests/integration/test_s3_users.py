"""Users, bucket owners, ACLs and partNumber GETs against a real `nebula
server`: two users made with `nebula admin user` (a real process, online
through the admin API and offline on the data directory), driven with
boto3, /usr/bin/aws and anonymous (unsigned) requests."""
import json
import os
import re
import subprocess

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from nebula_proc import NEBULA, run
from test_s3_helpers import AWS, REGION, S3Server, fails
from test_s3_helpers import key_client as client


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("s3users") / "data")
    s = S3Server(d)
    s.data_dir = d
    yield s
    if s.server.proc.poll() is None:
        assert s.stop() == 0


def admin(srv, *args, root=True, env=None):
    """`nebula admin user ...` against the running server, signed as root
    with NEBULA_ACCESS_KEY/NEBULA_SECRET_KEY."""
    e = {"NEBULA_ACCESS_KEY": srv.access_key, "NEBULA_SECRET_KEY": srv.secret_key} if root else {}
    e.update(env or {})
    return run("admin", "user", *args, "--endpoint", srv.endpoint, env=e)


def added(r):
    assert r.returncode == 0, (r.stdout, r.stderr)
    ak = re.search(r"^access_key = (\S+)$", r.stdout, re.M).group(1)
    sk = re.search(r"^secret_key = (\S+)$", r.stdout, re.M).group(1)
    assert len(ak) == 20 and len(sk) == 40
    return ak, sk


def aws(srv, ak, sk, *args):
    env = dict(os.environ, AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="")
    if ak:
        env.update(AWS_ACCESS_KEY_ID=ak, AWS_SECRET_ACCESS_KEY=sk)
    else:
        args = ("--no-sign-request",) + args
    return subprocess.run([AWS, "--endpoint-url", srv.endpoint, *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def users(srv):
    alice = added(admin(srv, "add", "--name", "alice"))
    # Root keys from the data directory's root-credentials file this time.
    bob = added(run("admin", "user", "add", "--name", "bob", "--endpoint", srv.endpoint,
                    "--data", srv.data_dir))
    return {"alice": alice, "bob": bob}


def test_admin_cli(srv, users):
    root = client(srv, srv.access_key, srv.secret_key)
    r = admin(srv, "list")
    assert r.returncode == 0, r.stderr
    lines = sorted(r.stdout.splitlines())
    want = sorted([users["alice"][0], users["bob"][0]])
    assert [ln.split()[0] for ln in lines] == want
    assert {ln.split()[-1] for ln in lines} == {"alice", "bob"}
    for ak, sk in users.values():
        assert sk not in r.stdout  # secrets are shown once, at add
    # A wrong root secret, a user's keys, no keys at all.
    r = admin(srv, "list", root=False,
              env={"NEBULA_ACCESS_KEY": srv.access_key, "NEBULA_SECRET_KEY": "wrong" * 8})
    assert r.returncode == 1 and "403 SignatureDoesNotMatch" in r.stderr, r.stderr
    r = admin(srv, "add", root=False, env={"NEBULA_ACCESS_KEY": users["alice"][0],
                                           "NEBULA_SECRET_KEY": users["alice"][1]})
    assert r.returncode == 1 and "403 AccessDenied" in r.stderr, r.stderr
    r = run("admin", "user", "list", "--endpoint", srv.endpoint, "--data", "/nonexistent")
    assert r.returncode == 2 and "root-credentials" in r.stderr
    # Offline on the data directory is refused while the server holds it.
    r = run("admin", "user", "list", "--data", srv.data_dir)
    assert r.returncode == 1 and "in use by a running nebula server" in r.stderr, r.stderr
    r = admin(srv, "remove", "NOSUCHKEY0000000000")
    assert r.returncode == 1 and "404 NoSuchEntity" in r.stderr, r.stderr
    r = admin(srv, "frobnicate")
    assert r.returncode == 2
    # Unsigned admin requests are refused.
    import urllib.error
    import urllib.request
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(srv.endpoint + "/_nebula/admin/users")
    assert ei.value.code == 403 and b"<Code>AccessDenied</Code>" in ei.value.read()
    assert root.list_buckets()["Owner"]["DisplayName"] == "root"


def test_owners_and_isolation(srv, users):
    (aak, ask), (bak, bsk) = users["alice"], users["bob"]
    root = client(srv, srv.access_key, srv.secret_key)
    alice, bob = client(srv, aak, ask), client(srv, bak, bsk)
    alice.create_bucket(Bucket="alice-data")
    alice.put_object(Bucket="alice-data", Key="dir/a.txt", Body=b"alice's")
    bob.create_bucket(Bucket="bob-data")
    bob.put_object(Bucket="bob-data", Key="b.txt", Body=b"bob's")
    root.create_bucket(Bucket="root-data")
    # ListBuckets: each user sees their own; root (the administrator) all.
    r = alice.list_buckets()
    assert [b["Name"] for b in r["Buckets"]] == ["alice-data"]
    assert r["Owner"] == {"ID": aak, "DisplayName": "alice"}
    assert [b["Name"] for b in bob.list_buckets()["Buckets"]] == ["bob-data"]
    names = [b["Name"] for b in root.list_buckets()["Buckets"]]
    assert {"alice-data", "bob-data", "root-data"} <= set(names)
    # Another's bucket: AccessDenied for every operation.
    for fn, kw in [(bob.list_objects_v2, {}), (bob.list_objects, {}),
                   (bob.get_object, {"Key": "dir/a.txt"}),
                   (bob.put_object, {"Key": "x", "Body": b"x"}),
                   (bob.delete_object, {"Key": "dir/a.txt"}),
                   (bob.delete_bucket, {}), (bob.get_bucket_acl, {}),
                   (bob.put_bucket_acl, {"ACL": "public-read"}),
                   (bob.get_bucket_location, {}),
                   (bob.create_multipart_upload, {"Key": "m"}),
                   (bob.put_bucket_tagging, {"Tagging": {"TagSet": [{"Key": "k", "Value": "v"}]}})]:
        fails("AccessDenied", 403, fn, Bucket="alice-data", **kw)
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        bob.head_bucket(Bucket="alice-data")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    fails("AccessDenied", 403, bob.get_object, Bucket="root-data", Key="k")
    # Copying out of another's bucket into one's own is reading it.
    fails("AccessDenied", 403, bob.copy_object, Bucket="bob-data", Key="stolen",
          CopySource={"Bucket": "alice-data", "Key": "dir/a.txt"})
    fails("NoSuchKey", 404, bob.get_object, Bucket="bob-data", Key="stolen")
    # A bucket that does not exist is NoSuchBucket for anyone.
    fails("NoSuchBucket", 404, bob.list_objects_v2, Bucket="nobody-has-this")
    # Names are one namespace: another's name is taken.
    fails("BucketAlreadyExists", 409, bob.create_bucket, Bucket="alice-data")
    fails("BucketAlreadyOwnedByYou", 409, alice.create_bucket, Bucket="alice-data")
    fails("BucketAlreadyExists", 409, root.create_bucket, Bucket="alice-data")
    # The real owner everywhere it is reported.
    acl = alice.get_bucket_acl(Bucket="alice-data")
    assert acl["Owner"] == {"ID": aak, "DisplayName": "alice"}
    assert [(g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]] == \
        [(aak, "FULL_CONTROL")]
    assert root.get_bucket_acl(Bucket="alice-data")["Owner"]["ID"] == aak
    o = alice.list_objects_v2(Bucket="alice-data", FetchOwner=True)["Contents"][0]
    assert o["Owner"] == {"ID": aak, "DisplayName": "alice"}
    assert alice.list_objects(Bucket="alice-data")["Contents"][0]["Owner"]["ID"] == aak
    assert root.get_bucket_acl(Bucket="root-data")["Owner"]["DisplayName"] == "root"
    # Root may act on every bucket.
    assert root.get_object(Bucket="alice-data", Key="dir/a.txt")["Body"].read() == b"alice's"
    root.put_object(Bucket="bob-data", Key="from-root", Body=b"r")
    assert bob.get_object(Bucket="bob-data", Key="from-root")["Body"].read() == b"r"
    # Presigned URLs and SigV2 carry the user's identity too.
    import requests
    url = alice.generate_presigned_url("get_object", Params={"Bucket": "alice-data",
                                                             "Key": "dir/a.txt"})
    g = requests.get(url, timeout=30)
    assert g.status_code == 200 and g.content == b"alice's"
    url = bob.generate_presigned_url("get_object", Params={"Bucket": "alice-data",
                                                           "Key": "dir/a.txt"})
    g = requests.get(url, timeout=30)
    assert g.status_code == 403 and b"<Code>AccessDenied</Code>" in g.content
    conf = Config(signature_version="s3", s3={"addressing_style": "path"},
                  retries={"max_attempts": 1})
    bob2 = boto3.client("s3", endpoint_url=srv.endpoint, region_name=REGION,
                        aws_access_key_id=bak, aws_secret_access_key=bsk, config=conf)
    assert [b["Name"] for b in bob2.list_buckets()["Buckets"]] == ["bob-data"]
    fails("AccessDenied", 403, bob2.get_object, Bucket="alice-data", Key="dir/a.txt")
    # The aws cli as the two users.
    r = aws(srv, aak, ask, "s3", "ls", "s3://alice-data/dir/")
    assert r.returncode == 0 and "a.txt" in r.stdout, r.stderr
    r = aws(srv, bak, bsk, "s3", "ls", "s3://alice-data/")
    assert r.returncode != 0 and "AccessDenied" in r.stderr
    r = aws(srv, bak, bsk, "s3api", "list-buckets", "--query", "Buckets[].Name", "--output",
            "text")
    assert r.returncode == 0 and r.stdout.split() == ["bob-data"], r.stdout
    # Object ACLs the gateway cannot keep are refused, not ignored
    # (test_s3_acl.py has the ones it keeps).
    fails("NotImplemented", 501, alice.create_multipart_upload, Bucket="alice-data", Key="o",
          ACL="authenticated-read")
    fails("NotImplemented", 501, root.put_object, Bucket="root-data", Key="o", Body=b"x",
          ACL="public-read-write")
    alice.put_object(Bucket="alice-data", Key="o1", Body=b"x", ACL="private")
    alice.put_object(Bucket="alice-data", Key="o2", Body=b"x", ACL="bucket-owner-full-control")
    # Multipart uploads report their initiator.
    uid = alice.create_multipart_upload(Bucket="alice-data", Key="mp")["UploadId"]
    up = alice.list_multipart_uploads(Bucket="alice-data")["Uploads"][0]
    assert up["Owner"]["ID"] == aak and up["Initiator"]["DisplayName"] == "alice"
    assert alice.list_parts(Bucket="alice-data", Key="mp", UploadId=uid)["Owner"]["ID"] == aak
    fails("AccessDenied", 403, bob.list_parts, Bucket="alice-data", Key="mp", UploadId=uid)
    fails("AccessDenied", 403, bob.abort_multipart_upload, Bucket="alice-data", Key="mp",
          UploadId=uid)
    alice.abort_multipart_upload(Bucket="alice-data", Key="mp", UploadId=uid)
    # Versioning is the owner's too, and versions are the bucket owner's.
    fails("AccessDenied", 403, bob.put_bucket_versioning, Bucket="alice-data",
          VersioningConfiguration={"Status": "Enabled"})
    alice.put_bucket_versioning(Bucket="alice-data", VersioningConfiguration={"Status": "Enabled"})
    alice.put_object(Bucket="alice-data", Key="v", Body=b"1")
    alice.put_object(Bucket="alice-data", Key="v", Body=b"2")
    vs = alice.list_object_versions(Bucket="alice-data", Prefix="v")["Versions"]
    assert len(vs) == 2 and {v["Owner"]["ID"] for v in vs} == {aak}
    fails("AccessDenied", 403, bob.list_object_versions, Bucket="alice-data")
    fails("AccessDenied", 403, bob.get_object, Bucket="alice-data", Key="v",
          VersionId=vs[1]["VersionId"])


def test_anonymous_and_acls(srv, users):
    (aak, ask), (bak, bsk) = users["alice"], users["bob"]
    alice, bob, anon = client(srv, aak, ask), client(srv, bak, bsk), client(srv)
    alice.create_bucket(Bucket="alice-pub")
    alice.put_object(Bucket="alice-pub", Key="p/obj", Body=b"public bytes")
    # Private: anonymous requests are refused.
    fails("AccessDenied", 403, anon.get_object, Bucket="alice-pub", Key="p/obj")
    fails("AccessDenied", 403, anon.list_objects_v2, Bucket="alice-pub")
    fails("AccessDenied", 403, anon.list_buckets)
    fails("NoSuchBucket", 404, anon.get_object, Bucket="nobody-has-this", Key="k")
    # Canned public-read.
    alice.put_bucket_acl(Bucket="alice-pub", ACL="public-read")
    grants = alice.get_bucket_acl(Bucket="alice-pub")["Grants"]
    assert [(g["Grantee"].get("ID") or g["Grantee"].get("URI"), g["Permission"])
            for g in grants] == \
        [(aak, "FULL_CONTROL"), ("http://acs.amazonaws.com/groups/global/AllUsers", "READ")]
    assert anon.get_object(Bucket="alice-pub", Key="p/obj")["Body"].read() == b"public bytes"
    assert anon.head_object(Bucket="alice-pub", Key="p/obj")["ContentLength"] == 12
    assert [o["Key"] for o in anon.list_objects_v2(Bucket="alice-pub")["Contents"]] == ["p/obj"]
    assert [o["Key"] for o in anon.list_objects(Bucket="alice-pub")["Contents"]] == ["p/obj"]
    r = aws(srv, None, None, "s3", "cp", "s3://alice-pub/p/obj", "-")
    assert r.returncode == 0 and r.stdout == "public bytes", r.stderr
    # ... and nothing else, for anonymous callers and other users alike.
    fails("AccessDenied", 403, anon.put_object, Bucket="alice-pub", Key="w", Body=b"x")
    fails("AccessDenied", 403, anon.delete_object, Bucket="alice-pub", Key="p/obj")
    fails("AccessDenied", 403, anon.get_bucket_acl, Bucket="alice-pub")
    fails("AccessDenied", 403, anon.put_bucket_acl, Bucket="alice-pub", ACL="private")
    fails("AccessDenied", 403, anon.get_bucket_tagging, Bucket="alice-pub")
    assert bob.get_object(Bucket="alice-pub", Key="p/obj")["Body"].read() == b"public bytes"
    fails("AccessDenied", 403, bob.put_object, Bucket="alice-pub", Key="w", Body=b"x")
    fails("AccessDenied", 403, bob.put_bucket_acl, Bucket="alice-pub", ACL="private")
    r = aws(srv, None, None, "s3", "cp", "-", "s3://alice-pub/w")
    assert r.returncode != 0 and "AccessDenied" in r.stderr
    # An AccessControlPolicy body with the same grants: private again, then public.
    owner = {"ID": aak, "DisplayName": "alice"}
    full = {"Grantee": {"Type": "CanonicalUser", "ID": aak}, "Permission": "FULL_CONTROL"}
    everyone = {"Grantee": {"Type": "Group",
                            "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                "Permission": "READ"}
    alice.put_bucket_acl(Bucket="alice-pub",
                         AccessControlPolicy={"Owner": owner, "Grants": [full]})
    fails("AccessDenied", 403, anon.get_object, Bucket="alice-pub", Key="p/obj")
    assert len(alice.get_bucket_acl(Bucket="alice-pub")["Grants"]) == 1
    alice.put_bucket_acl(Bucket="alice-pub",
                         AccessControlPolicy={"Owner": owner, "Grants": [full, everyone]})
    assert anon.get_object(Bucket="alice-pub", Key="p/obj")["Body"].read() == b"public bytes"
    # What the gateway cannot keep: NotImplemented; an owner change: AccessDenied.
    fails("NotImplemented", 501, alice.put_bucket_acl, Bucket="alice-pub",
          ACL="public-read-write")
    fails("NotImplemented", 501, alice.put_bucket_acl, Bucket="alice-pub",
          AccessControlPolicy={"Owner": owner, "Grants": [
              full, {"Grantee": {"Type": "CanonicalUser", "ID": bak}, "Permission": "READ"}]})
    fails("NotImplemented", 501, alice.put_bucket_acl, Bucket="alice-pub",
          GrantRead="id=" + bak)
    fails("AccessDenied", 403, alice.put_bucket_acl, Bucket="alice-pub",
          AccessControlPolicy={"Owner": {"ID": bak}, "Grants": [full]})
    assert anon.get_object(Bucket="alice-pub", Key="p/obj")["Body"].read() == b"public bytes"
    # The aws cli sets canned ACLs too; CreateBucket with x-amz-acl.
    r = aws(srv, aak, ask, "s3api", "put-bucket-acl", "--bucket", "alice-pub", "--acl",
            "private")
    assert r.returncode == 0, r.stderr
    fails("403", 403, anon.head_object, Bucket="alice-pub", Key="p/obj")  # HEAD: no body
    alice.create_bucket(Bucket="alice-pub2", ACL="public-read")
    alice.put_object(Bucket="alice-pub2", Key="k", Body=b"2")
    assert anon.get_object(Bucket="alice-pub2", Key="k")["Body"].read() == b"2"
    assert "alice-pub2" not in [b["Name"] for b in bob.list_buckets()["Buckets"]]


def test_part_number(srv):
    s3 = client(srv, srv.access_key, srv.secret_key)
    s3.create_bucket(Bucket="parts")
    p1, p2, p3 = b"a" * (5 << 20), b"b" * ((5 << 20) + 7), b"tail"
    uid = s3.create_multipart_upload(Bucket="parts", Key="mp")["UploadId"]
    parts = []
    for i, body in enumerate([p1, p2, p3], 1):
        e = s3.upload_part(Bucket="parts", Key="mp", UploadId=uid, PartNumber=i, Body=body)
        parts.append({"PartNumber": i, "ETag": e["ETag"]})
    s3.complete_multipart_upload(Bucket="parts", Key="mp", UploadId=uid,
                                 MultipartUpload={"Parts": parts})
    size = len(p1) + len(p2) + len(p3)
    r = s3.get_object(Bucket="parts", Key="mp", PartNumber=2)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["Body"].read() == p2
    assert r["ContentRange"] == "bytes %d-%d/%d" % (len(p1), len(p1) + len(p2) - 1, size)
    assert r["PartsCount"] == 3 and r["ContentLength"] == len(p2)
    r = s3.get_object(Bucket="parts", Key="mp", PartNumber=3)
    assert r["Body"].read() == p3 and r["ContentRange"] == "bytes %d-%d/%d" % (
        size - 4, size - 1, size)
    h = s3.head_object(Bucket="parts", Key="mp", PartNumber=1)
    assert h["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert h["ContentLength"] == len(p1) and h["PartsCount"] == 3
    assert "PartsCount" not in s3.head_object(Bucket="parts", Key="mp")
    fails("InvalidPartNumber", 416, s3.get_object, Bucket="parts", Key="mp", PartNumber=4)
    fails("InvalidArgument", 400, s3.get_object, Bucket="parts", Key="mp", PartNumber=0)
    fails("InvalidRequest", 400, s3.get_object, Bucket="parts", Key="mp", PartNumber=1,
          Range="bytes=0-1")
    # A single-part object is its own part 1 (206 over all of it, as S3).
    s3.put_object(Bucket="parts", Key="single", Body=b"0123456789")
    r = s3.get_object(Bucket="parts", Key="single", PartNumber=1)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["Body"].read() == b"0123456789" and r["ContentRange"] == "bytes 0-9/10"
    assert "PartsCount" not in r
    fails("InvalidPartNumber", 416, s3.get_object, Bucket="parts", Key="single", PartNumber=2)
    r = aws(srv, srv.access_key, srv.secret_key, "s3api", "get-object", "--bucket", "parts",
            "--key", "mp", "--part-number", "3", "/dev/stdout")
    assert r.returncode == 0 and r.stdout.startswith("tail"), r.stderr


def test_removed_user_and_offline_admin(srv, users):
    (bak, bsk) = users["bob"]
    bob = client(srv, bak, bsk)
    assert bob.list_buckets()["Buckets"]
    r = admin(srv, "remove", bak)
    assert r.returncode == 0, r.stderr
    # At once: the next request is refused.
    fails("InvalidAccessKeyId", 403, bob.list_buckets)
    fails("InvalidAccessKeyId", 403, bob.get_object, Bucket="bob-data", Key="b.txt")
    assert bak not in admin(srv, "list").stdout
    # Its buckets stay, root's to manage.
    root = client(srv, srv.access_key, srv.secret_key)
    assert root.get_object(Bucket="bob-data", Key="b.txt")["Body"].read() == b"bob's"
    # Offline, with the server stopped: users are in the metadata.
    assert srv.stop() == 0
    r = run("admin", "user", "list", "--data", srv.data_dir)
    assert r.returncode == 0 and users["alice"][0] in r.stdout and bak not in r.stdout
    carol = added(run("admin", "user", "add", "--name", "carol", "--data", srv.data_dir))
    r = run("admin", "user", "remove", "NOSUCHKEY0000000000", "--data", srv.data_dir)
    assert r.returncode == 1
    # `nebula dump` carries the users (with their secrets) and `load` restores them.
    r = run("dump", srv.data_dir)
    assert r.returncode == 0, r.stderr
    dumped = {u["access_key"]: u for u in json.loads(r.stdout)["users"]}
    assert set(dumped) == {users["alice"][0], carol[0]}
    assert dumped[carol[0]]["secret_key"] == carol[1] and dumped[carol[0]]["name"] == "carol"
    other = os.path.join(os.path.dirname(srv.data_dir), "loaded")
    os.mkdir(other)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEBULA_")}
    lr = subprocess.run([NEBULA, "load", other], input=r.stdout, capture_output=True, text=True,
                        timeout=60, env=env)
    assert lr.returncode == 0, lr.stderr
    r = run("admin", "user", "list", "--data", other)
    assert r.returncode == 0 and carol[0] in r.stdout and users["alice"][0] in r.stdout
    s2 = S3Server(srv.data_dir)
    try:
        c = client(s2, *carol)
        c.create_bucket(Bucket="carol-data")
        assert [b["Name"] for b in c.list_buckets()["Buckets"]] == ["carol-data"]
        a = client(s2, *users["alice"])
        assert "alice-data" in [b["Name"] for b in a.list_buckets()["Buckets"]]
    finally:
        assert s2.stop() == 0
