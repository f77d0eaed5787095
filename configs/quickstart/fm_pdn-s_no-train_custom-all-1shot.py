# FM-s (paper Table 4/5: the training-free prototype matcher on the PDN
# student distilled from DINO ViT-S/8) on YOUR defect images: a folder with
#   images/[<category>/]<stem>.<ext>   masks/[<category>/]<stem>.<ext>
#   images/good/...                    (optional defect-free images)
# The only change needed is the folder (docs/own_data.md):
#
#   python tools/test.py configs/quickstart/fm_pdn-s_no-train_custom-all-1shot.py \
#       --cfg-options test_dataloader.dataset.data_root=/path/to/my_defects \
#       --out work_dirs/my_defects
#
# and the same model segments new images with
#   fdseg predict --model fm_pdn-s_no-train_custom-all-1shot \
#       --support /path/to/my_defects --source 'line/*.png' --out predictions
#
# Weights: gfds_fm_small (fdseg/utils/checkpoint_table.py) in the checkpoint
# directory. Other options (all --cfg-options test_dataloader.dataset.<key>):
# mask_suffix='_mask', mask_threshold=127 (anti-aliased masks),
# mask_mode='index' (value-indexed masks), shot=5, include_good=False.
_base_ = [
    '../_base_/models/fm_matcher.py',
    '../_base_/datasets/episode_pipelines.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(
    backbone=dict(
        _delete_=True,
        type='PDNStudent',
        size='small',
        out_channels=384,
        init_cfg=dict(type='Pretrained', checkpoint='gfds_fm_small'),
    )
)
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='FolderFewShotDataset',
        data_root='data/custom',
        name='custom',
        mask_suffix='',
        mask_mode='binary',
        mask_threshold=30,
        include_good=True,
        shot=1,
        way=1,
        seed=0,
        pipeline={{_base_.test_pipeline}},
    ),
)
test_evaluator = dict(type='FewShotIoUMetric')
