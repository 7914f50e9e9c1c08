# NVIDIA TAO's Sparse4D as trained for NGC's sparse4d_rn50 trainable_v2.2 warehouse model:
# ResNet-50 with frozen batch norm, 1408x512 input (TAO's input_shape, W x H), 7 classes, a
# camera embedding, per-camera weight slots for up to 20 cameras (the model base's), and
# TAO's inference behaviour. For checkpoints converted by
# tools/model_converters/tao_to_mmsparse4d.py, to test or to fine-tune with load_from.
_base_ = ['./sparse4d_r50_960x544_synthetic.py']

# TAO's 7-class order as TAO itself lists it (TAO-PT tests/cv_unit_test/sparse4d/
# test_export.py and its 2D-to-3D distillation guide: person, gr1_t2, agility_digit,
# nova_carter, transporter, forklift, pallet_truck), in this repository's spelling. NGC's
# model card is not among the sources here: check the order against it before trusting the
# class names of a converted model.
class_names = (
    'Person',
    'FourierGR1T2',
    'AgilityDigit',
    'NovaCarter',
    'Transporter',
    'Forklift',
    'PalletTruck',
)
num_classes = len(class_names)
metainfo = dict(classes=class_names)
image_size = (1408, 512)

model = dict(
    # TAO freezes every batch norm of its backbone (timm ResNet, freeze_norm=True).
    # Every weight comes from the converted checkpoint (load_from): no ImageNet start to
    # fetch (the torchvision:// one needs torchvision, which this stack does not install).
    img_backbone=dict(norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, init_cfg=None),
    # TAO's inference behaviour where ours differs: docs/tao.md#compatibility-settings
    # (fine-tuning may switch them off, except velocity_residual, which the weights encode).
    head=dict(
        first_frame_temporal_value='query',
        instance_bank=dict(default_time_interval=0.033333, temporal_validity='tao'),
        deformable_model=dict(use_camera_embed=True, behind_camera='clamp_depth'),
        refine_layer=dict(num_cls=num_classes, velocity_residual=False, size_range=None),
        sampler=dict(num_classes=num_classes),
    ),
)

train_pipeline = [
    dict(step, final_size=image_size) if step.type == 'MultiViewImageAugmentation' else step
    for step in _base_.train_pipeline
]
test_pipeline = [
    dict(step, final_size=image_size) if step.type == 'MultiViewImageAugmentation' else step
    for step in _base_.test_pipeline
]
train_dataloader = dict(dataset=dict(metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(metric, class_names=class_names) for metric in _base_.val_evaluator]
test_evaluator = val_evaluator

# TAO's fine-tuning recipe (its experiment_spec.yaml): the backbone at 0.25x the base rate.
backbone_lr_mult = 0.25
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys=dict(img_backbone=dict(lr_mult=backbone_lr_mult)))
)
