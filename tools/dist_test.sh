#!/usr/bin/env bash
# Distributed testing through torchrun (tools/dist_launch.sh reads NNODES, NODE_RANK,
# MASTER_ADDR and PORT):
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py arguments...]
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "dist_test.sh: usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS" \
    "[test.py arguments...]" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec bash "$ROOT/tools/dist_launch.sh" "$3" "$ROOT/tools/test.py" "$1" "$2" --launcher pytorch \
  "${@:4}"
