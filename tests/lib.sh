# tests/lib.sh: helpers for the shell tests (sourced). Each test script
# calls check/check_eq and ends with `finish`, which prints
# "N passed, N failed" and exits non-zero on any failure.
set -u
PASS=0
FAIL=0
EXTRACT=${BN_EXTRACT:?}
CLASSIFY=${BN_CLASSIFY:?}
SHARED=${BN_SHARED:?}
[ -d "$SHARED/data/catsdogs" ] || { echo "no shared data at $SHARED"; exit 77; }
WEIGHTS="$SHARED/models/vgg16_random_notop.h5"
T=$(mktemp -d "${TMPDIR:-/tmp}/bn-test.XXXXXX")
trap 'rm -rf "$T"' EXIT

ok() { PASS=$((PASS + 1)); }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then ok; else bad "$what"; fi
}
check_eq() { # check_eq DESCRIPTION ACTUAL EXPECTED
    if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', expected '$3'"; fi
}
check_match() { # check_match DESCRIPTION TEXT REGEX
    if printf '%s' "$2" | grep -Eq -- "$3"; then ok; else bad "$1: '$2' does not match /$3/"; fi
}
finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}
q() { sqlite3 -batch -noheader "$@"; }

# make_index3 OUT: the shared GoogLeNet index relabelled into three classes,
# cat, dog_tall and dog_wide (dogs split by the photo's orientation in
# MANIFEST.tsv, which the embeddings partly encode).
make_index3() {
    awk -F '\t' -v OFS='\t' 'NR == FNR { if (FNR > 1) tall[$1] = ($5 > $4); next }
        FNR == 1 { print; next }
        { if ($3 == "dog") $3 = tall[$2] ? "dog_tall" : "dog_wide"; print }' \
        "$SHARED/data/catsdogs/MANIFEST.tsv" "$SHARED/features/googlenet/catsdogs/index.tsv" > "$1"
}

# make_dataset DIR N_PER_CLASS: copy N photos per class of train and validation
# from the shared cats and dogs into DIR/{train,validation}/{cat,dog}.
make_dataset() {
    local dir=$1 n=$2 split cls
    for split in train validation; do
        for cls in cat dog; do
            mkdir -p "$dir/$split/$cls"
            ls "$SHARED/data/catsdogs/$split/$cls" | sort | head -n "$n" |
                while read -r f; do cp "$SHARED/data/catsdogs/$split/$cls/$f" "$dir/$split/$cls/"; done
        done
    done
}

# storage_fixture: the set-up of the storage failure tests (reliability_disk.sh,
# reliability_lock.sh). 16 photos in $T/ds, the first 4 (train/cat) in $T/half,
# a reference database $T/ref.db whose dump is $ref, n_images=16, and helpers:
#   run ARGS...   extract at size 64, batch 2, quietly, as dataset 'ds'
#   dump DB       path, sha256 and vector of every stored image
#   fresh DB      a new database holding the 4 images of $T/half, checkpointed
#   kept DB       the 4 images of $T/half are all still in DB, unchanged
#   one_line FILE FILE has exactly one line
storage_fixture() {
    make_dataset "$T/ds" 4 # 16 photos
    n_images=16
    mkdir -p "$T/half/train"
    cp -r "$T/ds/train/cat" "$T/half/train/" # 4 of them
    # One dataset, 'ds', extracted in pieces ($T/half, then $T/ds): named, so
    # that the second folder continues the first (its files are all in it).
    run() { "$EXTRACT" --weights "$WEIGHTS" --size 64 --batch 2 --quiet --dataset ds "$@"; }
    dump() { q "$1" 'SELECT path, sha256, hex(vector) FROM images JOIN vectors USING (sha256) ORDER BY path'; }
    run --db "$T/ref.db" "$T/ds"
    check_eq "reference run" "$?" 0
    ref=$(dump "$T/ref.db")
    # A database holding the first 4 images, fully checkpointed (no -wal).
    fresh() {
        rm -f "$1" "$1-wal" "$1-shm"
        run --db "$1" "$T/half" && q "$1" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
    }
    kept() { # kept DB: the 4 first images are all still there, unchanged
        [ "$(dump "$1" | grep -c '^train/cat/')" = 4 ] &&
            [ "$(dump "$1" | grep '^train/cat/')" = "$(echo "$ref" | grep '^train/cat/')" ]
    }
    one_line() { [ "$(wc -l <"$1")" -eq 1 ]; }
}
