# Paper Table 6 (w/ FastSAM): FM-l + FastSAM with f_patch, b_patch prototypes.
_base_ = [
    '../_base_/models/fm_fastsam.py',
    '../_base_/datasets/gfds_all.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
model = dict(head=dict(fg_strategy='patch', bg_strategy='patch'))
