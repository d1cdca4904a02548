"""Every acknowledged PUT is durable: a real `nebula server` under
concurrent PUTs (inline bodies, one block, several blocks) is SIGKILLed
and then loses power for its metadata — each nkv file is cut back to what
its last sync covered ($NB_KV_SYNC_LOG, written by nkv; blocks of the
default disk store are durable when put, docs/disk.md). `nebula fsck` must
be clean, and after a restart every key holds the version its last
acknowledged PUT wrote or one begun after it, whole."""
import os
import random
import signal
import threading
import time

import boto3
from botocore.config import Config

from nebula_proc import Server, run
from test_s3_helpers import REGION

THREADS = 6
KEYS_PER_THREAD = 3
# inline (<= 16 KiB), one block, several 4 MiB blocks
SIZES = (0, 1, 4096, 16384, 16385, 300000, (4 << 20) + 12345)


def body(seed, size):
    return random.Random(seed).randbytes(size)


def cut_unsynced_metadata(data, log):
    """Truncates every file nkv wrote to the size its last sync covered."""
    last = {}
    with open(log) as f:
        for line in f:
            what, dev, ino, size = line.split()
            last[(int(dev), int(ino))] = 0 if what == "O" else int(size)
    cut = 0
    for root, _, files in os.walk(os.path.join(data, "meta")):
        for name in files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            keep = last.get((st.st_dev, st.st_ino))
            if keep is not None and st.st_size > keep:
                os.truncate(p, keep)
                cut += st.st_size - keep
    open(log, "w").close()
    return cut


class Writer(threading.Thread):
    """PUTs its own keys in a loop; versions[key] lists the seeds begun,
    acked[key] the index of the last acknowledged one."""

    def __init__(self, t, endpoint, ak, sk, seed, prev):
        super().__init__(daemon=True)
        self.rng = random.Random(seed)
        self.keys = ["t%d/k%d" % (t, j) for j in range(KEYS_PER_THREAD)]
        # the keys' history goes on from the previous cycle's writer
        self.versions = prev.versions if prev else {k: [] for k in self.keys}
        self.acked = prev.acked if prev else {k: -1 for k in self.keys}
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ak,
            aws_secret_access_key=sk,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                          connect_timeout=5, read_timeout=30))

    def run(self):
        while True:
            key = self.rng.choice(self.keys)
            seed = self.rng.getrandbits(63)
            size = self.rng.choice(SIZES)
            self.versions[key].append((seed, size))
            try:
                self.client.put_object(Bucket="crash", Key=key, Body=body(seed, size))
            except Exception:
                return  # the server is gone
            self.acked[key] = len(self.versions[key]) - 1


def test_acknowledged_puts_survive_kill_and_metadata_power_loss(tmp_path):
    data = str(tmp_path / "data")
    log = str(tmp_path / "kv-sync.log")
    env = {"NB_KV_SYNC_LOG": log}
    seed = random.randrange(1 << 30)
    writers = []
    total_acks = total_cut = 0
    for cycle in range(3):
        srv = Server(data, env=env)
        ak, sk = srv.field("access key"), srv.field("secret key")
        endpoint = "http://127.0.0.1:%d" % srv.port
        try:
            c = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                             aws_access_key_id=ak, aws_secret_access_key=sk,
                             config=Config(s3={"addressing_style": "path"}))
            if cycle == 0:
                c.create_bucket(Bucket="crash")
            # what the previous cycle acknowledged is there, whole
            for w in writers:
                for k in w.keys:
                    check_key(c, k, w.versions[k], w.acked[k], seed)
            writers = [Writer(t, endpoint, ak, sk, seed * 100 + cycle * 10 + t,
                              writers[t] if writers else None) for t in range(THREADS)]
            for w in writers:
                w.start()
            time.sleep(1.0 + random.Random(seed + cycle).random())
        finally:
            srv.stop(signal.SIGKILL)
            srv.__exit__(None, None, None)
        for w in writers:
            w.join(timeout=60)
            assert not w.is_alive()
        total_acks = sum(a + 1 for w in writers for a in w.acked.values())
        total_cut += cut_unsynced_metadata(data, log)
        r = run("fsck", data, timeout=120)
        assert r.returncode == 0, "cycle %d (seed %d): %s" % (cycle, seed, r.stdout + r.stderr)
        assert " 0 problems" in r.stdout + r.stderr
    with Server(data, env=env) as srv:
        c = boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % srv.port,
                         region_name=REGION, aws_access_key_id=srv.field("access key"),
                         aws_secret_access_key=srv.field("secret key"),
                         config=Config(s3={"addressing_style": "path"}))
        for w in writers:
            for k in w.keys:
                check_key(c, k, w.versions[k], w.acked[k], seed)
        assert srv.stop() == 0
    assert total_acks > 0
    print("%d acknowledged PUTs, %d unsynced metadata bytes cut" % (total_acks, total_cut))


def check_key(c, key, versions, acked, seed):
    """The object is the acknowledged version or one begun after it."""
    try:
        got = c.get_object(Bucket="crash", Key=key)["Body"].read()
    except c.exceptions.NoSuchKey:
        assert acked < 0, "seed %d: %s: acknowledged PUT %d is gone" % (seed, key, acked)
        return
    for s, size in versions[max(acked, 0):]:
        if size == len(got) and body(s, size) == got:
            return
    raise AssertionError("seed %d: %s (%d bytes) is no version begun since the last "
                         "acknowledged one (%d of %d)" % (seed, key, len(got), acked,
                                                          len(versions)))
