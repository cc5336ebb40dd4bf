# classify_cv: `bottleneck-classify --folds 5` on the 2,000 training vectors
# of the GoogLeNet embeddings in ../shared, against scikit-learn's
# cross_val_score on the same folds. Cross-validation trains each fold's head
# on two blocks of rows (the folds before and after the held-out one,
# common/trainjob.c), so this is also training on more than one block, end to end.
#
# The stored cv metrics (means over the held-out folds) must equal
# scikit-learn's: accuracy, precision, recall and F1 (ratios of counts: a
# row in the wrong fold, or a fold scored on the wrong rows, moves them by
# 1/400 / 5 = 5e-4) to 1e-9; log loss to 1e-8 and ROC AUC to 1e-9 (observed:
# 4e-10 and 0; both solvers at the optimum to the last digits).
#
# Expected numbers: scikit-learn 1.2.1, numpy 1.24.2 (Debian bookworm
# python3-sklearn), /usr/bin/python3 from the repository root, with this
# script (the folds are make_folds' in common/trainjob.c, replayed):
#
#   import csv
#   import numpy as np
#   from sklearn.linear_model import LogisticRegression
#   from sklearn.model_selection import cross_val_score
#   d = '../shared/features/googlenet/catsdogs/'
#   X = np.load(d + 'embeddings.npy').astype(np.float64)
#   rows = list(csv.DictReader(open(d + 'index.tsv'), delimiter='\t'))
#   tr = [i for i in sorted(range(len(rows)), key=lambda i: rows[i]['relpath'])
#         if rows[i]['split'] == 'train']          # bottleneck's order: ORDER BY path
#   labels = sorted({rows[i]['label'] for i in tr})
#   y = np.array([labels.index(rows[i]['label']) for i in tr])
#   # Each class's rows (path order) shuffled by Fisher-Yates with splitmix64
#   # from one state (seed 0), dealt round robin to the folds.
#   K, seed, M = 5, 0, (1 << 64) - 1
#   state = (seed * 0x9e3779b97f4a7c15 + 0x243f6a8885a308d3) & M
#   fold = np.zeros(len(tr), int)
#   for c in range(len(labels)):
#       r = list(np.flatnonzero(y == c))
#       for i in range(len(r) - 1, 0, -1):
#           state = (state + 0x9e3779b97f4a7c15) & M
#           z = state
#           z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
#           z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
#           z ^= z >> 31
#           j = (z * (i + 1)) >> 64
#           r[i], r[j] = r[j], r[i]
#       for i, row in enumerate(r):
#           fold[row] = i % K
#   cv = [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(K)]
#   lr = LogisticRegression(C=1.0, solver='newton-cholesky', tol=1e-12, max_iter=1000)
#   for m in ['accuracy', 'neg_log_loss', 'roc_auc', 'precision_macro', 'recall_macro',
#             'f1_macro']:
#       print(m, '%.10f' % abs(cross_val_score(lr, X[tr], y, cv=cv, scoring=m).mean()))
. "$(dirname "$0")/lib.sh"

G="$SHARED/features/googlenet/catsdogs"
[ -f "$G/embeddings.npy" ] || { echo "no GoogLeNet embeddings in $SHARED"; exit 77; }
DB="$T/cv.db"
"$EXTRACT" import --db "$DB" --name googlenet --npy "$G/embeddings.npy" --index "$G/index.tsv" --quiet
check_eq "import" "$?" 0
"$CLASSIFY" --db "$DB" --folds 5 --C 1 --solver newton --tol 1e-10 --quiet >/dev/null
check_eq "classify --folds 5" "$?" 0
check_eq "cv over the 2000 training rows" "$(q "$DB" "SELECT value FROM run_metrics WHERE split = 'cv' AND metric = 'n'")" 2000.0

# metric expected tolerance
while read -r metric want tol; do
    got=$(q "$DB" "SELECT printf('%.12f', value) FROM run_metrics WHERE split = 'cv' AND metric = '$metric'")
    check "cv $metric: '$got', scikit-learn $want (tolerance $tol)" \
        awk -v g="$got" -v w="$want" -v t="$tol" 'BEGIN { d = g - w; exit !(g != "" && (d < 0 ? -d : d) <= t) }'
    echo "cv $metric: bottleneck $got, scikit-learn $want"
done <<'EOF_EXPECTED'
accuracy 0.9860000000 1e-9
log_loss 0.0510561828 1e-8
roc_auc 0.9989100000 1e-9
precision_macro 0.9861020035 1e-9
recall_macro 0.9860000000 1e-9
f1_macro 0.9859992374 1e-9
EOF_EXPECTED
finish
