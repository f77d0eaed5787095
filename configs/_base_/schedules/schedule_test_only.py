# Training-free methods: evaluation only (tools/test.py, no checkpoint).
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=-1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # tools/test.py --show-dir switches drawing on.
    visualization=dict(type='FewShotVisualizationHook', draw=False),
)
