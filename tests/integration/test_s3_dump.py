"""`nebula dump` / `nebula load` keep what S3 keeps beyond files: object
versions and delete markers ('V' records), bucket versioning, owners and
ACLs, users and in-progress multipart uploads. A versioned bucket filled
by boto3 on a real server is dumped by the CLI, loaded next to a copy of its blocks, and a server on
the copy gives the same ListObjectVersions and the same GETs by version
id (docs/vfs.md "Dump format")."""
import json
import os
import shutil
import subprocess

from nebula_proc import NEBULA, run
from test_s3_helpers import S3Server, key_client


def all_versions(s3, bucket):
    r = s3.list_object_versions(Bucket=bucket)
    vs = [(v["Key"], v["VersionId"], v["IsLatest"], v["ETag"], v["Size"],
           v["LastModified"]) for v in r.get("Versions", [])]
    ms = [(v["Key"], v["VersionId"], v["IsLatest"], v["LastModified"])
          for v in r.get("DeleteMarkers", [])]
    return vs, ms


def snapshot(s3, buckets):
    """What a client sees: versions, markers and every version's GET."""
    out = {}
    for b in buckets:
        vs, ms = all_versions(s3, b)
        gets = {}
        for key, vid, _, _, _, _ in vs:
            g = s3.get_object(Bucket=b, Key=key, VersionId=vid)
            gets[(key, vid)] = (g["Body"].read(), g["ETag"], g.get("Metadata"),
                                g.get("ContentType"), g["VersionId"])
        out[b] = (vs, ms, gets, s3.get_bucket_versioning(Bucket=b).get("Status"),
                  [(g["Permission"], g["Grantee"].get("URI"))
                   for g in s3.get_bucket_acl(Bucket=b)["Grants"]])
    return out


def test_dump_load_keeps_versions_users_and_acls(tmp_path):
    data = str(tmp_path / "data")
    srv = S3Server(data)
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="dmp-v")
        s3.put_object(Bucket="dmp-v", Key="k", Body=b"before versioning")  # the null version
        s3.put_bucket_versioning(Bucket="dmp-v", VersioningConfiguration={"Status": "Enabled"})
        for i in range(3):
            s3.put_object(Bucket="dmp-v", Key="k", Body=os.urandom(1000 * i + 7),
                          Metadata={"n": str(i)}, ContentType="app/x-%d" % i)
        big = os.urandom(300000)  # block-stored, not inline
        s3.put_object(Bucket="dmp-v", Key="dir/gone", Body=big)
        s3.put_object(Bucket="dmp-v", Key="dir/gone", Body=b"second")
        s3.delete_object(Bucket="dmp-v", Key="dir/gone")  # a delete marker on top
        s3.put_object(Bucket="dmp-v", Key="dir/only", Body=b"one version")
        s3.create_bucket(Bucket="dmp-s")
        s3.put_bucket_versioning(Bucket="dmp-s", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="dmp-s", Key="x", Body=b"v1")
        s3.put_bucket_versioning(Bucket="dmp-s", VersioningConfiguration={"Status": "Suspended"})
        s3.put_object(Bucket="dmp-s", Key="x", Body=b"null in suspended")
        s3.put_bucket_acl(Bucket="dmp-s", ACL="public-read")
        r = run("admin", "user", "add", "--name", "dora", "--data", data,
                "--endpoint", srv.endpoint)
        assert r.returncode == 0, r.stderr
        ak = next(l.split(" = ")[1] for l in r.stdout.splitlines() if l.startswith("access_key"))
        sk = next(l.split(" = ")[1] for l in r.stdout.splitlines() if l.startswith("secret_key"))
        key_client(srv, ak, sk).create_bucket(Bucket="dora-b")
        # An upload in progress: two parts now, a third after the load.
        parts = [os.urandom(5 << 20), os.urandom(5 << 20), os.urandom(1000)]
        up = s3.create_multipart_upload(Bucket="dmp-s", Key="big/obj", ContentType="app/mpu",
                                        Metadata={"m": "1"})["UploadId"]
        etags = [s3.upload_part(Bucket="dmp-s", Key="big/obj", UploadId=up, PartNumber=i + 1,
                                Body=parts[i])["ETag"] for i in range(2)]
        s3.create_multipart_upload(Bucket="dmp-v", Key="aborted", ContentType="x/y")
        before = snapshot(s3, ["dmp-v", "dmp-s", "dora-b"])
        uploads_before = {b: [(u["Key"], u["UploadId"])
                              for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", [])]
                          for b in ("dmp-v", "dmp-s")}
        parts_before = s3.list_parts(Bucket="dmp-s", Key="big/obj", UploadId=up)["Parts"]
        assert len(before["dmp-v"][0]) == 7 and len(before["dmp-v"][1]) == 1
    finally:
        assert srv.stop() == 0

    r = run("dump", data, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert sum(v["delete_marker"] for v in doc["versions"]) == 1
    assert {v["version_id"] for v in doc["versions"]} >= {"null"}
    assert sorted((u["key"], len(u["parts"])) for u in doc["uploads"]) == \
        [("aborted", 0), ("big/obj", 2)]
    copy = tmp_path / "copy"
    shutil.copytree(data, copy, symlinks=True)
    shutil.rmtree(copy / "meta")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEBULA_")}
    lr = subprocess.run([NEBULA, "load", str(copy)], input=r.stdout, capture_output=True,
                        text=True, timeout=60, env=env)
    assert lr.returncode == 0, lr.stderr
    f = run("fsck", str(copy))
    assert f.returncode == 0 and " 0 problems" in f.stdout + f.stderr, f.stdout + f.stderr
    # Dumping the load gives the same document, up to inode numbers.
    r2 = run("dump", str(copy), timeout=60)
    assert r2.returncode == 0
    key = lambda v: (v["key"], v["seq"], v["version_id"], v["delete_marker"], v["mtime_ns"],
                     v.get("objrec"), v.get("chunks"))
    assert sorted(map(key, json.loads(r2.stdout)["versions"])) == \
        sorted(map(key, doc["versions"]))
    ukey = lambda u: (u["id"], u["key"], u["initiated_ns"], u.get("owner"), u.get("objrec"),
                      json.dumps(u["parts"]))
    assert sorted(map(ukey, json.loads(r2.stdout)["uploads"])) == \
        sorted(map(ukey, doc["uploads"]))

    s2 = S3Server(str(copy))
    try:
        assert (s2.access_key, s2.secret_key) == (srv.access_key, srv.secret_key)
        c = s2.client()
        assert snapshot(c, ["dmp-v", "dmp-s", "dora-b"]) == before
        # The uploads came along with their ids and parts; one goes on to
        # completion, the other is aborted.
        assert {b: [(u["Key"], u["UploadId"])
                    for u in c.list_multipart_uploads(Bucket=b).get("Uploads", [])]
                for b in ("dmp-v", "dmp-s")} == uploads_before
        assert c.list_parts(Bucket="dmp-s", Key="big/obj", UploadId=up)["Parts"] == parts_before
        etags.append(c.upload_part(Bucket="dmp-s", Key="big/obj", UploadId=up, PartNumber=3,
                                   Body=parts[2])["ETag"])
        c.complete_multipart_upload(
            Bucket="dmp-s", Key="big/obj", UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e}
                                       for i, e in enumerate(etags)]})
        g = c.get_object(Bucket="dmp-s", Key="big/obj")
        assert g["Body"].read() == b"".join(parts)
        assert g["ContentType"] == "app/mpu" and g["Metadata"] == {"m": "1"}
        assert g["ETag"].endswith('-3"')
        ab = uploads_before["dmp-v"][0][1]
        c.abort_multipart_upload(Bucket="dmp-v", Key="aborted", UploadId=ab)
        assert c.list_multipart_uploads(Bucket="dmp-v").get("Uploads", []) == []
        # The owner and the user came along: dora sees her bucket only.
        dora = key_client(s2, ak, sk)
        assert [b["Name"] for b in dora.list_buckets()["Buckets"]] == ["dora-b"]
        # The loaded store keeps working: versions go on from where they were.
        v = c.put_object(Bucket="dmp-v", Key="k", Body=b"after load")["VersionId"]
        vs, _ = all_versions(c, "dmp-v")
        assert [x[1] for x in vs if x[0] == "k"][0] == v and len(vs) == 8
        gone = [x for x in vs if x[0] == "dir/gone"]
        assert c.get_object(Bucket="dmp-v", Key="dir/gone",
                            VersionId=gone[-1][1])["Body"].read() == big
    finally:
        assert s2.stop() == 0
    f = run("fsck", str(copy))
    assert f.returncode == 0, f.stdout + f.stderr
