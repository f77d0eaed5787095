# SSP's official optimisation (fanq15/SSP main.py): SGD lr 1e-3, momentum
# 0.9, weight decay 5e-4, batch 4, lr / 10 after 1/3 and 2/3 of the
# iterations. GFDS trains 200 epochs (Sec. 6.1.1); the steps fall on epoch
# boundaries 67 and 134 (the official ones fall at 66.7 and 133.3 epochs).
_base_ = ['./episodic_epoch.py']

max_epochs = 200
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4),
    clip_grad=None,
)
param_scheduler = [
    dict(
        type='MultiStepLR',
        milestones=[67, 134],
        gamma=0.1,
        begin=0,
        end=max_epochs,
        by_epoch=True,
    )
]
train_cfg = dict(max_epochs=max_epochs)
