# Concurrency (issue 6): readers on the database while extract writes never
# fail and never see part of a batch; two extracts on one database at once
# (same or different settings, even on a database neither has created yet)
# both finish and leave it as separate runs would.
. "$(dirname "$0")/lib.sh"

make_dataset "$T/ds" 6 # 24 photos
n_images=24
opts="--weights $WEIGHTS --size 32 --batch 2 --quiet"
dump() {
    q "$1" "SELECT path, label, ifnull(split, '-'), sha256, width, height, hex(vector)
            FROM images JOIN vectors USING (sha256) JOIN featuresets f ON f.id = featureset
            WHERE f.pooling = '${2:-none}' AND split IS NOT NULL ORDER BY path"
}

# Reference: each setting alone.
"$EXTRACT" $opts --db "$T/ref.db" "$T/ds"
check_eq "reference run" "$?" 0
"$EXTRACT" $opts --pooling avg --db "$T/ref.db" "$T/ds"
check_eq "reference run, avg pooling" "$?" 0

# 1. The sqlite3 shell reads in a loop while extract writes batches of two.
# Each read is one statement, so one snapshot: it must see whole batches
# (an even number of vectors, each with its image row) and never go back.
DB="$T/read.db"
mkdir -p "$T/one/cat"
# (a photo make_dataset did not copy, so every one of ds is new)
cp "$SHARED/data/catsdogs/train/cat/$(ls "$SHARED/data/catsdogs/train/cat" | sort | tail -n 1)" "$T/one/cat/"
"$EXTRACT" $opts --db "$DB" "$T/one" # the database exists before the readers come
"$EXTRACT" $opts --db "$DB" "$T/ds" &
pid=$!
reads=0 failed=0 torn=0 backwards=0 last=0 seen=""
while kill -0 "$pid" 2>/dev/null; do
    r=$(q "$DB" "SELECT count(*),
                        (SELECT count(*) FROM images WHERE sha256 NOT IN (SELECT sha256 FROM vectors)),
                        (SELECT count(*) FROM vectors WHERE length(vector) != 4 * 512)
                 FROM vectors" 2>"$T/read.err")
    if [ $? -ne 0 ]; then
        failed=$((failed + 1))
        echo "reader failed after $last vectors: $(cat "$T/read.err")"
        continue
    fi
    reads=$((reads + 1))
    n=${r%%|*} rest=${r#*|}
    # One vector comes from the first run, one from this run's first batch
    # (it holds one image: extractor.c), then batches of two; the last batch
    # holds the one left (1 + 1 + 2 x 11 + 1 of the 24 + 1).
    [ "$n" -eq 1 ] || [ $((n % 2)) -eq 0 ] || [ "$n" -eq $((n_images + 1)) ] ||
        torn=$((torn + 1))
    [ "$rest" = "0|0" ] || torn=$((torn + 1))
    [ "$n" -ge "$last" ] || backwards=$((backwards + 1))
    [ "$n" != "$last" ] && seen="$seen $n"
    last=$n
done
wait "$pid"
check_eq "extract with readers: exit" "$?" 0
echo "reader: $reads reads, vector counts seen:$seen"
check "the reader read during the run" [ "$reads" -ge 3 ]
check_eq "reads that failed" "$failed" 0
check_eq "reads that saw part of a batch" "$torn" 0
check_eq "reads that went backwards" "$backwards" 0
check "with readers: same as the reference" [ "$(dump "$DB")" = "$(dump "$T/ref.db")" ]
check_eq "with readers: integrity" "$(q "$DB" 'PRAGMA integrity_check')" ok

# 2. Two extracts, same settings, started together on a database that does
# not exist yet: both create, migrate and write it; one waits for the other.
DB="$T/two.db"
"$EXTRACT" $opts --db "$DB" "$T/ds" 2>"$T/a.err" &
a=$!
"$EXTRACT" $opts --db "$DB" "$T/ds" 2>"$T/b.err" &
b=$!
wait "$a"; ra=$?
wait "$b"; rb=$?
check_eq "two extracts: first exit" "$ra" 0
check_eq "two extracts: second exit" "$rb" 0
check_eq "two extracts: no messages" "$(cat "$T/a.err" "$T/b.err")" ""
check_eq "two extracts: one feature set" "$(q "$DB" 'SELECT count(*) FROM featuresets')" 1
check_eq "two extracts: no duplicate images" "$(q "$DB" 'SELECT count(*) FROM images')" "$n_images"
check "two extracts: same as the reference" [ "$(dump "$DB")" = "$(dump "$T/ref.db")" ]
check_eq "two extracts: integrity" "$(q "$DB" 'PRAGMA integrity_check')" ok

# 3. Two extracts with different settings (two feature sets) at once.
DB="$T/mixed.db"
"$EXTRACT" $opts --db "$DB" "$T/ds" 2>"$T/a.err" &
a=$!
"$EXTRACT" $opts --pooling avg --db "$DB" "$T/ds" 2>"$T/b.err" &
b=$!
wait "$a"; ra=$?
wait "$b"; rb=$?
check_eq "mixed settings: exits" "$ra $rb" "0 0"
check_eq "mixed settings: two feature sets" "$(q "$DB" 'SELECT count(*) FROM featuresets')" 2
check "mixed settings: flat vectors as the reference" [ "$(dump "$DB" none)" = "$(dump "$T/ref.db" none)" ]
check "mixed settings: average-pooled as the reference" [ "$(dump "$DB" avg)" = "$(dump "$T/ref.db" avg)" ]
check_eq "mixed settings: integrity" "$(q "$DB" 'PRAGMA integrity_check')" ok

# 4. bottleneck-classify reads (a feature set's vectors) and writes (its runs)
# while extract stores another feature set: neither fails, neither waits for
# the whole of the other, and both end as if alone.
G="$SHARED/features/googlenet/catsdogs"
DB="$T/classify.db"
"$EXTRACT" import --db "$DB" --name googlenet --npy "$G/embeddings.npy" --index "$G/index.tsv" --quiet
check_eq "import for classify" "$?" 0
"$EXTRACT" $opts --db "$DB" "$T/ds" 2>"$T/a.err" &
pid=$!
trained=0 failed=0
while kill -0 "$pid" 2>/dev/null || [ "$trained" -eq 0 ]; do
    if "$CLASSIFY" --db "$DB" --features googlenet --C 1 --quiet >/dev/null 2>"$T/c.err"; then
        trained=$((trained + 1))
    else
        failed=$((failed + 1))
        echo "classify failed: $(cat "$T/c.err")"
    fi
done
wait "$pid"
check_eq "extract while classify trains: exit" "$?" 0
echo "classify: $trained trainings while extract wrote"
check_eq "trainings that failed" "$failed" 0
check_eq "every training stored" "$(q "$DB" 'SELECT count(*) FROM sweeps')" "$trained"
check "extract while classify trains: same as the reference" [ "$(dump "$DB")" = "$(dump "$T/ref.db")" ]
check_eq "classify and extract: integrity" "$(q "$DB" 'PRAGMA integrity_check')" ok

finish
