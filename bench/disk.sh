#!/usr/bin/env bash
# Disk engine (docs/disk.md): durable put/get ops/s and MiB/s for 4 KiB,
# 64 KiB and 4 MiB blobs on 1 and 2 threads (DISK_BENCH_THREADS), side by side with a file per
# blob (the `dir` store: write + fsync + dir fsync) and a sequential writer
# with one fdatasync per blob, alternating A,B,C rounds; then fio's
# sequential bandwidth with the same sync rule, alternating with the
# engine's 4 MiB puts round by round, and the recovery time of an
# engine holding 1,000,000 blobs with two data-region sizes.
#   env: DISK_BENCH_SECONDS (1), DISK_BENCH_ROUNDS (3), DISK_BENCH_THREADS
#        (1,2), DISK_BENCH_SIZES (4096,65536,4194304), DISK_BENCH_BLOBS
#        (1000000), DISK_BENCH_DIR (build/release/disk-bench-tmp),
#        DISK_BENCH_BIN (build/release/bench/disk_bench/disk_bench),
#        DISK_BENCH_GIB (4,16: data-region sizes for the recovery runs;
#        each is fallocated, so the disk needs that much free space)
# Disk space: about 1.5 GiB for the ops runs, then the largest GIB value.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DISK_BENCH_BIN:-build/release/bench/disk_bench/disk_bench}
DIR=${DISK_BENCH_DIR:-build/release/disk-bench-tmp}
SECS=${DISK_BENCH_SECONDS:-1}
ROUNDS=${DISK_BENCH_ROUNDS:-3}
BLOBS=${DISK_BENCH_BLOBS:-1000000}
THREADS=${DISK_BENCH_THREADS:-1,2}
SIZES=${DISK_BENCH_SIZES:-4096,65536,4194304}
GIB=${DISK_BENCH_GIB:-4,16}

[ -x "$BIN" ] || { echo "disk bench: $BIN missing (make build)" >&2; exit 1; }
rm -rf "$DIR"
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT

ops="$DIR.ops.txt"
"$BIN" --dir "$DIR" --seconds "$SECS" --rounds "$ROUNDS" --threads "$THREADS" --sizes "$SIZES" \
    --recovery 0 | tee "$ops"
out=$(cat "$ops")
rm -f "$ops"

echo
echo "# fio: sequential 4 MiB writes, fdatasync after each, O_DIRECT, io_uring;"
echo "# alternating with the engine's 4 MiB puts (1 thread), $ROUNDS rounds, medians"
med() { sort -g | awk '{v[NR] = $1} END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
if command -v fio >/dev/null && [[ ",$SIZES," == *",4194304,"* ]]; then
    fios="" engs=""
    for ((r = 0; r < ROUNDS; r++)); do
        e=$("$BIN" --dir "$DIR" --seconds "$SECS" --rounds 1 --threads 1 --sizes 4194304 \
            --recovery 0 | awk '$1 == "put" && $2 == "4MiB" && $3 == "1" && $8 == "dir" {print $6}')
        f=$(fio --name=seq --filename="$DIR/fio.dat" --rw=write --bs=4M --size=1G \
            --fdatasync=1 --direct=1 --ioengine=io_uring --runtime=$((SECS + 1)) \
            --time_based --output-format=json 2>/dev/null |
            python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.1f" % (j["jobs"][0]["write"]["bw"]/1024))')
        echo "round $r: engine $e MiB/s, fio $f MiB/s"
        engs+="$e"$'\n' fios+="$f"$'\n'
    done
    eng_mib=$(printf '%s' "$engs" | med)
    fio_mib=$(printf '%s' "$fios" | med)
    echo "fio 4MiB seq write MiB/s: $fio_mib   engine 4MiB put (1 thread) MiB/s: $eng_mib"
    awk -v e="$eng_mib" -v f="$fio_mib" \
        'BEGIN { if (f > 0) printf "engine/fio: %.2fx (goal >= 0.9)\n", e / f }'
    rm -f "$DIR/fio.dat"
else
    echo "fio not installed (apt-get install fio) or no 4 MiB size; the seq rows above are the same workload"
fi

echo
"$BIN" --dir "$DIR" --skip-ops --recovery "$BLOBS" --recovery-gib "$GIB" | tee "$DIR.rec.txt"
rec=$(cat "$DIR.rec.txt")
rm -f "$DIR.rec.txt"

echo
echo "# ratios (issue 5 goals): small puts >= 3x the file-per-blob store, 4 MiB >= 0.9x fio"
printf '%-10s %-5s %-4s %10s %10s %8s %s\n' op size thr engine ref ratio goal
awk '$1 == "put" && $8 == "dir" && ($2 == "4KiB" || $2 == "64KiB") {
        printf "%-10s %-5s %-4s %10s %10s %7sx %s\n", "put/s", $2, $3, $5, $9, substr($12, 1, length($12) - 1), ">= 3x" }' <<<"$out"
if [ -n "${fio_mib:-}" ]; then
    awk -v e="${eng_mib:-0}" -v f="$fio_mib" \
        'BEGIN { if (f > 0) printf "%-10s %-5s %-4s %10s %10s %7.2fx %s\n", "MiB/s", "4MiB", "1", e, f, e / f, ">= 0.9x fio" }'
fi
awk '$2 == "wal" || $2 == "checkpoint" { printf "recovery   %s GiB region, %s blobs from the %s: %s ms\n", $1, $3, $2, $7 }' <<<"$rec"
