# FM-l refined by SAM2 with prompts derived from R0 (paper Sec. 7.2,
# Table 8): the FastSAM fusion unchanged, FastSAM replaced by SAM2.1-s with
# the query up-sampled to 1024. Experiment configs pick the prompt mode.
#
# Weights: model_large.pth and sam2.1_hiera_small.pt through the offline
# resolver. Random weights (smoke runs):
#   --cfg-options model.backbone.init_cfg=None model.refiner.checkpoint=None
_base_ = ['./fm_matcher.py']

model = dict(
    refiner=dict(
        type='SAM2PromptRefiner',
        model='s',  # SAM2.1 t | s | b+ | l
        checkpoint='sam2.1_hiera_small',
        image_size=1024,
        prompt_mode='center_points',
        points_per_side=32,
        point_stride=1,
        prompts_per_batch=64,
        multimask_output='auto',
        fusion=dict(variant='official'),
    )
)
