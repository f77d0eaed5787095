# Table 7 "R_sam": only the FastSAM masks selected by R0 (eq. 12).
#
#   python tools/test.py configs/fm/fm-fastsam-rsam_pdn-l_no-train_synthetic-all-1shot.py
#
# Random weights (smoke run):
#   --cfg-options model.backbone.init_cfg=None model.refiner.checkpoint=None
_base_ = [
    '../_base_/models/fm_fastsam.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(refiner=dict(fusion=dict(strategy='sam')))
