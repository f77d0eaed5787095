# Paper Table 4/5: FM-l, the PDN student (c=256) distilled from DINO ViT-S/8.
# Offline synthetic benchmark (generated on first use); random-weight smoke runs: --cfg-options model.backbone.init_cfg=None
_base_ = [
    '../_base_/models/fm_matcher.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
