# The GNU parallel recipe (scripts/parallel/extract.sh, README "Many
# machines"), run on localhost without ssh: 4 shards then the merge, which
# must equal one run bit for bit; running it again changes nothing.
# Skipped (77) without GNU parallel (.ci/packages.txt).
. "$(dirname "$0")/lib.sh"
command -v parallel >/dev/null 2>&1 || { echo "no GNU parallel: skipped"; exit 77; }

make_dataset "$T/ds" 3 # 12 photos
"$EXTRACT" --weights "$WEIGHTS" --size 64 --quiet --db "$T/one.db" "$T/ds"
dump() {
    q "$1" "SELECT i.path, i.label, coalesce(i.split, ''), i.sha256, f.name, hex(v.vector), v.engine
            FROM images i JOIN vectors v USING (sha256) JOIN featuresets f ON f.id = v.featureset
            ORDER BY i.path, f.name"
}
recipe() {
    BOTTLENECK_EXTRACT="$EXTRACT" bash "$BN_SOURCE_DIR/scripts/parallel/extract.sh" 4 "$T/ds" \
        "$T/out dir" "$T/merged.db" --weights "$WEIGHTS" --size 64 2>"$T/err"
}
recipe
check_eq "recipe exit" "$?" 0
check_eq "four shard databases" "$(ls "$T/out dir" | grep -c '^shard-[1234]-of-4.db$')" 4
check_eq "merged = one run" "$(dump "$T/merged.db" | md5sum)" "$(dump "$T/one.db" | md5sum)"
recipe
check_eq "again: exit" "$?" 0
check_eq "again: unchanged" "$(dump "$T/merged.db" | md5sum)" "$(dump "$T/one.db" | md5sum)"
# A shard that cannot run stops the recipe before the merge.
rm -f "$T/merged.db"
BOTTLENECK_EXTRACT="$EXTRACT" bash "$BN_SOURCE_DIR/scripts/parallel/extract.sh" 2 "$T/nosuch" \
    "$T/out2" "$T/merged.db" --weights "$WEIGHTS" 2>"$T/err"
check "failed shard: non-zero exit" [ "$?" -ne 0 ]
check "failed shard: no merge" [ ! -e "$T/merged.db" ]
finish
