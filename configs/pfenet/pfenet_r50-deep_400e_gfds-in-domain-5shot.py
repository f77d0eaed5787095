# PFENet, 400 epochs, in-domain: each product's other classes train, one held-
# out class tests (Table 4 '*'); 1-way 5-shot, 256x256.
# Paper Table 4 row: configs/pfenet/README.md.
_base_ = [
    '../_base_/models/pfenet_r50-deep.py',
    '../_base_/datasets/gfds_episodic_in-domain.py',
    '../_base_/schedules/pfenet_sgd_poly_400e.py',
]
train_dataloader = dict(dataset=dict(shot=5))
val_dataloader = dict(dataset=dict(shot=5))
test_dataloader = dict(dataset=dict(shot=5))
