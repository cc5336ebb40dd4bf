# onnx_extract.sh: bottleneck-extract --model on the real pretrained GoogLeNet
# of ../shared/models, end to end.
#
# - 120 shared photos (every 25th row of features/googlenet/catsdogs/index.tsv)
#   extracted with --model bvlc_googlenet.onnx match embeddings.npy (imported
#   into the same database) row by row: relative L2 <= 1e-4 for every photo.
# - The feature set records the model's name, the file's sha256, the tensor,
#   the preprocessing read from the file's metadata, format and path.
# - inception_5b/output averaged over (y, x) equals pool5/7x7_s1 (the 7x7
#   average pool); SqueezeNet and a one-byte-different copy of GoogLeNet make
#   feature sets of their own.
# - `layers` lists the tensors with shapes (text and --json).
# - A truncated model and an unknown --layer fail with exit 1 and one line
#   naming the problem, before any database is created.
# - verify recomputes the set with the recorded model file: bitwise, a
#   zeroed vector found and repaired, a changed model file refused.
# - A head trained on the extracted vectors predicts a new photo (predict
#   rebuilds the network from the recorded model file); one trained on the
#   changed copy's set refuses to.
# The full 3,000 photos and the classify sweep: scripts/googlenet_check.sh.
. "$(dirname "$0")/lib.sh"
G="$SHARED/models/bvlc_googlenet.onnx"
S="$SHARED/models/squeezenet_v1.1.onnx"
IDX="$SHARED/features/googlenet/catsdogs/index.tsv"
EXT="${BN_BUILD_DIR:?}/ext/bottleneck_vec"
DB="$T/g.db"

awk -F'\t' 'NR > 1 && (NR - 2) % 25 == 0 { print $2 }' "$IDX" | while read -r rel; do
    mkdir -p "$T/ds/$(dirname "$rel")"
    cp "$SHARED/data/catsdogs/$rel" "$T/ds/$rel"
done
n=$(find "$T/ds" -name '*.jpg' | wc -l)
# 16 of them for the runs that only need a few
mkdir -p "$T/small/train/cat" "$T/small/train/dog"
for c in cat dog; do
    ls "$T/ds/train/$c" | sort | head -n 8 | while read -r f; do cp "$T/ds/train/$c/$f" "$T/small/train/$c/"; done
done
check_eq "photos in the subset" "$n" 120

# layers
out=$("$EXTRACT" layers --model "$G")
check_match "layers lists pool5" "$out" 'pool5/7x7_s1 +AveragePool +\(1024, 1, 1\)  <- default'
check_match "layers lists inception_4e" "$out" 'inception_4e/output +Concat +\(832, 14, 14\)'
out=$("$EXTRACT" layers --model "$S" --json)
check_match "layers --json" "$out" '"name":"fire9/concat","op":"Concat","shape":\[512,14,14\]'

# bad input: nothing created
head -c 100000 "$G" > "$T/cut.onnx"
"$EXTRACT" --db "$T/bad.db" --model "$T/cut.onnx" "$T/ds" 2>"$T/err"
check_eq "truncated model exit" "$?" 1
check_match "truncated model message" "$(cat "$T/err")" "cut.onnx: not an ONNX model"
"$EXTRACT" --db "$T/bad.db" --model "$G" --layer pool9 "$T/ds" 2>"$T/err"
check_eq "unknown layer exit" "$?" 1
check_match "unknown layer message" "$(cat "$T/err")" "--layer pool9: bvlc_googlenet has no tensor"
check "no database after bad input" [ ! -e "$T/bad.db" ]

# extract and compare with the embeddings computed elsewhere
"$EXTRACT" --db "$DB" --model "$G" --quiet "$T/ds"
check_eq "extract exit" "$?" 0
"$EXTRACT" import --db "$DB" --name ref --npy "$SHARED/features/googlenet/catsdogs/embeddings.npy" \
    --index "$IDX" > /dev/null 2>&1
check_eq "import exit" "$?" 0
sha=$(sha256sum "$G" | cut -d' ' -f1)
check_eq "feature set record" "$(q "$DB" "SELECT model, weights_sha256, layer, pooling, size, preprocess, dim, model_format, model_path FROM featuresets WHERE id = 1")" \
    "bvlc_googlenet|$sha|pool5/7x7_s1|none|224|bgr/0-255/mean=104,117,123/std=1,1,1|1024|onnx|$(realpath "$G")"
# relative L2 of each extracted vector to its reference row
rel="vec_distance_l2(a.vector, b.vector) / vec_distance_l2(b.vector, vec_sub(b.vector, b.vector))"
stats=$(q "$DB" ".load $EXT" "SELECT count(*), max($rel) <= 1e-4, printf('%.2e', max($rel))
    FROM vectors a JOIN vectors b ON a.sha256 = b.sha256 WHERE a.featureset = 1 AND b.featureset = 2")
echo "GoogLeNet pool5 vs embeddings.npy: $stats (count, within 1e-4, max rel L2)"
check_match "120 vectors within 1e-4 of embeddings.npy" "$stats" '^120\|1\|'

# another tensor, pooled: the mean of inception_5b/output over 7x7 is pool5
"$EXTRACT" --db "$DB" --model "$G" --layer inception_5b/output --pooling avg --quiet "$T/small"
check_eq "inception_5b avg exit" "$?" 0
id=$(q "$DB" "SELECT id FROM featuresets WHERE layer = 'inception_5b/output'")
stats=$(q "$DB" ".load $EXT" "SELECT count(*), max($rel) <= 1e-6 FROM vectors a JOIN vectors b
    ON a.sha256 = b.sha256 WHERE a.featureset = $id AND b.featureset = 1")
check_eq "avg of inception_5b/output = pool5/7x7_s1" "$stats" "16|1"

# other models never share a feature set
"$EXTRACT" --db "$DB" --model "$S" --quiet "$T/small"
check_eq "squeezenet exit" "$?" 0
cp "$G" "$T/bvlc_googlenet.onnx"
printf '\001' | dd of="$T/bvlc_googlenet.onnx" bs=1 seek=$(( $(stat -c %s "$G") - 100 )) conv=notrunc 2>/dev/null
"$EXTRACT" --db "$DB" --model "$T/bvlc_googlenet.onnx" --quiet "$T/small"
check_eq "changed copy exit" "$?" 0
check_eq "feature sets: one per model file" \
    "$(q "$DB" "SELECT count(DISTINCT weights_sha256), count(*) FROM featuresets WHERE source = 'extract'")" "3|4"
check_eq "squeezenet pool10" "$(q "$DB" "SELECT layer, dim, size FROM featuresets WHERE model = 'squeezenet_v1.1'")" "pool10|1000|227"

# verify recomputes an ONNX feature set with the model file recorded with
# it: bitwise; a wrong vector found and repaired; a model file changed since
# extraction refused, naming it.
out=$("$EXTRACT" verify --db "$DB" --features 1 --sample 16 --json "$T/ds"); rc=$?
check_eq "verify (ONNX) exit" "$rc" 0
check_match "verify (ONNX): bitwise" "$out" '"checked":16,"identical":16,"close":0,"differ":0'
z=$(q "$DB" "SELECT sha256 FROM vectors WHERE featureset = 1 ORDER BY sha256 LIMIT 1 OFFSET 3")
zbytes=$(q "$DB" "SELECT hex(vector) FROM vectors WHERE featureset = 1 AND sha256 = '$z'")
q "$DB" "UPDATE vectors SET vector = zeroblob(length(vector)) WHERE featureset = 1 AND sha256 = '$z'"
"$EXTRACT" verify --db "$DB" --features 1 --sample 16 --quiet "$T/ds"
check_eq "verify (ONNX) finds the zeroed vector: exit 3" "$?" 3
out=$("$EXTRACT" verify --db "$DB" --features 1 --sample 16 --repair --json "$T/ds")
check_match "verify (ONNX) repairs it" "$out" '"identical":15,"close":0,"differ":1,"repaired":1'
check_eq "the repaired vector is the extracted one again, byte for byte (4,096 bytes)" \
    "$(q "$DB" "SELECT hex(vector) FROM vectors WHERE featureset = 1 AND sha256 = '$z'")" "$zbytes"
check_eq "... not an empty one" "${#zbytes}" 8192
id=$(q "$DB" "SELECT id FROM featuresets WHERE model_path = '$(realpath "$T/bvlc_googlenet.onnx")'")
printf '\002' | dd of="$T/bvlc_googlenet.onnx" bs=1 seek=$(( $(stat -c %s "$G") - 100 )) conv=notrunc 2>/dev/null
"$EXTRACT" verify --db "$DB" --features "$id" --sample 4 "$T/small" 2>"$T/err"
check_eq "verify, model changed since: exit 1" "$?" 1
check_match "verify, model changed since: names it" "$(cat "$T/err")" "bvlc_googlenet.onnx has changed since"

# a head on the extracted vectors, applied to a new photo
"$CLASSIFY" --db "$DB" train --features 1 --dataset ds --C 0.1 --quiet > /dev/null
check_eq "train exit" "$?" 0
run=$(q "$DB" "SELECT max(id) FROM runs")
mkdir -p "$T/new"
cp "$SHARED/data/catsdogs/validation/dog/$(ls "$SHARED/data/catsdogs/validation/dog" | sort | tail -n 1)" "$T/new/"
out=$("$CLASSIFY" --db "$DB" predict --run "$run" --quiet "$T/new")
check_eq "predict exit" "$?" 0
check_match "predict a new dog" "$out" 'dog	0\.[0-9]+$'
# ... and a head on the copy changed since extraction refuses to extract a
# new photo with it, in the same words as verify
"$CLASSIFY" --db "$DB" train --features "$id" --dataset small --C 0.1 --quiet > /dev/null
check_eq "train on the changed copy's set: exit" "$?" 0
run=$(q "$DB" "SELECT max(id) FROM runs")
"$CLASSIFY" --db "$DB" predict --run "$run" --quiet "$T/new" > /dev/null 2>"$T/err"
check_eq "predict, model changed since: exit 1" "$?" 1
check_eq "predict, model changed since: one line" "$(wc -l <"$T/err")" 1
check_match "predict, model changed since: names it" "$(cat "$T/err")" "bvlc_googlenet.onnx has changed since feature set '.*' was extracted from it"

# --precision amx (where AMX runs): every convolution on AMX tiles, the 3x3
# ones through Winograd, the 1x1, 5x5 and 7x7 ones as tile GEMMs, so no
# OpenBLAS in the id; within BF16's error of the reference embeddings
# (measured 2.1e-2 median on the 3,000 photos, docs/PERFORMANCE.md), and
# verify recomputes them bit for bit.
if grep -qw amx_bf16 /proc/cpuinfo; then
    out=$("$EXTRACT" --db "$DB" --model "$G" --precision amx --json --quiet "$T/ds")
    check_match "googlenet amx: its own set" "$out" '"featureset":"bvlc_googlenet/pool5/7x7_s1/.*/f32/amx".*"extracted":120.*"precision":"amx"'
    aid=$(q "$DB" "SELECT id FROM featuresets WHERE model = 'bvlc_googlenet' AND precision = 'amx'")
    check_eq "googlenet amx: every convolution on tiles, no OpenBLAS" "$(q "$DB" "SELECT group_concat(DISTINCT engine) FROM vectors WHERE featureset = $aid")" "winograd-amx-bf16"
    stats=$(q "$DB" ".load $EXT" "SELECT count(*), max($rel) <= 6e-2, min($rel) >= 1e-3, printf('%.2e', max($rel))
        FROM vectors a JOIN vectors b ON a.sha256 = b.sha256 WHERE a.featureset = $aid AND b.featureset = 2")
    echo "GoogLeNet pool5 in amx vs embeddings.npy: $stats (count, within 6e-2, BF16's error at least, max rel L2)"
    check_match "googlenet amx: 120 vectors within BF16's error of embeddings.npy" "$stats" '^120\|1\|1\|'
    out=$("$EXTRACT" verify --db "$DB" --features "$aid" --sample 16 --json "$T/ds")
    check_match "verify googlenet amx: bitwise" "$out" '"checked":16,"identical":16,"close":0,"differ":0'
    # the exact engine asked for: every convolution exact, amx or not (the
    # same bytes as without --precision), and the set is fp32's
    "$EXTRACT" --db "$T/d1.db" --model "$G" --conv direct --quiet "$T/small"
    "$EXTRACT" --db "$T/d2.db" --model "$G" --conv direct --precision amx --quiet "$T/small"
    check_eq "--conv direct --precision amx: exact, fp32's bytes" "$(q "$T/d2.db" "SELECT count(*), sum(a.vector = b.vector), min(f.precision) FROM vectors a JOIN o.vectors b USING (sha256) JOIN featuresets f ON f.id = a.featureset" -cmd "ATTACH '$T/d1.db' AS o")" "16|16|fp32"
fi
finish
