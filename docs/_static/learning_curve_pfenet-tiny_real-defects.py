# The learning-curve check of docs/meta_learning.md (issue 11): PFENet with a
# randomly initialised, narrow deep-stem ResNet (base width 16, one block
# per layer; no pretrained file needed), trained episodically on two real
# products of ../shared/data (magnetic_tile, neu_seg) and tested on the
# third (crackforest), at 128x128 for CPU speed. Run from the repository:
#   nice -n 5 python tools/train.py \
#       docs/_static/learning_curve_pfenet-tiny_real-defects.py \
#       --work-dir work_dirs/learning_curve
#   python tools/analysis_tools/plot_training_curves.py \
#       work_dirs/learning_curve --out docs/_static/learning_curve_pfenet-tiny.png
_base_ = [
    '../../configs/_base_/models/pfenet_r50-deep.py',
    '../../configs/_base_/datasets/real_defects_episodic.py',
    '../../configs/_base_/schedules/pfenet_sgd_poly_400e.py',
]
_scale = (128, 128)
_train_pipeline = [
    dict(type='LoadEpisode'),
    dict(type='ResizeEpisode', scale=_scale),
    dict(type='BinarizeEpisodeMasks'),
    dict(type='RandomFlipEpisode', prob=0.5),
    dict(type='RandomRotate90Episode', prob=0.5),
    dict(type='PackEpisodeInputs'),
]
_test_pipeline = [
    dict(type='LoadEpisode'),
    dict(type='ResizeEpisode', scale=_scale),
    dict(type='BinarizeEpisodeMasks'),
    dict(type='PackEpisodeInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        # 12 queries per category: 8 categories -> 96 episodes per epoch.
        max_episodes_per_category=12,
        pipeline=_train_pipeline,
    ),
)
val_dataloader = dict(
    num_workers=0,
    dataset=dict(
        max_episodes_per_category=48,
        # Thin cracks can vanish at 128 px; PFENet needs a defect in every
        # support (a deviation from the evaluation protocol, for this check).
        empty_supports='redraw',
        pipeline=_test_pipeline,
    ),
)

model = dict(
    backbone=dict(
        base_channels=16, stage_blocks=(1, 1, 1, 1), init_cfg=None
    ),
    head=dict(in_channels=(128, 256, 512), reduce_dim=64),
)
max_epochs = 6
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=max_epochs,
         by_epoch=True, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
default_hooks = dict(
    logger=dict(interval=6),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1),
    train_miou=dict(interval=1, num_episodes=48, batch_size=4, before_train=True),
)
