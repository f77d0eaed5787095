# Table 4 "Matcher" (SAM v1 ViT-H + DINOv2 ViT-L/14 at 266), 1-shot, GFDS fold1.
# Training-free.
#
#   python tools/test.py configs/matcher/matcher_sam-vith_dinov2-vitl14_no-train_gfds-fold1-1shot.py
#
# Random weights: --cfg-options model.checkpoint=None model.encoder.init_cfg=None
_base_ = [
    '../_base_/models/matcher_sam-vith_dinov2-vitl14.py',
    '../_base_/datasets/gfds_fold1.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
test_evaluator = dict(method_name='Matcher')
