"""The ultralytics package (8.x): the private switch fdseg turns.

Pinned by:
    * tests/test_models/test_refiners.py::test_ultralytics_safe_load_adapter: the
      switch is on inside the block and restored after it.
    * tests/test_models/test_refiners.py::test_fastsam_masks_match_ultralytics: a
      FastSAM checkpoint opened under it gives ultralytics' own masks.
"""

import contextlib


@contextlib.contextmanager
def safe_load():
    """Open ultralytics checkpoints with ``torch.load(weights_only=True)``.

    ultralytics reads its safe-load switch from the module global
    ``ultralytics.nn.tasks.SAFE_LOAD`` (set from ``$ULTRALYTICS_SAFE_LOAD``
    at import); it is turned on for the block only.
    """
    import ultralytics.nn.tasks as tasks

    previous = tasks.SAFE_LOAD
    tasks.SAFE_LOAD = True
    try:
        yield
    finally:
        tasks.SAFE_LOAD = previous
