# Table 4 "SAM2-s(1024)", 1-shot, GFDS cross-domain fold1 (Table 2):
# SAM2.1 video-track mode (training-free, so the test fold is all it uses).
#
#   python tools/test.py \
#       configs/sam2/sam2_hiera-s-1024_no-train_gfds-fold1-1shot.py
#
# Random weights: --cfg-options model.checkpoint=None
_base_ = [
    '../_base_/models/sam2_video.py',
    '../_base_/datasets/gfds_fold1.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(model_cfg='small', checkpoint='sam2.1_hiera_small', image_size=1024)
test_evaluator = dict(method_name='SAM2-s(1024)')
