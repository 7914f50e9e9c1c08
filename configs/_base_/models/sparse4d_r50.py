# Sparse4D v3 with the settings of NVIDIA TAO's Sparse4D for static cameras: ResNet-50 + FPN,
# 900 anchors with 600 carried, decay 0.8, 6 decoders (1 single-frame), 5 + 3 denoising groups
# with up to 128 boxes, per-camera weight slots for up to 20 cameras.
# Derived configs change the named values below and restate `model` parts that use them.
num_classes = 6
embed_dims = 256
num_groups = 8
num_levels = 4
num_decoder = 6
num_single_frame_decoder = 1
num_anchor = 900
num_temp_instances = 600
max_num_cams = 20
anchor_file = 'data/synthetic/ovpkl/train/anchor_init_kmeans900.npy'
drop_out = 0.1
# Self-attention and temporal cross-attention share one design (separate weights).
attention = dict(
    type='DecoupledMultiheadAttention',
    embed_dims=embed_dims,
    num_heads=num_groups,
    dropout=drop_out,
)

model = dict(
    type='Sparse4D',
    data_preprocessor=dict(type='Sparse4DDataPreprocessor'),
    img_backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        with_cp=True,
        # From scratch unless a config of yours gives an ImageNet start, e.g. torchvision's
        # resnet50-*.pth, which loads as it is: model = dict(img_backbone=dict(init_cfg=dict(
        # _delete_=True, type='Pretrained', checkpoint='resnet50.pth'))). Not
        # 'torchvision://resnet50': it needs torchvision, which this stack does not install.
        init_cfg=None,
    ),
    img_neck=dict(
        type='mmdet.FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=embed_dims,
        num_outs=num_levels,
        start_level=0,
        add_extra_convs='on_output',
        relu_before_extra_convs=True,
    ),
    depth_branch=dict(
        type='DenseDepthNet', embed_dims=embed_dims, num_depth_layers=3, loss_weight=0.2
    ),
    grid_mask=dict(type='GridMask', prob=0.7),
    head=dict(
        type='Sparse4DHead',
        num_decoder=num_decoder,
        num_single_frame_decoder=num_single_frame_decoder,
        cls_threshold_to_reg=0.05,
        reg_weights=[2.0] * 3 + [1.0] * 8,
        instance_bank=dict(
            type='InstanceBank',
            num_anchor=num_anchor,
            embed_dims=embed_dims,
            anchor=anchor_file,
            num_temp_instances=num_temp_instances,
            confidence_decay=0.8,
            default_time_interval=1 / 30,
            max_time_interval=2.0,
            feat_grad=False,
        ),
        anchor_encoder=dict(
            type='SparseBox3DEncoder',
            embed_dims=[128, 32, 32, 64],
            vel_dims=3,
            mode='cat',
            in_loops=1,
            out_loops=4,
        ),
        graph_model=attention,
        temp_graph_model=attention,
        norm_layer=dict(type='LN', normalized_shape=embed_dims),
        ffn=dict(
            type='AsymmetricFFN',
            in_channels=embed_dims * 2,
            embed_dims=embed_dims,
            feedforward_channels=embed_dims * 4,
            num_fcs=2,
            ffn_drop=drop_out,
            pre_norm=True,
        ),
        deformable_model=dict(
            type='DeformableFeatureAggregation',
            embed_dims=embed_dims,
            num_groups=num_groups,
            num_levels=num_levels,
            max_num_cams=max_num_cams,
            use_camera_embed=False,
            attn_drop=0.15,
            residual_mode='cat',
            kps_generator=dict(num_learnable_pts=6),
        ),
        refine_layer=dict(
            type='SparseBox3DRefinementModule',
            embed_dims=embed_dims,
            num_cls=num_classes,
            refine_yaw=True,
            with_quality_estimation=True,
            # Metres: a carried box refined frame after frame cannot grow without bound.
            size_range=(0.05, 20.0),
        ),
        sampler=dict(
            type='SparseBox3DTarget',
            num_classes=num_classes,
            num_dn_groups=5,
            num_temp_dn_groups=3,
            dn_noise_scale=[2.0] * 3 + [0.5] * 8,
            max_dn_gt=128,
            add_neg_dn=True,
            cls_weight=2.0,
            box_weight=0.25,
            reg_weights=[2.0] * 3 + [0.5] * 3 + [0.0] * 5,
        ),
        decoder=dict(type='SparseBox3DDecoder', num_output=300, score_threshold=0.05),
        loss_cls=dict(type='FocalLoss', gamma=2.0, alpha=0.25, loss_weight=2.0),
        loss_reg=dict(type='SparseBox3DLoss', loss_weight=0.25),
    ),
)
