# Memory errors and leaks (issue 6): a full small extract (two photos, one
# damaged file, size 32), a classify train and a classify predict, each under
# valgrind's memcheck: no invalid access, no use of uninitialised memory, no
# block definitely lost. Also the early error paths (a damaged weights file, a
# corrupt database). Skipped without valgrind and in sanitizer builds (which
# check the same things their own way).
#
# Which convolution code this checks: valgrind cannot execute AVX-512 and
# hides it from CPUID, but runs AVX2 and FMA where the CPU has them. So under
# valgrind the default engine (auto) is the AVX2 build of the small and
# Winograd engines on such CPUs (the direct one elsewhere). Run here, each on
# a partial batch (two photos in a network built for three): --conv direct,
# the default, and the portable Winograd build (BN_WINOGRAD_ISA=portable).
# The AVX-512 kernels are never checked by valgrind: the ASan suite runs them
# (docs/RELIABILITY.md). tests/engine_probe asks the library what it runs,
# under valgrind, and this test fails if that is not what it claims.
. "$(dirname "$0")/lib.sh"

command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 77; }
if ldd "$EXTRACT" 2>/dev/null | grep -q -e libasan -e libubsan; then
    echo "sanitizer build: valgrind does not apply"
    exit 77
fi
# One thread (valgrind runs threads one at a time; OpenBLAS would spin), and
# no re-exec for faster OpenBLAS kernels (valgrind would not follow it).
# For the same reason predict runs in bottleneck-classify-images directly
# (bottleneck-classify execs it: classify/forward.c).
export OPENBLAS_NUM_THREADS=1 BN_NO_REEXEC=1
vg() { # vg NAME CMD...: run CMD under memcheck; its report goes to $T/NAME.vg
    local name=$1
    shift
    valgrind -q --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
        --error-exitcode=99 --log-file="$T/$name.vg" "$@"
}
clean() { # clean NAME: the report is empty
    if [ -s "$T/$1.vg" ]; then
        head -n 40 "$T/$1.vg" >&2
        return 1
    fi
}

for cls in cat dog; do
    mkdir -p "$T/ds/train/$cls"
    cp "$SHARED/data/catsdogs/train/$cls/$(ls "$SHARED/data/catsdogs/train/$cls" | sort | head -n 1)" "$T/ds/train/$cls/"
done
head -c 3000 "$T/ds/train/cat/"*.jpg >"$T/ds/train/dog/truncated.jpg"
DB="$T/v.db"

# What this test claims to run under valgrind, and what really runs there.
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    CLAIM="auto=winograd winograd=winograd build=avx2"
    AUTO='^winograd$'
else
    CLAIM="auto=direct winograd=winograd-portable build=portable"
    AUTO='^direct\+openblas-[a-z0-9]+$' # the direct engine's vectors name OpenBLAS' kernels
fi
probe=$(valgrind -q "$BN_BUILD_DIR/tests/engine_probe")
echo "engines: natively $("$BN_BUILD_DIR/tests/engine_probe"); under valgrind $probe"
check_eq "under valgrind the code checked is: $CLAIM" "$probe" "$CLAIM"

vg extract "$EXTRACT" --weights "$WEIGHTS" --size 32 --batch 3 --threads 1 --conv direct --quiet \
    --db "$DB" "$T/ds"
check_eq "extract under valgrind: exit (one input failed)" "$?" 3
check "extract: no memory error, no leak" clean extract
check_eq "extract stored the photos" "$(q "$DB" 'SELECT count(*) FROM embeddings')" 2
check_match "their vectors record the engine that ran under valgrind" \
    "$(q "$DB" 'SELECT group_concat(DISTINCT engine) FROM vectors')" '^direct\+openblas-[a-z0-9]+$'
# The default engine and the portable Winograd build, on the same partial
# batch; their vectors equal the direct engine's to float rounding (the same
# photos, other databases).
vg auto "$EXTRACT" --weights "$WEIGHTS" --size 32 --batch 3 --threads 1 --quiet --db "$T/a.db" "$T/ds"
check_eq "extract (auto) under valgrind: exit (one input failed)" "$?" 3
check "extract (auto): no memory error, no leak" clean auto
check_match "its vectors record $AUTO" \
    "$(q "$T/a.db" 'SELECT group_concat(DISTINCT engine) FROM vectors')" "$AUTO"
BN_WINOGRAD_ISA=portable vg winograd "$EXTRACT" --weights "$WEIGHTS" --size 32 --batch 3 --threads 1 \
    --conv winograd --quiet --db "$T/w.db" "$T/ds"
check_eq "extract --conv winograd (portable) under valgrind: exit (one input failed)" "$?" 3
check "extract --conv winograd (portable): no memory error, no leak" clean winograd
check_eq "--conv winograd vectors record the portable build" \
    "$(q "$T/w.db" 'SELECT group_concat(DISTINCT engine) FROM vectors')" winograd-portable
for other in a w; do
    check_eq "$other.db's vectors = direct ones (rel L2 <= 1e-5)" \
        "$(q "$DB" ".load ${BN_BUILD_DIR:?}/ext/bottleneck_vec" "ATTACH '$T/$other.db' AS o" \
            "SELECT count(*) FROM main.embeddings a JOIN o.embeddings b USING (path)
             WHERE vec_distance_l2(a.vector, b.vector) <= 1e-5 * sqrt(vec_dot(a.vector, a.vector))")" 2
done

vg train "$CLASSIFY" --db "$DB" --valid none --test none --quiet
check_eq "classify train under valgrind: exit" "$?" 0
check "classify train: no memory error, no leak" clean train
run=$(q "$DB" 'SELECT final FROM sweeps ORDER BY id DESC LIMIT 1')
vg predict "${BN_CLASSIFY_IMAGES:?}" predict --db "$DB" --run "$run" --split train --quiet
check_eq "classify predict under valgrind: exit" "$?" 0
check "classify predict: no memory error, no leak" clean predict
check_eq "predictions stored" "$(q "$DB" "SELECT count(*) FROM predictions WHERE run = $run")" 2

# Error paths free what they allocated too.
head -c 20000 "$WEIGHTS" >"$T/truncated.h5"
vg badweights "$EXTRACT" --weights "$T/truncated.h5" --size 32 --quiet --db "$DB" "$T/ds" 2>/dev/null
check_eq "truncated weights: exit" "$?" 1
check "truncated weights: no memory error, no leak" clean badweights
head -c 8192 /dev/urandom >"$T/corrupt.db"
vg baddb "$EXTRACT" --weights "$WEIGHTS" --size 32 --quiet --db "$T/corrupt.db" "$T/ds" 2>/dev/null
check_eq "corrupt database: exit" "$?" 1
check "corrupt database: no memory error, no leak" clean baddb
finish
