#!/usr/bin/env bash
# Train within a time slice, resuming where the last slice stopped: for machines whose jobs
# are limited in time (the GPU servers here: 10 minutes a command; SLURM queues).
#
#   bash tools/recipes/train_in_slices.sh CONFIG WORK_DIR SECONDS [extra tools/train.py args]
#
# Runs tools/train.py with --resume (the newest checkpoint in WORK_DIR, else the config's
# load_from, else from scratch) and stops it after SECONDS. Exit 0: training finished;
# exit 3: the slice ended first, run the same command again. Save checkpoints often enough that a slice loses little, e.g.
# --cfg-options default_hooks.checkpoint.interval=25.
set -uo pipefail
config=$1
work=$2
seconds=$3
shift 3
python=${PYTHON:-python3}
amp=${AMP---amp bf16}  # AMP= (empty) trains in float32, e.g. on a CPU
mkdir -p "$work"
began=$(date +%s)
timeout --signal=TERM --kill-after=20 "$seconds" \
  $python tools/train.py "$config" --work-dir "$work" $amp --resume "$@" >> "$work/train.log" 2>&1
status=$?
elapsed=$(( $(date +%s) - began ))
# 137 is also what a process killed for memory returns: only a slice that used its time is
# over; an earlier kill is a failure, not a reason to run again.
if { [ $status -eq 124 ] || [ $status -eq 137 ]; } && [ $elapsed -ge "$seconds" ]; then
  echo "slice over after ${seconds} s at $(grep -o 'Iter(train) \[ *[0-9]*/[0-9]*\]' "$work/train.log" | tail -1); run again to resume"
  exit 3
fi
if [ $status -eq 137 ]; then
  echo "train_in_slices.sh: tools/train.py was killed after ${elapsed} s of its ${seconds} (out of memory?); its log: $work/train.log" >&2
  exit $status
fi
if [ $status -ne 0 ]; then
  tail -40 "$work/train.log"
  exit $status
fi
echo "training finished: $(cat "$work/last_checkpoint")"
