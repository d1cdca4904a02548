"""The lifecycle executor against a real `nebula server` whose lifecycle
"day" is one second (--lifecycle-day-seconds 1, scans every 0.3 s):
Expiration (Days, Date, ExpiredObjectDeleteMarker), NoncurrentVersion-
Expiration (NoncurrentDays, NewerNoncurrentVersions) and
AbortIncompleteMultipartUpload, with prefix and tag filters; the mount
follows; `nebula fsck` is clean after (docs/s3.md "Lifecycle")."""
import os
import time

import pytest
from botocore.exceptions import ClientError

from test_s3_helpers import error_code, mounted_s3_server, stop_and_fsck


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with mounted_s3_server(tmp_path_factory.mktemp("s3lc"), "--lifecycle-interval", "0.3",
                           "--lifecycle-day-seconds", "1") as s:
        yield s


def wait_for(cond, what, limit=30):
    """Polls cond until it holds (the executor runs in the background)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("lifecycle did not get there: " + what)


def keys(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def versions(s3, bucket, prefix):
    r = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    return ([(v["Key"], v["VersionId"], v["IsLatest"]) for v in r.get("Versions", [])],
            [(m["Key"], m["VersionId"], m["IsLatest"]) for m in r.get("DeleteMarkers", [])])


def test_expiration_with_filters(srv):
    s3 = srv.client()
    s3.create_bucket(Bucket="lcexp")
    s3.put_bucket_lifecycle_configuration(Bucket="lcexp", LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
         "Expiration": {"Days": 1}},
        {"ID": "tagged", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "tag/", "Tags": [{"Key": "k", "Value": "v"}]}},
         "Expiration": {"Days": 1}},
        {"ID": "dated", "Status": "Enabled", "Filter": {"Prefix": "dated/"},
         "Expiration": {"Date": "2020-01-01T00:00:00Z"}},
        {"ID": "slow", "Status": "Enabled", "Filter": {"Prefix": "slow/"},
         "Expiration": {"Days": 1000}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/"},
         "Expiration": {"Days": 1}},
    ]})
    for k in ["tmp/a", "tmp/sub/b", "keep/c", "slow/z", "dated/d"]:
        s3.put_object(Bucket="lcexp", Key=k, Body=k.encode())
    s3.put_object(Bucket="lcexp", Key="tag/x", Body=b"x", Tagging="k=v")
    s3.put_object(Bucket="lcexp", Key="tag/y", Body=b"y", Tagging="k=other")
    wait_for(lambda: keys(s3, "lcexp") == ["keep/c", "slow/z", "tag/y"], "expired keys gone")
    assert not (srv.mnt / "lcexp" / "tmp").exists()
    assert sorted(os.listdir(srv.mnt / "lcexp")) == ["keep", "slow", "tag"]
    assert (srv.mnt / "lcexp" / "tag" / "y").read_bytes() == b"y"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="lcexp", Key="tmp/a")
    assert error_code(e) == ("NoSuchKey", 404)


def test_versioned_rules(srv):
    s3 = srv.client()
    s3.create_bucket(Bucket="lcver")
    s3.put_bucket_versioning(Bucket="lcver", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket="lcver", LifecycleConfiguration={"Rules": [
        {"ID": "nc", "Status": "Enabled", "Filter": {"Prefix": "nc/"},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
        {"ID": "dm", "Status": "Enabled", "Filter": {"Prefix": "dm/"},
         "Expiration": {"ExpiredObjectDeleteMarker": True},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
        {"ID": "cur", "Status": "Enabled", "Filter": {"Prefix": "cur/"},
         "Expiration": {"Days": 1}},
    ]})
    nc = [s3.put_object(Bucket="lcver", Key="nc/k", Body=b"%d" % i)["VersionId"]
          for i in range(4)]
    dm1 = s3.put_object(Bucket="lcver", Key="dm/k", Body=b"gone soon")["VersionId"]
    s3.delete_object(Bucket="lcver", Key="dm/k")
    cur = s3.put_object(Bucket="lcver", Key="cur/k", Body=b"current")["VersionId"]

    # Noncurrent: all but the newest noncurrent one go; the current stays.
    wait_for(lambda: versions(s3, "lcver", "nc/")[0] == [("nc/k", nc[3], True),
                                                         ("nc/k", nc[2], False)],
             "noncurrent versions expired")
    assert s3.get_object(Bucket="lcver", Key="nc/k")["Body"].read() == b"3"
    # A marker left alone once its noncurrent version expired goes too.
    wait_for(lambda: versions(s3, "lcver", "dm/") == ([], []), "lone delete marker removed")
    # Expiration of a current version in a versioned bucket: a delete marker.
    wait_for(lambda: len(versions(s3, "lcver", "cur/")[1]) == 1, "delete marker made")
    vs, dms = versions(s3, "lcver", "cur/")
    assert vs == [("cur/k", cur, False)]
    assert dms[0][0] == "cur/k" and dms[0][2] is True
    assert not (srv.mnt / "lcver" / "cur").exists()
    assert (srv.mnt / "lcver" / "nc" / "k").read_bytes() == b"3"
    del dm1


def test_abort_incomplete_uploads(srv):
    s3 = srv.client()
    s3.create_bucket(Bucket="lcmpu")
    # The uploads and the part come before the rule: a "day" is one second
    # here, so under load the executor could abort u1 between its creation
    # and its part. A rule applies to uploads already in progress, as in AWS.
    u1 = s3.create_multipart_upload(Bucket="lcmpu", Key="up/x")["UploadId"]
    s3.upload_part(Bucket="lcmpu", Key="up/x", UploadId=u1, PartNumber=1, Body=b"p" * 1000)
    u2 = s3.create_multipart_upload(Bucket="lcmpu", Key="other/y")["UploadId"]
    s3.put_bucket_lifecycle_configuration(Bucket="lcmpu", LifecycleConfiguration={"Rules": [
        {"ID": "up", "Status": "Enabled", "Filter": {"Prefix": "up/"},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
    ]})

    def uploads():
        r = s3.list_multipart_uploads(Bucket="lcmpu")
        return sorted((u["Key"], u["UploadId"]) for u in r.get("Uploads", []))

    wait_for(lambda: uploads() == [("other/y", u2)], "upload aborted")
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket="lcmpu", Key="up/x", UploadId=u1)
    assert error_code(e) == ("NoSuchUpload", 404)


def test_fsck_clean_after(srv):
    stop_and_fsck(srv)
