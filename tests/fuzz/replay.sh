# replay.sh GEN_SEEDS REPLAY TARGET REGRESSIONS: the fuzz harness TARGET,
# linked with replay.c (no libFuzzer), run once on each generated seed and on
# each committed regression input (every crash the fuzzers ever found). Part
# of the ordinary suite, so a fixed crash stays fixed in every build.
set -eu
gen=$1 replay=$2 target=$3 regressions=$4
T=$(mktemp -d "${TMPDIR:-/tmp}/bn-fuzz.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$gen" "$T"
TMPDIR="$T" "$replay" "$T/$target" "$regressions"
