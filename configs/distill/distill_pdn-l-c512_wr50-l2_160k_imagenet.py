# Fig. 9 teacher: layer2 of ImageNet WideResNet-50-2 (teacher input 512 ->
# 64x64x512); FM-l student with 512 output channels (paper Sec. 7.1.2).
_base_ = [
    '../_base_/models/distill_pdn-l-c512_wide-resnet-l2.py',
    '../_base_/datasets/imagenet_distill.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_160k_adam.py',
]
val_cfg = None
test_cfg = None
