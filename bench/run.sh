#!/bin/sh
# bench/run.sh: bottleneck's speed next to the other runtimes, in one invocation,
# so that the ratios compare runs made under the same conditions.
#
#   sh bench/run.sh [BUILD_DIR] [REPS]        (from the repository root)
#
# BUILD_DIR (default: build) must hold bench/bench_net and
# extract/bottleneck-extract (meson option bench=true, the default).
# First prints the host: CPU model, and its FP32 / BF16 / FP16 peaks
# (sh ../shared/bench/peers.sh peak; on a CPU without AVX-512, where that
# cannot build, the FP32 peak of bench/fma_peak): the hosts of this kind are
# not all the same CPU, so every result is read next to them. Then:
#   0. start-up (bench/startup.py): launch to exit of bottleneck-extract on one
#      photo, and launch to its vector in the database (warm page cache and
#      kernel cache; once cold), and launch to exit of
#      bottleneck-classify predict --run N on one new photo, STARTUP_ROUNDS
#      (default 5) times; with BASELINE=OTHER_BUILD_DIR the same runs of that
#      build alternate with these (before/after in one run). STARTUP_ONLY=1
#      stops after this step.
# Then runs, each through ../shared/bench/measure.py (which first waits up to 60 s
# for a quiet machine and then reports how many cores other processes used
# during the run, foreign_cores_avg):
#   1. bench_net --conv direct, then --conv winograd, then --conv auto (with the
#      per-layer table, as % of the FP32 peak measured above), then
#      --precision fast (BF16, FP16 or AMX where this CPU runs it faster; in the paired
#      rounds of step 4 too): the network alone, 224x224, batch 8, 2 threads;
#   2. bottleneck-extract end to end (decode, resize, network, SQLite) on the
#      2,000 training photos of ../shared/data/catsdogs, into a fresh database,
#      --conv auto, batch 8, 2 threads;
#   3. sh ../shared/bench/peers.sh onednn and ort (oneDNN direct/Winograd/BF16,
#      ONNX Runtime); PEERS=all adds PyTorch and the FMA peak.
#   4. ROUNDS (default 5) paired rounds: the network, oneDNN's Winograd and ONNX
#      Runtime back to back (3 reps each), for ratios measured seconds apart;
#   5. EXTRACT_ROUNDS (default 3) paired rounds: the extractor on ROUND_PHOTOS
#      (default 400) of the photos, then the network alone on as many images;
#   6. GOOGLENET_ROUNDS (default 5) paired rounds: GoogLeNet from its ONNX file
#      through bench/bench_graph and through ONNX Runtime (bench/ort_model.js);
# and ends with a summary: the host (CPU model, the caches the engine sized
# its blocks for, the peaks), images/s of each, and the ratios of the network
# (--conv auto, the default) to oneDNN Winograd and to ONNX Runtime (from the
# single runs, and the median of the paired rounds), and of the extractor to
# the network alone.
#
# Environment: SHARED (default ../shared), PEERS (default "onednn ort"), ROUNDS,
# EXTRACT_ROUNDS, ROUND_PHOTOS, STARTUP_ROUNDS, BASELINE, STARTUP_ONLY,
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
# The transformed kernels of the runs below (418 MB for VGG16) go to the
# temp dir, not to the user's cache (startup.py keeps its own per build).
export BOTTLENECK_KERNEL_CACHE="${BOTTLENECK_KERNEL_CACHE:-$out/kcache}"
net="$build/bench/bench_net"
extract="$build/extract/bottleneck-extract"
measure="$shared/bench/measure.py"

for f in "$net" "$extract" "$measure"; do
    [ -e "$f" ] || { echo "bench/run.sh: missing $f (build with meson, option bench=true)" >&2; exit 1; }
done
: > "$log"
echo "INFO log=$log uptime=\"$(uptime)\"" | tee -a "$log"

run() { /usr/bin/python3 "$measure" --quiet-wait 60 "$@" 2>&1 | tee -a "$log"; }

# The host, at the top of every result.
cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
echo "INFO cpu=\"$cpu\" cores=$(nproc) flags=\"$(grep -o -w -E 'avx512f|avx512_bf16|avx512_fp16|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')\"" |
    tee -a "$log"
sh "$shared/bench/peers.sh" peak 2>&1 | grep '^RESULT' | tee -a "$log" || true
# peers.sh's peak_fma.c needs AVX-512 to build: elsewhere (an AVX2-only CPU)
# the FP32 peak comes from bench/fma_peak.
if ! grep -q '^RESULT bench=fma_avx512_fp32 threads=2 ' "$log" && [ -x "$build/bench/fma_peak" ]; then
    "$build/bench/fma_peak" 5 | tee -a "$log" || true
fi
# The per-layer table's percentages are of this host's FP32 peak on 2 threads
# (bench_net's default, 234, is the reference machine's): AVX-512's where
# the CPU has it, else AVX2's.
peak=$(sed -n 's/^RESULT bench=fma_avx512_fp32 threads=2 .*gflops_median=\([0-9.]*\).*/\1/p' "$log" | tail -n 1)
[ -n "$peak" ] ||
    peak=$(sed -n 's/^RESULT bench=fma_avx2_fp32 threads=2 .*gflops_median=\([0-9.]*\).*/\1/p' "$log" | tail -n 1)
peak_arg=""
[ -n "$peak" ] && peak_arg="--peak $peak"

# 0. Start-up: a user's wait for the first vector (bench/startup.py).
startup_builds="$build"
[ -n "${BASELINE:-}" ] && startup_builds="$build $(cd "$BASELINE" && pwd)"
/usr/bin/python3 "$root/bench/startup.py" "$out" "$shared/models/vgg16_random_notop.h5" "$photos" \
    "${STARTUP_ROUNDS:-5}" $startup_builds | tee -a "$log"
if [ -n "${STARTUP_ONLY:-}" ]; then
    peers=""
    ROUNDS=0 EXTRACT_ROUNDS=0 GOOGLENET_ROUNDS=0
fi

# 1. The network alone.
if [ -z "${STARTUP_ONLY:-}" ]; then
run net_direct "$net" --conv direct --reps "$reps"
run net_winograd "$net" --conv winograd --reps "$reps"
run net_auto "$net" --conv auto --reps "$reps" --layers $peak_arg
# --precision fast: BF16, FP16 or AMX products where this CPU runs them faster
# (precision.h; the choice is in the INFO line bench_net prints)
run net_fast "$net" --conv auto --precision fast --reps "$reps"

# 2. The extractor end to end on real photos (weights: random He-normal
#    file from ../shared, same cost as the real ones).
db="$out/extract.db"
rm -f "$db" "$db-wal" "$db-shm"
run extract_auto "$extract" --weights "$shared/models/vgg16_random_notop.h5" --db "$db" \
    --conv auto --batch 8 --threads 2 --quiet --json "$photos"
fi

# 3. The peers.
for p in $peers; do
    run "peers_$p" sh "$shared/bench/peers.sh" "$p" "$reps"
done

# 4. Paired rounds: the network and oneDNN's Winograd (and ONNX Runtime) back
#    to back, ROUNDS times (default 5), with the binaries peers.sh built. The
#    median over rounds of each pair's ratio is the figure least sensitive to
#    other processes coming and going.
# 5. EXTRACT_ROUNDS (default 3) paired rounds of the extractor on a subset of
#    the photos (ROUND_PHOTOS, default 400: the first half from each class
#    folder of PHOTOS, linked into the temp dir) and the network alone on as
#    many images (ROUND_PHOTOS / 8 reps of batch 8, their total time, not a
#    median: the extractor's rate is a total too). One 90-s extract against a
#    2-s network run compares two different stretches of a noisy machine;
#    pairs of 15-s runs back to back compare like with like. The summary
#    also prints network_seconds / seconds of the extractor's rounds: the
#    ratio's bound from the extractor's own time, which other processes
#    hardly move (the network alone ranged 12-32 images/s between rounds at
#    load 4-5 on 2026-12-03), and the shares of the rest: SQLite writes
#    (store_seconds) and waits for the next batch (wait_seconds).
peers_work=${BENCH_WORK:-${TMPDIR:-/tmp}/bottleneck-peers}
if [ -x "$peers_work/dnnl_bench" ] && [ "${ROUNDS:-5}" -gt 0 ]; then
    for i in $(seq "${ROUNDS:-5}"); do
        "$net" --conv auto --reps 3 | grep '^RESULT' | sed "s/^RESULT /RESULT round=$i /" | tee -a "$log"
        "$net" --conv auto --precision fast --reps 3 | grep '^RESULT' |
            sed "s/^RESULT /RESULT round=$i /" | tee -a "$log"
        OMP_NUM_THREADS=2 "$peers_work/dnnl_bench" winograd f32 8 3 2>/dev/null | grep '^RESULT' |
            sed "s/^RESULT /RESULT round=$i /" | tee -a "$log"
        if [ -d "$peers_work/ort/node_modules/onnxruntime-node" ] && command -v node >/dev/null; then
            node "$peers_work/ort/ort_bench.js" "$peers_work/vgg16_features.onnx" 8 3 2 |
                grep '^RESULT' | sed "s/^RESULT /RESULT round=$i /" | tee -a "$log"
        fi
    done
fi

round_photos=${ROUND_PHOTOS:-400}
photos_abs=$(cd "$photos" && pwd) # the links must not depend on the working directory
subset="$out/subset"
rm -rf "$subset"
classes=$(find "$photos_abs" -mindepth 1 -maxdepth 1 -type d | LC_ALL=C sort)
nclass=$(printf '%s\n' "$classes" | grep -c . || true)
if [ "${EXTRACT_ROUNDS:-3}" -gt 0 ] && [ "$nclass" -gt 0 ]; then
    per=$((round_photos / nclass))
    for d in $classes; do
        mkdir -p "$subset/$(basename "$d")"
        find "$d" -maxdepth 1 -type f | LC_ALL=C sort | head -n "$per" |
            while read -r f; do ln -s "$f" "$subset/$(basename "$d")/"; done
    done
    n=$(find "$subset" -type l | wc -l)
    for i in $(seq "${EXTRACT_ROUNDS:-3}"); do
        rm -f "$out/round.db" "$out/round.db-wal" "$out/round.db-shm"
        "$extract" --weights "$shared/models/vgg16_random_notop.h5" --db "$out/round.db" \
            --conv auto --batch 8 --threads 2 --quiet --json "$subset" |
            sed "s/^/ROUND_EXTRACT round=$i /" | tee -a "$log"
        "$net" --conv auto --reps $((n / 8)) | grep '^INFO reps_ms=' |
            sed "s/^INFO /ROUND_NET round=$i /" | tee -a "$log"
    done
    rm -f "$out/round.db" "$out/round.db-wal" "$out/round.db-shm"
fi

# 6. Any network from ONNX: GoogLeNet (../shared/models/bvlc_googlenet.onnx)
#    through bottleneck's graph executor (bench/bench_graph, the whole network
#    to `prob`, --conv auto) and ONNX Runtime 1.30 on the same file
#    (bench/ort_model.js, with the onnxruntime-node peers.sh installed), batch
#    8, 2 threads, GOOGLENET_ROUNDS (default 5) pairs back to back; in each
#    round also bench_graph --precision fast (AMX runs every convolution of it
#    on tiles; BF16 and FP16 only its 3x3 ones).
graph="$build/bench/bench_graph"
googlenet="$shared/models/bvlc_googlenet.onnx"
ort_modules="$peers_work/ort/node_modules"
if [ -x "$graph" ] && [ -f "$googlenet" ] && [ "${GOOGLENET_ROUNDS:-5}" -gt 0 ]; then
    "$graph" "$googlenet" --reps 3 | tee -a "$log" # with the share of each op
    for i in $(seq "${GOOGLENET_ROUNDS:-5}"); do
        "$graph" "$googlenet" --reps 3 | grep '^RESULT' | sed "s/^RESULT /RESULT gl_round=$i /" |
            tee -a "$log"
        "$graph" "$googlenet" --reps 3 --precision fast | grep '^RESULT' |
            sed "s/^RESULT /RESULT gl_round=$i gl_fast=1 /" | tee -a "$log"
        if [ -d "$ort_modules/onnxruntime-node" ] && command -v node >/dev/null; then
            NODE_PATH="$ort_modules" node "$root/bench/ort_model.js" "$googlenet" 224 8 3 2 |
                grep '^RESULT' | sed "s/^RESULT /RESULT gl_round=$i /" | tee -a "$log"
        fi
    done
fi

# Summary from the log.
/usr/bin/python3 - "$log" <<'EOF'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
def kv(line):
    return dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
res = [kv(l) for l in lines if l.startswith('RESULT ') and 'round=' not in l]
rounds = {}
for l in lines:
    if l.startswith('RESULT round='):
        r = kv(l)
        if 'img_s_median' not in r:  # status=unsupported (oneDNN's Winograd without AVX-512)
            continue
        lowp = r.get('engine_id', '').endswith(('-bf16', '-fp16'))
        name = ('lowp' if lowp else 'ours' if r.get('runtime') == 'bottleneck' else
                'wino' if r.get('runtime') == 'onednn' else 'ort')
        rounds.setdefault(r['round'], {})[name] = float(r['img_s_median'])
def single(r):
    # the single runs of VGG16 (steps 1-3), not the paired rounds, nor GoogLeNet (model=)
    return not ({'round', 'gl_round', 'model'} & set(r))
def best(pred, key='img_s_median'):
    v = [float(r[key]) for r in res if single(r) and pred(r) and key in r]
    return max(v) if v else None
def fp32(r):
    return not r.get('engine_id', '').endswith(('-bf16', '-fp16'))
ours = {e: best(lambda r, e=e: r.get('runtime') == 'bottleneck' and r.get('conv') == e and fp32(r))
        for e in ('direct', 'winograd', 'auto')}
lowp = best(lambda r: r.get('runtime') == 'bottleneck' and not fp32(r))
wino = best(lambda r: r.get('runtime') == 'onednn' and r.get('alg') == 'winograd' and r.get('dt') == 'f32')
dnnl = best(lambda r: r.get('runtime') == 'onednn' and r.get('alg') == 'direct' and r.get('dt') == 'f32')
ort = best(lambda r: r.get('runtime', '').startswith('onnxruntime') and r.get('batch') == '8')
ext = None
for l in lines:
    m = re.search(r'"images_per_second":([0-9.]+)', l)
    if m and not l.startswith('ROUND_'):
        ext = float(m.group(1))
rss = [r.get('peak_rss_mb') for r in res
       if single(r) and r.get('runtime') == 'bottleneck' and r.get('conv') == 'auto']
fast = ours['auto'] or 0  # the default engine choice, what users get
print("\nHOST")
for l in lines:
    if l.startswith('INFO cpu='):
        print("  " + l[5:])
# The caches the engine sized its blocks for (bench_net prints them each run).
cache_lines = [l for l in lines if l.startswith('INFO caches ')]
if cache_lines:
    print("  caches " + cache_lines[0][len('INFO caches '):])
peaks = {(r.get('bench'), r.get('threads')): r.get('gflops_max') for r in res if 'bench' in r}
for (b, t), g in sorted(peaks.items()):
    if t == '2':
        print(f"  peak {b:18s} 2 threads {g} GFLOPS")
st = [kv(l) for l in lines if l.startswith('RESULT startup_median ')]
if st:
    print("STARTUP (seconds, launch to exit, and launch to the first stored vector, median of\n"
          "  the rounds; VGG16, one photo; the CPU seconds of the process say what the wall\n"
          "  would be on a quiet host; goals: first vector 0.5 s, predict 1 s)")
    for r in st:
        print(f"  {r['what']:17s} {r['wall_s_median']:>7s}  (min {r['wall_s_min']}, "
              f"max {r['wall_s_max']}, {r['runs']} runs; CPU {r['cpu_s_median']} s)  "
              f"{r['build']}")
        if 'first_vector_s_median' in r:
            print(f"  {'  first vector':17s} {r['first_vector_s_median']:>7s}  (min "
                  f"{r['first_vector_s_min']}, max {r['first_vector_s_max']}; goal 0.5 s)")
print("\nSUMMARY (images/s at 224x224, batch 8, 2 threads; median of the reps)")
for e, v in ours.items():
    print(f"  bottleneck network --conv {e:8s} {v if v is not None else 'n/a'}")
print(f"  bottleneck network --precision fast {lowp if lowp is not None else 'n/a (fp32 here)'}")
print(f"  bottleneck-extract end to end      {ext if ext is not None else 'n/a'}")
print(f"  oneDNN Winograd F32                {wino if wino is not None else 'n/a'}")
print(f"  oneDNN direct F32                  {dnnl if dnnl is not None else 'n/a'}")
print(f"  ONNX Runtime                       {ort if ort is not None else 'n/a'}")
if rss:
    print(f"  peak RSS of bench_net --conv auto  {rss[0]} MB")
if fast and wino:
    print(f"RATIO bottleneck/onednn_winograd={fast / wino:.2f}")
if fast and lowp:
    print(f"RATIO precision_fast/fp32={lowp / fast:.2f}")
if fast and ort:
    print(f"RATIO bottleneck/onnxruntime={fast / ort:.2f}")
if fast and ext:
    print(f"RATIO extract/network={ext / fast:.2f}")
def paired(other):
    v = sorted(d['ours'] / d[other] for d in rounds.values() if 'ours' in d and other in d)
    return (v[len(v) // 2], v[0], v[-1], len(v)) if v else None
for other, label in (('wino', 'onednn_winograd'), ('ort', 'onnxruntime')):
    p = paired(other)
    if p:
        print(f"RATIO paired bottleneck/{label} median={p[0]:.2f} min={p[1]:.2f} max={p[2]:.2f} rounds={p[3]}")
v = sorted(d['lowp'] / d['ours'] for d in rounds.values() if 'lowp' in d and 'ours' in d)
if v:
    print(f"RATIO paired precision_fast/fp32 median={v[len(v) // 2]:.2f} min={v[0]:.2f} "
          f"max={v[-1]:.2f} rounds={len(v)}")
ext_rounds = {}
for l in lines:
    m = re.match(r'ROUND_EXTRACT round=(\d+) .*"images_per_second":([0-9.]+)', l)
    if m:
        ext_rounds.setdefault(m.group(1), {})['ext'] = float(m.group(2))
        sec = re.search(r'"seconds":([0-9.]+)', l)
        net_sec = re.search(r'"network_seconds":([0-9.]+)', l)
        if sec and net_sec and float(sec.group(1)) > 0:
            ext_rounds[m.group(1)]['innet'] = float(net_sec.group(1)) / float(sec.group(1))
            for key in ('store', 'wait'):
                v = re.search(r'"%s_seconds":([0-9.]+)' % key, l)
                if v:
                    ext_rounds[m.group(1)][key] = float(v.group(1)) / float(sec.group(1))
    m = re.match(r'ROUND_NET round=(\d+) reps_ms=([0-9,]+)', l)
    if m:
        ms = [float(x) for x in m.group(2).split(',')]
        ext_rounds.setdefault(m.group(1), {})['net'] = 8 * len(ms) / (sum(ms) / 1000)
er = sorted(d['ext'] / d['net'] for d in ext_rounds.values() if 'ext' in d and 'net' in d)
if er:
    exts = ', '.join('%.1f' % d.get('ext', 0) for d in ext_rounds.values())
    nets = ', '.join('%.1f' % d.get('net', 0) for d in ext_rounds.values())
    print(f"RATIO paired extract/network median={er[len(er) // 2]:.2f} min={er[0]:.2f} "
          f"max={er[-1]:.2f} rounds={len(er)} (extract {exts}; network {nets} images/s)")
# The share of the extractor's time spent in the network: what the ratio
# would be if the network ran inside as fast as alone. It hardly depends on
# other processes, where the network alone can change 2x between rounds.
inn = sorted(d['innet'] for d in ext_rounds.values() if 'innet' in d)
if inn:
    print(f"RATIO extract network_seconds/seconds median={inn[len(inn) // 2]:.3f} "
          f"min={inn[0]:.3f} max={inn[-1]:.3f} rounds={len(inn)} (extract/network if the network ran as fast inside as alone)")
# The rest of the extractor's time, between forward passes: its SQLite
# writes and its waits for the next batch (reading, decoding).
for key in ('store', 'wait'):
    v = sorted(d[key] for d in ext_rounds.values() if key in d)
    if v:
        print(f"INFO extract {key}_seconds/seconds median={v[len(v) // 2]:.3f} min={v[0]:.3f} "
              f"max={v[-1]:.3f} rounds={len(v)}")
if rounds:
    ours_r = sorted(d['ours'] for d in rounds.values() if 'ours' in d)
    print(f"INFO paired rounds: bottleneck images/s median={ours_r[len(ours_r) // 2]:.2f} "
          f"best={ours_r[-1]:.2f}")
# Issue 16 item 5's ceiling: the FP32 peak on 2 threads (median of peers.sh
# peak's reps) over VGG16's 30.69 GFLOP, times F(6x6,3x3)'s 5.06x cut.
pk = [float(r['gflops_median']) for r in res
      if r.get('bench') == 'fma_avx512_fp32' and r.get('threads') == '2' and 'gflops_median' in r]
if not pk:  # an AVX2-only host (bench/fma_peak)
    pk = [float(r['gflops_median']) for r in res
          if r.get('bench') == 'fma_avx2_fp32' and r.get('threads') == '2' and 'gflops_median' in r]
if pk and fast:
    ceil = pk[-1] / 30.69 * 5.06
    line = f"RATIO fp32/ceiling single={fast / ceil:.2f}"
    if rounds and ours_r:
        line += f" paired_median={ours_r[len(ours_r) // 2] / ceil:.2f} paired_best={ours_r[-1] / ceil:.2f}"
    print(line + f" (ceiling {ceil:.1f} images/s = FP32 peak {pk[-1]:.0f} GFLOPS / 30.69 x 5.06)")
gl = {}
for l in lines:
    if l.startswith('RESULT gl_round='):
        r = kv(l)
        name = ('fast' if r.get('gl_fast') else 'ours') if r.get('runtime') == 'bottleneck' else 'ort'
        gl.setdefault(r['gl_round'], {})[name] = float(r['img_s_median'])
gr = sorted(d['ours'] / d['ort'] for d in gl.values() if 'ours' in d and 'ort' in d)
if gr:
    print(f"RATIO paired GoogLeNet bottleneck/onnxruntime median={gr[len(gr) // 2]:.2f} "
          f"min={gr[0]:.2f} max={gr[-1]:.2f} rounds={len(gr)} (bottleneck "
          + ', '.join('%.1f' % d.get('ours', 0) for d in gl.values()) + "; ONNX Runtime "
          + ', '.join('%.1f' % d.get('ort', 0) for d in gl.values()) + " images/s)")
gf = sorted(d['fast'] / d['ours'] for d in gl.values() if 'fast' in d and 'ours' in d)
if gf:
    prec = [kv(l).get('precision') for l in lines if l.startswith('RESULT gl_round=') and 'gl_fast=1' in l]
    print(f"RATIO paired GoogLeNet precision_fast/fp32 median={gf[len(gf) // 2]:.2f} "
          f"min={gf[0]:.2f} max={gf[-1]:.2f} rounds={len(gf)} (fast is {prec[0] if prec else '?'}: "
          + ', '.join('%.1f' % d.get('fast', 0) for d in gl.values()) + " images/s)")
foreign = [l for l in lines if 'foreign_cores_avg=' in l]
worst = max((float(kv(l)['foreign_cores_avg']) for l in foreign), default=0)
print(f"INFO worst foreign_cores_avg={worst:.2f} (0 = quiet machine; above ~0.3 the numbers are noisy)")
EOF
