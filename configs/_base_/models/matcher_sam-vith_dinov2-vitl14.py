# Matcher (Liu et al., ICLR 2024), training-free, Table 4 "Matcher" row:
# DINOv2 ViT-L/14 pre-norm patch tokens at 266x266 (paper Sec. 6.1) for the
# matching, SAM v1 ViT-H at 1024 for the masks.
# Defaults: the official one-shot semantic-segmentation settings of
# aim-uofa/Matcher scripts/coco.sh (COCO-20i, 1-shot) over main_oss.py's
# defaults (every key below; 5-shot: num_merging_mask=5, coco_5shot.sh).
#
# Weights: SAM from `checkpoint` (sam_vit_h -> sam_vit_h_4b8939.pth),
# DINOv2 from the encoder's init_cfg (dinov2_vitl14 ->
# dinov2_vitl14_pretrain.pth), both through the offline resolver.
# Random weights: --cfg-options model.checkpoint=None model.encoder.init_cfg=None
# Needs the `sam` extra: pip install "fdseg[sam]".
model = dict(
    type='MatcherSegmentor',
    data_preprocessor=dict(type='EpisodeDataPreprocessor'),
    sam_arch='vit_h',
    checkpoint='sam_vit_h',
    encoder=dict(
        type='DINOv2ViT',
        arch='vit_large_patch14',
        final_norm=False,  # Matcher matches the pre-norm tokens (x_prenorm)
        init_cfg=dict(type='Pretrained', checkpoint='dinov2_vitl14'),
    ),
    input_size=266,  # paper; the official script feeds 518
    seed=0,  # prompt subsets and k-means, re-seeded per query
    max_kmeans_retries=100,
    matcher_cfg=dict(
        num_centers=8,
        use_box=False,
        use_points_or_centers=True,  # True: the matched points, no k-means
        sample_range=(1, 6),
        max_sample_iterations=64,
        alpha=1.0,
        beta=0.0,
        exp=0.0,
        emd_filter=0.0,
        purity_filter=0.02,
        coverage_filter=0.0,
        use_score_filter=True,
        deep_score_filter=0.33,
        deep_score_norm_filter=0.1,
        topk_scores_threshold=0.0,
        num_merging_mask=9,
    ),
    generator_cfg=dict(
        points_per_side=64,
        points_per_batch=64,
        pred_iou_thresh=0.88,
        stability_score_thresh=0.95,
        stability_score_offset=1.0,
        sel_pred_iou_thresh=0.85,
        sel_stability_score_thresh=0.90,
        sel_stability_score_offset=1.0,
        box_nms_thresh=0.65,
        dense_pred=True,
        multimask_output=False,
        output_layer=0,
        sel_multimask_output=True,
        sel_output_layer=3,
    ),
    empty_support='background',
    support_cache_size=8,
)
