# FM-l + FastSAM-s (Table 4 "FM-l+FastSAM-s").
#
#   python tools/test.py configs/fm/fm-fastsam-s_pdn-l_no-train_synthetic-all-1shot.py
#
# Random weights (smoke run):
#   --cfg-options model.backbone.init_cfg=None model.refiner.checkpoint=None
_base_ = [
    '../_base_/models/fm_fastsam.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(refiner=dict(model='s', checkpoint='fastsam_s'))
