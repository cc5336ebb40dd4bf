#!/bin/bash
# A sharded extraction over ssh hosts with GNU parallel, then the merge.
#
#   scripts/parallel/extract.sh N DATASET_DIR OUT_DIR MERGED.db [extract options]
#
# Runs the N shards (bottleneck-extract --shard K/N) as N jobs of GNU
# parallel, one at a time per host, writing OUT_DIR/shard-K-of-N.db, then
# merges them with --expect N. Without $BN_PARALLEL_OPTS the jobs run here
# (-j 1); with BN_PARALLEL_OPTS="--sshloginfile hosts.txt" (one ssh login
# per line, "2/host" for 2 jobs on host) they run on those hosts, which must
# have bottleneck-extract on their PATH (or $BOTTLENECK_EXTRACT) and see
# DATASET_DIR and OUT_DIR at the same paths (NFS, ...). Running the same
# command again resumes the unfinished shards and merges again (idempotent).
set -euo pipefail
n=${1:?usage: extract.sh N DATASET_DIR OUT_DIR MERGED.db [extract options]}
dataset=${2:?}
out=${3:?}
merged=${4:?}
shift 4
extract=${BOTTLENECK_EXTRACT:-bottleneck-extract}
mkdir -p "$out"
# Exit status 3 (some images failed to decode, recorded in the shard) is a
# finished shard; anything else stops the recipe before the merge.
# shellcheck disable=SC2086 # BN_PARALLEL_OPTS is a list of options
seq 1 "$n" | parallel --will-cite --halt now,fail=1 -j 1 ${BN_PARALLEL_OPTS:-} \
    "$extract --shard {}/$n --db $(printf %q "$out")/shard-{}-of-$n.db --quiet $(printf '%q ' "$@")$(printf %q "$dataset") || [ \$? = 3 ]"
shards=()
for k in $(seq 1 "$n"); do shards+=("$out/shard-$k-of-$n.db"); done
exec "$extract" merge --db "$merged" --expect "$n" "${shards[@]}"
