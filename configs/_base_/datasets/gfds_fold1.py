# Cross-domain setting (Sec. 6.1.1, Table 2), fold 1: test on MSD (Phone), Grid,
# Steel, Kol, PSP, Macaroni2 (25 categories / 1703 images); train on
# fold 0. Training configs take `train_dataset` (the other fold):
#   train_dataloader = dict(..., dataset={{_base_.train_dataset}})
# Switch folds with --cfg-options test_dataloader.dataset.split=fold0
# (and train_dataloader.dataset.split=fold0 when training).
_base_ = ['./gfds_all.py']

fold = 'fold1'
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
