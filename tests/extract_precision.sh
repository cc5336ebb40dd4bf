# extract_precision: --precision bf16 (and fast) beside fp32 in one database.
# The precision is part of the feature set: a bf16 run next to an fp32 one
# creates a second set ('.../f32/bf16', precision 'bf16', every vector's
# engine 'winograd-avx512-bf16'), leaves the fp32 vectors byte for byte, and
# is itself skipped when re-run; its vectors are the same bytes at another
# batch size and thread count; `verify` recomputes them in bf16 and demands
# equality bit for bit (a one-byte change is caught), refuses to judge them
# with the FP32 direct engine; predict computes new images' vectors in bf16.
# fp16 (on CPUs without avx512_fp16), amx (without AMX) and --self-check
# with bf16 are refused with one line. Where AMX runs and fast picks it, its
# set is checked as the bf16 one (engine, batch and thread bytes, verify). On CPUs without avx512_bf16: bf16 is refused in one line
# and fast runs fp32; a bf16 set made elsewhere is refused by verify and by
# predict on new photos, in one line each.
. "$(dirname "$0")/lib.sh"

make_dataset "$T/ds" 3 # 12 photos
DB="$T/p.db"
run() { "$EXTRACT" --weights "$WEIGHTS" --db "$DB" --size 64 --quiet "$@" "$T/ds"; }

run --batch 5 --json >"$T/fp32.json"
check_eq "fp32 extract exit" "$?" 0
check_match "fp32 json says precision" "$(cat "$T/fp32.json")" '"precision":"fp32"'

err=$(run --precision bf16 --json 2>&1 >"$T/bf16.json"); rc=$?
if [ $rc -ne 0 ] && printf '%s' "$err" | grep -q "BF16 products need"; then
    # A CPU without BF16 (or a clang build): refused in one line, and fast is fp32.
    check_eq "bf16 refused: one line" "$(printf '%s\n' "$err" | wc -l)" 1
    check_match "bf16 refused: suggests what runs here" "$err" "; use fp32 (, fp16 )?or fast$"
    if ! grep -qw avx512_fp16 /proc/cpuinfo; then
        err=$(BN_FP16_EMULATE= run --precision fp16 2>&1)
        check_match "fp16 refused too: suggests neither reduced format" "$err" "need AVX-512 with avx512_fp16 .*; use fp32 or fast$"
    fi
    out=$(run --precision fast --json)
    check_match "fast is fp32 here, skips the fp32 set" "$out" '"skipped":12.*"precision":"fp32"'
    # A bf16 set made on a CPU that has BF16 (here: the fp32 set relabelled
    # in a copy), opened on this one: verify and predict on a new photo each
    # say in one line that this CPU cannot compute it; stored images still
    # predict.
    cp "$DB" "$T/bf.db"
    q "$T/bf.db" "UPDATE featuresets SET precision = 'bf16', name = name || '/bf16'"
    err=$("$EXTRACT" verify --weights "$WEIGHTS" --db "$T/bf.db" "$T/ds" 2>&1); rc=$?
    check_eq "bf16 set, verify here: exit 1" "$rc" 1
    check_match "bf16 set, verify here: one line" "$err" "^bottleneck-extract verify: feature set '.*/bf16' was extracted in bf16, which this CPU cannot run: verify it on a CPU that can$"
    "$CLASSIFY" --db "$T/bf.db" --C 1 --quiet >/dev/null
    run_id=$(q "$T/bf.db" "SELECT final FROM sweeps")
    mkdir -p "$T/new"
    cp "$SHARED/data/catsdogs/validation/dog/$(ls "$SHARED/data/catsdogs/validation/dog" | sort | tail -n 1)" "$T/new/"
    err=$("$CLASSIFY" --db "$T/bf.db" predict --run "$run_id" --weights "$WEIGHTS" --quiet "$T/new" 2>&1); rc=$?
    check_eq "bf16 set, predict a new photo here: exit 1" "$rc" 1
    check_match "bf16 set, predict a new photo here: one line" "$err" "^bottleneck-classify: feature set '.*/bf16' was extracted in bf16, which this CPU cannot run: predict new images on a CPU that can"
    out=$("$CLASSIFY" --db "$T/bf.db" predict --run "$run_id" --quiet "$T/ds/train/cat")
    check_eq "bf16 set, stored photos predict here: exit 0" "$?" 0
    check_eq "bf16 set, stored photos predict here: 3 predictions" "$(printf '%s\n' "$out" | grep -Ec '\.jpg	(cat|dog)	[01]\.[0-9]+$')" 3
    finish
    exit
fi
check_eq "bf16 extract exit" "$rc" 0
check_match "bf16 json" "$(cat "$T/bf16.json")" '"featureset":"vgg16/block5_pool/none/64/squash/caffe/f32/bf16".*"extracted":12.*"precision":"bf16"'
check_eq "two feature sets, keyed by precision" "$(q "$DB" "SELECT group_concat(name || ':' || precision, ' ') FROM (SELECT * FROM featuresets ORDER BY id)")" \
    "vgg16/block5_pool/none/64/squash/caffe/f32:fp32 vgg16/block5_pool/none/64/squash/caffe/f32/bf16:bf16"
check_eq "bf16 vectors carry their engine" "$(q "$DB" "SELECT count(*) FROM vectors v JOIN featuresets f ON f.id = v.featureset WHERE f.precision = 'bf16' AND v.engine = 'winograd-avx512-bf16'")" 12
check_eq "fp32 vectors kept their engine" "$(q "$DB" "SELECT count(*) FROM vectors v JOIN featuresets f ON f.id = v.featureset WHERE f.precision = 'fp32' AND v.engine = 'winograd'")" 12
check_eq "bf16 vectors are not the fp32 ones" "$(q "$DB" "SELECT count(*) FROM vectors a JOIN vectors b USING (sha256) WHERE a.featureset = 1 AND b.featureset = 2 AND a.vector = b.vector")" 0

# The fp32 set, byte for byte, against a database that never saw bf16.
"$EXTRACT" --weights "$WEIGHTS" --db "$T/only32.db" --size 64 --batch 5 --quiet "$T/ds"
check_eq "fp32 vectors untouched by the bf16 run" "$(q "$DB" "SELECT count(*) FROM vectors v JOIN o.vectors w USING (sha256) WHERE v.featureset = 1 AND w.featureset = 1 AND v.vector = w.vector" -cmd "ATTACH '$T/only32.db' AS o")" 12

# Re-runs skip: bf16 again; fast (bf16 here, or fp32 if this host measured
# BF16 or FP16 below 1.3x FP32, as a loaded host can: either set is
# complete). Where vfmadd231ph runs natively and fast measured it faster
# (Intel with avx512_fp16), fast is fp16: a third set the first time, which
# verify recomputes bit for bit, then skipped.
out=$(run --precision bf16 --json)
check_match "bf16 re-run skips" "$out" '"skipped":12.*"extracted":0'
out=$(run --precision fast --json)
sets=2
if printf '%s' "$out" | grep -q '"precision":"fp16"'; then
    check "fp16 only where avx512_fp16 is" grep -qw avx512_fp16 /proc/cpuinfo
    check_match "fast is fp16 here: a third set, says why" "$out" '"featureset":"vgg16/block5_pool/none/64/squash/caffe/f32/fp16".*"extracted":12.*"precision_note":"fp16: vfmadd231ph products [0-9.]*x FP32 on this CPU'
    out=$("$EXTRACT" verify --weights "$WEIGHTS" --db "$DB" --features "vgg16/block5_pool/none/64/squash/caffe/f32/fp16" --all --json "$T/ds")
    check_match "verify fp16: all identical" "$out" '"checked":12,"identical":12,"close":0,"differ":0'
    out=$(run --precision fast --json)
    sets=3
elif printf '%s' "$out" | grep -q '"precision":"amx"'; then
    check "amx only where amx_bf16 is" grep -qw amx_bf16 /proc/cpuinfo
    check_match "fast is amx here: a third set, says why" "$out" '"featureset":"vgg16/block5_pool/none/64/squash/caffe/f32/amx".*"extracted":12.*"precision_note":"amx: AMX tdpbf16ps products [0-9.]*x FP32 on this CPU'
    out=$(run --precision fast --json)
    sets=3
fi
check_match "fast re-run skips, says why" "$out" '"skipped":12.*"extracted":0.*"precision_note":"(bf16|fp16|fp32|amx): (vdpbf16ps|vfmadd231ph|AMX tdpbf16ps) products'
check_eq "no other feature set" "$(q "$DB" "SELECT count(*) FROM featuresets")" "$sets"
# bf16 asked with the direct engine: nothing runs in BF16, so the fp32 set
# (all skipped) and a note that says so.
out=$(run --precision bf16 --conv direct --json)
check_match "bf16 with --conv direct is fp32, says why" "$out" '"skipped":12.*"extracted":0.*"precision":"fp32".*"precision_note":"fp32: no layer runs in reduced precision here'

# Deterministic: another batch size and thread count, same bytes.
"$EXTRACT" --weights "$WEIGHTS" --db "$T/b3.db" --size 64 --batch 3 --threads 1 --precision bf16 --quiet "$T/ds"
check_eq "bf16 at batch 3, 1 thread: same bytes" "$(q "$DB" "SELECT count(*) FROM vectors v JOIN o.vectors w USING (sha256) WHERE v.featureset = 2 AND v.vector = w.vector" -cmd "ATTACH '$T/b3.db' AS o")" 12

# verify recomputes in bf16, bitwise.
BF="vgg16/block5_pool/none/64/squash/caffe/f32/bf16"
out=$("$EXTRACT" verify --weights "$WEIGHTS" --db "$DB" --features "$BF" --all --json "$T/ds"); rc=$?
check_eq "verify bf16 exit" "$rc" 0
check_match "verify bf16: all identical" "$out" '"checked":12,"identical":12,"close":0,"differ":0'
z=$(q "$DB" "SELECT sha256 FROM vectors WHERE featureset = 2 ORDER BY sha256 LIMIT 1 OFFSET 4")
q "$DB" "UPDATE vectors SET vector = CASE WHEN substr(vector, 1, 1) = x'00' THEN x'01' ELSE x'00' END || substr(vector, 2) WHERE featureset = 2 AND sha256 = '$z'"
out=$("$EXTRACT" verify --weights "$WEIGHTS" --db "$DB" --features "$BF" --all --json "$T/ds"); rc=$?
check_eq "verify finds the changed bf16 vector: exit 3" "$rc" 3
check_match "one differs" "$out" '"identical":11,"close":0,"differ":1'
err=$("$EXTRACT" verify --weights "$WEIGHTS" --db "$DB" --features "$BF" --all --conv direct "$T/ds" 2>&1); rc=$?
check_eq "verify bf16 with the direct engine refused" "$rc" 1
check_match "says why, naming the set" "$err" "^bottleneck-extract verify: feature set '$BF' was extracted in bf16: verify it with --conv auto or winograd"

# AMX tiles (Intel Xeons from Sapphire Rapids on), asked for by name
# whatever fast chose: a set of its own in a fresh database, the same bytes
# at another batch and thread count, verified bit for bit, close to the
# bf16 set (the same rounded values, the FP32 sums rounded otherwise) but
# not the same bytes.
if grep -qw amx_bf16 /proc/cpuinfo; then
    AM="vgg16/block5_pool/none/64/squash/caffe/f32/amx"
    out=$("$EXTRACT" --weights "$WEIGHTS" --db "$T/a8.db" --size 64 --precision amx --json --quiet "$T/ds")
    check_match "amx: its own set, says why" "$out" "\"featureset\":\"$AM\".*\"extracted\":12.*\"precision\":\"amx\".*\"precision_note\":\"amx: AMX tdpbf16ps products \(as asked\)"
    check_eq "amx vectors carry their engine" "$(q "$T/a8.db" "SELECT count(*) FROM vectors v JOIN featuresets f ON f.id = v.featureset WHERE f.precision = 'amx' AND v.engine = 'winograd-amx-bf16'")" 12
    "$EXTRACT" --weights "$WEIGHTS" --db "$T/a3.db" --size 64 --batch 3 --threads 1 --precision amx --quiet "$T/ds"
    check_eq "amx at batch 3, 1 thread: same bytes" "$(q "$T/a8.db" "SELECT count(*) FROM vectors v JOIN o.vectors w USING (sha256) WHERE v.vector = w.vector" -cmd "ATTACH '$T/a3.db' AS o")" 12
    check_eq "amx vectors are not the bf16 ones" "$(q "$T/a8.db" "SELECT count(*) FROM vectors v JOIN o.vectors w USING (sha256) WHERE w.featureset = 2 AND v.vector = w.vector" -cmd "ATTACH '$DB' AS o")" 0
    out=$("$EXTRACT" verify --weights "$WEIGHTS" --db "$T/a8.db" --features "$AM" --all --json "$T/ds")
    check_match "verify amx: all identical" "$out" '"checked":12,"identical":12,"close":0,"differ":0'
fi

# Refusals: one line, non-zero.
if ! grep -qw avx512_fp16 /proc/cpuinfo; then # elsewhere fp16 runs (tests/test_fp16.c)
    err=$(BN_FP16_EMULATE= run --precision fp16 2>&1); rc=$?
    check "fp16 refused without avx512_fp16" [ "$rc" -ne 0 ]
    check_match "fp16 message: suggests bf16, which runs here" "$err" "precision fp16: the FP16 products need AVX-512 with avx512_fp16.*; use fp32, bf16 or fast$"
fi
err=$(run --precision bf16 --self-check 1 2>&1); rc=$?
check "self-check with bf16 refused" [ "$rc" -ne 0 ]
check_match "self-check message" "$err" "only with --precision fp32"
err=$(run --precision half 2>&1); rc=$?
check_eq "unknown precision: usage error" "$rc" 2
if ! grep -qw amx_bf16 /proc/cpuinfo; then
    err=$(run --precision amx 2>&1); rc=$?
    check_eq "amx refused without AMX: exit 1" "$rc" 1
    check_match "amx refused: one line, says why" "$err" "precision amx: the AMX products need AMX tiles with amx_bf16.*; use fp32, bf16 or fast$"
    # an amx set made on a CPU with AMX (here: the bf16 set relabelled in a
    # copy): verify says in one line that this CPU cannot compute it
    cp "$DB" "$T/am.db"
    q "$T/am.db" "UPDATE featuresets SET precision = 'amx', name = replace(name, '/bf16', '/amx') WHERE precision = 'bf16'"
    err=$("$EXTRACT" verify --weights "$WEIGHTS" --db "$T/am.db" --features vgg16/block5_pool/none/64/squash/caffe/f32/amx "$T/ds" 2>&1); rc=$?
    check_eq "amx set, verify here: exit 1" "$rc" 1
    check_match "amx set, verify here: one line" "$err" "^bottleneck-extract verify: feature set '.*/amx' was extracted in amx, which this CPU cannot run: verify it on a CPU that can$"
fi

# predict on the bf16 set: new images are computed in bf16.
"$CLASSIFY" --db "$DB" --features "$BF" --C 1 --quiet >/dev/null
check_eq "train on bf16 features" "$?" 0
run_id=$(q "$DB" "SELECT final FROM sweeps")
mkdir -p "$T/new"
cp "$SHARED/data/catsdogs/validation/dog/$(ls "$SHARED/data/catsdogs/validation/dog" | sort | tail -n 1)" "$T/new/x.jpg"
BOTTLENECK_WEIGHTS="$WEIGHTS" "$CLASSIFY" predict --db "$DB" --run "$run_id" --quiet "$T/new/x.jpg" >/dev/null
check_eq "predict exit" "$?" 0
check_eq "the new vector is bf16, in the bf16 set" "$(q "$DB" "SELECT count(*) FROM vectors WHERE featureset = 2 AND engine = 'winograd-avx512-bf16'")" 13
check_eq "nothing added to the fp32 set" "$(q "$DB" "SELECT count(*) FROM vectors WHERE featureset = 1")" 12
finish
