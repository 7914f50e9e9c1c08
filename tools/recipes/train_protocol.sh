#!/usr/bin/env bash
# Fine-tune the shipped checkpoint on the protocol's training layouts
# (projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol.py) on one GPU, within a
# time budget per command: run it again until it exits 0.
#
#   [SCENES=64] [FIRST_SCENE=0] [FRAMES=128] [CONFIG=...] [START_ANCHORS=kmeans|learned] \
#       [START_CHECKPOINT=...] bash tools/recipes/train_protocol.sh WORK_DIR SECONDS
#
# CONFIG: another config on the same data paths (data/protocol, work_dirs/protocol_start.pth),
# e.g. sparse4d_oae_small_480x272_protocol_long.py with SCENES=40 FRAMES=300.
# 1. renders and converts the protocol's training scenes into data/protocol (SCENES seeds from
#    the FIRST_SCENE-th training seed on, FRAMES frames each, in parallel on every core; again
#    only when these differ from the last conversion's, keeping the scenes already rendered);
# 2. makes the fine-tuning start from START_CHECKPOINT (default: the 12-layout checkpoint) with
#    the k-means anchors of the new floors (START_ANCHORS=kmeans, the default; again when the
#    anchors or the checkpoint are newer) or with its own learned anchors (learned), given as
#    load_from: work_dirs/protocol_start.pth and work_dirs/protocol_start_learned.pth for the
#    12-layout checkpoint, the same names with _STEM (the checkpoint's file name without
#    .pth) for another;
# 3. trains in the rest of SECONDS, resuming where the last command stopped (exit 3: run
#    again), without in-training validation (evaluate_synthetic.py --validation does it);
# 4. when training ends, writes the half-precision release checkpoint to WORK_DIR/release/.
set -uo pipefail
work=$1
seconds=$2
case ${START_ANCHORS:-kmeans} in
  kmeans | learned) ;;
  *)
    echo "train_protocol.sh: START_ANCHORS must be kmeans or learned, got ${START_ANCHORS}" >&2
    exit 2 ;;
esac
python=${PYTHON:-python3}
config=${CONFIG:-projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol.py}
twelve_layouts=checkpoints/sparse4d_oae_small_480x272_synthetic-47bb6a98.pth
start_checkpoint=${START_CHECKPOINT:-$twelve_layouts}
if [ ! -f "$start_checkpoint" ]; then
  echo "train_protocol.sh: START_CHECKPOINT: no such file: ${start_checkpoint}" >&2
  exit 2
fi
suffix=
[ "$start_checkpoint" -ef "$twelve_layouts" ] || suffix=_$(basename "$start_checkpoint" .pth)
anchors=data/protocol/ovpkl/train/anchor_init_kmeans300.npy
begin=$(date +%s)
mkdir -p "$work"
bash tools/recipes/protocol_data.sh || exit 1
case ${START_ANCHORS:-kmeans} in
  kmeans)
    start=work_dirs/protocol_start${suffix}.pth
    if [ ! -f $start ] || [ "$anchors" -nt $start ] || [ "$start_checkpoint" -nt $start ]; then
      $python tools/model_converters/finetune_start.py "$start_checkpoint" $start \
        --anchors "$anchors" || exit 1
    fi ;;
  learned)
    start=work_dirs/protocol_start_learned${suffix}.pth
    if [ ! -f $start ] || [ "$start_checkpoint" -nt $start ]; then
      $python tools/model_converters/finetune_start.py "$start_checkpoint" $start || exit 1
    fi ;;
esac
left=$((seconds - ($(date +%s) - begin) - 30))
if [ "$left" -lt 60 ]; then
  echo "train_protocol.sh: ${left} s left for training in this command; run again"
  exit 3
fi
bash tools/recipes/train_in_slices.sh "$config" "$work" "$left" \
  --cfg-options val_cfg=None val_dataloader=None val_evaluator=None load_from=$start
status=$?
[ $status -ne 0 ] && exit $status
$python tools/model_converters/publish_model.py "$(cat "$work/last_checkpoint")" \
  "$work/release/$(basename "$config" .py).pth" --fp16
