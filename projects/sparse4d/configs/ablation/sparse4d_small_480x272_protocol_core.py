# The paper's ablation, core arm: the small core Sparse4D v3 (no camera embedding, no
# occlusion-aware re-identification) trained on the protocol's first 16 training layouts
# x 128 frames (tools/make_protocol_data.py) with the k-means anchors of their floors. Its
# outside-in arm (sparse4d_oae_small_480x272_protocol_outside_in.py) differs in the two
# outside-in additions only; both arms share this start and schedule and run once per seed:
#   bash tools/recipes/train_ablation.sh work_dirs/ablation 570
# (docs/evaluation.md#the-papers-ablation-core-against-outside-in).
_base_ = ['../../../../configs/sparse4d/sparse4d_small_480x272_synthetic.py']

data_root = 'data/protocol/raw/'
anchor_file = 'data/protocol/ovpkl/train/anchor_init_kmeans300.npy'

model = dict(head=dict(instance_bank=dict(anchor=anchor_file)))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

# Both arms start from trained image features and an untrained head, as the paper's arms
# start from a pretrained backbone: the shipped checkpoint's backbone and FPN with these
# anchors, written by the recipe (tools/model_converters/finetune_start.py --keep). From
# scratch, 400 iterations leave both arms unable to detect (HOTA 2-7), and the 2600 after
# which a from-scratch model detects cost about four times this schedule's GPU time.
load_from = 'work_dirs/ablation_features_start.pth'
pretrained_lr_mult = 0.2  # TAO's rate for its pretrained backbone
base_lr = 1e-3
max_iters = 600
warmup_iters = 50
optim_wrapper = dict(
    optimizer=dict(lr=base_lr),
    paramwise_cfg=dict(
        custom_keys=dict(
            img_backbone=dict(lr_mult=pretrained_lr_mult),
            img_neck=dict(lr_mult=pretrained_lr_mult),
        )
    ),
)
param_scheduler = [
    dict(_base_.param_scheduler[0], end=warmup_iters),
    dict(_base_.param_scheduler[1], eta_min=base_lr * 1e-2, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
