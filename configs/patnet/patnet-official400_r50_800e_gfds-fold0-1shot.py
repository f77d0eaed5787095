# PATNet as the official code trains and tests: 400x400 input, no
# augmentation. The official code also resizes support masks with plain
# bilinear interpolation (no small-defect rule of Sec. 6): add
#   --cfg-options model.head.mask_downsample=bilinear
# for that too. The paper's setting (256x256, flips / rot90) is
# patnet_r50_800e_gfds-fold0-1shot.py.
_base_ = ['./patnet_r50_800e_gfds-fold0-1shot.py']

official_pipeline = [
    dict(type='LoadEpisode'),
    dict(type='ResizeEpisode', scale=(400, 400)),
    dict(type='BinarizeEpisodeMasks'),
    dict(type='PackEpisodeInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=official_pipeline))
val_dataloader = dict(dataset=dict(pipeline=official_pipeline))
test_dataloader = dict(dataset=dict(pipeline=official_pipeline))
