# NVIDIA TAO's backbone: ResNet-101.
_base_ = ['./sparse4d_r50_960x544_synthetic.py']

model = dict(
    img_backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')
    )
)
