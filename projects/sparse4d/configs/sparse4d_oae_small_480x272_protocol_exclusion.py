# Stage 2 of the shipped model (checkpoints/sparse4d_oae_small_480x272_protocol_exclusion-*.pth):
# a short fine-tuning with the new-query exclusion that fits one GPU command with its data, the
# 12-layout weights and learned anchors on the first 16 protocol training layouts x 128
# frames, 300 iterations, 4e-4 after 30 warm-up iterations, cosine to 4e-6. On one H200 it
# took 394 s with set-up and rendering, so a machine taken back between commands costs no
# half-trained run (docs/training.md).
#   SCENES=16 START_ANCHORS=learned \
#   CONFIG=projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol_exclusion.py \
#   bash tools/recipes/train_protocol.sh work_dirs/protocol_exclusion_short 570
_base_ = ['./sparse4d_oae_small_480x272_protocol_finetune_exclusion.py']

base_lr = 4e-4
max_iters = 300
warmup_iters = 30
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    dict(_base_.param_scheduler[0], end=warmup_iters),
    dict(
        _base_.param_scheduler[1],
        eta_min=base_lr * 1e-2,
        begin=warmup_iters,
        end=max_iters,
    ),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
