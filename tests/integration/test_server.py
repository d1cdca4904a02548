"""`nebula server`: admin endpoints, data-directory lock, credentials, bad
input, and graceful shutdown — all against the real binary."""
import http.client
import json
import os
import re
import signal
import socket
import stat
import time

import pytest

from nebula_proc import Server, run


def get(port, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict(r.getheaders()), body


# Prometheus text exposition format 0.0.4, checked strictly: every sample
# belongs to a family announced by # TYPE before it, names and labels are
# well formed, values are floats, no family is declared twice.
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s)(?:,(?:%s))*\})? (\S+)(?: (-?\d+))?$" % (NAME, LABEL, LABEL))
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_prometheus(text):
    assert text.endswith("\n")
    families, samples = {}, []
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            assert re.match(r"^# HELP %s .+$" % NAME, line), line
            continue
        if line.startswith("# TYPE "):
            m = re.match(r"^# TYPE (%s) (\w+)$" % NAME, line)
            assert m and m.group(2) in TYPES, line
            assert m.group(1) not in families, "family declared twice: " + line
            families[m.group(1)] = m.group(2)
            continue
        assert not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, "bad sample line: %r" % line
        name, value = m.group(1), m.group(3)
        try:
            float(value)  # +Inf, -Inf and NaN parse too
        except ValueError:
            raise AssertionError("bad sample value: %r" % line)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in families or base in families, "sample before its TYPE: " + line
        samples.append((name, m.group(2) or "", float(value)))
    return families, samples


def metric(samples, name, labels=""):
    for n, l, v in samples:
        if n == name and l == labels:
            return v
    return None


@pytest.fixture
def server(tmp_path):
    with Server(str(tmp_path / "data")) as s:
        yield s


def test_health(server):
    status, headers, body = get(server.port, "/health")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    h = json.loads(body)
    assert h["status"] == "ok"
    assert re.match(r"^\d+\.\d+\.\d+", h["version"])
    assert h["uptime_seconds"] >= 0
    r = run("version")
    assert h["version"] in r.stdout


def scrape_until(port, ready):
    """Scrapes /metrics until ready(samples) holds. Requests are counted when
    MHD reports them complete, which is after the client has its answer, so
    a scrape right after a request may not show it yet."""
    deadline = time.monotonic() + 20
    while True:
        status, headers, body = get(port, "/metrics")
        assert status == 200
        families, samples = parse_prometheus(body.decode())
        if ready(samples) or time.monotonic() > deadline:
            return headers, families, samples
        time.sleep(0.02)


def test_metrics_format_and_counters(server):
    for _ in range(3):
        assert get(server.port, "/health")[0] == 200
    assert get(server.port, "/nope")[0] == 404
    headers, families, samples = scrape_until(
        server.port, lambda sm: metric(sm, "nebula_http_requests_total", '{code="404"}') is not None
        and (metric(sm, "nebula_http_requests_total", '{code="200"}') or 0) >= 3)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert families["nebula_http_requests_total"] == "counter"
    assert metric(samples, "nebula_http_requests_total", '{code="200"}') >= 3
    assert metric(samples, "nebula_http_requests_total", '{code="404"}') == 1
    assert metric(samples, "nebula_uptime_seconds") >= 0
    assert metric(samples, "nebula_http_open_connections") >= 1  # this request's
    assert metric(samples, "process_resident_memory_bytes") > 1 << 20
    # Counters only grow: the scrape above is counted once it completes.
    before = metric(samples, "nebula_http_requests_total", '{code="200"}')
    _, _, samples2 = scrape_until(
        server.port, lambda sm: (metric(sm, "nebula_http_requests_total", '{code="200"}') or 0) >= before + 1)
    assert metric(samples2, "nebula_http_requests_total", '{code="200"}') >= before + 1


def test_prometheus_checker_rejects_bad_text():
    for bad in ["foo 1\n", "# TYPE foo counter\nfoo{a=b} 1\n", "# TYPE foo counter\nfoo x\n",
                "# TYPE foo counter\n# TYPE foo gauge\n", "# TYPE 1foo counter\n"]:
        with pytest.raises(AssertionError):
            parse_prometheus(bad)


def test_methods_and_keepalive(server):
    assert get(server.port, "/health", "POST")[0] == 405
    assert get(server.port, "/health", "HEAD")[0] == 200
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for _ in range(5):  # one connection, many requests
        c.request("GET", "/health")
        r = c.getresponse()
        assert r.status == 200
        r.read()
    c.close()


def test_banner_and_credentials_persist(tmp_path):
    data = str(tmp_path / "data")
    with Server(data) as s:
        ak, sk = s.field("access key"), s.field("secret key")
        assert s.field("data") == data
        assert re.match(r"^[A-Z2-7]{20}$", ak) and len(sk) == 40
        assert "generated" in "".join(s.banner)
        assert s.stop() == 0
    mode = os.stat(os.path.join(data, "root-credentials")).st_mode
    assert stat.S_IMODE(mode) == 0o600
    with Server(data) as s:
        assert (s.field("access key"), s.field("secret key")) == (ak, sk)
        assert "generated" not in "".join(s.banner)
        s.stop()
    env = {"NEBULA_ACCESS_KEY": "myaccess", "NEBULA_SECRET_KEY": "mysecret123"}
    with Server(data, env=env) as s:
        assert (s.field("access key"), s.field("secret key")) == ("myaccess", "mysecret123")
        s.stop()
    r = run("server", "--data", data, "--listen", "127.0.0.1:0",
            env={"NEBULA_ACCESS_KEY": "only-half"})
    assert r.returncode == 1 and "NEBULA_SECRET_KEY" in r.stderr


def test_config_file_and_env(tmp_path):
    conf = tmp_path / "n.conf"
    conf.write_text("data = %s\nshutdown-grace = 5\n" % (tmp_path / "fromfile"))
    with Server(str(tmp_path / "fromflag"), "--config", str(conf)) as s:
        assert s.field("data") == str(tmp_path / "fromflag")  # flag beats file
        s.stop()
    # Without --data the file's value is used.
    with Server(None, env={"NEBULA_CONFIG": str(conf)}) as s:
        assert s.field("data") == str(tmp_path / "fromfile")
        assert s.stop() == 0


def test_second_server_on_same_data_dir_refused(server, tmp_path):
    r = run("server", "--data", str(tmp_path / "data"), "--listen", "127.0.0.1:0")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "in use by another nebula server" in lines[0]
    assert "pid %d" % server.proc.pid in lines[0]
    assert get(server.port, "/health")[0] == 200  # the first one is untouched


def test_port_in_use(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = run("server", "--data", str(tmp_path / "d"), "--listen", "127.0.0.1:%d" % port)
        assert r.returncode == 1
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "cannot listen on 127.0.0.1:%d" % port in lines[0]
        assert "Address already in use" in lines[0]
    finally:
        s.close()


def test_unusable_data_dir(tmp_path):
    f = tmp_path / "plainfile"
    f.write_text("x")
    r = run("server", "--data", str(f / "sub"), "--listen", "127.0.0.1:0")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1
    assert "cannot create data directory %s" % (f / "sub") in r.stderr
    assert "Not a directory" in r.stderr
    r = run("server", "--data", "/proc/nebula-test", "--listen", "127.0.0.1:0")
    assert r.returncode == 1 and "cannot create data directory /proc/nebula-test" in r.stderr
    if os.geteuid() != 0:  # root writes anywhere; the case above covers it
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        r = run("server", "--data", str(ro), "--listen", "127.0.0.1:0")
        assert r.returncode == 1 and "not writable" in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown_finishes_inflight_request(tmp_path, sig):
    data = str(tmp_path / "data")
    with Server(data) as s:
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        c.sendall(b"GET /health HTTP/1.1\r\n")  # request line only: in flight
        # Wait until the server counts it (the /metrics request counts too),
        # however slow a loaded machine is.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            _, _, body = get(s.port, "/metrics")
            _, samples = parse_prometheus(body.decode())
            if metric(samples, "nebula_http_inflight_requests") >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the partial request never counted as in flight")
        s.proc.send_signal(sig)
        # New connections are refused while the old request finishes (the
        # signal takes effect within moments; a loaded machine may need more).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
            except OSError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the server kept accepting connections after the stop signal")
        time.sleep(0.3)
        assert s.proc.poll() is None, "server exited with a request in flight"
        c.sendall(b"Host: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            reply += chunk
        c.close()
        assert reply.startswith(b"HTTP/1.1 200"), reply[:100]
        assert b'"status":"ok"' in reply
        assert s.proc.wait(timeout=30) == 0
        assert "shutting down" in s.stderr()
    # The lock went with the process: a new server starts on the same data.
    with Server(data) as s2:
        assert get(s2.port, "/health")[0] == 200
        assert s2.stop() == 0


def test_idle_keepalive_does_not_delay_shutdown(tmp_path):
    with Server(str(tmp_path / "data")) as s:
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        c.request("GET", "/health")
        c.getresponse().read()  # connection stays open, idle
        t = time.monotonic()
        assert s.stop() == 0
        assert time.monotonic() - t < 10
        c.close()


def test_connection_limit(tmp_path):
    # The accept thread hands connections to the HTTP threads in the order
    # they arrive and refuses (closes) those beyond --max-connections; a
    # freed slot serves again.
    req = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with Server(str(tmp_path / "data"), "--threads", "2", "--max-connections", "3") as s:
        held = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(3)]
        extra = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        extra.sendall(req)
        try:
            assert extra.recv(100) == b""  # closed unanswered
        except ConnectionResetError:
            pass
        extra.close()
        # A held one is served (and stays open: the answer keeps it alive);
        # closing it frees its slot.
        held[0].sendall(req)
        answer = held[0].recv(1000)
        assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" not in answer
        held[0].close()
        # The server frees the slot on its own time: retry until it has
        # (each refused try is closed unanswered).
        deadline = time.monotonic() + 20
        while True:
            try:
                assert get(s.port, "/health")[0] == 200
                break
            except (ConnectionError, http.client.RemoteDisconnected):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        for c in held:
            c.close()
        assert s.stop() == 0


def test_sigkill_leaves_no_stale_lock(tmp_path):
    data = str(tmp_path / "data")
    with Server(data) as s:
        s.stop(signal.SIGKILL)
    with Server(data) as s:
        assert get(s.port, "/health")[0] == 200
        s.stop()
