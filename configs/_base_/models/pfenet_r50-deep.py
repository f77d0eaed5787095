# PFENet (Tian et al., TPAMI 2020) on the deep-stem ResNet-50 of the
# official code (dvlab-research/PFENet), as GFDS trains it (Sec. 6.1.1).
# Backbone: every parameter frozen (official train.py), layer3 / layer4
# dilated 2 / 4 in every block (output stride 8), BatchNorm left in train
# mode as the official model.train() leaves it (batch statistics; running
# statistics updated under torch.no_grad). The head reads layer2, layer3,
# layer4 and runs the backbone's layer4 on the masked support layer3 for its
# prior (FewShotSegmentor attaches the backbone to the head).
model = dict(
    type='FewShotSegmentor',
    data_preprocessor=dict(type='EpisodeDataPreprocessor'),
    backbone=dict(
        type='ResNetDeepStem',
        depth=50,
        num_stages=4,
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        contract_dilation=False,
        last_relu=True,
        out_indices=(1, 2, 3),  # layer2, layer3, layer4
        frozen_stages=4,  # stem and layer1..layer4: nothing trains
        norm_eval=False,  # official: BN in train mode (see docs)
        init_cfg=dict(type='Pretrained', checkpoint='pfenet_resnet50_v2'),
    ),
    head=dict(
        type='PFENetHead',
        in_channels=(512, 1024, 2048),
        in_index=(0, 1, 2),
        prior_stage=3,  # layer4 on the masked support layer3
        reduce_dim=256,
        ppm_scales=(60, 30, 15, 8),  # official config (absolute bin sizes)
        dropout=0.5,
        cls_dropout=0.1,
        aux_weight=1.0,
        # Sec. 6: bilinear (align_corners=True, official), nearest when a
        # small defect would vanish.
        mask_downsample='bilinear_nearest',
        align_corners=True,
        ignore_index=255,
    ),
    # The backbone is frozen by frozen_stages; False keeps the segmentor from
    # forcing it into eval mode (the official BN runs in train mode).
    freeze_backbone=False,
)
