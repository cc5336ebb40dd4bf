#!/usr/bin/env bash
# The main job, end to end, on a fresh Debian machine: install what bottleneck
# needs, build it, extract the features of the 3,000 cats-and-dogs photos in
# ../shared into catsdogs.db with two networks, train and evaluate an output
# layer on each, compare them, and query the stored embeddings with SQL; last,
# the HTML report of the chosen run (its path is the last line printed).
#
#   bash scripts/catsdogs.sh [DATASET_DIR] [WEIGHTS.h5] [MODEL.onnx]
#
# The two networks:
#   - VGG16 (the mission's network) from Keras' .h5: the real ImageNet weights
#     when they can be downloaded (bottleneck-extract --download), else
#     ../shared/models/vgg16_random_notop.h5, random weights: it proves the
#     plumbing, not transfer learning (about 0.68 validation accuracy);
#   - GoogLeNet, REALLY pretrained on ImageNet, from ../shared/models/
#     bvlc_googlenet.onnx: transfer learning as it should look (about 0.99).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${BN_SHARED:-../shared}
DATA=${1:-$SHARED/data/catsdogs}
WEIGHTS=${2:-}
MODEL=${3:-$SHARED/models/bvlc_googlenet.onnx}
DB=${DB:-catsdogs.db}
BUILD=${BUILD:-build}   # the build folder; BN_SKIP_BUILD=1 uses it as it is

if [ -n "${BN_SKIP_BUILD:-}" ]; then
    :
elif ! command -v meson >/dev/null || ! pkg-config --exists vips openblas sqlite3 hdf5 libcurl 2>/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        $(cat .ci/packages.txt) >/dev/null
fi
if [ -z "${BN_SKIP_BUILD:-}" ]; then
    [ -d "$BUILD" ] || meson setup "$BUILD" --buildtype=release >/dev/null
    ninja -C "$BUILD" >/dev/null
fi

X=$BUILD/extract/bottleneck-extract
C=$BUILD/classify/bottleneck-classify
# The dataset's name in the database: its folder's name (as bottleneck-extract
# names it), so that a database holding other datasets too is read right.
NAME=$(basename "$(cd "$DATA" && pwd -P)")

if [ -z "$WEIGHTS" ]; then
    # the real ImageNet weights if this machine can fetch them (cached after)
    WP=$(timeout 300 "$X" --download 2>&1 | sed -n 's/^weights: //p' | tail -n 1 || true)
    if [ -n "$WP" ] && [ -f "$WP" ]; then
        WEIGHTS=$WP
    else
        echo "(no internet: VGG16 runs with the random weights of ../shared)"
        WEIGHTS=$SHARED/models/vgg16_random_notop.h5
    fi
fi

echo "== extract: VGG16 block5_pool features of $DATA -> $DB"
rc=0; "$X" --weights "$WEIGHTS" --db "$DB" "$DATA" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"   # 3: some files failed, recorded

echo "== extract: GoogLeNet pool5/7x7_s1 features (ImageNet-pretrained, from $MODEL)"
rc=0; "$X" --model "$MODEL" --db "$DB" "$DATA" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"

echo "== the embeddings view"
sqlite3 -header -column "$DB" \
    "SELECT dataset, split, label, count(*) AS images, dim, dtype FROM embeddings
     GROUP BY dataset, split, label, featureset"

FS=$(sqlite3 "$DB" "SELECT name FROM featuresets WHERE model = 'vgg16' AND layer = 'block5_pool' AND pooling = 'none' AND size = 224 LIMIT 1")
echo "== classify: logistic regression on $FS, C chosen on validation"
"$C" --db "$DB" --features "$FS" --dataset "$NAME" --standardize --C 0.0001,0.0003,0.001,0.01
GFS=$(sqlite3 "$DB" "SELECT name FROM featuresets WHERE model = 'bvlc_googlenet' AND layer = 'pool5/7x7_s1' LIMIT 1")
echo "== classify: logistic regression on $GFS, C chosen on validation"
"$C" --db "$DB" --features "$GFS" --dataset "$NAME" --C 0.01,0.1,1,10

echo "== SQL: the 5 nearest neighbours of one cat, by cosine distance"
# The query image is one with a vector in this feature set and dataset: the
# database may hold other images (other datasets, other feature sets).
Q=$(sqlite3 "$DB" "SELECT path FROM embeddings WHERE featureset = '$FS' AND dataset = '$NAME'
                   AND split = 'validation' AND label = 'cat' ORDER BY path LIMIT 1")
sqlite3 -header -column "$DB" ".load $BUILD/ext/bottleneck_vec" \
    "SELECT k.path, k.label, round(k.distance, 4) AS distance
     FROM vec_knn((SELECT vector FROM embeddings WHERE path = '$Q' AND featureset = '$FS'
                   AND dataset = '$NAME'), 6, '$FS') AS k"

echo "== runs: both networks side by side (metrics on validation; * = chosen in its sweep)"
"$C" --db "$DB" runs

echo "== report: the chosen run of the last sweep (GoogLeNet) as one self-contained HTML file"
BEST=$(sqlite3 "$DB" "SELECT coalesce(final, chosen) FROM sweeps ORDER BY id DESC LIMIT 1")
REPORT=$("$C" report --db "$DB" --run "$BEST" --images "$DATA" -o "${DB%.db}-report.html" --quiet)
echo "report of run $BEST: $(cd "$(dirname "$REPORT")" && pwd)/$(basename "$REPORT")"
