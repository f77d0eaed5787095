# SAM2 video-track mode for few-shot defect segmentation (paper Sec. 5.2,
# Table 4 "SAM2-x(res)" rows): the supports with their masks are the
# conditioning frames of a video, the query is the next frame.
# Training-free: evaluate with tools/test.py (no fdseg checkpoint).
#
# Weights: `checkpoint` is a name of the offline resolver
# (fdseg.utils.checkpoints: sam2.1_hiera_{tiny,small,base_plus,large}; put
# the official .pt file into $FDSEG_CHECKPOINT_DIR or
# ~/.cache/fdseg/checkpoints). `--cfg-options model.checkpoint=None` runs
# with random weights (smoke tests).
model = dict(
    type='SAM2VideoSegmentor',
    # Undone inside the segmentor: SAM2 gets the official loader's frames.
    data_preprocessor=dict(type='EpisodeDataPreprocessor'),
    model_cfg='small',  # tiny | small | base_plus | large (SAM2.1)
    checkpoint='sam2.1_hiera_small',
    # The benchmark images are 256x256 (Sec. 6.1); SAM2 resizes them to
    # image_size (256 keeps them, 512 / 1024 upsample).
    image_size=1024,
    # As the official SAM2VideoPredictor (build_sam2_video_predictor).
    fill_hole_area=8,
    binarize_mask_for_mem_enc=True,
    mem_dtype='bfloat16',
    # bf16 autocast on CUDA, as the official code (Sec. 6.3); no-op on CPU.
    autocast=True,
    # A way whose supports hold no defect pixel: all-background query.
    empty_support='background',
    # Support memories are computed once per support set and reused.
    support_cache_size=8,
)
