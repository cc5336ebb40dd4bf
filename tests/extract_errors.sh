# Bad input: one clear line naming the file and the problem, the documented
# exit status, and nothing already stored lost.
. "$(dirname "$0")/lib.sh"

make_dataset "$T/ds" 1  # 4 photos
run() { "$EXTRACT" --weights "$WEIGHTS" --size 32 --quiet "$@"; }

# --help documents every flag the program accepts.
help=$("$EXTRACT" --help)
for flag in --db --weights --download --layer --pooling --size --resize --preprocess --dtype \
    --conv --batch --threads --all-loaders --max-pixels --quiet --json --help --version; do
    check_match "--help documents $flag" "$help" "$flag"
done

# Usage errors: exit 2.
# --layer takes any tensor of the network, so a wrong one is known once the
# model is read: exit 1, before the database is touched.
"$EXTRACT" --weights "$WEIGHTS" --db "$T/layer.db" --layer block9_pool "$T/ds" 2>"$T/err"
check_eq "bad --layer exit" "$?" 1
check_match "bad --layer message" "$(cat "$T/err")" "block9_pool: vgg16 has no tensor"
check "bad --layer creates no database" [ ! -e "$T/layer.db" ]
"$EXTRACT" --size 100 "$T/ds" 2>"$T/err"; check_eq "bad --size exit" "$?" 2
check_match "bad --size: names it" "$(head -n 1 "$T/err")" "^bottleneck-extract: --size 100: VGG16 needs a multiple of 32 "
"$EXTRACT" 2>"$T/err"; check_eq "no dataset exit" "$?" 2

# A missing or empty dataset folder.
run --db "$T/a.db" "$T/nope" 2>"$T/err"; check_eq "missing folder exit" "$?" 1
check_match "missing folder message" "$(cat "$T/err")" "nope: No such file"
check_eq "missing folder: one line" "$(wc -l <"$T/err")" 1
mkdir "$T/empty"
run --db "$T/a.db" "$T/empty" 2>"$T/err"; check_eq "empty folder exit" "$?" 1
check_match "empty folder message" "$(cat "$T/err")" "empty: no images found"
# Photos straight in the folder (no class folders): seen, and said why they
# do not count; no database made.
mkdir "$T/flat"
cp "$T"/ds/train/cat/*.jpg "$T"/ds/train/dog/*.jpg "$T/flat/"
run --db "$T/flat.db" "$T/flat" 2>"$T/err"; check_eq "photos without class folders: exit" "$?" 1
check_eq "photos without class folders: one line" "$(wc -l <"$T/err")" 1
check_match "photos without class folders: says they were seen, names one" "$(cat "$T/err")" \
    "flat: no images in class folders \(2 files ignored, such as cat\.[0-9]+\.jpg: outside a class folder"
check "photos without class folders: no database" [ ! -e "$T/flat.db" ]
# Split folders without class folders (Kaggle's train/cat.1.jpg): their
# images are classes named train and validation; a note says so, once per
# folder, and not with --quiet.
mkdir -p "$T/splits/train" "$T/splits/validation"
cp "$T"/ds/train/cat/*.jpg "$T"/ds/train/dog/*.jpg "$T/splits/train/"
cp "$T"/ds/validation/cat/*.jpg "$T/splits/validation/"
"$EXTRACT" --weights "$WEIGHTS" --size 32 --db "$T/splits.db" "$T/splits" 2>"$T/err"
check_eq "splits without class folders: exit 0" "$?" 0
check_eq "splits without class folders: one note per folder" "$(grep -c 'note:' "$T/err")" 2
check_match "splits without class folders: the note" "$(cat "$T/err")" \
    "^bottleneck-extract: note: $T/splits/train has no class folders: its images are the class 'train' \(a split holds class folders: $T/splits/train/cat/\*\.jpg\)\$"
check_eq "splits without class folders: classes as the note says" \
    "$(q "$T/splits.db" "SELECT group_concat(label || ':' || ifnull(split, '-'), ' ') FROM (SELECT DISTINCT label, split FROM images ORDER BY label)")" \
    "train:- validation:-"
run --db "$T/splits2.db" "$T/splits" 2>"$T/err"
check_eq "splits without class folders, --quiet: no note" "$(cat "$T/err")" ""
# A class folder beside real ones, named like a split (cat/, dog/, test/):
# the note names it alone.
mkdir -p "$T/mixed/test"
cp -r "$T/ds/train/cat" "$T/ds/train/dog" "$T/mixed/"
cp "$T"/ds/validation/dog/*.jpg "$T/mixed/test/"
"$EXTRACT" --weights "$WEIGHTS" --size 32 --db "$T/mixed.db" "$T/mixed" 2>"$T/err"
check_eq "a class named test: exit 0" "$?" 0
check_eq "a class named test: one note" "$(grep -c 'note:' "$T/err")" 1
check_match "a class named test: the note names it" "$(grep 'note:' "$T/err")" "mixed/test has no class folders"

# Another program's SQLite database (a mistyped --db): every command that
# opens a database refuses it in one line and leaves it byte for byte as it
# was (no bottleneck tables, no WAL file, its journal mode untouched).
sqlite3 "$T/app.db" "CREATE TABLE notes (text); INSERT INTO notes VALUES ('keep me')"
cp "$T/app.db" "$T/app.orig"
foreign='app\.db: a SQLite database of something else \(it has a table .notes. and no bottleneck schema\): left as it is'
for cmd in "extract" "classify" "import" "merge into" "merge from" "verify"; do
    case $cmd in
    extract) run --db "$T/app.db" "$T/ds" ;;
    classify) "$CLASSIFY" --db "$T/app.db" --quiet ;;
    import) "$EXTRACT" import --db "$T/app.db" --name g --npy "$SHARED/features/googlenet/catsdogs/embeddings.npy" \
        --index "$SHARED/features/googlenet/catsdogs/index.tsv" --quiet ;;
    "merge into") "$EXTRACT" merge --db "$T/app.db" --quiet "$T/splits.db" ;;
    "merge from") "$EXTRACT" merge --db "$T/merged.db" --quiet "$T/app.db" ;;
    verify) "$EXTRACT" verify --weights "$WEIGHTS" --db "$T/app.db" --quiet "$T/ds" ;;
    esac >/dev/null 2>"$T/err"
    check_eq "another program's database, $cmd: exit 1" "$?" 1
    check_eq "another program's database, $cmd: one line" "$(wc -l <"$T/err")" 1
    check_match "another program's database, $cmd: says so" "$(cat "$T/err")" "$foreign"
    check "another program's database, $cmd: unchanged" cmp -s "$T/app.db" "$T/app.orig"
    check "another program's database, $cmd: no WAL file" [ ! -e "$T/app.db-wal" ]
done

# Weights: missing, not HDF5, truncated.
"$EXTRACT" --weights "$T/missing.h5" --db "$T/a.db" "$T/ds" 2>"$T/err"
check_eq "missing weights exit" "$?" 1
check_match "missing weights message" "$(cat "$T/err")" "missing.h5"
echo "not weights" >"$T/bad.h5"
"$EXTRACT" --weights "$T/bad.h5" --db "$T/a.db" "$T/ds" 2>"$T/err"
check_eq "bad weights exit" "$?" 1
check_match "bad weights message" "$(cat "$T/err")" "bad.h5"
check_eq "bad weights: one line" "$(wc -l <"$T/err")" 1
# No weights anywhere: the message says where it looked and suggests --download.
env -u BOTTLENECK_WEIGHTS XDG_CACHE_HOME="$T/cache" "$EXTRACT" --db "$T/a.db" "$T/ds" 2>"$T/err"
check_eq "no weights exit" "$?" 1
check_match "no weights suggests --download" "$(cat "$T/err")" "--download"

# A good run, then damage around it: nothing stored may be lost.
run --db "$T/good.db" "$T/ds"; check_eq "good run" "$?" 0
dump() { q "$T/good.db" 'SELECT path, hex(vector) FROM images JOIN vectors USING (sha256) ORDER BY path'; }
before=$(dump)

# Corrupt and undecodable images are recorded, the rest processed, exit 3.
head -c 2000 "$T/ds/train/cat/$(ls "$T/ds/train/cat" | head -n 1)" >"$T/ds/train/cat/truncated.jpg"
echo "this is not a picture" >"$T/ds/train/dog/text.png"
: >"$T/ds/validation/cat/empty.jpg"
run --db "$T/good.db" "$T/ds" 2>"$T/err"; check_eq "bad images exit" "$?" 3
check_eq "failures recorded" "$(q "$T/good.db" 'SELECT count(*) FROM failures')" 3
check_eq "failure reasons are not empty" "$(q "$T/good.db" "SELECT count(*) FROM failures WHERE length(reason) > 5")" 3
check_eq "good images kept" "$(q "$T/good.db" 'SELECT count(*) FROM images')" 4
check "stored vectors unchanged" [ "$(dump)" = "$before" ]
# Fixing a file clears its failure.
cp "$SHARED/data/catsdogs/train/dog/$(ls "$SHARED/data/catsdogs/train/dog" | sort | tail -n 1)" "$T/ds/train/dog/text.png"
run --db "$T/good.db" "$T/ds" 2>/dev/null; check_eq "still two bad" "$?" 3
check_eq "fixed file's failure removed" "$(q "$T/good.db" "SELECT count(*) FROM failures WHERE path = 'train/dog/text.png'")" 0
rm "$T/ds/train/cat/truncated.jpg" "$T/ds/validation/cat/empty.jpg" "$T/ds/train/dog/text.png"

# A read-only database: one line, exit 1, nothing lost.
cp "$T/good.db" "$T/ro.db"; q "$T/ro.db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
mkdir "$T/rodir"; cp "$T/ro.db" "$T/rodir/ro.db"; chmod 0444 "$T/rodir/ro.db"; chmod 0555 "$T/rodir"
cp "$SHARED/data/catsdogs/validation/dog/$(ls "$SHARED/data/catsdogs/validation/dog" | sort | tail -n 1)" "$T/ds/validation/dog/new.jpg"
if [ "$(id -u)" != 0 ]; then
    run --db "$T/rodir/ro.db" "$T/ds" 2>"$T/err"; check_eq "read-only db exit" "$?" 1
    check_match "read-only db message" "$(cat "$T/err")" "ro.db"
fi
chmod 0755 "$T/rodir"

# A corrupt database (random bytes): one line naming it, exit 1, file untouched.
head -c 65536 /dev/urandom >"$T/corrupt.db"
sum=$(sha256sum <"$T/corrupt.db")
run --db "$T/corrupt.db" "$T/ds" 2>"$T/err"; check_eq "corrupt db exit" "$?" 1
check_match "corrupt db message" "$(cat "$T/err")" "corrupt.db: .*(not a database|damaged)"
check_eq "corrupt db: one line" "$(wc -l <"$T/err")" 1
check_eq "corrupt db untouched" "$(sha256sum <"$T/corrupt.db")" "$sum"

# A database from a newer bottleneck is refused, not downgraded.
cp "$T/good.db" "$T/newer.db"; q "$T/newer.db" 'PRAGMA user_version = 999'
run --db "$T/newer.db" "$T/ds" 2>"$T/err"; check_eq "newer schema exit" "$?" 1
check_match "newer schema message" "$(cat "$T/err")" "newer"

finish
