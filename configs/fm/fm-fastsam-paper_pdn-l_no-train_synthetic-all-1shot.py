# FM-l + FastSAM with the fusion as the paper's equations state it (eqs.
# 9-14: no area rule in the selection, the masks partition the image, a
# component covered >= tau2 by any dilated mask is dropped whole), instead
# of the official main.py behaviour; see docs/refiners.md.
#
#   python tools/test.py configs/fm/fm-fastsam-paper_pdn-l_no-train_synthetic-all-1shot.py
#
# Random weights (smoke run):
#   --cfg-options model.backbone.init_cfg=None model.refiner.checkpoint=None
_base_ = [
    '../_base_/models/fm_fastsam.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(
    refiner=dict(
        fusion=dict(
            _delete_=True,
            variant='paper',
            strategy='morph',
            tau1=0.2,
            tau2=0.9,
            kernel_size=21,
            connectivity=4,
        )
    )
)
