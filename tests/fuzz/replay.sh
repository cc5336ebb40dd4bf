# replay.sh GEN_SEEDS REPLAY TARGET REGRESSIONS: the fuzz harness TARGET,
# linked with replay.c (no libFuzzer), run once on each generated seed and on
# each committed regression input (every input a fuzzer or a check ever
# failed on). Part of the ordinary suite, so a fixed bug stays fixed in every
# build.
#
# Fails unless every input was replayed: both folders must exist, and as many
# inputs replayed as there are files in them (replay says how many it ran).
# A harness that never failed has an empty regressions folder (a .gitkeep
# holds it in git): it must exist, and is then not handed to replay, which
# refuses a folder without inputs.
set -eu
gen=$1 replay=$2 target=$3 regressions=$4
T=$(mktemp -d "${TMPDIR:-/tmp}/bn-fuzz.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$gen" "$T"
[ -d "$T/$target" ] || { echo "gen_seeds wrote no $T/$target" >&2; exit 1; }
[ -d "$regressions" ] || { echo "no regressions folder $regressions" >&2; exit 1; }
seeds=$(find "$T/$target" -type f ! -name '.*' | wc -l)
regs=$(find "$regressions" -type f ! -name '.*' | wc -l)
if [ "$regs" -gt 0 ]; then
    TMPDIR="$T" "$replay" "$T/$target" "$regressions" >"$T/replayed.txt"
else
    TMPDIR="$T" "$replay" "$T/$target" >"$T/replayed.txt"
fi
cat "$T/replayed.txt"
got=$(awk '{ n += $2 } END { print n + 0 }' FS=': ' "$T/replayed.txt")
echo "$target: $seeds seeds + $regs regressions = $((seeds + regs)); replayed $got"
[ "$seeds" -gt 0 ] && [ "$got" = $((seeds + regs)) ]
