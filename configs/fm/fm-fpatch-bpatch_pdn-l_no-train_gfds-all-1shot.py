# Paper Table 6 (w/o FastSAM): FM-l with f_patch, b_patch prototypes.
_base_ = ['./fm_pdn-l_no-train_gfds-all-1shot.py']
model = dict(head=dict(fg_strategy='patch', bg_strategy='patch'))
