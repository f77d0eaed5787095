"""Where fdseg reaches into third-party internals: one module per library.

Each function here wraps a private API (``SAM2Base._...``, a predictor's
``_bb_feat_sizes``, ultralytics' ``tasks.SAFE_LOAD``) so that an upgrade of
the library breaks in one place, and each is pinned by an equivalence test
named in its module docstring. Import the library lazily: importing sam2
initialises Hydra.
"""
