# Paper Table 5: DINO vit_small_patch8 last-block patch tokens at 256x256.
# Offline synthetic benchmark; random-weight smoke runs: --cfg-options model.backbone.init_cfg=None
_base_ = [
    '../_base_/models/fm_matcher.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(
    backbone=dict(
        _delete_=True,
        type='DINOViT',
        arch='vit_small_patch8',
        init_cfg=dict(type='Pretrained', checkpoint='dino_vits8'),
    )
)
