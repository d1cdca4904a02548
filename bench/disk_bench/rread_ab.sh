#!/usr/bin/env bash
# A/B of warm range reads after a reopen (disk_rread) between a base git ref
# (default main) and this tree, alternating the builds in each round.
#   env: AB_BASE (main), AB_ROUNDS (3), AB_BLOBS (16), AB_CHUNK (131072),
#        AB_PASSES (4), AB_DIR (/tmp/disk-rread-ab)
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=${AB_BASE:-main}
ROUNDS=${AB_ROUNDS:-3}
BLOBS=${AB_BLOBS:-16}
CHUNK=${AB_CHUNK:-131072}
PASSES=${AB_PASSES:-4}
DIR=${AB_DIR:-/tmp/disk-rread-ab}
. bench/disk_bench/ab_build.sh
ab_build "$DIR" "$BASE" bench/disk_bench/disk_rread.c rread
for ((r = 0; r < ROUNDS; r++)); do
    order=$([ $((r % 2)) = 0 ] && echo "base new" || echo "new base")
    for v in $order; do
        rm -rf "$DIR/run"
        echo "round $r $v: $("$DIR/rread-$v" "$DIR/run" "$BLOBS" "$CHUNK" "$PASSES")"
    done
done
rm -rf "$DIR/run"
