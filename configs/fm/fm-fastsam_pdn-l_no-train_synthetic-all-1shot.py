# FM-l + FastSAM: the paper's full proposed method (Sec. 5.1; Table 4
# "FM-l+FastSAM", Table 7 "our fusion strategy"), official fusion.
#
#   python tools/test.py configs/fm/fm-fastsam_pdn-l_no-train_synthetic-all-1shot.py
#
# Random weights (smoke run):
#   --cfg-options model.backbone.init_cfg=None model.refiner.checkpoint=None
_base_ = [
    '../_base_/models/fm_fastsam.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
