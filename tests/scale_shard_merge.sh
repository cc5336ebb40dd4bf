# Sharded extraction and merge (docs/SCALING.md): --shard K/N takes exactly
# the images whose path hashes to K (checked against an independent SHA-256
# in Python), shards are disjoint and cover the dataset, and merging them
# gives the database of one run (same images, labels, splits, bitwise-equal
# vectors). Merge is idempotent, refuses conflicts naming both files, checks
# --expect N, and a merge stopped by a full disk (ulimit -f) keeps what it
# had and finishes when run again.
. "$(dirname "$0")/lib.sh"

make_dataset "$T/ds" 3 # 12 photos
run() { "$EXTRACT" --weights "$WEIGHTS" --size 64 --batch 3 --quiet "$@"; }
merge() { "$EXTRACT" merge --quiet "$@"; }
# Everything a single run and a merge must agree on, feature sets by name.
dump() {
    q "$1" "SELECT d.name, d.kind, d.root, i.path, i.label, coalesce(i.split, ''), i.sha256,
                   i.width, i.height, i.bytes,
                   f.name, f.weights_sha256, hex(v.vector), v.engine, v.engine_version
            FROM images i JOIN datasets d ON d.id = i.dataset
            JOIN vectors v USING (sha256) JOIN featuresets f ON f.id = v.featureset
            ORDER BY i.path, f.name"
}
counts() { q "$1" "SELECT (SELECT count(*) FROM images) || ' ' || (SELECT count(*) FROM vectors)
                   || ' ' || (SELECT count(*) FROM featuresets) || ' ' || (SELECT count(*) FROM failures)"; }

run --db "$T/one.db" "$T/ds"
check_eq "single run" "$?" 0
N=3
for k in 1 2 3; do
    run --shard $k/$N --db "$T/s$k.db" "$T/ds"
    check_eq "shard $k/$N exit" "$?" 0
done
# Each shard holds exactly the paths whose SHA-256 (first 8 bytes, mod N) says so.
for k in 1 2 3; do
    got=$(q "$T/s$k.db" 'SELECT path FROM images ORDER BY path')
    want=$(q "$T/one.db" 'SELECT path FROM images ORDER BY path' | python3 -c "
import hashlib, sys
for p in sys.stdin.read().split():
    if int.from_bytes(hashlib.sha256(p.encode()).digest()[:8], 'big') % $N + 1 == $k: print(p)")
    check_eq "shard $k holds its hash's paths" "$got" "$want"
done
all=$(for k in 1 2 3; do q "$T/s$k.db" 'SELECT path FROM images'; done | sort)
check_eq "shards cover the dataset" "$(echo "$all" | sort -u | wc -l)" 12
check_eq "shards are disjoint" "$(echo "$all" | wc -l)" 12
# The split does not depend on where the dataset lives or the listing order.
mkdir -p "$T/other"
cp -r "$T/ds/validation" "$T/other/"
cp -r "$T/ds/train" "$T/other/"
run --shard 2/$N --db "$T/o2.db" "$T/other"
check_eq "same shard from a copy" "$(q "$T/o2.db" 'SELECT path FROM images ORDER BY path')" \
    "$(q "$T/s2.db" 'SELECT path FROM images ORDER BY path')"

# A shard run on a database that holds the whole set removes nothing.
cp "$T/one.db" "$T/whole.db"
run --shard 1/$N --db "$T/whole.db" "$T/ds"
check_eq "shard run on a whole database keeps every image" "$(q "$T/whole.db" 'SELECT count(*) FROM images')" 12

# Merge = one run.
merge --db "$T/m.db" --expect $N "$T/s1.db" "$T/s2.db" "$T/s3.db"
check_eq "merge exit" "$?" 0
check_eq "merge equals one run" "$(dump "$T/m.db" | md5sum)" "$(dump "$T/one.db" | md5sum)"
check_eq "merged counts" "$(counts "$T/m.db")" "$(counts "$T/one.db")"
check_eq "merge packs the merged vectors for vec_knn" "$(q "$T/m.db" "SELECT sum(count) || ' ' || max(total) FROM vector_chunks")" "$(q "$T/m.db" "SELECT count(*) || ' ' || count(*) FROM vectors")"
fsdef="SELECT name, source, model, weights_sha256, layer, pooling, size, resize, preprocess, dim,
       dtype, model_format, model_path FROM featuresets ORDER BY name"
check_eq "merged feature set definitions" "$(q "$T/m.db" "$fsdef")" "$(q "$T/one.db" "$fsdef")"
check_eq "merged datasets: the run's name, kind and root" "$(q "$T/m.db" 'SELECT name, kind, root FROM datasets ORDER BY name')" "$(q "$T/one.db" 'SELECT name, kind, root FROM datasets ORDER BY name')"
# Idempotent: merging again (and an input twice) changes nothing.
before=$(dump "$T/m.db"; counts "$T/m.db")
merge --db "$T/m.db" "$T/s3.db" "$T/s1.db" "$T/s2.db" "$T/s1.db"
check_eq "second merge exit" "$?" 0
check_eq "second merge changes nothing" "$(dump "$T/m.db"; counts "$T/m.db")" "$before"

# --expect: a missing shard and a duplicated one are named, exit 3, merge kept.
# (Shard 3 holds images: a missing shard is told from an empty one by them.)
check "shard 3 not empty" [ "$(q "$T/s3.db" 'SELECT count(*) FROM images')" -gt 0 ]
merge --db "$T/x.db" --expect $N "$T/s1.db" "$T/s2.db" 2>"$T/err"
check_eq "missing shard exit" "$?" 3
check_match "missing shard named" "$(cat "$T/err")" "shard 3/3: no input holds it"
merge --db "$T/y.db" --expect $N "$T/s1.db" "$T/s1.db" "$T/s2.db" "$T/s3.db" 2>"$T/err"
check_eq "duplicated shard exit" "$?" 3
check_match "duplicated shard named" "$(cat "$T/err")" "shard 1/3: in both .*s1.db and .*s1.db"
merge --db "$T/z.db" --expect 2 "$T/s1.db" "$T/s2.db" "$T/s3.db" 2>"$T/err"
check_eq "wrong N exit" "$?" 3
check_match "wrong N: several shards in one file" "$(cat "$T/err")" "holds images of several shards of 2"
check_match "wrong N: said once, no shard check" "$(cat "$T/err")" "--expect 2: [1-3] of the 3 inputs are not one shard of 2 .*: no shard check"
check "wrong N: no shard called missing (their images are there)" sh -c "! grep -q 'no input holds it' \"\$1\"" _ "$T/err"
check_eq "wrong N: every input merged all the same" "$(q "$T/z.db" 'SELECT count(*) FROM images')" "$(q "$T/m.db" 'SELECT count(*) FROM images')"
out=$(merge --db "$T/z2.db" --expect 2 --json "$T/s1.db" "$T/s2.db" "$T/s3.db" 2>/dev/null)
check_match "wrong N: --json counts them, not ok" "$out" '"merged":3,.*"inputs_of_several_shards":[1-3],"ok":false'

# Conflicts: an image with another label, a feature set name with another
# definition: exit 1, both files named, the output unchanged.
cp "$T/s1.db" "$T/bad_label.db"
p=$(q "$T/bad_label.db" "UPDATE images SET label = 'horse' WHERE rowid = (SELECT min(rowid) FROM images) RETURNING path")
merge --db "$T/m.db" "$T/bad_label.db" 2>"$T/err"
check_eq "label conflict exit" "$?" 1
check_match "label conflict message" "$(cat "$T/err")" "bad_label.db: image $p has label 'horse', but '(cat|dog)' in .*/m.db"
cp "$T/s1.db" "$T/bad_fs.db"
q "$T/bad_fs.db" "UPDATE featuresets SET preprocess = 'torch'"
merge --db "$T/m.db" "$T/bad_fs.db" 2>"$T/err"
check_eq "definition conflict exit" "$?" 1
check_match "definition conflict message" "$(cat "$T/err")" "bad_fs.db: feature set 'vgg16/[^']*' has another definition in .*/m.db"
# A vector with other bytes for the same content (another CPU's engine):
# counted, the output keeps its own.
cp "$T/s1.db" "$T/other_engine.db"
q "$T/other_engine.db" "UPDATE vectors SET vector = zeroblob(length(vector)) WHERE sha256 = (SELECT min(sha256) FROM vectors)"
out=$("$EXTRACT" merge --quiet --json --db "$T/m.db" "$T/other_engine.db")
check_eq "differing vector exit" "$?" 0
check_match "differing vector counted" "$out" '"differing":1,'
check_eq "output unchanged by refused inputs" "$(dump "$T/m.db"; counts "$T/m.db")" "$before"
# Another schema version: refused with the versions.
cp "$T/s1.db" "$T/old.db"
q "$T/old.db" 'PRAGMA user_version = 2'
merge --db "$T/m.db" "$T/old.db" 2>"$T/err"
check_eq "old schema exit" "$?" 1
check_match "old schema message" "$(cat "$T/err")" "old.db: schema version 2, this build needs"
merge --db "$T/m.db" "$T/no_such.db" 2>"$T/err"
check_eq "missing input exit" "$?" 1
check_match "missing input message" "$(cat "$T/err")" "no_such.db: no such database"
merge --db "$T/m.db" "$T/m.db" 2>/dev/null
check_eq "output as input refused" "$?" 2

# A full disk (file size limit) during a merge: error, earlier inputs kept,
# nothing half-copied; the same command then finishes the job.
# The limit (dash counts 512-byte blocks) is 32 KiB: the database file is
# larger, but its WAL, where a merge writes, cannot grow past that.
merge --db "$T/full.db" "$T/s1.db"
(ulimit -f 64 && exec "$EXTRACT" merge --quiet --db "$T/full.db" \
    "$T/s2.db" "$T/s3.db") 2>"$T/err"
check_eq "full disk exit" "$?" 1
check_match "full disk message" "$(cat "$T/err")" "full.db"
check_eq "full disk: whole inputs only" "$(q "$T/full.db" 'PRAGMA integrity_check')" ok
n=$(q "$T/full.db" 'SELECT count(*) FROM images')
check "full disk: shard 1 kept" [ "$n" -ge "$(q "$T/s1.db" 'SELECT count(*) FROM images')" ]
merge --db "$T/full.db" "$T/s1.db" "$T/s2.db" "$T/s3.db"
check_eq "re-run after full disk" "$(dump "$T/full.db" | md5sum)" "$(dump "$T/one.db" | md5sum)"
# Two datasets with the same relative paths, extracted into two databases,
# stay apart when merged: both names, both sets of rows.
make_dataset "$T/dsA" 1
cp -r "$T/dsA" "$T/dsB"
run --db "$T/a.db" "$T/dsA"
run --db "$T/b.db" "$T/dsB"
merge --db "$T/ab.db" "$T/a.db" "$T/b.db"
check_eq "two datasets merged: exit" "$?" 0
check_eq "two datasets merged: both kept" "$(q "$T/ab.db" 'SELECT group_concat(name || ":" || n) FROM (SELECT d.name, count(*) n FROM images i JOIN datasets d ON d.id = i.dataset GROUP BY d.name ORDER BY d.name)')" "dsA:4,dsB:4"
finish
