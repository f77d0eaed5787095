# Offline quick start: the training-free prototype matcher (paper Sec.
# 5.1.2) on a classical filter bank, over the procedural synthetic benchmark
# (generated into data/synthetic on first use). No weights are downloaded.
#
#   python tools/test.py configs/quickstart/fm_filterbank_no-train_synthetic-all-1shot.py
#
# Shot and seed: --cfg-options test_dataloader.dataset.shot=5
_base_ = [
    '../_base_/models/fm_filterbank.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_test_only.py',
]
