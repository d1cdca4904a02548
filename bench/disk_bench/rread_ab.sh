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
mkdir -p "$DIR"
build() { # $1 source tree, $2 build dir
    cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$2" -j2 --target nb_disk nb_common >/dev/null
}
rm -rf "$DIR/base-src"
mkdir -p "$DIR/base-src"
git archive "$BASE" | tar -x -m -C "$DIR/base-src"
build "$DIR/base-src" "$DIR/base-build"
build . "$DIR/new-build"
for v in base new; do
    src=$([ $v = base ] && echo "$DIR/base-src" || echo .)
    cc -O2 -std=gnu17 -I "$src/src" -o "$DIR/rread-$v" bench/disk_bench/disk_rread.c \
        "$DIR/$v-build/src/disk/libnb_disk.a" "$DIR/$v-build/src/common/libnb_common.a" \
        $(pkg-config --libs liburing libxxhash) -lpthread
done
for ((r = 0; r < ROUNDS; r++)); do
    order=$([ $((r % 2)) = 0 ] && echo "base new" || echo "new base")
    for v in $order; do
        rm -rf "$DIR/run"
        echo "round $r $v: $("$DIR/rread-$v" "$DIR/run" "$BLOBS" "$CHUNK" "$PASSES")"
    done
done
rm -rf "$DIR/run"
