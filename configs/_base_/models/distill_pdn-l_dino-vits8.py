# GFDS FM-l feature distillation (paper Sec. 5.1.1, 6.1.2): the PDN student
# (c=256, 384 outputs) learns the last-block patch features of DINO ViT-S/8.
# Teacher input 512 -> 64x64x384 tokens; student input 256 -> 64x64x384.
model = dict(
    type='FeatureDistiller',
    data_preprocessor=dict(type='DistillDataPreprocessor'),
    teacher=dict(
        type='DINOViT',
        arch='vit_small_patch8',
        out_block=-1,
        final_norm=True,
        frozen=True,
        # fdseg.utils.checkpoints name: dino_deitsmall8_pretrain.pth.
        init_cfg=dict(type='Pretrained', checkpoint='dino_vits8'),
    ),
    student=dict(type='PDNStudent', size='large', out_channels=384, padding=True),
    # Paper: "the l2 loss" = mean squared error over the 64x64x384 maps.
    loss_decode=dict(type='DistillL2Loss', loss_weight=1.0),
    teacher_input_size=512,
    # None: raw teacher maps (paper). 'channel': EfficientAD's per-channel
    # standardisation; then add
    # custom_hooks = [dict(type='TeacherFeatureStatsHook', num_images=10000)].
    teacher_norm=None,
)
