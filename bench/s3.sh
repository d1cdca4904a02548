#!/usr/bin/env bash
# S3 gateway: ../shared/bench/matrix.sh (s3bench: PUT and GET of 4 KiB with
# 16 clients, 1 MiB with 8, 64 MiB with 2) against `nebula server` (SigV4,
# builtin signer) and against the plain-HTTP reference, nginx with WebDAV
# PUT (../shared/bench/nginx-ref.sh, unsigned), alternating A,B,A,B.
# Prints per cell and side the median ops/s, MiB/s and server CPU µs per
# op, and the ratios nebula/nginx (ops/s: higher is better; CPU: lower).
#   env: S3_BENCH_ROUNDS (2), DURATION (seconds per cell, 10),
#        NEBULA (binary, build/release/src/cli/nebula), CELLS (matrix.sh),
#        S3_BENCH_THREADS (server HTTP threads, 2 = one per core, the
#        server's default here; commits run on the gateway's own workers),
#        NEBULA_BASE (optional second binary, e.g. a build of main: run as
#        a third side "base" in the same rounds, for before/after ratios)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${S3_BENCH_ROUNDS:-2}
export DURATION=${DURATION:-10}
NEBULA=${NEBULA:-build/release/src/cli/nebula}
SHARED=${NB_SHARED_BENCH:-../shared/bench}
# A worktree under wt/ finds the shared tools one level further up.
[ -n "${NB_SHARED_BENCH:-}" ] || [ -d "$SHARED" ] || SHARED=../../shared/bench
NB_PORT=18092
export NGINX_REF_ROOT=/tmp/nebula-s3bench-nginx NGINX_REF_PORT=18093

[ -x "$NEBULA" ] || { echo "s3 bench: $NEBULA missing (make build)" >&2; exit 1; }
[ -f "$SHARED/matrix.sh" ] || { echo "s3 bench: $SHARED/matrix.sh missing" >&2; exit 1; }

work=$(mktemp -d /tmp/nebula-s3-bench.XXXXXX)
# s3bench is built in the scratch directory, never in a source tree.
cp "$SHARED/s3bench.c" "$SHARED/build.sh" "$work/"
sh "$work/build.sh" || { echo "s3 bench: cannot build s3bench" >&2; exit 1; }
export S3BENCH=$work/s3bench

KEY=S3BENCHACCESSKEY0001
SECRET=s3bench-secret-key-0000000000000000000001
BASE_PORT=18094
start_nebula() { # binary port dir -> pid in $!
    NEBULA_ACCESS_KEY=$KEY NEBULA_SECRET_KEY=$SECRET "$1" server --data "$3" \
        --listen 127.0.0.1:"$2" --threads "${S3_BENCH_THREADS:-2}" --log-level warn \
        >"$3.out" 2>&1 &
}
start_nebula "$NEBULA" $NB_PORT "$work/data"
nb_pid=$!
base_pid=
if [ -n "${NEBULA_BASE:-}" ]; then
    start_nebula "$NEBULA_BASE" $BASE_PORT "$work/base"
    base_pid=$!
fi
cleanup() {
    kill "$nb_pid" $base_pid 2>/dev/null || true
    wait "$nb_pid" $base_pid 2>/dev/null || true
    bash "$SHARED/nginx-ref.sh" stop >/dev/null 2>&1 || true
    rm -rf "$work" "$NGINX_REF_ROOT"
}
trap cleanup EXIT
bash "$SHARED/nginx-ref.sh" start >/dev/null
for port in $NB_PORT ${base_pid:+$BASE_PORT}; do
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
        sleep 0.1
    done
done

# One matrix run; lines "op size cN: X ops/s Y MiB/s ... cpu us/op client C server S ...".
run_side() { # name -> appends "name round op size ops mib cpu" to $work/results
    local name=$1 round=$2 out
    if [ "$name" = nebula ]; then
        out=$(SERVER_PIDS=$nb_pid LOG=$work/nebula-$round.log bash "$SHARED/matrix.sh" \
            "http://127.0.0.1:$NB_PORT" "$KEY" "$SECRET" --signer builtin) || true
    elif [ "$name" = base ]; then
        out=$(SERVER_PIDS=$base_pid LOG=$work/base-$round.log bash "$SHARED/matrix.sh" \
            "http://127.0.0.1:$BASE_PORT" "$KEY" "$SECRET" --signer builtin) || true
    else
        out=$(SERVER_PIDS=$(bash "$SHARED/nginx-ref.sh" pids) LOG=$work/nginx-$round.log \
            bash "$SHARED/matrix.sh" "http://127.0.0.1:$NGINX_REF_PORT" - - --no-sign) || true
    fi
    printf '%s\n' "$out" | sed "s/^/[$name $round] /" >&2
    printf '%s\n' "$out" | awk -v n="$name" -v r="$round" '
        / ops\/s / { for (i = 1; i <= NF; i++) {
                         if ($i == "ops/s") ops = $(i - 1)
                         if ($i == "MiB/s") mib = $(i - 1)
                         if ($i == "server") { srv = $(i + 1); break } }
                     err = ($0 ~ /FAILED/) ? "FAILED" : ""
                     for (i = 1; i <= NF; i++) if ($i == "errors" && $(i + 1) != "0") err = "errors"
                     print n, r, $1, $2, ops, mib, srv, err }' >>"$work/results"
}

for r in $(seq "$ROUNDS"); do
    run_side nebula "$r"
    run_side nginx "$r"
    [ -z "$base_pid" ] || run_side base "$r"
done

echo "S3 matrix (s3bench via matrix.sh, ${DURATION}s per cell, medians of $ROUNDS rounds, alternating)"
awk '
    function median(list,   n, a, i, j, t) {
        n = split(list, a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n ? (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) : 0
    }
    { if ($1 == "base") hasbase = 1
      k = $3 " " $4; cells[k] = 1; order[k] = order[k] ? order[k] : ++nk; key[nk] = k
      ops[$1, k] = ops[$1, k] " " $5; mib[$1, k] = mib[$1, k] " " $6; cpu[$1, k] = cpu[$1, k] " " $7
      if ($8 != "") bad[$1, k] = $8 }
    END {
      printf "%-10s %11s %11s %9s %9s %11s %11s %7s %7s\n", "cell", "nebula op/s", "nginx op/s",
             "neb MiB/s", "ngx MiB/s", "neb cpu/op", "ngx cpu/op", "ops", "cpu"
      for (i = 1; i <= nk; i++) { k = key[i]; if (seen[k]++) continue
        a = median(ops["nebula", k]); b = median(ops["nginx", k])
        am = median(mib["nebula", k]); bm = median(mib["nginx", k])
        ac = median(cpu["nebula", k]); bc = median(cpu["nginx", k])
        printf "%-10s %11.1f %11.1f %9.1f %9.1f %9.0fus %9.0fus %7.2f %7.2f%s\n", k, a, b, am, bm, ac, bc,
               (b > 0 ? a / b : 0), (bc > 0 ? ac / bc : 0),
               (bad["nebula", k] != "" || bad["nginx", k] != "" ? "  (" bad["nebula", k] bad["nginx", k] ")" : "") }
      print "ops = nebula/nginx ops/s (higher is better); cpu = nebula/nginx server CPU per op (lower is better)"
      if (!hasbase) exit
      printf "\n%-10s %11s %11s %7s %7s %7s\n", "cell", "base op/s", "base cpu/op", "base/ngx", "neb/base", "cpu n/b"
      for (i = 1; i <= nk; i++) { k = key[i]; if (seen2[k]++) continue
        a = median(ops["nebula", k]); b = median(ops["nginx", k]); c = median(ops["base", k])
        ac = median(cpu["nebula", k]); cc = median(cpu["base", k])
        printf "%-10s %11.1f %9.0fus %7.2f %7.2f %7.2f\n", k, c, cc, (b > 0 ? c / b : 0),
               (c > 0 ? a / c : 0), (cc > 0 ? ac / cc : 0) }
      print "base = NEBULA_BASE; neb/base = nebula/base ops/s; cpu n/b = nebula/base server CPU per op"
    }' "$work/results"
