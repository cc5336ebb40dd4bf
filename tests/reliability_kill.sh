# Crash safety (issue 6): SIGKILL bottleneck-extract at random moments, at
# least 20 times over one dataset, resuming each time. After every kill the
# database passes PRAGMA integrity_check and holds no partial row; at the end
# it equals an uninterrupted run's: same images, same vectors, no duplicates.
# (tests/extract_kill.sh kills at chosen points; this one at random ones,
# including start-up, migration and feature-set creation.)
# The number of kills must not depend on the machine's speed: a run that
# ends before its kill narrows the window later start-up kills are drawn
# from, and a database that got complete is checked and started anew, so
# that the runs after it have work to be killed in.
. "$(dirname "$0")/lib.sh"

KILLS=${BN_KILLS:-20}
make_dataset "$T/ds" 12 # 48 photos
n_images=48
opts="--weights $WEIGHTS --size 32 --batch 2 --quiet"
now_ms() { date +%s%3N; }
rand() { od -An -N2 -tu2 /dev/urandom | tr -d ' '; } # 0..65535

# The uninterrupted run, timed: start-up (a run with nothing to do) and the
# cost of one image set the window the kills are drawn from.
t0=$(now_ms)
"$EXTRACT" $opts --db "$T/full.db" "$T/ds"
check_eq "uninterrupted run" "$?" 0
t1=$(now_ms)
"$EXTRACT" $opts --db "$T/full.db" "$T/ds"
t2=$(now_ms)
startup=$((t2 - t1))
per_image=$(((t1 - t0 - startup) / n_images))
[ "$per_image" -gt 0 ] || per_image=1
# Every other kill anywhere in start-up (weights, schema, feature set), the
# others within 8 images after the run's first commit.
echo "start-up ${startup} ms, ${per_image} ms/image: kills at 0..${startup} ms, or 0..$((8 * per_image)) ms after a run's first commit"

DB="$T/killed.db"
dump() {
    q "$1" "SELECT path, label, ifnull(split, '-'), sha256, width, height, bytes, hex(vector)
            FROM images JOIN vectors USING (sha256) ORDER BY path"
}
full=$(dump "$T/full.db")
window=$startup
[ "$window" -gt 0 ] || window=1
dim=$(q "$T/full.db" 'SELECT dim FROM featuresets')
partial_rows() { # rows a torn batch could leave: images without vector, bad blobs
    q "$DB" "SELECT (SELECT count(*) FROM images WHERE sha256 NOT IN (SELECT sha256 FROM vectors))
                  + (SELECT count(*) FROM vectors WHERE length(vector) != 4 * $dim)
                  + (SELECT count(*) - count(DISTINCT path) FROM images)
                  + (SELECT count(*) FROM failures)"
}
kills=0 midrun=0 attempts=0 delays="" completed=0
while [ "$kills" -lt "$KILLS" ] && [ "$attempts" -lt $((KILLS * 4)) ]; do
    attempts=$((attempts + 1))
    before=$(q "$DB" 'SELECT count(*) FROM vectors' 2>/dev/null || echo 0)
    t_start=$(now_ms)
    "$EXTRACT" $opts --db "$DB" "$T/ds" &
    pid=$!
    if [ $((attempts % 2)) = 1 ]; then
        delay=$(($(rand) % window))
        at="${delay} ms"
    else
        # Wait for this run's first commit, then a random part of the
        # next 8 images.
        while kill -0 "$pid" 2>/dev/null &&
            [ "$(q "$DB" 'SELECT count(*) FROM vectors' 2>/dev/null || echo 0)" = "${before:-0}" ]; do
            sleep 0.02
        done
        delay=$(($(rand) % (8 * per_image)))
        at="${delay} ms after its first commit"
    fi
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    if kill -9 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null
        kills=$((kills + 1))
        delays="$delays $delay"
    else
        # It ended first: start-up takes at most this long now.
        wait "$pid" 2>/dev/null
        took=$(($(now_ms) - t_start))
        [ "$took" -ge 1 ] && [ "$took" -lt "$window" ] && window=$took
    fi
    [ -e "$DB" ] || continue # killed before the database was created
    check_eq "integrity after kill $kills (at $at)" "$(q "$DB" 'PRAGMA integrity_check')" ok
    # The schema is applied in one transaction: all of it, or none.
    version=$(q "$DB" 'PRAGMA user_version')
    tables=$(q "$DB" "SELECT count(*) FROM sqlite_schema WHERE type = 'table'")
    if [ "$version" = 0 ]; then
        check_eq "no half-made schema after kill $kills" "$tables" 0
        continue
    fi
    check_eq "no partial rows after kill $kills" "$(partial_rows)" 0
    after=$(q "$DB" 'SELECT count(*) FROM vectors' 2>/dev/null || echo 0)
    [ "${after:-0}" -gt "${before:-0}" ] && midrun=$((midrun + 1))
    if [ "${after:-0}" = "$n_images" ] && [ "$kills" -lt "$KILLS" ]; then
        # Complete: it must equal the uninterrupted run; then start anew.
        completed=$((completed + 1))
        check "database completed through kills ($completed) equals the uninterrupted one" \
            [ "$(dump "$DB")" = "$full" ]
        rm -f "$DB" "$DB-wal" "$DB-shm"
    fi
done
echo "kill delays (ms, alternately from the start and after the first commit):$delays"
echo "kills survived: $kills of $attempts runs; $midrun runs stored batches before being killed; start-up window at the end ${window} ms; databases completed and started anew: $completed"
check "at least $KILLS kills" [ "$kills" -ge "$KILLS" ]
check "some kills landed mid-run, after batches were committed" [ "$midrun" -ge 2 ]

out=$("$EXTRACT" $opts --json --db "$DB" "$T/ds")
check_eq "resumed run exit" "$?" 0
check "resumed database equals the uninterrupted one" [ "$(dump "$DB")" = "$full" ]
check_eq "image count" "$(q "$DB" 'SELECT count(*) FROM images')" "$n_images"
check_eq "vector count" "$(q "$DB" 'SELECT count(*) FROM vectors')" "$n_images"
check_eq "one feature set" "$(q "$DB" 'SELECT count(*) FROM featuresets')" 1
check_eq "schema version" "$(q "$DB" 'PRAGMA user_version')" "$(q "$T/full.db" 'PRAGMA user_version')"
check_eq "final integrity" "$(q "$DB" 'PRAGMA integrity_check')" ok
check_eq "foreign keys" "$(q "$DB" 'PRAGMA foreign_key_check')" ""
finish
