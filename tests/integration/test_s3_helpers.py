"""Shared helpers of the S3 gateway tests (no tests here): a running
`nebula server`, boto3 clients, the aws cli and s3cmd against it."""
import contextlib
import os
import subprocess

import boto3
from botocore.config import Config

from nebula_proc import Server, is_mounted, run

REGION = "us-east-1"
AWS = "/usr/bin/aws"  # `aws` on PATH may be a pyenv shim
S3CMD = "/usr/bin/s3cmd"


class S3Server:
    """A server plus what clients need to reach it."""

    def __init__(self, data_dir, *extra):
        self.server = Server(data_dir, *extra)
        self.port = self.server.port
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.access_key = self.server.field("access key")
        self.secret_key = self.server.field("secret key")

    def client(self, secret=None, signature="s3v4", anonymous=False, **cfg):
        from botocore import UNSIGNED
        s3cfg = {"addressing_style": "path"}
        s3cfg.update(cfg.pop("s3", {}))
        conf = Config(signature_version=UNSIGNED if anonymous else signature, s3=s3cfg,
                      retries={"max_attempts": 1}, **cfg)
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=secret or self.secret_key, config=conf)

    def aws(self, *args, check=True, timeout=120):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.access_key,
                   AWS_SECRET_ACCESS_KEY=self.secret_key, AWS_DEFAULT_REGION=REGION,
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   AWS_PAGER="")
        r = subprocess.run([AWS, "--endpoint-url", self.endpoint, *args], capture_output=True,
                           text=True, env=env, timeout=timeout)
        if check:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r

    def s3cmd_config(self, path, v2=False):
        with open(path, "w") as f:
            f.write("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = 127.0.0.1:%d\n"
                    "host_bucket = 127.0.0.1:%d\nuse_https = False\nsignature_v2 = %s\n"
                    "bucket_location = us-east-1\ncheck_ssl_certificate = False\n"
                    "multipart_chunk_size_mb = 5\n"
                    % (self.access_key, self.secret_key, self.port, self.port,
                       "True" if v2 else "False"))
        return path

    def s3cmd(self, config, *args, check=True, timeout=120):
        r = subprocess.run([S3CMD, "-c", config, *args], capture_output=True, text=True,
                           timeout=timeout)
        if check:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r

    def stop(self):
        rc = self.server.stop()
        self.server.__exit__(None, None, None)
        return rc


def key_client(srv, ak=None, sk=None):
    """A boto3 client of srv signing with another user's keys, or
    anonymous (ak None)."""
    from botocore import UNSIGNED
    conf = Config(signature_version=UNSIGNED if ak is None else "s3v4",
                  s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    return boto3.client("s3", endpoint_url=srv.endpoint, region_name=REGION,
                        aws_access_key_id=ak or "x", aws_secret_access_key=sk or "x",
                        config=conf)


def fails(code, status, fn, *args, **kw):
    """fn(*args, **kw) must fail with this S3 error code and HTTP status;
    returns the error response."""
    from botocore.exceptions import ClientError
    try:
        fn(*args, **kw)
    except ClientError as e:
        r = e.response
        assert (r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]) == (code, status), r
        return r
    raise AssertionError("%s did not fail with %s" % (getattr(fn, "__name__", fn), code))


def error_code(exc_info):
    """The S3 error code and HTTP status of a botocore ClientError."""
    e = exc_info.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"]


@contextlib.contextmanager
def mounted_s3_server(base, *extra):
    """An S3Server on base/data that also mounts the namespace at base/mnt
    (.mnt, .data). On exit it must stop cleanly (exit code 0), and a mount
    left behind is detached lazily."""
    mnt = base / "mnt"
    mnt.mkdir()
    s = S3Server(str(base / "data"), "--mount", str(mnt), *extra)
    assert is_mounted(mnt)
    s.mnt = mnt
    s.data = str(base / "data")
    try:
        yield s
        assert s.stop() == 0
    finally:
        if s.server.proc.poll() is None:
            s.stop()
        if is_mounted(mnt):
            subprocess.run(["umount", "-l", str(mnt)])


def stop_and_fsck(srv):
    """Stops a mounted_s3_server (clean exit asserted) and checks that
    `nebula fsck` finds its data directory clean."""
    rc = srv.server.stop()
    assert rc == 0, srv.server.stderr()[-4000:]
    srv.stop()
    if is_mounted(srv.mnt):
        subprocess.run(["umount", "-l", str(srv.mnt)])
    r = run("fsck", srv.data)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 problems" in r.stdout + r.stderr
