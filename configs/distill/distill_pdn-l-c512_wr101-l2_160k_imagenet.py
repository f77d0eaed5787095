# Fig. 9 teacher: layer2 of ImageNet WideResNet-101-2 (teacher input 512 ->
# 64x64x512); FM-l student with 512 output channels (paper Sec. 7.1.2).
_base_ = ['./distill_pdn-l-c512_wr50-l2_160k_imagenet.py']
model = dict(
    teacher=dict(
        arch='wide_resnet101_2',
        init_cfg=dict(checkpoint='torchvision_wide_resnet101_2'),
    )
)
