# FM-l student distilled from DINOv2 ViT-S/14 (paper Sec. 7.1.2, Fig. 9):
# teacher input 896 -> 64x64x384 tokens, matching the 256 student's map.
model = dict(
    type='FeatureDistiller',
    data_preprocessor=dict(type='DistillDataPreprocessor'),
    teacher=dict(
        type='DINOv2ViT',
        arch='vit_small_patch14',
        out_block=-1,
        final_norm=True,
        frozen=True,
        init_cfg=dict(type='Pretrained', checkpoint='dinov2_vits14'),
    ),
    student=dict(type='PDNStudent', size='large', out_channels=384, padding=True),
    loss_decode=dict(type='DistillL2Loss', loss_weight=1.0),
    teacher_input_size=896,
    teacher_norm=None,
)
