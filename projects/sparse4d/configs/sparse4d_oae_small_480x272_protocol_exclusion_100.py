# Stage 5: the shipped stage 4 (sparse4d_oae_small_480x272_protocol_exclusion_64.py) fine-tuned
# further with the new-query exclusion on all 100 training layouts of the protocol x 128
# frames (stage 4's 64 and 36 more): its weights and learned anchors (the re-identification
# classifier over asset ids left out, as for every fine-tuning start), 800 iterations at batch
# 16, 4e-4 after 50 warm-up iterations, cosine to 4e-6. Two 10-minute commands on one H200
# (docs/training.md):
#   SCENES=100 START_ANCHORS=learned \
#   START_CHECKPOINT=checkpoints/sparse4d_oae_small_480x272_protocol_exclusion_64-4a6fe1a1.pth \
#   CONFIG=projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol_exclusion_100.py \
#   bash tools/recipes/train_protocol.sh work_dirs/protocol_exclusion_100 570
_base_ = ['./sparse4d_oae_small_480x272_protocol_exclusion_64.py']

load_from = (
    'work_dirs/protocol_start_learned_sparse4d_oae_small_480x272_protocol_exclusion_64-4a6fe1a1.pth'
)
max_iters = 800
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
