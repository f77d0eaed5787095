# Table 7 "R0 ∪ R_sam": FM-l + FastSAM fused by a plain union (also the
# official main.py with useBoundary=False).
#
#   python tools/test.py configs/fm/fm-fastsam-union_pdn-l_no-train_synthetic-all-1shot.py
#
# Random weights (smoke run):
#   --cfg-options model.backbone.init_cfg=None model.refiner.checkpoint=None
_base_ = [
    '../_base_/models/fm_fastsam.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(refiner=dict(fusion=dict(strategy='union')))
