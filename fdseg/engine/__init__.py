"""Training / testing machinery: runner, checkpoints, distributed, hooks."""

from fdseg.evaluation.writers import OutputDirError
from fdseg.utils.checkpoints import ChecksumMismatchError, MissingCheckpointError

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
    UntrainedModelError,
    check_fdseg_checkpoint,
    check_trained,
    prepare_weights,
    weights_report,
)

#: Errors whose message is the whole story (a missing weight file, a
#: checkpoint that does not fit, an unusable output path): the tools print
#: them without a traceback and exit with status 1.
USER_ERRORS = (
    MissingCheckpointError,
    ChecksumMismatchError,
    CheckpointMismatchError,
    OutputDirError,
    UntrainedModelError,
)

__all__ = [
    'USER_ERRORS',
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
    'UntrainedModelError',
    'check_trained',
]
