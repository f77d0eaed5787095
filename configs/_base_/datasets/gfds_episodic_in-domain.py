# Episodic training, in-domain setting (Sec. 6.1.1): per product one
# held-out defect class is validated and tested, the product's other
# classes train (fdseg.benchmarks.IN_DOMAIN_TEST_CLASS; Kol and DAGM have
# one class per product and are left out). The '*' row of Table 4 is this
# run completed with the cross-domain Kol and DAGM numbers
# (tools/analysis_tools/gfds_table.py --in-domain; docs/meta_learning.md).
#
# One training epoch = one pass over the training subset's query images,
# each with supports drawn afresh per epoch from (seed, epoch, query)
# (support_draw='per_epoch' + EpisodeSampler). 1-way 1-shot, 256x256,
# random flips and 90-degree rotations (episode_pipelines.py).
#
# Another held-out class: set it in all three loaders, e.g.
#   --cfg-options train_dataloader.dataset.held_out.Tile=oil \
#       val_dataloader.dataset.held_out.Tile=oil \
#       test_dataloader.dataset.held_out.Tile=oil
# K shots: train_dataloader / val_dataloader / test_dataloader =
#   dict(dataset=dict(shot=5)) in a 5-shot config.
_base_ = ['./gfds_in-domain.py']

train_dataloader = dict(
    batch_size=4,  # per process: with N processes the global batch is 4 * N
    num_workers=4,
    persistent_workers=True,
    # (epoch, index) pairs: the dataset draws that epoch's supports.
    sampler=dict(type='EpisodeSampler', shuffle=True),
    dataset=dict(
        type='GFDSDataset',
        data_root='data/gfds',
        split='in-domain',
        subset='train',  # each product's other classes
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

val_dataloader = {{_base_.test_dataloader}}
val_evaluator = {{_base_.test_evaluator}}
