#!/usr/bin/env bash
# The paper's ablation on the evaluation protocol: the core and the outside-in small models
# (projects/sparse4d/configs/ablation/), each trained from scratch once per seed, all runs
# side by side on one GPU (a step is bound by launches and host work, so four runs share a
# GPU better than they queue for it), within a time budget per command: run it again until
# it exits 0.
#
#   [SEEDS="0 1"] [SCENES=16] [FRAMES=128] [FEATURES=checkpoints/...pth] \
#       [OPTIONS="key=value ..."] bash tools/recipes/train_ablation.sh WORK_DIR SECONDS
#
# 1. renders and converts the protocol's first SCENES training layouts
#    (tools/recipes/protocol_data.sh);
# 2. writes the arms' common start, the configs' load_from: FEATURES' backbone and FPN (the
#    shipped checkpoint's by default) with the new floors' k-means anchors, the head left to
#    initialise;
# 3. trains every arm and seed in WORK_DIR/ARM_seedS with its share of the cores as data
#    workers, resuming where the last command stopped (exit 3: run again);
# 4. writes each finished run's half-precision checkpoint to WORK_DIR/release/ARM_seedS-HASH.pth.
# OPTIONS: more --cfg-options for every run (e.g. train_cfg.max_iters=... on a CPU).
# evaluate_synthetic.py scores the releases (docs/evaluation.md).
set -uo pipefail
if [ $# -ne 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
  echo "train_ablation.sh: usage: train_ablation.sh WORK_DIR SECONDS (a whole number), got: $*" >&2
  exit 2
fi
work=$1
seconds=$2
python=${PYTHON:-python3}
seeds=${SEEDS:-0 1}
configs="projects/sparse4d/configs/ablation/sparse4d_small_480x272_protocol_core.py
projects/sparse4d/configs/ablation/sparse4d_oae_small_480x272_protocol_outside_in.py"
features=${FEATURES:-checkpoints/sparse4d_oae_small_480x272_protocol_exclusion_164-d63677a1.pth}
if [ ! -f "$features" ]; then
  echo "train_ablation.sh: FEATURES: no such file: ${features}" >&2
  exit 2
fi
for seed in $seeds; do
  if ! [[ $seed =~ ^[0-9]+$ ]]; then
    echo "train_ablation.sh: SEEDS must be whole numbers separated by spaces, got '${seeds}'" >&2
    exit 2
  fi
done
num_seeds=$(echo $seeds | wc -w)
if [ "$num_seeds" -eq 0 ]; then
  echo "train_ablation.sh: SEEDS is empty" >&2
  exit 2
fi
if [ "$(echo $seeds | tr ' ' '\n' | sort -u | wc -l)" -ne "$num_seeds" ]; then
  echo "train_ablation.sh: SEEDS repeats a seed (two runs would share a work dir): '${seeds}'" >&2
  exit 2
fi
begin=$(date +%s)
mkdir -p "$work/release"
SCENES=${SCENES:-16} FRAMES=${FRAMES:-128} bash tools/recipes/protocol_data.sh || exit 1
# The configs' load_from and anchor file, written every time (seconds): a start kept from an
# earlier command could hold another FEATURES' weights. Runs that resume do not read it.
start=work_dirs/ablation_features_start.pth
anchors=data/protocol/ovpkl/train/anchor_init_kmeans300.npy
$python tools/model_converters/finetune_start.py "$features" $start --anchors "$anchors" --drop \
  --keep img_backbone img_neck || exit 1
# Each run gets its share of the cores (a user's OMP_NUM_THREADS is replaced): torch's
# default of one thread per core in every run's main process left four side-by-side runs
# at 2.2 s a step and the GPU mostly idle. Half the share computes, the rest load data.
share=$(( $(nproc) / (num_seeds * $(echo $configs | wc -w)) ))
[ $share -lt 2 ] && share=2
workers=$(( share - 1 ))
export OMP_NUM_THREADS=$(( share / 2 ))
left=$((seconds - ($(date +%s) - begin) - 30))
if [ "$left" -lt 60 ]; then
  echo "train_ablation.sh: ${left} s left for training in this command; run again"
  exit 3
fi
runs=()
pids=()
for config in $configs; do
  for seed in $seeds; do
    run=$(basename "$config" .py)_seed$seed
    bash tools/recipes/train_in_slices.sh "$config" "$work/$run" "$left" \
      --cfg-options randomness.seed=$seed val_cfg=None val_dataloader=None \
      val_evaluator=None train_dataloader.num_workers=$workers ${OPTIONS:-} > "$work/$run.out" 2>&1 &
    runs+=("$run")
    pids+=($!)
  done
done
# Every run is waited for before anything is decided, so a failed run never leaves the
# others training behind the script's back; the finished ones are published either way.
failed=0
unfinished=0
for i in "${!runs[@]}"; do
  run=${runs[$i]}
  wait "${pids[$i]}"
  code=$?
  echo "$run: $(tail -1 "$work/$run.out")"
  case $code in
    0)
      ls "$work/release/$run"-*.pth > /dev/null 2>&1 || $python tools/model_converters/publish_model.py \
        "$(cat "$work/$run/last_checkpoint")" "$work/release/$run.pth" --fp16 || failed=1 ;;
    3) unfinished=1 ;;
    *)
      echo "train_ablation.sh: $run failed (exit $code); its log: $work/$run/train.log" >&2
      failed=$code ;;
  esac
done
[ $failed -ne 0 ] && exit $failed
[ $unfinished -ne 0 ] && exit 3
echo "train_ablation.sh: every run finished; releases in $work/release"
