# A locked database (issue 6): while a sqlite3 shell holds BEGIN EXCLUSIVE,
# extract waits for it (up to its 30 s busy timeout), then gives one clear
# line naming the database, exits 1 and loses nothing stored; once the lock
# is gone a re-run completes the database. (Other storage failures:
# reliability_disk.sh.)
. "$(dirname "$0")/lib.sh"

storage_fixture

# ---- a locked database: a sqlite3 shell holds BEGIN EXCLUSIVE -------------
DB="$T/locked.db"
fresh "$DB"
# hold: a sqlite3 shell takes the write lock and keeps it until release().
# Its commands come through a FIFO, so it holds exactly as long as we say,
# however slow extract is (sanitizer builds).
hold() {
    rm -f "$T/cmd" "$T/locked"
    mkfifo "$T/cmd"
    sqlite3 -batch "$DB" <"$T/cmd" >/dev/null 2>&1 &
    holder=$!
    exec 3>"$T/cmd"
    printf 'BEGIN EXCLUSIVE;\nINSERT INTO failures (path, reason) VALUES ("lock", "held");\n.shell touch %s\n' \
        "$T/locked" >&3
    for _ in $(seq 1 200); do [ -e "$T/locked" ] && break; sleep 0.05; done
}
release() {
    printf 'ROLLBACK;\n.quit\n' >&3
    exec 3>&-
    wait "$holder"
}
# Held briefly: extract waits for the lock, then does its work.
hold
"$EXTRACT" --weights "$WEIGHTS" --size 64 --batch 2 --quiet --dataset ds --db "$DB" "$T/ds" 2>"$T/err" &
pid=$! # extract itself (not a subshell running it), so /proc/$pid/fd is its own
# Once extract has the database open, its first batch is a moment away.
for _ in $(seq 1 600); do
    ls -l "/proc/$pid/fd" 2>/dev/null | grep -q 'locked.db' && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
sleep 2
release
wait "$pid"
rc=$?
check_eq "short lock: extract waited and finished ($(cat "$T/err"))" "$rc" 0
check "short lock: same as the reference" [ "$(dump "$DB")" = "$ref" ]
# Held longer than extract's 30 s busy timeout: one line, exit 1, nothing lost.
fresh "$DB"
hold
run --db "$DB" "$T/ds" 2>"$T/err"
check_eq "long lock: exit" "$?" 1
release
check_match "long lock: message" "$(cat "$T/err")" "locked.db: .*locked"
check "long lock: one line" one_line "$T/err"
echo "long lock message: $(cat "$T/err")"
check "long lock: stored images kept" kept "$DB"
check_eq "long lock: integrity" "$(q "$DB" 'PRAGMA integrity_check')" ok
check_eq "long lock: the holder's row was never committed" "$(q "$DB" "SELECT count(*) FROM failures WHERE path = 'lock'")" 0
run --db "$DB" "$T/ds"
check_eq "long lock: re-run after release" "$?" 0
check "long lock: complete after the re-run" [ "$(dump "$DB")" = "$ref" ]

finish
