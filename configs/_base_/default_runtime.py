# Runtime shared by every fdseg config.
default_scope = 'fdseg'
# fdseg.engine.FDSegRunner: loads fdseg's own checkpoints (resume, load_from,
# tools/test.py <ckpt>) with weights_only=False and supports CPU (gloo) DDP.
runner_type = 'FDSegRunner'

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # 'auto': FDSegRunner picks 'nccl' when CUDA is available and 'gloo'
    # otherwise (CPU DDP); set 'nccl' / 'gloo' explicitly to override.
    dist_cfg=dict(backend='auto'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='FewShotSegVisualizer', vis_backends=vis_backends, name='visualizer'
)

log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
