# Runtime and epoch schedule of episodic (meta-learning) training, shared by
# PFENet, SSP, HSNet and PATNet (docs/meta_learning.md). Includes
# default_runtime.py: list it INSTEAD of default_runtime.py, e.g.
#   _base_ = ['../_base_/models/pfenet_r50-deep.py',
#             '../_base_/datasets/gfds_episodic_fold0.py',
#             './pfenet_400e.py']   # which has _base_ = ['./episodic_epoch.py']
# A method's own schedule file inherits this one and overrides the
# optimizer, param_scheduler and train_cfg.max_epochs (lists are replaced).
#
# Epoch = one pass over the training subset's query images, each with
# supports drawn afresh (EpisodeSampler); every val_interval epochs the
# test fold is evaluated (the test-set mIoU of Fig. 7) and the best
# checkpoint by its mIoU is kept (best_mIoU_epoch_<e>.pth); every
# default_hooks.train_miou.interval epochs a fixed sample of training
# episodes is evaluated (the train-set mIoU of Fig. 7). Plot them with
# tools/analysis_tools/plot_training_curves.py <work_dir>.
_base_ = ['../default_runtime.py']

# Fixed seed: model initialisation and the episode order (the sampler's
# seed) are the same in every run, and a resumed run continues exactly.
randomness = dict(seed=0)

# Placeholder optimizer (each method's schedule sets the official one).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4),
    clip_grad=None,
)
param_scheduler = []

max_epochs = 200
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# Loss / lr lines carry the epoch; metrics are logged per epoch
# (vis_data/scalars.json: train lines with "epoch", val and train-mIoU lines
# with "step" = finished epochs).
log_processor = dict(by_epoch=True)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=True,
        interval=10,
        max_keep_ckpts=2,
        save_last=True,
        # Best test-fold mIoU of the validation loop (val_evaluator).
        save_best='mIoU',
        rule='greater',
    ),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='FewShotVisualizationHook', draw=False),
    # Train-set mIoU of Fig. 7 (a hook here, not in custom_hooks, which the
    # dataset bases already define): disable with default_hooks.train_miou.interval=0.
    train_miou=dict(
        type='EpisodicTrainMIoUHook', interval=10, num_episodes=100, seed=0
    ),
)
