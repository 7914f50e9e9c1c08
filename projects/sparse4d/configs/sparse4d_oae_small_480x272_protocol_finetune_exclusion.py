# The protocol fine-tuning (sparse4d_oae_small_480x272_protocol_finetune.py) with the instance
# bank's new-query exclusion: a current query within 0.75 footprints of a carried instance of
# confidence >= 0.2 joins the cache only when too few others are left (InstanceBank's
# docstring), in training and tracking. The fine-tuning without it found more objects than the
# shipped model and lost identities to duplicate detections (docs/evaluation.md). 1000
# iterations: the cosine ends within one H200's 30 minutes, set-up and data included.
#   START_ANCHORS=learned \
#   CONFIG=projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol_finetune_exclusion.py \
#   bash tools/recipes/train_protocol.sh work_dirs/protocol_exclusion 570
_base_ = ['./sparse4d_oae_small_480x272_protocol_finetune.py']

max_iters = 1000
model = dict(
    head=dict(instance_bank=dict(new_query_exclusion=dict(radius=0.75, min_confidence=0.2)))
)
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
