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
