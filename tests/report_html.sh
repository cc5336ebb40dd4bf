# report_html: `bottleneck-classify report` on real vectors (the shared
# GoogLeNet embeddings, imported), rendered by headless Chromium.
#
# The page's numbers must equal what `show --json` prints (cl_num's format);
# the ROC, precision-recall and reliability points, recomputed with
# scikit-learn from the predictions `predict --split` stores, must give the
# stored AUC, sklearn's average precision and calibration_curve; the page must
# be self-contained (no script, no URL, images as data: URIs); Chromium must
# load it without console messages; the screenshot must not be blank and every
# figure must have drawn content (tests/report_check.py). The most confident
# mistake's file is made undecodable and the second one removed: both become
# labelled placeholders, and the report is still written.
#
# The screenshots stay in build/report-sample/ (report.png: the page;
# plots.png: every figure) for a person to look at.
. "$BN_SOURCE_DIR/tests/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import numpy, sklearn, PIL' 2>/dev/null ||
    { echo "needs python3-numpy, python3-sklearn and python3-pil"; exit 77; }
CHROMIUM=$(command -v chromium || command -v chromium-browser) ||
    { echo "needs chromium"; exit 77; }
G="$SHARED/features/googlenet/catsdogs"
[ -f "$G/embeddings.npy" ] || { echo "no GoogLeNet embeddings in $SHARED"; exit 77; }
CHECK="$BN_SOURCE_DIR/tests/report_check.py"
OUT="$BN_BUILD_DIR/report-sample"
mkdir -p "$OUT"

# Chromium runs in its own process group, stopped whatever happens.
CHROME_PID=
stop_chrome() {
    if [ -n "$CHROME_PID" ]; then
        kill -s TERM -- "-$CHROME_PID" 2>/dev/null
        wait "$CHROME_PID" 2>/dev/null
        CHROME_PID=
    fi
}
trap 'stop_chrome; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
shot() { # shot HTML PNG WIDTH HEIGHT: screenshot; console messages in $T/console.txt
    rm -f "$2"
    setsid "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
        --user-data-dir="$T/chrome" --enable-logging=stderr --v=0 \
        --screenshot="$2" --window-size="$3,$4" "file://$1" > "$T/chrome.out" 2> "$T/chrome.err" &
    CHROME_PID=$!
    i=0
    while kill -0 "$CHROME_PID" 2>/dev/null && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
    stop_chrome
    grep 'CONSOLE' "$T/chrome.err" > "$T/console.txt"
    [ -s "$2" ]
}

DB="$T/g.db"
"$EXTRACT" import --db "$DB" --name googlenet --npy "$G/embeddings.npy" --index "$G/index.tsv" --quiet
"$CLASSIFY" --db "$DB" --C 0.001,0.01,0.1,1 --quiet > /dev/null
check "sweep trained" [ $? -eq 0 ]
RUN=$(q "$DB" "SELECT coalesce(final, chosen) FROM sweeps WHERE id = 1")
"$CLASSIFY" predict --db "$DB" --run "$RUN" --split validation --quiet > /dev/null
"$CLASSIFY" predict --db "$DB" --run "$RUN" --split train --quiet > /dev/null
"$CLASSIFY" show "$RUN" --db "$DB" --json > "$T/show.json"

# The images: the shared photos through symlinks, but the most confident
# mistake replaced by garbage and the second one gone.
mkdir -p "$T/img"
ln -s "$SHARED/data/catsdogs/train" "$T/img/train"
for c in cat dog; do
    mkdir -p "$T/img/validation/$c"
    for f in "$SHARED/data/catsdogs/validation/$c"/*; do ln -s "$f" "$T/img/validation/$c/"; done
done
set -- $(q "$DB" "SELECT path FROM run_predictions WHERE run = $RUN AND split = 'validation' AND NOT correct ORDER BY probability DESC LIMIT 2")
rm "$T/img/$1" "$T/img/$2"
printf 'not a JPEG at all' > "$T/img/$1"

out=$("$CLASSIFY" report --db "$DB" --sweep 1 --images "$T/img" -o "$T/report.html" --json --quiet)
check_eq "report exit status" "$?" 0
check_match "--json names the file" "$out" "\"report\":\"$T/report.html\""
check_match "--json: 10 figures" "$out" '"figures":10,'
check "report written" [ -s "$T/report.html" ]
check_eq "no temporary file left" "$(ls "$T" | grep -c 'report.html.tmp')" 0
check_match "the undecodable image is a placeholder" "$(grep -c "cannot be decoded" "$T/report.html")" '^[1-9]'
check_match "the missing image is a placeholder" "$(grep -c "cannot be read" "$T/report.html")" '^[1-9]'
check_eq "12 mistakes, 24 thumbnails less the 2 placeholders" \
    "$(grep -o 'src="data:image/jpeg;base64,' "$T/report.html" | wc -l)" 22
check "numbers = show's, curves = sklearn's" "$PY" "$CHECK" page "$T/report.html" "$T/show.json" "$DB" "$RUN" "$T/plots.html"
check_eq "sweep: 4 validation-curve figures" "$("$PY" "$CHECK" count "$T/report.html" series:sweep)" 12

# Rendered: no console message, not blank, every figure drawn.
check "chromium renders the page" shot "$T/report.html" "$T/report.png" 1240 5600
check_eq "no console messages" "$(cat "$T/console.txt")" ""
check "chromium renders the figures" shot "$T/plots.html" "$T/plots.png" 1240 \
    "$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['height'])" "$T/plots.html.json")"
check "screenshots: not blank, every figure drawn" "$PY" "$CHECK" pixels "$T/report.png" "$T/plots.png" "$T/plots.html.json"
cp "$T/report.png" "$T/plots.png" "$T/report.html" "$OUT/" 2>/dev/null

# --run of the chosen run shows its sweep's curve too; a CV candidate or a
# missing run is one line and exit 1, and no file is left behind.
"$CLASSIFY" report --db "$DB" --run "$RUN" -o "$T/run.html" --quiet > /dev/null
check_eq "--run: report" "$?" 0
check_eq "--run: the sweep's curve" "$("$PY" "$CHECK" count "$T/run.html" series:sweep)" 12
check_eq "--run: placeholders without --images (12 mistakes, 12 neighbours)" \
    "$(grep -o 'no image folder given' "$T/run.html" | wc -l)" 24
# --images: a folder that is not there is one line, exit 1, no file; the
# folder above the dataset's (paths do not resolve) is a report whose
# placeholders a line on stderr counts, naming the first.
err=$("$CLASSIFY" report --db "$DB" --run "$RUN" --images "$T/nowhere" -o "$T/none.html" 2>&1)
check_eq "--images not there: exit 1" "$?" 1
check_eq "--images not there: one line naming it" "$err" "bottleneck-classify: --images $T/nowhere: No such file or directory"
check "--images not there: no file" [ ! -e "$T/none.html" ]
"$CLASSIFY" report --db "$DB" --run "$RUN" --images "$T" -o "$T/wrong.html" > /dev/null 2> "$T/wrong.err"
check_eq "--images the wrong folder: exit 0" "$?" 0
check_match "--images the wrong folder: the placeholders counted" "$(cat "$T/wrong.err")" \
    "^report: 24 of the 24 thumbnails not shown \(first: validation/(cat|dog)/[^:]+: cannot be read: .*\); --images is the folder bottleneck-extract read\$"
"$CLASSIFY" report --db "$DB" --run "$RUN" --images "$T/img" -o "$T/two.html" > /dev/null 2> "$T/two.err"
check_match "--images with two photos broken: 2 of 24 counted" "$(cat "$T/two.err")" "^report: 2 of the 24 thumbnails not shown "
err=$("$CLASSIFY" report --db "$DB" --run 99 -o "$T/none.html" 2>&1)
check_eq "unknown run: exit 1" "$?" 1
check_match "unknown run: says which" "$err" '^bottleneck-classify: .*no run 99'
check_eq "unknown run: one line" "$(printf '%s\n' "$err" | wc -l)" 1
check "unknown run: no file" [ ! -e "$T/none.html" ]
err=$("$CLASSIFY" report --db "$DB" --run 1 -o "$T/nodir/r.html" --quiet 2>&1)
check_eq "unwritable output: exit 1" "$?" 1
check_match "unwritable output: names the file" "$err" "nodir/r.html"
err=$("$CLASSIFY" report --db "$DB" --run 1 --sweep 1 2>&1)
check_eq "--run with --sweep: usage error" "$?" 2
finish
