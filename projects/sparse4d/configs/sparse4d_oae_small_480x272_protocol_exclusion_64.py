# The shipped checkpoint (stage 4): stage 3 (sparse4d_oae_small_480x272_protocol_exclusion_long.py)
# fine-tuned further with the new-query exclusion on the protocol's first 64 training layouts
# x 128 frames (stage 3's 48 and 16 more): its weights and learned anchors (the
# re-identification classifier over asset ids left out, as for every fine-tuning start),
# 650 iterations at batch 16, 4e-4 after 50 warm-up iterations, cosine to 4e-6. Two
# 10-minute commands on one H200 (docs/training.md):
#   SCENES=64 START_ANCHORS=learned \
#   START_CHECKPOINT=checkpoints/sparse4d_oae_small_480x272_protocol_exclusion_long-1f070cad.pth \
#   CONFIG=projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol_exclusion_64.py \
#   bash tools/recipes/train_protocol.sh work_dirs/protocol_exclusion_64 570
_base_ = ['./sparse4d_oae_small_480x272_protocol_exclusion_long.py']

load_from = (
    'work_dirs/protocol_start_learned_'
    'sparse4d_oae_small_480x272_protocol_exclusion_long-1f070cad.pth'
)
max_iters = 650
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
# The submission's tracks as stage 3 smooths them, and their yaws from the axial mean over
# 20 frames on either side, and every box standing on the floor (z = 0: the centre at half
# the height). Chosen on this model's validation tracks (tools/analysis_tools/
# sweep_postprocessing.py W --centre-window 10 --size-window all --yaw-window 10 15 20 25 30
# --floor-height 0.0: HOTA 44.34 as stage 3 smooths, 45.24 with the yaw window of 20, 46.29
# with the floor too; docs/evaluation.md).
track_smoothing = dict(centre_window=10, constant_size=True, yaw_window=20, floor_height=0.0)
val_evaluator = [
    dict(_base_.val_evaluator[0], track_smoothing=track_smoothing),
    *_base_.val_evaluator[1:],
]
test_evaluator = val_evaluator
