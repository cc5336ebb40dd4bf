# A killed extract resumes: SIGKILL mid-run, run again, and the database
# equals an uninterrupted run's (same images, same vectors, no duplicates,
# no partial rows, integrity intact). Vectors are compared byte for byte:
# the uninterrupted run uses the default batch (8) and one thread, the
# killed and resumed ones --batch 5 (partial batches everywhere) and two
# threads, so every vector is computed in another batch than its twin.
. "$(dirname "$0")/lib.sh"

make_dataset "$T/ds" 6  # 24 photos
opts="--weights $WEIGHTS --size 64 --batch 5 --threads 2 --quiet"

# The uninterrupted run.
"$EXTRACT" --weights "$WEIGHTS" --size 64 --threads 1 --quiet --db "$T/full.db" "$T/ds"
check_eq "uninterrupted run" "$?" 0

# Kill the second run as soon as a few batches are committed, up to 3 times.
kills=0
for attempt in 1 2 3; do
    "$EXTRACT" $opts --db "$T/killed.db" "$T/ds" &
    pid=$!
    target=$((attempt * 4))
    for _ in $(seq 1 600); do
        n=$(q "$T/killed.db" 'SELECT count(*) FROM vectors' 2>/dev/null || echo 0)
        [ "${n:-0}" -ge "$target" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null
    check_eq "integrity after kill $attempt" "$(q "$T/killed.db" 'PRAGMA integrity_check')" ok
done
check "at least one run was killed mid-way" [ "$kills" -ge 1 ]
partial=$(q "$T/killed.db" 'SELECT count(*) FROM vectors')
check "killed runs stored part of the work" [ "$partial" -ge 1 ]

out=$("$EXTRACT" $opts --json --db "$T/killed.db" "$T/ds")
check_eq "resumed run exit" "$?" 0
check_match "resume skipped stored images" "$out" "\"skipped\":$partial,"

dump() {
    q "$1" "SELECT path, label, ifnull(split, '-'), sha256, width, height, hex(vector) FROM images JOIN vectors USING (sha256) ORDER BY path"
}
check "resumed database equals the uninterrupted one" [ "$(dump "$T/killed.db")" = "$(dump "$T/full.db")" ]
check_eq "no duplicate images" "$(q "$T/killed.db" 'SELECT count(*) - count(DISTINCT path) FROM images')" 0
check_eq "every image has its vector" "$(q "$T/killed.db" 'SELECT count(*) FROM images WHERE sha256 NOT IN (SELECT sha256 FROM vectors)')" 0
check_eq "image count" "$(q "$T/killed.db" 'SELECT count(*) FROM images')" 24
check_eq "final integrity" "$(q "$T/killed.db" 'PRAGMA integrity_check')" ok
echo "kills survived: $kills"
finish
