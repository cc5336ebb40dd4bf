#!/bin/bash
# Submit a sharded extraction to Slurm: an array of N extract tasks and a
# merge that runs when all of them succeeded. Prints the two job ids.
#
#   scripts/slurm/submit.sh N DATASET_DIR OUT_DIR MERGED.db [extract options]
#
# Extra sbatch options (partition, account, time) go in $BN_SBATCH_OPTS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${1:?usage: submit.sh N DATASET_DIR OUT_DIR MERGED.db [extract options]}
dataset=${2:?}
out=${3:?}
merged=${4:?}
shift 4
# shellcheck disable=SC2086 # BN_SBATCH_OPTS is a list of options
array=$(sbatch --parsable ${BN_SBATCH_OPTS:-} --array=0-$((n - 1)) \
    "$here/extract.sbatch" "$dataset" "$out" "$@")
array=${array%%;*} # --parsable prints "id" or "id;cluster"
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${BN_SBATCH_OPTS:-} --dependency=afterok:"$array" \
    "$here/merge.sbatch" "$out" "$n" "$merged")
echo "extract array: $array; merge: ${merge%%;*}"
