# The small Sparse4D, trained from scratch: a ResNet-18 at `backbone_channels` base channels
# (no ImageNet weights), 96-d instances in 4 groups, 300 anchors with 200 carried, 4 decoders,
# denoising with up to 64 boxes; everything else as in sparse4d_r50.py. The small and tiny
# configs build on it.
_base_ = ['./sparse4d_r50.py']

embed_dims = 96
num_groups = 4
num_decoder = 4
num_anchor = 300
num_temp_instances = 200
anchor_file = 'data/synthetic/ovpkl/train/anchor_init_kmeans300.npy'
backbone_channels = 24
attention = dict(_base_.attention, embed_dims=embed_dims, num_heads=num_groups)

model = dict(
    img_backbone=dict(
        _delete_=True,
        type='mmdet.ResNet',
        depth=18,
        base_channels=backbone_channels,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
    ),
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
        anchor_encoder=dict(embed_dims=[48, 16, 16, 16], out_loops=2),
        graph_model=attention,
        temp_graph_model=attention,
        norm_layer=dict(normalized_shape=embed_dims),
        ffn=dict(
            in_channels=embed_dims * 2, embed_dims=embed_dims, feedforward_channels=embed_dims * 4
        ),
        deformable_model=dict(embed_dims=embed_dims, num_groups=num_groups),
        refine_layer=dict(embed_dims=embed_dims),
        sampler=dict(max_dn_gt=64),
    ),
)
