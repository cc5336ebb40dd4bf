# vec_shell: the SQL functions as a new user meets them: the sqlite3 shell,
# `.load` of the built extension, a database imported from ../shared, and the
# README's "SQL over embeddings" examples run exactly as written (only the
# .load path is pointed at this build), with their answers checked.
. "$(dirname "$0")/lib.sh"
SRC=${BN_SOURCE_DIR:?}
EXT="${BN_BUILD_DIR:?}/ext/bottleneck_vec"
NPY="$SHARED/features/googlenet/catsdogs/embeddings.npy"
TSV="$SHARED/features/googlenet/catsdogs/index.tsv"
command -v sqlite3 >/dev/null || { echo "FAIL: the sqlite3 shell is not installed"; exit 1; }
[ -f "$EXT.so" ] || { echo "FAIL: $EXT.so not built"; exit 1; }
[ -f "$NPY" ] || { echo "no $NPY"; exit 77; }

# 1. The extension in the shell: both spellings of .load, results, errors.
check_eq ".load without .so" "$(q :memory: ".load $EXT" "SELECT vec_to_json(vec_f32('[1,2.5]'))")" \
    "[1.000000,2.500000]"
check_eq ".load with .so" "$(q :memory: ".load $EXT.so" "SELECT vec_distance_l2('[0,0]','[3,4]')")" "5.0"
out=$(q :memory: ".load $EXT" "SELECT vec_length(x'000000')" 2>&1); rc=$?
check "a malformed BLOB fails the statement" [ "$rc" -ne 0 ]
check_match "with sqlite-vec's message" "$out" \
    "invalid float32 vector BLOB length\. Must be divisible by 4, found 3"
out=$(q :memory: ".load $EXT" "SELECT vec_distance_cosine('[1,2]', '[1,2,3]')" 2>&1)
check_match "dimension mismatch message" "$out" \
    "Vector dimension mistmatch\. First vector has 2 dimensions, while the second has 3 dimensions\."
check_eq "scalar functions registered" "$(q :memory: ".load $EXT" \
    "SELECT group_concat(name, ' ') FROM (SELECT DISTINCT name FROM pragma_function_list
     WHERE name LIKE 'vec%' ORDER BY name)")" \
    "vec_add vec_avg vec_distance_cosine vec_distance_l1 vec_distance_l2 vec_dot vec_f16 vec_f32 vec_knn_pack vec_length vec_normalize vec_slice vec_sub vec_to_json vec_type"
check_eq "vec_each and vec_knn tables" "$(q :memory: ".load $EXT" \
    "SELECT group_concat(name, ' ') FROM (SELECT name FROM pragma_module_list WHERE name LIKE 'vec%' ORDER BY name)")" \
    "vec_each vec_knn"
check_eq "float16 in the shell" "$(q :memory: ".load $EXT" \
    "SELECT hex(vec_f16('[1,-2]')) || ' ' || vec_to_json(vec_f32(x'003c00c0', 'f16'))")" \
    "003C00C0 [1.000000,-2.000000]"

# 2. The database, made from ../shared as the README says.
DB="$T/catsdogs.db"
"$EXTRACT" import --db "$DB" --name googlenet --npy "$NPY" --index "$TSV" --quiet; rc=$?
check_eq "import exit status" "$rc" 0
check_eq "3000 embeddings" "$(q "$DB" "SELECT count(*) FROM embeddings WHERE featureset = 'googlenet'")" 3000
packed() { q "$DB" "SELECT coalesce(sum(count), 0) || ' ' || coalesce(max(total), 0) FROM vector_chunks
    WHERE featureset = (SELECT id FROM featuresets WHERE name = 'googlenet')"; }
check_eq "import packs the feature set for vec_knn" "$(packed)" "3000 3000"
q "$DB" "DELETE FROM vectors WHERE sha256 = (SELECT min(sha256) FROM vectors)" || echo "FAIL: the DELETE failed"
check_eq "a write through the shell drops the packed copy" "$(packed)" "0 0"
"$EXTRACT" import --db "$DB" --name googlenet --npy "$NPY" --index "$TSV" --quiet; rc=$?
check_eq "re-import exit status" "$rc" 0
check_eq "the next run packs it again" "$(packed)" "3000 3000"
# and a classify run with stored predictions, for the mistakes example
"$CLASSIFY" train --db "$DB" --features googlenet --C 0.1 --quiet > /dev/null; rc=$?
check_eq "classify train exit status" "$rc" 0
RUN=$(q "$DB" "SELECT max(id) FROM runs")
"$CLASSIFY" predict --db "$DB" --run "$RUN" --split validation --quiet > /dev/null; rc=$?
check_eq "classify predict exit status" "$rc" 0
MISTAKES=$(q "$DB" "SELECT count(*) FROM run_predictions WHERE run = $RUN AND NOT correct")
check "the run makes some mistakes on validation" [ "$MISTAKES" -ge 1 ]

# 3. The README's examples, block by block in one session, as written.
awk '/^## SQL over embeddings/ { on = 1; next } on && /^## / { on = 0 } on' "$SRC/README.md" \
    > "$T/section.md"
awk -v dir="$T" '
    /^```sql$/ { inb = 1; n++; print ".print @@block " n; next }
    /^```$/    { inb = 0; next }
    inb        { print; print > (dir "/block." n ".sql") }' "$T/section.md" > "$T/readme.sql"
blocks=$(grep -c '^\.print @@block' "$T/readme.sql")
check "README has its examples" [ "$blocks" -ge 5 ]
check_eq "README loads build/ext/bottleneck_vec" \
    "$(grep -c '^\.load build/ext/bottleneck_vec$' "$T/readme.sql")" 1
sed "s|^\.load build/ext/bottleneck_vec$|.load $EXT|" "$T/readme.sql" > "$T/run.sql"
(cd "$T" && sqlite3 -bail catsdogs.db < run.sql > out.txt 2> err.txt); rc=$?
check_eq "README examples run without error" "$rc:$(cat "$T/err.txt")" "0:"
awk -v dir="$T" '/^@@block / { f = dir "/out." $2; next } f { print > f }' "$T/out.txt"

# rows BLOCK: the data rows of a block's .mode column output (no header, no dashes)
rows() { tail -n +3 "$T/out.$1" 2>/dev/null; }
block_with() { grep -l -- "$1" "$T"/block.*.sql | head -1 | sed 's/.*block\.\([0-9]*\)\.sql/\1/'; }

b=$(block_with "vec_knn((SELECT vector")
check "neighbours example found" [ -n "$b" ]
check_eq "10 neighbours" "$(rows "$b" | wc -l)" 10
check_eq "the query image is not its own neighbour" \
    "$(rows "$b" | grep -c 'validation/dog/dog.4970.jpg')" 0
check "neighbours of a dog are dogs (real embeddings)" [ "$(rows "$b" | awk '$2 == "dog"' | wc -l)" -ge 8 ]
check_eq "nearest first" "$(rows "$b" | awk '{ print $3 }' | sort -g | tr '\n' ' ')" \
    "$(rows "$b" | awk '{ print $3 }' | tr '\n' ' ')"
# the same ten by the scalar form, computed here independently of the README
check_eq "vec_knn and the scalar form agree" "$(rows "$b" | awk '{ print $1 }' | tr '\n' ' ')" \
    "$(q "$DB" ".load $EXT" "SELECT path FROM (SELECT path, vec_distance_cosine(vector,
        (SELECT vector FROM embeddings WHERE featureset = 'googlenet'
         AND path = 'validation/dog/dog.4970.jpg')) AS d FROM embeddings
        WHERE featureset = 'googlenet' AND path != 'validation/dog/dog.4970.jpg'
        ORDER BY d LIMIT 10)" | tr '\n' ' ')"

b=$(block_with "min(distance)")
check "centroid example found" [ -n "$b" ]
out=$(rows "$b")
check_eq "distances to both centroids" "$(printf '%s\n' "$out" | grep -c '^validation/')" 4
acc=$(printf '%s\n' "$out" | awk '$1 ~ /^0\.[0-9]+$/ && $2 == 1000 { print $1 }')
check "nearest-centroid accuracy on 1000 validation images above 0.95: $acc" \
    awk -v a="${acc:-0}" 'BEGIN { exit !(a > 0.95) }'

b=$(block_with "k.distance < 0.1")
check "near-duplicates example found" [ -n "$b" ]
check "look-alike pairs found" [ "$(rows "$b" | wc -l)" -ge 1 ]
check_eq "every pair below 0.1, listed once (image < look_alike)" \
    "$(rows "$b" | awk '!($3 < 0.1 && $1 < $2)' | wc -l)" 0

b=$(block_with "run_predictions")
check "mistakes example found" [ -n "$b" ]
want=$((MISTAKES < 10 ? MISTAKES : 10))
check_eq "the run's mistakes listed" "$(rows "$b" | wc -l)" "$want"
check_eq "each a mistake (label != predicted), its neighbour from train" \
    "$(rows "$b" | awk '$2 == $3 || $5 !~ /^train\//' | wc -l)" 0

# 4. A float16 import: vec_knn reads the dtype; the scalar form converts with
# vec_f32(vector, dtype) (docs/SQL.md). Both give float32's ten neighbours.
"$EXTRACT" import --db "$DB" --name googlenet16 --dtype f16 --npy "$NPY" --index "$TSV" --quiet
check_eq "float16 import exit status" "$?" 0
f32ten=$(rows "$(block_with "vec_knn((SELECT vector")" | awk '{ print $1 }' | tr '\n' ' ')
Q16="(SELECT vector FROM embeddings WHERE featureset = 'googlenet16' AND path = 'validation/dog/dog.4970.jpg')"
check_eq "vec_knn on the float16 set" "$(q "$DB" ".load $EXT" "SELECT path FROM vec_knn($Q16, 10,
    'googlenet16') WHERE path != 'validation/dog/dog.4970.jpg'" | tr '\n' ' ')" "$f32ten"
check_eq "scalar form on the float16 set" "$(q "$DB" ".load $EXT" "SELECT path FROM embeddings
    WHERE featureset = 'googlenet16' AND path != 'validation/dog/dog.4970.jpg' ORDER BY
    vec_distance_cosine(vec_f32(vector, dtype), vec_f16($Q16)) LIMIT 10" | tr '\n' ' ')" "$f32ten"

# 5. vec_dot on the stored head gives the probabilities classify stored:
# sigmoid(vector . weights + bias) = P(second class), for all 1000 rows.
check_eq "vec_dot + vec_each on the head reproduce classify's probabilities" \
    "$(q "$DB" ".load $EXT" "SELECT count(*), max(abs(1 / (1 + exp(-(vec_dot(e.vector, h.weights)
        + (SELECT value FROM vec_each(h.bias))))) - CASE p.predicted WHEN 'dog' THEN p.probability
        ELSE 1 - p.probability END)) < 1e-5
        FROM run_predictions p JOIN embeddings e ON e.path = p.path AND e.featureset = 'googlenet'
        JOIN heads h ON h.run = p.run WHERE p.run = $RUN")" "1000|1"

finish
