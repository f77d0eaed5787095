# Schedule of HSNet and PATNet (both official codes): Adam, lr 1e-3 on all
# parameters (only the learner / anchors get gradients), no weight decay, no
# lr schedule; 800 epochs as the paper trains both (Sec. 6.1.1). The official
# batch size (20) is set in each config's train_dataloader.
_base_ = ['./episodic_epoch.py']

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='Adam', lr=1e-3, weight_decay=0.0),
    clip_grad=None,
)
param_scheduler = []

max_epochs = 800
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
