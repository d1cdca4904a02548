#!/usr/bin/env bash
# bench/nkv.sh — issue 3's LSM engine comparison, run by `make bench`.
#
# Runs ../shared/bench/lsm-compare.sh (the shared protocol; read its header)
# once per workload cell, step and engine, alternating the engines inside
# each cell and step (A,B,C,D,A,B,C,D), with:
#   nkv       nkv_bench --engine=nkv       (our engine)
#   leveldb   nkv_bench --engine=leveldb   (Debian's libleveldb 1.23)
#   rocksdb   nkv_bench --engine=rocksdb   (Debian's librocksdb 7.8)
#   db_bench  RocksDB's own db_bench (rocksdb-tools), cross-checking the
#             rocksdb column: same settings, RocksDB's own driver.
# nkv_bench speaks the protocol's leveldb dialect (--compression=0|1,
# fillsync = num/1000 writes), db_bench the rocksdb one.
#
# Then prints one table: per workload cell, best-of-runs ops/s and lowest
# cpu_us_op of each engine, and nkv's ratios to the better of leveldb and
# rocksdb (ops: nkv / best; cpu: best / nkv; >= 1.00 means nkv is at least as
# good), plus rocksdb(nkv_bench) / db_bench; and a space/memory table (DB
# bytes after fillrandom+overwrite, peak RSS of that process).
#
# Environment knobs:
#   NKV_BENCH_QUICK=1     small matrix (100k x 100 B, 10k x 4 KiB, 100 synced
#                         writes) for a ~2-minute try; default: the full protocol
#   NKV_BENCH_RUNS=2      runs per engine (alternated)
#   NKV_BENCH_ENGINES="nkv leveldb rocksdb db_bench"
#   NKV_BENCH_PROTO       the shared protocol script (default ../shared/bench/
#                         lsm-compare.sh, else ../../shared/bench/lsm-compare.sh)
#   NKV_BENCH_BIN         nkv_bench binary (default build/release/bench/nkv_bench/nkv_bench)
#   DB_BENCH=/usr/bin/db_bench
#   DB_BENCH_FLAGS="--write_buffer_size=4194304"  makes db_bench use nkv_bench's
#                         4 MiB memtable (db_bench's own default is 64 MiB)
#   NKV_BENCH_FLAGS=""    extra nkv_bench flags for all three engines
#   NKV_BENCH_DIR=build/bench-data/nkv   databases and raw logs
#   MATRIX, STEPS, SYNC_OPS  passed through to the protocol (defaults: its own)
#   NKV_BENCH_TABLE=DIR   run nothing; re-print the tables of an earlier run's
#                         logs directory (NKV_BENCH_DIR/logs-*)
# Exit status: 0 when every step of every available engine succeeded. An
# engine that is not built into nkv_bench is reported and shown as n/a.
set -u
set -o pipefail
cd "$(dirname "$0")/.." || exit 2

# The shared protocol sits beside the repository (../shared), or two levels
# up from an engineer's worktree (/work/wt/NAME -> /work/shared).
PROTO=${NKV_BENCH_PROTO:-../shared/bench/lsm-compare.sh}
[ -f "$PROTO" ] || [ -n "${NKV_BENCH_PROTO:-}" ] || [ ! -f ../../shared/bench/lsm-compare.sh ] ||
    PROTO=../../shared/bench/lsm-compare.sh
if [ ! -f "$PROTO" ]; then
    echo "nkv.sh: the shared LSM protocol $PROTO is missing (expected at ../shared/bench/ relative to the repo root, $(pwd))" >&2
    exit 2
fi
BIN=${NKV_BENCH_BIN:-build/release/bench/nkv_bench/nkv_bench}
if [ -z "${NKV_BENCH_TABLE:-}" ] && [ ! -x "$BIN" ]; then
    echo "nkv.sh: $BIN not built; run 'make build' (or set NKV_BENCH_BIN)" >&2
    exit 2
fi
DB_BENCH=${DB_BENCH:-/usr/bin/db_bench}
DB_BENCH_FLAGS=${DB_BENCH_FLAGS:---write_buffer_size=4194304}
NKV_BENCH_FLAGS=${NKV_BENCH_FLAGS:-}
RUNS=${NKV_BENCH_RUNS:-2}
ENGINES=${NKV_BENCH_ENGINES:-nkv leveldb rocksdb db_bench}
WORK=${NKV_BENCH_DIR:-build/bench-data/nkv}

if [ "${NKV_BENCH_QUICK:-0}" = 1 ]; then
    MATRIX=${MATRIX:-"100:100000:none:1 100:100000:snappy:2 4096:10000:none:1"}
    SYNC_OPS=${SYNC_OPS:-100}
    mode="quick protocol"
else
    MATRIX=${MATRIX:-"100:1000000:none:1 100:1000000:none:2 100:1000000:snappy:1 100:1000000:snappy:2 4096:100000:none:1 4096:100000:snappy:1"}
    SYNC_OPS=${SYNC_OPS:-1000}
    mode="full protocol"
fi
STEPS=${STEPS:-"fillseq fillrandom chain fillsync"}

failures=0
active=()
if [ -n "${NKV_BENCH_TABLE:-}" ]; then
    # Re-render the tables of an earlier run's logs directory.
    LOGDIR=${NKV_BENCH_TABLE%/}
    TSV="$LOGDIR/results.tsv"
    [ -s "$TSV" ] || { echo "nkv.sh: no $TSV" >&2; exit 2; }
    for e in $ENGINES; do
        grep -q "engine=$e run=" "$TSV" && active+=("$e")
    done
    RUNS=$(grep -oE 'run=[0-9]+' "$TSV" | cut -d= -f2 | sort -n | tail -n 1)
    mode="re-rendered from $LOGDIR"
else

stamp=$(date +%Y%m%d-%H%M%S)
LOGDIR="$WORK/logs-$stamp"
mkdir -p "$LOGDIR" || exit 2
TSV="$LOGDIR/results.tsv"
: >"$LOGDIR/lines.txt"

# Which engines can run: nkv_bench refuses an engine it was built without.
for e in $ENGINES; do
    if [ "$e" = db_bench ]; then
        if [ -x "$DB_BENCH" ]; then
            active+=("$e")
        else
            echo "nkv.sh: $DB_BENCH not found (Debian package rocksdb-tools); db_bench column skipped"
        fi
        continue
    fi
    probe=$("$BIN" --engine="$e" --db="$WORK/probe/db" --benchmarks= --num=1 2>&1 >/dev/null)
    if [ $? -eq 2 ]; then
        echo "nkv.sh: engine $e unavailable: $(printf '%s\n' "$probe" | grep -m1 'not available')"
    else
        active+=("$e")
    fi
    rm -rf "$WORK/probe"
done

echo "nkv.sh: $mode, runs=$RUNS, engines=${active[*]} bin=$BIN"
echo "nkv.sh: MATRIX=\"$MATRIX\" STEPS=\"$STEPS\" SYNC_OPS=$SYNC_OPS logs=$LOGDIR"
echo "nkv.sh: db_bench flags: $DB_BENCH_FLAGS; nkv_bench flags: ${NKV_BENCH_FLAGS:-(none)}"
echo "nkv.sh: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) at start"

for cell in $MATRIX; do
    for step in $STEPS; do
        for run in $(seq 1 "$RUNS"); do
            for e in "${active[@]}"; do
                if [ "$e" = db_bench ]; then
                    bin=$DB_BENCH dialect=rocksdb extra=$DB_BENCH_FLAGS
                else
                    bin=$BIN dialect=leveldb extra="--engine=$e $NKV_BENCH_FLAGS"
                fi
                MATRIX=$cell STEPS=$step SYNC_OPS=$SYNC_OPS DIALECT=$dialect \
                    EXTRA_FLAGS=$extra TAG="engine=$e run=$run" LOGDIR=$LOGDIR \
                    bash "$PROTO" "$bin" "$WORK/$e" | tee -a "$LOGDIR/lines.txt" ||
                    failures=$((failures + 1))
            done
        done
    done
done
fi
if [ ! -s "$TSV" ]; then
    echo "nkv.sh: no results in $TSV" >&2
    exit 1
fi

# ---- tables --------------------------------------------------------------
# results.tsv columns: bench ops_per_s us_per_op value_size num comp threads
# cpu_us_op cpu_s wall_s rss_kb load1 disk_bytes alloc_bytes table_bytes
# found dialect tag
echo
echo "== nkv vs LevelDB vs RocksDB ($mode, best of $RUNS alternated runs; $(date -u +%Y-%m-%dT%H:%MZ))"
echo "   ops/s: best run; cpu: lowest cpu_us_op (CPU us per op, all threads incl. background)"
echo "   nkv/best: nkv ops / max(leveldb, rocksdb) ops;  cpu x: min(leveldb, rocksdb) cpu / nkv cpu"
echo "   rdb/dbb: rocksdb via nkv_bench / RocksDB's db_bench (ops)"
awk -F'\t' -v engines="nkv leveldb rocksdb db_bench" -v active=" ${active[*]} " '
function eng(tag,   m) { if (match(tag, /engine=[a-z_]+/)) return substr(tag, RSTART + 7, RLENGTH - 7); return "?" }
function fmt(x) { return x == "" ? "n/a" : x }
function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0 || a + 0 == 0) ? "n/a" : sprintf("%.2f", a / b) }
NR == 1 { next }
{
    e = eng($18); key = $1 SUBSEP $4 SUBSEP $5 SUBSEP $6 SUBSEP $7
    if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
    if ($2 != "" && $2 != "FAIL" && (!((key, e) in ops) || $2 + 0 > ops[key, e] + 0)) ops[key, e] = $2
    if ($8 != "" && $8 != "na" && (!((key, e) in cpu) || $8 + 0 < cpu[key, e] + 0)) cpu[key, e] = $8
    if ($1 == "seekrandom" && $13 != "") {   # chain: DB after fillrandom+overwrite
        skey = $4 SUBSEP $5 SUBSEP $6 SUBSEP $7
        if (!(skey in sseen)) { sseen[skey] = 1; sorder[++ns] = skey }
        if (!((skey, e) in disk) || $13 + 0 < disk[skey, e] + 0) disk[skey, e] = $13
        if (!((skey, e) in rss) || $11 + 0 > rss[skey, e] + 0) rss[skey, e] = $11
    }
}
END {
    n = split(engines, E, " ")
    printf "%-17s %5s %8s %-6s %2s |", "bench", "v", "n", "comp", "t"
    for (i = 1; i <= n; i++) printf " %9s", E[i]
    printf " |"
    for (i = 1; i <= n; i++) printf " %8s", "cpu:" substr(E[i], 1, 4)
    printf " | %8s %6s %7s\n", "nkv/best", "cpu x", "rdb/dbb"
    for (k = 1; k <= nk; k++) {
        key = order[k]; split(key, f, SUBSEP)
        printf "%-17s %5s %8s %-6s %2s |", f[1], f[2], f[3], f[4], f[5]
        for (i = 1; i <= n; i++) printf " %9s", fmt(ops[key, E[i]])
        printf " |"
        for (i = 1; i <= n; i++) printf " %8s", fmt(cpu[key, E[i]])
        # The better of the reference engines that ran; n/a if one of them
        # has no number for this cell (the better one is then unknown).
        # (Values are tested, not "in": printing above created the keys.)
        bo = ""; bc = ""; okc = 1; oko = 1
        for (r = 1; r <= 2; r++) {
            ref = r == 1 ? "leveldb" : "rocksdb"
            if (index(active, " " ref " ") == 0) continue
            if (ops[key, ref] != "") { if (bo == "" || ops[key, ref] + 0 > bo + 0) bo = ops[key, ref] } else oko = 0
            if (cpu[key, ref] != "") { if (bc == "" || cpu[key, ref] + 0 < bc + 0) bc = cpu[key, ref] } else okc = 0
        }
        if (!oko) bo = ""
        if (!okc) bc = ""
        printf " | %8s %6s %7s\n", ratio(ops[key, "nkv"], bo), ratio(bc, cpu[key, "nkv"]),
            ratio(ops[key, "rocksdb"], ops[key, "db_bench"])
    }
    if (ns > 0) {
        print ""
        print "Space and memory after fillrandom+overwrite (chain process): DB MiB on disk (du -b), peak RSS MiB"
        printf "%5s %8s %-6s %2s |", "v", "n", "comp", "t"
        for (i = 1; i <= n; i++) printf " %9s", "MiB:" substr(E[i], 1, 5)
        printf " |"
        for (i = 1; i <= n; i++) printf " %9s", "RSS:" substr(E[i], 1, 5)
        printf " | %9s %9s\n", "nkv/min", "rss/rocks"
        for (k = 1; k <= ns; k++) {
            key = sorder[k]; split(key, f, SUBSEP)
            printf "%5s %8s %-6s %2s |", f[1], f[2], f[3], f[4]
            for (i = 1; i <= n; i++) printf " %9s", ((key, E[i]) in disk) ? sprintf("%.1f", disk[key, E[i]] / 1048576) : "n/a"
            printf " |"
            for (i = 1; i <= n; i++) printf " %9s", ((key, E[i]) in rss) ? sprintf("%.1f", rss[key, E[i]] / 1024) : "n/a"
            md = ""; okd = 1
            for (r = 1; r <= 2; r++) {
                ref = r == 1 ? "leveldb" : "rocksdb"
                if (index(active, " " ref " ") == 0) continue
                if (disk[key, ref] != "") { if (md == "" || disk[key, ref] + 0 < md + 0) md = disk[key, ref] } else okd = 0
            }
            if (!okd) md = ""
            printf " | %9s %9s\n", ratio(disk[key, "nkv"], md), ratio(rss[key, "nkv"], rss[key, "rocksdb"])
        }
    }
}' "$TSV" | tee "$LOGDIR/table.txt"

loads=$(awk -F'\t' 'NR > 1 && $12 != "" { if (min == "" || $12 < min) min = $12; if ($12 > max) max = $12 } END { print min "-" max }' "$TSV")
echo
echo "load1 during the run: $loads on $(nproc) CPUs (shared machine: ops/s is noisy, cpu_us_op less so)"
nfail=$(grep -c ': FAIL' "$LOGDIR/lines.txt" 2>/dev/null)
nwarn=$(grep -c 'WARN_' "$LOGDIR/lines.txt" 2>/dev/null)
[ "${nfail:-0}" -gt 0 ] && echo "FAILED steps ($nfail):" && grep ': FAIL' "$LOGDIR/lines.txt"
[ "${nwarn:-0}" -gt 0 ] && echo "warnings ($nwarn):" && grep 'WARN_' "$LOGDIR/lines.txt"
echo "raw: $TSV; table: $LOGDIR/table.txt"
if [ $failures -ne 0 ]; then
    echo "nkv.sh: $failures protocol invocation(s) failed" >&2
    exit 1
fi
exit 0
