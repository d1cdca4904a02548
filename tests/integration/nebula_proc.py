"""Helpers for integration tests: run the real `nebula` binary.

Servers bind 127.0.0.1 on an ephemeral port (--listen 127.0.0.1:0), run
for a bounded time and are stopped by PID.
"""
import os
import re
import signal
import subprocess
import tempfile
import time

NEBULA = os.environ.get("NEBULA_BIN", "nebula")


def run(*args, env=None, timeout=20):
    """Runs nebula to completion; returns CompletedProcess with text output."""
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("NEBULA_") and k != "NEBULA_BIN":
            del e[k]
    if env:
        e.update(env)
    return subprocess.run([NEBULA, *args], capture_output=True, text=True,
                          timeout=timeout, env=e)


def is_mounted(path):
    """Whether path is a mount point of this mount namespace right now."""
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


class Server:
    """A `nebula server` child process on 127.0.0.1 and a free port.

    data_dir None leaves --data out (for tests of other option sources)."""

    def __init__(self, data_dir, *extra, env=None, listen="127.0.0.1:0"):
        e = {k: v for k, v in os.environ.items() if not k.startswith("NEBULA_")}
        if env:
            e.update(env)
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [NEBULA, "server", *(["--data", data_dir] if data_dir else []), "--listen", listen,
             *extra],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=e)
        self.banner = []
        self.port = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.banner.append(line)
            m = re.search(r"endpoint:\s+http://\S+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            if line.startswith("Press Ctrl-C"):
                break
        if self.port is None:
            self.stop(signal.SIGKILL)
            raise RuntimeError("server did not start: %s %s" % (self.banner, self.stderr()))

    def field(self, name):
        for line in self.banner:
            m = re.match(r"\s*%s:\s+(\S+)" % re.escape(name), line)
            if m:
                return m.group(1)
        return None

    def stderr(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.stop(signal.SIGKILL)
        self.proc.stdout.close()
        self.log.close()
