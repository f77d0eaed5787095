# Episodic training, cross-domain setting (Sec. 6.1.1, Table 2), fold 1:
# train on fold 0 (DAGM, R_large, R_side, R_small, Capsules, Tile), validate
# and test on fold 1 (MSD, Grid, Steel, Kol, PSP, Macaroni2). The Table-4
# row of a cross-domain method merges this run's test with the fold-0 run's
# (tools/analysis_tools/gfds_table.py --cross-domain; docs/meta_learning.md).
#
# One training epoch = one pass over the training subset's query images,
# each with supports drawn afresh per epoch from (seed, epoch, query)
# (support_draw='per_epoch' + EpisodeSampler). 1-way 1-shot, 256x256,
# random flips and 90-degree rotations (episode_pipelines.py).
#
# K shots: override all three loaders, e.g. in a 5-shot config
#   train_dataloader = dict(dataset=dict(shot=5))
#   val_dataloader = dict(dataset=dict(shot=5))
#   test_dataloader = dict(dataset=dict(shot=5))
# Another data folder (--cfg-options is not propagated between loaders):
#   --cfg-options train_dataloader.dataset.data_root=D \
#       val_dataloader.dataset.data_root=D test_dataloader.dataset.data_root=D
_base_ = ['./gfds_fold1.py']

train_dataloader = dict(
    batch_size=4,  # per process: with N processes the global batch is 4 * N
    num_workers=4,
    persistent_workers=True,
    # (epoch, index) pairs: the dataset draws that epoch's supports.
    sampler=dict(type='EpisodeSampler', shuffle=True),
    dataset=dict(
        type='GFDSDataset',
        data_root='data/gfds',
        split='fold1',
        subset='train',  # the other fold (fold 0)
        shot=1,
        way=1,
        seed=0,
        support_draw='per_epoch',
        # An empty support mask (empty file, or a defect lost in the resize)
        # is drawn again: it teaches nothing and PFENet cannot use it.
        empty_supports='redraw',
        pipeline={{_base_.train_pipeline}},
    ),
)

# The test-set mIoU of Fig. 7: the test fold, every val_interval epochs.
val_dataloader = {{_base_.test_dataloader}}
val_evaluator = {{_base_.test_evaluator}}
