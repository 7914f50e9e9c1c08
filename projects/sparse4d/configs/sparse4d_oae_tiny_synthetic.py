# The tiny core config with the outside-in additions, for tests and the CPU demo.
_base_ = ['../../../configs/sparse4d/sparse4d_tiny_synthetic.py']

custom_imports = dict(imports=['projects.sparse4d.sparse4d'], allow_failed_imports=False)

num_ids = 128

model = dict(
    head=dict(
        deformable_model=dict(camera_encoder=dict(type='ProjectionCameraEmbedding')),
        reid_branch=dict(
            type='OcclusionAwareReIDBranch',
            embed_dims=_base_.embed_dims,
            num_ids=num_ids,
            visibility_net=dict(hidden_dims=16),
        ),
    )
)
