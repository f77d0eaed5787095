# Procedural synthetic benchmark (fdseg.datasets.synthetic), generated into
# data_root on first use: the offline quick-start data. 1-way 1-shot, GFDS
# protocol (every image is the query once), 256x256.
_base_ = ['./episode_pipelines.py']

dataset_type = 'SyntheticDefectDataset'
data_root = 'data/synthetic'
shot = 1
way = 1

test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        generator_seed=0,
        num_images=12,
        shot=shot,
        way=way,
        seed=0,
        pipeline={{_base_.test_pipeline}},
    ),
)
test_evaluator = dict(type='FewShotIoUMetric')
