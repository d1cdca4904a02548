"""Per-object canned ACLs against a real `nebula server`: x-amz-acl on
PutObject, CopyObject and CreateMultipartUpload, PutObjectAcl (canned or
an AccessControlPolicy body) and GetObjectAcl, with boto3, another user
and anonymous curl (docs/s3.md "Users, owners and ACLs").

As in S3 an object's own ACL decides who else may read it: a public-read
object in a private bucket is readable by anyone, a private one in a
public-read bucket by its owner only. An object without an ACL of its own
(no x-amz-acl) is as readable as its bucket."""
import subprocess

import pytest

from nebula_proc import run
from test_s3_helpers import S3Server, fails, key_client

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("s3acl") / "data")
    s = S3Server(d)
    s.data_dir = d
    yield s
    assert s.stop() == 0


def curl(srv, path):
    """Anonymous GET: (status, body)."""
    r = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}",
                        srv.endpoint + path], capture_output=True, timeout=30)
    body, _, status = r.stdout.rpartition(b"\n")
    return int(status), body


def public(acl):
    return [g["Permission"] for g in acl["Grants"] if g["Grantee"].get("URI") == ALL_USERS]


@pytest.fixture(scope="module")
def bob(srv):
    r = run("admin", "user", "add", "--name", "bob", "--data", srv.data_dir,
            "--endpoint", srv.endpoint)
    assert r.returncode == 0, r.stderr
    kv = dict(l.split(" = ", 1) for l in r.stdout.splitlines() if " = " in l)
    return key_client(srv, kv["access_key"], kv["secret_key"])


def test_public_object_in_private_bucket(srv, bob):
    s3 = srv.client()
    s3.create_bucket(Bucket="acl-priv")
    s3.put_object(Bucket="acl-priv", Key="pub", Body=b"for everyone", ACL="public-read")
    s3.put_object(Bucket="acl-priv", Key="plain", Body=b"owner only")
    anon = key_client(srv)
    assert anon.get_object(Bucket="acl-priv", Key="pub")["Body"].read() == b"for everyone"
    assert anon.head_object(Bucket="acl-priv", Key="pub")["ContentLength"] == 12
    assert curl(srv, "/acl-priv/pub") == (200, b"for everyone")
    assert bob.get_object(Bucket="acl-priv", Key="pub")["Body"].read() == b"for everyone"
    # The rest of the bucket stays closed, and its keys unknown.
    fails("AccessDenied", 403, anon.get_object, Bucket="acl-priv", Key="plain")
    fails("AccessDenied", 403, anon.get_object, Bucket="acl-priv", Key="missing")
    fails("AccessDenied", 403, bob.get_object, Bucket="acl-priv", Key="plain")
    fails("AccessDenied", 403, anon.list_objects_v2, Bucket="acl-priv")
    assert curl(srv, "/acl-priv/plain")[0] == 403
    # Reading an ACL is the owner's; so is changing it or the object.
    fails("AccessDenied", 403, anon.get_object_acl, Bucket="acl-priv", Key="pub")
    fails("AccessDenied", 403, bob.put_object_acl, Bucket="acl-priv", Key="pub", ACL="private")
    fails("AccessDenied", 403, anon.put_object, Bucket="acl-priv", Key="pub", Body=b"x")
    acl = s3.get_object_acl(Bucket="acl-priv", Key="pub")
    assert public(acl) == ["READ"] and acl["Owner"]["ID"] == "nebula-root"
    assert public(s3.get_object_acl(Bucket="acl-priv", Key="plain")) == []


def test_private_object_in_public_bucket(srv, bob):
    s3 = srv.client()
    s3.create_bucket(Bucket="acl-pub")
    s3.put_bucket_acl(Bucket="acl-pub", ACL="public-read")
    s3.put_object(Bucket="acl-pub", Key="default", Body=b"as the bucket")
    s3.put_object(Bucket="acl-pub", Key="secret", Body=b"mine", ACL="private")
    s3.put_object(Bucket="acl-pub", Key="owner", Body=b"mine too",
                  ACL="bucket-owner-full-control")
    anon = key_client(srv)
    assert anon.get_object(Bucket="acl-pub", Key="default")["Body"].read() == b"as the bucket"
    fails("AccessDenied", 403, anon.get_object, Bucket="acl-pub", Key="secret")
    fails("403", 403, anon.head_object, Bucket="acl-pub", Key="owner")  # HEAD: no body
    fails("AccessDenied", 403, bob.get_object, Bucket="acl-pub", Key="secret")
    assert curl(srv, "/acl-pub/secret")[0] == 403
    # The bucket is listable, so a missing key is NoSuchKey.
    fails("NoSuchKey", 404, anon.get_object, Bucket="acl-pub", Key="missing")
    keys = [o["Key"] for o in anon.list_objects_v2(Bucket="acl-pub")["Contents"]]
    assert keys == ["default", "owner", "secret"]
    assert public(s3.get_object_acl(Bucket="acl-pub", Key="default")) == ["READ"]
    assert public(s3.get_object_acl(Bucket="acl-pub", Key="secret")) == []
    assert s3.get_object(Bucket="acl-pub", Key="secret")["Body"].read() == b"mine"
    # A copy reads its source: the same rules (no way around a private ACL).
    bob.create_bucket(Bucket="acl-bob")
    bob.copy_object(Bucket="acl-bob", Key="d", CopySource={"Bucket": "acl-pub", "Key": "default"})
    fails("AccessDenied", 403, bob.copy_object, Bucket="acl-bob", Key="s",
          CopySource={"Bucket": "acl-pub", "Key": "secret"})
    up = bob.create_multipart_upload(Bucket="acl-bob", Key="m")["UploadId"]
    fails("AccessDenied", 403, bob.upload_part_copy, Bucket="acl-bob", Key="m", UploadId=up,
          PartNumber=1, CopySource={"Bucket": "acl-pub", "Key": "secret"})
    bob.abort_multipart_upload(Bucket="acl-bob", Key="m", UploadId=up)
    bob.copy_object(Bucket="acl-bob", Key="p", CopySource={"Bucket": "acl-priv", "Key": "pub"})
    assert bob.get_object(Bucket="acl-bob", Key="p")["Body"].read() == b"for everyone"
    fails("AccessDenied", 403, bob.copy_object, Bucket="acl-bob", Key="x",
          CopySource={"Bucket": "acl-priv", "Key": "plain"})


def test_put_object_acl_canned_and_policy(srv):
    s3 = srv.client()
    s3.create_bucket(Bucket="acl-put")
    s3.put_object(Bucket="acl-put", Key="k", Body=b"bytes")
    anon = key_client(srv)
    fails("AccessDenied", 403, anon.get_object, Bucket="acl-put", Key="k")
    s3.put_object_acl(Bucket="acl-put", Key="k", ACL="public-read")
    assert anon.get_object(Bucket="acl-put", Key="k")["Body"].read() == b"bytes"
    # The same as an AccessControlPolicy body, back to private.
    owner = s3.get_object_acl(Bucket="acl-put", Key="k")["Owner"]
    s3.put_object_acl(Bucket="acl-put", Key="k", AccessControlPolicy={
        "Owner": owner,
        "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]},
                    "Permission": "FULL_CONTROL"}]})
    fails("AccessDenied", 403, anon.get_object, Bucket="acl-put", Key="k")
    s3.put_object_acl(Bucket="acl-put", Key="k", AccessControlPolicy={
        "Owner": owner,
        "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]},
                    "Permission": "FULL_CONTROL"},
                   {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}]})
    assert curl(srv, "/acl-put/k") == (200, b"bytes")
    # The bytes, ETag and metadata stay; what the gateway cannot keep is 501.
    assert s3.head_object(Bucket="acl-put", Key="k")["ContentLength"] == 5
    fails("NotImplemented", 501, s3.put_object_acl, Bucket="acl-put", Key="k",
          ACL="public-read-write")
    fails("NotImplemented", 501, s3.put_object_acl, Bucket="acl-put", Key="k",
          ACL="authenticated-read")
    fails("NotImplemented", 501, s3.put_object, Bucket="acl-put", Key="k2", Body=b"x",
          ACL="authenticated-read")
    fails("InvalidArgument", 400, s3.put_object_acl, Bucket="acl-put", Key="k", ACL="bogus")
    fails("NoSuchKey", 404, s3.put_object_acl, Bucket="acl-put", Key="nope", ACL="private")
    # The aws cli speaks it too.
    r = srv.aws("s3api", "put-object-acl", "--bucket", "acl-put", "--key", "k", "--acl",
                "private")
    assert r.returncode == 0
    assert curl(srv, "/acl-put/k")[0] == 403


def test_copy_and_multipart_acls(srv):
    s3 = srv.client()
    s3.create_bucket(Bucket="acl-cp")
    s3.put_object(Bucket="acl-cp", Key="src", Body=b"source", ACL="public-read")
    anon = key_client(srv)
    # ACLs are not copied: the copy gets the request's, or none.
    s3.copy_object(Bucket="acl-cp", Key="c1", CopySource={"Bucket": "acl-cp", "Key": "src"})
    fails("AccessDenied", 403, anon.get_object, Bucket="acl-cp", Key="c1")
    s3.copy_object(Bucket="acl-cp", Key="c2", CopySource={"Bucket": "acl-cp", "Key": "src"},
                   ACL="public-read")
    assert anon.get_object(Bucket="acl-cp", Key="c2")["Body"].read() == b"source"
    # Copying onto itself with a new ACL (and metadata) makes it private.
    s3.copy_object(Bucket="acl-cp", Key="src", CopySource={"Bucket": "acl-cp", "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"a": "b"}, ACL="private")
    fails("AccessDenied", 403, anon.get_object, Bucket="acl-cp", Key="src")
    up = s3.create_multipart_upload(Bucket="acl-cp", Key="mp", ACL="public-read")
    e = s3.upload_part(Bucket="acl-cp", Key="mp", UploadId=up["UploadId"], PartNumber=1,
                       Body=b"multi")["ETag"]
    s3.complete_multipart_upload(Bucket="acl-cp", Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    assert curl(srv, "/acl-cp/mp") == (200, b"multi")
    fails("NotImplemented", 501, s3.create_multipart_upload, Bucket="acl-cp", Key="mp2",
          ACL="public-read-write")


def test_versions_have_their_own_acl(srv):
    s3 = srv.client()
    s3.create_bucket(Bucket="acl-ver")
    s3.put_bucket_versioning(Bucket="acl-ver", VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="acl-ver", Key="k", Body=b"v1", ACL="public-read")["VersionId"]
    v2 = s3.put_object(Bucket="acl-ver", Key="k", Body=b"v2")["VersionId"]
    anon = key_client(srv)
    fails("AccessDenied", 403, anon.get_object, Bucket="acl-ver", Key="k")
    assert anon.get_object(Bucket="acl-ver", Key="k", VersionId=v1)["Body"].read() == b"v1"
    s3.put_object_acl(Bucket="acl-ver", Key="k", VersionId=v2, ACL="public-read")
    assert anon.get_object(Bucket="acl-ver", Key="k")["Body"].read() == b"v2"
    s3.put_object_acl(Bucket="acl-ver", Key="k", VersionId=v1, ACL="private")
    fails("AccessDenied", 403, anon.get_object, Bucket="acl-ver", Key="k", VersionId=v1)
    assert public(s3.get_object_acl(Bucket="acl-ver", Key="k", VersionId=v2)) == ["READ"]
