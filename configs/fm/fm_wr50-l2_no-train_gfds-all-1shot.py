# Paper Table 5: ImageNet-supervised wide_resnet50_2 layer2 features.
# All 12 GFDS products (54 categories), 1-way 1-shot, as in Table 4/5.
_base_ = [
    '../_base_/models/fm_matcher.py',
    '../_base_/datasets/gfds_all.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNetLayer',
        arch='wide_resnet50_2',
        out_layer='layer2',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision_wide_resnet50_2'),
    )
)
