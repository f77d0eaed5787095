# Table 4 "SAM2-b(1024)", 1-shot: SAM2.1 video-track mode on the offline
# synthetic benchmark (the GFDS fold configs follow the same pattern).
#
#   python tools/test.py \
#       configs/sam2/sam2_hiera-bplus-1024_no-train_synthetic-all-1shot.py
#
# Random weights: --cfg-options model.checkpoint=None
_base_ = [
    '../_base_/models/sam2_video.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(
    model_cfg='base_plus', checkpoint='sam2.1_hiera_base_plus', image_size=1024
)
