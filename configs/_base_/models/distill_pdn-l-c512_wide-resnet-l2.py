# FM-l student distilled from the layer2 of an ImageNet-supervised
# WideResNet (paper Sec. 7.1.2, Fig. 9): teacher input 512 -> 64x64x512
# (stride 8), so the student's output channels become 512.
model = dict(
    type='FeatureDistiller',
    data_preprocessor=dict(type='DistillDataPreprocessor'),
    teacher=dict(
        type='ResNetLayer',
        arch='wide_resnet50_2',
        out_layer='layer2',
        frozen=True,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision_wide_resnet50_2'),
    ),
    student=dict(type='PDNStudent', size='large', out_channels=512, padding=True),
    loss_decode=dict(type='DistillL2Loss', loss_weight=1.0),
    teacher_input_size=512,
    teacher_norm=None,
)
