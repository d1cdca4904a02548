"""The S3 gateway through boto3 against a real `nebula server`: every
operation, the headers AWS documents and the error codes it answers."""
import base64
import hashlib
import http.client
import urllib.request
import zlib

import botocore.exceptions
import pytest
import requests

from test_s3_helpers import S3Server, error_code


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = S3Server(str(tmp_path_factory.mktemp("s3api") / "data"))
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def s3(srv):
    return srv.client()


def fails(code, status, fn, *args, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        fn(*args, **kw)
    assert error_code(ei) == (code, status), ei.value.response
    return ei.value.response


def md5hex(b):
    return hashlib.md5(b).hexdigest()


# ---- buckets ----------------------------------------------------------------------------------


def test_bucket_lifecycle_and_errors(s3):
    r = s3.create_bucket(Bucket="life")
    assert r["Location"] == "/life"
    assert "x-amz-request-id" in r["ResponseMetadata"]["HTTPHeaders"]
    assert "x-amz-id-2" in r["ResponseMetadata"]["HTTPHeaders"]
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "life" in names and not any(n.startswith(".") for n in names)
    assert s3.list_buckets()["Owner"]["ID"]
    r = s3.head_bucket(Bucket="life")
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert s3.get_bucket_location(Bucket="life").get("LocationConstraint") is None
    assert "Status" not in s3.get_bucket_versioning(Bucket="life")
    fails("BucketAlreadyOwnedByYou", 409, s3.create_bucket, Bucket="life")
    for bad in ["UPPER", "ab", "a" * 64, "-lead", "trail-", "a..b", "192.168.1.1", "xn--abc",
                "under_score"]:
        fails("InvalidBucketName", 400, s3.create_bucket, Bucket=bad)
    fails("NoSuchBucket", 404, s3.delete_bucket, Bucket="nosuchbucket")
    fails("NoSuchBucket", 404, s3.list_objects_v2, Bucket="nosuchbucket")
    fails("NoSuchBucket", 404, s3.put_object, Bucket="nosuchbucket", Key="k", Body=b"x")
    fails("NoSuchBucket", 404, s3.get_object, Bucket="nosuchbucket", Key="k")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.head_bucket(Bucket="nosuchbucket")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    s3.put_object(Bucket="life", Key="d/x", Body=b"1")
    fails("BucketNotEmpty", 409, s3.delete_bucket, Bucket="life")
    s3.delete_object(Bucket="life", Key="d/x")
    s3.delete_bucket(Bucket="life")
    assert "life" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    # The hidden multipart area is not a bucket.
    fails("NoSuchBucket", 404, s3.list_objects_v2, Bucket=".nebula-uploads")


# ---- objects ----------------------------------------------------------------------------------


def test_put_get_head_with_headers_and_metadata(s3):
    s3.create_bucket(Bucket="obj")
    body = b"hello, object\n" * 100
    r = s3.put_object(Bucket="obj", Key="dir/sub/file.txt", Body=body, ContentType="text/plain",
                      CacheControl="max-age=60", ContentDisposition='attachment; filename="f"',
                      ContentEncoding="identity", ContentLanguage="en",
                      Expires="Wed, 21 Oct 2037 07:28:00 GMT",
                      Metadata={"color": "blue", "Mixed-Case": "v"})
    assert r["ETag"] == '"%s"' % md5hex(body)
    g = s3.get_object(Bucket="obj", Key="dir/sub/file.txt")
    assert g["Body"].read() == body
    assert g["ETag"] == '"%s"' % md5hex(body)
    assert g["ContentLength"] == len(body)
    assert g["ContentType"] == "text/plain"
    assert g["CacheControl"] == "max-age=60"
    assert g["ContentDisposition"] == 'attachment; filename="f"'
    assert g["ContentEncoding"] == "identity"
    assert g["ContentLanguage"] == "en"
    assert g["ResponseMetadata"]["HTTPHeaders"]["expires"] == "Wed, 21 Oct 2037 07:28:00 GMT"
    assert g["Metadata"] == {"color": "blue", "mixed-case": "v"}
    assert g["AcceptRanges"] == "bytes"
    h = s3.head_object(Bucket="obj", Key="dir/sub/file.txt")
    assert h["ContentLength"] == len(body) and h["ETag"] == g["ETag"]
    assert h["LastModified"] == g["LastModified"]
    # Default content type, empty objects, overwrite.
    s3.put_object(Bucket="obj", Key="empty", Body=b"")
    g = s3.get_object(Bucket="obj", Key="empty")
    assert g["Body"].read() == b"" and g["ContentLength"] == 0
    assert g["ContentType"] == "binary/octet-stream"
    assert g["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    s3.put_object(Bucket="obj", Key="empty", Body=b"now full")
    assert s3.get_object(Bucket="obj", Key="empty")["Body"].read() == b"now full"


def test_missing_keys_and_metadata_limit(s3):
    s3.create_bucket(Bucket="miss")
    fails("NoSuchKey", 404, s3.get_object, Bucket="miss", Key="nope")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.head_object(Bucket="miss", Key="nope")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    fails("MetadataTooLarge", 400, s3.put_object, Bucket="miss", Key="m", Body=b"x",
          Metadata={"big": "v" * 2100})
    s3.put_object(Bucket="miss", Key="m", Body=b"x", Metadata={"ok": "v" * 1900})
    fails("KeyTooLongError", 400, s3.put_object, Bucket="miss", Key="k" * 1025, Body=b"x")
    # Keys that cannot be paths: refused, nothing created.
    for bad in ["a//b", "./a", "a/../b", "a/./b"]:
        fails("InvalidArgument", 400, s3.put_object, Bucket="miss", Key=bad, Body=b"x")
    # A key whose parent is an object, and an object where a directory is.
    s3.put_object(Bucket="miss", Key="file", Body=b"x")
    fails("InvalidRequest", 400, s3.put_object, Bucket="miss", Key="file/child", Body=b"x")
    s3.put_object(Bucket="miss", Key="dir/child", Body=b"x")
    fails("InvalidRequest", 400, s3.put_object, Bucket="miss", Key="dir", Body=b"x")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="miss")["Contents"])
    assert keys == ["dir/child", "file", "m"]


def test_content_md5_and_checksums(s3):
    s3.create_bucket(Bucket="sums")
    body = b"checksummed body"
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3.put_object(Bucket="sums", Key="md5", Body=body, ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    fails("BadDigest", 400, s3.put_object, Bucket="sums", Key="md5bad", Body=body, ContentMD5=bad)
    fails("InvalidDigest", 400, s3.put_object, Bucket="sums", Key="md5bad", Body=body,
          ContentMD5="notbase64")
    fails("NoSuchKey", 404, s3.get_object, Bucket="sums", Key="md5bad")
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    r = s3.put_object(Bucket="sums", Key="crc", Body=body, ChecksumCRC32=crc)
    assert r["ChecksumCRC32"] == crc
    h = s3.head_object(Bucket="sums", Key="crc", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == crc
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    r = s3.put_object(Bucket="sums", Key="sha", Body=body, ChecksumSHA256=sha)
    assert r["ChecksumSHA256"] == sha
    wrong = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    fails("BadDigest", 400, s3.put_object, Bucket="sums", Key="shabad", Body=body,
          ChecksumSHA256=wrong)
    # The SDK computes one itself (a trailing checksum in aws-chunked form).
    r = s3.put_object(Bucket="sums", Key="auto", Body=body, ChecksumAlgorithm="CRC32C")
    assert r.get("ChecksumCRC32C")
    assert s3.get_object(Bucket="sums", Key="auto")["Body"].read() == body


def test_ranges(s3):
    s3.create_bucket(Bucket="ranges")
    body = bytes(range(256)) * 40  # 10240 bytes
    s3.put_object(Bucket="ranges", Key="r", Body=body)
    cases = {"bytes=0-9": (0, 9), "bytes=100-": (100, 10239), "bytes=-10": (10230, 10239),
             "bytes=10000-99999": (10000, 10239), "bytes=-20000": (0, 10239),
             "bytes=10239-10239": (10239, 10239)}
    for rng, (a, b) in cases.items():
        g = s3.get_object(Bucket="ranges", Key="r", Range=rng)
        assert g["ResponseMetadata"]["HTTPStatusCode"] == 206, rng
        assert g["ContentRange"] == "bytes %d-%d/10240" % (a, b), rng
        assert g["ContentLength"] == b - a + 1
        assert g["Body"].read() == body[a:b + 1], rng
    for rng in ["bytes=10240-", "bytes=20000-30000", "bytes=-0"]:
        r = fails("InvalidRange", 416, s3.get_object, Bucket="ranges", Key="r", Range=rng)
        assert r["ResponseMetadata"]["HTTPHeaders"]["content-range"] == "bytes */10240"
    # Ignored like S3 does: whole object with 200.
    for rng in ["bytes=5-2", "items=0-1", "bytes=0-1,3-4", "garbage"]:
        g = s3.get_object(Bucket="ranges", Key="r", Range=rng)
        assert g["ResponseMetadata"]["HTTPStatusCode"] == 200, rng
        assert g["Body"].read() == body
    s3.put_object(Bucket="ranges", Key="empty", Body=b"")
    fails("InvalidRange", 416, s3.get_object, Bucket="ranges", Key="empty", Range="bytes=0-0")
    h = s3.head_object(Bucket="ranges", Key="r", Range="bytes=0-99")
    assert h["ResponseMetadata"]["HTTPStatusCode"] == 206 and h["ContentLength"] == 100


def test_conditionals_and_overrides(s3):
    s3.create_bucket(Bucket="cond")
    etag = s3.put_object(Bucket="cond", Key="c", Body=b"conditional")["ETag"]
    lm = s3.head_object(Bucket="cond", Key="c")["LastModified"]
    assert s3.get_object(Bucket="cond", Key="c", IfMatch=etag)["Body"].read() == b"conditional"
    fails("PreconditionFailed", 412, s3.get_object, Bucket="cond", Key="c", IfMatch='"abc"')
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.get_object(Bucket="cond", Key="c", IfNoneMatch=etag)
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert ei.value.response["ResponseMetadata"]["HTTPHeaders"]["etag"] == etag
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.get_object(Bucket="cond", Key="c", IfModifiedSince=lm)
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    fails("PreconditionFailed", 412, s3.get_object, Bucket="cond", Key="c",
          IfUnmodifiedSince="Sat, 01 Jan 2000 00:00:00 GMT")
    assert s3.get_object(Bucket="cond", Key="c", IfModifiedSince="Sat, 01 Jan 2000 00:00:00 GMT")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.head_object(Bucket="cond", Key="c", IfMatch='"nomatch"')
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    # Conditional PUT: If-None-Match: * refuses an overwrite.
    def no_overwrite(params, **kw):
        params["headers"]["If-None-Match"] = "*"
    c = s3.meta.events.register("before-call.s3.PutObject", no_overwrite)
    try:
        fails("PreconditionFailed", 412, s3.put_object, Bucket="cond", Key="c", Body=b"x")
        s3.put_object(Bucket="cond", Key="fresh", Body=b"x")
    finally:
        s3.meta.events.unregister("before-call.s3.PutObject", c)
    g = s3.get_object(Bucket="cond", Key="c", ResponseContentType="application/x-test",
                      ResponseContentDisposition="inline", ResponseCacheControl="no-cache",
                      ResponseContentLanguage="fr", ResponseExpires="Thu, 01 Jan 2037 00:00:00 GMT",
                      ResponseContentEncoding="gzip")
    assert g["ContentType"] == "application/x-test"
    assert g["ContentDisposition"] == "inline"
    assert g["CacheControl"] == "no-cache"
    assert g["ContentLanguage"] == "fr"
    assert g["ContentEncoding"] == "gzip"


def test_copy_object(s3):
    s3.create_bucket(Bucket="copy")
    s3.create_bucket(Bucket="copy2")
    s3.put_object(Bucket="copy", Key="src", Body=b"copy me", ContentType="text/x-src",
                  Metadata={"a": "1"}, Tagging="t=1")
    r = s3.copy_object(Bucket="copy2", Key="dst/x", CopySource={"Bucket": "copy", "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == '"%s"' % md5hex(b"copy me")
    g = s3.get_object(Bucket="copy2", Key="dst/x")
    assert g["Body"].read() == b"copy me"
    assert g["ContentType"] == "text/x-src" and g["Metadata"] == {"a": "1"}
    assert s3.get_object_tagging(Bucket="copy2", Key="dst/x")["TagSet"] == \
        [{"Key": "t", "Value": "1"}]
    s3.copy_object(Bucket="copy", Key="rep", CopySource="copy/src", MetadataDirective="REPLACE",
                   ContentType="text/x-new", Metadata={"b": "2"})
    g = s3.get_object(Bucket="copy", Key="rep")
    assert g["ContentType"] == "text/x-new" and g["Metadata"] == {"b": "2"}
    # Onto itself: refused without REPLACE, a metadata change with it.
    fails("InvalidRequest", 400, s3.copy_object, Bucket="copy", Key="src", CopySource="copy/src")
    etag = s3.head_object(Bucket="copy", Key="src")["ETag"]
    s3.copy_object(Bucket="copy", Key="src", CopySource="copy/src", MetadataDirective="REPLACE",
                   Metadata={"c": "3"}, ContentType="text/x-self")
    h = s3.head_object(Bucket="copy", Key="src")
    assert h["Metadata"] == {"c": "3"} and h["ContentType"] == "text/x-self"
    assert h["ETag"] == etag
    assert s3.get_object(Bucket="copy", Key="src")["Body"].read() == b"copy me"
    fails("NoSuchKey", 404, s3.copy_object, Bucket="copy", Key="x", CopySource="copy/nope")
    fails("NoSuchBucket", 404, s3.copy_object, Bucket="copy", Key="x", CopySource="nob/src")
    fails("PreconditionFailed", 412, s3.copy_object, Bucket="copy", Key="x",
          CopySource="copy/src", CopySourceIfMatch='"0000"')
    s3.copy_object(Bucket="copy", Key="x", CopySource="copy/src", CopySourceIfMatch=etag)


def test_delete_and_delete_objects(s3):
    s3.create_bucket(Bucket="del")
    for k in ["a", "b/c", "b/d/e", "f"]:
        s3.put_object(Bucket="del", Key=k, Body=k.encode())
    r = s3.delete_object(Bucket="del", Key="a")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.delete_object(Bucket="del", Key="a")["ResponseMetadata"]["HTTPStatusCode"] == 204
    r = s3.delete_objects(Bucket="del", Delete={"Objects": [{"Key": "b/c"}, {"Key": "missing"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["b/c", "missing"]
    r = s3.delete_objects(Bucket="del", Delete={"Objects": [{"Key": "b/d/e"}, {"Key": "f"}],
                                                "Quiet": True})
    assert "Deleted" not in r and "Errors" not in r
    assert s3.list_objects_v2(Bucket="del")["KeyCount"] == 0
    s3.delete_bucket(Bucket="del")  # implicit directories went with their objects


def test_object_tagging(s3):
    s3.create_bucket(Bucket="tags")
    s3.put_object(Bucket="tags", Key="t", Body=b"x", Tagging="a=1&b=2")
    ts = s3.get_object_tagging(Bucket="tags", Key="t")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in ts) == [("a", "1"), ("b", "2")]
    assert s3.get_object(Bucket="tags", Key="t")["TagCount"] == 2
    s3.put_object_tagging(Bucket="tags", Key="t", Tagging={"TagSet": [{"Key": "z", "Value": ""}]})
    assert s3.get_object_tagging(Bucket="tags", Key="t")["TagSet"] == [{"Key": "z", "Value": ""}]
    s3.delete_object_tagging(Bucket="tags", Key="t")
    assert s3.get_object_tagging(Bucket="tags", Key="t")["TagSet"] == []
    fails("InvalidTag", 400, s3.put_object_tagging, Bucket="tags", Key="t",
          Tagging={"TagSet": [{"Key": "aws:x", "Value": "1"}]})
    fails("NoSuchKey", 404, s3.get_object_tagging, Bucket="tags", Key="none")
    assert s3.get_object(Bucket="tags", Key="t")["Body"].read() == b"x"


def test_bucket_tagging_cors_lifecycle(srv, s3):
    s3.create_bucket(Bucket="conf")
    fails("NoSuchTagSet", 404, s3.get_bucket_tagging, Bucket="conf")
    s3.put_bucket_tagging(Bucket="conf", Tagging={"TagSet": [{"Key": "team", "Value": "ml"}]})
    assert s3.get_bucket_tagging(Bucket="conf")["TagSet"] == [{"Key": "team", "Value": "ml"}]
    fails("InvalidTag", 400, s3.put_bucket_tagging, Bucket="conf",
          Tagging={"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]})
    s3.delete_bucket_tagging(Bucket="conf")
    fails("NoSuchTagSet", 404, s3.get_bucket_tagging, Bucket="conf")

    fails("NoSuchCORSConfiguration", 404, s3.get_bucket_cors, Bucket="conf")
    rules = [{"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT"],
              "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]
    s3.put_bucket_cors(Bucket="conf", CORSConfiguration={"CORSRules": rules})
    got = s3.get_bucket_cors(Bucket="conf")["CORSRules"]
    assert got[0]["AllowedOrigins"] == ["https://app.example"]
    assert got[0]["AllowedMethods"] == ["GET", "PUT"]
    r = requests.options(srv.endpoint + "/conf/k", timeout=10,
                         headers={"Origin": "https://app.example",
                                  "Access-Control-Request-Method": "PUT",
                                  "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "PUT" in r.headers["Access-Control-Allow-Methods"]
    r = requests.options(srv.endpoint + "/conf/k", timeout=10,
                         headers={"Origin": "https://evil.example",
                                  "Access-Control-Request-Method": "GET"})
    assert r.status_code == 403
    s3.put_object(Bucket="conf", Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "conf", "Key": "k"})
    r = requests.get(url, headers={"Origin": "https://app.example"}, timeout=10)
    assert r.headers.get("Access-Control-Allow-Origin") == "https://app.example"
    fails("MalformedXML", 400, s3.put_bucket_cors, Bucket="conf",
          CORSConfiguration={"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": []}]})
    s3.delete_bucket_cors(Bucket="conf")
    fails("NoSuchCORSConfiguration", 404, s3.get_bucket_cors, Bucket="conf")

    fails("NoSuchLifecycleConfiguration", 404, s3.get_bucket_lifecycle_configuration,
          Bucket="conf")
    lc = {"Rules": [{"ID": "expire-tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
                     "Expiration": {"Days": 7}}]}
    s3.put_bucket_lifecycle_configuration(Bucket="conf", LifecycleConfiguration=lc)
    got = s3.get_bucket_lifecycle_configuration(Bucket="conf")["Rules"]
    assert got[0]["ID"] == "expire-tmp" and got[0]["Expiration"]["Days"] == 7
    bad = {"Rules": [{"ID": "x", "Status": "Enabled", "Filter": {"Prefix": ""},
                      "Expiration": {"Days": 0}}]}
    fails("InvalidArgument", 400, s3.put_bucket_lifecycle_configuration, Bucket="conf",
          LifecycleConfiguration=bad)
    s3.delete_bucket_lifecycle(Bucket="conf")
    fails("NoSuchLifecycleConfiguration", 404, s3.get_bucket_lifecycle_configuration,
          Bucket="conf")


# ---- listings ---------------------------------------------------------------------------------


def test_list_order_pagination_and_delimiters(s3):
    s3.create_bucket(Bucket="list")
    keys = sorted(["a.txt", "a/b", "a/c/d", "a/c/e", "a0", "bb", "b/x y+z", "c/ü", "c/~t",
                   "d/"] + ["p/%03d" % i for i in range(25)])
    for k in keys:
        s3.put_object(Bucket="list", Key=k, Body=b"" if k.endswith("/") else k.encode())
    got = [o["Key"] for o in s3.list_objects_v2(Bucket="list")["Contents"]]
    assert got == sorted(keys, key=lambda k: k.encode())
    # v2 pages of 4 keys, with and without a delimiter: nothing repeated or skipped.
    for delim in [None, "/"]:
        seen, token = [], None
        while True:
            kw = {"Bucket": "list", "MaxKeys": 4}
            if delim:
                kw["Delimiter"] = delim
            if token:
                kw["ContinuationToken"] = token
            r = s3.list_objects_v2(**kw)
            page = [o["Key"] for o in r.get("Contents", [])] + \
                [p["Prefix"] for p in r.get("CommonPrefixes", [])]
            assert r["KeyCount"] == len(page) <= 4
            seen += page
            if not r["IsTruncated"]:
                break
            token = r["NextContinuationToken"]
        if delim:
            assert sorted(seen) == ["a.txt", "a/", "a0", "b/", "bb", "c/", "d/", "p/"]
        else:
            assert seen == got
    # v1 with markers, through the paginator.
    pages = s3.get_paginator("list_objects").paginate(Bucket="list", Prefix="p/",
                                                      PaginationConfig={"PageSize": 10})
    assert [o["Key"] for p in pages for o in p["Contents"]] == ["p/%03d" % i for i in range(25)]
    r = s3.list_objects(Bucket="list", Delimiter="/", Prefix="a/")
    assert [o["Key"] for o in r["Contents"]] == ["a/b"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/c/"]
    r = s3.list_objects(Bucket="list", Marker="p/020", Prefix="p/")
    assert [o["Key"] for o in r["Contents"]] == ["p/021", "p/022", "p/023", "p/024"]
    r = s3.list_objects_v2(Bucket="list", StartAfter="b", Delimiter="/")
    assert [o["Key"] for o in r.get("Contents", [])] == ["bb"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/", "c/", "d/", "p/"]
    r = s3.list_objects_v2(Bucket="list", MaxKeys=0)
    assert r["KeyCount"] == 0
    # encoding-type=url asked for explicitly: boto leaves the keys as sent.
    r = s3.list_objects_v2(Bucket="list", Prefix="b/", EncodingType="url")
    assert [o["Key"] for o in r["Contents"]] == ["b/x+y%2Bz"]
    # boto's own list_objects asks for it and decodes.
    assert [o["Key"] for o in s3.list_objects(Bucket="list", Prefix="b/")["Contents"]] == \
        ["b/x y+z"]
    r = s3.list_objects_v2(Bucket="list", Prefix="c/", FetchOwner=True)
    assert [o["Key"] for o in r["Contents"]] == ["c/~t", "c/ü"]
    assert r["Contents"][0]["Owner"]["ID"]
    for o in r["Contents"]:
        assert o["ETag"] == '"%s"' % md5hex(o["Key"].encode())
        assert o["Size"] == len(o["Key"].encode())
    fails("InvalidArgument", 400, s3.list_objects_v2, Bucket="list", ContinuationToken="!!!")


# ---- multipart --------------------------------------------------------------------------------


def test_multipart_api(s3):
    s3.create_bucket(Bucket="mpu")
    up = s3.create_multipart_upload(Bucket="mpu", Key="big/obj", ContentType="application/x-mp",
                                    Metadata={"m": "1"})
    uid = up["UploadId"]
    assert all(c.isalnum() for c in uid)
    p1 = b"a" * (5 << 20)
    p2 = b"b" * (5 << 20)
    p3 = b"tail"
    e1 = s3.upload_part(Bucket="mpu", Key="big/obj", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    e3 = s3.upload_part(Bucket="mpu", Key="big/obj", UploadId=uid, PartNumber=3, Body=p3)["ETag"]
    e2 = s3.upload_part(Bucket="mpu", Key="big/obj", UploadId=uid, PartNumber=2, Body=p2)["ETag"]
    assert e1 == '"%s"' % md5hex(p1)
    parts = s3.list_parts(Bucket="mpu", Key="big/obj", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == \
        [(1, e1, len(p1)), (2, e2, len(p2)), (3, e3, len(p3))]
    r = s3.list_parts(Bucket="mpu", Key="big/obj", UploadId=uid, MaxParts=2)
    assert r["IsTruncated"] and r["NextPartNumberMarker"] == 2
    r = s3.list_parts(Bucket="mpu", Key="big/obj", UploadId=uid, PartNumberMarker=2)
    assert [p["PartNumber"] for p in r["Parts"]] == [3]
    ups = s3.list_multipart_uploads(Bucket="mpu")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in ups] == [("big/obj", uid)]
    # Errors: a wrong ETag, order, too small a part, unknown upload.
    fails("InvalidPart", 400, s3.complete_multipart_upload, Bucket="mpu", Key="big/obj",
          UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e2}]})
    fails("InvalidPartOrder", 400, s3.complete_multipart_upload, Bucket="mpu", Key="big/obj",
          UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2},
                                                   {"PartNumber": 1, "ETag": e1}]})
    e4 = s3.upload_part(Bucket="mpu", Key="big/obj", UploadId=uid, PartNumber=4, Body=b"x")["ETag"]
    fails("EntityTooSmall", 400, s3.complete_multipart_upload, Bucket="mpu", Key="big/obj",
          UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 3, "ETag": e3},
                                                   {"PartNumber": 4, "ETag": e4}]})
    fails("NoSuchUpload", 404, s3.upload_part, Bucket="mpu", Key="big/obj",
          UploadId="0" * 32, PartNumber=1, Body=b"x")
    fails("NoSuchUpload", 404, s3.list_parts, Bucket="mpu", Key="other", UploadId=uid)
    fails("NoSuchKey", 404, s3.get_object, Bucket="mpu", Key="big/obj")
    r = s3.complete_multipart_upload(
        Bucket="mpu", Key="big/obj", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2},
                                   {"PartNumber": 3, "ETag": e3}]})
    want = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in [p1, p2, p3])).hexdigest()
    assert r["ETag"] == '"%s-3"' % want
    g = s3.get_object(Bucket="mpu", Key="big/obj")
    data = g["Body"].read()
    assert data == p1 + p2 + p3
    assert g["ETag"] == '"%s-3"' % want
    assert g["ContentType"] == "application/x-mp" and g["Metadata"] == {"m": "1"}
    assert s3.list_multipart_uploads(Bucket="mpu").get("Uploads", []) == []
    fails("NoSuchUpload", 404, s3.list_parts, Bucket="mpu", Key="big/obj", UploadId=uid)
    # Abort leaves nothing.
    uid = s3.create_multipart_upload(Bucket="mpu", Key="gone")["UploadId"]
    s3.upload_part(Bucket="mpu", Key="gone", UploadId=uid, PartNumber=1, Body=b"x")
    r = s3.abort_multipart_upload(Bucket="mpu", Key="gone", UploadId=uid)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    fails("NoSuchUpload", 404, s3.abort_multipart_upload, Bucket="mpu", Key="gone", UploadId=uid)
    fails("NoSuchKey", 404, s3.get_object, Bucket="mpu", Key="gone")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="mpu")["Contents"]] == ["big/obj"]


def test_upload_part_copy(s3):
    s3.create_bucket(Bucket="mpcopy")
    src = bytes(range(256)) * (24 << 10)  # 6 MiB
    s3.put_object(Bucket="mpcopy", Key="src", Body=src)
    uid = s3.create_multipart_upload(Bucket="mpcopy", Key="dst")["UploadId"]
    r1 = s3.upload_part_copy(Bucket="mpcopy", Key="dst", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": "mpcopy", "Key": "src"})
    assert r1["CopyPartResult"]["ETag"] == '"%s"' % md5hex(src)
    r2 = s3.upload_part_copy(Bucket="mpcopy", Key="dst", UploadId=uid, PartNumber=2,
                             CopySource="mpcopy/src", CopySourceRange="bytes=10-109")
    assert r2["CopyPartResult"]["ETag"] == '"%s"' % md5hex(src[10:110])
    fails("InvalidRange", 416, s3.upload_part_copy, Bucket="mpcopy", Key="dst", UploadId=uid,
          PartNumber=3, CopySource="mpcopy/src", CopySourceRange="bytes=0-%d" % len(src))
    fails("NoSuchKey", 404, s3.upload_part_copy, Bucket="mpcopy", Key="dst", UploadId=uid,
          PartNumber=3, CopySource="mpcopy/nope")
    fails("PreconditionFailed", 412, s3.upload_part_copy, Bucket="mpcopy", Key="dst",
          UploadId=uid, PartNumber=3, CopySource="mpcopy/src", CopySourceIfMatch='"00"')
    s3.complete_multipart_upload(
        Bucket="mpcopy", Key="dst", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r1["CopyPartResult"]["ETag"]},
                                   {"PartNumber": 2, "ETag": r2["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket="mpcopy", Key="dst")["Body"].read() == src + src[10:110]
    # Upload operations on a bucket that does not exist.
    fails("NoSuchBucket", 404, s3.list_parts, Bucket="nobucket", Key="k", UploadId=uid)
    fails("NoSuchBucket", 404, s3.upload_part, Bucket="nobucket", Key="k", UploadId=uid,
          PartNumber=1, Body=b"x")
    fails("NoSuchBucket", 404, s3.upload_part_copy, Bucket="nobucket", Key="k", UploadId=uid,
          PartNumber=1, CopySource="mpcopy/src")
    fails("NoSuchBucket", 404, s3.abort_multipart_upload, Bucket="nobucket", Key="k",
          UploadId=uid)


def test_list_multipart_uploads_markers(s3):
    s3.create_bucket(Bucket="mpl")
    ids = {}
    for k in ["x/1", "x/2", "y", "z"]:
        ids[k] = s3.create_multipart_upload(Bucket="mpl", Key=k)["UploadId"]
    r = s3.list_multipart_uploads(Bucket="mpl", Delimiter="/")
    assert [u["Key"] for u in r["Uploads"]] == ["y", "z"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["x/"]
    r = s3.list_multipart_uploads(Bucket="mpl", MaxUploads=2)
    assert r["IsTruncated"] and [u["Key"] for u in r["Uploads"]] == ["x/1", "x/2"]
    r = s3.list_multipart_uploads(Bucket="mpl", KeyMarker=r["NextKeyMarker"],
                                  UploadIdMarker=r["NextUploadIdMarker"])
    assert [u["Key"] for u in r["Uploads"]] == ["y", "z"]
    r = s3.list_multipart_uploads(Bucket="mpl", Prefix="x/")
    assert [u["Key"] for u in r["Uploads"]] == ["x/1", "x/2"]
    for k, uid in ids.items():
        s3.abort_multipart_upload(Bucket="mpl", Key=k, UploadId=uid)


# ---- authentication ---------------------------------------------------------------------------


def test_auth_errors_and_presigned(srv, s3):
    s3.create_bucket(Bucket="auth")
    s3.put_object(Bucket="auth", Key="k", Body=b"secret bytes")
    bad = srv.client(secret="wrong" + srv.secret_key[5:])
    fails("SignatureDoesNotMatch", 403, bad.get_object, Bucket="auth", Key="k")
    fails("SignatureDoesNotMatch", 403, bad.put_object, Bucket="auth", Key="k2", Body=b"x")
    anon = srv.client(anonymous=True)
    fails("AccessDenied", 403, anon.get_object, Bucket="auth", Key="k")
    fails("AccessDenied", 403, anon.list_buckets)
    fails("AccessDenied", 403, anon.put_object, Bucket="auth", Key="x", Body=b"x")
    unknown = srv.client()
    unknown._request_signer._credentials.access_key = "NOSUCHKEY"
    fails("InvalidAccessKeyId", 403, unknown.list_buckets)
    # Presigned GET and PUT (SigV4 query), and SigV2 query.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "auth", "Key": "k"},
                                    ExpiresIn=60)
    assert requests.get(url, timeout=10).content == b"secret bytes"
    assert requests.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"),
                        timeout=10).status_code == 403
    put = s3.generate_presigned_url("put_object", Params={"Bucket": "auth", "Key": "pre"},
                                    ExpiresIn=60)
    assert requests.put(put, data=b"presigned put", timeout=10).status_code == 200
    assert s3.get_object(Bucket="auth", Key="pre")["Body"].read() == b"presigned put"
    v2 = srv.client(signature="s3")
    url = v2.generate_presigned_url("get_object", Params={"Bucket": "auth", "Key": "k"},
                                    ExpiresIn=60)
    assert requests.get(url, timeout=10).content == b"secret bytes"
    assert v2.get_object(Bucket="auth", Key="k")["Body"].read() == b"secret bytes"


def test_raw_http(srv, s3):
    s3.create_bucket(Bucket="raw")
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    c.request("GET", "/raw/k")
    r = c.getresponse()
    body = r.read()
    assert r.status == 403 and b"<Code>AccessDenied</Code>" in body
    assert r.getheader("x-amz-request-id") and r.getheader("Content-Type") == "application/xml"
    # A request the gateway has no operation for.
    c.request("GET", "/raw?policy", headers={})
    r = c.getresponse()
    r.read()
    assert r.status in (403, 501)
    # Unauthenticated body with Expect: 100-continue is refused before it is sent.
    c.putrequest("PUT", "/raw/k")
    c.putheader("Content-Length", "1000000")
    c.putheader("Expect", "100-continue")
    c.endheaders()
    r = c.getresponse()
    assert r.status == 403
    r.read()
    c.close()
    # NotImplemented for a sub-resource without a handler (signed).
    fails("NotImplemented", 501, s3.get_bucket_policy, Bucket="raw")
    # The admin endpoints still answer.
    assert urllib.request.urlopen(srv.endpoint + "/health", timeout=10).status == 200


def test_streaming_signed_upload(srv):
    # boto3 signs payloads chunk by chunk only over https; the aws cli with
    # payload signing on http uses a signed SHA-256 of the whole body.
    s3 = srv.client(s3={"addressing_style": "path", "payload_signing_enabled": True})
    s3.create_bucket(Bucket="signed")
    body = b"signed payload " * 1000
    s3.put_object(Bucket="signed", Key="k", Body=body)
    assert s3.get_object(Bucket="signed", Key="k")["Body"].read() == body
