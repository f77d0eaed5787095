# PerSAM (Zhang et al. 2023), training-free, Table 4 "PerSAM" row: SAM v1
# ViT-H at 1024 personalised by the one reference (1-shot only).
# Defaults: the official persam.py (ZrrSkywalker/Personalize-SAM):
# positive + negative location prior (top-1 each), target-guided attention,
# target-semantic prompting, single-mask first step, two cascaded
# post-refinements. variant='persam_f' is persam_f.py (1000 AdamW steps on
# the 2 mask weights, lr 1e-3, eps 1e-4, cosine schedule).
#
# Weights: `checkpoint` is a name of the offline resolver (sam_vit_h ->
# sam_vit_h_4b8939.pth in $FDSEG_CHECKPOINT_DIR or ~/.cache/fdseg/checkpoints);
# `--cfg-options model.checkpoint=None` runs with random weights. Needs the
# `sam` extra: pip install "fdseg[sam]".
model = dict(
    type='PerSAMSegmentor',
    data_preprocessor=dict(type='EpisodeDataPreprocessor'),
    sam_arch='vit_h',  # vit_h | vit_l | vit_b (tiny: tests)
    checkpoint='sam_vit_h',
    variant='persam',  # persam | persam_f
    target_guided_attention=True,
    target_semantic_prompting=True,
    num_refinements=2,
    topk=1,
    # A defect that vanishes on SAM's 64x64 grid (the official code's NaN):
    # fdseg.models.utils.downsample_mask with this mode.
    small_defect_rule='bilinear_nearest',
    persam_f_epochs=1000,
    persam_f_lr=1e-3,
    persam_f_eps=1e-4,
    empty_support='background',
    support_cache_size=8,
)
