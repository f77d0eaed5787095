"""CPU speed helpers: channels-last backbones and the official yardstick.

Issue 14's speed goal compares an fdseg query (support pinned) with the
official GFDS ``MatchingNet`` episode (support + query) with the same
weights, side by side in one process; :func:`compare_with_official` times
the latter with :func:`fdseg.deploy.reference.official_episode` and measures
how many pixels of the two masks agree.
"""

import copy
import statistics
import time
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

from fdseg.models.utils.fast_conv import (
    ALGORITHMS,
    FastConv2d,
    gemm_supported,
    share_conv,
    winograd_supported,
)

from .reference import official_episode


def cpu_capability() -> str:
    """ATen's CPU vector capability (``'AVX2'``, ``'AVX512'``, ...)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except AttributeError:  # very old torch
        return 'unknown'


def _to_channels_last(module, args):
    x = args[0]
    if torch.is_tensor(x) and x.dim() == 4:
        return (x.contiguous(memory_format=torch.channels_last),) + tuple(args[1:])
    return None


def use_channels_last(model: nn.Module, example: Optional[Tensor] = None) -> nn.Module:
    """Run the model's backbone in channels-last (NHWC) memory format.

    oneDNN's convolutions are mostly faster on NHWC tensors on CPU (same
    values up to float rounding). The backbone's weights are converted in
    place and its input is converted by a forward pre-hook; later ops read
    the features through their strides.

    With ``example`` (a normalised ``[1, 3, H, W]`` input), every
    ``Conv2d`` is then timed in both formats on its own input and keeps the
    faster one (:func:`optimize_convs`): on the PDN, the last 4x4
    convolution (256 -> 384 channels) is faster in NCHW on an AVX-512 CPU
    while the others are faster in NHWC.

    Args:
        model (nn.Module): A segmentor with a ``backbone``.
        example (Tensor, optional): Input for the per-layer choice.

    Returns:
        nn.Module: ``model`` (modified in place).
    """
    bb = model.backbone
    if not getattr(bb, '_fdseg_channels_last', False):
        bb.to(memory_format=torch.channels_last)
        bb.register_forward_pre_hook(_to_channels_last)
        bb._fdseg_channels_last = True
    if example is not None:
        optimize_convs(bb, example, algorithms=('nchw', 'nhwc'))
    return model


def optimize_for_cpu(model: nn.Module, example: Tensor) -> List[dict]:
    """The fastest fp32 CPU path fdseg offers for a model's backbone.

    Channels-last (:func:`use_channels_last`), then every convolution runs
    the fastest of direct NCHW, direct NHWC, Winograd F(4x4) to F(6x6) and
    im2col + GEMM, timed on its real input (:func:`optimize_convs`). The
    parameters are unchanged (a converted model saves the same state dict);
    outputs differ from the direct convolution by float rounding only.

    Args:
        model (nn.Module): A segmentor with a ``backbone``.
        example (Tensor): A normalised ``[1, 3, H, W]`` input of the size
            the model will see.

    Returns:
        list[dict]: Per convolution, the choice and the timings
        (:func:`optimize_convs`).
    """
    use_channels_last(model)
    return optimize_convs(model.backbone, example)


@torch.no_grad()
def optimize_convs(
    module: nn.Module,
    example: Tensor,
    algorithms: Sequence[str] = ALGORITHMS,
    tiles: Sequence[int] = (4, 5, 6),
    max_error: float = 1e-3,
    rounds: int = 3,
) -> List[dict]:
    """Give every ``Conv2d`` of ``module`` its fastest inference algorithm.

    Each convolution is replaced by a :class:`FastConv2d` sharing its
    parameters; each applicable algorithm (Winograd with each output tile of
    ``tiles`` whose input tile is at most 8) is timed on the input the
    convolution receives for ``example`` and checked against the direct
    convolution; an algorithm whose largest error exceeds ``max_error``
    times the output's largest magnitude is never chosen.

    Args:
        module (nn.Module): Converted in place (e.g. a backbone).
        example (Tensor): Input of ``module``.
        algorithms (Sequence[str]): Candidates, from
            :data:`fdseg.models.utils.fast_conv.ALGORITHMS`.
        tiles (Sequence[int]): Winograd output tile sizes to try.
        max_error (float): Largest relative error accepted.
        rounds (int): Timed runs of each candidate (after the checking
            run, which also warms it up); the fastest counts.

    Returns:
        list[dict]: Per convolution: ``name``, ``choice`` (e.g.
        ``'winograd-4'``), ``ms`` (candidate -> milliseconds) and
        ``rel_error`` (candidate -> relative error).
    """
    convs = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]
    seen = {}
    hooks = [
        c.register_forward_pre_hook(lambda m, a: seen.setdefault(m, a[0].detach()))
        for _, c in convs
    ]
    try:
        module(example)
    finally:
        for h in hooks:
            h.remove()
    report = []
    for name, conv in convs:
        x = seen.get(conv)
        if x is None:
            continue
        fast = conv if isinstance(conv, FastConv2d) else FastConv2d.from_conv(conv)
        fast.set_algorithm('nchw')
        ref = fast(x)
        scale = float(ref.abs().max()) or 1.0
        candidates = []
        for algo in algorithms:
            if algo == 'winograd':
                r = conv.kernel_size[0]
                candidates += [
                    (algo, m)
                    for m in tiles
                    if m + r - 1 <= 8 and winograd_supported(conv, m)
                ]
            elif algo != 'gemm' or gemm_supported(conv):
                candidates.append((algo, 4))
        # Each candidate on its own copy of the weights (a direct
        # convolution wants them in its memory format); timed round-robin,
        # best of ``rounds``, so a burst of machine load hits all alike.
        trials, err = {}, {}
        for algo, m in candidates:
            key = f'{algo}-{m}' if algo == 'winograd' else algo
            trial = FastConv2d.from_conv(copy.deepcopy(fast), algo, m)
            err[key] = float((trial(x) - ref).abs().max()) / scale
            if err[key] <= max_error:
                trials[key] = trial
        times = {key: [] for key in trials}
        for _ in range(rounds):
            for key, trial in trials.items():
                t0 = time.perf_counter()
                trial(x)
                times[key].append(time.perf_counter() - t0)
        ms = {key: 1000.0 * min(t) for key, t in times.items()}
        choice = min(ms, key=ms.get)
        algo, _, m = choice.partition('-')
        fast.set_algorithm(algo, int(m or 4))
        if fast is not conv:
            _replace(module, name, fast)
        report.append(dict(name=name, choice=choice, ms=ms, rel_error=err))
    return report


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attr = name.rpartition('.')
    setattr(root.get_submodule(parent) if parent else root, attr, new)


def plain_convs(module: nn.Module) -> nn.Module:
    """Turn every :class:`FastConv2d` back into an NCHW ``nn.Conv2d``."""
    for name, m in list(module.named_modules()):
        if isinstance(m, FastConv2d):
            m.set_algorithm('nchw')
            conv = share_conv(m)
            _replace(module, name, conv)
    return module


def official_network(model: nn.Module) -> nn.Module:
    """An independent NCHW copy of the model's extractor (same weights).

    The PDN student's inner ``pdn`` Sequential is the official network
    itself; other backbones are wrapped so that they return one map.
    """
    bb = plain_convs(copy.deepcopy(model.backbone))
    bb.to(memory_format=torch.contiguous_format)
    for m in bb.modules():  # no memory-format hooks of use_channels_last
        m._forward_pre_hooks.clear()
    bb._fdseg_channels_last = False
    if hasattr(bb, 'pdn'):
        return bb.pdn.eval()
    head = model.head

    class _Extractor(nn.Module):
        def __init__(self):
            super().__init__()
            self.bb = bb

        def forward(self, x):
            return head.select_level(self.bb(x))

    return _Extractor().eval()


@torch.no_grad()
def compare_with_official(
    model: nn.Module,
    batches: Sequence[dict],
    num_warmup: int = 3,
    num_iters: int = 20,
) -> dict:
    """Time the official episode next to the fdseg query; compare masks.

    The support of the first batch is pinned for every query (as the FPS
    protocol of :func:`fdseg.evaluation.fps.measure_fps` does) and given to
    the official episode, which re-encodes it every time. The two are timed
    alternately, query by query (A B A B ...), so a drift of a shared
    machine's speed hits both; the ratio is that of the medians.

    Args:
        model (nn.Module): A ``FewShotSegmentor`` with a prototype matcher.
        batches (list[dict]): Collated one-episode batches.
        num_warmup (int): Untimed pairs first.
        num_iters (int): Timed pairs.

    Returns:
        dict: ``official_ms_per_episode`` and ``fdseg_ms_per_query``
        (medians), ``speedup_vs_official``, ``mask_agreement`` (fraction of
        equal pixels over all queries), ``num_queries``, ``threads``,
        ``cpu_capability``.
    """
    model.eval()
    net = official_network(model)
    pre = model.data_preprocessor
    first = batches[0]['data_samples'][0]
    dev = pre.mean.device
    sup = pre.normalize(first.support_imgs.to(dev))
    masks = first.support_masks.to(dev)
    sup_l = [sup[i : i + 1] for i in range(sup.shape[0])]
    mask_l = [masks[i : i + 1] for i in range(masks.shape[0])]
    labels = first.get('support_labels', None)

    def ours(data):
        res = model(data['inputs'], data['data_samples'], mode='predict')
        return res[0].pred_sem_seg.data[0]

    def official(data):
        return official_episode(net, sup_l, mask_l, data['inputs']).argmax(1)[0]

    model.set_support(first.support_imgs.to(dev), masks, labels)
    equal = total = 0
    t_ours, t_off = [], []
    try:
        prepared = [pre(b, False) for b in batches]
        for data in prepared:
            a, b = ours(data), official(data)
            equal += int((a == b).sum())
            total += a.numel()
        for i in range(num_warmup + num_iters):
            data = prepared[i % len(prepared)]
            t0 = time.perf_counter()
            ours(data)
            t1 = time.perf_counter()
            official(data)
            t2 = time.perf_counter()
            if i >= num_warmup:
                t_ours.append(t1 - t0)
                t_off.append(t2 - t1)
    finally:
        model.clear_support()
    med_ours = 1000.0 * statistics.median(t_ours)
    med_off = 1000.0 * statistics.median(t_off)
    return dict(
        official_ms_per_episode=med_off,
        fdseg_ms_per_query=med_ours,
        speedup_vs_official=med_off / med_ours,
        mask_agreement=equal / max(total, 1),
        num_queries=len(prepared),
        threads=torch.get_num_threads(),
        cpu_capability=cpu_capability(),
    )
