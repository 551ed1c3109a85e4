#!/usr/bin/env bash
# A one-node SLURM cluster on this machine (slurmctld + slurmd on localhost, munge auth),
# for the SLURM sweep test (tests/cluster/) and for trying hydra/launcher=slurm by hand.
#
#   scripts/slurm_local.sh start [DIR]   # write DIR/slurm.conf, start munged, slurmctld, slurmd
#   scripts/slurm_local.sh stop  [DIR]   # stop what start started (by the pid files in DIR)
#   scripts/slurm_local.sh env   [DIR]   # print `export SLURM_CONF=...` for sbatch/squeue/sacct
#
# DIR defaults to /tmp/slim-slurm. Needs root (slurmd runs jobs as their submitting user)
# and Debian's slurm-wlm + munge (`.ci/run` installs them). Works in a container without
# cgroups: processes are tracked with proctrack/linuxproc, no task plugin, no slurmdbd
# (accounting_storage/none; finished jobs are written to DIR/jobcomp.txt by jobcomp/filetxt
# and stay visible to `scontrol show job` / `squeue -t all` for MinJobAge seconds).
# Ports 16817/16818 (SLIM_SLURM_PORT) so a real cluster's daemons on 6817/6818 are not
# disturbed; SLIM_SLURM_CPUS / SLIM_SLURM_MEM_MB size the node.
set -euo pipefail
cmd="${1:-}"
D="$(realpath -m "${2:-${SLIM_SLURM_DIR:-/tmp/slim-slurm}}")"
CPUS="${SLIM_SLURM_CPUS:-2}"
MEM_MB="${SLIM_SLURM_MEM_MB:-8192}"
PORT="${SLIM_SLURM_PORT:-16817}"   # slurmctld; slurmd gets PORT+1
NODE="$(hostname -s)"

die() { echo "slurm_local: $*" >&2; exit 1; }

start() {
  [ "$(id -u)" = 0 ] || die "needs root (slurmd must run as root to start jobs)"
  for b in munged slurmctld slurmd sbatch; do
    command -v "$b" >/dev/null || die "$b not found: apt-get install slurm-wlm munge"
  done
  mkdir -p "$D"/{state,spool,munge,log}
  chmod 755 "$D"
  # munge: own key, socket and pid in DIR so a system munged is left alone
  if [ ! -s "$D/munge/munge.key" ]; then
    dd if=/dev/urandom of="$D/munge/munge.key" bs=1 count=128 status=none
  fi
  chmod 700 "$D/munge"; chmod 400 "$D/munge/munge.key"
  cat > "$D/slurm.conf" <<CONF
ClusterName=slimlocal
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
KillWait=10
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/jobcomp.txt
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$D/slurm.conf"
  munged --key-file="$D/munge/munge.key" --socket="$D/munge/munge.socket" \
         --pid-file="$D/munge/munged.pid" --log-file="$D/log/munged.log" \
         --seed-file="$D/munge/munged.seed" --force
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 60); do
    if sinfo -h -N -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; then
      echo "slurm_local: up ($D/slurm.conf, node $NODE, $CPUS CPUs, $MEM_MB MB)"
      return 0
    fi
    sleep 1
  done
  sinfo -N -l >&2 || true
  tail -20 "$D/log/slurmctld.log" "$D/log/slurmd.log" >&2 || true
  die "node did not become idle in 60 s (logs in $D/log)"
}

stop() {
  # jobs still queued or running on this private cluster (a failed or timed-out test)
  [ -f "$D/slurm.conf" ] && SLURM_CONF="$D/slurm.conf" timeout 20 scancel --partition=debug \
    2>/dev/null || true
  for f in "$D/slurmd.pid" "$D/slurmctld.pid" "$D/munge/munged.pid"; do
    [ -s "$f" ] || continue
    pid="$(cat "$f")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    rm -f "$f"
  done
  echo "slurm_local: stopped ($D)"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$D/slurm.conf" ;;
  *) die "usage: $0 start|stop|env [DIR]" ;;
esac
