# Training-free prototype matcher (paper Sec. 5.1.2) on the classical filter
# bank: the offline default model (no weights to download).
model = dict(
    type='FewShotSegmentor',
    data_preprocessor=dict(type='EpisodeDataPreprocessor'),
    backbone=dict(type='FilterBank', stride=4),
    head=dict(
        type='PrototypeMatcherHead',
        fg_strategy='patch',
        bg_strategy='dense',
        patch_mode='sequence',
        distance='cosine',
    ),
    freeze_backbone=True,
)
