# Trivial baseline for the quick start: the support mask pasted at the same
# place in the query.
_base_ = ['./fm_filterbank_no-train_synthetic-all-1shot.py']
model = dict(head=dict(_delete_=True, type='PasteSupportMaskHead'))
