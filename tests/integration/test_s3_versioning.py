"""S3 versioning against a real `nebula server` (boto3 and /usr/bin/aws):
version ids, delete markers, the null version, ListObjectVersions with
markers, NoSuchVersion; the FUSE mount shows the current version only;
`nebula fsck` is clean after (docs/s3.md "Versioning")."""
import json
import os
import re

import pytest
from botocore.exceptions import ClientError

from test_s3_helpers import error_code, mounted_s3_server, stop_and_fsck

VID = re.compile(r"^[0-9a-f]{16}$")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with mounted_s3_server(tmp_path_factory.mktemp("s3ver")) as s:
        yield s


def versions(s3, bucket, **kw):
    r = s3.list_object_versions(Bucket=bucket, **kw)
    out = [("V", v["Key"], v["VersionId"], v["IsLatest"]) for v in r.get("Versions", [])]
    out += [("D", v["Key"], v["VersionId"], v["IsLatest"]) for v in r.get("DeleteMarkers", [])]
    return r, out


def test_bucket_versioning_states(srv):
    s3 = srv.client()
    s3.create_bucket(Bucket="vstate")
    assert "Status" not in s3.get_bucket_versioning(Bucket="vstate")
    s3.put_bucket_versioning(Bucket="vstate", VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket="vstate")["Status"] == "Enabled"
    s3.put_bucket_versioning(Bucket="vstate", VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket="vstate")["Status"] == "Suspended"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket="vstate",
                                 VersioningConfiguration={"Status": "Off"})
    assert error_code(e) == ("MalformedXML", 400)
    assert s3.get_bucket_versioning(Bucket="vstate")["Status"] == "Suspended"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket="nosuchbucket-v",
                                 VersioningConfiguration={"Status": "Enabled"})
    assert error_code(e) == ("NoSuchBucket", 404)
    # aws cli agrees.
    r = srv.aws("s3api", "get-bucket-versioning", "--bucket", "vstate")
    assert json.loads(r.stdout)["Status"] == "Suspended"


def test_versions_and_delete_markers(srv):
    s3 = srv.client()
    s3.create_bucket(Bucket="ver")
    s3.put_object(Bucket="ver", Key="dir/k", Body=b"null version")  # before versioning
    s3.put_bucket_versioning(Bucket="ver", VersioningConfiguration={"Status": "Enabled"})
    r1 = s3.put_object(Bucket="ver", Key="dir/k", Body=b"one")
    r2 = s3.put_object(Bucket="ver", Key="dir/k", Body=b"two!")
    v1, v2 = r1["VersionId"], r2["VersionId"]
    assert VID.match(v1) and VID.match(v2) and v1 != v2
    path = srv.mnt / "ver" / "dir" / "k"
    assert path.read_bytes() == b"two!"
    assert os.listdir(srv.mnt / "ver" / "dir") == ["k"]
    # Every version reads back by id; the current one also without.
    g = s3.get_object(Bucket="ver", Key="dir/k")
    assert g["Body"].read() == b"two!" and g["VersionId"] == v2
    assert s3.get_object(Bucket="ver", Key="dir/k", VersionId=v1)["Body"].read() == b"one"
    g = s3.get_object(Bucket="ver", Key="dir/k", VersionId="null")
    assert g["Body"].read() == b"null version"
    h = s3.head_object(Bucket="ver", Key="dir/k", VersionId=v1)
    assert h["ContentLength"] == 3 and h["VersionId"] == v1
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="ver", Key="dir/k", VersionId="00000000000000ff")
    assert error_code(e) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="ver", Key="dir/k", VersionId="bogus")
    assert error_code(e) == ("InvalidArgument", 400)

    # DELETE without a version id: a delete marker; the key is gone from
    # GET and from the mount, its versions stay.
    d = s3.delete_object(Bucket="ver", Key="dir/k")
    assert d["DeleteMarker"] is True and VID.match(d["VersionId"])
    dm = d["VersionId"]
    assert not path.exists() and not (srv.mnt / "ver" / "dir").exists()
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="ver", Key="dir/k")
    assert error_code(e) == ("NoSuchKey", 404)
    hdr = e.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert hdr["x-amz-delete-marker"] == "true" and hdr["x-amz-version-id"] == dm
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="ver", Key="dir/k", VersionId=dm)
    assert error_code(e) == ("MethodNotAllowed", 405)
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    assert s3.get_object(Bucket="ver", Key="dir/k", VersionId=v2)["Body"].read() == b"two!"
    assert s3.list_objects_v2(Bucket="ver").get("KeyCount") == 0
    _, vs = versions(s3, "ver")
    assert sorted(vs) == sorted([("D", "dir/k", dm, True), ("V", "dir/k", v2, False),
                                 ("V", "dir/k", v1, False), ("V", "dir/k", "null", False)])
    r = s3.list_object_versions(Bucket="ver")
    assert [v["VersionId"] for v in r["Versions"]] == [v2, v1, "null"]
    assert r["Versions"][0]["ETag"] == '"%s"' % __import__("hashlib").md5(b"two!").hexdigest()
    assert r["Versions"][0]["Size"] == 4

    # Deleting the marker brings the newest version back, mount included.
    d = s3.delete_object(Bucket="ver", Key="dir/k", VersionId=dm)
    assert d["DeleteMarker"] is True and d["VersionId"] == dm
    assert path.read_bytes() == b"two!"
    # Deleting the current version by id makes the previous one current.
    d = s3.delete_object(Bucket="ver", Key="dir/k", VersionId=v2)
    assert d["VersionId"] == v2 and "DeleteMarker" not in d
    assert s3.get_object(Bucket="ver", Key="dir/k")["Body"].read() == b"one"
    assert path.read_bytes() == b"one"
    # A noncurrent version goes without touching the current one.
    s3.delete_object(Bucket="ver", Key="dir/k", VersionId="null")
    _, vs = versions(s3, "ver")
    assert vs == [("V", "dir/k", v1, True)]
    # A version that is not there: 204 as in S3.
    s3.delete_object(Bucket="ver", Key="dir/k", VersionId="00000000000000ff")
    # A versioned bucket with versions is not empty.
    s3.delete_object(Bucket="ver", Key="dir/k")
    assert s3.list_objects_v2(Bucket="ver").get("KeyCount") == 0
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="ver")
    assert error_code(e) == ("BucketNotEmpty", 409)


def test_suspended_null_version(srv):
    s3 = srv.client()
    s3.create_bucket(Bucket="susp")
    s3.put_bucket_versioning(Bucket="susp", VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="susp", Key="k", Body=b"v1")["VersionId"]
    s3.put_bucket_versioning(Bucket="susp", VersioningConfiguration={"Status": "Suspended"})
    r = s3.put_object(Bucket="susp", Key="k", Body=b"null-1")
    assert "VersionId" not in r
    s3.put_object(Bucket="susp", Key="k", Body=b"null-2")  # replaces the null version
    r = s3.list_object_versions(Bucket="susp")
    assert [(v["VersionId"], v["IsLatest"]) for v in r["Versions"]] == [("null", True),
                                                                         (v1, False)]
    assert s3.get_object(Bucket="susp", Key="k")["Body"].read() == b"null-2"
    d = s3.delete_object(Bucket="susp", Key="k")
    assert d["DeleteMarker"] is True and d["VersionId"] == "null"
    r = s3.list_object_versions(Bucket="susp")
    assert [v["VersionId"] for v in r["Versions"]] == [v1]
    assert [(m["VersionId"], m["IsLatest"]) for m in r["DeleteMarkers"]] == [("null", True)]
    assert not (srv.mnt / "susp" / "k").exists()


def test_null_version_id_of_objects_from_before_versioning(srv):
    """AWS answers x-amz-version-id: null for an object written before
    versioning once its bucket is versioned (or suspended), and never in a
    bucket that was not."""
    s3 = srv.client()
    s3.create_bucket(Bucket="nullv")
    s3.put_object(Bucket="nullv", Key="old", Body=b"from before")
    assert "VersionId" not in s3.get_object(Bucket="nullv", Key="old")
    assert "VersionId" not in s3.head_object(Bucket="nullv", Key="old")
    s3.put_bucket_versioning(Bucket="nullv", VersioningConfiguration={"Status": "Enabled"})
    for fn in (s3.get_object, s3.head_object):
        assert fn(Bucket="nullv", Key="old")["VersionId"] == "null"
        assert fn(Bucket="nullv", Key="old", VersionId="null")["VersionId"] == "null"
    g = s3.get_object(Bucket="nullv", Key="old", VersionId="null")
    assert g["Body"].read() == b"from before"
    c = s3.copy_object(Bucket="nullv", Key="copy", CopySource={"Bucket": "nullv", "Key": "old"})
    assert c["CopySourceVersionId"] == "null" and VID.match(c["VersionId"])
    # Noncurrent now: still null, by id, and in the listing.
    v = s3.put_object(Bucket="nullv", Key="old", Body=b"new")["VersionId"]
    h = s3.head_object(Bucket="nullv", Key="old", VersionId="null")
    assert h["VersionId"] == "null" and h["ContentLength"] == 11
    assert s3.head_object(Bucket="nullv", Key="old")["VersionId"] == v
    r = s3.list_object_versions(Bucket="nullv", Prefix="old")
    assert [x["VersionId"] for x in r["Versions"]] == [v, "null"]
    # Suspended: the same answer.
    s3.put_bucket_versioning(Bucket="nullv", VersioningConfiguration={"Status": "Suspended"})
    assert s3.head_object(Bucket="nullv", Key="copy")["VersionId"] == c["VersionId"]
    s3.put_object(Bucket="nullv", Key="plain", Body=b"x")
    assert s3.head_object(Bucket="nullv", Key="plain")["VersionId"] == "null"
    # A bucket never versioned still answers without the header.
    s3.create_bucket(Bucket="nullv-off")
    s3.put_object(Bucket="nullv-off", Key="k", Body=b"x")
    h = s3.head_object(Bucket="nullv-off", Key="k")
    assert "VersionId" not in h and "x-amz-version-id" not in h["ResponseMetadata"]["HTTPHeaders"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="nullv-off", Key="k", VersionId="0123456789abcdef")
    assert error_code(e) == ("NoSuchVersion", 404)


def test_copy_multipart_and_multi_delete(srv):
    s3 = srv.client()
    s3.create_bucket(Bucket="vcopy")
    s3.put_bucket_versioning(Bucket="vcopy", VersioningConfiguration={"Status": "Enabled"})
    a1 = s3.put_object(Bucket="vcopy", Key="a", Body=b"first")["VersionId"]
    s3.put_object(Bucket="vcopy", Key="a", Body=b"second")
    c = s3.copy_object(Bucket="vcopy", Key="b",
                       CopySource={"Bucket": "vcopy", "Key": "a", "VersionId": a1})
    assert c["CopySourceVersionId"] == a1 and VID.match(c["VersionId"])
    assert s3.get_object(Bucket="vcopy", Key="b")["Body"].read() == b"first"
    uid = s3.create_multipart_upload(Bucket="vcopy", Key="b")["UploadId"]
    e = s3.upload_part(Bucket="vcopy", Key="b", UploadId=uid, PartNumber=1, Body=b"mp")
    done = s3.complete_multipart_upload(
        Bucket="vcopy", Key="b", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e["ETag"]}]})
    assert VID.match(done["VersionId"])
    assert s3.get_object(Bucket="vcopy", Key="b", VersionId=c["VersionId"])["Body"].read() == \
        b"first"
    assert (srv.mnt / "vcopy" / "b").read_bytes() == b"mp"
    uid = s3.create_multipart_upload(Bucket="vcopy", Key="pc")["UploadId"]
    pc = s3.upload_part_copy(Bucket="vcopy", Key="pc", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": "vcopy", "Key": "a", "VersionId": a1})
    assert pc["CopySourceVersionId"] == a1
    s3.complete_multipart_upload(
        Bucket="vcopy", Key="pc", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": pc["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket="vcopy", Key="pc")["Body"].read() == b"first"
    r = s3.delete_objects(Bucket="vcopy", Delete={"Objects": [
        {"Key": "a", "VersionId": a1}, {"Key": "b"}]})
    got = {(d["Key"], d.get("VersionId"), d.get("DeleteMarker")) for d in r["Deleted"]}
    assert ("a", a1, None) in got
    bm = [d for d in r["Deleted"] if d["Key"] == "b"][0]
    assert bm["DeleteMarker"] is True and VID.match(bm["DeleteMarkerVersionId"])
    _, vs = versions(s3, "vcopy")
    assert sum(1 for v in vs if v[1] == "a") == 1
    assert ("D", "b", bm["DeleteMarkerVersionId"], True) in vs
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket="vcopy", Key="c",
                       CopySource={"Bucket": "vcopy", "Key": "b",
                                   "VersionId": bm["DeleteMarkerVersionId"]})
    assert error_code(e) == ("InvalidRequest", 400)


def test_list_versions_pages(srv):
    s3 = srv.client()
    s3.create_bucket(Bucket="vlist")
    s3.put_bucket_versioning(Bucket="vlist", VersioningConfiguration={"Status": "Enabled"})
    ids = {}
    for k in ["a.txt", "a/b", "a/c", "b"]:
        ids[k] = [s3.put_object(Bucket="vlist", Key=k, Body=k.encode() + b"%d" % i)["VersionId"]
                  for i in range(3)]
    s3.delete_object(Bucket="vlist", Key="a/c")
    full = []
    kw = {}
    while True:
        r = s3.list_object_versions(Bucket="vlist", MaxKeys=2, **kw)
        page = [(v["Key"], v["VersionId"]) for v in r.get("Versions", []) +
                r.get("DeleteMarkers", [])]
        assert len(page) <= 2
        full += sorted(page, key=lambda x: ([k for k, _ in page].index(x[0]),))
        if not r["IsTruncated"]:
            break
        kw = {"KeyMarker": r["NextKeyMarker"], "VersionIdMarker": r["NextVersionIdMarker"]}
    keys = [k for k, _ in full]
    assert keys == sorted(keys)  # byte order of keys: "a.txt" < "a/b" < "a/c" < "b"
    assert len(full) == 13 and len(set(full)) == 13
    for k in ["a.txt", "a/b", "b"]:
        assert [v for kk, v in full if kk == k] == ids[k][::-1]  # newest first
    r = s3.list_object_versions(Bucket="vlist", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/"]
    assert {v["Key"] for v in r["Versions"]} == {"a.txt", "b"}
    r = s3.list_object_versions(Bucket="vlist", Prefix="a/", KeyMarker="a/b")
    assert {v["Key"] for v in r["Versions"]} == {"a/c"}
    assert [(m["Key"], m["IsLatest"]) for m in r["DeleteMarkers"]] == [("a/c", True)]
    # The aws cli lists the same.
    out = json.loads(srv.aws("s3api", "list-object-versions", "--bucket", "vlist",
                             "--prefix", "b").stdout)
    assert [v["VersionId"] for v in out["Versions"]] == ids["b"][::-1]
    assert [v["IsLatest"] for v in out["Versions"]] == [True, False, False]


def test_fsck_clean_after(srv):
    s3 = srv.client()
    s3.create_bucket(Bucket="vfsck")
    s3.put_bucket_versioning(Bucket="vfsck", VersioningConfiguration={"Status": "Enabled"})
    for i in range(3):
        s3.put_object(Bucket="vfsck", Key="x/y", Body=os.urandom(100000 + i))
    s3.delete_object(Bucket="vfsck", Key="x/y")
    stop_and_fsck(srv)
