# classify_e2e: the user's job end to end on real vectors. Import the shared
# GoogLeNet embeddings with `bottleneck-extract import`, train a C sweep on
# train, choose on validation, list and show runs, predict the validation
# split into the database and query the mistakes with SQL; cross-validation
# and refit; and the bad inputs of issue point 8, each a one-line error with a
# non-zero exit.
#
# Reference numbers: scikit-learn 1.2.1 LogisticRegression(C=1.0,
# solver='newton-cholesky', tol=1e-12) on the same 2,000 training rows gives
# validation accuracy 0.9850 and log loss 0.039134600 (the script is in
# tests/test_train.c); with C=0.1 on standardised features 0.9870 and
# 0.032731110.
#
# Three classes (cat, dog_tall, dog_wide: dogs split by the photo's
# orientation from MANIFEST.tsv, which the embeddings partly encode), with
# /usr/bin/python3 (numpy 1.24.2):
#   X = np.load('embeddings.npy').astype(np.float64)
#   rows = list(csv.DictReader(open('idx3.tsv'), delimiter='\t'))  # made below
#   y = np.array([r['label'] for r in rows]); split = np.array([r['split'] for r in rows])
#   tr, va = split == 'train', split == 'validation'
#   m = make_pipeline(StandardScaler(), LogisticRegression(C=0.001,
#           solver='newton-cg', tol=1e-12, max_iter=10000)).fit(X[tr], y[tr])
#   p = m.predict_proba(X[va])
#   accuracy_score(y[va], m[1].classes_[p.argmax(1)])  -> 0.8460
#   log_loss(y[va], p, labels=m[1].classes_)           -> 0.328698335
#   roc_auc_score(y[va], p, multi_class='ovr', average='macro') -> 0.946759932
. "$BN_SOURCE_DIR/tests/lib.sh"

G="$SHARED/features/googlenet/catsdogs"
DB="$T/g.db"
near() { # near A B TOL: |A - B| <= TOL
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= t) }'
}
metric() { # metric RUN SPLIT NAME
    q "$DB" "SELECT value FROM run_metrics WHERE run = $1 AND split = '$2' AND metric = '$3' AND class IS NULL"
}

# --help documents every option the program accepts.
help=$("$CLASSIFY" --help)
check "help exits 0" [ $? -eq 0 ]
for opt in $(sed -n 's/^ *{{"\([A-Za-z0-9-]*\)".*/\1/p' "$BN_SOURCE_DIR/classify/main.c"); do
    check_match "--help documents --$opt" "$help" "--$opt"
done
check_eq "options found in main.c" "$(sed -n 's/^ *{{"\([A-Za-z0-9-]*\)".*/\1/p' "$BN_SOURCE_DIR/classify/main.c" | wc -l)" 39

# Import.
out=$("$EXTRACT" import --db "$DB" --name googlenet --npy "$G/embeddings.npy" --index "$G/index.tsv" --quiet --json)
check "import succeeds" [ $? -eq 0 ]
check_match "import json" "$out" '"ok":true.*"rows":3000.*"dim":1024'
check_eq "embeddings view" "$(q "$DB" "SELECT count(*) FROM embeddings WHERE featureset = 'googlenet'")" 3000
# The program part of import (extract/import.c): usage errors exit 2 and
# name the option; a failed import exits 1 saying nothing was stored.
err=$("$EXTRACT" import --db "$DB" --npy "$G/embeddings.npy" --index "$G/index.tsv" 2>&1)
check_eq "import without --name exits 2" "$?" 2
check_match "import names the missing option" "$err" '--name NAME is required'
"$EXTRACT" import --db "$DB" --name x --dtype f64 --npy "$G/embeddings.npy" --index "$G/index.tsv" 2>/dev/null
check_eq "import --dtype f64 exits 2" "$?" 2
"$EXTRACT" import --bogus 2>/dev/null
check_eq "import --bogus exits 2" "$?" 2
err=$("$EXTRACT" import --db "$DB" --name x --npy "$T/missing.npy" --index "$G/index.tsv" 2>&1)
check_eq "import of a missing .npy exits 1" "$?" 1
check_match "import says nothing was stored" "$err" 'missing.npy.*\(nothing stored\)'

# A sweep of C on train, chosen on validation.
"$CLASSIFY" --db "$DB" --C 0.01,0.1,1 --quiet > "$T/sweep.txt"
check "train sweep succeeds" [ $? -eq 0 ]
check_match "sweep table" "$(cat "$T/sweep.txt")" 'sweep 1: 3 candidates'
check_eq "three candidate runs" "$(q "$DB" "SELECT count(*) FROM runs WHERE sweep = 1 AND role = 'candidate'")" 3
check_eq "one chosen" "$(q "$DB" "SELECT count(*) FROM runs WHERE sweep = 1 AND chosen")" 1
check_eq "final is the chosen candidate" \
    "$(q "$DB" "SELECT final = chosen FROM sweeps WHERE id = 1")" 1
best=$(q "$DB" "SELECT id FROM runs r WHERE sweep = 1 ORDER BY (SELECT value FROM run_metrics m
        WHERE m.run = r.id AND split = 'validation' AND metric = 'accuracy' AND class IS NULL) DESC,
        (SELECT value FROM run_metrics m WHERE m.run = r.id AND split = 'validation'
        AND metric = 'log_loss' AND class IS NULL) ASC, id LIMIT 1")
check_eq "chosen has the best validation accuracy" "$(q "$DB" "SELECT chosen FROM sweeps WHERE id = 1")" "$best"
c1=$(q "$DB" "SELECT id FROM runs WHERE sweep = 1 AND C = 1")
check "C=1 validation accuracy = scikit-learn's 0.985" near "$(metric "$c1" validation accuracy)" 0.985 0.003
check "C=1 validation log loss = scikit-learn's 0.0391346" near "$(metric "$c1" validation log_loss)" 0.039134600 2e-5
check_eq "per-class rows" "$(q "$DB" "SELECT group_concat(class) FROM run_metrics WHERE run = $c1 AND split = 'validation' AND metric = 'f1'")" "cat,dog"
check_eq "confusion sums to the split" "$(q "$DB" "SELECT sum(count) FROM run_confusion WHERE run = $c1 AND split = 'validation'")" 1000
check_eq "head stored" "$(q "$DB" "SELECT dim || 'x' || outputs || ' ' || length(weights) FROM heads WHERE run = $c1")" "1024x1 4096"

# Standardised, against scikit-learn's pipeline.
"$CLASSIFY" --db "$DB" --C 0.1 --standardize --quiet > /dev/null
check "standardised run succeeds" [ $? -eq 0 ]
s01=$(q "$DB" "SELECT max(id) FROM runs")
check "standardised C=0.1 accuracy = 0.987" near "$(metric "$s01" validation accuracy)" 0.987 0.003
check "standardised C=0.1 log loss = 0.0327311" near "$(metric "$s01" validation log_loss)" 0.032731110 2e-5
check_eq "standardisation stored" "$(q "$DB" "SELECT length(mean) || ' ' || length(scale) FROM heads WHERE run = $s01")" "4096 4096"

# runs: sorting, filtering, limiting.
top=$("$CLASSIFY" runs --db "$DB" --sort log_loss --limit 1 | awk 'NR == 2 { print ($1 == "*") ? $2 : $1 }')
minll=$(q "$DB" "SELECT run FROM run_metrics WHERE split = 'validation' AND metric = 'log_loss' ORDER BY value LIMIT 1")
check_eq "runs --sort log_loss puts the lowest first" "$top" "$minll"
n=$("$CLASSIFY" runs --db "$DB" --filter 'accuracy>=0.987' --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["runs"]))')
check_eq "runs --filter" "$n" "$(q "$DB" "SELECT count(*) FROM run_metrics WHERE split = 'validation' AND metric = 'accuracy' AND value >= 0.987")"
check_eq "runs --filter featureset glob" "$("$CLASSIFY" runs --db "$DB" --filter 'featureset=goo*' --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["runs"]))')" 4

# show, as text and JSON.
out=$("$CLASSIFY" show "$c1" --db "$DB")
check_match "show text" "$out" 'validation: accuracy 0\.98'
acc=$("$CLASSIFY" show "$c1" --db "$DB" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["metrics"]["validation"]["accuracy"])')
check "show --json agrees with the table" near "$acc" "$(metric "$c1" validation accuracy)" 1e-9

# predict --split: predictions in the database, mistakes by SQL.
"$CLASSIFY" predict --db "$DB" --run "$c1" --split validation --quiet > "$T/pred.txt"
check "predict succeeds" [ $? -eq 0 ]
check_eq "1000 predictions stored" "$(q "$DB" "SELECT count(*) FROM predictions WHERE run = $c1")" 1000
wrong=$(q "$DB" "SELECT count(*) FROM run_predictions WHERE run = $c1 AND NOT correct")
check "mistakes agree with the accuracy" near "$wrong" "$(awk -v a="$(metric "$c1" validation accuracy)" 'BEGIN { print (1 - a) * 1000 }')" 0.5
check_eq "probabilities BLOB has one float per class" "$(q "$DB" "SELECT DISTINCT length(probabilities) FROM predictions WHERE run = $c1")" 8
check_eq "predicted probability is the larger one" \
    "$(q "$DB" "SELECT count(*) FROM predictions WHERE run = $c1 AND probability < 0.5")" 0
"$CLASSIFY" predict --db "$DB" --run "$c1" --split validation --quiet > /dev/null
check_eq "predicting again replaces" "$(q "$DB" "SELECT count(*) FROM predictions WHERE run = $c1")" 1000

# Cross-validation: candidates scored on folds, then refit on the whole split.
"$CLASSIFY" --db "$DB" --C 0.1,1 --folds 3 --quiet > /dev/null
check "folds succeed" [ $? -eq 0 ]
sw=$(q "$DB" "SELECT max(id) FROM sweeps")
check_eq "cv sweep" "$(q "$DB" "SELECT select_on || ' ' || folds || ' ' || candidates FROM sweeps WHERE id = $sw")" "cv 3 2"
check_eq "candidates have cv metrics, no heads" \
    "$(q "$DB" "SELECT count(*) FROM runs r WHERE sweep = $sw AND role = 'candidate' AND NOT EXISTS (SELECT 1 FROM heads WHERE run = r.id) AND EXISTS (SELECT 1 FROM run_metrics WHERE run = r.id AND split = 'cv' AND metric = 'accuracy')")" 2
check_eq "refit run is final" "$(q "$DB" "SELECT r.role || ' ' || r.train_splits || ' ' || r.n_train FROM sweeps s JOIN runs r ON r.id = s.final WHERE s.id = $sw")" "refit train 2000"
cand=$(q "$DB" "SELECT min(id) FROM runs WHERE sweep = $sw")
out=$("$CLASSIFY" predict --db "$DB" --run "$cand" --split validation 2>&1)
check "predict with a CV candidate fails" [ $? -eq 1 ]
check_match "and names the final run" "$out" 'no trained head.*final model is run'

# Refit on train + validation.
"$CLASSIFY" --db "$DB" --C 0.1 --refit --quiet > /dev/null
check "refit succeeds" [ $? -eq 0 ]
check_eq "refit trained on train+validation" "$(q "$DB" "SELECT train_splits || ' ' || n_train FROM runs WHERE id = (SELECT final FROM sweeps ORDER BY id DESC LIMIT 1)")" "train,validation 3000"

# Adam, deterministic per seed.
"$CLASSIFY" --db "$DB" --solver adam --epochs 20 --standardize --seed 3 --quiet > /dev/null
"$CLASSIFY" --db "$DB" --solver adam --epochs 20 --standardize --seed 3 --quiet > /dev/null
check_eq "adam twice with one seed: same weights" \
    "$(q "$DB" "SELECT count(DISTINCT weights) FROM heads WHERE run IN (SELECT id FROM runs WHERE solver = 'adam')")" 1

# Bad input: one line on stderr, non-zero exit, nothing stored.
runs_before=$(q "$DB" "SELECT count(*) FROM runs")
fails() { # fails DESCRIPTION REGEX ARGS...: exit 1 and one line matching REGEX
    local what=$1 re=$2; shift 2
    "$CLASSIFY" --db "$DB" --quiet "$@" > /dev/null 2> "$T/err.txt"
    local rc=$?
    check_eq "$what: exit status" "$rc" 1
    check_eq "$what: one line" "$(wc -l < "$T/err.txt")" 1
    check_match "$what: message" "$(cat "$T/err.txt")" "$re"
}
fails "unknown feature set" "no feature set 'vgg'" --features vgg
fails "empty split" "no vectors in split 'test'.*train \(2000\), validation \(1000\)" --valid test
q "$DB" "INSERT INTO images (path, label, split, sha256) VALUES ('solo/a.jpg', 'cat', 'solo', 'a1'), ('solo/b.jpg', 'cat', 'solo', 'b1');
         INSERT INTO vectors (featureset, sha256, vector) SELECT featureset, 'a1', vector FROM vectors LIMIT 1;
         INSERT INTO vectors (featureset, sha256, vector) SELECT featureset, 'b1', vector FROM vectors LIMIT 1 OFFSET 1;"
fails "single class" "single class \('cat'\)" --train solo --valid none
q "$DB" "INSERT INTO images (path, label, split, sha256) VALUES ('bad/a.jpg', 'cat', 'bad', 'a2'), ('bad/b.jpg', 'dog', 'bad', 'b2');
         INSERT INTO vectors (featureset, sha256, vector) SELECT featureset, 'a2', vector FROM vectors LIMIT 1;
         INSERT INTO vectors (featureset, sha256, vector) SELECT featureset, 'b2', substr(vector, 1, 400) || x'0000c07f' || substr(vector, 405) FROM vectors LIMIT 1;"
fails "NaN in a vector" "vector of bad/b.jpg has NaN at 100" --train bad --valid none
q "$DB" "INSERT INTO featuresets (name, source, model, dim, dtype) VALUES ('tiny', 'import', 'tiny', 4, 'f32');
         INSERT INTO vectors (featureset, sha256, vector) SELECT id, 'a1', x'0000803f000000400000404000008040' FROM featuresets WHERE name = 'tiny'"
out=$("$CLASSIFY" predict --db "$DB" --run "$c1" --features tiny --quiet 2>&1)
check_eq "other dimension: exit status" "$?" 1
check_match "other dimension: message" "$out" "trained on 1024-d features \('googlenet'\); feature set 'tiny' has dim 4"
fails "several feature sets need --features" "2 feature sets \('googlenet', 'tiny'\): choose one with --features"
"$CLASSIFY" --db "$DB" --C -1 --features googlenet > /dev/null 2>&1
check_eq "bad C: usage error" "$?" 2
# A bad item after good ones (the list was once freed twice: abort).
"$CLASSIFY" --db "$DB" --C 0.1,abc --features googlenet > /dev/null 2>&1
check_eq "bad second C: usage error" "$?" 2
"$CLASSIFY" --db "$DB" --standardize=no,yes,maybe --features googlenet > /dev/null 2>&1
check_eq "bad third --standardize: usage error" "$?" 2
# An option the chosen solver does not read is a usage error naming both
# (it would be stored with the runs as if it had shaped them).
for a in "--epochs 5" "--patience 2" "--lr 0.1" "--solver newton --batch-size 4" \
    "--solver adam --max-iter 5" "--solver sgd --tol 0.1"; do
    err=$("$CLASSIFY" --db "$DB" $a --features googlenet 2>&1 >/dev/null)
    check_eq "$a: usage error" "$?" 2
    opt=$(echo "$a" | awk '{ print $(NF - 1) }')
    check_match "$a: names $opt and the solver" "$err" "^bottleneck-classify: $opt applies to --solver (sgd or adam, not (lbfgs|newton)|lbfgs or newton, not (adam|sgd) .*)\$"
done
"$CLASSIFY" --db "$T/missing.db" runs > /dev/null 2>&1
check_eq "missing database" "$?" 1
check_eq "failed trainings stored nothing" "$(q "$DB" "SELECT count(*) FROM runs")" "$runs_before"

# Half-float vectors: the same import as f16, trained the same way, lands
# within f16 rounding of the f32 results.
"$EXTRACT" import --db "$DB" --name g16 --dtype f16 --npy "$G/embeddings.npy" --index "$G/index.tsv" --quiet
check_eq "f16 import" "$?" 0
check_eq "f16 BLOBs" "$(q "$DB" "SELECT DISTINCT length(vector) FROM embeddings WHERE featureset = 'g16'")" 2048
"$CLASSIFY" --db "$DB" --features g16 --C 1 --quiet > /dev/null
check "train on f16 vectors" [ $? -eq 0 ]
h=$(q "$DB" "SELECT max(id) FROM runs")
check "f16 accuracy = f32's" near "$(metric "$h" validation accuracy)" "$(metric "$c1" validation accuracy)" 0.003
check "f16 log loss = f32's" near "$(metric "$h" validation log_loss)" "$(metric "$c1" validation log_loss)" 1e-3

# Three classes from a relabelled index, in a database of their own.
make_index3 "$T/idx3.tsv"
D3="$T/m3.db"
"$EXTRACT" import --db "$D3" --name g3 --npy "$G/embeddings.npy" --index "$T/idx3.tsv" --quiet
check_eq "3-class import" "$?" 0
"$CLASSIFY" --db "$D3" --C 0.001 --standardize --quiet > /dev/null
check "3-class training" [ $? -eq 0 ]
DB=$D3
r3=$(q "$D3" "SELECT max(id) FROM runs")
check_eq "3 classes in order" "$(q "$D3" "SELECT classes FROM runs WHERE id = $r3")" '["cat","dog_tall","dog_wide"]'
check_eq "softmax head: 3 outputs" "$(q "$D3" "SELECT outputs || ' ' || length(weights) || ' ' || length(bias) FROM heads WHERE run = $r3")" "3 12288 12"
check "3-class accuracy = scikit-learn's 0.846" near "$(metric "$r3" validation accuracy)" 0.846 0.003
check "3-class log loss = scikit-learn's 0.3286983" near "$(metric "$r3" validation log_loss)" 0.328698335 2e-5
check "3-class macro ROC AUC = scikit-learn's 0.9467599" near "$(metric "$r3" validation roc_auc)" 0.946759932 1e-4
check_eq "3x3 confusion" "$(q "$D3" "SELECT count(*) || ' ' || sum(count) FROM run_confusion WHERE run = $r3 AND split = 'validation'")" "9 1000"
out=$("$CLASSIFY" show "$r3" --db "$D3")
check_match "show: per-class rows" "$out" 'dog_tall +0\.[0-9]{4} +0\.[0-9]{4}'

finish
