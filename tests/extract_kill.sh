# A killed extract resumes: SIGKILL mid-run, run again, and the database
# equals an uninterrupted run's (same images, same vectors, no duplicates,
# no partial rows, integrity intact). Vectors are compared byte for byte:
# the uninterrupted run uses the default batch (8) and one thread, the
# killed and resumed ones --batch 5 (partial batches everywhere) and two
# threads, so every vector is computed in another batch than its twin.
# SIGINT and SIGTERM stop a run after the batch in hand, exit 130 / 143.
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

# Asked to stop (Ctrl-C's SIGINT, or SIGTERM as kill and batch systems send):
# the batch in hand is committed, one line says so, exit 128 + the signal;
# the same command then resumes to an uninterrupted run's database. At size
# 160, so that the run is still going when the signal comes (about 0.1 s
# after the first commit; the rest takes 0.5 s and more). SIGINT goes
# through python3: a background job of this shell starts with SIGINT
# ignored, and extract leaves it so.
stop_opts="--weights $WEIGHTS --size 160 --batch 5 --threads 2 --quiet"
"$EXTRACT" --weights "$WEIGHTS" --size 160 --threads 1 --quiet --db "$T/full160.db" "$T/ds"
check_eq "uninterrupted run at 160" "$?" 0
stop_run() { # stop_run SIGNAL N: extract into stop.db, signalled once it holds N vectors
    python3 - "$1" "$2" "$EXTRACT" $stop_opts --db "$T/stop.db" "$T/ds" 2>"$T/stop.err" <<'PY'
import signal, sqlite3, subprocess, sys, time
sig, target = getattr(signal, sys.argv[1]), int(sys.argv[2])
p = subprocess.Popen(sys.argv[3:], stdout=subprocess.DEVNULL, stderr=sys.stderr)
db = sys.argv[sys.argv.index("--db") + 1]
for _ in range(6000):
    try:
        if sqlite3.connect(db).execute("SELECT count(*) FROM vectors").fetchone()[0] >= target:
            break
    except sqlite3.Error:
        pass
    if p.poll() is not None:
        break
    time.sleep(0.01)
p.send_signal(sig)
sys.exit(p.wait())
PY
}
for sig in SIGTERM SIGINT; do
    before=$(q "$T/stop.db" 'SELECT count(*) FROM images' 2>/dev/null || echo 0)
    stop_run $sig $((before + 1))
    rc=$?
    after=$(q "$T/stop.db" 'SELECT count(*) FROM images')
    check_eq "$sig: exit 128 + signal" "$rc" $([ $sig = SIGINT ] && echo 130 || echo 143)
    check_match "$sig: one line says so" "$(cat "$T/stop.err")" "^bottleneck-extract: interrupted by $sig: the $((after - before)) images this run stored are kept; the same command resumes$"
    check "$sig: stopped part of the way ($before -> $after of 24)" [ "$after" -gt "$before" -a "$after" -lt 24 ]
    check_eq "$sig: integrity" "$(q "$T/stop.db" 'PRAGMA integrity_check')" ok
    check_eq "$sig: every stored image has its vector" "$(q "$T/stop.db" 'SELECT count(*) FROM images WHERE sha256 NOT IN (SELECT sha256 FROM vectors)')" 0
done
# Without --quiet the summary says where it stopped, and claims no sync
# counts (added, removed: those come after a whole run).
before=$(q "$T/stop.db" 'SELECT count(*) FROM images')
stop_opts="${stop_opts% --quiet}" stop_run SIGTERM $((before + 1))
check_match "summary of a stopped run" "$(tail -n 1 "$T/stop.err")" "stop\.db: dataset 'ds' \(.*\): stopped after [0-9]+ of 24 images: $before skipped \(unchanged\), 0 failed; [0-9]+ computed"
"$EXTRACT" $stop_opts --db "$T/stop.db" "$T/ds"
check_eq "resumed after the signals: exit" "$?" 0
check "resumed after the signals: equals the uninterrupted run" [ "$(dump "$T/stop.db")" = "$(dump "$T/full160.db")" ]
finish
