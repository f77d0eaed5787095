# Paper Table 4/5: FM-s, the PDN student (c=128) distilled from DINO ViT-S/8.
# Offline synthetic benchmark (generated on first use); random-weight smoke runs: --cfg-options model.backbone.init_cfg=None
_base_ = [
    '../_base_/models/fm_matcher.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(
    backbone=dict(
        _delete_=True,
        type='PDNStudent',
        size='small',
        out_channels=384,
        init_cfg=dict(type='Pretrained', checkpoint='gfds_fm_small'),
    )
)
