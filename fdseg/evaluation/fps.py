"""The FPS protocol of the GFDS benchmark (paper Sec. 6.3).

Used by :class:`~fdseg.engine.hooks.GFDSBenchmarkHook` (the FPS column of
``tools/test.py``) and by ``tools/analysis_tools/benchmark_fps.py``.
"""

import contextlib
import platform
import time
from typing import Sequence, Union


def device_description(device) -> str:
    """Readable name of a torch device (GPU model or CPU model)."""
    import torch

    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    name = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return f'CPU ({name})'


def resolve_amp_dtype(device, amp: Union[str, bool] = 'auto'):
    """The autocast dtype of the protocol, or None for fp32.

    ``'auto'``: bf16 on a CUDA device that supports it, else fp16 on CUDA
    (the official SAM2 / GFDS code run under ``torch.autocast`` on CUDA),
    fp32 on CPU (CPU autocast slows most of these models down).
    """
    import torch

    device = torch.device(device)
    if amp in (False, None, 'none', 'fp32', 'float32'):
        return None
    if amp in ('bf16', 'bfloat16'):
        return torch.bfloat16
    if amp in ('fp16', 'float16'):
        return torch.float16
    if amp not in ('auto', True):
        raise ValueError(f'unknown amp setting {amp!r}')
    if device.type != 'cuda':
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def measure_fps(
    model,
    batches: Sequence[dict],
    num_warmup: int = 10,
    num_iters: int = 50,
    amp: Union[str, bool] = 'auto',
    pin_support: bool = True,
) -> dict:
    """Time query inference as the paper does (Sec. 6.3).

    Protocol: batch size 1; the support set of the first episode is encoded
    once and pinned (``model.set_support``), so support processing is
    excluded; queries are pre-loaded and pre-normalised on the device (data
    loading excluded); ``num_warmup`` untimed queries, then ``num_iters``
    timed ones (synchronising CUDA), each the full prediction
    (backbone, head, refiner, argmax); mixed precision where the device
    supports it (see :func:`resolve_amp_dtype`).

    Args:
        model: A FewShotSegmentor-like model (``data_preprocessor``,
            ``forward(inputs, data_samples, mode='predict')``, optionally
            ``set_support`` / ``clear_support``), on its device.
        batches (Sequence[dict]): Collated batches of ONE episode each (what
            the test dataloader yields with ``batch_size=1``); cycled when
            fewer than ``num_warmup + num_iters``.
        num_warmup (int): Untimed queries first.
        num_iters (int): Timed queries.
        amp (str | bool): ``'auto'``, ``'bf16'``, ``'fp16'`` or ``'fp32'``.
        pin_support (bool): Pin the first support set. Without it (or a
            model without ``set_support``) support encoding is timed too and
            the report says so.

    Returns:
        dict: ``fps``, ``ms_per_query``, ``num_iters``, ``num_warmup``,
        ``device`` (readable), ``device_type``, ``dtype``, ``threads``
        (``torch.get_num_threads()``), ``support_excluded``, ``batch_size``
        (1), ``torch`` version.
    """
    import torch

    if not batches:
        raise ValueError('measure_fps needs at least one batch')
    if num_iters < 1:
        raise ValueError(f'num_iters must be >= 1, got {num_iters}')
    model.eval()
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device('cpu')
    dtype = resolve_amp_dtype(device, amp)
    for b in batches:
        n = (
            len(b['inputs'])
            if isinstance(b['inputs'], (list, tuple))
            else b['inputs'].shape[0]
        )
        if n != 1:
            raise ValueError(f'the FPS protocol uses batch size 1, got a batch of {n}')

    can_pin = pin_support and hasattr(model, 'set_support')
    prepared = []
    with torch.no_grad():
        first = batches[0]['data_samples'][0]
        if can_pin:
            sup = first.support_imgs
            if sup.is_floating_point():
                raise ValueError(
                    'pin_support needs the raw uint8 support '
                    'images: pass batches straight from the '
                    'dataloader'
                )
            labels = first.get('support_labels', None)
            model.set_support(
                sup.to(device),
                first.support_masks.to(device),
                None if labels is None else labels.to(device),
            )
        for b in batches:
            prepared.append(model.data_preprocessor(b, False))

    def run(data):
        ctx = (
            torch.autocast(device.type, dtype=dtype)
            if dtype is not None
            else contextlib.nullcontext()
        )
        with torch.no_grad(), ctx:
            model(data['inputs'], data['data_samples'], mode='predict')

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    total = num_warmup + num_iters
    try:
        for i in range(num_warmup):
            run(prepared[i % len(prepared)])
        sync()
        elapsed = 0.0
        for i in range(num_warmup, total):
            data = prepared[i % len(prepared)]
            sync()
            t0 = time.perf_counter()
            run(data)
            sync()
            elapsed += time.perf_counter() - t0
    finally:
        if can_pin and hasattr(model, 'clear_support'):
            model.clear_support()
    ms = 1000.0 * elapsed / num_iters
    return dict(
        fps=1000.0 / ms if ms > 0 else float('inf'),
        ms_per_query=ms,
        num_iters=num_iters,
        num_warmup=num_warmup,
        batch_size=1,
        device=device_description(device),
        device_type=device.type,
        dtype=str(dtype).replace('torch.', '') if dtype else 'float32',
        threads=torch.get_num_threads(),
        support_excluded=bool(can_pin),
        torch=torch.__version__,
    )
