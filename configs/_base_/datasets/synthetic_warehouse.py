# Synthetic warehouse scenes converted by tools/create_data.py:
#   python tools/make_synthetic.py data/synthetic/raw/Warehouse_000 --seed 0
#   python tools/create_data.py data/synthetic/raw/Warehouse_000 --out data/synthetic/ovpkl/train \
#       --data-root data/synthetic/raw
# (ann_file is relative to data_root, as mmengine joins them.)
dataset_type = 'OVPKLDataset'
data_root = 'data/synthetic/raw/'
class_names = ('Person', 'Forklift', 'NovaCarter', 'Transporter', 'FourierGR1T2', 'AgilityDigit')
metainfo = dict(classes=class_names)
class_range = 40.0
image_size = (960, 544)  # (W, H) the network sees
depth_strides = (4, 8, 16)
# Upstream Sparse4D's augmentation ranges: the images' rotation in degrees, the scene's about
# the vertical axis in radians (about +-22.5 degrees).
image_rotation_range = (-5.4, 5.4)
global_rotation_range = (-0.3925, 0.3925)

# A config with another image size or augmentation derives both pipelines from these
# (`_base_.train_pipeline`), replacing the steps it changes.
train_pipeline = [
    dict(type='RandomCameraDrop', min_cameras=2, prob=0.3),
    dict(type='LoadMultiViewImages'),
    dict(type='LoadMultiViewDepth'),
    dict(
        type='MultiViewImageAugmentation',
        final_size=image_size,
        resize_range=(1.0, 1.15),
        crop='bottom',
        flip_prob=0.5,
        rotate_range=image_rotation_range,
    ),
    dict(type='GlobalRotation3D', rotation_range=global_rotation_range),
    dict(type='MultiViewPhotometricDistortion'),
    dict(type='MultiScaleDepthTargets', strides=depth_strides),
    dict(type='PackSparse4DInputs'),
]
test_pipeline = [
    dict(type='LoadMultiViewImages'),
    dict(type='MultiViewImageAugmentation', final_size=image_size, test_mode=True),
    dict(type='PackSparse4DInputs'),
]

# What every split's dataset shares; each adds its annotation folder and pipeline.
dataset_common = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    class_range=class_range,
    lazy_init=True,
)

train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    collate_fn=dict(type='mmsparse4d.multiview_collate'),  # stacked in the workers
    sampler=dict(
        type='SequentialGroupSampler',
        batch_size=1,
        fps_choices=(30, 15, 10, 6, 5),
        skip_prob=0.05,
        split_num=2,
    ),
    dataset=dict(dataset_common, ann_file='../ovpkl/train', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=False,
    collate_fn=dict(type='mmsparse4d.multiview_collate'),  # stacked in the workers
    sampler=dict(type='SequenceTestSampler'),  # whole scenes per rank, every frame once
    dataset=dict(dataset_common, ann_file='../ovpkl/val', pipeline=test_pipeline, test_mode=True),
)
test_dataloader = val_dataloader

val_evaluator = [
    dict(type='AICityHOTAMetric', class_names=class_names, score_threshold=0.2),
    dict(type='DetectionAPMetric', class_names=class_names),
]
test_evaluator = val_evaluator
