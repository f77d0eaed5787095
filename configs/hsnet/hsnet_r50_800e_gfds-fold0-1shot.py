# HSNet, ResNet-50, 800 epochs (paper Sec. 6.1.1), 1-way 1-shot, 256x256
# with random flips and 90-degree rotations (the paper's training).
# Cross-domain fold 0 (Table 2): train on fold 1, validate/test on fold 0.
# The Table-4 row merges this run with the fold-1 run (configs/hsnet/README.md).
_base_ = [
    '../_base_/models/hsnet_r50.py',
    '../_base_/datasets/gfds_episodic_fold0.py',
    '../_base_/schedules/hsnet_800e.py',
]

train_dataloader = dict(batch_size=20)  # official --bsz 20 (per process)
