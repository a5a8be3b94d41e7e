#!/usr/bin/env bash
# Starts `python -m jreid.main` as one or more processes on this host, alone or
# as one node of a multi-host job (jax.distributed; see jreid/train/distributed.py).
#
#   ./launch.sh [options] [--] [arguments for jreid.main]
#
#   --nproc N             processes on this host (default 1: one process drives
#                         every local device); with N > 1 process i drives
#                         local device i (one per GPU is the recommended way:
#                         benchmarks/TRAIN_STEP.md)
#   --nnodes M            hosts in the job (default 1)
#   --node_rank R         this host's index, 0..M-1 (default 0)
#   --coordinator H:P     address of rank 0's host and a free port on it
#                         (default for one host: 127.0.0.1 and a free port)
#   --cpu_devices K       run on the CPU with K devices per process (testing)
#   --module M            run `python -m M` instead of jreid.main
#   --log_dir DIR         write the output of local processes 1..N-1 to
#                         DIR/rank<R>.log (default: all to this terminal)
#
# Environment: PYTHON (default python3). On SLURM (srun) and on Cloud TPU VMs
# run one `./launch.sh` per host or task without options: jreid.main finds the
# job from the environment.
set -euo pipefail

nproc=1 nnodes=1 node_rank=0 coordinator="" cpu_devices="" module=jreid.main log_dir=""
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nproc) nproc="$2"; shift 2 ;;
    --nnodes) nnodes="$2"; shift 2 ;;
    --node_rank) node_rank="$2"; shift 2 ;;
    --coordinator) coordinator="$2"; shift 2 ;;
    --cpu_devices) cpu_devices="$2"; shift 2 ;;
    --module) module="$2"; shift 2 ;;
    --log_dir) log_dir="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
python="${PYTHON:-python3}"

if [[ -n "$cpu_devices" ]]; then
  export JAX_PLATFORMS=cpu
  export XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=$cpu_devices"
fi

if (( nproc * nnodes == 1 )); then
  exec "$python" -m "$module" "$@"
fi

if [[ -z "$coordinator" ]]; then
  if (( nnodes > 1 )); then
    echo "launch.sh: --coordinator HOST:PORT (rank 0's host) is required with --nnodes $nnodes" >&2
    exit 2
  fi
  port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  coordinator="127.0.0.1:$port"
fi
[[ -n "$log_dir" ]] && mkdir -p "$log_dir"

pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap 'stop; exit 130' INT TERM

for (( local_rank = 0; local_rank < nproc; local_rank++ )); do
  rank=$(( node_rank * nproc + local_rank ))
  export MASTER_ADDR="${coordinator%:*}" MASTER_PORT="${coordinator##*:}" WORLD_SIZE=$(( nnodes * nproc ))
  export RANK=$rank LOCAL_RANK=$local_rank LOCAL_WORLD_SIZE=$nproc
  if [[ -n "$log_dir" && $local_rank -gt 0 ]]; then
    "$python" -m "$module" "$@" >"$log_dir/rank$rank.log" 2>&1 &
  else
    "$python" -m "$module" "$@" &
  fi
  pids+=($!)
done

# The first process to fail stops the others; the exit status is the first failure's.
status=0
for (( left = ${#pids[@]}; left > 0; left-- )); do
  code=0
  wait -n || code=$?
  if (( code != 0 && status == 0 )); then
    status=$code
    echo "launch.sh: a process exited with status $code; stopping the others" >&2
    stop
  fi
done
exit "$status"
