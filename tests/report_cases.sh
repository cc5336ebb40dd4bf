# report_cases: the report beyond one binary run (report_html.sh covers
# that): three classes (one-vs-rest curves, the full confusion matrix),
# several runs overlaid (--runs, two feature sets), and a large run: 100,000
# predictions give a file under 10 MB (scatter sampled to 3,000 points,
# curves thinned, the gallery capped) in seconds.
. "$BN_SOURCE_DIR/tests/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "needs python3-numpy"; exit 77; }
G="$SHARED/features/googlenet/catsdogs"
[ -f "$G/embeddings.npy" ] || { echo "no GoogLeNet embeddings in $SHARED"; exit 77; }
CHECK="$BN_SOURCE_DIR/tests/report_check.py"
count() { "$PY" "$CHECK" count "$@"; }

# Three classes: dogs split by the photo's orientation (as classify_e2e.sh).
make_index3 "$T/idx3.tsv"
D3="$T/m3.db"
"$EXTRACT" import --db "$D3" --name g3 --npy "$G/embeddings.npy" --index "$T/idx3.tsv" --quiet
"$CLASSIFY" --db "$D3" --C 0.001 --standardize --quiet > /dev/null
"$CLASSIFY" report --db "$D3" --run 1 -o "$T/m3.html" --quiet > /dev/null
# -o naming the database itself: refused, the database intact.
sum=$(md5sum < "$D3")
err=$("$CLASSIFY" report --db "$D3" --run 1 -o "$T/./m3.db" --quiet 2>&1 > /dev/null)
check_eq "-o the database: exit 1" "$?" 1
check_match "-o the database: says so" "$err" "^bottleneck-classify: report -o .*m3\.db: is the database .*m3\.db itself; choose another file\$"
check_eq "-o the database: intact" "$(md5sum < "$D3")" "$sum"
check_eq "3 classes: report" "$?" 0
check_eq "3 classes: one ROC curve per class" "$(count "$T/m3.html" series:roc)" 3
check_eq "3 classes: one PR curve per class" "$(count "$T/m3.html" series:pr)" 3
check_eq "3 classes: 3 x 3 confusion cells" "$(grep -o 'class="cell"' "$T/m3.html" | wc -l)" 9
check_eq "3 classes: cells = show's matrix" \
    "$(grep -o 'data-count="[0-9]*"' "$T/m3.html" | tr -dc '0-9\n' | paste -sd ' ')" \
    "$("$CLASSIFY" show 1 --db "$D3" --json | "$PY" -c 'import json,sys; m=json.load(sys.stdin)["metrics"]["validation"]["confusion"]; print(" ".join(str(v) for r in m for v in r))')"
check_match "3 classes: one-vs-rest legends" "$(cat "$T/m3.html")" 'data-name="dog_tall vs rest, AUC 0\.[0-9]{4}"'

# Two feature sets (f32 and f16 copies of the embeddings), one run each,
# overlaid.
D2="$T/two.db"
"$EXTRACT" import --db "$D2" --name g32 --npy "$G/embeddings.npy" --index "$G/index.tsv" --quiet
"$EXTRACT" import --db "$D2" --name g16 --dtype f16 --npy "$G/embeddings.npy" --index "$G/index.tsv" --quiet
"$CLASSIFY" --db "$D2" --features g32 --C 0.01 --quiet > /dev/null
"$CLASSIFY" --db "$D2" --features g16 --C 1 --quiet > /dev/null
"$CLASSIFY" report --db "$D2" --runs 1,2 -o "$T/two.html" --quiet > /dev/null
check_eq "--runs: report" "$?" 0
check_eq "--runs: two ROC curves" "$(count "$T/two.html" series:roc)" 2
check_match "--runs: named by run and feature set" "$(cat "$T/two.html")" 'data-name="run 2 \(g16\), validation, AUC'
check_eq "--runs: two confusion matrices" "$(grep -o 'data-plot="confusion-' "$T/two.html" | wc -l)" 2
check_eq "--runs: both runs' metrics" "$(grep -o 'data-run="[12]" data-split="validation" data-metric="accuracy"' "$T/two.html" | sort -u | wc -l)" 2

# 100,000 predictions: 50,000 validation rows of 16 features.
"$PY" - "$T" <<'PY'
import hashlib, sys
import numpy as np
t = sys.argv[1]
rng = np.random.default_rng(7)
n, d = 100000, 16
y = rng.integers(0, 2, n)
x = rng.normal(size=(n, d)).astype(np.float32)
x[:, :4] += (y[:, None] * 1.2).astype(np.float32)
np.save(t + "/big.npy", x)
with open(t + "/big.tsv", "w") as f:
    f.write("relpath\tlabel\tsplit\tsha256\n")
    for i in range(n):
        f.write("%s/%s/%06d.jpg\t%s\t%s\t%s\n" % ("train" if i % 2 else "validation", "ab"[y[i]], i,
                "ab"[y[i]], "train" if i % 2 else "validation", hashlib.sha256(b"%d" % i).hexdigest()))
PY
DB="$T/big.db"
"$EXTRACT" import --db "$DB" --name big --npy "$T/big.npy" --index "$T/big.tsv" --quiet
"$CLASSIFY" --db "$DB" --C 1 --quiet > /dev/null
start=$(date +%s)
out=$("$CLASSIFY" report --db "$DB" --run 1 -o "$T/big.html" --json --quiet)
check_eq "100,000 predictions: report" "$?" 0
secs=$(($(date +%s) - start))
bytes=$(wc -c < "$T/big.html")
echo "100,000 predictions: $bytes bytes in ${secs}s"
check "100,000 predictions: under 10 MB ($bytes bytes)" [ "$bytes" -lt 10000000 ]
check_eq "100,000 predictions: the gallery capped at 24" "$(count "$T/big.html" cards)" 24
check_match "100,000 predictions: 3,000 points on the map" "$(cat "$T/big.html")" '3000 of 50000 images shown'
n=$(grep -o 'data-name="validation, AUC[^"]*" data-x="[^"]*"' "$T/big.html" | tr ' ' '\n' | wc -l)
check "100,000 predictions: the ROC curve thinned ($n points)" [ "$n" -lt 2600 ]
finish
