# Episodic training, cross-domain setting (Sec. 6.1.1, Table 2), fold 1:
# train on fold 0 (DAGM, R_large, R_side, R_small, Capsules, Tile), validate
# and test on fold 1 (MSD, Grid, Steel, Kol, PSP, Macaroni2). The Table-4
# row of a cross-domain method merges this run's test with the fold-0 run's
# (tools/analysis_tools/gfds_table.py --cross-domain; docs/meta_learning.md).
#
# Everything else (loaders, sampler, supports drawn per epoch, K shots,
# another data folder) is as in gfds_episodic_fold0.py; only the fold
# changes, in every loader.
_base_ = ['./gfds_episodic_fold0.py']

fold = 'fold1'
# subset='train' of split fold1 is the other fold (fold 0)
train_dataloader = dict(dataset=dict(split=fold))
val_dataloader = dict(dataset=dict(split=fold))
test_dataloader = dict(dataset=dict(split=fold))
train_dataset = dict(split=fold)
