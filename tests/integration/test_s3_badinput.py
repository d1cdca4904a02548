"""Bad input against the gateway: lying Content-Length, clients that
disconnect mid-upload, aws-chunked bodies with a bad chunk signature,
malformed and oversized XML, many idle connections. Nothing may crash the
server or leave a partial object."""
import datetime
import hashlib
import hmac
import socket
import time

import botocore.exceptions
import pytest

from test_s3_helpers import REGION, S3Server, error_code


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = S3Server(str(tmp_path_factory.mktemp("s3bad") / "data"))
    s.client().create_bucket(Bucket="bad")
    yield s
    assert s.server.proc.poll() is None, "server died: " + s.server.stderr()
    assert s.stop() == 0


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_request(srv, method, path, headers, payload_hash, now=None, query=""):
    """SigV4 header auth for a raw request; returns (headers, signature, scope, amzdate)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amzdate = now.strftime("%Y%m%dT%H%M%SZ")
    date = amzdate[:8]
    h = dict((k.lower(), v) for k, v in headers.items())
    h["host"] = "127.0.0.1:%d" % srv.port
    h["x-amz-date"] = amzdate
    h["x-amz-content-sha256"] = payload_hash
    names = sorted(h)
    canon = "\n".join([method, path, query, "".join("%s:%s\n" % (n, h[n]) for n in names),
                       ";".join(names), payload_hash])
    scope = "%s/%s/s3/aws4_request" % (date, REGION)
    sts = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (amzdate, scope,
                                           hashlib.sha256(canon.encode()).hexdigest())
    key = _hmac(("AWS4" + srv.secret_key).encode(), date)
    for part in (REGION, "s3", "aws4_request"):
        key = _hmac(key, part)
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        srv.access_key, scope, ";".join(names), sig)
    return h, sig, scope, amzdate, key


def chunked_body(chunks, seed, scope, amzdate, key, corrupt=None):
    empty = hashlib.sha256(b"").hexdigest()
    prev, out = seed, b""
    for i, c in enumerate(list(chunks) + [b""]):
        sts = "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s" % (
            amzdate, scope, prev, empty, hashlib.sha256(c).hexdigest())
        sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        prev = sig
        if corrupt == i:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        out += b"%x;chunk-signature=%s\r\n" % (len(c), sig.encode()) + c + b"\r\n"
    return out


def raw(srv, method, path, headers, body=b"", send=None, read=True):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    req = "%s %s HTTP/1.1\r\n" % (method, path) + \
        "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
    s.sendall(req.encode() + (body if send is None else send))
    if not read:
        return s
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data:
            head, rest = data.split(b"\r\n\r\n", 1)
            cl = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
            if cl and len(rest) >= int(cl[0].split(b":")[1]):
                break
    s.close()
    return data


def streaming_put(srv, key, chunks, corrupt=None, truncate=None):
    total = sum(len(c) for c in chunks)
    hdrs = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(total)}
    h, seed, scope, amzdate, skey = signed_request(
        srv, "PUT", "/bad/" + key, hdrs, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    body = chunked_body(chunks, seed, scope, amzdate, skey, corrupt)
    if truncate:
        body = body[:truncate]
    h["content-length"] = str(len(body))
    h["connection"] = "close"
    return raw(srv, "PUT", "/bad/" + key, h, body)


def exists(srv, key):
    try:
        srv.client().head_object(Bucket="bad", Key=key)
        return True
    except botocore.exceptions.ClientError:
        return False


def test_streaming_signed_chunks(srv):
    chunks = [b"a" * 65536, b"b" * 65536, b"c" * 1000]
    r = streaming_put(srv, "streamed", chunks)
    assert r.startswith(b"HTTP/1.1 200"), r[:300]
    body = srv.client().get_object(Bucket="bad", Key="streamed")["Body"].read()
    assert body == b"".join(chunks)
    # A bad signature on any chunk: refused, nothing published.
    for i in range(4):
        r = streaming_put(srv, "badchunk", chunks, corrupt=i)
        assert r.startswith(b"HTTP/1.1 403") and b"SignatureDoesNotMatch" in r, r[:300]
        assert not exists(srv, "badchunk")
    # Truncated framing (the final chunk missing).
    r = streaming_put(srv, "truncated", chunks, truncate=65536 + 100)
    assert not exists(srv, "truncated")


def test_lying_content_length_and_disconnects(srv):
    s3 = srv.client()
    s3.put_object(Bucket="bad", Key="keep", Body=b"old bytes")
    for key in ["keep", "new"]:
        h, *_ = signed_request(srv, "PUT", "/bad/" + key, {"content-length": "1000000"},
                               "UNSIGNED-PAYLOAD")
        s = raw(srv, "PUT", "/bad/" + key, h, send=b"x" * 300000, read=False)
        time.sleep(0.2)
        s.close()  # mid-body
    time.sleep(0.5)
    assert s3.get_object(Bucket="bad", Key="keep")["Body"].read() == b"old bytes"
    assert not exists(srv, "new")
    # A signed SHA-256 that does not match the body.
    h, *_ = signed_request(srv, "PUT", "/bad/sha", {"content-length": "5"},
                           hashlib.sha256(b"other").hexdigest())
    r = raw(srv, "PUT", "/bad/sha", h, b"hello")
    assert b"XAmzContentSHA256Mismatch" in r, r[:300]
    assert not exists(srv, "sha")
    # The server still answers.
    assert s3.get_object(Bucket="bad", Key="keep")["Body"].read() == b"old bytes"


def test_malformed_and_oversized_xml(srv):
    for body, code in [(b"<Delete><Object><Key>a</Key></Object>", "MalformedXML"),
                       (b"not xml at all", "MalformedXML"),
                       (b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>",
                        "MalformedXML"),
                       (b"<Delete>" + b" " * (3 << 20) + b"</Delete>", None)]:
        h, *_ = signed_request(srv, "POST", "/bad", {"content-length": str(len(body))},
                               hashlib.sha256(body).hexdigest(), query="delete=")
        r = raw(srv, "POST", "/bad?delete", h, body)
        assert r.startswith(b"HTTP/1.1 400"), r[:300]
        if code:
            assert code.encode() in r, r[:300]
    s3 = srv.client()
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.put_object_tagging(Bucket="bad", Key="keep",
                              Tagging={"TagSet": [{"Key": "k%d" % i, "Value": "v"}
                                                  for i in range(11)]})
    assert error_code(ei)[0] in ("InvalidTag", "BadRequest")


def test_many_idle_connections(srv):
    socks = []
    try:
        for _ in range(300):
            socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=10))
        s3 = srv.client()
        s3.put_object(Bucket="bad", Key="busy", Body=b"still serving")
        assert s3.get_object(Bucket="bad", Key="busy")["Body"].read() == b"still serving"
    finally:
        for s in socks:
            s.close()


def test_skew_size_and_method_errors(srv):
    # A request signed 20 minutes ago: RequestTimeTooSkewed.
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    h, *_ = signed_request(srv, "GET", "/bad/keep", {}, "UNSIGNED-PAYLOAD", now=old)
    r = raw(srv, "GET", "/bad/keep", h)
    assert r.startswith(b"HTTP/1.1 403") and b"RequestTimeTooSkewed" in r, r[:300]
    # 6 GiB announced with Expect: 100-continue: refused before the body.
    h, *_ = signed_request(srv, "PUT", "/bad/huge", {"content-length": str(6 << 30)},
                           "UNSIGNED-PAYLOAD")
    h["expect"] = "100-continue"
    r = raw(srv, "PUT", "/bad/huge", h)
    assert r.startswith(b"HTTP/1.1 400") and b"EntityTooLarge" in r, r[:300]
    # A method S3 has no operation for.
    h, *_ = signed_request(srv, "PATCH", "/bad/keep", {}, "UNSIGNED-PAYLOAD")
    r = raw(srv, "PATCH", "/bad/keep", h)
    assert r.startswith(b"HTTP/1.1 405") and b"MethodNotAllowed" in r, r[:300]
    assert not exists(srv, "huge")


def test_error_answers_keep_the_connection(srv):
    """Errors that AWS answers on a kept-alive connection (404, 403 after a
    read request, 304, 412) and the server's own endpoints leave the
    connection open: the next request goes over the same socket. Only a
    request whose body is refused unread closes it."""
    import http.client
    srv.client().put_object(Bucket="bad", Key="ka", Body=b"kept alive")
    etag = srv.client().head_object(Bucket="bad", Key="ka")["ETag"]
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)

    def ask(method, path, headers=None, body=None, sign=True, secret=None):
        h = dict(headers or {})
        if sign:
            h, *_ = signed_request(srv, method, path, h, "UNSIGNED-PAYLOAD")
            if secret:  # a wrong signature
                h["authorization"] = h["authorization"][:-4] + "0000"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, r.getheader("Connection"), data

    # An anonymous GET in a bucket that does not exist: refused before
    # the handler, on the request's first call.
    st, conn, body = ask("GET", "/no-such-bucket/x", sign=False)
    assert (st, conn) == (404, None) and b"NoSuchBucket" in body
    sock = c.sock
    assert sock is not None  # not closed after the 404
    for method, path, headers, want in [
            ("GET", "/bad/no-such-key", {}, 404),
            ("GET", "/bad/ka", {}, 200),
            ("GET", "/no-such-bucket/x", {}, 404),
            ("GET", "/bad/ka", {"If-None-Match": etag}, 304),
            ("GET", "/bad/ka", {"If-Match": '"0123"'}, 412),
            ("HEAD", "/bad/no-such-key", {}, 404),
            ("GET", "/bad/ka", {}, 200)]:
        st, conn, _ = ask(method, path, headers)
        assert (st, conn) == (want, None), (method, path, headers)
        assert c.sock is sock, (method, path, headers)
    st, conn, body = ask("GET", "/bad/ka", secret=True)
    assert (st, conn) == (403, None) and b"SignatureDoesNotMatch" in body
    assert c.sock is sock
    for path in ["/health", "/metrics", "/health"]:
        st, conn, _ = ask("GET", path, sign=False)
        assert (st, conn) == (200, None) and c.sock is sock, path
    # A body refused before it is read: the connection closes.
    st, conn, body = ask("PUT", "/no-such-bucket/x", body=b"x" * 1000)
    assert (st, conn) == (404, "close") and b"NoSuchBucket" in body
    c.close()
