#!/usr/bin/env bash
# bench/vfs.sh — issue 4's namespace benchmark, run by `make bench`.
#
# vfs_bench measures, in one run, metadata operations per second through
# vfs — create, stat, readdir of a 100,000-entry directory, rename, unlink,
# with 1 and 2 threads — next to the same operations done with syscalls on
# the local file system under the same directory, and sequential write
# (1 MiB writes + fsync) and read of a 1 GiB file: cold (page cache dropped
# when running as root, vfs opened afresh; two cold passes a side, in the
# order local, vfs, vfs, local, each after fresh memory was touched: this
# VM hands freed memory back to the host, docs/vfs.md §9 session 8), warm
# (a second pass through the same vfs; the local file's second read) and
# warm after reopening vfs (a restarted server: page cache warm, every
# block verified once more). Each side's warm passes follow its own cold
# one, so no cache drop empties a warm pass.
# It prints one ratio per line (vfs / local) and a table at the end, with
# the CPU time of each phase (steadier than wall time on a loaded machine).
#
# Environment knobs:
#   VFS_BENCH_FILES=100000   files in the directory
#   VFS_BENCH_DATA_MIB=1024  size of the sequential file
#   VFS_BENCH_THREADS=1,2
#   VFS_BENCH_DIR            scratch directory (default build/release/bench-tmp/vfs)
#   VFS_BENCH_BIN            binary (default build/release/bench/vfs_bench/vfs_bench)
#   VFS_BENCH_ENGINE         meta engine (default: kv's default)
#   VFS_BENCH_STORE=disk     block store: disk (the server's default) or dir
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${NB_BUILD_DIR:-build/release}
BIN=${VFS_BENCH_BIN:-$BUILD/bench/vfs_bench/vfs_bench}
if [ ! -x "$BIN" ]; then
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" --target vfs_bench -j2 >/dev/null
fi
DIR=${VFS_BENCH_DIR:-$BUILD/bench-tmp/vfs}
rm -rf "$DIR"
mkdir -p "$DIR"
args=(--dir "$DIR" --files "${VFS_BENCH_FILES:-100000}" --data-mib "${VFS_BENCH_DATA_MIB:-1024}"
      --threads "${VFS_BENCH_THREADS:-1,2}" --block-store "${VFS_BENCH_STORE:-disk}")
if [ -n "${VFS_BENCH_ENGINE:-}" ]; then
    args+=(--meta-engine "$VFS_BENCH_ENGINE")
fi
echo "vfs_bench ${args[*]} (file system: $(df -T "$DIR" | awk 'NR==2{print $2}'), $(nproc) cores)"
"$BIN" "${args[@]}"
rm -rf "$DIR"
