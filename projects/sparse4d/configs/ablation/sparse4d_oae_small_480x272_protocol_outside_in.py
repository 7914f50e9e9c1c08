# The paper's ablation, outside-in arm: the core arm's model, data and schedule
# (sparse4d_small_480x272_protocol_core.py) with the outside-in additions of
# ../sparse4d_oae_small_480x272_synthetic.py, the shipped model's: the projection camera
# embedding and the occlusion-aware re-identification branch (tests/test_configs.py checks
# that these are the only differences).
_base_ = ['./sparse4d_small_480x272_protocol_core.py']

custom_imports = dict(imports=['projects.sparse4d.sparse4d'], allow_failed_imports=False)

# >= the asset ids of the 16 training layouts (about 16 objects each).
num_ids = 2048

model = dict(
    head=dict(
        deformable_model=dict(camera_encoder=dict(type='ProjectionCameraEmbedding')),
        reid_branch=dict(
            type='OcclusionAwareReIDBranch', embed_dims=_base_.embed_dims, num_ids=num_ids
        ),
    )
)
