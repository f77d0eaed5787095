# Feature matching (paper Sec. 5.1): a frozen dense feature extractor + the
# training-free prototype matcher with the paper's prototypes (f_patch,
# b_dense, cosine; official GFDS behaviour: 'sequence' patch averaging,
# 'cover' support-mask mapping, bilinear upsampling of the similarity maps
# before the argmax). The default extractor is FM-l, the PDN student
# distilled from DINO ViT-S/8 (GFDS release model_large.pth, loaded offline
# through fdseg.utils.checkpoints).
model = dict(
    type='FewShotSegmentor',
    data_preprocessor=dict(type='EpisodeDataPreprocessor'),
    backbone=dict(
        type='PDNStudent',
        size='large',
        out_channels=384,
        init_cfg=dict(type='Pretrained', checkpoint='gfds_fm_large'),
    ),
    head=dict(
        type='PrototypeMatcherHead',
        fg_strategy='patch',
        bg_strategy='dense',
        patch_mode='sequence',
        distance='cosine',
        upsample='logits',
        mask_downsample='cover',
    ),
    freeze_backbone=True,
)
