# PFENet's official optimisation (dvlab-research/PFENet train.py and
# config/pascal/pascal_split0_resnet50.yaml): SGD, base lr 0.0025, momentum
# 0.9, weight decay 1e-4, batch 4, poly decay with power 0.9 per iteration.
# The official poly_learning_rate(..., index_split=-1, scale_lr=10) gives
# EVERY optimiser group (all of them are new layers: the backbone is
# frozen) 10x the base lr; here paramwise_cfg multiplies the head's lr by 10
# (effective 0.025). GFDS trains 400 epochs (Sec. 6.1.1).
_base_ = ['./episodic_epoch.py']

max_epochs = 400
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.0025, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.0)}),
    clip_grad=None,
)
param_scheduler = [
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.0,
        begin=0,
        end=max_epochs,
        by_epoch=True,
        convert_to_iter_based=True,  # per iteration, as the official code
    )
]
train_cfg = dict(max_epochs=max_epochs)
