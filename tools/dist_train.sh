#!/usr/bin/env bash
# Distributed training through torchrun (tools/dist_launch.sh reads NNODES, NODE_RANK,
# MASTER_ADDR and PORT):
#   bash tools/dist_train.sh CONFIG GPUS [train.py arguments...]
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "dist_train.sh: usage: bash tools/dist_train.sh CONFIG GPUS [train.py arguments...]" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec bash "$ROOT/tools/dist_launch.sh" "$2" "$ROOT/tools/train.py" "$1" --launcher pytorch "${@:3}"
