# Provenance and repair (the partial-batch defect of 0.1.0): every vector
# records its engine; a re-run warns about vectors of unknown provenance;
# `verify` finds deliberately wrong vectors (bitwise for the same engine,
# 1e-4 otherwise), --repair replaces exactly those, and the repaired
# database equals a fresh extraction byte for byte. --self-check runs.
. "$(dirname "$0")/lib.sh"

make_dataset "$T/ds" 3  # 12 photos
DB="$T/v.db"
run() { "$EXTRACT" --weights "$WEIGHTS" --db "$1" --size 64 --batch 5 --quiet "$@"; }
verify() { "$EXTRACT" verify --weights "$WEIGHTS" --db "$DB" "$@"; }

"$EXTRACT" --weights "$WEIGHTS" --db "$DB" --size 64 --batch 5 --quiet --self-check 1 --json "$T/ds" >"$T/out.json"
check_eq "extract with --self-check 1 exit" "$?" 0
check_eq "engine recorded on every vector" "$(q "$DB" "SELECT count(*) FROM vectors WHERE (engine IN ('winograd','winograd-portable') OR engine LIKE 'direct+openblas-%') AND engine_version = 5")" 12
cp "$DB" "$T/fresh.db"

# A clean database: verify finds nothing, bitwise.
out=$(verify --all --json "$T/ds"); rc=$?
check_eq "verify clean exit" "$rc" 0
check_match "verify clean: all identical" "$out" '"checked":12,"identical":12,"close":0,"differ":0'
check_match "verify clean: --json lists none" "$out" '"differing":\[\]\}$'

# Deliberately wrong vectors: one zeroed, one with its last byte changed
# of the first float's mantissa (within any tolerance: caught only because the same engine must give the
# same bytes), and two marked as written by 0.1.0 but correct.
z=$(q "$DB" "SELECT sha256 FROM vectors ORDER BY sha256 LIMIT 1 OFFSET 2")
b=$(q "$DB" "SELECT sha256 FROM vectors ORDER BY sha256 LIMIT 1 OFFSET 5")
q "$DB" "UPDATE vectors SET vector = zeroblob(length(vector)) WHERE sha256 = '$z'"
q "$DB" "UPDATE vectors SET vector = CASE WHEN substr(vector, 1, 1) = x'00' THEN x'01' ELSE x'00' END || substr(vector, 2) WHERE sha256 = '$b'"
q "$DB" "UPDATE vectors SET engine = NULL, engine_version = NULL WHERE sha256 IN (SELECT sha256 FROM vectors ORDER BY sha256 DESC LIMIT 2)"
check_eq "the byte really changed" "$(q "$DB" "SELECT count(*) FROM vectors v JOIN fresh.vectors f USING (sha256) WHERE v.vector != f.vector" -cmd "ATTACH '$T/fresh.db' AS fresh")" 2

# Opening warns about the two unrecorded vectors, and says what to run.
err=$("$EXTRACT" --weights "$WEIGHTS" --db "$DB" --size 64 "$T/ds" 2>&1 >/dev/null)
check_match "warning on open" "$err" "holds 2 vectors written by bottleneck 0.1.0 or earlier.*verify --db"

out=$(verify --all "$T/ds" 2>&1); rc=$?
check_eq "verify finds them: exit 3" "$rc" 3
pz=$(q "$DB" "SELECT min(path) FROM images WHERE sha256 = '$z'")
pb=$(q "$DB" "SELECT min(path) FROM images WHERE sha256 = '$b'")
check_match "zeroed vector named" "$out" "differs: $pz"
check_match "one-byte change named" "$out" "differs: $pb"
# The two unrecorded ones are correct: the same bytes as now (identical).
check_match "counts" "$out" "12 checked: 10 identical, 0 within 1e-4 \\(another engine\\), 2 differ"
check_match "says how to repair" "$out" "verify --repair"

out=$(verify --sample 3 --json "$T/ds"); rc=$?
check_match "--sample 3 checks 3" "$out" '"selected":3,"checked":3'

out=$(verify --all --repair --json "$T/ds"); rc=$?
check_eq "repair exit" "$rc" 0
check_match "repaired 2" "$out" '"differ":2,"repaired":2'
check_eq "repaired = fresh, byte for byte" "$(q "$DB" "SELECT count(*) FROM vectors v JOIN fresh.vectors f USING (sha256) WHERE v.vector = f.vector" -cmd "ATTACH '$T/fresh.db' AS fresh")" 12
out=$(verify --all --json "$T/ds"); rc=$?
check_eq "after repair: exit 0" "$rc" 0
# Recomputed by another engine: compared within 1e-4, not bitwise.
out=$(verify --all --conv direct --json "$T/ds"); rc=$?
check_eq "verify with the exact engine: exit 0" "$rc" 0
check_match "exact engine: all within 1e-4" "$out" '"checked":12,"identical":0,"close":12,"differ":0'
# Winograd forced on every layer rounds the first layer otherwise than auto
# (which gives it the small engine, or the direct engine without AVX2):
# another engine id, so within 1e-4 and never a difference to repair.
out=$(verify --all --conv winograd --json "$T/ds"); rc=$?
check_eq "verify with Winograd forced: exit 0" "$rc" 0
check_match "Winograd forced: all within 1e-4" "$out" '"checked":12,"identical":0,"close":12,"differ":0'
# The direct engine's vectors name OpenBLAS' kernels, which OpenBLAS picks
# by CPU and which sum in their own orders: recomputed with the same ones,
# bitwise; with others (another host's; here Sandybridge's forced on this
# one), another id, judged within 1e-4 and never reported as differing.
"$EXTRACT" --weights "$WEIGHTS" --db "$T/d.db" --size 64 --batch 5 --quiet --conv direct "$T/ds"
check_match "direct vectors name the kernels" \
    "$(q "$T/d.db" "SELECT group_concat(DISTINCT engine || ' ' || engine_version) FROM vectors")" '^direct\+openblas-[a-z0-9]+ 5$'
out=$("$EXTRACT" verify --weights "$WEIGHTS" --db "$T/d.db" --all --conv direct --json "$T/ds"); rc=$?
check_match "direct, the same kernels: bitwise" "$out" '"checked":12,"identical":12,"close":0,"differ":0'
out=$(OPENBLAS_CORETYPE=Sandybridge "$EXTRACT" verify --weights "$WEIGHTS" --db "$T/d.db" --all \
    --conv direct --json "$T/ds"); rc=$?
check_eq "direct, other kernels: exit 0" "$rc" 0
check_match "direct, other kernels: within 1e-4, none differ" "$out" '"checked":12,.*"differ":0'

# A file changed since extraction is counted, not judged; a missing one too.
cp "$SHARED/data/catsdogs/train/dog/$(ls "$SHARED/data/catsdogs/train/dog" | sort | tail -1)" "$T/ds/$pz"
rm "$T/ds/$pb"
out=$(verify --all --json "$T/ds"); rc=$?
check_match "changed and missing counted" "$out" '"missing":1,"changed":1'

# A database of two datasets (two folders, one feature set): verifying one
# folder reads the vectors only the other holds from the other's folder
# (they were reported as missing files): a wrong one there is found, named
# by its whole path, and repaired.
mkdir -p "$T/first/dog" "$T/other/cat"
ls "$SHARED/data/catsdogs/validation/dog" | sort | tail -n 4 |
    while read -r f; do cp "$SHARED/data/catsdogs/validation/dog/$f" "$T/first/dog/"; done
ls "$SHARED/data/catsdogs/validation/cat" | sort | tail -n 2 |
    while read -r f; do cp "$SHARED/data/catsdogs/validation/cat/$f" "$T/other/cat/"; done
"$EXTRACT" --weights "$WEIGHTS" --db "$T/two.db" --size 64 --quiet "$T/first"
"$EXTRACT" --weights "$WEIGHTS" --db "$T/two.db" --size 64 --quiet "$T/other"
check_eq "two datasets, one feature set" "$(q "$T/two.db" "SELECT count(*) FROM datasets WHERE root IS NOT NULL AND root != ''") $(q "$T/two.db" "SELECT count(*) FROM featuresets")" "2 1"
o=$(q "$T/two.db" "SELECT sha256 FROM images WHERE dataset = (SELECT id FROM datasets WHERE name = 'other') ORDER BY path LIMIT 1")
q "$T/two.db" "UPDATE vectors SET vector = zeroblob(length(vector)) WHERE sha256 = '$o'"
out=$("$EXTRACT" verify --weights "$WEIGHTS" --db "$T/two.db" --all --json "$T/first"); rc=$?
check_eq "two datasets: the wrong vector of the other found, exit 3" "$rc" 3
check_match "two datasets: every vector checked, none missing" "$out" '"selected":6,"checked":6,"identical":5,"close":0,"differ":1,"repaired":0,"missing":0'
check_match "two datasets: --json lists the one that differs" "$out" "\"differing\":\\[\\{\"path\":\"$T/other/cat/cat\\.[0-9]+\\.jpg\",\"rel_l2\":1,\"stored_by\":\"[a-z0-9+-]+\"\\}\\]\\}\$"
"$EXTRACT" verify --weights "$WEIGHTS" --db "$T/two.db" --all "$T/first" >"$T/o" 2>&1
check_match "two datasets: named by its whole path" "$(cat "$T/o")" "$T/other/cat/cat\.[0-9]+\.jpg"
"$EXTRACT" verify --weights "$WEIGHTS" --db "$T/two.db" --all --repair --quiet "$T/first" >/dev/null 2>&1
check_eq "two datasets: repaired, exit 0" "$?" 0
out=$("$EXTRACT" verify --weights "$WEIGHTS" --db "$T/two.db" --all --json "$T/other"); rc=$?
check_match "two datasets: verified from the other folder, all identical" "$out" '"checked":6,"identical":6,.*"missing":0'
# A dataset folder moved since extraction is verified where it is now (its
# recorded folder is gone): nothing missing.
mv "$T/first" "$T/first_moved"
out=$("$EXTRACT" verify --weights "$WEIGHTS" --db "$T/two.db" --all --json "$T/first_moved"); rc=$?
check_eq "a moved folder: exit 0" "$rc" 0
check_match "a moved folder: every vector found and identical" "$out" '"checked":6,"identical":6,.*"missing":0'


# A feature set read at a tensor that is not a pool (block5_conv3, averaged)
# is verified too, bitwise: the network is VGG16 up to block5_pool, pruned.
"$EXTRACT" --weights "$WEIGHTS" --db "$T/c.db" --size 64 --layer block5_conv3 --pooling avg --quiet "$T/ds"
check_eq "extract at block5_conv3 exit" "$?" 0
out=$("$EXTRACT" verify --weights "$WEIGHTS" --db "$T/c.db" --all --json "$T/ds"); rc=$?
check_eq "verify block5_conv3 exit" "$rc" 0
check_match "verify block5_conv3: bitwise" "$out" '"featureset":"vgg16/block5_conv3/avg/64/squash/caffe/f32","selected":[0-9]+,"checked":[0-9]+,"identical":[0-9]+,"close":0,"differ":0'
# Weights other than the set's (a complete Keras layout of zeros, from the
# fuzz seeds) are refused before anything is computed: one line naming the
# file and telling what to pass; nothing stored changes.
"${BN_BUILD_DIR:?}/tests/fuzz/gen_seeds" "$T/seeds" > /dev/null
before=$(q "$T/c.db" "SELECT hex(vector) FROM vectors ORDER BY sha256")
"$EXTRACT" verify --weights "$T/seeds/weights/legacy.h5" --db "$T/c.db" --all --repair "$T/ds" 2>"$T/e"; rc=$?
check_eq "other weights: exit 1" "$rc" 1
check_eq "other weights: one line" "$(wc -l <"$T/e")" 1
check_match "other weights: names the file" "$(cat "$T/e")" "legacy\.h5: not the weights feature set 'vgg16/block5_conv3/.*' was extracted with.*pass that file with --weights"
check "other weights: vectors unchanged" [ "$(q "$T/c.db" "SELECT hex(vector) FROM vectors ORDER BY sha256")" = "$before" ]

# Usage and bad input.
"$EXTRACT" verify --db "$DB" --all --sample 3 "$T/ds" 2>/dev/null; check_eq "--all with --sample: usage" "$?" 2
"$EXTRACT" verify --db "$T/none.db" --weights "$WEIGHTS" "$T/ds" 2>"$T/e"; rc=$?
check_eq "missing database exit" "$rc" 1
check_match "missing database names the file" "$(cat "$T/e")" "none.db"
finish
