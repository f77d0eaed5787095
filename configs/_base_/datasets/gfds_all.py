# The GFDS benchmark (paper Sec. 3, Table 1): all 12 products, 54 categories,
# 1-way 1-shot, every defect image is the query once, 256x256.
# Products, folders, mask conventions and Table-1 counts are declared in
# fdseg/benchmarks/gfds.py; prepare the data with
# tools/dataset_converters/ (docs/datasets.md).
#
# Override from the command line, e.g.
#   --cfg-options test_dataloader.dataset.data_root=/data/GFDS
#                 test_dataloader.dataset.products="[Tile,Steel]"
#                 test_dataloader.dataset.shot=5
_base_ = ['./episode_pipelines.py']

dataset_type = 'GFDSDataset'
data_root = 'data/gfds'
shot = 1
way = 1

test_dataloader = dict(
    batch_size=1,  # the FPS protocol (Sec. 6.3) times batch size 1
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='all',
        subset='test',
        shot=shot,
        way=way,
        seed=0,
        pipeline={{_base_.test_pipeline}},
    ),
)

# No val_dataloader here (as in synthetic.py): training configs add
#   val_dataloader = test_dataloader; val_evaluator = test_evaluator
# together with their val_cfg (the paper tracks test-fold mIoU, Fig. 7).

# Per-category / per-product IoU plus the Table-4 row (bench/... keys and
# <out>/gfds_report.json with tools/test.py --out <out>).
test_evaluator = dict(type='GFDSBenchmarkMetric', fbiou='gfds')

# Adds FPS (Sec. 6.3 protocol) to the Table-4 row after testing.
custom_hooks = [dict(type='GFDSBenchmarkHook', num_warmup=10, num_iters=50)]
