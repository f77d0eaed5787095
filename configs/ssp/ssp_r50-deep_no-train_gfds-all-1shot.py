# "SSP before training" (GFDS Sec. 6.4: epoch 0, 20.1 mIoU over the whole
# benchmark): the SSP head on the ImageNet-pretrained deep-stem ResNet-50,
# no training. All 12 products (54 categories), 1-way 1-shot, 256x256.
_base_ = [
    '../_base_/models/ssp_r50-deep.py',
    '../_base_/datasets/gfds_all.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
