# HSNet 5-shot: trained 1-shot as the official code (its training
# loop takes one support), tested 5-shot with the official vote (one
# 1-shot pass per support, argmax votes / max vote >= 0.5).
_base_ = ['./hsnet_r50_800e_gfds-fold0-1shot.py']

val_dataloader = dict(dataset=dict(shot=5))
test_dataloader = dict(dataset=dict(shot=5))
