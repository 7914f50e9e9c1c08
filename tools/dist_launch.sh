#!/usr/bin/env bash
# torchrun for tools/dist_train.sh and tools/dist_test.sh:
#   bash tools/dist_launch.sh GPUS SCRIPT [SCRIPT arguments...]
# NNODES, NODE_RANK, MASTER_ADDR and PORT (29500 on several nodes) are read from the
# environment.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "dist_launch.sh: usage: bash tools/dist_launch.sh GPUS SCRIPT [arguments...]" >&2
  exit 2
fi
GPUS=$1
SCRIPT=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# One node: a port free now unless PORT is set, so that runs side by side on one machine
# (GPUs split with CUDA_VISIBLE_DEVICES) do not collide. Several nodes agree on PORT.
if [ -z "${PORT:-}" ] && [ "$NNODES" = 1 ]; then
  PORT=$(cd "$ROOT" && python3 -m mmsparse4d.utils.free_port)
fi
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}

exec python3 -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
  --nproc_per_node="$GPUS" --master_port="$PORT" \
  "$SCRIPT" "${@:3}"
