#!/bin/sh
# bench/ab.sh: two builds of bench_net, run by run in turn, and the ratio of
# each pair. How a change is measured on a shared host whose speed drifts by
# 10% or more over minutes (docs/PERFORMANCE.md, "The machine, and noise"):
# one run of each build says little, ratios of runs seconds apart do.
#
#   sh bench/ab.sh BEFORE_BUILD AFTER_BUILD [ROUNDS] [bench_net options...]
#
# BEFORE_BUILD and AFTER_BUILD are build directories holding bench/bench_net
# (two worktrees, or two configurations of one). Each of ROUNDS (default 6)
# rounds runs both, `bench_net --reps 5` plus the options (default
# `--conv auto`), the order swapped every other round so that neither build
# always runs second. Prints each round's images/s (median of its reps) and
# the ratio after / before, then the median, min and max of the ratios.
# Exit status 2 on bad usage or when a run fails (its output is shown).
set -e
usage() {
    echo "usage: sh bench/ab.sh BEFORE_BUILD AFTER_BUILD [ROUNDS] [bench_net options...]" >&2
    exit 2
}
[ $# -ge 2 ] || usage
before=$1
after=$2
shift 2
rounds=6
case ${1:-} in
'' | -*) ;;
*[!0-9]* | 0) echo "bench/ab.sh: ROUNDS must be a positive number, not '$1'" >&2 && exit 2 ;;
*) rounds=$1 && shift ;;
esac
[ $# -gt 0 ] || set -- --conv auto
for b in "$before" "$after"; do
    if [ ! -x "$b/bench/bench_net" ]; then
        echo "bench/ab.sh: $b/bench/bench_net: no such program (a build with -Dbench=true?)" >&2
        exit 2
    fi
done

# images/s of one run: build $1, then bench_net's options. A failed run
# prints its output and yields nothing (the caller stops).
run() {
    b=$1
    shift
    out=$("$b/bench/bench_net" --reps 5 "$@" 2>&1) || {
        printf '%s\n' "$out" >&2
        echo "bench/ab.sh: $b/bench/bench_net failed" >&2
        return 0
    }
    printf '%s\n' "$out" | sed -n 's/^RESULT .*img_s_median=\([0-9.]*\).*/\1/p'
}

echo "before: $before"
echo "after:  $after"
echo "bench_net --reps 5 $*"
echo "| round | before img/s | after img/s | after / before |"
echo "|---:|---:|---:|---:|"
ratios=""
i=1
while [ "$i" -le "$rounds" ]; do
    if [ $((i % 2)) -eq 1 ]; then
        x=$(run "$before" "$@")
        y=$(run "$after" "$@")
    else
        y=$(run "$after" "$@")
        x=$(run "$before" "$@")
    fi
    if [ -z "$x" ] || [ -z "$y" ]; then
        echo "bench/ab.sh: round $i: no images/s from bench_net" >&2
        exit 2
    fi
    r=$(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.3f", y / x }')
    echo "| $i | $x | $y | $r |"
    ratios="$ratios $r"
    i=$((i + 1))
done
printf '%s\n' $ratios | sort -n | awk '
    { r[NR] = $1 }
    END {
        m = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
        printf "RATIO after/before median=%.3f min=%.3f max=%.3f rounds=%d\n", m, r[1], r[NR], NR
    }'
