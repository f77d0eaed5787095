# Table 8 "center points+boxes": each connected component of R0 gives one
# prompt made of its bounding box and its centroid.
#
#   python tools/test.py configs/fm/fm-sam2-center-points-boxes_pdn-l_no-train_synthetic-all-1shot.py
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
model = dict(refiner=dict(prompt_mode='center_points_boxes', center='centroid'))
