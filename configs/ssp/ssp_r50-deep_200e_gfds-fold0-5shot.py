# SSP, 200 epochs, cross-domain fold 0: train on fold 1, test on fold 0 (Table
# 2); 1-way 5-shot, 256x256.
# Paper Table 4 row: configs/ssp/README.md.
_base_ = [
    '../_base_/models/ssp_r50-deep.py',
    '../_base_/datasets/gfds_episodic_fold0.py',
    '../_base_/schedules/ssp_sgd_step_200e.py',
]
train_dataloader = dict(dataset=dict(shot=5))
val_dataloader = dict(dataset=dict(shot=5))
test_dataloader = dict(dataset=dict(shot=5))
