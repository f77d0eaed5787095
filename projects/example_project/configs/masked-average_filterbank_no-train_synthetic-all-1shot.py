# A downstream head on top of an fdseg config: inherit it through the
# package scope (works from anywhere after `pip install fdseg`), import the
# project's module, swap the head.
_base_ = ['fdseg::quickstart/fm_filterbank_no-train_synthetic-all-1shot.py']

custom_imports = dict(imports=['example_head'], allow_failed_imports=False)

model = dict(
    head=dict(
        _delete_=True,
        type='MaskedAverageHead',
        temperature=20.0,
        mask_downsample='bilinear_nearest',
    )
)
