default_scope = 'mmsparse4d'

log_interval = 50
checkpoint_interval = 1000

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=log_interval),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', interval=checkpoint_interval, by_epoch=False, max_keep_ckpts=3
    ),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# Checkpoints load with torch.load(weights_only=True), torch's default since 2.6.
custom_hooks = [dict(type='WeightsOnlyCheckpointHook'), dict(type='AmpScaleHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=log_interval, by_epoch=False)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
