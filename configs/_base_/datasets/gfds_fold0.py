# Cross-domain setting (Sec. 6.1.1, Table 2), fold 0: test on DAGM, R_large,
# R_side, R_small, Capsules, Tile (29 categories / 1429 images); train on
# fold 1. Training configs take `train_dataset` (the other fold):
#   train_dataloader = dict(..., dataset={{_base_.train_dataset}})
# Switch folds with --cfg-options test_dataloader.dataset.split=fold1
# (and train_dataloader.dataset.split=fold1 when training).
_base_ = ['./gfds_all.py']

fold = 'fold0'
test_dataloader = dict(dataset=dict(split=fold, subset='test'))

train_dataset = dict(
    type='GFDSDataset',
    data_root='data/gfds',
    split=fold,
    subset='train',  # the other fold
    shot=1,
    way=1,
    seed=0,
    pipeline={{_base_.train_pipeline}},
)
