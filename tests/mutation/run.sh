#!/usr/bin/env bash
# tests/mutation/run.sh [SHARED]: does the suite notice when the code is
# wrong? Each mutation below breaks one line of the engines, the store, the
# trainer or the readers (a dropped bias, an off-by-one, a skipped row), in a
# copy of the committed tree (git archive HEAD; the worktree is never
# touched), rebuilds, and runs the tests that should catch it. A mutation is
# caught when at least one of them fails. Prints one line per mutation:
#
#   caught|MISSED  NAME  (failed: TESTS)
#
# and exits 1 if any was missed, or no longer applies (its line changed:
# update it here). The tests are first run on the unmutated copy: one that
# fails there cannot catch anything, and the run stops.
#
# Cost: one build of the copy plus the listed tests per mutation (about
# 12-25 min wall on the shared 2-core machine), so CI runs it on a schedule, not on
# every push: .ci/run with BN_MUTATION=1 (docs/RELIABILITY.md).
set -euo pipefail
src=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
shared=$(cd "${1:-$src/../shared}" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/bn-mutation.XXXXXX")
trap 'rm -rf "$W"' EXIT
git -C "$src" archive --format=tar HEAD | tar -x -C "$W"
echo "== mutation: building a copy of $(git -C "$src" rev-parse --short HEAD) in $W"
meson setup "$W/build" "$W" --buildtype=debugoptimized -Dbench=false -Dshared_dir="$shared" >/dev/null
ninja -C "$W/build" >/dev/null

# failed TESTS...: run them; print the names of those that did not pass.
failed() {
    meson test -C "$W/build" --no-rebuild "$@" >/dev/null 2>&1 || true
    python3 - "$W/build/meson-logs/testlog.json" <<'PY'
import json, sys
print(" ".join(t["name"] for t in map(json.loads, filter(str.strip, open(sys.argv[1])))
               if t["result"] not in ("OK", "EXPECTEDFAIL")))
PY
}

# why: the first complaint of each failed test in the last run, so that a
# mutation is seen caught for the right reason (not, say, a crash at start).
why() {
    python3 - "$W/build/meson-logs/testlog.json" <<'PY'
import json, re, sys
for t in map(json.loads, filter(str.strip, open(sys.argv[1]))):
    if t["result"] in ("OK", "EXPECTEDFAIL"):
        continue
    text = (t.get("stderr") or "") + "\n" + (t.get("stdout") or "")
    lines = [l for l in text.splitlines() if re.search(r"FAIL|CHECK failed|ERROR|rror", l)]
    first = (lines or [t["result"]])[0].strip()
    print(f"          {t['name']}: {first[:160]}")
PY
}

# The mutations: NAME FILE FROM TO TESTS (space-separated). FROM must occur
# exactly once in FILE. $BN_MUTATIONS (an extended regular expression) keeps
# only the mutations whose name matches it.
names=() files=() froms=() tos=() tests=()
mutation() {
    printf '%s' "$1" | grep -Eq -- "${BN_MUTATIONS:-.}" || return 0
    names+=("$1"); files+=("$2"); froms+=("$3"); tos+=("$4"); tests+=("$5")
}

mutation "direct engine: bias dropped" common/conv_direct.c \
    'float v = q[co] + c->bias[co];' 'float v = q[co] + 0.0f * c->bias[co];' "conv vgg16"
mutation "winograd: last channel of a partial 16-channel group loses its bias (off by one)" \
    common/conv_winograd.c 'for (int i = 0; c + i < cout; i++)' \
    'for (int i = 0; c + i < cout - 1; i++)' "winograd"
mutation "store: each vector BLOB one float short" common/store.c \
    'sqlite3_bind_blob64(q, 3, blob, bytes, SQLITE_STATIC);' \
    'sqlite3_bind_blob64(q, 3, blob, bytes - 4, SQLITE_STATIC);' "extract_basic"
mutation "extractor: the last image of each batch not stored (skipped row)" common/extractor.c \
    $'for (size_t k = 0; k < b->nops; k++) {\n            op *o = &b->ops[k];\n            const bn_item *it = &x->ds->items[o->item];\n            int rc = BN_OK;' \
    $'for (size_t k = 0; k + 1 < b->nops; k++) {\n            op *o = &b->ops[k];\n            const bn_item *it = &x->ds->items[o->item];\n            int rc = BN_OK;' \
    "extract_basic"
mutation "trainer: binary head's bias dropped" common/train.c \
    'double z = train_dot(x, t->v, t->dim) + t->c[0];' 'double z = train_dot(x, t->v, t->dim);' \
    "train classify_cv"
mutation "trainer: first row of every block after the first skipped" common/train.c \
    'for (long i = from; i < to; i++) {' 'for (long i = from + (bl > 0 && from == 0); i < to; i++) {' \
    "train classify_cv"
# (Dealing the folds from the second row, (i + 1) % K, is no bug: it renames
# the folds, and the mean over them is the same. Tried, and not caught.)
mutation "cross-validation: each held-out fold scored without its last row" common/trainjob.c \
    'predict_metrics(&h, j->tr.x + (size_t)a * j->dim, j->ytr + a, b - a, &m, err);' \
    'predict_metrics(&h, j->tr.x + (size_t)a * j->dim, j->ytr + a, b - a - 1, &m, err);' \
    "classify_cv"
mutation ".npy reader: rows read 4 bytes late" common/npy.c \
    'fseeko(npy->f, (off_t)(npy->data_offset + start * npy->dim * 4), SEEK_SET)' \
    'fseeko(npy->f, (off_t)(npy->data_offset + 4 + start * npy->dim * 4), SEEK_SET)' \
    "npy fuzz_replay_npy"
mutation "vec_knn: ties in reverse path order" common/vec_knn.c \
    'return strcmp(a->path, b->path) > 0;' 'return strcmp(a->path, b->path) < 0;' \
    "vec fuzz_replay_vec"

# Every test named above must pass on the unmutated copy.
all=$(printf '%s\n' "${tests[@]}" | tr ' ' '\n' | sort -u | tr '\n' ' ')
# shellcheck disable=SC2086
bad=$(failed $all)
if [ -n "$bad" ]; then
    echo "the unmutated copy fails: $bad (fix that first)" >&2
    exit 1
fi
echo "baseline: $all pass"

status=0
for i in "${!names[@]}"; do
    f="$W/${files[$i]}"
    cp "$f" "$f.orig"
    if ! python3 - "$f" "${froms[$i]}" "${tos[$i]}" <<'PY'; then
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"{path}: the line to mutate occurs {text.count(old)} times")
open(path, "w").write(text.replace(old, new))
PY
        echo "STALE   ${names[$i]} (${files[$i]}: update the mutation)"
        status=1
        continue
    fi
    t0=$(date +%s)
    if ! ninja -C "$W/build" >/dev/null 2>&1; then
        echo "STALE   ${names[$i]} (does not compile)"
        status=1
    else
        # shellcheck disable=SC2086
        got=$(failed ${tests[$i]})
        if [ -n "$got" ]; then
            echo "caught  ${names[$i]}  (failed: $got; $(($(date +%s) - t0)) s)"
            why
        else
            echo "MISSED  ${names[$i]}  (passed: ${tests[$i]})"
            status=1
        fi
    fi
    # Restored with a new time stamp: the copy kept the time before the
    # mutation, older than its object file, and ninja would keep the mutant.
    mv "$f.orig" "$f"
    touch "$f"
done
ninja -C "$W/build" >/dev/null
exit $status
