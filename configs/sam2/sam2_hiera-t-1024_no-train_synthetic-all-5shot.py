# Table 4 "SAM2-t(1024)", 5-shot: SAM2.1 video-track mode on the offline
# synthetic benchmark (the GFDS fold configs follow the same pattern).
#
#   python tools/test.py \
#       configs/sam2/sam2_hiera-t-1024_no-train_synthetic-all-5shot.py
#
# Random weights: --cfg-options model.checkpoint=None
_base_ = [
    '../_base_/models/sam2_video.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(model_cfg='tiny', checkpoint='sam2.1_hiera_tiny', image_size=1024)

test_dataloader = dict(dataset=dict(shot=5))
