# Trivial baseline for the quick start: background everywhere.
_base_ = ['./fm_filterbank_no-train_synthetic-all-1shot.py']
model = dict(head=dict(_delete_=True, type='AllBackgroundHead'))
