# FM-s + FastSAM (Table 5 "FM-s" w/ FastSAM): the c=128 student.
#
#   python tools/test.py configs/fm/fm-fastsam_pdn-s_no-train_synthetic-all-1shot.py
#
# Random weights (smoke run):
#   --cfg-options model.backbone.init_cfg=None model.refiner.checkpoint=None
_base_ = [
    '../_base_/models/fm_fastsam.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(
    backbone=dict(
        size='small', init_cfg=dict(type='Pretrained', checkpoint='gfds_fm_small')
    )
)
