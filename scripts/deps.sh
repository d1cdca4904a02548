#!/usr/bin/env bash
# Installs the Debian packages NebulaStore needs to build, test and run.
# Idempotent and non-interactive; prints nothing when everything is present.
# Usage: scripts/deps.sh [build|test|bench]   (default: test, which is a superset of build)
set -euo pipefail

what=${1:-test}

# Libraries we link and tools the build uses.
build_pkgs=(
    build-essential cmake pkg-config
    libcmocka-dev       # unit-test framework
    libxxhash-dev       # fast 64-bit hash
    libmicrohttpd-dev   # HTTP server under the S3 gateway (docs/http.md)
    libssl-dev          # MD5/SHA/HMAC for S3 signatures and ETags
    libexpat1-dev       # XML request bodies of the S3 API
    librocksdb-dev      # reference kv backend and benchmark reference
    libleveldb-dev      # benchmark reference for nkv
    libsnappy-dev libzstd-dev  # SST block compression
    liburing-dev        # disk engine I/O
    libfuse3-dev fuse3  # POSIX mount
)
# What the tests drive the real binaries with.
test_pkgs=(
    clang-format curl python3 python3-pytest procps psmisc
    util-linux-extra  # fincore: the GET test drops and checks page-cache residency
    awscli s3cmd python3-boto3 rclone  # real S3 clients for the gateway tests
    git sqlite3 rsync python3-torch  # real programs on the FUSE mount (test_fuse_programs.py)
)
bench_pkgs=(rocksdb-tools nginx-light wrk fio
    libcurl4-openssl-dev  # ../shared/bench/s3bench is built against libcurl
)

case "$what" in
build) want=("${build_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
bench) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
*)
    echo "deps.sh: unknown set '$what' (build|test|bench)" >&2
    exit 2
    ;;
esac

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# apt's chatter goes to a log that is shown only when something fails.
# A stale package list makes installs fail with 404s; refresh first.
if ! { $sudo apt-get update -qq -o DPkg::Lock::Timeout=600 &&
    $sudo apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 \
        "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "deps.sh: installing ${missing[*]} failed" >&2
    exit 1
fi
