#!/usr/bin/env bash
# GoogLeNet end to end on all 3,000 shared photos, the proof the CI test
# (tests/onnx_extract.sh) runs on 120 of them:
#   1. bottleneck-extract --model ../shared/models/bvlc_googlenet.onnx over
#      ../shared/data/catsdogs (pool5/7x7_s1, the file's own preprocessing);
#   2. embeddings.npy (the same vectors computed with ONNX Runtime) imported
#      into the same database, and every photo's vector compared with its row:
#      count, how many are within 1e-4 (relative L2), the largest error;
#   3. the same classify sweep on both feature sets: validation accuracy of
#      each (they should agree: 0.989 is what the imported vectors reach).
#
#   bash scripts/googlenet_check.sh [BUILD_DIR]     (prints; the database is kept in $OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SHARED=${BN_SHARED:-../shared}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/googlenet-check.XXXXXX")}
mkdir -p "$OUT"
DB="$OUT/googlenet.db"
X="$BUILD/extract/bottleneck-extract"
C="$BUILD/classify/bottleneck-classify"
G="$SHARED/models/bvlc_googlenet.onnx"
F="$SHARED/features/googlenet/catsdogs"

echo "== extract GoogLeNet pool5/7x7_s1 of $SHARED/data/catsdogs -> $DB"
"$X" --db "$DB" --model "$G" --threads "${THREADS:-2}" "$SHARED/data/catsdogs"
"$X" import --db "$DB" --name imported --npy "$F/embeddings.npy" --index "$F/index.tsv"
ours=$(sqlite3 "$DB" "SELECT id FROM featuresets WHERE model = 'bvlc_googlenet'")
theirs=$(sqlite3 "$DB" "SELECT id FROM featuresets WHERE name = 'imported'")

echo "== our vectors vs embeddings.npy (relative L2 per photo)"
rel="vec_distance_l2(a.vector, b.vector) / vec_distance_l2(b.vector, vec_sub(b.vector, b.vector))"
sqlite3 -header -column "$DB" ".load $BUILD/ext/bottleneck_vec" \
    "SELECT count(*) AS photos, sum($rel <= 1e-4) AS within_1e_4, printf('%.2e', max($rel)) AS max_rel_l2,
            printf('%.2e', avg($rel)) AS mean_rel_l2
     FROM vectors a JOIN vectors b ON a.sha256 = b.sha256
     WHERE a.featureset = $ours AND b.featureset = $theirs"

for fs in "$ours" "$theirs"; do
    echo "== classify sweep on feature set $fs"
    "$C" --db "$DB" train --features "$fs" --C 0.01,0.1,1,10 --quiet
done
"$C" --db "$DB" runs
