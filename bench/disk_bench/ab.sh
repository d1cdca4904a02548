#!/usr/bin/env bash
# A/B of two builds of the disk engine on a shared, noisy machine (docs/disk.md,
# session 7): builds disk_drv against a base git ref and against this tree,
# then runs durable puts of each cell with every build once per round, the
# order rotated by the round, and prints per cell the puts/s and p50 of each
# build, round by round, and their medians (and CPU per put), then the
# new/base ratio of each round's back-to-back pair.
#   env: AB_BASE (git ref, default main), AB_ROUNDS (4), AB_SECONDS (0.7),
#        AB_CELLS ("4096:1 65536:1 4096:2 65536:2", size:threads),
#        AB_DIR (scratch dir, default /tmp/disk-ab)
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=${AB_BASE:-main}
ROUNDS=${AB_ROUNDS:-4}
SECS=${AB_SECONDS:-0.7}
CELLS=${AB_CELLS:-"4096:1 65536:1 4096:2 65536:2"}
DIR=${AB_DIR:-/tmp/disk-ab}
. bench/disk_bench/ab_build.sh
ab_build "$DIR" "$BASE" bench/disk_bench/disk_drv.c drv
out="$DIR/ab.txt"
: >"$out"
for ((r = 0; r < ROUNDS; r++)); do
    for cell in $CELLS; do
        size=${cell%%:*} thr=${cell##*:}
        order="base new"
        ((r % 2)) && order="new base"
        for v in $order; do
            rm -rf "$DIR/run"
            "$DIR/drv-$v" "$DIR/run" "$size" "$thr" "$SECS" |
                awk -v v=$v -v r=$r '{print r, v, $2, $4, $5, $8, $17}' >>"$out"
        done
    done
done
rm -rf "$DIR/run"
python3 - "$out" <<'PY'
import collections, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r, v, size, thr, ops, p50, cpu = line.split()
    d[(int(size), int(thr.rstrip(':')), v)].append((float(ops), float(p50), float(cpu)))
print("%-8s %-3s %-5s %-40s %8s | %-34s %6s | %s" % ("size", "thr", "build", "puts/s by round", "median",
      "p50 us by round", "median", "CPU us/put median"))
for k in sorted(d):
    ops = [a for a, _, _ in d[k]]
    p50 = [b for _, b, _ in d[k]]
    cpu = [c for _, _, c in d[k]]
    print("%-8d %-3d %-5s %-40s %8.0f | %-34s %6.0f | %.0f" % (k[0], k[1], k[2], " ".join("%.0f" % x for x in ops),
          statistics.median(ops), " ".join("%.0f" % x for x in p50), statistics.median(p50), statistics.median(cpu)))
# Same-round ratios new/base: each round's pair ran back to back.
for size, thr in sorted({(k[0], k[1]) for k in d}):
    b, n = d.get((size, thr, "base"), []), d.get((size, thr, "new"), [])
    rs = [y[0] / x[0] for x, y in zip(b, n) if x[0] > 0]
    if rs:
        print("%-8d %-3d new/base by round: %s  median %.2f, new ahead in %d of %d" % (size, thr,
              " ".join("%.2f" % x for x in rs), statistics.median(rs), sum(x > 1 for x in rs), len(rs)))
PY
