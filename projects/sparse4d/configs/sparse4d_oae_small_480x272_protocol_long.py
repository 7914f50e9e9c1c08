# The protocol fine-tuning (sparse4d_oae_small_480x272_protocol.py) on fewer, longer scenes,
# starting from the 12-layout model's own learned anchors at a lower rate:
# - 40 training layouts (seeds 0-39) of 300 frames each instead of 64 of 128, so the
#   sampler's 4 splits give 75-frame training sequences (the 12-layout model's length)
#   instead of 32;
# - the learned anchors (START_ANCHORS=learned): k-means anchors of the new floors raise the
#   12-layout weights' detection loss by two thirds before a step is taken
#   (tools/analysis_tools/start_losses.py);
# - 4e-4, a fine-tuning's rate (a fifth of the from-scratch 2e-3);
# - 1300 iterations (two 10-minute commands on one H200).
# The measured run trained from scratch (a bare --resume cleared load_from then; fixed), and
# 4e-4 is far too little for a random start (docs/evaluation.md). Not shipped.
#   SCENES=40 FRAMES=300 START_ANCHORS=learned \
#   CONFIG=projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol_long.py \
#   bash tools/recipes/train_protocol.sh work_dirs/protocol_long 560
_base_ = ['./sparse4d_oae_small_480x272_protocol.py']

load_from = 'work_dirs/protocol_start_learned.pth'
base_lr = 4e-4
max_iters = 1300
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], eta_min=base_lr * 1e-2, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
