# Sharded extraction on a real Slurm cluster: a single-node cluster on
# localhost (munged, slurmctld, slurmd; its own slurm.conf and munge key in a
# temporary folder), scripts/slurm/submit.sh submits the array of 3 extract
# tasks and the dependent merge with sbatch, and the merged database must
# equal one run over the whole dataset (images, labels, splits, vectors bit
# for bit). Every daemon started here is stopped by its pid, also on failure.
# Skipped (77) without root or without slurm-wlm and munge (.ci/packages.txt).
. "$(dirname "$0")/lib.sh"

for p in munged mungekey slurmctld slurmd sbatch scontrol; do
    command -v "$p" >/dev/null 2>&1 || [ -x "/usr/sbin/$p" ] || { echo "no $p: skipped"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "slurmd runs jobs as root here: skipped without root"; exit 77; }
PATH=$PATH:/usr/sbin
D="$T/slurm"
mkdir -p "$D/state" "$D/spool" "$D/work"
stop_daemons() {
    for f in "$D/slurmd.pid" "$D/slurmctld.pid" "$D/munged.pid"; do
        [ -s "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$pid" 2>/dev/null
    done
}
trap 'stop_daemons; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

make_dataset "$T/ds" 3 # 12 photos
"$EXTRACT" --weights "$WEIGHTS" --size 64 --quiet --db "$T/one.db" "$T/ds"
check_eq "single run" "$?" 0

host=$(hostname -s)
# Ports from the pid, away from the defaults (6817/6818) of a real cluster.
base=$((20000 + $$ % 20000))
mungekey -c -k "$D/munge.key" >/dev/null 2>&1 || dd if=/dev/urandom of="$D/munge.key" bs=1024 count=1 2>/dev/null
chmod 600 "$D/munge.key"
munged --key-file "$D/munge.key" --socket "$D/munge.sock" --pid-file "$D/munged.pid" \
    --log-file "$D/munged.log" --seed-file "$D/munged.seed" --force
check_eq "munged started" "$?" 0
cat >"$D/slurm.conf" <<CONF
ClusterName=bntest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/munge.sock
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$D/slurm.conf"
slurmctld -c
check_eq "slurmctld started" "$?" 0
slurmd -c
check_eq "slurmd started" "$?" 0
# The node registers within a few seconds.
i=0
until sinfo -h -o %t 2>/dev/null | grep -Eq '^idle'; do
    i=$((i + 1))
    [ $i -gt 60 ] && break
    sleep 0.5
done
check_eq "node idle" "$(sinfo -h -o %t 2>/dev/null | head -n 1)" idle

cd "$D/work" || exit 1
export BOTTLENECK_EXTRACT="$EXTRACT"
out=$(bash "$BN_SOURCE_DIR/scripts/slurm/submit.sh" 3 "$T/ds" "$T/shards" "$T/merged.db" \
    --weights "$WEIGHTS" --size 64 --batch 3 --quiet)
check_eq "submit" "$?" 0
merge_id=$(echo "$out" | sed -n 's/.*merge: \([0-9]*\).*/\1/p')
array_id=$(echo "$out" | sed -n 's/extract array: \([0-9]*\);.*/\1/p')
state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort -u | tr '\n' ' ' | sed 's/ $//'; }
i=0
while :; do
    s=$(state "$merge_id")
    case "$s" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
    i=$((i + 1))
    [ $i -gt 240 ] && break # 2 minutes
    sleep 0.5
done
check_eq "array tasks completed" "$(state "$array_id")" COMPLETED
check_eq "merge job completed" "$(state "$merge_id")" COMPLETED
check_eq "three shard databases" "$(ls "$T/shards" | grep -c '^shard-[123]-of-3.db$')" 3
dump() {
    q "$1" "SELECT i.path, i.label, coalesce(i.split, ''), i.sha256, f.name, hex(v.vector), v.engine
            FROM images i JOIN vectors v USING (sha256) JOIN featuresets f ON f.id = v.featureset
            ORDER BY i.path, f.name"
}
check_eq "merged rows" "$(q "$T/merged.db" 'SELECT count(*) FROM embeddings' 2>/dev/null)" 12
check_eq "merged = one run" "$(dump "$T/merged.db" 2>/dev/null | md5sum)" "$(dump "$T/one.db" | md5sum)"
if [ "$FAIL" -gt 0 ]; then
    for f in "$D"/*.log "$D"/work/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 15 "$f"; }; done
fi
finish
