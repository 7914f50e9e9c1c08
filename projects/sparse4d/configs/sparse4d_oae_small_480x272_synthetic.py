# The outside-in additions on the small core config: the 12-layout synthetic
# checkpoint, which the shipped one fine-tunes (..._protocol_exclusion.py).
#   bash tools/recipes/synthetic_scenes.sh
#   bash tools/recipes/train_synthetic.sh \
#       projects/sparse4d/configs/sparse4d_oae_small_480x272_synthetic.py work_dirs/oae_small
_base_ = ['../../../configs/sparse4d/sparse4d_small_480x272_synthetic.py']

custom_imports = dict(imports=['projects.sparse4d.sparse4d'], allow_failed_imports=False)

# >= the training set's asset ids (asset_ids.json from tools/create_data.py): the recipe's
# 12 scenes have 144.
num_ids = 256

model = dict(
    head=dict(
        deformable_model=dict(camera_encoder=dict(type='ProjectionCameraEmbedding')),
        reid_branch=dict(
            type='OcclusionAwareReIDBranch', embed_dims=_base_.embed_dims, num_ids=num_ids
        ),
    )
)
