#!/bin/sh
# bench/run.sh: bottleneck's speed next to the other runtimes, in one invocation,
# so that the ratios compare runs made under the same conditions.
#
#   sh bench/run.sh [BUILD_DIR] [REPS]        (from the repository root)
#
# BUILD_DIR (default: build) must hold bench/bench_net and
# extract/bottleneck-extract (meson option bench=true, the default).
# Runs, each through ../shared/bench/measure.py (which first waits up to 60 s
# for a quiet machine and then reports how many cores other processes used
# during the run, foreign_cores_avg):
#   1. bench_net --conv direct, then --conv winograd, then --conv auto (with the
#      per-layer table): the network alone, 224x224, batch 8, 2 threads;
#   2. bottleneck-extract end to end (decode, resize, network, SQLite) on the
#      2,000 training photos of ../shared/data/catsdogs, into a fresh database,
#      --conv auto, batch 8, 2 threads;
#   3. sh ../shared/bench/peers.sh onednn and ort (oneDNN direct/Winograd/BF16,
#      ONNX Runtime); PEERS=all adds PyTorch and the FMA peak.
# and ends with a summary: images/s of each, and the ratios of the network
# (--conv auto, the default) to oneDNN Winograd and to ONNX Runtime, and of the
# extractor to the network alone.
#
# Environment: SHARED (default ../shared), PEERS (default "onednn ort"),
# PHOTOS (default $SHARED/data/catsdogs/train), BENCH_OUT (default a temp dir:
# the raw log and the extractor's database).
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
reps=${2:-5}
case $build in /*) ;; *) build="$root/$build" ;; esac
shared=${SHARED:-$root/../shared}
photos=${PHOTOS:-$shared/data/catsdogs/train}
peers=${PEERS:-onednn ort}
out=${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/bottleneck-bench.XXXXXX")}
mkdir -p "$out"
log="$out/bench.log"
net="$build/bench/bench_net"
extract="$build/extract/bottleneck-extract"
measure="$shared/bench/measure.py"

for f in "$net" "$extract" "$measure"; do
    [ -e "$f" ] || { echo "bench/run.sh: missing $f (build with meson, option bench=true)" >&2; exit 1; }
done
: > "$log"
echo "INFO log=$log uptime=\"$(uptime)\"" | tee -a "$log"

run() { /usr/bin/python3 "$measure" --quiet-wait 60 "$@" 2>&1 | tee -a "$log"; }

# 1. The network alone.
run net_direct "$net" --conv direct --reps "$reps"
run net_winograd "$net" --conv winograd --reps "$reps"
run net_auto "$net" --conv auto --reps "$reps" --layers

# 2. The extractor end to end on real photos (weights: random He-normal
#    file from ../shared, same cost as the real ones).
db="$out/extract.db"
rm -f "$db" "$db-wal" "$db-shm"
run extract_auto "$extract" --weights "$shared/models/vgg16_random_notop.h5" --db "$db" \
    --conv auto --batch 8 --threads 2 --quiet --json "$photos"

# 3. The peers.
for p in $peers; do
    run "peers_$p" sh "$shared/bench/peers.sh" "$p" "$reps"
done

# Summary from the log.
/usr/bin/python3 - "$log" <<'EOF'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
def kv(line):
    return dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
res = [kv(l) for l in lines if l.startswith('RESULT ')]
def best(pred, key='img_s_median'):
    v = [float(r[key]) for r in res if pred(r) and key in r]
    return max(v) if v else None
ours = {e: best(lambda r, e=e: r.get('runtime') == 'bottleneck' and r.get('conv') == e)
        for e in ('direct', 'winograd', 'auto')}
wino = best(lambda r: r.get('runtime') == 'onednn' and r.get('alg') == 'winograd' and r.get('dt') == 'f32')
dnnl = best(lambda r: r.get('runtime') == 'onednn' and r.get('alg') == 'direct' and r.get('dt') == 'f32')
ort = best(lambda r: r.get('runtime', '').startswith('onnxruntime') and r.get('batch') == '8')
ext = None
for l in lines:
    m = re.search(r'"images_per_second":([0-9.]+)', l)
    if m:
        ext = float(m.group(1))
rss = [r.get('peak_rss_mb') for r in res if r.get('runtime') == 'bottleneck' and r.get('conv') == 'auto']
fast = ours['auto'] or 0  # the default engine choice, what users get
print("\nSUMMARY (images/s at 224x224, batch 8, 2 threads; median of the reps)")
for e, v in ours.items():
    print(f"  bottleneck network --conv {e:8s} {v if v is not None else 'n/a'}")
print(f"  bottleneck-extract end to end      {ext if ext is not None else 'n/a'}")
print(f"  oneDNN Winograd F32                {wino if wino is not None else 'n/a'}")
print(f"  oneDNN direct F32                  {dnnl if dnnl is not None else 'n/a'}")
print(f"  ONNX Runtime                       {ort if ort is not None else 'n/a'}")
if rss:
    print(f"  peak RSS of bench_net --conv auto  {rss[0]} MB")
if fast and wino:
    print(f"RATIO bottleneck/onednn_winograd={fast / wino:.2f}")
if fast and ort:
    print(f"RATIO bottleneck/onnxruntime={fast / ort:.2f}")
if fast and ext:
    print(f"RATIO extract/network={ext / fast:.2f}")
foreign = [l for l in lines if 'foreign_cores_avg=' in l]
worst = max((float(kv(l)['foreign_cores_avg']) for l in foreign), default=0)
print(f"INFO worst foreign_cores_avg={worst:.2f} (0 = quiet machine; above ~0.3 the numbers are noisy)")
EOF
