#!/usr/bin/env bash
# Smoke test of nkv_bench, the driver (not of any engine's speed): for every
# engine built in, tiny runs must print db_bench's banner and result lines in
# the form ../shared/bench/lsm-compare.sh parses, write and read the keys
# db_bench would (checked against an independent Python model of LevelDB's
# Random and seeding), and honour --use_existing_db, --writes, fillsync and
# --histogram. Timing is never checked.
#
# Usage: smoke.sh NKV_BENCH_BINARY SCRATCH_DIR ENGINE...
set -u
set -o pipefail

BIN=$1
SCRATCH=$2
shift 2
ENGINES=("$@")
fails=0

fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}

case "$SCRATCH" in "" | / | /tmp | /work | /root | /home) echo "refusing SCRATCH=$SCRATCH" >&2; exit 2 ;; esac
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"

# The result-line pattern of lsm-compare.sh, plus the ops/sec and operation
# count it reads when present.
RESULT_RE='^[A-Za-z0-9_]+[[:space:]]*:[[:space:]]*[0-9.]+ micros/op [0-9]+ ops/sec [0-9.]+ seconds [0-9]+ operations;'

# run ENGINE NAME FLAGS... — runs the tool into $SCRATCH/NAME.out; fails on rc != 0.
run() {
    local e=$1 name=$2
    shift 2
    local out="$SCRATCH/$e.$name.out"
    "$BIN" --engine="$e" --db="$SCRATCH/$e.db" "$@" >"$out" 2>&1
    local rc=$?
    [ $rc -eq 0 ] || fail "$e $name: exit status $rc ($(tail -n 3 "$out" | tr '\n' ' '))"
    tr '\r' '\n' <"$out" >"$out.clean"
}

# line ENGINE NAME BENCH [N] — the Nth (default 1st) result line of BENCH.
line() {
    grep -E "^$3[[:space:]]*:" "$SCRATCH/$1.$2.out.clean" | sed -n "${4:-1}p"
}

# expect ENGINE NAME BENCH N OPS [FOUND] — the Nth BENCH line parses, reports
# OPS operations and, if given, "(FOUND of <num> found)".
expect() {
    local e=$1 name=$2 b=$3 n=$4 ops=$5 found=${6:-}
    local l
    l=$(line "$e" "$name" "$b" "$n")
    if [ -z "$l" ]; then
        fail "$e $name: no result line #$n for $b"
        return
    fi
    printf '%s\n' "$l" | grep -qE "$RESULT_RE" || fail "$e $name: unparseable: $l"
    printf '%s\n' "$l" | grep -qE " $ops operations;" || fail "$e $name: $b: want $ops operations: $l"
    if [ -n "$found" ]; then
        printf '%s\n' "$l" | grep -qE "\($found of [0-9]+ found\)" ||
            fail "$e $name: $b: want ($found of N found): $l"
    fi
}

# Expected "found" counts of the chain below from a Python model of
# db_bench: Random(seed) = Park-Miller, thread seeds 1000 + threads created.
NUM=4000
expected=$(/usr/bin/python3 - "$NUM" <<'EOF'
import sys
M = 2147483647
class Rand:
    def __init__(self, s):
        self.s = s & 0x7fffffff
        if self.s in (0, M):
            self.s = 1
    def uniform(self, n):
        p = self.s * 16807
        self.s = (p >> 31) + (p & M)
        if self.s > M:
            self.s -= M
        return self.s % n
num, threads, seed = int(sys.argv[1]), 2, 1000
keys, out = set(), []
def streams():
    global seed
    for _ in range(threads):
        seed += 1
        yield Rand(seed)
# fillrandom, overwrite, readrandom, seekrandom, deleterandom, readrandom
for bench in ("fill", "fill", "read", "read", "delete", "read"):
    rs = list(streams())
    if bench == "fill":
        for r in rs:
            keys.update(r.uniform(num) for _ in range(num))
    elif bench == "delete":
        for r in rs:
            keys.difference_update(r.uniform(num) for _ in range(num))
    else:
        out.append(sum(rs[0].uniform(num) in keys for _ in range(num)))
print(*out)
EOF
) || { echo "python3 model failed" >&2; exit 1; }
read -r exp_read exp_seek exp_after_delete <<<"$expected"

for e in "${ENGINES[@]}"; do
    # 1. Sequential fill: every key is there, scans see all of them.
    run "$e" seq --benchmarks=fillseq,readrandom,readseq,readreverse,seekrandom \
        --num=$NUM --bloom_bits=10 --compression=0
    f="$SCRATCH/$e.seq.out.clean"
    grep -qE '^Keys:[[:space:]]+16 bytes each' "$f" || fail "$e: no 'Keys: 16 bytes each' line"
    grep -q '^RocksDB:' "$f" && fail "$e: banner would switch lsm-compare.sh to the rocksdb dialect"
    expect "$e" seq fillseq 1 $NUM
    expect "$e" seq readrandom 1 $NUM $NUM
    expect "$e" seq readseq 1 $NUM
    expect "$e" seq readreverse 1 $NUM
    expect "$e" seq seekrandom 1 $NUM $NUM

    # 2. The protocol's chain with 2 threads, then deletes: found counts match
    #    the model exactly (same keys, same seeds as db_bench).
    run "$e" chain --benchmarks=fillrandom,overwrite,readrandom,seekrandom,deleterandom,readrandom \
        --num=$NUM --threads=2 --compression_type=snappy --cache_size=65536 --block_size=1024
    expect "$e" chain fillrandom 1 $((2 * NUM))
    expect "$e" chain overwrite 1 $((2 * NUM))
    expect "$e" chain readrandom 1 $((2 * NUM)) "$exp_read"
    expect "$e" chain seekrandom 1 $((2 * NUM)) "$exp_seek"
    expect "$e" chain deleterandom 1 $((2 * NUM))
    expect "$e" chain readrandom 2 $((2 * NUM)) "$exp_after_delete"

    # 3. Reopen with --use_existing_db=1: fills are skipped, data is still there.
    run "$e" existing --benchmarks=fillseq,readrandom --num=$NUM --threads=2 --use_existing_db=1
    grep -qE '^fillseq[[:space:]]*: skipped' "$SCRATCH/$e.existing.out.clean" ||
        fail "$e: fillseq not skipped with --use_existing_db=1"
    expect "$e" existing readrandom 1 $((2 * NUM))

    # 4. fillsync: num/1000 synced writes (LevelDB dialect) or --writes (RocksDB's).
    run "$e" sync --benchmarks=fillsync --num=$((NUM * 1000 / 100))
    expect "$e" sync fillsync 1 $((NUM / 100))
    run "$e" syncw --benchmarks=fillsync --num=$((NUM * 1000 / 100)) --writes=7
    expect "$e" syncw fillsync 1 7

    # 5. Histogram output.
    run "$e" hist --benchmarks=fillseq --num=500 --histogram=1
    grep -q '^Microseconds per op:' "$SCRATCH/$e.hist.out.clean" &&
        grep -qE '^Count: 500 ' "$SCRATCH/$e.hist.out.clean" ||
        fail "$e: no histogram with --histogram=1"
done

# Engines left out of the build must refuse clearly, never run something else.
for e in nkv leveldb rocksdb; do
    case " ${ENGINES[*]} " in *" $e "*) continue ;; esac
    if "$BIN" --engine="$e" --db="$SCRATCH/x.db" --num=10 >"$SCRATCH/missing.out" 2>&1; then
        fail "--engine=$e is not built in but exited 0"
    fi
    grep -q "engine=$e is not available" "$SCRATCH/missing.out" || fail "--engine=$e: unclear message"
done

# Bad flags fail.
"$BIN" --engine="${ENGINES[0]:-leveldb}" --no_such_flag=1 >/dev/null 2>&1 && fail "unknown flag accepted"

if [ $fails -eq 0 ]; then
    echo "nkv_bench smoke: OK (engines: ${ENGINES[*]}; expected found $expected)"
    rm -rf "$SCRATCH"
    exit 0
fi
echo "nkv_bench smoke: $fails failure(s); outputs in $SCRATCH" >&2
exit 1
