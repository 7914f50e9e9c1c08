#!/usr/bin/env bash
# Train a config for as many iterations as fit in a time budget, then test and publish it.
#
#   bash tools/recipes/budgeted_train.sh CONFIG WORK_DIR SECONDS [extra tools/train.py args]
#
# A 40-iteration probe measures the time per iteration on this machine; the real run then
# gets max_iters = (SECONDS - 2 x probe) / time per iteration (in hundreds), a warm-up of a
# tenth of that (at most 200), the cosine schedule ending at the last iteration, and
# validation and the checkpoint at the end. Used for the accuracy
# recipe on the GPU machines, whose commands are limited to 10 minutes.
set -euo pipefail
config=$1
work=$2
budget=$3
shift 3
python=${PYTHON:-python3}
amp=${AMP---amp bf16}  # AMP= (empty) trains in float32, e.g. on a CPU
start=$(date +%s)
mkdir -p "$work"
$python tools/train.py "$config" --work-dir "$work/probe" $amp \
  --cfg-options train_cfg.max_iters=40 train_cfg.val_interval=100000 \
  default_hooks.logger.interval=10 default_hooks.checkpoint.interval=100000 "$@" > "$work/probe.log" 2>&1 \
  || { tail -40 "$work/probe.log"; exit 1; }
per_iter=$(grep -o 'Iter(train) \[[ 0-9]*/40\].* time: [0-9.]*' "$work/probe.log" | tail -1 | sed 's/.* time: //')
spent=$(( $(date +%s) - start ))
iters=$($python -c "print(max(100, int(($budget - 2 * $spent) / $per_iter) // 100 * 100))")
warmup=$(( iters / 10 < 200 ? iters / 10 : 200 ))
echo "probe: ${per_iter} s/iteration, ${spent} s; training ${iters} iterations (${warmup} warm-up)"
$python tools/train.py "$config" --work-dir "$work" $amp \
  --cfg-options train_cfg.max_iters=$iters train_cfg.val_interval=$iters \
  param_scheduler.0.end=$warmup param_scheduler.1.begin=$warmup param_scheduler.1.end=$iters \
  default_hooks.checkpoint.interval=$iters "$@"
last=$(cat "$work/last_checkpoint")
$python tools/model_converters/publish_model.py "$last" "$work/release/$(basename "$config" .py).pth" --fp16
