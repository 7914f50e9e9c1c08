# The paper's ablation, core arm: the small core Sparse4D v3 (no camera embedding, no
# occlusion-aware re-identification) trained from scratch on the protocol's first 16 training
# layouts x 128 frames (tools/make_protocol_data.py), with the k-means anchors of their
# floors. Its outside-in arm (sparse4d_oae_small_480x272_protocol_outside_in.py) differs in
# the two outside-in additions only; both arms share this schedule and run once per seed:
#   bash tools/recipes/train_ablation.sh work_dirs/ablation 570
# (docs/evaluation.md#the-papers-ablation-core-against-outside-in).
_base_ = ['../../../../configs/sparse4d/sparse4d_small_480x272_synthetic.py']

data_root = 'data/protocol/raw/'
anchor_file = 'data/protocol/ovpkl/train/anchor_init_kmeans300.npy'

model = dict(head=dict(instance_bank=dict(anchor=anchor_file)))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

# From scratch at the 12-layout recipe's rate, in a sixth of its iterations (6400 samples):
# both arms and two seeds each fit two GPU commands when trained side by side on one GPU.
base_lr = 2e-3
max_iters = 400
warmup_iters = 50
param_scheduler = [
    dict(_base_.param_scheduler[0], end=warmup_iters),
    dict(_base_.param_scheduler[1], eta_min=base_lr * 1e-2, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
