# Stage 3, the start of the shipped stage 4 (sparse4d_oae_small_480x272_protocol_exclusion_64.py):
# stage 2 (sparse4d_oae_small_480x272_protocol_exclusion.py) fine-tuned further with the
# new-query exclusion on the protocol's first 48 training layouts x 128 frames: its weights
# and learned anchors (the re-identification classifier over asset ids left out, as for every
# fine-tuning start), 900 iterations at batch 16, 4e-4 (stage 2's rate) after 50 warm-up
# iterations, cosine to 4e-6. Two or three 10-minute commands on one H200 (docs/training.md):
#   SCENES=48 START_ANCHORS=learned \
#   START_CHECKPOINT=checkpoints/sparse4d_oae_small_480x272_protocol_exclusion-cef20ebf.pth \
#   CONFIG=projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol_exclusion_long.py \
#   bash tools/recipes/train_protocol.sh work_dirs/protocol_exclusion_long 570
_base_ = ['./sparse4d_oae_small_480x272_protocol_exclusion.py']

load_from = (
    'work_dirs/protocol_start_learned_sparse4d_oae_small_480x272_protocol_exclusion-cef20ebf.pth'
)
# The base's rate (4e-4, cosine to 4e-6), longer.
max_iters = 900
warmup_iters = 50
param_scheduler = [
    dict(_base_.param_scheduler[0], end=warmup_iters),
    dict(_base_.param_scheduler[1], begin=warmup_iters, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
# Yaw from motion: the moving tracks' direction from their last 10 frames, not the whole
# 20-frame window, which lags behind turns. Chosen on the validation scenes by re-applying it
# to saved tracks (tools/analysis_tools/sweep_postprocessing.py --heading-window 6 8 10 12
# 15: HOTA 38.27 as tracked, 38.53 / 38.61 / 38.62 / 38.59 / 38.49; docs/evaluation.md).
model = dict(head=dict(decoder=dict(motion_heading=dict(heading_window=10))))
# The submission's tracks smoothed once the scene is tracked (tools/infer.py; the HOTA metric
# of tools/test.py alike): centres from a line through 10 frames on either side, sizes from
# the track's median. Chosen on the validation scenes (sweep_postprocessing.py
# --centre-window 3 5 10 20 --size-window all 15: HOTA 41.78 as tracked, 42.09 / 42.29 /
# 42.66 / 42.44 with centres only, 42.75 with both at 10 and all; docs/evaluation.md).
track_smoothing = dict(centre_window=10, constant_size=True)
val_evaluator = [
    dict(_base_.val_evaluator[0], track_smoothing=track_smoothing),
    *_base_.val_evaluator[1:],
]
test_evaluator = val_evaluator
