# The ablation's outside-in arm (sparse4d_oae_small_480x272_protocol_outside_in.py) at batch
# 64: the same samples (600 x 16 = 150 x 64), the same start and data, the rate scaled by the
# square root of the batch ratio (Adam-type optimisers: 2 x 1e-3), a warm-up of 25 iterations
# (1,600 samples; the batch-16 arm's 50 are 800). A step launches the same kernels
# whatever the batch, so batch 64 keeps the GPU busy where batch 16 waits for the host
# (docs/performance.md#training-step). Measured against batch 16 on the same fresh test
# scenes, it is not a faster way to the same accuracy: docs/performance.md#time-to-accuracy.
# With the ablation's data and start made (train_ablation.sh steps 1-2), one GPU, one run:
#   bash tools/recipes/train_in_slices.sh \
#     projects/sparse4d/configs/ablation/sparse4d_oae_small_480x272_protocol_outside_in_batch64.py \
#     work_dirs/ablation_batch64_seed0 570 --cfg-options randomness.seed=0 \
#     val_cfg=None val_dataloader=None val_evaluator=None
_base_ = ['./sparse4d_oae_small_480x272_protocol_outside_in.py']

batch_size = 64
base_lr = 2e-3
max_iters = 150
warmup_iters = 25
# 16 layouts x 4 sub-sequences: 64 slots need >= 64 sub-sequences.
train_dataloader = dict(
    batch_size=batch_size, num_workers=15, sampler=dict(batch_size=batch_size, split_num=4)
)
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    dict(_base_.param_scheduler[0], end=warmup_iters),
    dict(_base_.param_scheduler[1], eta_min=base_lr * 1e-2, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
