"""Distributed training on CPU (gloo) and a clean distributed shutdown.

mmengine's distributed path assumes accelerators: ``init_dist`` calls
``torch.cuda.set_device`` and ``Runner.wrap_model`` hands
``device_ids=[LOCAL_RANK]`` to DDP, both of which fail without CUDA. fdseg
initialises the gloo process group itself before mmengine looks (mmengine skips
``init_dist`` once ``torch.distributed.is_initialized()``) and wraps the model
with :class:`CPUDistributedDataParallel`.
"""

import datetime
import logging
import os
import subprocess
import sys
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.logging import MMLogger
from mmengine.model import MMDistributedDataParallel

from fdseg.registry import MODEL_WRAPPERS


def resolve_dist_backend(backend: Optional[str] = 'auto') -> str:
    """Pick the process-group backend for ``backend='auto'``.

    Args:
        backend (str, optional): ``'auto'`` / ``None`` choose ``'nccl'`` when
            CUDA is available and ``'gloo'`` otherwise; any other value is
            returned unchanged, except ``'nccl'`` without CUDA (which cannot
            work) falls back to ``'gloo'``.

    Returns:
        str: The backend to pass to ``init_process_group``.
    """
    cuda = torch.cuda.is_available()
    if backend in (None, 'auto'):
        return 'nccl' if cuda else 'gloo'
    if backend == 'nccl' and not cuda:
        return 'gloo'
    return backend


def _env_from_slurm(port: Optional[int] = None) -> None:
    # Mirrors mmengine's _init_dist_slurm, minus the CUDA device selection.
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    local_rank = os.environ.get('SLURM_LOCALID', '0')
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        os.environ['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1'
        )
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['LOCAL_RANK'] = str(local_rank)
    os.environ['RANK'] = str(proc_id)


def _env_from_mpi(port: Optional[int] = None) -> None:
    os.environ['RANK'] = os.environ['OMPI_COMM_WORLD_RANK']
    os.environ['WORLD_SIZE'] = os.environ['OMPI_COMM_WORLD_SIZE']
    os.environ['LOCAL_RANK'] = os.environ['OMPI_COMM_WORLD_LOCAL_RANK']
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ.setdefault('MASTER_ADDR', '127.0.0.1')


def init_cpu_dist(
    launcher: str = 'pytorch',
    backend: str = 'gloo',
    timeout: Optional[float] = None,
    port: Optional[int] = None,
    **kwargs,
) -> None:
    """Initialise a CPU process group (no ``torch.cuda`` calls).

    Reads the rendezvous from the environment the launcher sets up:
    ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``),
    slurm (``SLURM_PROCID``, ...) or Open MPI (``OMPI_COMM_WORLD_*``). Does
    nothing if a process group already exists.

    Args:
        launcher (str): ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        backend (str): Process-group backend; ``'auto'`` means gloo here.
        timeout (float, optional): Collective timeout in seconds.
        port (int, optional): Master port for slurm / mpi.
        **kwargs: Passed on to ``torch.distributed.init_process_group``.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        return
    if launcher == 'slurm':
        _env_from_slurm(port)
    elif launcher == 'mpi':
        _env_from_mpi(port)
    elif launcher != 'pytorch':
        raise ValueError(f'Invalid launcher type: {launcher}')
    os.environ.setdefault('LOCAL_RANK', '0')
    if backend in (None, 'auto'):
        backend = 'gloo'
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    torch_dist.init_process_group(
        backend=backend,
        init_method='env://',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs,
    )


def _flush_logging() -> None:
    loggers = [logging.getLogger()] + [
        lg
        for lg in logging.Logger.manager.loggerDict.values()
        if isinstance(lg, logging.Logger)
    ]
    # MMLogger instances are built directly, outside logging's manager.
    loggers += list(MMLogger._instance_dict.values())
    for lg in loggers:
        for handler in lg.handlers:
            try:
                handler.flush()
            except Exception:  # a closed stream must not block the exit
                pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def finalize_dist(exit_code: int = 0) -> None:
    """Shut a distributed run down cleanly; no-op when not distributed.

    All ranks meet at a barrier, flush their log handlers and stdio, destroy
    the process group and leave through ``os._exit``. The hard exit skips the
    interpreter teardown, during which gloo occasionally aborted rank 1
    (SIGABRT, ~10% of CPU runs) after training had already succeeded.

    Call it last, after ``runner.train()`` / ``runner.test()`` returned; it
    does not return when a process group exists.

    Args:
        exit_code (int): Process exit status. Defaults to 0.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    try:
        torch_dist.barrier()
    except Exception:  # a peer died: report it, still exit hard
        import traceback

        traceback.print_exc()
        exit_code = exit_code or 1
    _flush_logging()
    try:
        torch_dist.destroy_process_group()
    except Exception:
        pass
    _flush_logging()
    os._exit(exit_code)


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """:class:`MMDistributedDataParallel` for models on CPU.

    ``Runner.wrap_model`` always passes ``device_ids=[LOCAL_RANK]``, which
    torch rejects for CPU modules; this wrapper drops it (and
    ``output_device``), so DDP runs over gloo on CPU tensors.

    Args:
        module (nn.Module): The model to wrap.
        detect_anomalous_params (bool): See :class:`MMDistributedDataParallel`.
        **kwargs: Passed to :class:`torch.nn.parallel.DistributedDataParallel`.
    """

    def __init__(self, module, detect_anomalous_params: bool = False, **kwargs):
        kwargs['device_ids'] = None
        kwargs['output_device'] = None
        super().__init__(
            module=module, detect_anomalous_params=detect_anomalous_params, **kwargs
        )
