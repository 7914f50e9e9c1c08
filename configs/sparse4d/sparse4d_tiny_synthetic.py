# A tiny Sparse4D for tests and the CPU demo: a narrow ResNet-18, 64-d instances, 60 queries
# (40 carried), 2 decoders, 256x144 images. It trains on CPU in seconds per iteration; its
# accuracy is not a goal.
_base_ = ['./sparse4d_r50_960x544_synthetic.py']

embed_dims = 64
num_groups = 4
num_anchor = 60
num_temp_instances = 40
image_size = (256, 144)

model = dict(
    img_backbone=dict(
        _delete_=True,
        type='mmdet.ResNet',
        depth=18,
        base_channels=16,
        zero_init_residual=False,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
    ),
    img_neck=dict(in_channels=[16, 32, 64, 128], out_channels=embed_dims),
    depth_branch=dict(embed_dims=embed_dims),
    head=dict(
        num_decoder=2,
        instance_bank=dict(
            num_anchor=num_anchor,
            embed_dims=embed_dims,
            num_temp_instances=num_temp_instances,
            anchor='data/synthetic/ovpkl/train/anchor_init_kmeans60.npy',
        ),
        anchor_encoder=dict(embed_dims=[32, 8, 8, 16], out_loops=2),
        graph_model=dict(embed_dims=embed_dims, num_heads=num_groups),
        temp_graph_model=dict(embed_dims=embed_dims, num_heads=num_groups),
        norm_layer=dict(normalized_shape=embed_dims),
        ffn=dict(
            in_channels=embed_dims * 2, embed_dims=embed_dims, feedforward_channels=embed_dims * 2
        ),
        deformable_model=dict(embed_dims=embed_dims, num_groups=num_groups, attn_drop=0.0),
        refine_layer=dict(embed_dims=embed_dims),
        sampler=dict(num_dn_groups=2, num_temp_dn_groups=1, max_dn_gt=16),
        decoder=dict(num_output=30),
    ),
)

train_pipeline = [
    dict(type='RandomCameraDrop', min_cameras=2, prob=0.3),
    dict(type='LoadMultiViewImages'),
    dict(type='LoadMultiViewDepth'),
    dict(
        type='MultiViewImageAugmentation',
        final_size=image_size,
        resize_range=(1.0, 1.1),
        crop='bottom',
        flip_prob=0.5,
        rotate_range=(-5.4, 5.4),
    ),
    dict(type='GlobalRotation3D', rotation_range=(-0.3925, 0.3925)),
    dict(type='MultiScaleDepthTargets', strides=(4, 8, 16)),
    dict(type='PackSparse4DInputs'),
]
test_pipeline = [
    dict(type='LoadMultiViewImages'),
    dict(type='MultiViewImageAugmentation', final_size=image_size, test_mode=True),
    dict(type='PackSparse4DInputs'),
]
train_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(pipeline=train_pipeline)
)
val_dataloader = dict(num_workers=0, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

log_interval = 5
default_hooks = dict(logger=dict(interval=log_interval))
log_processor = dict(window_size=log_interval)
