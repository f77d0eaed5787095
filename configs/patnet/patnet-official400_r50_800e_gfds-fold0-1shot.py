# PATNet as the official code trains and tests: 400x400 input, no
# augmentation, plain bilinear (align_corners) support-mask resizing (no
# small-defect rule). The paper's setting (256x256, flips / rot90, Sec. 6
# mask rule) is patnet_r50_800e_gfds-fold0-1shot.py.
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
model = dict(head=dict(mask_downsample='bilinear'))
