# run.sh BUILD SEEDS SECONDS: run the libFuzzer harnesses of a -Dfuzz=true
# build (BUILD/tests/fuzz/fuzz_*), all five at once for SECONDS, from the
# seeds gen_seeds wrote to SEEDS, and print one line per harness:
#
#   fuzz_NAME ok|FAIL EXECUTIONS [what was found]
#
# Exit status 1 if a harness found a bug in our code. Inputs that made a
# harness fail are kept in BUILD/fuzz-artifacts/ (add each to
# tests/fuzz/regressions/NAME/ once fixed: the suite replays them).
#
# fuzz_npy, fuzz_vec and fuzz_onnx run the code under test only: any crash, hang,
# sanitizer report or leak is ours and fails. So does fuzz_exif's: it runs
# libexif too, but only on blocks our reader accepted, as the oracle. fuzz_weights runs libhdf5
# underneath, which is neither ours nor instrumented and has bugs of its own
# on crafted files (loops in its global heap reader, out-of-bounds reads in
# its object header decoder): it runs in fork mode, which goes on after a
# crash, a hang or running out of memory; afterwards each input that crashed,
# hung or ran out of memory is replayed (libFuzzer prints the stack of a
# timeout and of a malloc past its limit too) and counted as libhdf5's when
# the innermost frame of the report that is libhdf5's or ours is libhdf5's,
# and as ours (a failure) otherwise: a hang or an out-of-memory whose stack
# does not show libhdf5 at work fails like a crash.
set -u
build=$1 seeds=$2 seconds=$3
src=$(cd "$(dirname "$0")" && pwd)
art="$build/fuzz-artifacts"
mkdir -p "$art"
# The harnesses' input files (one per process; crashed ones stay behind), in
# memory when we can: a file rewritten a million times.
if [ -w /dev/shm ]; then
    TMPDIR=$(mktemp -d /dev/shm/bn-fuzz.XXXXXX)
else
    TMPDIR=$(mktemp -d "$build/fuzz-tmp.XXXXXX")
fi
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
export ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=2048:detect_leaks=1
export LSAN_OPTIONS="print_suppressions=0:suppressions=$src/lsan.supp"
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0

# executions LOG: the last count libFuzzer printed.
executions() {
    sed -n 's/^stat::number_of_executed_units: *//p; s/^#\([0-9]*\): cov.*/\1/p' "$1" | tail -n 1
}

# whose INPUT: "libhdf5" if, in the report of replaying INPUT, the innermost
# frame that is either libhdf5's or ours (common/, tests/fuzz/) is libhdf5's;
# else "ours". (Frames of the sanitizer runtime and libc come first, and are
# neither.)
# "none" if the replay ran to its end with no report at all: an input that
# timed out only because the machine was loaded (five harnesses on two cores)
# and finishes on replay is slow, not a hang (seen: 4-5 s inside libhdf5's
# variable-length string conversion, where the 5-s limit caught it once).
whose() {
    out=$("$build/tests/fuzz/fuzz_weights" -timeout=5 -rss_limit_mb=3072 -malloc_limit_mb=2048 \
        "$1" 2>&1) && ! printf '%s\n' "$out" | grep -q -E 'ERROR|runtime error|ALARM' &&
        { echo none; return; }
    printf '%s\n' "$out" | grep -E '^ *#[0-9]+ ' |
        grep -E 'libhdf5|(/common/|/tests/fuzz/)[A-Za-z0-9_]+\.c:' | head -n 1 | grep -q 'libhdf5' &&
        echo libhdf5 || echo ours
}

# The five at once (the machine's cores share them), then their verdicts.
for name in npy vec weights onnx exif; do
    corpus="$build/fuzz-corpus/$name"
    mkdir -p "$corpus"
    case $name in
    npy | onnx | exif) flags="-timeout=10" ;;
    vec) flags="-timeout=10 -max_len=4096" ;;
    weights) flags="-timeout=5 -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1" ;;
    esac
    # shellcheck disable=SC2086
    (
        "$build/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -rss_limit_mb=3072 \
            -print_final_stats=1 -artifact_prefix="$art/$name-" $flags "$corpus" "$seeds/$name" \
            >"$build/fuzz-$name.log" 2>&1
        echo $? >"$build/fuzz-$name.rc"
    ) &
done
wait

for name in npy vec weights onnx exif; do
    exe="$build/tests/fuzz/fuzz_$name"
    log="$build/fuzz-$name.log"
    rc=$(cat "$build/fuzz-$name.rc")
    n=$(executions "$log")
    if [ "$name" != weights ]; then
        if [ "$rc" = 0 ]; then
            echo "fuzz_$name ok ${n:-0}"
        else
            echo "fuzz_$name FAIL ${n:-0} (see $log)"
            grep -E -A 25 'ERROR|runtime error|SUMMARY' "$log" | head -n 40 >&2
            status=1
        fi
        continue
    fi
    ours=0 lib=0 hangs=0 ooms=0 slow=0
    for f in "$art"/weights-*; do
        [ -e "$f" ] || continue
        case $(basename "$f") in
        weights-timeout-*) kind="hang" ;;
        weights-oom-*) kind="out of memory" ;;
        *) kind="crash" ;;
        esac
        who=$(whose "$f")
        if [ "$who" = none ]; then
            slow=$((slow + 1))
            echo "fuzz_weights: $(basename "$f") ($kind under load) finishes on replay: slow, not a hang" >&2
        elif [ "$who" = libhdf5 ]; then
            case $kind in
            hang) hangs=$((hangs + 1)) ;;
            "out of memory") ooms=$((ooms + 1)) ;;
            *) lib=$((lib + 1)) ;;
            esac
        else
            ours=$((ours + 1))
            echo "our bug ($kind), input $f:" >&2
            "$exe" -timeout=5 -malloc_limit_mb=2048 "$f" 2>&1 |
                grep -E -A 25 'ERROR|runtime error|ALARM' | head -n 40 >&2
        fi
    done
    found="in libhdf5: $lib crashing inputs, $hangs hangs, $ooms out of memory; $slow slow inputs that finish on replay"
    # In fork mode libFuzzer exits 1 after ignored crashes: judge by the
    # inputs, but a failure with nothing found (no binary, bad flags) fails.
    if [ "$ours" = 0 ] && { [ "$rc" = 0 ] || [ $((lib + hangs + ooms + slow)) -gt 0 ]; }; then
        echo "fuzz_$name ok ${n:-0} ($found)"
    else
        echo "fuzz_$name FAIL ${n:-0} ($ours inputs crash, hang or run out of memory in our code; $found; see $log)"
        status=1
    fi
done
exit $status
