# usability: the rough edges a new user hits (issue 18, items 6, 7, 8, 11,
# 12, 14, 15), each as the user meets it.
. "$BN_SOURCE_DIR/tests/lib.sh"

DB="$T/u.db"
make_dataset "$T/ds" 2 # 8 photos
run() { "$EXTRACT" --weights "$WEIGHTS" --size 32 --quiet "$@"; }
run --db "$DB" --pooling avg "$T/ds"
run --db "$DB" --pooling avg --dtype f16 "$T/ds"
"$CLASSIFY" --db "$DB" --quiet --features 1 --C 1 > /dev/null
"$CLASSIFY" --db "$DB" --quiet --features 2 --C 1 > /dev/null

# 6. runs shows feature-set names whole (these two differ only at the end).
out=$("$CLASSIFY" --db "$DB" runs)
check_match "runs: the f32 name whole" "$out" "vgg16/block5_pool/avg/32/squash/caffe/f32"
check_match "runs: the f16 name whole" "$out" "vgg16/block5_pool/avg/32/squash/caffe/f16"

# 11. Usage errors exit 2; lists with empty items and yes/no flags.
"$CLASSIFY" --db "$DB" show abc > /dev/null 2>&1
check_eq "show abc: exit 2" "$?" 2
"$CLASSIFY" --db "$DB" runs --sort bogus > /dev/null 2> "$T/e.txt"
check_eq "runs --sort bogus: exit 2" "$?" 2
check_match "runs --sort bogus: says what is allowed" "$(cat "$T/e.txt")" "--sort 'bogus': expected one of id, "
"$CLASSIFY" --db "$DB" runs --filter 'bogus>1' > /dev/null 2>&1
check_eq "--filter 'bogus>1': exit 2" "$?" 2
"$CLASSIFY" --db "$DB" --quiet --C 1,,2 > /dev/null 2> "$T/e.txt"
check_eq "--C 1,,2: exit 2" "$?" 2
check_match "--C 1,,2: the empty item named" "$(cat "$T/e.txt")" "--C 1,,2: an empty item"
"$CLASSIFY" --db "$DB" --quiet --C 1, > /dev/null 2>&1
check_eq "--C 1, (trailing comma): exit 2" "$?" 2
out=$("$CLASSIFY" --db "$DB" runs --json --filter chosen=yes)
check_eq "--filter chosen=yes" "$?" 0
check_eq "--filter chosen=yes: the two chosen runs" \
    "$(printf '%s' "$out" | python3 -c 'import json,sys; print(sorted(r["chosen"] for r in json.load(sys.stdin)["runs"]))')" "[True, True]"
out=$("$CLASSIFY" --db "$DB" runs --json --filter standardize=no)
check_eq "--filter standardize=no" "$?" 0

# 14. -h works; a command's --help shows that command's options and examples.
"$EXTRACT" -h > "$T/h.txt"
check_eq "extract -h: exit 0" "$?" 0
check_match "extract -h: the usage" "$(head -n 1 "$T/h.txt")" "^usage: bottleneck-extract"
"$CLASSIFY" -h > /dev/null
check_eq "classify -h: exit 0" "$?" 0
out=$("$CLASSIFY" predict --help)
check_eq "predict --help: exit 0" "$?" 0
check_match "predict --help: its options" "$out" "--weights FILE"
check_match "predict --help: its examples" "$out" "predict --run 3 new_photos/"
check "predict --help: not train's options" sh -c "! printf '%s' \"\$1\" | grep -q -- '--class-weight'" _ "$out"
out=$("$CLASSIFY" runs -h)
check_match "runs -h: its options" "$out" "--filter EXPR"
check "runs -h: not predict's" sh -c "! printf '%s' \"\$1\" | grep -q -- '--weights FILE'" _ "$out"

# 8. The missing-weights message names a command that exists.
cp "$SHARED/data/catsdogs/validation/cat/$(ls "$SHARED/data/catsdogs/validation/cat" | sort | tail -n 1)" "$T/new.jpg"
run1=$(q "$DB" "SELECT min(id) FROM runs")
XDG_CACHE_HOME="$T/nocache" BOTTLENECK_WEIGHTS= "$CLASSIFY" --db "$DB" --quiet predict --run "$run1" "$T/new.jpg" > /dev/null 2> "$T/e.txt"
check_eq "no weights: exit 1" "$?" 1
check_match "no weights: points at bottleneck-extract --download" "$(cat "$T/e.txt")" "bottleneck-extract --download"
check "no weights: no option classify lacks" sh -c "! grep -q 'run with --download' \"\$1\"" _ "$T/e.txt"

# 12. An empty --db file is called what it is.
: > "$T/empty.db"
"$CLASSIFY" --db "$T/empty.db" runs > /dev/null 2> "$T/e.txt"
check_eq "empty db, read-only: exit 1" "$?" 1
check_match "empty db: says so" "$(cat "$T/e.txt")" "empty.db: an empty file, not a bottleneck database yet"
check "empty db: no talk of schema versions" sh -c "! grep -q 'schema version' \"\$1\"" _ "$T/e.txt"
run --db "$T/empty.db" --pooling avg "$T/ds"
check_eq "empty db: extract initialises it" "$?" 0

# 15. Debian's Python loads the extension: the docs/SQL.md recipe, as written.
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    recipe=$(sed -n '/^```python$/,/^```$/p' "$BN_SOURCE_DIR/docs/SQL.md" | sed '1d;$d')
    check "docs/SQL.md has a Python recipe" [ -n "$recipe" ]
    out=$(cd "$T" && BN_DB="$DB" BN_EXT="${BN_BUILD_DIR:?}/ext/bottleneck_vec" BN_FEATURESET=vgg16/block5_pool/avg/32/squash/caffe/f32 \
        /usr/bin/python3 -c "$recipe")
    check_eq "the recipe runs" "$?" 0
    check_match "the recipe finds 3 neighbours with numpy's cosine distance" "$out" "^3 neighbours, numpy agrees$"
else
    echo "no numpy in /usr/bin/python3: recipe not run"
fi

# 7. scripts/catsdogs.sh on a database that also holds other images: the
# query image is one with a vector in the script's feature set.
mkdir -p "$T/other/validation/cat" "$T/other/validation/dog"
cp "$(ls "$T/ds/validation/cat/"* | head -n 1)" "$T/other/validation/cat/0000.jpg"
cp "$(ls "$T/ds/validation/dog/"* | head -n 1)" "$T/other/validation/dog/"
run --db "$T/c.db" "$T/other" # size 32: not the script's feature set
# With --json, a fatal error is one object on stdout too ({"ok":false,
# "error":...}, the stderr line's message), exit 1, for every program (a
# script reading stdout always gets one object); verify's report says ok.
json_fatal() { # json_fatal DESCRIPTION EXPECTED_MESSAGE_REGEX COMMAND...
    what=$1 want=$2
    shift 2
    out=$("$@" 2>"$T/e.txt"); rc=$?
    check_eq "$what: exit 1" "$rc" 1
    check_match "$what: one JSON object on stdout" "$out" "^\{\"ok\":false,\"error\":\"$want"
    check_eq "$what: one line on stdout" "$(printf '%s\n' "$out" | wc -l)" 1
    check_match "$what: the same message on stderr" "$(cat "$T/e.txt")" "$want"
}
json_fatal "extract, no such folder" "$T/nope: " "$EXTRACT" --weights "$WEIGHTS" --db "$DB" --json "$T/nope"
json_fatal "extract, not a database" "$T/ds/train/cat/" "$EXTRACT" --weights "$WEIGHTS" --db "$(ls -d "$T"/ds/train/cat/* | head -n 1)" --json "$T/ds"
json_fatal "extract layers, not a model" "$T/" "$EXTRACT" layers --model "$DB" --json
json_fatal "verify, several feature sets" "$DB: several feature sets" "$EXTRACT" verify --weights "$WEIGHTS" --db "$DB" --json "$T/ds"
json_fatal "classify, no such feature set" "$DB: no feature set 'nope'" "$CLASSIFY" --db "$DB" --features nope --json
json_fatal "predict, no such run" "$DB: no run 99" "$CLASSIFY" predict --db "$DB" --run 99 --json "$T/ds"
out=$("$EXTRACT" verify --weights "$WEIGHTS" --db "$DB" --features 1 --sample 2 --json "$T/ds" 2>/dev/null)
check_match "verify --json: ok" "$out" '"ok":true,"differing":\[\]\}$'
out=$(DB="$T/c.db" BUILD="$BN_BUILD_DIR" BN_SKIP_BUILD=1 bash "$BN_SOURCE_DIR/scripts/catsdogs.sh" "$T/ds" "$WEIGHTS" 2>&1)
check_eq "scripts/catsdogs.sh: exit 0" "$?" 0
check "scripts/catsdogs.sh: no NULL query vector" sh -c "! printf '%s' \"\$1\" | grep -q 'query vector is NULL'" _ "$out"
check_match "scripts/catsdogs.sh: the neighbours listed" "$out" "validation/cat/cat\.[0-9]+\.jpg +cat +0\.0"
finish
