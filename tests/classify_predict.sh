# classify_predict: VGG16 features end to end at a small input size, and
# `predict --run ID IMAGE_OR_FOLDER...` on files that are not in the database:
# their vectors are extracted with the run's feature-set settings (the same
# weights), each image gets a printed and stored prediction, an unreadable file
# is reported (exit 3) without stopping the others, and a second call reuses
# the stored vectors and gives the same probabilities; a file replaced by
# another photo at the same path gets the new photo's vector. A run on an imported
# feature set cannot extract, and says so.
. "$BN_SOURCE_DIR/tests/lib.sh"

DB="$T/s.db"
make_dataset "$T/ds" 4
"$EXTRACT" --weights "$WEIGHTS" --db "$DB" --size 32 --pooling avg --quiet "$T/ds"
check "extract at size 32" [ $? -eq 0 ]
fs=$(q "$DB" "SELECT name FROM featuresets")
check_eq "one VGG16 feature set" "$fs" "vgg16/block5_pool/avg/32/squash/caffe/f32"

"$CLASSIFY" --db "$DB" --C 0.1,1 --standardize --quiet > "$T/train.txt"
check "train on VGG16 features" [ $? -eq 0 ]
run=$(q "$DB" "SELECT final FROM sweeps")
check_match "train report" "$(cat "$T/train.txt")" "final: run $run"

# New files: two photos (one in a folder) and a file that is not an image.
mkdir -p "$T/new/sub"
cp "$SHARED/data/catsdogs/validation/cat/$(ls "$SHARED/data/catsdogs/validation/cat" | sort | tail -n 1)" "$T/new/sub/"
cp "$SHARED/data/catsdogs/train/dog/$(ls "$SHARED/data/catsdogs/train/dog" | sort | tail -n 1)" "$T/new/one.jpg"
echo "not an image" > "$T/new/sub/broken.jpg"
images_before=$(q "$DB" "SELECT count(*) FROM images")
BOTTLENECK_WEIGHTS="$WEIGHTS" "$CLASSIFY" predict --db "$DB" --run "$run" --quiet "$T/new/one.jpg" "$T/new/sub" > "$T/p1.txt" 2> "$T/e1.txt"
check_eq "exit 3: one file failed" "$?" 3
check_eq "two predictions printed" "$(wc -l < "$T/p1.txt")" 2
check_match "a line per image: path, class, probability" "$(head -n 1 "$T/p1.txt")" "$T/new/.*	(cat|dog)	0\.[0-9]{4}$"
check_match "the failure named" "$(cat "$T/e1.txt")" "broken\.jpg"
check_eq "the failure recorded" "$(q "$DB" "SELECT count(*) FROM failures WHERE path LIKE '%broken.jpg'")" 1
check_eq "new images stored" "$(q "$DB" "SELECT count(*) FROM images")" $((images_before + 2))
check_eq "their vectors stored in the run's feature set" \
    "$(q "$DB" "SELECT count(*) FROM embeddings WHERE path LIKE '$T/new/%' AND featureset = '$fs'")" 2
check_eq "their predictions stored" \
    "$(q "$DB" "SELECT count(*) FROM run_predictions WHERE run = $run AND path LIKE '$T/new/%'")" 2
# The printed probability is the stored one, and a second call (no
# extraction needed) agrees with the first.
stored=$(q "$DB" "SELECT printf('%.4f', probability) FROM run_predictions WHERE run = $run AND path = '$T/new/one.jpg'")
check_eq "printed = stored" "$(awk -F '\t' -v p="$T/new/one.jpg" '$1 == p { print $3 }' "$T/p1.txt")" "$stored"
BOTTLENECK_WEIGHTS="$WEIGHTS" "$CLASSIFY" predict --db "$DB" --run "$run" --quiet "$T/new/one.jpg" > "$T/p2.txt"
check_eq "second call succeeds" "$?" 0
check_eq "same answer" "$(cat "$T/p2.txt")" "$(grep one.jpg "$T/p1.txt")"
# A file predicted before and since replaced by another photo at the same
# path is that other photo: its vector is computed, the image row follows
# the content (the old row's vector must not answer for it).
cp "$SHARED/data/catsdogs/validation/dog/$(ls "$SHARED/data/catsdogs/validation/dog" | sort | tail -n 2 | head -n 1)" "$T/new/swap.jpg"
BOTTLENECK_WEIGHTS="$WEIGHTS" "$CLASSIFY" predict --db "$DB" --run "$run" --quiet "$T/new/swap.jpg" > /dev/null
check_eq "swap: first photo predicted" "$?" 0
cp "$SHARED/data/catsdogs/validation/cat/$(ls "$SHARED/data/catsdogs/validation/cat" | sort | tail -n 2 | head -n 1)" "$T/new/swap.jpg"
BOTTLENECK_WEIGHTS="$WEIGHTS" "$CLASSIFY" predict --db "$DB" --run "$run" --quiet "$T/new/swap.jpg" > "$T/swap.txt"
check_eq "swap: replaced photo predicted" "$?" 0
check_eq "swap: the image row is the new content" \
    "$(q "$DB" "SELECT sha256 FROM images WHERE path = '$T/new/swap.jpg'")" "$(sha256sum "$T/new/swap.jpg" | cut -d' ' -f1)"
check_eq "swap: the printed probability is the stored one for the new content" \
    "$(cut -f3 "$T/swap.txt")" \
    "$(q "$DB" "SELECT printf('%.4f', p.probability) FROM predictions p JOIN images i ON i.id = p.image WHERE p.run = $run AND i.path = '$T/new/swap.jpg' AND i.sha256 = '$(sha256sum "$T/new/swap.jpg" | cut -d' ' -f1)'")"

# The vector is the one bottleneck-extract computes for that file with the
# feature set's settings, byte for byte: predict extracted it in a batch with
# the other new photo, extract alone, and no engine's result depends on the
# batch (docs/PERFORMANCE.md, Determinism).
mkdir -p "$T/refds/dog"
cp "$T/new/one.jpg" "$T/refds/dog/"
"$EXTRACT" --weights "$WEIGHTS" --db "$T/ref.db" --size 32 --pooling avg --quiet "$T/refds"
ref=$(q "$T/ref.db" "SELECT hex(vector) FROM embeddings")
check_eq "bottleneck-extract's vector (512 floats)" "${#ref}" 4096
check_eq "vector equals bottleneck-extract's, byte for byte" \
    "$(q "$DB" "SELECT hex(vector) FROM embeddings WHERE path = '$T/new/one.jpg'")" "$ref"
"$EXTRACT" --weights "$WEIGHTS" --db "$T/ref_direct.db" --size 32 --pooling avg --conv direct --quiet "$T/refds"
check_eq "exact engine, alone: exit" "$?" 0
mkdir -p "$T/batchds/dog"; cp "$T/new/one.jpg" "$T/batchds/dog/"; cp "$T/ds/train/cat/"* "$T/batchds/dog/"
"$EXTRACT" --weights "$WEIGHTS" --db "$T/batch_direct.db" --size 32 --pooling avg --conv direct --quiet "$T/batchds"
check_eq "exact engine, in a batch: exit" "$?" 0
# Both sides must hold the vector (512 floats = 4096 hex digits): two failed
# runs would otherwise compare two empty strings.
alone=$(q "$T/ref_direct.db" "SELECT hex(vector) FROM embeddings")
check_eq "exact engine: the vector stored alone" "${#alone}" 4096
check_eq "exact engine: vector independent of the batch" \
    "$(q "$T/batch_direct.db" "SELECT hex(vector) FROM embeddings WHERE path = 'dog/one.jpg'")" "$alone"

# JSON.
out=$(BOTTLENECK_WEIGHTS="$WEIGHTS" "$CLASSIFY" predict --db "$DB" --run "$run" --quiet --json "$T/new/one.jpg")
check_eq "json" "$(printf '%s' "$out" | python3 -c 'import json,sys; d = json.load(sys.stdin); print(d["stored"], d["predictions"][0]["predicted"] in ("cat", "dog"))')" "1 True"

# No weights where the feature set needs extraction: one clear line.
cp "$SHARED/data/catsdogs/validation/dog/$(ls "$SHARED/data/catsdogs/validation/dog" | sort | tail -n 1)" "$T/new/two.jpg"
XDG_CACHE_HOME="$T/nocache" BOTTLENECK_WEIGHTS= "$CLASSIFY" predict --db "$DB" --run "$run" --quiet "$T/new/two.jpg" > /dev/null 2> "$T/e2.txt"
check_eq "no weights: exit 1" "$?" 1
check_eq "no weights: one line" "$(wc -l < "$T/e2.txt")" 1

# Weights other than the feature set's (a complete Keras layout of zeros,
# from the fuzz seeds): refused in one line naming the file; nothing stored.
"${BN_BUILD_DIR:?}/tests/fuzz/gen_seeds" "$T/seeds" > /dev/null
images_before=$(q "$DB" "SELECT count(*) FROM images")
"$CLASSIFY" predict --db "$DB" --run "$run" --weights "$T/seeds/weights/legacy.h5" --quiet "$T/new/two.jpg" > /dev/null 2> "$T/e2.txt"
check_eq "other weights: exit 1" "$?" 1
check_eq "other weights: one line" "$(wc -l < "$T/e2.txt")" 1
check_match "other weights: names the file" "$(cat "$T/e2.txt")" "legacy\.h5: not the weights feature set '$fs' was extracted with"
check_eq "other weights: no image stored" "$(q "$DB" "SELECT count(*) FROM images")" "$images_before"

# A folder whose sub-folder is not a class of the run (Kaggle's test1/):
# predictions, no metrics, and a note saying why (not silence).
mkdir -p "$T/kaggle/test1"
cp "$SHARED/data/catsdogs/validation/dog/$(ls "$SHARED/data/catsdogs/validation/dog" | sort | tail -n 2 | head -n 1)" "$T/kaggle/test1/" # not stored
BOTTLENECK_WEIGHTS="$WEIGHTS" "$CLASSIFY" predict --db "$DB" --run "$run" "$T/kaggle" > "$T/p4.txt" 2> "$T/e4.txt"
check_eq "unknown folder label: exit 0" "$?" 0
check_match "unknown folder label: the prediction printed" "$(cat "$T/p4.txt")" "^$T/kaggle/test1/dog\.[0-9]+\.jpg	(cat|dog)	[01]\.[0-9]{4}\$"
check_eq "unknown folder label: no metrics" "$(wc -l < "$T/p4.txt")" 1
check_match "unknown folder label: a note says why" "$(cat "$T/e4.txt")" \
    "^bottleneck-classify: note: no metrics: some rows have label 'test1' \(e\.g\. $T/kaggle/test1/dog\.[0-9]+\.jpg\), which is not one of the 2 classes the model knows\$"

# An imported feature set (here a copy of the VGG16 vectors) cannot extract.
q "$DB" "INSERT INTO featuresets (name, source, model, dim, dtype) VALUES ('copy', 'import', 'copy', 512, 'f32');
         INSERT INTO vectors (featureset, sha256, vector) SELECT (SELECT id FROM featuresets WHERE name = 'copy'), sha256, vector
         FROM vectors WHERE featureset = (SELECT id FROM featuresets WHERE name = '$fs')"
"$CLASSIFY" --db "$DB" --features copy --quiet > /dev/null
check "train on the copy" [ $? -eq 0 ]
run2=$(q "$DB" "SELECT max(id) FROM runs")
"$CLASSIFY" predict --db "$DB" --run "$run2" --quiet "$T/new/two.jpg" > /dev/null 2> "$T/e3.txt"
check_eq "imported: exit 1" "$?" 1
check_match "imported: says why" "$(cat "$T/e3.txt")" "feature set 'copy' was imported"
# ... but images it has vectors for are predicted.
"$CLASSIFY" predict --db "$DB" --run "$run2" --quiet "$T/new/one.jpg" > "$T/p3.txt"
check_eq "imported, stored image: ok" "$?" 0
check_match "imported, stored image: printed" "$(cat "$T/p3.txt")" "one\.jpg	(cat|dog)	"

finish
