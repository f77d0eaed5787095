"""Dataset helpers that are not datasets.

The synthetic benchmark generator lives in :mod:`.synthetic`; image
conventions (suffixes, readers) are in
:mod:`fdseg.datasets.transforms.conventions`.
"""
