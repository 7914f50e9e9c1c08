# A fine-tuning of the 12-layout model (its weights and its own learned anchors) on the
# protocol's 64 training layouts x 128 frames:
# - START_ANCHORS=learned: k-means anchors of the new floors raise the 12-layout weights'
#   detection loss by two thirds before a step is taken
#   (tools/analysis_tools/start_losses.py);
# - the sampler splits each 128-frame scene in 2, so training sequences are 64 frames long
#   (the protocol config's 4 splits give 32; the 12-layout model trained on 75);
# - 1e-3 (half the from-scratch rate), 1200 iterations (about 15 minutes on one H200).
#   START_ANCHORS=learned \
#   CONFIG=projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol_finetune.py \
#   bash tools/recipes/train_protocol.sh work_dirs/protocol_finetune 570
_base_ = ['./sparse4d_oae_small_480x272_protocol.py']

load_from = 'work_dirs/protocol_start_learned.pth'
max_iters = 1200
train_dataloader = dict(sampler=dict(split_num=2))
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
