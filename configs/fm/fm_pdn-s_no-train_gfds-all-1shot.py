# Paper Table 4/5: FM-s, the PDN student (c=128) distilled from DINO ViT-S/8.
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
        type='PDNStudent',
        size='small',
        out_channels=384,
        init_cfg=dict(type='Pretrained', checkpoint='gfds_fm_small'),
    )
)
