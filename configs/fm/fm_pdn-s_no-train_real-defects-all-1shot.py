# FM-s (paper Table 4/5) on the three real defect datasets of ../shared/data
# (configs/_base_/datasets/real_defects.py); the speed benchmark of
# docs/deploy.md runs on it.
_base_ = [
    '../_base_/models/fm_matcher.py',
    '../_base_/datasets/real_defects.py',
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
test_evaluator = dict(method_name='FM-s')
