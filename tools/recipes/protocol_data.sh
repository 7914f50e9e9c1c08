#!/usr/bin/env bash
# Render and convert SCENES of the protocol's training layouts from the FIRST_SCENE-th on
# (0: seed 0; 100: seed 108), FRAMES frames each, into
# data/protocol (in parallel on every core), unless the last conversion had the same
# arguments; scenes already rendered are kept.
#
#   [SCENES=64] [FIRST_SCENE=0] [FRAMES=128] bash tools/recipes/protocol_data.sh
set -uo pipefail
python=${PYTHON:-python3}
scenes="--training ${SCENES:-64} --first-training ${FIRST_SCENE:-0} --frames ${FRAMES:-128}"
anchors=data/protocol/ovpkl/train/anchor_init_kmeans300.npy
made=data/protocol/ovpkl/train/recipe_scenes  # the arguments of the last conversion
if [ ! -f "$anchors" ] || [ "$(cat "$made" 2>/dev/null)" != "$scenes" ]; then
  $python tools/make_protocol_data.py data/protocol $scenes || exit 1
  echo "$scenes" > "$made"
fi
