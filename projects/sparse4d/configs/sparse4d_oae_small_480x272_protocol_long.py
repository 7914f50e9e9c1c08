# The protocol fine-tuning (sparse4d_oae_small_480x272_protocol.py) on fewer, longer scenes:
# 40 training layouts (seeds 0-39) of 300 frames each instead of 64 of 128, so the sampler's
# 4 splits give 75-frame training sequences (the shipped model's length) instead of 32;
# 1200 iterations. Everything else is the protocol config's.
#   SCENES=40 FRAMES=300 \
#   CONFIG=projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol_long.py \
#   bash tools/recipes/train_protocol.sh work_dirs/protocol_long 560
_base_ = ['./sparse4d_oae_small_480x272_protocol.py']

max_iters = 1200
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
