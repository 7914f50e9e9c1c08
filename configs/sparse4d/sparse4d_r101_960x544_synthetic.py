# NVIDIA TAO's backbone: ResNet-101.
_base_ = ['./sparse4d_r50_960x544_synthetic.py']

# From scratch like the R50 config unless given an ImageNet start (torchvision's
# resnet101-*.pth): model.img_backbone.init_cfg as there.
model = dict(img_backbone=dict(depth=101))
