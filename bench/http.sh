#!/usr/bin/env bash
# HTTP front end: `nebula server` GET /health against nginx (the shared
# reference, ../shared/bench/nginx-ref.sh) serving a static file of the same
# size, both on loopback, driven by wrk, alternating A,B,A,B. Reports
# requests/s and server CPU microseconds per request, and their ratios.
#   env: HTTP_BENCH_ROUNDS (3), HTTP_BENCH_SECONDS (5), HTTP_BENCH_CONNS (32)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${HTTP_BENCH_ROUNDS:-3}
SECS=${HTTP_BENCH_SECONDS:-5}
CONNS=${HTTP_BENCH_CONNS:-32}
NGINX_REF=../shared/bench/nginx-ref.sh
NEBULA=build/release/src/cli/nebula
NB_PORT=18090
export NGINX_REF_ROOT=/tmp/nebula-bench-nginx NGINX_REF_PORT=18091

[ -x "$NGINX_REF" ] || [ -f "$NGINX_REF" ] || { echo "http bench: $NGINX_REF missing" >&2; exit 1; }
command -v wrk >/dev/null || { echo "http bench: wrk missing (scripts/deps.sh bench)" >&2; exit 1; }

work=$(mktemp -d /tmp/nebula-http-bench.XXXXXX)
"$NEBULA" server --data "$work/data" --listen 127.0.0.1:$NB_PORT --threads 2 \
    --log-level warn >"$work/nebula.out" 2>&1 &
nb_pid=$!
cleanup() {
    kill "$nb_pid" 2>/dev/null || true
    wait "$nb_pid" 2>/dev/null || true
    bash "$NGINX_REF" stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
bash "$NGINX_REF" start >/dev/null
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$NB_PORT/health" >/dev/null && break
    sleep 0.1
done
# The same payload size for both servers.
curl -sf "http://127.0.0.1:$NB_PORT/health" >"$NGINX_REF_ROOT/data/health.json"

cpu_ticks() { # sum of utime+stime of the given pids (comma-separated)
    local t=0
    for p in ${1//,/ }; do
        set -- $(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null || echo "0 0")
        t=$((t + $1 + $2))
    done
    echo $t
}

run_one() { # name url pids -> "rps cpu_us_per_req"
    local before after out rps reqs
    before=$(cpu_ticks "$3")
    out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "$2")
    after=$(cpu_ticks "$3")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    awk -v r="$rps" -v n="$reqs" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.0f %.2f\n", r, (n > 0 ? t / hz * 1e6 / n : 0) }'
}

printf "%-6s %12s %12s %8s %14s %14s %8s\n" round nebula_rps nginx_rps ratio \
    nebula_cpu_us nginx_cpu_us ratio
ratios=()
for r in $(seq "$ROUNDS"); do
    read -r a_rps a_cpu < <(run_one nebula "http://127.0.0.1:$NB_PORT/health" "$nb_pid")
    read -r b_rps b_cpu < <(run_one nginx "http://127.0.0.1:$NGINX_REF_PORT/health.json" \
        "$(bash "$NGINX_REF" pids)")
    ratio=$(awk -v a="$a_rps" -v b="$b_rps" 'BEGIN { printf "%.2f", a / b }')
    cratio=$(awk -v a="$a_cpu" -v b="$b_cpu" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    ratios+=("$ratio")
    printf "%-6s %12s %12s %8s %14s %14s %8s\n" "$r" "$a_rps" "$b_rps" "$ratio" "$a_cpu" \
        "$b_cpu" "$cratio"
done
median=$(printf "%s\n" "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "http: GET small body, ${CONNS} connections, loopback: nebula/nginx rps median ratio = $median"
