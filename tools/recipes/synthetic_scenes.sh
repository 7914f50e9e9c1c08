#!/usr/bin/env bash
# Generate and convert the synthetic training and held-out scenes of the accuracy recipe.
#
#   bash tools/recipes/synthetic_scenes.sh [DATA_DIR]      (default data/synthetic)
#
# Training: Warehouse_000..005, seeds 0-5, 4 to 8 cameras (each seed draws its own camera
# layout), 300 frames at 30 FPS, 480x270. Held out: Warehouse_100, seed 100, 5 cameras.
# Scenes render in parallel; the anchors (300) come from the training boxes.
set -euo pipefail
data=${1:-data/synthetic}
python=${PYTHON:-python3}
frames=${FRAMES:-300}
cams=(4 6 8 5 7 6)
mkdir -p "$data/raw"
pids=()
for seed in 0 1 2 3 4 5; do
  scene="$data/raw/Warehouse_00$seed"
  if [ ! -f "$scene/ground_truth.json" ]; then
    rm -rf "$scene"
    $python tools/make_synthetic.py "$scene" --seed "$seed" --cameras "${cams[$seed]}" \
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
$python tools/create_data.py "$data"/raw/Warehouse_00? --out "$data/ovpkl/train" \
  --data-root "$data/raw" --anchors 300 &
train=$!
$python tools/create_data.py "$data/raw/Warehouse_100" --out "$data/ovpkl/val" \
  --data-root "$data/raw" --anchors 0
wait "$train"
