# NVIDIA TAO's Sparse4D recipe: AdamW, backbone at 0.2x lr, grad-norm clip 25, 500 linear
# warm-up iterations from 1/3, then cosine to 1e-3 of the base lr at the last iteration.
# A derived config that changes max_iters builds its param_scheduler from this one's
# (`_base_.param_scheduler`) with its own values.
base_lr = 1e-4
backbone_lr_mult = 0.2
max_iters = 24000
warmup_iters = 500
val_interval = 2000

optim_wrapper = dict(
    type='OptimWrapper',
    # One parameter group per distinct setting (mmengine's default: one per parameter).
    constructor='GroupedOptimWrapperConstructor',
    # fused: one kernel per parameter group updates every tensor (foreach: a dozen launches
    # per group, and about 10 ms of the host's time per step at the small model's size).
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=1e-3, fused=True),
    paramwise_cfg=dict(custom_keys=dict(img_backbone=dict(lr_mult=backbone_lr_mult))),
    clip_grad=dict(max_norm=25, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 3, by_epoch=False, begin=0, end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        eta_min=base_lr * 1e-3,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters,
    ),
]

# mmengine's loop with a resume that skips in the sampler instead of loading every trained
# batch again (144 s at iteration 1450 of the small recipe).
train_cfg = dict(
    type='FastResumeIterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval
)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
