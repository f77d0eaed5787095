# Table 4 "PerSAM" (SAM v1 ViT-H, 1024), 1-shot, GFDS all. Training-free.
#
#   python tools/test.py configs/persam/persam_sam-vith_no-train_gfds-all-1shot.py
#
# Random weights: --cfg-options model.checkpoint=None
_base_ = [
    '../_base_/models/persam_sam-vith.py',
    '../_base_/datasets/gfds_all.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
test_evaluator = dict(method_name='PerSAM')
