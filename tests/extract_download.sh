# `bottleneck-extract --download` as a user runs it: from a mirror (an HTTP
# server on the loopback interface that this test starts and always stops,
# serving ../shared/models), into the cache, then used by an extract that
# names no weights. test_download.c covers the library's failure cases one by
# one; this covers the program: its messages, its exit codes, that the cache
# is complete or absent, that a verified file is not fetched again, and that
# --download --weights FILE fetches into FILE.
. "$(dirname "$0")/lib.sh"

# The mirror: python3's http.server on a free port, its access log in
# $T/http.log (one line per request). Stopped on every exit.
python3 - "$SHARED/models" "$T/port" >"$T/http.log" 2>&1 <<'PY' &
import functools, http.server, os, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
sys.stderr.reconfigure(line_buffering=True)
server.serve_forever()
PY
server=$!
trap 'kill "$server" 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || { echo "the loopback mirror did not start: $(cat "$T/http.log")"; exit 1; }
MIRROR="http://127.0.0.1:$(cat "$T/port")"
gets() { grep -c '"GET /vgg16_random_notop.h5 ' "$T/http.log"; }

MD5=$(md5sum "$WEIGHTS" | cut -d ' ' -f 1)
SHA=$(sha256sum "$WEIGHTS" | cut -d ' ' -f 1)
CACHED="$T/cache/bottleneck/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
# Nothing of the caller's: no weights but the cache's.
unset BOTTLENECK_WEIGHTS
export XDG_CACHE_HOME="$T/cache" BOTTLENECK_WEIGHTS_URL="$MIRROR/vgg16_random_notop.h5" \
    BOTTLENECK_WEIGHTS_MD5="$MD5"
parts() { find "$T/cache" -name '*.part*' 2>/dev/null | wc -l; }

# 1. Download into an empty cache: the file, whole; "weights: PATH" on stderr.
"$EXTRACT" --download >"$T/out" 2>"$T/err"
check_eq "download: exit 0" "$?" 0
check "download: the cached file is the mirror's, byte for byte" cmp -s "$CACHED" "$WEIGHTS"
check_match "download: says where the weights are" "$(cat "$T/err")" "^weights: $CACHED\$"
check_match "download: a progress line in MiB (not a terminal: plain lines)" "$(cat "$T/err")" \
    "^download: 56/56 MiB, "
check_eq "download: one request" "$(gets)" 1
check_eq "download: no partial file left" "$(parts)" 0

# 2. Extract with no weights named: the cache's, recorded by their SHA-256.
make_dataset "$T/ds" 1
"$EXTRACT" --db "$T/x.db" --size 32 --quiet "$T/ds"
check_eq "extract from the cache: exit 0" "$?" 0
check_eq "extract from the cache: 4 vectors" "$(q "$T/x.db" "SELECT count(*) FROM vectors")" 4
check_eq "extract from the cache: the feature set names the downloaded weights" \
    "$(q "$T/x.db" "SELECT weights_sha256 FROM featuresets")" "$SHA"

# 3. --download with a dataset, the file verified in the cache: not fetched
#    again, and the extract goes on (all stored already).
out=$("$EXTRACT" --download --db "$T/x.db" --size 32 --quiet --json "$T/ds"); rc=$?
check_eq "download again with a dataset: exit 0" "$rc" 0
check_eq "download again: no second request" "$(gets)" 1
check_match "download again: the extract ran, all stored already" "$out" '"skipped":4'

# 4. A damaged cached file (cut short) is fetched again, whole.
head -c 1000000 "$WEIGHTS" >"$CACHED"
"$EXTRACT" --download --quiet >"$T/out" 2>"$T/err"
check_eq "damaged cache: exit 0" "$?" 0
check_eq "damaged cache: --quiet prints nothing" "$(cat "$T/out" "$T/err")" ""
check_eq "damaged cache: fetched again" "$(gets)" 2
check "damaged cache: whole again" cmp -s "$CACHED" "$WEIGHTS"

# 5. --download --weights FILE: into that file (not the cache), kept when
#    already whole; the extract then reads it.
"$EXTRACT" --download --weights "$T/mine.h5" --quiet
check_eq "download into --weights FILE: exit 0" "$?" 0
check "download into --weights FILE: the file, whole" cmp -s "$T/mine.h5" "$WEIGHTS"
check_eq "download into --weights FILE: one more request" "$(gets)" 3
"$EXTRACT" --download --weights "$T/mine.h5" --db "$T/mine.db" --size 32 --quiet "$T/ds"
check_eq "download into --weights FILE again, with a dataset: exit 0" "$?" 0
check_eq "download into --weights FILE again: not fetched" "$(gets)" 3
check_eq "download into --weights FILE again: extracted with it" \
    "$(q "$T/mine.db" "SELECT count(*) || ' ' || weights_sha256 FROM vectors JOIN featuresets f ON f.id = vectors.featureset")" "4 $SHA"
# A file of the user's at that path (other contents) is never replaced.
printf 'my own weights' >"$T/own.h5"
"$EXTRACT" --download --weights "$T/own.h5" >/dev/null 2>"$T/err"
check_eq "download onto a user's file: exit 1" "$?" 1
check_match "download onto a user's file: one line, says why" "$(cat "$T/err")" \
    "^bottleneck-extract: $T/own.h5: exists and is not the file to download \(md5 [0-9a-f]{32}, expected $MD5\): left as it is; remove it or name another file\$"
check_eq "download onto a user's file: untouched, nothing fetched" "$(cat "$T/own.h5") $(gets)" "my own weights 3"

# 6. The official md5 (no override): the shared random weights are not the
#    official file. One line, exit 1, nothing in a fresh cache.
XDG_CACHE_HOME="$T/cache2" BOTTLENECK_WEIGHTS_MD5= "$EXTRACT" --download >"$T/out" 2>"$T/err"
check_eq "wrong checksum: exit 1" "$?" 1
# (after the progress lines of the 56 MiB it did receive)
check_eq "wrong checksum: one error line" "$(grep -c '^bottleneck-extract:' "$T/err")" 1
check_match "wrong checksum: it names the URL and both sums" "$(tail -n 1 "$T/err")" \
    "^bottleneck-extract: $BOTTLENECK_WEIGHTS_URL: md5 of the 58892792 bytes received is $MD5, expected [0-9a-f]{32} \(download discarded\)\$"
check "wrong checksum: nothing cached" [ ! -e "$T/cache2/bottleneck/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" ]
check_eq "wrong checksum: no partial file left" "$(find "$T/cache2" -name '*.part*' | wc -l)" 0

# 7. No mirror (the server stopped: the connection is refused): one line
#    naming the URL, saying what works without a network; exit 1; nothing
#    stored, the database as it was.
kill "$server"
wait "$server" 2>/dev/null
before=$(q "$T/x.db" "SELECT count(*) FROM vectors")
rm -f "$CACHED"
"$EXTRACT" --download --db "$T/x.db" --size 32 "$T/ds" >"$T/out" 2>"$T/err"
check_eq "no mirror: exit 1" "$?" 1
check_eq "no mirror: one line, no progress line before it" "$(wc -l <"$T/err")" 1
check_match "no mirror: names the URL and the problem" "$(cat "$T/err")" \
    "^bottleneck-extract: $BOTTLENECK_WEIGHTS_URL: download failed: .*"
check_match "no mirror: says what works without a network" "$(cat "$T/err")" \
    "pass it with --weights FILE, or name a mirror in \\\$BOTTLENECK_WEIGHTS_URL\)$"
check "no mirror: nothing cached" [ ! -e "$CACHED" ]
check_eq "no mirror: no partial file left" "$(parts)" 0
check_eq "no mirror: the database untouched" "$(q "$T/x.db" "SELECT count(*) FROM vectors")" "$before"
finish
