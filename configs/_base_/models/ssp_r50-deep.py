# SSP (Fan et al., ECCV 2022) on the official deep-stem ResNet-50
# (fanq15/SSP, model/resnet.py), as GFDS uses it (Sec. 6.1.1): layer0..layer3
# only, layer3 dilated (torchvision style: its first block keeps dilation 1)
# without the ReLU after its last block, 1024-d features at stride 8. Stem and
# layer1 frozen, layer2-3 trained, every BatchNorm frozen in eval mode
# (official main.py). The head has no parameters (decoder-free).
model = dict(
    type='FewShotSegmentor',
    data_preprocessor=dict(type='EpisodeDataPreprocessor'),
    backbone=dict(
        type='ResNetDeepStem',
        depth=50,
        num_stages=3,
        strides=(1, 2, 1),
        dilations=(1, 1, 2),
        contract_dilation=True,
        last_relu=False,
        out_indices=(2,),  # layer3
        frozen_stages=1,  # stem and layer1
        norm_eval=True,
        norm_requires_grad=False,
        init_cfg=dict(type='Pretrained', checkpoint='ssp_resnet50'),
    ),
    head=dict(
        type='SSPHead',
        refine=True,  # official all.sh trains with --refine
        scale=10.0,
        fg_thresh=0.7,
        bg_thresh=0.6,
        topk=12,
        fg_mix=(0.5, 0.5),
        bg_mix=(0.3, 0.7),
        refine_mix=(0.5, 0.2, 0.3),
        refine_out_mix=(0.7, 0.3),
        support_loss_weight=0.2,
        mask_downsample='bilinear_nearest',
        align_corners=True,
        ignore_index=255,
    ),
    freeze_backbone=False,  # layer2-3 train (frozen_stages freezes the rest)
)
