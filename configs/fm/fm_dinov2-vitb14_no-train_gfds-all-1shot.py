# Paper Table 5: DINOv2 vit_base_patch14, image upsampled to 266x266 (Sec. 7.1.1).
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
        type='DINOv2ViT',
        arch='vit_base_patch14',
        input_size=266,
        init_cfg=dict(type='Pretrained', checkpoint='dinov2_vitb14'),
    )
)
