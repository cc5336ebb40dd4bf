# Crash safety of the other writers (issue 6): SIGKILL `bottleneck-extract
# import`, `bottleneck-classify train` (at least 20 times) and `classify
# predict` at random moments. Each stores in one transaction, so after every
# kill the database passes integrity_check and holds all of a run or none of
# it; a run afterwards gives exactly what an uninterrupted run gives.
. "$(dirname "$0")/lib.sh"

KILLS=${BN_KILLS:-20}
G="$SHARED/features/googlenet/catsdogs"
[ -f "$G/embeddings.npy" ] || { echo "no GoogLeNet embeddings in $SHARED"; exit 77; }
now_ms() { date +%s%3N; }
rand() { od -An -N2 -tu2 /dev/urandom | tr -d ' '; }
total_kills=0

# kill_loop N WINDOW_MS CHECK PROGRAM ARGS...: start the program, SIGKILL it
# after a random delay in 0..WINDOW_MS, run CHECK; until N runs were killed
# while running. PROGRAM must be the program itself, not a shell function: $!
# of a backgrounded function is a subshell, and killing it would leave the
# program running. A run counts as killed only when its exit status says
# SIGKILL ended it (137): kill(1) also succeeds on a program that already
# finished but was not yet waited for, which is no test of crash safety.
# A run that ended before its kill narrows the window to its own time, so
# that a window timed while the machine was busier (CI runs tests side by
# side) does not leave most kills after the end.
kill_loop() {
    local want=$1 window=$2 check_fn=$3 killed=0 attempts=0 delay status t0 took
    shift 3
    [ "$window" -gt 0 ] || window=1
    while [ "$killed" -lt "$want" ] && [ "$attempts" -lt $((want * 4)) ]; do
        attempts=$((attempts + 1))
        delay=$(($(rand) % window))
        t0=$(now_ms)
        "$@" >/dev/null 2>&1 &
        pid=$!
        sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        status=$?
        if [ "$status" = 137 ]; then
            killed=$((killed + 1))
        else
            took=$(($(now_ms) - t0))
            [ "$took" -ge 1 ] && [ "$took" -lt "$window" ] && window=$took
        fi
        "$check_fn" "$killed"
    done
    total_kills=$((total_kills + killed))
    kills_done=$killed
    window_done=$window
}
timed() { # timed CMD...: run it, set ms to its wall time
    local t0
    t0=$(now_ms)
    "$@" >/dev/null
    rc=$?
    ms=$(($(now_ms) - t0))
    [ "$ms" -gt 0 ] || ms=1
}

# ---- import: 3000 x 1024 vectors in one transaction -----------------------
import() { "$EXTRACT" import --db "$1" --name googlenet --npy "$G/embeddings.npy" --index "$G/index.tsv" --quiet; }
timed import "$T/ref.db"
check_eq "reference import" "$rc" 0
DB="$T/k.db"
import_all_or_nothing() {
    [ -e "$DB" ] || return 0
    check_eq "import: integrity after kill $1" "$(q "$DB" 'PRAGMA integrity_check')" ok
    local v
    v=$(q "$DB" 'PRAGMA user_version')
    [ "$v" = 0 ] && return 0
    check_eq "import: all or nothing after kill $1" \
        "$(q "$DB" "SELECT (SELECT count(*) FROM vectors) || ' ' || (SELECT count(*) FROM images)")" \
        "$(if [ "$(q "$DB" 'SELECT count(*) FROM featuresets')" = 1 ]; then echo '3000 3000'; else echo '0 0'; fi)"
}
kill_loop 5 $((ms + ms / 2)) import_all_or_nothing "$EXTRACT" import --db "$DB" --name googlenet \
    --npy "$G/embeddings.npy" --index "$G/index.tsv" --quiet
echo "import: $kills_done kills in a window of $((ms + ms / 2)) ms, $window_done at the end"
check "import: 5 runs killed while running" [ "$kills_done" -ge 5 ]
import "$DB"
check_eq "import after the kills" "$?" 0
vdump() { q "$1" 'SELECT i.path, i.label, ifnull(i.split, "-"), i.sha256, hex(v.vector) FROM images i
    JOIN vectors v ON v.sha256 = i.sha256 ORDER BY i.path'; }
check_eq "import: every vector there" "$(vdump "$DB" | wc -l)" 3000
check "import: same as uninterrupted" [ "$(vdump "$DB")" = "$(vdump "$T/ref.db")" ]

# ---- classify train: a sweep of three C, chosen on validation -------------
train() { "$CLASSIFY" --db "$1" --C 0.01,0.1,1 --quiet; }
timed train "$T/ref.db"
check_eq "reference training" "$rc" 0
train_ms=$ms
# What a sweep stores, ids left out: every run's settings, results, head,
# metrics and confusion counts. Rounded to 6 significant digits (OpenBLAS may
# sum in another order from one process to the next).
sweep_dump() { # sweep_dump DB SWEEP
    q "$1" "SELECT r.role, r.train_splits, r.solver, r.C, r.class_weight, r.standardize, r.params,
                   r.classes, r.n_train, r.dim, r.iterations, r.converged, printf('%.6g', r.objective),
                   r.chosen, (s.chosen = r.id), (s.final = r.id),
                   h.outputs, length(h.weights), length(h.bias),
                   (SELECT group_concat(split || ':' || metric || ':' || ifnull(class, '') || '=' || printf('%.6g', value), ' ')
                      FROM (SELECT * FROM run_metrics m WHERE m.run = r.id ORDER BY split, metric, class)),
                   (SELECT group_concat(split || ':' || actual || '>' || predicted || '=' || count, ' ')
                      FROM (SELECT * FROM run_confusion c WHERE c.run = r.id ORDER BY split, actual, predicted))
            FROM runs r JOIN sweeps s ON s.id = r.sweep LEFT JOIN heads h ON h.run = r.id
            WHERE r.sweep = $2 ORDER BY r.id"
}
ref_sweep=$(sweep_dump "$T/ref.db" 1)
ref_runs=$(q "$T/ref.db" 'SELECT count(*) FROM runs')
sweeps_whole() {
    check_eq "train: integrity after kill $1" "$(q "$DB" 'PRAGMA integrity_check')" ok
    check_eq "train: foreign keys after kill $1" "$(q "$DB" 'PRAGMA foreign_key_check')" ""
    local s bad=0
    for s in $(q "$DB" 'SELECT id FROM sweeps'); do
        [ "$(sweep_dump "$DB" "$s")" = "$ref_sweep" ] || bad=$((bad + 1))
    done
    check_eq "train: every stored sweep is whole after kill $1" "$bad" 0
    check_eq "train: no run outside a sweep after kill $1" \
        "$(q "$DB" 'SELECT count(*) FROM runs WHERE sweep IS NULL OR sweep NOT IN (SELECT id FROM sweeps)')" 0
}
kill_loop "$KILLS" $((train_ms * 3 / 4)) sweeps_whole "$CLASSIFY" --db "$DB" --C 0.01,0.1,1 --quiet
echo "train: $kills_done kills in a window of $((train_ms * 3 / 4)) ms, $window_done at the end; $(q "$DB" 'SELECT count(*) FROM sweeps') sweeps completed between kills"
check "train: at least $KILLS kills" [ "$kills_done" -ge "$KILLS" ]
train "$DB"
check_eq "train after the kills" "$?" 0
last=$(q "$DB" 'SELECT max(id) FROM sweeps')
check "train: the sweep after the kills equals the uninterrupted one" [ "$(sweep_dump "$DB" "$last")" = "$ref_sweep" ]
check_eq "train: runs of the last sweep" "$(q "$DB" "SELECT count(*) FROM runs WHERE sweep = $last")" "$ref_runs"

# ---- classify predict: the validation split's predictions -----------------
run=$(q "$DB" "SELECT final FROM sweeps WHERE id = $last")
ref_run=$(q "$T/ref.db" 'SELECT final FROM sweeps WHERE id = 1')
predict() { "$CLASSIFY" predict --db "$1" --run "$2" --split validation --quiet; }
timed predict "$T/ref.db" "$ref_run"
check_eq "reference predict" "$rc" 0
# The window from a second, warm run: a predict of stored rows takes tens of
# milliseconds, and the first run's cold start would put most kills after
# its end.
timed predict "$T/ref.db" "$ref_run"
pdump() { q "$1" "SELECT path, label, predicted, printf('%.6g', probability) FROM run_predictions WHERE run = $2 ORDER BY path"; }
prediction_count() { q "$DB" "SELECT count(*) FROM predictions WHERE run = $run"; }
predict_all_or_nothing() {
    check_eq "predict: integrity after kill $1" "$(q "$DB" 'PRAGMA integrity_check')" ok
    local n
    n=$(prediction_count)
    check "predict: all or nothing after kill $1 ($n rows)" [ "$n" = 0 -o "$n" = 1000 ]
}
kill_loop 5 "$ms" predict_all_or_nothing "$CLASSIFY" predict --db "$DB" --run "$run" \
    --split validation --quiet
echo "predict: $kills_done kills in a window of $ms ms, $window_done at the end"
check "predict: 5 runs killed while running" [ "$kills_done" -ge 5 ]
predict "$DB" "$run"
check_eq "predict after the kills" "$?" 0
check_eq "predict: 1000 predictions" "$(prediction_count)" 1000
check "predict: same as uninterrupted" [ "$(pdump "$DB" "$run")" = "$(pdump "$T/ref.db" "$ref_run")" ]

echo "kills survived: $total_kills (import, train, predict)"
check_eq "final integrity" "$(q "$DB" 'PRAGMA integrity_check')" ok
finish
