# The small Sparse4D (../_base_/models/sparse4d_small.py) on 480x272 images for the shipped
# synthetic checkpoint and the GPU accuracy recipe: 5.6 M parameters (11 MB in half precision;
# the outside-in variant 4.1 M, 8 MB), trained from scratch (the GPU servers have no network
# for ImageNet weights). projects/sparse4d/README.md has the recipe and its numbers.
_base_ = [
    '../_base_/models/sparse4d_small.py',
    '../_base_/datasets/synthetic_warehouse.py',
    '../_base_/schedules/adamw_cosine_tao.py',
    '../_base_/default_runtime.py',
]

# The Sparse4D v3 fixed key points plus the four footprint corners at mid-height
# ('v3_corners' of FIXED_POINT_SETS in mmsparse4d/models/layers/key_points_generator.py): the
# v3 points lie on the box's axes, so a box turned by +d or -d from its anchor covers the
# same points; a corner is covered for one sign only.
model = dict(
    head=dict(
        deformable_model=dict(kps_generator=dict(fix_scale='v3_corners')),
        # The velocity output as a residual in m/s: upstream's displacement divided by the frame
        # interval turns a 0.1 m error into 3 m/s at 30 FPS, and the cache moves carried
        # boxes by it.
        refine_layer=dict(velocity_per_second=True),
        # The synthetic objects look the same at yaw and yaw + pi (a 3D box is the same box):
        # regress the yaw modulo pi instead of pulling (sin, cos) of an ambiguous target to 0.
        loss_reg=dict(symmetric_yaw=True),
        # Track-priority duplicate suppression and track stitching: this short recipe's model
        # still gives an object several near-equal boxes and hands it to a new query every
        # few frames (HOTA 38.3 on a validation scene; 37.6 without the stitching, 26.7
        # without either).
        decoder=dict(
            num_output=100,
            duplicate_radius=0.5,
            duplicate_min_score=0.2,
            track_stitching=dict(radius=1.0, max_age=15, min_score=0.2),
            # Yaw from motion: this model's yaw is its weakest output (median errors of
            # 12-70 degrees per class) and the synthetic objects face the way they move; a
            # track that moved >= 0.3 m over its last 20 frames takes that direction. Window
            # and distance were chosen on training scene 0 (HOTA 45.2 without, 53.1 with;
            # windows of 30, 45 and 60 frames gave 52.1, 50.4 and 49.1).
            motion_heading=dict(window=20, min_distance=0.3),
        ),
    ),
)

image_size = (480, 272)
# No horizontal flip: with its projection flipped too every key point stays on its object,
# but the image there shows the mirrored scene, the same appearance for a yaw and its mirror,
# and static cameras never see a mirrored world. The shipped checkpoint trained this way; with
# flips the held-out HOTA was the same (42.1 vs 41.7) and one class went undetected.
train_pipeline = [
    dict(step, final_size=image_size, flip_prob=0.0)
    if step.type == 'MultiViewImageAugmentation'
    else step
    for step in _base_.train_pipeline
]
test_pipeline = [
    dict(step, final_size=image_size) if step.type == 'MultiViewImageAugmentation' else step
    for step in _base_.test_pipeline
]
# A training step is bound by kernel launches and Python, not by the GPU: 16 samples cost
# little more time than 4. 16 batch slots need >= 16 sub-sequences.
batch_size = 16
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=12,  # a 16-core GPU server: 6 workers left the H100 waiting (0.81 vs 0.70 s/step)
    sampler=dict(batch_size=batch_size, split_num=4),
    dataset=dict(pipeline=train_pipeline),
)
val_dataloader = dict(num_workers=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# From scratch: the backbone learns at the full rate, at a higher rate than TAO's fine-tuning
# (gradients clipped at 25 keep the first hundred iterations stable).
base_lr = 2e-3
backbone_lr_mult = 1.0
max_iters = 2600  # 16-18 minutes of steps on one H100 (median 0.37-0.40 s per step)
warmup_iters = 100
val_interval = max_iters
checkpoint_interval = 25  # cheap for a small model; time-sliced jobs lose little
optim_wrapper = dict(
    optimizer=dict(lr=base_lr),
    paramwise_cfg=dict(custom_keys=dict(img_backbone=dict(lr_mult=backbone_lr_mult))),
)
# The base schedule's warm-up and cosine at this length, the cosine ending at 1e-2 of base_lr.
param_scheduler = [
    dict(_base_.param_scheduler[0], end=warmup_iters),
    dict(_base_.param_scheduler[1], eta_min=base_lr * 1e-2, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(checkpoint=dict(interval=checkpoint_interval, max_keep_ckpts=2))
