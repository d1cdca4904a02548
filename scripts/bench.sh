#!/usr/bin/env bash
# Runs every benchmark under bench/ (each bench/*.sh compares one capability
# with its reference in the same run and prints ratios). Results go to
# stdout and to bench-out/<name>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench-out
shopt -s nullglob
benches=(bench/*.sh)
if [ ${#benches[@]} -eq 0 ]; then
    echo "bench: no benchmarks registered yet (add bench/<name>.sh)"
    exit 0
fi
for b in "${benches[@]}"; do
    name=$(basename "$b" .sh)
    echo "== $name"
    bash "$b" 2>&1 | tee "bench-out/$name.txt"
done
