# NVIDIA TAO's Sparse4D for NGC's sparse4d_rn101 trainable_v2.2: sparse4d_tao_r50_1408x512.py
# with TAO's ResNet-101.
_base_ = ['./sparse4d_tao_r50_1408x512.py']

model = dict(img_backbone=dict(depth=101))
