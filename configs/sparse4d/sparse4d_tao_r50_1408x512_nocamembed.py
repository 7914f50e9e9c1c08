# TAO's Sparse4D without the camera embedding (its spec's default, use_camera_embed: false):
# one aggregation-weight slot per camera instead, up to max_num_cams (20).
_base_ = ['./sparse4d_tao_r50_1408x512.py']

model = dict(head=dict(deformable_model=dict(use_camera_embed=False)))
