# Stage 6: stage 5 (sparse4d_oae_small_480x272_protocol_exclusion_100.py) fine-tuned further on
# 64 of the protocol's newer training layouts (seeds 108-171 x 128 frames, none seen before;
# 164 layouts seen in all): its weights and learned anchors (the re-identification classifier
# over asset ids left out), 450 iterations at batch 16, 4e-4 after 50 warm-up iterations,
# cosine to 4e-6. One GPU, run again until it exits 0 (docs/training.md; the measured run
# stopped at iteration 400, its GPU time spent):
#   SCENES=64 FIRST_SCENE=100 START_ANCHORS=learned \
#   START_CHECKPOINT=checkpoints/sparse4d_oae_small_480x272_protocol_exclusion_100-cd24460d.pth \
#   CONFIG=projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol_exclusion_164.py \
#   bash tools/recipes/train_protocol.sh work_dirs/protocol_exclusion_164 570
_base_ = ['./sparse4d_oae_small_480x272_protocol_exclusion_100.py']

load_from = 'work_dirs/protocol_start_learned_sparse4d_oae_small_480x272_protocol_exclusion_100-cd24460d.pth'  # noqa: E501
max_iters = 450
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
