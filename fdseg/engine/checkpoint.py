"""Loading fdseg's own (trusted) training checkpoints.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``. A training
checkpoint written by mmengine's ``Runner.save_checkpoint`` pickles the
message hub, whose ``HistoryBuffer`` objects the weights-only unpickler
refuses, so ``resume`` / ``load_from`` / ``tools/test.py <ckpt>`` fail.

fdseg therefore loads *its own* training checkpoints with
``weights_only=False`` and leaves every other load (``init_cfg`` pretrained
backbones, downloaded third-party weights) on torch's safe default: full
unpickling runs arbitrary code, so it is only acceptable for files the user
produced with fdseg (or otherwise explicitly trusts).

Two entry points:

* :func:`load_trusted_checkpoint` - a drop-in for mmengine's
  ``_load_checkpoint`` used by :class:`fdseg.engine.FDSegRunner`.
* :func:`trusted_checkpoint_loading` - a context manager that makes mmengine's
  local-path loader trusted for the duration of a ``with`` block, for code
  that calls ``mmengine.runner.load_checkpoint`` directly (e.g. building a
  model for inference from an fdseg checkpoint).
"""

import contextlib
import os.path as osp
import threading
from typing import Callable, Iterator, Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

# Prefix that marks a path as trusted wherever mmengine resolves checkpoint
# schemes, e.g. ``load_from='fdseg-trusted://work_dirs/x/iter_100.pth'``.
TRUSTED_PREFIX = 'fdseg-trusted://'

_LOCAL_SCHEME = ''  # mmengine registers its local loader under prefix ''
_lock = threading.RLock()


def _strip_trusted_prefix(filename: str) -> str:
    if filename.startswith(TRUSTED_PREFIX):
        return filename[len(TRUSTED_PREFIX) :]
    return filename


def _is_local_path(filename: str) -> bool:
    # Every non-local mmengine scheme is spelled ``<scheme>://`` or
    # ``<scheme>:<path>`` (``open-mmlab:s3://``); a plain path has neither.
    return '://' not in filename


def load_from_local_trusted(
    filename: str, map_location: Union[str, Callable, None] = None
) -> dict:
    """Load a local checkpoint with full unpickling (``weights_only=False``).

    Args:
        filename (str): Local path, optionally prefixed with
            :data:`TRUSTED_PREFIX`; ``~`` is expanded.
        map_location (str | callable, optional): As in :func:`torch.load`.

    Returns:
        dict: The loaded checkpoint.
    """
    filename = osp.expanduser(_strip_trusted_prefix(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def register_trusted_scheme() -> None:
    """Register :data:`TRUSTED_PREFIX` with mmengine's ``CheckpointLoader``.

    An explicit opt-in spelling that works in any code path going through
    mmengine's ``CheckpointLoader`` (only ``fdseg-trusted://`` paths are
    affected, so third-party loads keep ``weights_only=True``). Not done at
    import: :class:`fdseg.engine.FDSegRunner` calls it when it sets up its
    environment, :func:`fdseg.apis.init_model` before it builds a model, and
    :func:`trusted_checkpoint_loading` on entry; other code calls it once
    before passing ``fdseg-trusted://`` paths to mmengine. Idempotent.
    """
    if CheckpointLoader._schemes.get(TRUSTED_PREFIX) is load_from_local_trusted:
        return
    CheckpointLoader.register_scheme(
        prefixes=TRUSTED_PREFIX, loader=load_from_local_trusted, force=True
    )


def load_trusted_checkpoint(
    filename: str,
    map_location: Union[str, Callable, None] = None,
    logger: Optional[str] = 'current',
) -> dict:
    """Load an fdseg training checkpoint (resume, ``load_from``, testing).

    Local files are unpickled fully (``weights_only=False``) so mmengine's
    runtime state (message hub, ``HistoryBuffer``) round-trips; remote schemes
    (``http://``, ``s3://``, ...) fall back to mmengine's loaders and keep
    torch's weights-only default.

    Args:
        filename (str): Checkpoint path or URL.
        map_location (str | callable, optional): As in :func:`torch.load`.
        logger (str, optional): Logger for the "loads checkpoint" message.

    Returns:
        dict: The loaded checkpoint.
    """
    filename = _strip_trusted_prefix(filename)
    if _is_local_path(filename):
        print_log(
            f'Loads trusted fdseg checkpoint from path: {filename}', logger=logger
        )
        return load_from_local_trusted(filename, map_location)
    return _load_checkpoint(filename, map_location=map_location, logger=logger)


@contextlib.contextmanager
def trusted_checkpoint_loading() -> Iterator[None]:
    """Make mmengine's local-path checkpoint loader trusted inside the block.

    Temporarily swaps the loader mmengine registered for plain local paths
    with :func:`load_from_local_trusted` and restores it on exit (also on
    error). It also registers :data:`TRUSTED_PREFIX`
    (:func:`register_trusted_scheme`), which stays registered: that prefix
    is an explicit opt-in and changes no other load. Only wrap loads of
    checkpoints you trust - everything local loaded inside the block,
    including ``init_cfg`` pretrained weights, is fully unpickled.

    Example:
        >>> from mmengine.runner import load_checkpoint
        >>> with trusted_checkpoint_loading():
        ...     load_checkpoint(model, 'work_dirs/x/iter_160000.pth')
    """
    with _lock:
        schemes = CheckpointLoader._schemes
        previous = schemes.get(_LOCAL_SCHEME)
        register_trusted_scheme()
        CheckpointLoader.register_scheme(
            _LOCAL_SCHEME, load_from_local_trusted, force=True
        )
        try:
            yield
        finally:
            if previous is None:
                CheckpointLoader._schemes.pop(_LOCAL_SCHEME, None)
            else:
                CheckpointLoader.register_scheme(_LOCAL_SCHEME, previous, force=True)
