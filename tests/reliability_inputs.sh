# Bad inputs (issue 6): a generated corpus of odd and broken files goes
# through bottleneck-extract. Every file is either stored or recorded in
# failures with a clear one-line reason, the rest of the folder is processed,
# nothing hangs, memory stays bounded; files that vanish between the scan and
# the read are failures, not crashes.
. "$(dirname "$0")/lib.sh"

GEN="${BN_BUILD_DIR:?}/tests/gen_corpus"
[ -x "$GEN" ] || { echo "no $GEN (build the tests first)"; exit 1; }
photo="$SHARED/data/catsdogs/train/cat/$(ls "$SHARED/data/catsdogs/train/cat" | sort | head -n 1)"
counts=$("$GEN" "$T/corpus" "$photo") || { echo "gen_corpus failed"; exit 1; }
n_good=$(echo "$counts" | sed -n 's/^good //p')
n_bad=$(echo "$counts" | sed -n 's/^bad //p')
n_either=$(echo "$counts" | sed -n 's/^either //p')
total=$((n_good + n_bad + n_either))
echo "corpus: $n_good good, $n_bad bad, $n_either either ($total inputs)"

asan=0
ldd "$EXTRACT" 2>/dev/null | grep -q libasan && asan=1
# Max RSS in KB of a command (GNU time if installed), else 0.
rss() {
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%M' -o "$T/rss" "$@"
        local rc=$?
        tail -n 1 "$T/rss" >"$T/rss.kb"
        return $rc
    fi
    "$@"; local rc=$?; echo 0 >"$T/rss.kb"; return $rc
}

DB="$T/c.db"
run() { "$EXTRACT" --weights "$WEIGHTS" --size 64 --batch 4 --quiet --json "$@"; }
jget() { printf '%s' "$1" | sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" | tr -d '"'; }

# The whole corpus in one run, under a time limit: a hang (a FIFO opened
# blocking, a loop followed forever) fails here instead of stalling the suite.
rss timeout 240 "$EXTRACT" --weights "$WEIGHTS" --size 64 --batch 4 --conv direct --quiet --json --db "$DB" \
    "$T/corpus" >"$T/out" 2>"$T/err"
rc=$?
corpus_rss=$(cat "$T/rss.kb")
out=$(cat "$T/out")
check_eq "corpus run exit (some inputs failed)" "$rc" 3
check_eq "nothing on stderr with --quiet" "$(cat "$T/err")" ""
check_eq "every input seen" "$(jget "$out" images)" "$total"
check_eq "failed count" "$(jget "$out" failed)" "$(q "$DB" 'SELECT count(*) FROM failures')"
check_eq "integrity" "$(q "$DB" 'PRAGMA integrity_check')" ok

# Every file is exactly one of: stored, failed.
check_eq "stored + failed = inputs" "$(q "$DB" 'SELECT (SELECT count(*) FROM images) + (SELECT count(*) FROM failures)')" "$total"
check_eq "no path both stored and failed" "$(q "$DB" 'SELECT count(*) FROM images JOIN failures USING (path)')" 0
check_eq "all good inputs stored" "$(q "$DB" "SELECT count(*) FROM images WHERE label = 'good'")" "$n_good"
check_eq "good inputs have vectors" "$(q "$DB" "SELECT count(*) FROM embeddings WHERE label = 'good' AND length(vector) = 4 * dim")" "$n_good"
check_eq "no bad input stored" "$(q "$DB" "SELECT count(*) FROM images WHERE label = 'bad'")" 0
check_eq "all bad inputs failed" "$(q "$DB" "SELECT count(*) FROM failures WHERE path LIKE 'bad/%'")" "$n_bad"
check_eq "no good input failed" "$(q "$DB" "SELECT group_concat(path || ': ' || reason, ' | ') FROM failures WHERE path LIKE 'good/%'")" ""
# Clear reasons: one line, more than a word, and the right one for each kind.
check_eq "reasons are one line" "$(q "$DB" "SELECT count(*) FROM failures WHERE instr(reason, char(10)) OR length(reason) < 12")" 0
reason() { q "$DB" "SELECT reason FROM failures WHERE path = 'bad/$1'"; }
check_match "empty file" "$(reason empty.jpg)" "empty file"
check_match "truncated JPEG" "$(reason truncated.jpg)" "Premature end"
check_match "truncated PNG" "$(reason truncated.png)" "bad/truncated.png: .*png"
check_match "random bytes" "$(reason random.webp)" "not in a known format"
check_match "text" "$(reason text.png)" "not in a known format"
check_match "decompression bomb" "$(reason bomb.png)" "100000x100000 .*decompression bomb"
check_match "wide bomb" "$(reason bomb_strip.png)" "1000000x200 .*decompression bomb"
check_match "dangling link" "$(reason dangling.jpg)" "No such file"
check_match "link to itself" "$(reason self.jpg)" "symbolic links"
check_match "FIFO" "$(reason fifo.jpg)" "not a regular file"
check_match "device" "$(reason device.jpg)" "not a regular file"
check_match "bad CRC" "$(reason bad_crc.png)" "png"

# Odd formats and sizes decode to what they are (first frame/page only).
dims() { q "$DB" "SELECT width || 'x' || height FROM images WHERE path = 'good/$1'"; }
check_eq "1x1" "$(dims one.png)" 1x1
check_eq "10000x10" "$(dims wide.png)" 10000x10
check_eq "10x10000" "$(dims tall.jpg)" 10x10000
check_eq "8000x6000" "$(dims large.jpg)" 8000x6000
check_eq "GIF: first frame" "$(dims animated.gif)" 48x36
check_eq "TIFF: first page" "$(dims pages.tif)" 48x36
check_eq "CMYK" "$(dims cmyk.jpg)" 64x48
check_eq "16-bit" "$(dims rgb16.png)" 64x48
# Names survive byte for byte (newline, quotes, invalid UTF-8).
check_eq "name with a newline" "$(q "$DB" "SELECT count(*) FROM images WHERE path = 'good/new' || char(10) || 'line.jpg'")" 1
check_eq "name with quotes" "$(q "$DB" "SELECT count(*) FROM images WHERE path = 'good/say \"cheese\".jpg'")" 1
check_eq "invalid UTF-8 name" "$(q "$DB" "SELECT count(*) FROM images WHERE hex(path) = hex(CAST(x'676f6f642fFFFE20696e76616c696420757466382e6a7067' AS TEXT))")" 1
check_eq "folder named like an image" "$(q "$DB" "SELECT count(*) FROM images WHERE path = 'good/folder.jpg/inside.jpg'")" 1
check_eq "link loops not followed" "$(q "$DB" "SELECT count(*) FROM images WHERE path LIKE '%loop/%' OR path LIKE '%up/%'")" 0
check_eq "link to a file reuses its vector" "$(jget "$out" reused)" 1
# Every vector is finite (no NaN or Inf from a degenerate resize), read with
# the SQL extension: vec_length fails on neither, so look at the JSON text.
ext="$BN_BUILD_DIR/ext/bottleneck_vec"
if [ -e "$ext.so" ]; then
    check_eq "vectors are finite" "$(q -cmd ".load $ext" "$DB" "SELECT count(*) FROM embeddings WHERE vec_to_json(vector) LIKE '%nan%' OR vec_to_json(vector) LIKE '%inf%'")" 0
fi

# Run again: nothing stored changes, the failures are tried again and stay.
before=$(q "$DB" 'SELECT path, hex(vector) FROM embeddings ORDER BY path')
out=$(run --db "$DB" "$T/corpus" 2>/dev/null); rc=$?
check_eq "second run exit" "$rc" 3
check_eq "second run skipped the good" "$(jget "$out" skipped)" "$(q "$DB" 'SELECT count(*) FROM images')"
check_eq "second run extracted nothing" "$(jget "$out" extracted)" 0
check "second run kept the vectors" [ "$(q "$DB" 'SELECT path, hex(vector) FROM embeddings ORDER BY path')" = "$before" ]

# Memory: the corpus (8000x6000 JPEG, 10000x10 strip, bombs) costs little more
# than ordinary photos at the same settings (direct convolution, whose
# memory is small next to the decoder's).
make_dataset "$T/plain" 2
rss "$EXTRACT" --weights "$WEIGHTS" --size 64 --batch 4 --conv direct --quiet --db "$T/plain.db" "$T/plain"
plain_rss=$(cat "$T/rss.kb")
echo "max RSS: corpus $corpus_rss KB, 8 plain photos $plain_rss KB"
if [ "$asan" = 0 ] && [ "$plain_rss" -gt 0 ]; then
    check "corpus max RSS within 50 MB of plain photos ($corpus_rss vs $plain_rss KB)" \
        [ "$corpus_rss" -lt $((plain_rss + 51200)) ]
fi

# Files that vanish between the scan and the read: delete the last ones while
# extract works through the first (one image per batch, so the reader is at
# most two images ahead of what is committed).
make_dataset "$T/v" 4   # 16 photos
for f in "$T"/v/train/cat/*.jpg; do cp "$f" "${f%.jpg}.copy.jpg"; done # 20 distinct paths...
# ...distinct contents too, so every one is decoded: append a byte.
for f in "$T"/v/train/cat/*.copy.jpg; do printf 'x' >>"$f"; done
gone=$(cd "$T/v" && find . -name '*.jpg' | sed 's|^\./||' | LC_ALL=C sort | tail -n 5)
n_v=$(find "$T/v" -name '*.jpg' | wc -l)
"$EXTRACT" --weights "$WEIGHTS" --size 32 --batch 1 --quiet --db "$T/v.db" "$T/v" 2>"$T/err" &
pid=$!
for _ in $(seq 1 600); do
    n=$(q "$T/v.db" 'SELECT count(*) FROM vectors' 2>/dev/null)
    [ "${n:-0}" -ge 1 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
for f in $gone; do rm -f "$T/v/$f"; done
wait "$pid"; rc=$?
check_eq "vanished files: exit" "$rc" 3
check_eq "vanished files: failures" "$(q "$T/v.db" "SELECT count(*) FROM failures WHERE reason LIKE '%No such file%'")" 5
check_eq "vanished files: the rest stored" "$(q "$T/v.db" 'SELECT count(*) FROM embeddings')" $((n_v - 5))
check_eq "vanished files: integrity" "$(q "$T/v.db" 'PRAGMA integrity_check')" ok

echo "inputs tried: $total (corpus) + $n_v (vanishing)"
finish
