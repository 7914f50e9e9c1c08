#!/usr/bin/env bash
# Generate and convert the synthetic training and held-out scenes of the accuracy recipe.
#
#   [SCENES=N] bash tools/recipes/synthetic_scenes.sh [DATA_DIR]   (default data/synthetic)
#
# Training: Warehouse_000.., seeds 0 to SCENES-1 (default 12, at most 100), 4 to 8 cameras
# (each seed draws its own camera layout), 300 frames at 30 FPS, 480x270. Held out:
# Warehouse_100, seed 100, 5 cameras. Scenes render in parallel; the anchors (300) come from
# the training boxes. Scenes already there are kept; the conversion takes exactly the
# SCENES training scenes asked for.
set -euo pipefail
data=${1:-data/synthetic}
python=${PYTHON:-python3}
frames=${FRAMES:-300}
scenes=${SCENES:-12}
if ! [[ "$scenes" =~ ^[0-9]+$ ]] || [ "$scenes" -lt 1 ] || [ "$scenes" -gt 100 ]; then
  echo "synthetic_scenes.sh: SCENES=$scenes is not a number of training scenes in 1..100" >&2
  exit 2
fi
cams=(4 6 8 5 7 6 5 8 4 7 6 8)  # cameras per seed, cycled
mkdir -p "$data/raw"
pids=()
train_scenes=()
for ((seed = 0; seed < scenes; seed++)); do
  scene=$(printf '%s/raw/Warehouse_%03d' "$data" "$seed")
  train_scenes+=("$scene")
  if [ ! -f "$scene/ground_truth.json" ]; then
    rm -rf "$scene"
    cameras=${cams[$((seed % ${#cams[@]}))]}
    $python tools/make_synthetic.py "$scene" --seed "$seed" --cameras "$cameras" \
      --frames "$frames" --objects 12 --size 480 270 --workers 2 &
    pids+=($!)
  fi
done
if [ ! -f "$data/raw/Warehouse_100/ground_truth.json" ]; then
  rm -rf "$data/raw/Warehouse_100"
  $python tools/make_synthetic.py "$data/raw/Warehouse_100" --seed 100 --cameras 5 \
    --frames "$frames" --objects 12 --size 480 270 --workers 2 &
  pids+=($!)
fi
for pid in "${pids[@]}"; do wait "$pid"; done
rm -rf "$data/ovpkl"
$python tools/create_data.py "${train_scenes[@]}" --out "$data/ovpkl/train" \
  --data-root "$data/raw" --anchors 300 &
train=$!
$python tools/create_data.py "$data/raw/Warehouse_100" --out "$data/ovpkl/val" \
  --data-root "$data/raw" --anchors 0
wait "$train"
