# Bad weights files (issue 6): every weights file the fuzz seed generator
# makes (tests/fuzz/gen_seeds.c: Keras layouts with wrong shapes, types,
# missing attributes and groups, not HDF5 at all) goes to bottleneck-extract
# against a database that already holds vectors. Each either loads, giving its
# own feature set, or is one line naming the file with exit 1; nothing stored
# changes either way.
. "$(dirname "$0")/lib.sh"

GEN="${BN_BUILD_DIR:?}/tests/fuzz/gen_seeds"
[ -x "$GEN" ] || { echo "no $GEN (build the tests first)"; exit 1; }
"$GEN" "$T/seeds" || { echo "gen_seeds failed"; exit 1; }

make_dataset "$T/ds" 1 # 4 photos
DB="$T/w.db"
"$EXTRACT" --weights "$WEIGHTS" --size 32 --quiet --db "$DB" "$T/ds"
check_eq "run with the shared weights" "$?" 0
dump() { q "$DB" "SELECT path, hex(vector) FROM embeddings WHERE featureset NOT LIKE '%@%' ORDER BY path"; }
before=$(dump)

loaded=0 refused=0
for w in "$T"/seeds/weights/*; do
    name=$(basename "$w")
    "$EXTRACT" --weights "$w" --size 32 --quiet --db "$DB" "$T/ds" 2>"$T/err"
    rc=$?
    if [ "$rc" = 0 ]; then
        loaded=$((loaded + 1))
        check_eq "$name: no message" "$(cat "$T/err")" ""
    else
        refused=$((refused + 1))
        check_eq "$name: exit" "$rc" 1
        check_match "$name: names the file" "$(cat "$T/err")" "$name: "
        check_eq "$name: one line" "$(wc -l <"$T/err")" 1
        echo "$name: $(cat "$T/err")"
    fi
    check_eq "$name: integrity" "$(q "$DB" 'PRAGMA integrity_check')" ok
done
check "stored vectors unchanged" [ "$(dump)" = "$before" ]
echo "weights files: $loaded loaded, $refused refused"
# The complete seeds (legacy and nested names, full model, split layer_names)
# load: their datasets were never written, so every weight reads as 0 and so
# does every feature (ReLU(0) = 0). Each is its own feature set, told apart by
# its hash though the settings are the same.
check_eq "complete layouts load" "$loaded" 4
check_eq "one feature set per weights file" "$(q "$DB" 'SELECT count(*) FROM featuresets')" $((1 + loaded))
check_eq "hash-suffixed names" "$(q "$DB" "SELECT count(*) FROM featuresets WHERE name LIKE '%@%'")" "$loaded"
check_eq "all-zero weights give all-zero vectors" \
    "$(q "$DB" "SELECT count(*) FROM embeddings WHERE featureset LIKE '%@%' AND vector = zeroblob(4 * dim)")" $((4 * loaded))
finish
