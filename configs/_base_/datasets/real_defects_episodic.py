# Episodic training on the development data of ../shared/data
# (real_defects.py): train on two products (magnetic_tile, neu_seg), validate
# and test on the third (crackforest): the cross-domain setting of
# Sec. 6.1.1 in small. Used by the learning-curve check of
# docs/meta_learning.md; not a paper benchmark.
_base_ = ['./real_defects.py']

train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='EpisodeSampler', shuffle=True),
    dataset=dict(
        type='GFDSDataset',
        data_root={{_base_.data_root}},
        split='all',
        benchmark='real_defects',
        declare={{_base_.real_defects_products}},
        products=['magnetic_tile', 'neu_seg'],
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
test_dataloader = dict(dataset=dict(products=['crackforest']))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='GFDSDataset',
        data_root={{_base_.data_root}},
        split='all',
        benchmark='real_defects',
        declare={{_base_.real_defects_products}},
        products=['crackforest'],
        shot=1,
        way=1,
        seed=0,
        pipeline={{_base_.test_pipeline}},
    ),
)
val_evaluator = {{_base_.test_evaluator}}
