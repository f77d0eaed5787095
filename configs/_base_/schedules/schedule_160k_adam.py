# The paper's distillation schedule: Adam (lr 1e-4, weight decay 1e-5) at a
# constant learning rate for 160k iterations.
optimizer = dict(type='Adam', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-5)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
# Constant LR: no scheduler (an empty list keeps the key overridable).
param_scheduler = []

train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=10000,
        max_keep_ckpts=3,
        save_last=True,
    ),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Off during training; tools/test.py --show-dir switches drawing on.
    visualization=dict(type='FewShotVisualizationHook', draw=False),
)
