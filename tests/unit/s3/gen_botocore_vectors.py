#!/usr/bin/env python3
"""Generates botocore_vectors.h: requests exactly as boto3/botocore sign
them (SigV4 header, presigned, SigV2, path and virtual-hosted style, signed
and aws-chunked payloads), captured just before they would be sent. The C
test (test_botocore.c) must authenticate every one and verify its payload.

Run: python3 tests/unit/s3/gen_botocore_vectors.py > tests/unit/s3/botocore_vectors.h
Needs boto3 (any recent version); no network: sending is intercepted.
"""
import io
import re
import sys
from urllib.parse import urlsplit

import boto3
import botocore
from botocore.config import Config

AK = "AKIAIOSFODNN7EXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEYS = ["plain.txt", "dir/sub/file", "a b+c~d=e&f", "caf\u00e9/\u00fc\u00f1\u00ee\u00e7\u00f8d\u00e9",
        "sp  ace", "pct%2Fliteral", "star*paren(1)!'", "semi;colon,comma@at$dollar",
        "tilde~under_score-dash.dot", "unicode/\u65e5\u672c\u8a9e\u30ad\u30fc"]


class Stop(Exception):
    pass


captured = []


def grab(request, **kwargs):
    captured.append(request)
    raise Stop()


def client(sig, style, endpoint="http://localhost:8080", **cfg):
    c = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=AK,
                     aws_secret_access_key=SK, region_name="us-east-1",
                     config=Config(signature_version=sig, s3={"addressing_style": style},
                                   retries={"max_attempts": 0}, **cfg))
    c.meta.events.register("before-send.s3", grab)
    return c


def call(name, fn, **kw):
    try:
        fn(**kw)
    except Stop:
        pass
    r = captured.pop()
    body = r.body
    if body is None:
        body = b""
    elif hasattr(body, "read"):
        body = body.read()
    elif isinstance(body, str):
        body = body.encode()
    emit(name, r.method, r.url, dict(r.headers), body)


def emit(name, method, url, headers, body):
    u = urlsplit(url)
    hdrs = [("Host", u.netloc)]
    for k, v in headers.items():
        if isinstance(v, bytes):
            v = v.decode()
        hdrs.append((k, v))
    vectors.append((name, method, u.path or "/", u.query, hdrs, body))


def cstr(b):
    if isinstance(b, str):
        b = b.encode()
    out = []
    for c in b:
        ch = chr(c)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif 32 <= c < 127 and ch != "?":
            out.append(ch)
        else:
            out.append("\\%03o" % c)
    return '"' + "".join(out) + '"'


vectors = []


def main():
    for style in ["path", "virtual"]:
        endpoint = "http://localhost:8080" if style == "path" else "http://s3.example.com:8080"
        c4 = client("s3v4", style, endpoint)
        for i, k in enumerate(KEYS):
            call(f"v4 {style} put {i}", c4.put_object, Bucket="bkt", Key=k, Body=b"hello " + k.encode())
            call(f"v4 {style} get {i}", c4.get_object, Bucket="bkt", Key=k, Range="bytes=0-3",
                 IfNoneMatch='"abc"', ResponseContentType="text/plain; charset=utf-8")
            call(f"v4 {style} list {i}", c4.list_objects_v2, Bucket="bkt", Prefix=k, Delimiter="/",
                 StartAfter=k + "!", EncodingType="url", MaxKeys=7)
            call(f"v4 {style} copy {i}", c4.copy_object, Bucket="bkt", Key=k + ".copy",
                 CopySource={"Bucket": "src", "Key": k, "VersionId": "v1"},
                 MetadataDirective="REPLACE", Metadata={"Color": "Red  Blue", "x": str(i)})
        call(f"v4 {style} list v1", c4.list_objects, Bucket="bkt", Marker="a b", Prefix="=&+")
        call(f"v4 {style} list buckets", c4.list_buckets)
        call(f"v4 {style} head bucket", c4.head_bucket, Bucket="bkt")
        call(f"v4 {style} delete objects", c4.delete_objects, Bucket="bkt",
             Delete={"Objects": [{"Key": k} for k in KEYS], "Quiet": True})
        call(f"v4 {style} create mpu", c4.create_multipart_upload, Bucket="bkt", Key="big file")
        call(f"v4 {style} upload part", c4.upload_part, Bucket="bkt", Key="big file",
             UploadId="u/1+2=", PartNumber=3, Body=b"x" * 1000)
        call(f"v4 {style} complete", c4.complete_multipart_upload, Bucket="bkt", Key="big file",
             UploadId="u/1+2=", MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"e1"'}]})
        call(f"v4 {style} tagging", c4.put_object_tagging, Bucket="bkt", Key="k",
             Tagging={"TagSet": [{"Key": "a b", "Value": "c=d"}]})
        call(f"v4 {style} put tagged", c4.put_object, Bucket="bkt", Key="t", Body=b"",
             Tagging="a=b&c=d e", ContentType="text/plain", CacheControl="no-cache",
             ContentDisposition='attachment; filename="x y"')
        call(f"v4 {style} versioning", c4.put_bucket_versioning, Bucket="bkt",
             VersioningConfiguration={"Status": "Enabled"})
        call(f"v4 {style} lifecycle", c4.get_bucket_lifecycle_configuration, Bucket="bkt")
        call(f"v4 {style} list versions", c4.list_object_versions, Bucket="bkt",
             KeyMarker="a b", VersionIdMarker="v=1")
        call(f"v4 {style} list uploads", c4.list_multipart_uploads, Bucket="bkt", Prefix="p q")
        # Presigned URLs: nothing is sent, the URL is the request.
        for i, k in enumerate(KEYS[:5]):
            for op in ["get_object", "put_object"]:
                url = c4.generate_presigned_url(op, Params={"Bucket": "bkt", "Key": k},
                                                ExpiresIn=3600)
                emit(f"v4 {style} presigned {op} {i}", "GET" if op == "get_object" else "PUT",
                     url, {}, b"")
        # aws-chunked with a trailing checksum (what botocore sends over TLS).
        ct = client("s3v4", style, endpoint.replace("http://", "https://"))
        call(f"v4 {style} chunked trailer", ct.put_object, Bucket="bkt", Key="chunked",
             Body=io.BytesIO(b"0123456789" * 300))
        # SigV2 (s3cmd's and old boto's scheme).
        c2 = client("s3", style, endpoint)
        for i, k in enumerate(KEYS):
            call(f"v2 {style} put {i}", c2.put_object, Bucket="bkt", Key=k, Body=b"v2 " + k.encode(),
                 ContentType="application/x-test", Metadata={"m": "1"})
            call(f"v2 {style} get {i}", c2.get_object, Bucket="bkt", Key=k,
                 ResponseContentDisposition="inline", VersionId="v 1")
        call(f"v2 {style} list", c2.list_objects, Bucket="bkt", Prefix="a b")
        call(f"v2 {style} tagging", c2.get_object_tagging, Bucket="bkt", Key="k k")
        call(f"v2 {style} list parts", c2.list_parts, Bucket="bkt", Key="k", UploadId="u+1")
        call(f"v2 {style} delete objects", c2.delete_objects, Bucket="bkt",
             Delete={"Objects": [{"Key": "a"}]})
        for i, k in enumerate(KEYS[:3]):
            url = c2.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": k},
                                            ExpiresIn=3600)
            emit(f"v2 {style} presigned {i}", "GET", url, {}, b"")

    print("/* Generated by gen_botocore_vectors.py with botocore %s: requests as boto3" %
          botocore.__version__)
    print(" * signs them. Do not edit; regenerate. */")
    print("// clang-format off")
    print("typedef struct bv_vector {")
    print("    const char *name, *method, *path, *query;")
    print("    size_t nh;")
    print("    s3_header h[24];")
    print("    const char *body;")
    print("    size_t body_len;")
    print("} bv_vector;")
    print("static const bv_vector bv_vectors[] = {")
    for name, method, path, query, hdrs, body in vectors:
        hs = ", ".join("{%s, %s}" % (cstr(k), cstr(v)) for k, v in hdrs)
        print("    {%s, %s, %s, %s, %d, {%s}, %s, %d}," % (
            cstr(name), cstr(method), cstr(path), cstr(query), len(hdrs), hs, cstr(body),
            len(body)))
    print("};")
    print("// clang-format on")


main()
