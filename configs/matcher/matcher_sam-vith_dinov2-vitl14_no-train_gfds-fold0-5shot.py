# Table 4 "Matcher" (SAM v1 ViT-H + DINOv2 ViT-L/14 at 266), 5-shot, GFDS fold0.
# Training-free.
#
#   python tools/test.py configs/matcher/matcher_sam-vith_dinov2-vitl14_no-train_gfds-fold0-5shot.py
#
# Random weights: --cfg-options model.checkpoint=None model.encoder.init_cfg=None
_base_ = [
    '../_base_/models/matcher_sam-vith_dinov2-vitl14.py',
    '../_base_/datasets/gfds_fold0.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
# coco_5shot.sh: the K references are pooled; 5 masks merged.
model = dict(matcher_cfg=dict(num_merging_mask=5))
test_dataloader = dict(dataset=dict(shot=5))
test_evaluator = dict(method_name='Matcher-5shot')
