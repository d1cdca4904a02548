#!/usr/bin/env bash
# The POSIX mount against its references, in one run: the same fio jobs and
# a small-file metadata loop on (1) a local directory, (2) libfuse's own
# passthrough_ll example over a local directory (the FUSE reference, built
# here from Debian's libfuse3-dev examples), and (3) `nebula server
# --mount`. Rounds alternate A,B,C; medians and ratios are printed.
# Then a PyTorch DataLoader (2 workers) reads FUSE_BENCH_SAMPLES small files
# from the mount and from the local directory, cold caches, alternating.
#   env: FUSE_BENCH_SIZE (1G)  FUSE_BENCH_ROUNDS (3)  FUSE_BENCH_FILES (10000)
#        FUSE_BENCH_RUNTIME (10, seconds for random reads)
#        FUSE_BENCH_SAMPLES (20000; 0 skips the DataLoader)
#        FUSE_BENCH_FIO (1; 0 skips fio and the metadata loop: DataLoader only)
#        NEBULA_BIN (build/release/src/cli/nebula)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${FUSE_BENCH_SIZE:-1G}
ROUNDS=${FUSE_BENCH_ROUNDS:-3}
NFILES=${FUSE_BENCH_FILES:-10000}
RUNTIME=${FUSE_BENCH_RUNTIME:-10}
SAMPLES=${FUSE_BENCH_SAMPLES:-20000}
FIO=${FUSE_BENCH_FIO:-1}
NEBULA=${NEBULA_BIN:-build/release/src/cli/nebula}
EXAMPLE=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
for t in fio gcc pkg-config; do
    command -v $t >/dev/null || { echo "fuse bench: $t missing (scripts/deps.sh bench)" >&2; exit 1; }
done
[ -f "$EXAMPLE" ] || { echo "fuse bench: $EXAMPLE missing (libfuse3-dev)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/nebula-fuse-bench.XXXXXX)
mkdir -p "$work"/{local,pt_src,pt_mnt,nb_mnt}
gcc -O2 -w -o "$work/passthrough_ll" "$EXAMPLE" $(pkg-config --cflags --libs fuse3)
# passthrough_ll keeps its inodes in a linked list (lo_find walks it), so
# its per-file cost grows with every inode it has seen: in one process the
# create rate fell 1,856 -> 1,197 -> 503 files/s over three rounds of
# 3,000 files while its CPU per file rose 286 -> 703 -> 1,310 us. Each
# round's metadata loop therefore runs on a freshly started instance.
start_pt() {
    "$work/passthrough_ll" -f -o source="$work/pt_src" "$work/pt_mnt" 2>>"$work/pt.log" &
    pt_pid=$!
    for _ in $(seq 100); do mountpoint -q "$work/pt_mnt" && return 0; sleep 0.1; done
    echo "fuse bench: passthrough_ll did not mount" >&2
    return 1
}
stop_pt() {
    fusermount3 -u "$work/pt_mnt" 2>/dev/null || true
    wait "$pt_pid" 2>/dev/null || true
}
start_pt
"$NEBULA" server --data "$work/nb_data" --listen 127.0.0.1:0 --mount "$work/nb_mnt" \
    --log-level warn >"$work/nb.out" 2>&1 &
nb_pid=$!
cleanup() {
    kill "$nb_pid" 2>/dev/null || true
    wait "$nb_pid" 2>/dev/null || true
    stop_pt
    rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do
    grep -q "Press Ctrl-C" "$work/nb.out" 2>/dev/null && break
    sleep 0.1
done
mountpoint -q "$work/nb_mnt" || { cat "$work/nb.out" >&2; exit 1; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

fio_bw() { # dir rw bs [jobs] -> MiB/s (reads: IOPS for 4k)
    local dir=$1 rw=$2 bs=$3 jobs=${4:-1} extra=()
    [ "$rw" = randread ] && extra=(--time_based --runtime="$RUNTIME")
    [ "$rw" = write ] && extra=(--end_fsync=1)
    fio --name=b --directory="$dir" --filename=bench.dat --rw="$rw" --bs="$bs" --size="$SIZE" \
        --numjobs="$jobs" --ioengine=psync --group_reporting --output-format=terse \
        --terse-version=3 "${extra[@]}" 2>/dev/null |
        awk -F';' -v rw="$rw" -v bs="$bs" '{
            if (rw == "write") printf "%.1f\n", $48 / 1024;      # write bw KiB/s
            else if (bs == "4k") printf "%.0f\n", $8;            # read IOPS
            else printf "%.1f\n", $7 / 1024 }'                    # read bw KiB/s
}

meta_ops() { # dir -> "create stat delete" ops/s
    /usr/bin/python3 - "$1" "$NFILES" <<'PY'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
top = os.path.join(d, "meta"); os.mkdir(top)
names = [os.path.join(top, "f%06d" % i) for i in range(n)]
t = time.monotonic()
for p in names:
    with open(p, "wb") as f: f.write(b"x")
c = n / (time.monotonic() - t); t = time.monotonic()
for p in names: os.stat(p)
s = n / (time.monotonic() - t); t = time.monotonic()
for p in names: os.unlink(p)
u = n / (time.monotonic() - t)
os.rmdir(top)
print("%.0f %.0f %.0f" % (c, s, u))
PY
}

declare -A R
targets=(local passthrough nebula)
dir_of() { case $1 in local) echo "$work/local" ;; passthrough) echo "$work/pt_mnt" ;; nebula) echo "$work/nb_mnt" ;; esac; }
for r in $(seq "$ROUNDS"); do
    [ "$FIO" = 0 ] && break
    for t in "${targets[@]}"; do
        d=$(dir_of "$t")
        R[$t,seqwrite,$r]=$(fio_bw "$d" write 1M)
        drop_caches
        R[$t,seqread,$r]=$(fio_bw "$d" read 1M)
        drop_caches
        R[$t,randread,$r]=$(fio_bw "$d" randread 4k 4)
        rm -f "$d"/bench.dat*
        [ "$t" = passthrough ] && { stop_pt; start_pt; }
        read -r c s u < <(meta_ops "$d")
        R[$t,create,$r]=$c
        R[$t,stat,$r]=$s
        R[$t,delete,$r]=$u
        echo "round $r $t: seqwrite ${R[$t,seqwrite,$r]} MiB/s, seqread ${R[$t,seqread,$r]} MiB/s," \
            "randread ${R[$t,randread,$r]} IOPS, create $c/s, stat $s/s, delete $u/s" >&2
    done
done

# DataLoader: the same samples on both sides. drop_caches empties the
# kernel's page, dentry and inode caches before each side: the local
# directory and the mount both start with nothing in the kernel, and
# nebula's kv tables are read from the device too. What drop_caches does
# not empty is the server's own memory: the metadata kv's block cache
# (--meta-cache-size, 32 MiB by default, against ~180 MiB of inline
# samples: it keeps the metadata, and few samples) and the memtable
# holding the most recent writes.
loader_rate() { # dir -> samples/s
    /usr/bin/python3 - "$1" <<'PY'
import os, sys, time
import torch
from torch.utils.data import DataLoader, Dataset
class Files(Dataset):
    def __init__(self, root):
        self.paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
    def __len__(self): return len(self.paths)
    def __getitem__(self, i):
        with open(self.paths[i], "rb") as f:
            return torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).sum()
ds = Files(sys.argv[1])
dl = DataLoader(ds, batch_size=64, num_workers=2, shuffle=True,
                generator=torch.Generator().manual_seed(0))
t = time.monotonic(); n = 0
for b in dl: n += len(b)
assert n == len(ds)
print("%.0f" % (n / (time.monotonic() - t)))
PY
}
if [ "$SAMPLES" -gt 0 ]; then
    /usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "fuse bench: python3-torch missing (scripts/deps.sh bench)" >&2; exit 1; }
    /usr/bin/python3 - "$work/local/samples" "$SAMPLES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
for i in range(n):
    d = os.path.join(root, "c%03d" % (i % 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "s%06d.bin" % i), "wb") as f:
        f.write(rng.randbytes(rng.randrange(2048, 16384)))
PY
    cp -r "$work/local/samples" "$work/nb_mnt/samples"
    # Per nebula round also the server's CPU per sample and what it read
    # from the device (/proc/PID/stat, /proc/PID/io): the second round has
    # been slower on quiet runs since session 5, and these say whether the
    # server did more work in it or only waited longer.
    srv_ticks() { awk '{print $14 + $15}' "/proc/$nb_pid/stat"; }
    srv_read() { awk '/^read_bytes/ {print $2}' "/proc/$nb_pid/io"; }
    hz=$(getconf CLK_TCK)
    for r in $(seq "$ROUNDS"); do
        for t in local nebula; do
            drop_caches
            c0=$(srv_ticks) b0=$(srv_read)
            R[$t,loader,$r]=$(loader_rate "$(dir_of "$t")/samples")
            extra=
            [ "$t" = nebula ] && extra=$(awk -v c=$(($(srv_ticks) - c0)) -v b=$(($(srv_read) - b0)) \
                -v hz="$hz" -v n="$SAMPLES" 'BEGIN {
                printf ", server %.0f us CPU and %.1f KiB read per sample", c * 1e6 / hz / n, b / 1024 / n }')
            echo "round $r $t: DataLoader ${R[$t,loader,$r]} samples/s$extra" >&2
        done
    done
fi

median() { printf "%s\n" "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf "%-10s %12s %12s %12s %10s %10s\n" metric local passthrough nebula "/pt" "/local"
for m in seqwrite seqread randread create stat delete; do
    [ "$FIO" = 0 ] && break
    vals=()
    for t in "${targets[@]}"; do
        xs=()
        for r in $(seq "$ROUNDS"); do xs+=("${R[$t,$m,$r]}"); done
        vals+=("$(median "${xs[@]}")")
    done
    awk -v m="$m" -v l="${vals[0]}" -v p="${vals[1]}" -v n="${vals[2]}" 'BEGIN {
        printf "%-10s %12s %12s %12s %10.2f %10.2f\n", m, l, p, n, (p > 0 ? n / p : 0), (l > 0 ? n / l : 0) }'
done
if [ "$SAMPLES" -gt 0 ]; then
    l=(); n=()
    for r in $(seq "$ROUNDS"); do l+=("${R[local,loader,$r]}"); n+=("${R[nebula,loader,$r]}"); done
    awk -v l="$(median "${l[@]}")" -v n="$(median "${n[@]}")" 'BEGIN {
        printf "%-10s %12s %12s %12s %10s %10.2f\n", "loader", l, "-", n, "-", (l > 0 ? n / l : 0) }'
fi
echo "units: seqwrite/seqread MiB/s (1 MiB blocks, $SIZE file), randread IOPS (4 KiB, 4 jobs), create/stat/delete files per second ($NFILES files), loader samples/s (PyTorch DataLoader, 2 workers, $SAMPLES files of 2-16 KiB, cold cache)"
