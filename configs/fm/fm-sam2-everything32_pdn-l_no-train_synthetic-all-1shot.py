# Table 8 "everything(32)": SAM2.1-s (1024) automatic mask generator on a
# 32x32 point grid.
#
#   python tools/test.py configs/fm/fm-sam2-everything32_pdn-l_no-train_synthetic-all-1shot.py
#
# Random weights, quick smoke run (SAM2.1-t at 256, 4 queries):
#   --cfg-options model.backbone.init_cfg=None model.refiner.checkpoint=None \
#       model.refiner.model=t model.refiner.image_size=256 \
#       test_dataloader.dataset.indices=4
_base_ = [
    '../_base_/models/fm_sam2-prompt.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(refiner=dict(prompt_mode='everything', points_per_side=32))
