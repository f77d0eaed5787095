# HSNet (Min et al., ICCV 2021), GFDS Table 4 rows "HSNet" / "HSNet*":
# frozen plain torchvision ResNet-50 (eval mode) whose 13 bottleneck outputs
# of layer2..layer4 (before each block's last ReLU) are correlated with the
# masked support features; the center-pivot 4D learner is the only trained
# part. docs/meta_learning.md lists the official-code choices and deviations.
model = dict(
    type='FewShotSegmentor',
    data_preprocessor=dict(type='EpisodeDataPreprocessor'),
    backbone=dict(
        type='ResNetBottlenecks',
        arch='resnet50',
        layers=('layer2', 'layer3', 'layer4'),
        frozen=True,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision_resnet50'),
    ),
    head=dict(
        type='HSNetHead',
        stage_sizes=(4, 6, 3),
        # Paper Sec. 6: the official bilinear (align_corners) resize, nearest
        # where a small defect would vanish; 'bilinear' = official code.
        mask_downsample='bilinear_nearest',
        mask_align_corners=True,
        vote_threshold=0.5,  # K-shot vote (official predict_mask_nshot)
    ),
    freeze_backbone=True,
)
