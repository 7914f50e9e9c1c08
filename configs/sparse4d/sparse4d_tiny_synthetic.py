# A tiny Sparse4D for tests and the CPU demo: the small model (../_base_/models/sparse4d_small.py)
# scaled down, on 256x144 images. It trains on CPU in seconds per iteration; its accuracy
# is not a goal.
_base_ = [
    '../_base_/models/sparse4d_small.py',
    '../_base_/datasets/synthetic_warehouse.py',
    '../_base_/schedules/adamw_cosine_tao.py',
    '../_base_/default_runtime.py',
]

embed_dims = 64
num_decoder = 2
num_anchor = 60
num_temp_instances = 40
anchor_file = 'data/synthetic/ovpkl/train/anchor_init_kmeans60.npy'
backbone_channels = 16
attention = dict(_base_.attention, embed_dims=embed_dims)

model = dict(
    img_backbone=dict(base_channels=backbone_channels, zero_init_residual=False),
    img_neck=dict(
        in_channels=[backbone_channels * 2**i for i in range(4)], out_channels=embed_dims
    ),
    depth_branch=dict(embed_dims=embed_dims),
    head=dict(
        num_decoder=num_decoder,
        instance_bank=dict(
            num_anchor=num_anchor,
            embed_dims=embed_dims,
            anchor=anchor_file,
            num_temp_instances=num_temp_instances,
        ),
        anchor_encoder=dict(embed_dims=[32, 8, 8, 16]),
        graph_model=attention,
        temp_graph_model=attention,
        norm_layer=dict(normalized_shape=embed_dims),
        ffn=dict(
            in_channels=embed_dims * 2, embed_dims=embed_dims, feedforward_channels=embed_dims * 2
        ),
        deformable_model=dict(embed_dims=embed_dims, attn_drop=0.0),
        refine_layer=dict(embed_dims=embed_dims),
        sampler=dict(num_dn_groups=2, num_temp_dn_groups=1, max_dn_gt=16),
        decoder=dict(num_output=30),
    ),
)

image_size = (256, 144)
# The base pipelines at this size, zooming in less and without the photometric distortion.
train_pipeline = [
    dict(step, final_size=image_size, resize_range=(1.0, 1.1))
    if step.type == 'MultiViewImageAugmentation'
    else step
    for step in _base_.train_pipeline
    if step.type != 'MultiViewPhotometricDistortion'
]
test_pipeline = [
    dict(step, final_size=image_size) if step.type == 'MultiViewImageAugmentation' else step
    for step in _base_.test_pipeline
]
train_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(pipeline=train_pipeline)
)
val_dataloader = dict(num_workers=0, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

log_interval = 5
default_hooks = dict(logger=dict(interval=log_interval))
log_processor = dict(window_size=log_interval)
