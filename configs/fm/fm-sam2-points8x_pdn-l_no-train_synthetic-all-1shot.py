# Table 8 "points(8x)": every 8th R0 pixel (row-major order) is a
# one-point prompt; point_sampling='grid' takes an 8-pixel lattice instead.
#
#   python tools/test.py configs/fm/fm-sam2-points8x_pdn-l_no-train_synthetic-all-1shot.py
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
model = dict(
    refiner=dict(prompt_mode='points', point_stride=8, point_sampling='raster')
)
