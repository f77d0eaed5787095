# PATNet (Lei et al., ECCV 2022), GFDS Table 4 rows "PATNet" / "PATNet*":
# HSNet (hsnet_r50.py) plus the pyramid anchor-based transformation module
# (one learnable 2 x C anchor matrix per stage, C = 512 / 1024 / 2048).
# Test-time anchor fine-tuning (TFI) is off, as in the official test
# script (steps=0); switch it on with e.g.
#   --cfg-options model.head.finetune_reference.steps=50 \
#       model.head.finetune_reference.lr=1e-3
_base_ = ['./hsnet_r50.py']

model = dict(
    head=dict(
        type='PATNetHead',
        in_channels=(512, 1024, 2048),
        finetune_reference=dict(steps=0, lr=1e-3),
    )
)
