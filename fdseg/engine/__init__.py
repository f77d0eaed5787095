"""Training / testing machinery: runner, checkpoints, distributed, hooks."""

from .checkpoint import (
    TRUSTED_PREFIX,
    load_trusted_checkpoint,
    trusted_checkpoint_loading,
)
from .dist import (
    CPUDistributedDataParallel,
    finalize_dist,
    init_cpu_dist,
    resolve_dist_backend,
)
from .hooks import *  # noqa: F401,F403
from .runner import FDSegRunner
from .weights import (
    CheckpointMismatchError,
    check_fdseg_checkpoint,
    prepare_weights,
    weights_report,
)

__all__ = [
    'FDSegRunner',
    'CPUDistributedDataParallel',
    'init_cpu_dist',
    'finalize_dist',
    'resolve_dist_backend',
    'load_trusted_checkpoint',
    'trusted_checkpoint_loading',
    'TRUSTED_PREFIX',
    'prepare_weights',
    'weights_report',
    'check_fdseg_checkpoint',
    'CheckpointMismatchError',
]
