#!/usr/bin/python3
"""Cold and warm GETs of one object, side by side for several nebula binaries.

usage: bench/s3_cold.py NAME=BINARY [NAME=BINARY ...]
  env: ROUNDS (3), SIZE_MIB (64)

Each binary serves its own data directory; one object of SIZE_MIB is PUT
to each (the disk engine writes it with O_DIRECT: not in the page cache).
Every round, per binary: the data files' pages are dropped
(POSIX_FADV_DONTNEED), one GET with curl of a presigned URL (time to first
byte, total), with the device reads /proc/diskstats counted around it
(requests, average size, the sum of their times), then one warm GET.
Then a plain file of the same size is read cold with dd, for the device's
own figure. The timings are wall clock (noisy on a shared machine); the
request counts are not."""
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config

KEY, SECRET = "S3BENCHACCESSKEY0001", "s3bench-secret-key-0000000000000000000001"
SIZE = int(os.environ.get("SIZE_MIB", "64")) << 20


def disk_reads(dev):
    for line in open("/proc/diskstats"):
        f = line.split()
        if f[2] == dev:
            return int(f[3]), int(f[5]), int(f[6])  # reads, sectors, ms reading
    return 0, 0, 0


def delta(a, b):
    n, sec, ms = (y - x for x, y in zip(a, b))
    return "device reads %d, %.0f KiB avg, %.0f MiB, %d ms" % (
        n, sec * 512 / 1024 / max(n, 1), sec / 2048, ms)


def drop(paths):
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)


def curl(url):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w",
                          "%{time_starttransfer} %{time_total} %{size_download}", url],
                         capture_output=True, text=True).stdout.split()
    assert int(out[2]) == SIZE, out
    return float(out[0]) * 1000, float(out[1]) * 1000


def main():
    work = tempfile.mkdtemp(prefix="nebula-s3cold.")
    dev = os.path.basename(subprocess.run(
        ["findmnt", "-no", "SOURCE", "-T", work], capture_output=True, text=True).stdout.strip())
    servers = []
    try:
        for i, arg in enumerate(sys.argv[1:]):
            name, binary = arg.split("=", 1)
            d = os.path.join(work, name)
            port = 18290 + i
            p = subprocess.Popen([binary, "server", "--data", d, "--listen", "127.0.0.1:%d" % port,
                                  "--threads", "2", "--log-level", "warn"],
                                 env=dict(os.environ, NEBULA_ACCESS_KEY=KEY,
                                          NEBULA_SECRET_KEY=SECRET),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            servers.append((name, p, d, port))
        time.sleep(1.5)
        body = os.urandom(SIZE)
        urls = {}
        for name, p, d, port in servers:
            c = boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % port,
                             aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                             region_name="us-east-1", config=Config(retries={"max_attempts": 0}))
            c.create_bucket(Bucket="cold")
            c.put_object(Bucket="cold", Key="o", Body=body)
            urls[name] = c.generate_presigned_url("get_object", Params={"Bucket": "cold",
                                                                        "Key": "o"})
        plain = os.path.join(work, "plain")
        with open(plain, "wb") as f:
            f.write(body)
        for r in range(int(os.environ.get("ROUNDS", "3"))):
            for name, p, d, port in servers:
                drop(glob.glob(os.path.join(d, "**", "data.*"), recursive=True))
                a = disk_reads(dev)
                ttfb, total = curl(urls[name])
                cold = delta(a, disk_reads(dev))
                _, warm = curl(urls[name])
                print("round %d %-8s cold: first byte %4.0f ms, total %4.0f ms (%s); "
                      "warm: total %4.0f ms" % (r + 1, name, ttfb, total, cold, warm))
            drop([plain])
            a = disk_reads(dev)
            t = time.time()
            subprocess.run(["dd", "if=" + plain, "of=/dev/null", "bs=1M"], capture_output=True)
            print("round %d dd       cold: total %4.0f ms (%s)" % (
                r + 1, (time.time() - t) * 1000, delta(a, disk_reads(dev))))
    finally:
        for name, p, d, port in servers:
            p.send_signal(signal.SIGTERM)
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
