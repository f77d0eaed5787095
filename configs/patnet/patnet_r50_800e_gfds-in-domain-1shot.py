# PATNet, ResNet-50, 800 epochs (paper Sec. 6.1.1), 1-way 1-shot, 256x256
# with random flips and 90-degree rotations (the paper's training).
# In-domain setting (Table 4 '*' row): per product one held-out class
# is tested, the product's other classes train (Kol and DAGM left out).
_base_ = [
    '../_base_/models/patnet_r50.py',
    '../_base_/datasets/gfds_episodic_in-domain.py',
    '../_base_/schedules/hsnet_800e.py',
]

train_dataloader = dict(batch_size=20)  # official --bsz 20 (per process)
