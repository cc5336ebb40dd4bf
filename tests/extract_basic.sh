# extract end to end on real photos: layout, labels, splits, vectors,
# re-runs that skip, renames that reuse, feature sets side by side.
. "$(dirname "$0")/lib.sh"

make_dataset "$T/ds" 2  # 8 photos: {train,validation} x {cat,dog} x 2
DB="$T/f.db"
run() { "$EXTRACT" --weights "$WEIGHTS" --db "$DB" --size 64 --quiet --json "$@"; }
jget() { printf '%s' "$1" | sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" | tr -d '"'; }

out=$(run "$T/ds"); rc=$?
check_eq "first run exit" "$rc" 0
check_eq "first run extracted" "$(jget "$out" extracted)" 8
check_eq "first run dim" "$(jget "$out" dim)" 2048   # 2 x 2 x 512 at size 64
# Where the run's time went: the network, the SQLite writes and the waits
# for the next batch are parts of seconds, each timed on the caller's thread
# (in microseconds: these 8 photos' writes take about one millisecond). The
# wait may round to zero: when the reader has the batch ready, it is one
# mutex (under load in CI: "wait_seconds":0.000000).
split="seconds $(jget "$out" seconds) network $(jget "$out" network_seconds)"
split="$split store $(jget "$out" store_seconds) wait $(jget "$out" wait_seconds)"
check "time split: network + store + wait <= seconds, network and store > 0, wait >= 0 ($split)" \
    awk -v s="$(jget "$out" seconds)" \
    -v n="$(jget "$out" network_seconds)" -v w="$(jget "$out" store_seconds)" \
    -v r="$(jget "$out" wait_seconds)" \
    'BEGIN { exit !(n > 0 && w > 0 && r >= 0 && r != "" && n + w + r <= s + 0.002) }'
check_eq "images rows" "$(q "$DB" 'SELECT count(*) FROM images')" 8
check_eq "embeddings rows" "$(q "$DB" 'SELECT count(*) FROM embeddings')" 8
check_eq "extract packs its vectors for vec_knn" "$(q "$DB" 'SELECT sum(count) FROM vector_chunks')" 8
check_eq "labels" "$(q "$DB" "SELECT group_concat(label || ':' || n) FROM (SELECT label, count(*) n FROM images GROUP BY label ORDER BY label)")" "cat:4,dog:4"
check_eq "splits" "$(q "$DB" "SELECT group_concat(split || ':' || n) FROM (SELECT split, count(*) n FROM images GROUP BY split ORDER BY split)")" "train:4,validation:4"
check_eq "blob bytes = 4 * dim" "$(q "$DB" 'SELECT DISTINCT length(vector) = 4 * dim FROM embeddings')" 1
check_eq "paths are relative" "$(q "$DB" "SELECT count(*) FROM images WHERE path LIKE 'train/cat/%.jpg' OR path LIKE 'validation/dog/%.jpg'")" 4
# Each stored hash is the file's own sha256.
p=$(q "$DB" "SELECT path FROM images ORDER BY path LIMIT 1")
check_eq "sha256 of the file" "$(q "$DB" "SELECT sha256 FROM images WHERE path = '$p'")" "$(sha256sum "$T/ds/$p" | cut -d' ' -f1)"
check_eq "width/height recorded" "$(q "$DB" 'SELECT count(*) FROM images WHERE width > 0 AND height > 0')" 8
check "schema version applied" [ "$(q "$DB" 'PRAGMA user_version')" -ge 1 ]
check_eq "WAL mode" "$(q "$DB" 'PRAGMA journal_mode')" wal
# block5_pool is a max pool of ReLU outputs: every element finite and
# non-negative (vec_each gives NaN as NULL), and no vector all zero.
VEC=".load ${BN_BUILD_DIR:?}/ext/bottleneck_vec"
check_eq "elements read: 8 x 2048" "$(q "$DB" "$VEC" 'SELECT count(*) FROM vectors v, vec_each(v.vector) e')" 16384
check_eq "ReLU outputs: none negative, NaN or infinite" \
    "$(q "$DB" "$VEC" 'SELECT count(*) FROM vectors v, vec_each(v.vector) e WHERE e.value IS NULL OR e.value < 0 OR e.value > 1e30')" 0
check_eq "ReLU outputs: no vector all zero" \
    "$(q "$DB" "$VEC" 'SELECT count(*) FROM vectors v WHERE (SELECT max(value) FROM vec_each(v.vector)) > 0')" 8
check_eq "vectors differ between images" "$(q "$DB" 'SELECT count(DISTINCT vector) FROM vectors')" 8

# Re-run: nothing recomputed.
out=$(run "$T/ds"); rc=$?
check_eq "re-run exit" "$rc" 0
check_eq "re-run skipped" "$(jget "$out" skipped)" 8
check_eq "re-run extracted" "$(jget "$out" extracted)" 0

# A renamed file keeps its vector: no network run, a new image row.
first=$(ls "$T/ds/train/cat" | head -n 1)
before=$(q "$DB" "SELECT hex(vector) FROM embeddings WHERE path = 'train/cat/$first'")
mv "$T/ds/train/cat/$first" "$T/ds/train/cat/renamed.jpg"
out=$(run "$T/ds")
check_eq "rename reused" "$(jget "$out" reused)" 1
check_eq "rename extracted" "$(jget "$out" extracted)" 0
check_eq "renamed vector" "$(q "$DB" "SELECT hex(vector) FROM embeddings WHERE path = 'train/cat/renamed.jpg'")" "$before"

# A new image is added, and only it is computed.
cp "$SHARED/data/catsdogs/train/dog/$(ls "$SHARED/data/catsdogs/train/dog" | sort | tail -n 1)" "$T/ds/train/dog/new.jpg"
out=$(run "$T/ds")
check_eq "new image extracted" "$(jget "$out" extracted)" 1
check_eq "new image skipped others" "$(jget "$out" skipped)" 8

# Other settings make other feature sets, side by side.
out=$(run --pooling avg "$T/ds")
check_eq "avg dim" "$(jget "$out" dim)" 512
out=$(run --pooling max --dtype f16 "$T/ds")
check_eq "f16 extracted" "$(jget "$out" extracted)" 9
check_eq "featuresets" "$(q "$DB" 'SELECT count(*) FROM featuresets')" 3
check_eq "f16 blob bytes" "$(q "$DB" "SELECT DISTINCT length(vector) FROM embeddings WHERE dtype = 'f16'")" 1024
check_eq "f16 featureset settings" "$(q "$DB" "SELECT layer || ' ' || pooling || ' ' || size || ' ' || resize || ' ' || preprocess FROM featuresets WHERE dtype = 'f16'")" "block5_pool max 64 squash caffe"
check_eq "weights hash recorded" "$(q "$DB" 'SELECT DISTINCT weights_sha256 FROM featuresets')" "$(sha256sum "$WEIGHTS" | cut -d' ' -f1)"
# avg pooling of block5 equals the mean over the 2x2 positions of the flat vector:
# checked numerically in tests/test_extract_e2e.c.

# A dataset with classes only (no split folders): split is NULL.
mkdir -p "$T/flat/cat" "$T/flat/dog"
cp "$T/ds/train/cat/"*.jpg "$T/flat/cat/"; cp "$T/ds/train/dog/"*.jpg "$T/flat/dog/"
out=$("$EXTRACT" --weights "$WEIGHTS" --db "$T/flat.db" --size 64 --quiet --json "$T/flat")
check_eq "flat layout null split" "$(q "$T/flat.db" 'SELECT count(*) FROM images WHERE split IS NULL')" "$(jget "$out" images)"

# Copies inside one batch: the same content twice among new images is decoded
# once and reused (both rows point at one vector); a damaged file and its copy
# in one batch both fail, with the same reason, and neither has a vector.
mkdir -p "$T/dup/cat"
first=$(ls "$T/ds/train/cat/"*.jpg | head -n 1)
cp "$first" "$T/dup/cat/a.jpg"; cp "$first" "$T/dup/cat/b.jpg"
head -c 2000 "$first" >"$T/dup/cat/c.jpg"; cp "$T/dup/cat/c.jpg" "$T/dup/cat/d.jpg"
out=$("$EXTRACT" --weights "$WEIGHTS" --db "$T/dup.db" --size 32 --batch 8 --quiet --json "$T/dup")
check_eq "copies: exit (two inputs failed)" "$?" 3
check_eq "copies: extracted once" "$(jget "$out" extracted)" 1
check_eq "copies: reused once" "$(jget "$out" reused)" 1
check_eq "copies: both damaged ones failed" "$(jget "$out" failed)" 2
check_eq "copies: one vector for both" "$(q "$T/dup.db" "SELECT count(DISTINCT vector) || ' ' || count(*) FROM embeddings")" "1 2"
check_eq "copies: same reason twice, each under its own name" "$(q "$T/dup.db" "SELECT count(DISTINCT substr(reason, length(path) + 1)) || ' ' || count(*) || ' ' || sum(reason LIKE path || ': %') FROM failures")" "1 2 2"
check_eq "copies: no vector for the damaged content" "$(q "$T/dup.db" 'SELECT count(*) FROM vectors WHERE sha256 IN (SELECT sha256 FROM failures WHERE sha256 IS NOT NULL)')" 0
check_eq "copies: integrity" "$(q "$T/dup.db" 'PRAGMA integrity_check')" ok

finish
