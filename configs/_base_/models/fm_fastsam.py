# The paper's full proposed method (Sec. 5.1, Fig. 5): the FM-l student
# (DINO ViT-S/8 distilled into a PDN) + the training-free prototype matcher
# (f_patch, b_dense, cosine; Sec. 5.1.2, Table 6) + FastSAM fusion
# (Sec. 5.1.3, eqs. 9-14). Training-free at test time.
#
# Weights go through the offline resolver (fdseg.utils.checkpoints): put
# model_large.pth (GFDS release) and FastSAM-x.pt into
# $FDSEG_CHECKPOINT_DIR or ~/.cache/fdseg/checkpoints. Random weights (smoke
# runs): --cfg-options model.backbone.init_cfg=None model.refiner.checkpoint=None
_base_ = ['./fm_matcher.py']

model = dict(
    refiner=dict(
        type='FastSAMRefiner',
        model='x',  # 's' for FastSAM-s
        checkpoint='fastsam_x',
        # Paper Sec. 6.1.2: ultralytics defaults except iou / conf; retina
        # masks at the query size (imgsz=None -> 256), as officially.
        conf=0.1,
        iou=0.5,
        retina_masks=True,
        imgsz=None,
        # MaskFusion (fdseg/models/refiners/fusion.py, docs/refiners.md):
        # official main.py behaviour; variant='paper' for the equations as
        # written; strategy='union' / 'sam' for the Table 7 alternatives.
        fusion=dict(
            variant='official',
            strategy='morph',
            tau1=0.2,
            tau2=0.9,
            kernel_size=21,
            max_area_ratio=0.4,
            large_overlap=0.6,
            connectivity=4,
        ),
    )
)
