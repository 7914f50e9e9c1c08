#!/usr/bin/env bash
# Train, test and publish a config on the synthetic recipe's scenes (one GPU).
#
#   bash tools/recipes/synthetic_scenes.sh               # once: data/synthetic
#   bash tools/recipes/train_synthetic.sh CONFIG WORK_DIR [extra tools/train.py arguments]
#
# Trains with bf16 autocast, tests the last checkpoint on the held-out scene
# (Warehouse_100: another seed, another camera layout) and writes a half-precision release
# checkpoint to WORK_DIR/release/.
set -euo pipefail
config=$1
work=$2
shift 2
python=${PYTHON:-python3}
amp=${AMP---amp bf16}  # AMP= (empty) trains in float32, e.g. on a CPU
$python tools/train.py "$config" --work-dir "$work" $amp "$@"
last=$(cat "$work/last_checkpoint")
$python tools/test.py "$config" "$last" --work-dir "$work/test"
$python tools/model_converters/publish_model.py "$last" "$work/release/$(basename "$config" .py).pth" --fp16
