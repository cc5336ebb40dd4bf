# classify_lean: bottleneck-classify is two programs (classify/forward.c).
# The one users run links no image code, so that train, runs and show do not
# pay ~40 ms of dynamic loading (libvips, HDF5, curl, protobuf-c and their
# ~90 libraries) at every start; predict and report run in
# bottleneck-classify-images, exec'd with the same arguments. Checked here:
# - bottleneck-classify's dynamic section needs none of those libraries
#   (so they cannot come back unnoticed), the other one does;
# - predict and report go through the forward: same output and exit status
#   as the images program run directly (predict on new photo files and
#   report with thumbnails are covered by classify_predict and report_html,
#   which run bottleneck-classify);
# - without the images program, one line naming it and exit 1;
# - meson install --destdir: the installed bottleneck-classify finds the
#   installed images program (libexecdir, relative to bindir).
. "$(dirname "$0")/lib.sh"

IMAGES="$(dirname "$CLASSIFY")/bottleneck-classify-images"
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
lean=$(needed "$CLASSIFY")
full=$(needed "$IMAGES")
echo "bottleneck-classify needs:" $lean
check_match "readelf works: bottleneck-classify needs libsqlite3" "$lean" 'libsqlite3'
for lib in libvips libhdf5 libcurl libprotobuf-c libgobject libgio; do
    check "bottleneck-classify does not link $lib" sh -c "! printf '%s\n' \"$lean\" | grep -q '^$lib'"
done
check_match "bottleneck-classify-images links libvips" "$full" 'libvips'

# A small database: 100 + 100 GoogLeNet training vectors imported, one run.
/usr/bin/python3 -c "
import numpy as np, sys
d = sys.argv[1]
e = np.load(d + '/embeddings.npy', mmap_mode='r')
lines = open(d + '/index.tsv').read().splitlines()
keep = list(range(100)) + list(range(1500, 1600))  # train cats, train dogs
np.save(sys.argv[2], np.ascontiguousarray(e[keep]))
with open(sys.argv[3], 'w') as f:
    f.write(lines[0] + '\\n')
    for i, r in enumerate(keep):
        f.write(str(i) + lines[r + 1][lines[r + 1].index('\\t'):] + '\\n')
" "$SHARED/features/googlenet/catsdogs" "$T/e.npy" "$T/index.tsv"
DB="$T/g.db"
"$EXTRACT" import --db "$DB" --name g --npy "$T/e.npy" --index "$T/index.tsv" --quiet
check_eq "import" "$?" 0
"$CLASSIFY" --db "$DB" --C 0.1 --valid none --test none --quiet --json > "$T/train.json"
check_eq "train (in bottleneck-classify itself)" "$?" 0
run=$(q "$DB" "SELECT max(id) FROM runs")

"$CLASSIFY" predict --db "$DB" --run "$run" --split train > "$T/p.out" 2> "$T/p.err"
s1=$?
"$IMAGES" predict --db "$DB" --run "$run" --split train > "$T/p2.out" 2> "$T/p2.err"
s2=$?
check_eq "predict through the forward: exit" "$s1" 0
check_eq "predict: the same output as bottleneck-classify-images" "$(cat "$T/p.out")" "$(cat "$T/p2.out")"
check_eq "predict: the same messages" "$(cat "$T/p.err")" "$(cat "$T/p2.err")"
"$CLASSIFY" predict --db "$DB" --run 999 > /dev/null 2> "$T/bad.err"
check_eq "predict of a missing run: exit 1 through the forward" "$?" 1
check_match "... and the images program's message" "$(cat "$T/bad.err")" '^bottleneck-classify: .*999'
"$CLASSIFY" report --db "$DB" --run "$run" -o "$T/r.html" --quiet > /dev/null
check_eq "report through the forward: exit" "$?" 0
check "report written" test -s "$T/r.html"

# Alone in a folder, without the images program: one line naming it.
if [ -e /usr/local/libexec/bottleneck/bottleneck-classify-images ]; then
    echo "an installed bottleneck-classify-images exists: not testing its absence"
else
    mkdir "$T/alone"
    cp "$CLASSIFY" "$T/alone/"
    "$T/alone/bottleneck-classify" predict --db "$DB" --run "$run" --split train > /dev/null 2> "$T/alone.err"
    check_eq "without the images program: exit 1" "$?" 1
    check_eq "... one line" "$(wc -l < "$T/alone.err")" 1
    check_match "... naming it" "$(cat "$T/alone.err")" \
        '^bottleneck-classify: predict needs bottleneck-classify-images .*found neither in'
    "$T/alone/bottleneck-classify" --db "$DB" runs > /dev/null
    check_eq "... while runs still works" "$?" 0
fi

# An install staged with --destdir: both programs, and the forward finds the
# installed one (not the build tree's).
if meson install -C "$BN_BUILD_DIR" --no-rebuild --quiet --destdir "$T/stage" > "$T/install.log" 2>&1; then
    lean_inst=$(find "$T/stage" -type f -name bottleneck-classify)
    full_inst=$(find "$T/stage" -type f -name bottleneck-classify-images)
    check "installed: bottleneck-classify" test -x "$lean_inst"
    check "installed: bottleneck-classify-images" test -x "$full_inst"
    check_match "... in libexecdir" "$full_inst" '/libexec/bottleneck/bottleneck-classify-images$'
    "$lean_inst" predict --db "$DB" --run "$run" --split train > "$T/pi.out"
    check_eq "the installed bottleneck-classify predicts through the installed images program" \
        "$(cat "$T/pi.out")" "$(cat "$T/p.out")"
    # Proof that it was the installed one: without it, the forward fails.
    rm "$full_inst"
    "$lean_inst" predict --db "$DB" --run "$run" --split train > /dev/null 2> "$T/pi.err"
    if [ -e /usr/local/libexec/bottleneck/bottleneck-classify-images ]; then
        echo "an installed bottleneck-classify-images exists: not testing the staged one's absence"
    else
        check_match "... and only it" "$(cat "$T/pi.err")" 'needs bottleneck-classify-images'
    fi
else
    cat "$T/install.log"
    bad "meson install --destdir failed"
fi
finish
