# The 20-minute candidate (eighth session): the outside-in small config with the four
# footprint corners among the fixed key points and a schedule that fills the 20-minute
# budget on one H100 (2600 iterations at about 0.41 s).
#
# Why the corners: the seven fixed points of Sparse4D v3 lie on the box's axes, so a box
# turned by +d or -d from its anchor covers the same points and the head cannot tell which
# way to turn; the shipped checkpoint never learned the yaw (docs/benchmarks.md, "Where the
# 3D-IoU HOTA is lost"). It changes the number of key points: checkpoints of the other
# small configs do not load here.
_base_ = ['./sparse4d_oae_small_480x272_synthetic.py']

# CORNER_FIXED_POINTS of mmsparse4d.models.layers.key_points_generator (configs hold values).
corner_fixed_points = [
    [0.0, 0.0, 0.0], [0.45, 0.0, 0.0], [-0.45, 0.0, 0.0], [0.0, 0.45, 0.0],
    [0.0, -0.45, 0.0], [0.0, 0.0, 0.45], [0.0, 0.0, -0.45],
    [0.45, 0.45, 0.0], [-0.45, 0.45, 0.0], [-0.45, -0.45, 0.0], [0.45, -0.45, 0.0],
]  # fmt: skip
model = dict(head=dict(deformable_model=dict(kps_generator=dict(fix_scale=corner_fixed_points))))

base_lr = 2e-3
max_iters = 2600
warmup_iters = 100
param_scheduler = [
    dict(type='LinearLR', start_factor=1 / 3, by_epoch=False, begin=0, end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        eta_min=base_lr * 1e-2,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters,
    ),  # fmt: skip
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
