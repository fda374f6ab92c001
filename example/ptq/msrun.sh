#!/usr/bin/env bash
# Launch an example script under MindSpore's msrun with WORKERS workers on this host.
#   WORKERS=1 bash example/ptq/msrun.sh example/ptq/quant_ckpt.py --approach a8w8c8
# A free master port is picked unless MASTER_PORT is set; on failure the failing workers' log tails are
# printed and the exit status is non-zero.
set -euo pipefail
WORKERS=${WORKERS:-1}
SCRIPT=${1:?usage: msrun.sh SCRIPT [ARGS...]}
shift
PYTHON=${PYTHON:-python}
PORT=${MASTER_PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
LOG_DIR=${LOG_DIR:-outputs/msrun_log/$(basename "$SCRIPT" .py)_$PORT}
mkdir -p "$LOG_DIR"
status=0
msrun --worker_num="$WORKERS" --local_worker_num="$WORKERS" --master_port="$PORT" --log_dir="$LOG_DIR" \
      --join=True --cluster_time_out=300 "$SCRIPT" "$@" || status=$?
# msrun can exit 0 when the scheduler gave up on workers (e.g. heartbeat timeouts): check every log
failed=$(grep -l "Traceback" "$LOG_DIR"/worker_*.log "$LOG_DIR"/scheduler.log 2>/dev/null || true)
if [ "$status" -ne 0 ] || [ -n "$failed" ]; then
  for log in ${failed:-"$LOG_DIR"/worker_*.log}; do
    echo "==== $log (last 40 lines) ====" >&2
    tail -n 40 "$log" >&2
  done
  exit $(( status == 0 ? 1 : status ))
fi
cat "$LOG_DIR"/worker_0.log | grep -vE "^\[WARNING\]|INFO" | tail -n 20
