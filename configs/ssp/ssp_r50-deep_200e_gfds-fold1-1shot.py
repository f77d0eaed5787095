# SSP, 200 epochs, cross-domain fold 1: train on fold 0, test on fold 1 (Table
# 2); 1-way 1-shot, 256x256.
# Paper Table 4 row: configs/ssp/README.md.
_base_ = [
    '../_base_/models/ssp_r50-deep.py',
    '../_base_/datasets/gfds_episodic_fold1.py',
    '../_base_/schedules/ssp_sgd_step_200e.py',
]
