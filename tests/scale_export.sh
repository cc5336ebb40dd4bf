# export, the reverse of import: on the real GoogLeNet embeddings of the
# 3,000 shared photos, import(export(x)) == x bitwise (f32 and f16 sets),
# the exported matrix holds the original rows (in path order), --split
# selects, and a failed export leaves no file behind.
. "$(dirname "$0")/lib.sh"

F="$SHARED/features/googlenet/catsdogs"
"$EXTRACT" import --quiet --db "$T/a.db" --name googlenet --npy "$F/embeddings.npy" --index "$F/index.tsv"
check_eq "import" "$?" 0
"$EXTRACT" export --quiet --db "$T/a.db" --features googlenet --npy "$T/x.npy" --index "$T/x.tsv"
check_eq "export exit" "$?" 0
check_eq "index lines" "$(wc -l <"$T/x.tsv")" 3001
check_eq "index header" "$(head -n 1 "$T/x.tsv")" "$(printf 'row\trelpath\tlabel\tsplit\tsha256')"
# Row i of the export is the original row of the same path, bit for bit.
check_eq "rows are the original ones" "$(python3 - "$F/embeddings.npy" "$F/index.tsv" "$T/x.npy" "$T/x.tsv" <<'PY'
import sys
def load(npy, tsv):
    b = open(npy, 'rb').read()
    hl = int.from_bytes(b[8:10], 'little')
    data = b[10 + hl:]
    rows = [l.split('\t') for l in open(tsv).read().splitlines()[1:]]
    dim = len(data) // 4 // len(rows)
    return {r[1]: (r[2], r[3], r[4], data[i * dim * 4:(i + 1) * dim * 4]) for i, r in enumerate(rows)}
a, b = load(sys.argv[1], sys.argv[2]), load(sys.argv[3], sys.argv[4])
paths = [l.split('\t')[1] for l in open(sys.argv[4]).read().splitlines()[1:]]
print('same' if a == b and paths == sorted(paths) else 'differ')
PY
)" same
# Round trip: import(export(x)) stores the same bytes, and exports the same files.
"$EXTRACT" import --quiet --db "$T/b.db" --name googlenet --npy "$T/x.npy" --index "$T/x.tsv"
vecs() { q "$1" "SELECT path, label, split, sha256, hex(vector) FROM embeddings ORDER BY path" | md5sum; }
check_eq "import(export(x)) == x" "$(vecs "$T/b.db")" "$(vecs "$T/a.db")"
# (b.db holds one feature set: --features may be left out, as for classify)
"$EXTRACT" export --quiet --db "$T/b.db" --npy "$T/y.npy" --index "$T/y.tsv"
check "export of the re-import: same .npy" cmp -s "$T/x.npy" "$T/y.npy"
check "export of the re-import: same index" cmp -s "$T/x.tsv" "$T/y.tsv"
# f16 sets: widened to f32 exactly, narrowed back to the same halves.
"$EXTRACT" import --quiet --db "$T/a.db" --name g16 --dtype f16 --npy "$F/embeddings.npy" --index "$F/index.tsv"
"$EXTRACT" export --quiet --db "$T/a.db" --features g16 --npy "$T/h.npy" --index "$T/h.tsv"
"$EXTRACT" import --quiet --db "$T/c.db" --name g16 --dtype f16 --npy "$T/h.npy" --index "$T/h.tsv"
check_eq "f16 round trip" "$(vecs "$T/c.db")" "$(q "$T/a.db" "SELECT path, label, split, sha256, hex(vector) FROM embeddings WHERE featureset = 'g16' ORDER BY path" | md5sum)"
# --split, and --json.
out=$("$EXTRACT" export --quiet --json --db "$T/a.db" --features googlenet --split validation --npy "$T/v.npy" --index "$T/v.tsv")
check_match "split rows" "$out" '"rows":1000,"dim":1024'
check_eq "split column" "$(tail -n +2 "$T/v.tsv" | cut -f4 | sort -u)" validation
# Errors: no file left behind.
"$EXTRACT" export --quiet --db "$T/a.db" --npy "$T/e.npy" --index "$T/e.tsv" 2>"$T/err"
check_eq "two sets, no --features: exit 1" "$?" 1
check_match "two sets, no --features: names them" "$(cat "$T/err")" "has 2 feature sets \('googlenet', 'g16'\): choose one with --features"
check "two sets, no --features: no .npy" [ ! -e "$T/e.npy" ]
check "two sets, no --features: no index" [ ! -e "$T/e.tsv" ]
"$EXTRACT" export --quiet --db "$T/a.db" --features nosuch --npy "$T/e.npy" --index "$T/e.tsv" 2>"$T/err"
check_eq "unknown set exit" "$?" 1
check_match "unknown set message" "$(cat "$T/err")" "nosuch"
"$EXTRACT" export --quiet --db "$T/a.db" --features googlenet --npy "$T/e.npy" --index "$T/nodir/e.tsv" 2>"$T/err"
check_eq "unwritable index exit" "$?" 1
check_match "unwritable index message" "$(cat "$T/err")" "nodir/e.tsv"
check_eq "no file left" "$(ls "$T" | grep -c '^e\.')" 0
"$EXTRACT" export --db "$T/a.db" 2>/dev/null
check_eq "usage exit" "$?" 2
# An output that is the database itself (by a link too) or both outputs one
# file: refused in one line, the database intact.
sum=$(md5sum < "$T/a.db")
ln -s a.db "$T/link.db"
for args in "--npy $T/a.db --index $T/e.tsv" "--npy $T/e.npy --index $T/link.db" "--npy $T/same --index $T/./same"; do
    "$EXTRACT" export --quiet --db "$T/a.db" --features googlenet $args 2>"$T/err"
    check_eq "export $args: exit 1" "$?" 1
    check_eq "export $args: one line" "$(wc -l < "$T/err")" 1
    check_match "export $args: says why" "$(cat "$T/err")" "is the database .*/a\.db itself; choose another file|--npy and --index name the same file"
done
check_eq "the database intact" "$(md5sum < "$T/a.db")" "$sum"
check_eq "no file left" "$(ls "$T" | grep -c -e '^e\.' -e '^same')" 0
finish
