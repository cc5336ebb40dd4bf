# datasets: the database follows the dataset folder, and one database holds
# several datasets (issue 18, items 1-2, 9, 10).
#   - a re-extract after a rename, a move to another class, a deletion and a
#     deleted bad file leaves the database describing the folder as it is:
#     counted as moved, relabelled, removed; nothing recomputed; the moved
#     image's predictions follow it; a run's recorded metrics do not change;
#   - --keep-missing keeps the rows of files that are gone (counted missing);
#   - a file whose content changed in place is counted as changed;
#   - two roots with the same relative paths are two datasets: a second
#     folder with the same name is refused unless named with --dataset, and
#     classify asks which dataset to train on;
#   - non-image files and loose files at the root are counted (and listed
#     with --verbose); --json and the text summary use the same words;
#   - a database written by schema version 2 migrates and keeps its rows,
#     runs and predictions; the first extract adopts its images.
. "$BN_SOURCE_DIR/tests/lib.sh"

jget() { printf '%s' "$1" | sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" | tr -d '"'; }
run() { "$EXTRACT" --weights "$WEIGHTS" --size 32 --pooling avg --quiet "$@"; }
DB="$T/d.db"
make_dataset "$T/cats" 3 # 12 photos
echo "notes" > "$T/cats/README.txt"
cp "$T/cats/train/cat/$(ls "$T/cats/train/cat" | head -n 1)" "$T/cats/loose.jpg"
echo "not an image" > "$T/cats/train/cat/bad.jpg"

out=$(run --db "$DB" --json "$T/cats")
check_eq "first run: exit 3 (one bad file)" "$?" 3
check_eq "dataset named after its folder" "$(jget "$out" dataset)" cats
check_eq "root recorded" "$(q "$DB" "SELECT root FROM datasets WHERE name = 'cats'")" "$(cd "$T/cats" && pwd -P)"
check_eq "12 added" "$(jget "$out" added)" 12
check_eq "2 ignored: README.txt and the loose image" "$(jget "$out" ignored)" 2
check_eq "the bad file in failures" "$(q "$DB" "SELECT path FROM failures")" train/cat/bad.jpg
err=$("$EXTRACT" --weights "$WEIGHTS" --size 32 --pooling avg --db "$DB" --verbose "$T/cats" 2>&1 >/dev/null)
check_match "--verbose lists the ignored files" "$err" "ignored: .*cats/README.txt"
check_match "--verbose: the loose image, and why" "$err" "ignored: .*cats/loose.jpg \(at the dataset root"
check_match "text summary: same word as --json for unchanged files" "$err" "12 skipped \(unchanged\)"
out=$(run --db "$DB" --json "$T/cats")
check_eq "json: the unchanged files are 'skipped'" "$(jget "$out" skipped)" 12

# A run trained on these rows, with predictions for every image.
"$CLASSIFY" --db "$DB" --quiet --C 1 > /dev/null
check_eq "train" "$?" 0
runid=$(q "$DB" "SELECT final FROM sweeps")
check_eq "the run records its dataset" "$(q "$DB" "SELECT d.name FROM runs r JOIN datasets d ON d.id = r.dataset WHERE r.id = $runid")" cats
"$CLASSIFY" --db "$DB" --quiet predict --run "$runid" > /dev/null
metrics_before=$(q "$DB" "SELECT split, metric, class, value FROM run_metrics WHERE run = $runid ORDER BY 1, 2, 3")
show_before=$("$CLASSIFY" --db "$DB" show "$runid" | grep -v '^predictions:')

# Rename one cat, move another cat to dog/, delete a dog, delete the bad file.
a=$(ls "$T/cats/train/cat" | grep -v bad | sort | sed -n 1p)
b=$(ls "$T/cats/train/cat" | grep -v bad | sort | sed -n 2p)
c=$(ls "$T/cats/validation/dog" | sort | sed -n 1p)
a_sha=$(q "$DB" "SELECT sha256 FROM images WHERE path = 'train/cat/$a'")
a_pred=$(q "$DB" "SELECT probability FROM run_predictions WHERE run = $runid AND path = 'train/cat/$a'")
mv "$T/cats/train/cat/$a" "$T/cats/train/cat/renamed_$a"
mv "$T/cats/train/cat/$b" "$T/cats/train/dog/$b"
rm "$T/cats/validation/dog/$c" "$T/cats/train/cat/bad.jpg"
vectors_before=$(q "$DB" "SELECT count(*) FROM vectors")
out=$(run --db "$DB" --json "$T/cats")
check_eq "re-run: exit 0" "$?" 0
check_eq "moved" "$(jget "$out" moved)" 1
check_eq "relabelled" "$(jget "$out" relabelled)" 1
check_eq "removed" "$(jget "$out" removed)" 1
check_eq "added" "$(jget "$out" added)" 0
check_eq "nothing recomputed" "$(jget "$out" extracted)" 0
check_eq "no vector added" "$(q "$DB" "SELECT count(*) FROM vectors")" "$vectors_before"
check_eq "11 images, as in the folder" "$(q "$DB" "SELECT count(*) FROM embeddings WHERE dataset = 'cats'")" 11
check_eq "the old name is gone" "$(q "$DB" "SELECT count(*) FROM images WHERE path = 'train/cat/$a'")" 0
check_eq "the new name has the content" "$(q "$DB" "SELECT sha256 FROM images WHERE path = 'train/cat/renamed_$a'")" "$a_sha"
check_eq "the moved photo only under dog" "$(q "$DB" "SELECT group_concat(label) FROM images WHERE path LIKE '%/$b'")" dog
check_eq "the deleted photo is gone" "$(q "$DB" "SELECT count(*) FROM images WHERE path LIKE '%/$c'")" 0
check_eq "the deleted bad file left failures" "$(q "$DB" "SELECT count(*) FROM failures")" 0
check_eq "training now sees 11 rows" "$(q "$DB" "SELECT count(*) FROM embeddings WHERE featureset LIKE 'vgg16%'")" 11
check_eq "the renamed image kept its prediction" \
    "$(q "$DB" "SELECT probability FROM run_predictions WHERE run = $runid AND path = 'train/cat/renamed_$a'")" "$a_pred"
check_eq "the run's metrics are unchanged" \
    "$(q "$DB" "SELECT split, metric, class, value FROM run_metrics WHERE run = $runid ORDER BY 1, 2, 3")" "$metrics_before"
check_eq "show still reports the run as trained" \
    "$("$CLASSIFY" --db "$DB" show "$runid" | grep -v '^predictions:')" "$show_before"

# --keep-missing: a dataset extracted in pieces keeps what is not there now.
mkdir -p "$T/aside"
mv "$T/cats/validation/cat" "$T/aside/"
out=$(run --db "$DB" --json --keep-missing "$T/cats")
check_eq "--keep-missing: counted missing" "$(jget "$out" missing)" 3
check_eq "--keep-missing: nothing removed" "$(jget "$out" removed)" 0
check_eq "--keep-missing: rows kept" "$(q "$DB" "SELECT count(*) FROM images WHERE split = 'validation' AND label = 'cat'")" 3
mv "$T/aside/cat" "$T/cats/validation/"

# A file changed in place.
other=$(ls "$SHARED/data/catsdogs/validation/dog" | sort | tail -n 1)
cp "$SHARED/data/catsdogs/validation/dog/$other" "$T/cats/train/cat/renamed_$a"
out=$(run --db "$DB" --json "$T/cats")
check_eq "changed in place" "$(jget "$out" changed)" 1
check_eq "changed: computed" "$(jget "$out" extracted)" 1

# Two roots with the same relative paths (the bug: the second overwrote the
# first's rows). Same folder name: refused, the first dataset untouched.
mkdir -p "$T/elsewhere"
make_dataset "$T/elsewhere/cats" 2
sum_before=$(q "$DB" "SELECT group_concat(path || sha256) FROM images ORDER BY path")
out=$(run --db "$DB" "$T/elsewhere/cats" 2>&1)
check_eq "same name, other folder: exit 1" "$?" 1
check_match "the message names both folders and the way out" "$out" "dataset 'cats' was extracted from .*/cats, not from .*/elsewhere/cats: pass --dataset NAME"
check_eq "the message is one line" "$(printf '%s\n' "$out" | wc -l)" 1
check_eq "nothing changed" "$(q "$DB" "SELECT group_concat(path || sha256) FROM images ORDER BY path")" "$sum_before"
run --db "$DB" --dataset cats2 "$T/elsewhere/cats"
check_eq "with --dataset: stored apart" "$?" 0
check_eq "both datasets in the view" "$(q "$DB" "SELECT dataset || ':' || count(*) FROM embeddings GROUP BY dataset ORDER BY dataset" | tr '\n' ' ')" "cats:11 cats2:8 "
check_eq "5 relative paths in both, kept apart" \
    "$(q "$DB" "SELECT count(*) FROM (SELECT path FROM images GROUP BY path HAVING count(DISTINCT dataset) = 2)")" 5
fsname=$(q "$DB" "SELECT name FROM featuresets")
knn() { q "$DB" ".load ${BN_BUILD_DIR:?}/ext/bottleneck_vec" "$1"; }
qv="(SELECT vector FROM embeddings WHERE dataset = 'cats' ORDER BY path LIMIT 1)"
check_eq "vec_knn: a dataset column" \
    "$(knn "SELECT dataset || ':' || count(*) FROM vec_knn($qv, 100, '$fsname') GROUP BY dataset ORDER BY dataset" | tr '\n' ' ')" "cats:11 cats2:8 "
check_eq "vec_knn: WHERE dataset = ... applies before ranking" \
    "$(knn "SELECT count(*) || ',' || min(dataset) || ',' || max(dataset) FROM vec_knn($qv, 5, '$fsname') WHERE dataset = 'cats2'")" "5,cats2,cats2"
"$CLASSIFY" --db "$DB" --quiet > /dev/null 2> "$T/e.txt"
check_eq "classify asks which dataset: exit 1" "$?" 1
check_match "classify names the datasets" "$(cat "$T/e.txt")" "several datasets .*'cats'.*'cats2'.*--dataset NAME"
"$CLASSIFY" --db "$DB" --quiet --dataset cats2 --C 1 > /dev/null
check_eq "classify --dataset cats2" "$?" 0
check_eq "trained on cats2's 4 train rows" "$(q "$DB" "SELECT n_train FROM runs ORDER BY id DESC LIMIT 1")" 4
check_eq "runs --filter dataset=" "$("$CLASSIFY" --db "$DB" runs --json --filter 'dataset=cats2' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["runs"]))')" 1
check_eq "runs --dataset" "$("$CLASSIFY" --db "$DB" runs --json --dataset cats | python3 -c 'import json,sys; print([r["dataset"] for r in json.load(sys.stdin)["runs"]])')" "['cats']"

# --dataset NAME takes a dataset over when its folder moved (the same
# relative paths): its root follows, nothing is removed or recomputed...
cp -r "$T/elsewhere/cats" "$T/moved_cats"
out=$(run --db "$DB" --dataset cats2 --json "$T/moved_cats")
check_eq "folder moved, --dataset: exit 0" "$?" 0
check_eq "folder moved: nothing removed, nothing computed" "$(jget "$out" removed) $(jget "$out" extracted)" "0 0"
check_eq "folder moved: the root follows" "$(q "$DB" "SELECT root FROM datasets WHERE name = 'cats2'")" "$(cd "$T/moved_cats" && pwd -P)"
# ... but a folder with none of its files is another dataset under a reused
# name: refused in one line (taking over would remove every stored image),
# nothing changed; with --keep-missing its images join the dataset.
mkdir -p "$T/unrelated/horse"
cp "$SHARED/data/catsdogs/validation/dog/$(ls "$SHARED/data/catsdogs/validation/dog" | sort | tail -n 1)" "$T/unrelated/horse/h.jpg"
before=$(q "$DB" "SELECT group_concat(path || sha256) FROM images ORDER BY path; SELECT root FROM datasets WHERE name = 'cats2'")
out=$(run --db "$DB" --dataset cats2 "$T/unrelated" 2>&1)
check_eq "a folder sharing nothing, --dataset: exit 1" "$?" 1
check_eq "a folder sharing nothing: one line" "$(printf '%s\n' "$out" | wc -l)" 1
check_match "a folder sharing nothing: says what it would remove and the ways out" "$out" \
    "dataset 'cats2' holds 8 images \(of .*/moved_cats\) and none of them is in .*/unrelated: taking it over would remove them all; pass another --dataset NAME for this folder, or --keep-missing"
check_eq "a folder sharing nothing: nothing changed" \
    "$(q "$DB" "SELECT group_concat(path || sha256) FROM images ORDER BY path; SELECT root FROM datasets WHERE name = 'cats2'")" "$before"
run --db "$DB" --dataset cats2 --keep-missing "$T/unrelated"
check_eq "a folder sharing nothing, --keep-missing: exit 0" "$?" 0
check_eq "a folder sharing nothing, --keep-missing: its image joins the 8" \
    "$(q "$DB" "SELECT count(*) FROM images WHERE dataset = (SELECT id FROM datasets WHERE name = 'cats2')")" 9

# A database of schema version 2 (before datasets) migrates and keeps its
# rows, runs and predictions.
OLD="$T/old.db"
cat "$BN_SOURCE_DIR/schema/001_init.sql" "$BN_SOURCE_DIR/schema/002_classify.sql" | sqlite3 "$OLD"
q "$OLD" "PRAGMA user_version = 2;
  INSERT INTO featuresets (name, model, dim, dtype) VALUES ('fs', 'm', 2, 'f32');
  INSERT INTO images (path, label, split, sha256) VALUES ('train/cat/1.jpg', 'cat', 'train', 's1'),
      ('train/dog/2.jpg', 'dog', 'train', 's2'), ('new/3.jpg', '', NULL, 's3');
  INSERT INTO vectors SELECT 1, sha256, x'0000803f00000040' FROM images;
  INSERT INTO runs (role, featureset, train_splits, solver, C, class_weight, standardize, seed,
      params, classes, n_train, dim, seconds) VALUES ('candidate', 1, 'train', 'lbfgs', 1, 'none', 0,
      0, '{}', '[\"cat\",\"dog\"]', 2, 2, 0.1);
  INSERT INTO run_metrics VALUES (1, 'train', 'accuracy', NULL, 0.5);
  INSERT INTO predictions (run, image, predicted, probability, probabilities)
      SELECT 1, id, 'cat', 0.6, x'00' FROM images;"
"$CLASSIFY" --db "$OLD" runs > /dev/null 2> "$T/e.txt"
latest=$(ls "$BN_SOURCE_DIR"/schema/*.sql | wc -l) # one file per migration
check_match "read-only: asks for an upgrade" "$(cat "$T/e.txt")" "schema version 2, this build needs $latest"
"$CLASSIFY" --db "$OLD" --quiet --features fs --train train --valid none > /dev/null 2>&1 # read-write: migrates
check_eq "migrated" "$(q "$OLD" "PRAGMA user_version")" "$latest"
check_eq "images kept, in the default dataset" "$(q "$OLD" "SELECT count(*) FROM embeddings WHERE dataset = 'default'")" 3
check_eq "predictions kept" "$(q "$OLD" "SELECT count(*) FROM run_predictions WHERE run = 1")" 3
check_eq "the old predict image's empty label is now NULL (not a mistake)" \
    "$(q "$OLD" "SELECT count(*) FROM run_predictions WHERE run = 1 AND correct IS NULL")" 1
check_eq "metrics kept" "$(q "$OLD" "SELECT value FROM run_metrics WHERE run = 1 AND metric = 'accuracy'")" 0.5
check_eq "foreign keys hold" "$(q "$OLD" "PRAGMA foreign_key_check")" ""
# The first extract adopts the migrated images: the folder's view wins.
mkdir -p "$T/pets/train/cat"
cp "$T/cats/train/cat/renamed_$a" "$T/pets/train/cat/"
run --db "$OLD" "$T/pets"
check_eq "adopted: renamed after the folder" "$(q "$OLD" "SELECT name || ':' || kind FROM datasets")" "pets:folder"
check_eq "adopted: the rows follow the folder" "$(q "$OLD" "SELECT path FROM images")" "train/cat/renamed_$a"
finish
