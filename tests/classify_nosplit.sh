# classify_nosplit: a dataset without split folders (cat/, dog/ only) can be
# trained on, and predict on new files behaves as a user of Keras expects
# (issue 18, items 3, 4, 5, 13).
#   - train: 5-fold cross-validation on all rows by default (too few rows
#     for it: the message says 5 was the default and what to pass); --holdout F
#     --seed S holds out a stratified, seeded fraction, recorded per sweep,
#     and `predict --split holdout` applies the run to exactly those rows;
#   - predict FOLDER: loose images get no label (never counted as mistakes,
#     no metrics); images under class folders get that class, then metrics
#     are printed;
#   - predict FILE finds a stored image by its content, whatever path it is
#     typed with (no extraction, so it works on an imported feature set);
#   - predict prints in path order, and --json lists the files that failed.
. "$BN_SOURCE_DIR/tests/lib.sh"

DB="$T/p.db"
for cls in cat dog; do
    mkdir -p "$T/pets/$cls"
    ls "$SHARED/data/catsdogs/train/$cls" | sort | head -n 6 |
        while read -r f; do cp "$SHARED/data/catsdogs/train/$cls/$f" "$T/pets/$cls/"; done
done
"$EXTRACT" --weights "$WEIGHTS" --db "$DB" --size 32 --pooling avg --quiet "$T/pets"
check_eq "extract a dataset without splits" "$?" 0

# Default: cross-validation on all rows.
out=$("$CLASSIFY" --db "$DB" --quiet --json --C 0.1,1)
check_eq "train without splits: exit 0" "$?" 0
check_eq "5-fold CV on all rows, refit on all" \
    "$(printf '%s' "$out" | python3 -c 'import json,sys; d = json.load(sys.stdin); print(d["train"], d["folds"], d["select_on"], d["final_trained_on"])')" \
    "all 5 cv all"
check_eq "the final run trained on the 12 rows" "$(q "$DB" "SELECT n_train FROM runs WHERE role = 'refit'")" 12

# Too few rows for the default 5 folds: the message says the 5 was a default
# (the user never typed it) and what to pass instead; a --folds the user gave
# is named as given.
for n in 2 3; do
    for cls in cat dog; do
        mkdir -p "$T/tiny$n/$cls"
        ls "$T/pets/$cls" | head -n "$n" | while read -r f; do cp "$T/pets/$cls/$f" "$T/tiny$n/$cls/"; done
    done
    "$EXTRACT" --weights "$WEIGHTS" --db "$T/tiny.db" --size 32 --pooling avg --quiet "$T/tiny$n"
done
err=$("$CLASSIFY" --db "$T/tiny.db" --dataset tiny2 --quiet 2>&1)
check_eq "4 rows, default folds: exit 1" "$?" 1
check_eq "4 rows, default folds: the message" "$err" \
    "bottleneck-classify: 5-fold cross-validation (the default without split folders): the training split has only 4 rows; choose fewer folds with --folds K, or --holdout F"
err=$("$CLASSIFY" --db "$T/tiny.db" --dataset tiny3 --quiet 2>&1)
check_eq "3 rows a class, default folds: exit 1" "$?" 1
check_eq "3 rows a class, default folds: the message" "$err" \
    "bottleneck-classify: 5-fold cross-validation (the default without split folders): class 'cat' has only 3 training rows; each fold needs one of every class; choose fewer folds with --folds K, or --holdout F"
err=$("$CLASSIFY" --db "$T/tiny.db" --dataset tiny3 --folds 4 --quiet 2>&1)
check_eq "--folds 4 on 3 rows a class: exit 1" "$?" 1
check_eq "--folds 4 on 3 rows a class: named as given" "$err" \
    "bottleneck-classify: --folds 4: class 'cat' has only 3 training rows; each fold needs one of every class"
"$CLASSIFY" --db "$T/tiny.db" --dataset tiny3 --folds 3 --quiet > /dev/null
check_eq "--folds 3 on 3 rows a class: trains" "$?" 0

# --holdout: stratified, seeded, recorded.
out=$("$CLASSIFY" --db "$DB" --quiet --json --C 0.1,1 --holdout 0.25 --seed 3)
check_eq "train --holdout: exit 0" "$?" 0
sweep=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sweep"])')
run=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["final"])')
check_eq "chosen on the held-out rows" "$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["select_on"])')" holdout
check_eq "a quarter of each class held out (2 + 2)" \
    "$(q "$DB" "SELECT i.label || ':' || count(*) FROM holdouts h JOIN images i ON i.id = h.image WHERE h.sweep = $sweep GROUP BY i.label" | tr '\n' ' ')" "cat:2 dog:2 "
check_eq "the fraction recorded" "$(q "$DB" "SELECT holdout FROM sweeps WHERE id = $sweep")" 0.25
check_eq "metrics on the held-out rows" "$(q "$DB" "SELECT value FROM run_metrics WHERE run = $run AND split = 'holdout' AND metric = 'n'")" 4.0
check_eq "trained on the other 8" "$(q "$DB" "SELECT n_train FROM runs WHERE id = $run")" 8
held=$(q "$DB" "SELECT i.path FROM holdouts h JOIN images i ON i.id = h.image WHERE h.sweep = $sweep ORDER BY 1")
out=$("$CLASSIFY" --db "$DB" --quiet --json --C 0.1 --holdout 0.25 --seed 3)
sweep2=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sweep"])')
check_eq "same seed, same held-out rows" \
    "$(q "$DB" "SELECT i.path FROM holdouts h JOIN images i ON i.id = h.image WHERE h.sweep = $sweep2 ORDER BY 1")" "$held"
"$CLASSIFY" --db "$DB" predict --run "$run" --split holdout > "$T/ph.txt"
check_eq "predict --split holdout" "$?" 0
check_eq "predictions for exactly the held-out rows" \
    "$(q "$DB" "SELECT path FROM run_predictions WHERE run = $run ORDER BY 1")" "$held"
check_match "with metrics" "$(cat "$T/ph.txt")" "accuracy .*\(4 rows\)"
"$CLASSIFY" --db "$DB" --quiet report --run "$run" -o "$T/holdout.html" > /dev/null
check_eq "report on a --holdout run (its 'holdout' rows, not a split)" "$?" 0
"$CLASSIFY" --db "$DB" --quiet --holdout 0.2 --folds 3 > /dev/null 2>&1
check_eq "--holdout with --folds: usage error" "$?" 2

# predict FOLDER: loose new photos have no label; class folders give one.
mkdir -p "$T/new_photos" "$T/more/cat" "$T/more/dog"
for i in 1 2; do
    cp "$SHARED/data/catsdogs/validation/cat/$(ls "$SHARED/data/catsdogs/validation/cat" | sort | sed -n ${i}p)" "$T/new_photos/"
    cp "$SHARED/data/catsdogs/validation/cat/$(ls "$SHARED/data/catsdogs/validation/cat" | sort | sed -n $((i + 2))p)" "$T/more/cat/"
    cp "$SHARED/data/catsdogs/validation/dog/$(ls "$SHARED/data/catsdogs/validation/dog" | sort | sed -n ${i}p)" "$T/more/dog/"
done
BOTTLENECK_WEIGHTS="$WEIGHTS" "$CLASSIFY" --db "$DB" --quiet predict --run "$run" "$T/new_photos/" > "$T/p1.txt"
check_eq "predict a folder of new photos" "$?" 0
check_eq "two lines" "$(wc -l < "$T/p1.txt")" 2
check_eq "no label, not the folder's path" \
    "$(q "$DB" "SELECT count(*) FROM run_predictions WHERE run = $run AND path LIKE '%new_photos/%' AND label IS NULL")" 2
check_eq "never counted as mistakes" \
    "$(q "$DB" "SELECT count(*) FROM run_predictions WHERE run = $run AND label != predicted AND path LIKE '%new_photos/%'")" 0
BOTTLENECK_WEIGHTS="$WEIGHTS" "$CLASSIFY" --db "$DB" --quiet predict --run "$run" "$T/more" > "$T/p2.txt"
check_eq "predict a folder of class folders" "$?" 0
check_eq "labels from the class folders" \
    "$(q "$DB" "SELECT label || ':' || count(*) FROM run_predictions WHERE run = $run AND path LIKE '%/more/%' GROUP BY label" | tr '\n' ' ')" "cat:2 dog:2 "
check_match "then metrics are printed" "$(cat "$T/p2.txt")" "accuracy .*\(4 rows\)"
# In path order, whatever order the files are given in.
BOTTLENECK_WEIGHTS="$WEIGHTS" "$CLASSIFY" --db "$DB" --quiet predict --run "$run" "$T/more/dog" "$T/more/cat" > "$T/p3.txt"
paths=$(awk -F '\t' 'NF == 3 { print $1 }' "$T/p3.txt")
check_eq "four predictions" "$(printf '%s\n' "$paths" | wc -l)" 4
check_eq "path order" "$paths" "$(printf '%s\n' "$paths" | LC_ALL=C sort)"
# --json lists what failed.
echo "not an image" > "$T/new_photos/broken.jpg"
out=$(BOTTLENECK_WEIGHTS="$WEIGHTS" "$CLASSIFY" --db "$DB" --quiet --json predict --run "$run" "$T/new_photos" 2>/dev/null)
check_eq "json: exit 3" "$?" 3
check_eq "json: the failure listed with its reason" \
    "$(printf '%s' "$out" | python3 -c 'import json,sys; d = json.load(sys.stdin); print(len(d["predictions"]), [f["path"].endswith("broken.jpg") and bool(f["reason"]) for f in d["failures"]])')" \
    "2 [True]"
rm "$T/new_photos/broken.jpg"

# predict FILE matches a stored image by content. An imported copy of the
# feature set cannot extract anything, so a path match is the only way.
fs=$(q "$DB" "SELECT name FROM featuresets")
q "$DB" "INSERT INTO featuresets (name, source, model, dim, dtype) VALUES ('copy', 'import', 'copy', 512, 'f32');
         INSERT INTO vectors SELECT (SELECT id FROM featuresets WHERE name = 'copy'), sha256, vector
         FROM vectors WHERE featureset = (SELECT id FROM featuresets WHERE name = '$fs')"
"$CLASSIFY" --db "$DB" --features copy --dataset pets --quiet > /dev/null
run2=$(q "$DB" "SELECT max(id) FROM runs")
f=$(ls "$T/pets/cat" | sort | head -n 1)
images_before=$(q "$DB" "SELECT count(*) FROM images")
out=$(cd "$T" && XDG_CACHE_HOME="$T/none" BOTTLENECK_WEIGHTS= "$CLASSIFY" --db "$DB" --quiet --json predict --run "$run2" "./pets/./cat/$f")
check_eq "a stored image typed as another path: exit 0" "$?" 0
check_eq "found by content: the stored row, its label (the path typed, tidied)" \
    "$(printf '%s' "$out" | python3 -c 'import json,sys; p = json.load(sys.stdin)["predictions"][0]; print(p["path"], p["stored_as"], p["label"])')" \
    "pets/cat/$f cat/$f cat"
check_eq "no new image row" "$(q "$DB" "SELECT count(*) FROM images")" "$images_before"
finish
