"""Fusion of a coarse mask R0 with class-agnostic masks (paper Sec. 5.1.3).

Pure, vectorised functions shared by every mask refiner (FastSAM, SAM2
prompt modes). The pipeline of eqs. 9-14 is::

    masks [N,H,W] ─ overlap_owner (eqs. 9-10) ─ M_sam as an owner map
                  ─ select (eq. 11, bincounts) ─ M_select ─ R_sam (eq. 12)
    R0 [H,W] ─ connected_components ─┐
    M_select ─ dilate (21x21) ───────┴─ fuse (eqs. 13-14) ─ R [H,W]

``remove_overlap`` / ``select_masks`` / ``mask_coverage`` are the same
steps on mask stacks (what the official code computes); the pipeline does
not call them, tests/test_models/test_fusion.py pins them against the official code
and the pipeline against them.

The passes over the whole mask stack (areas, overlap removal) and the
dilation run in numpy / OpenCV for CPU tensors (far faster than torch's
CPU kernels for uint8 stacks) and in torch elsewhere.

Where the official GFDS ``main.py`` differs from the paper's equations, the
official behaviour is the default (``variant='official'``) and the paper's
is ``variant='paper'``; every difference has its own switch in
:class:`MaskFusion`. ``docs/refiners.md`` lists them.
"""

from typing import Callable, Dict, Optional, Tuple, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

STRATEGIES = ('morph', 'union', 'sam')
REPLACE_MODES = ('official', 'paper')


_CV_MAX_CHANNELS = 128  # channels per cv2.dilate call


def _as_uint8(masks: Tensor) -> Tensor:
    """``[N, ...]`` binary masks as 0/1 ``uint8`` (zero-copy for bool)."""
    if masks.dtype == torch.bool:
        return masks.view(torch.uint8)
    if masks.is_floating_point():
        return (masks > 0.5).view(torch.uint8)
    return (masks != 0).view(torch.uint8)


def overlap_owner(
    masks: Tensor, complete: bool = False, backend: str = 'auto'
) -> Tuple[Tensor, int]:
    """Disjoint masks as an owner map: smaller masks keep their pixels.

    Masks are ranked by increasing area (stable sort, so equal areas keep
    the input order, i.e. the detector's confidence order); a pixel belongs
    to the lowest-ranked mask covering it. This is the official
    ``utils.remove_overlap`` (eqs. 9-10), computed in two vectorised passes
    over the stack (areas, then a max of rank weights) instead of a loop,
    and returned as one label map, so that the per-mask statistics of
    eq. 11 are two ``bincount`` calls.

    Args:
        masks (Tensor): ``[N, H, W]`` binary masks (bool, 0/1 uint8 or
            float).
        complete (bool): Enforce eq. 10's ``⋃ m_i = I``: the pixels no mask
            covers become one extra mask ``N`` (when there are any). The
            official code does not (``False``).
        backend (str): ``'auto'`` (numpy for CPU tensors, torch
            elsewhere), ``'numpy'`` or ``'torch'``.

    Returns:
        tuple[Tensor, int]: ``[H, W]`` long owner map (``-1`` = no mask)
        and the number of masks ``N'`` (``N``, or ``N + 1`` with
        ``complete`` and uncovered pixels).
    """
    n, h, w = masks.shape
    dev = masks.device
    if n == 0:
        if complete:
            return torch.zeros(h, w, dtype=torch.long, device=dev), 1
        return torch.full((h, w), -1, dtype=torch.long, device=dev), 0
    flat = _as_uint8(masks).reshape(n, -1)
    # weight n - rank (> 0): the max over covering masks is the smallest.
    wdtype = torch.uint8 if n < 256 else torch.int16 if n < 32768 else torch.int32
    if backend == 'auto':
        backend = 'numpy' if dev.type == 'cpu' else 'torch'
    if backend == 'numpy':
        # numpy's reductions over a uint8 stack are one to two orders of
        # magnitude faster than torch's CPU kernels here (measured).
        arr = flat.cpu().numpy()
        order = torch.from_numpy(
            np.argsort(np.count_nonzero(arr, axis=1), kind='stable')
        )
        rank = torch.empty_like(order)
        rank[order] = torch.arange(n)
        weight = (n - rank).to(wdtype).numpy()[:, None]
        best = (
            torch.from_numpy(
                np.multiply(arr.astype(weight.dtype, copy=False), weight).max(axis=0)
            )
            .long()
            .to(dev)
        )
        order = order.to(dev)
    else:
        area = flat.sum(1, dtype=torch.int64)
        order = torch.sort(area, stable=True).indices
        rank = torch.empty_like(order)
        rank[order] = torch.arange(n, device=dev)
        weight = (n - rank).to(wdtype)[:, None]
        best = (flat.to(wdtype) * weight).amax(0).long()
    covered = best > 0
    owner = torch.where(
        covered, order[(n - best).clamp(max=n - 1)], torch.full_like(best, -1)
    )
    if complete and not bool(covered.all()):
        owner[~covered] = n
        n += 1
    return owner.view(h, w), n


def remove_overlap(masks: Tensor, complete: bool = False) -> Tensor:
    """Make masks disjoint: smaller masks keep their pixels (eqs. 9-10).

    Args:
        masks (Tensor): ``[N, H, W]`` binary masks (any dtype).
        complete (bool): See :func:`overlap_owner`.

    Returns:
        Tensor: ``[N', H, W]`` bool disjoint masks in the input order
        (``N' = N``, +1 with ``complete`` when some pixel is uncovered). A
        mask entirely covered by smaller ones becomes empty but is kept.
    """
    owner, n = overlap_owner(masks, complete)
    idx = torch.arange(n, device=owner.device)[:, None, None]
    return owner[None] == idx


def mask_coverage(masks: Tensor, region: Tensor) -> Tuple[Tensor, Tensor]:
    """Fraction of each mask covered by a region (eq. 11's ratio).

    Args:
        masks (Tensor): ``[N, H, W]`` bool.
        region (Tensor): ``[H, W]`` bool (R0).

    Returns:
        tuple[Tensor, Tensor]: ``[N]`` float ``|m_i ∩ R0| / |m_i|`` (0 for an
        empty mask, which officially gives NaN and is never selected) and
        ``[N]`` long areas ``|m_i|``.
    """
    inter, area = _counts(masks, region)
    return inter.float() / area.clamp(min=1).float(), area


def _counts(masks: Tensor, region: Tensor) -> Tuple[Tensor, Tensor]:
    """``[N]`` ``|m_i ∩ region|`` and ``[N]`` ``|m_i|`` (long)."""
    flat = _as_uint8(masks).reshape(masks.shape[0], -1)
    area = flat.sum(1, dtype=torch.int64)
    inter = flat[:, region.reshape(-1).bool()].sum(1, dtype=torch.int64)
    return inter, area


def select_by_counts(
    inter: Tensor,
    area: Tensor,
    image_area: int,
    tau1: float = 0.2,
    max_area_ratio: Optional[float] = 0.4,
    large_overlap: float = 0.6,
) -> Tensor:
    """Eq. 11 from per-mask counts (see :func:`select_masks`).

    Args:
        inter (Tensor): ``[N]`` ``|m_i ∩ R0|``.
        area (Tensor): ``[N]`` ``|m_i|``.
        image_area (int): ``H * W``.
        tau1 (float): Coverage threshold of eq. 11.
        max_area_ratio (float, optional): Masks larger than this share of
            the image are dropped unless R0 covers them (``large_overlap``).
        large_overlap (float): Coverage that keeps a large mask.

    Returns:
        Tensor: ``[N]`` bool, the selected masks.
    """
    cov = inter.float() / area.clamp(min=1).float()
    keep = (cov > tau1) & (area > 0)
    if max_area_ratio is not None:
        keep &= (area.float() < max_area_ratio * image_area) | (cov > large_overlap)
    return keep


def select_masks(
    masks: Tensor,
    region: Tensor,
    tau1: float = 0.2,
    max_area_ratio: Optional[float] = 0.4,
    large_overlap: float = 0.6,
) -> Tensor:
    """Select the masks largely covered by R0 (eq. 11).

    Paper: keep ``m_i`` if ``|m_i ∩ R0| / |m_i| > tau1``. The official code
    also drops large masks: a mask of area ``>= max_area_ratio * H * W``
    is kept only if its coverage is above ``large_overlap`` (these are
    usually the background / the whole product, which a coarse R0 touches
    a lot).

    Args:
        masks (Tensor): ``[N, H, W]`` bool, disjoint.
        region (Tensor): ``[H, W]`` bool R0.
        tau1 (float): Coverage threshold (0.2).
        max_area_ratio (float, optional): Official area limit relative to
            the image (0.4); ``None`` disables it (paper).
        large_overlap (float): Coverage a large mask needs (0.6, official).

    Returns:
        Tensor: ``[N]`` bool, the selected masks.
    """
    inter, area = _counts(masks, region)
    return select_by_counts(
        inter, area, region.numel(), tau1, max_area_ratio, large_overlap
    )


def dilate(masks: Tensor, kernel_size: int = 21, backend: str = 'auto') -> Tensor:
    """Binary dilation with a square ``kernel_size`` structuring element.

    Equals the official ``F.max_pool2d(k, stride=1, padding=k // 2)`` (the
    image border counts as background). On CPU it is one multi-channel
    ``cv2.dilate`` (much faster than torch's CPU pooling); elsewhere a
    square element is separable, so two 1-D max-pools do it in ``2k``
    instead of ``k^2`` operations a pixel.

    Args:
        masks (Tensor): ``[N, H, W]`` bool.
        kernel_size (int): Odd kernel size (21).
        backend (str): ``'auto'`` (OpenCV for CPU tensors, torch
            elsewhere), ``'opencv'`` or ``'torch'``.

    Returns:
        Tensor: ``[N, H, W]`` bool dilated masks.
    """
    if kernel_size % 2 != 1:
        raise ValueError(f'kernel_size must be odd, got {kernel_size}')
    if masks.shape[0] == 0 or kernel_size == 1:
        return masks.bool().clone()
    if backend == 'auto':
        backend = 'opencv' if masks.device.type == 'cpu' else 'torch'
    if backend == 'opencv':
        kern = np.ones((kernel_size, kernel_size), np.uint8)
        arr = _as_uint8(masks).cpu().numpy()
        out = []
        # OpenCV dilates each channel of an H x W x C image; C is at most
        # CV_CN_MAX (512 in OpenCV 4, 128 in OpenCV 5).
        for i in range(0, arr.shape[0], _CV_MAX_CHANNELS):
            chunk = np.ascontiguousarray(
                arr[i : i + _CV_MAX_CHANNELS].transpose(1, 2, 0)
            )
            d = cv2.dilate(chunk, kern, borderType=cv2.BORDER_CONSTANT, borderValue=0)
            out.append(d.reshape(*chunk.shape).transpose(2, 0, 1))
        return torch.from_numpy(np.concatenate(out, 0)).bool().to(masks.device)
    p = kernel_size // 2
    x = masks[:, None].float()
    x = F.max_pool2d(x, (1, kernel_size), stride=1, padding=(0, p))
    x = F.max_pool2d(x, (kernel_size, 1), stride=1, padding=(p, 0))
    return x[:, 0] > 0


def connected_components(mask: Tensor, connectivity: int = 4) -> Tuple[Tensor, int]:
    """Label the connected components of a binary mask.

    Uses ``scipy.ndimage.label`` like the official code (its default
    structure is 4-connectivity), so labels are numbered in raster order of
    each component's first pixel, which fixes the official tie-breaking.

    Args:
        mask (Tensor): ``[H, W]`` binary.
        connectivity (int): 4 (official default) or 8.

    Returns:
        tuple[Tensor, int]: ``[H, W]`` long labels on ``mask``'s device
        (0 = background, components ``1..n``) and ``n``.
    """
    if connectivity not in (4, 8):
        raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    arr = mask.detach().bool().cpu().numpy()
    labels, n = ndimage.label(arr, structure=structure)
    return torch.from_numpy(labels.astype(np.int64)).to(mask.device), int(n)


def component_stats(labels: Tensor, num: int) -> Dict[str, Tensor]:
    """Areas, centroids and bounding boxes of labelled components.

    Args:
        labels (Tensor): ``[H, W]`` long, 0 = background, ``1..num``.
        num (int): Number of components.

    Returns:
        dict: ``area`` ``[num]`` long; ``centroid`` ``[num, 2]`` float
        ``(x, y)`` pixel coordinates (mean of the pixels' indices);
        ``box`` ``[num, 4]`` float ``(x0, y0, x1, y1)`` with inclusive pixel
        indices (the minimum bounding rectangle).
    """
    h, w = labels.shape
    dev = labels.device
    flat = labels.flatten()
    ys = torch.arange(h, device=dev).repeat_interleave(w).float()
    xs = torch.arange(w, device=dev).repeat(h).float()
    area = torch.bincount(flat, minlength=num + 1)
    sx = torch.bincount(flat, weights=xs, minlength=num + 1)
    sy = torch.bincount(flat, weights=ys, minlength=num + 1)
    cen = torch.stack([sx, sy], 1) / area.clamp(min=1)[:, None]
    big = float(max(h, w))
    x0 = torch.full((num + 1,), big, device=dev).scatter_reduce(0, flat, xs, 'amin')
    y0 = torch.full((num + 1,), big, device=dev).scatter_reduce(0, flat, ys, 'amin')
    x1 = torch.full((num + 1,), -1.0, device=dev).scatter_reduce(0, flat, xs, 'amax')
    y1 = torch.full((num + 1,), -1.0, device=dev).scatter_reduce(0, flat, ys, 'amax')
    box = torch.stack([x0, y0, x1, y1], 1)
    return dict(area=area[1:], centroid=cen[1:], box=box[1:])


def component_coverage(
    dilated: Tensor, labels: Tensor, num: int
) -> Tuple[Tensor, Tensor]:
    """Pixels of each R0 component under each dilated mask.

    Args:
        dilated (Tensor): ``[K, H, W]`` bool ``Dil(m_j)``.
        labels (Tensor): ``[H, W]`` long components of R0 (0 = bg).
        num (int): Number of components.

    Returns:
        tuple[Tensor, Tensor]: ``counts`` ``[K, num + 1]`` float,
        ``|Dil(m_j) ∩ R0^l|`` (column 0 = background pixels), and the
        component areas ``[num + 1]`` long.
    """
    k = dilated.shape[0]
    flat = labels.flatten()
    counts = torch.zeros(k, num + 1, device=dilated.device)
    # One scatter over pixels instead of a (K x components) loop.
    counts.index_add_(1, flat, dilated.flatten(1).float())
    return counts, torch.bincount(flat, minlength=num + 1)


def fuse(
    coarse: Tensor,
    selected: Tensor,
    strategy: str = 'morph',
    tau2: float = 0.9,
    kernel_size: int = 21,
    replace: str = 'official',
    connectivity: int = 4,
) -> Tensor:
    """Fuse R0 with the selected masks (eqs. 12-14 and Table 7).

    Strategies:

    - ``'sam'``: ``R = R_sam = ⋃ M_select`` (eq. 12; Table 7 "R_sam").
    - ``'union'``: ``R = R0 ∪ R_sam`` (Table 7; also the official code with
      ``useBoundary=False``).
    - ``'morph'``: the proposed morphological fusion, in two readings
      (``replace``):

      * ``'official'`` (``main.py`` with ``useBoundary=True``): start from
        ``R0 ∪ R_sam``; for each selected ``m_j`` take the R0 component
        with the most pixels under ``Dil(m_j)`` (ties: lowest label); if
        ``|Dil(m_j) ∩ R0^l| / |R0^l| > tau2``, ``m_j`` *replaces* it: the
        ring ``Dil(m_j) ∖ m_j`` is removed from R, except pixels of any
        replacing mask. Pixels of the replaced component outside the
        dilated mask survive, and other components' / masks' pixels in
        the ring are removed too.
      * ``'paper'`` (eqs. 13-14): a component is replaced (dropped) if some
        selected mask covers ``>= tau2`` of it (eq. 13 keeps those with
        coverage ``< tau2`` for all masks);
        ``R = R_sam ∪ (kept components)``.

    Args:
        coarse (Tensor): ``[H, W]`` bool R0.
        selected (Tensor): ``[K, H, W]`` bool M_select.
        strategy (str): ``'morph'``, ``'union'`` or ``'sam'``.
        tau2 (float): Component coverage threshold (0.9).
        kernel_size (int): Dilation kernel (21).
        replace (str): ``'official'`` or ``'paper'``.
        connectivity (int): Connectivity of R0's components (4, official).

    Returns:
        Tensor: ``[H, W]`` bool R.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f'strategy must be one of {STRATEGIES}')
    if replace not in REPLACE_MODES:
        raise ValueError(f'replace must be one of {REPLACE_MODES}')
    coarse = coarse.bool()
    selected = selected.bool()
    r_sam = selected.any(0) if selected.shape[0] else torch.zeros_like(coarse)
    if strategy == 'sam':
        return r_sam
    if strategy == 'union' or selected.shape[0] == 0:
        return coarse | r_sam
    labels, num = connected_components(coarse, connectivity)
    dil = dilate(selected, kernel_size)
    counts, comp_area = component_coverage(dil, labels, num)
    cov = counts / comp_area.clamp(min=1).float()[None]
    if replace == 'official':
        fg_counts = counts[:, 1:]
        if num == 0:
            return coarse | r_sam
        best = fg_counts.argmax(1)  # first maximum = lowest label
        best_cov = cov[:, 1:].gather(1, best[:, None])[:, 0]
        # A mask with no R0 pixel under it cannot replace anything (the
        # official code would fail on an empty bincount here).
        rep = (best_cov > tau2) & (fg_counts.amax(1) > 0)
        if not bool(rep.any()):
            return coarse | r_sam
        s_all = selected[rep].any(0)
        ring = (dil[rep] & ~selected[rep]).any(0)
        return (coarse | r_sam) & ~(ring & ~s_all)
    # float64: eq. 13's boundary (coverage == tau2, e.g. 9/10) is exact.
    cov64 = counts[:, 1:].double() / comp_area[1:].clamp(min=1).double()
    replaced = (cov64 >= tau2).any(0)  # [num]
    lut = torch.cat([torch.ones(1, dtype=torch.bool, device=labels.device), replaced])
    kept = coarse & ~lut[labels]
    return r_sam | kept


class MaskFusion:
    """The configurable fusion of eqs. 9-14 on label maps.

    Args:
        variant (str): ``'official'`` (default) or ``'paper'``: the defaults
            of the switches below that differ between ``main.py`` and the
            paper's equations. Explicit keyword arguments override them.
        strategy (str): ``'morph'`` (proposed), ``'union'`` (R0 ∪ R_sam) or
            ``'sam'`` (R_sam); Table 7.
        tau1 (float): Selection coverage threshold (eq. 11, 0.2).
        tau2 (float): Replacement coverage threshold (eq. 13, 0.9).
        kernel_size (int): Dilation kernel (21).
        connectivity (int): Connectivity of R0's components (4: the official
            ``scipy.ndimage.label`` default; the paper does not say).
        max_area_ratio (float, optional): Official selection limit on a
            mask's area relative to the image (0.4; ``None`` in the paper).
        large_overlap (float): Coverage above which a large mask is still
            selected (0.6, official).
        replace (str): ``'official'`` ring removal or ``'paper'`` component
            replacement (see :func:`fuse`).
        complete_partition (bool): Add the uncovered pixels as one more mask
            so the masks partition the image, enforcing eq. 10's
            ``⋃ m_i = I`` literally. Off in both variants: the official code
            does not, and eq. 10 reads as a description of FastSAM's output
            (enforced, the whole uncovered background becomes a mask that
            eq. 11 selects whenever R0 covers > tau1 of it).
    """

    VARIANTS = dict(
        official=dict(max_area_ratio=0.4, replace='official', complete_partition=False),
        paper=dict(max_area_ratio=None, replace='paper', complete_partition=False),
    )
    KEYS = (
        'strategy',
        'tau1',
        'tau2',
        'kernel_size',
        'connectivity',
        'max_area_ratio',
        'large_overlap',
        'replace',
        'complete_partition',
    )

    def __init__(self, variant: str = 'official', **kwargs):
        if variant not in self.VARIANTS:
            raise ValueError(f'variant must be one of {list(self.VARIANTS)}')
        unknown = set(kwargs) - set(self.KEYS)
        if unknown:
            raise TypeError(f'unknown fusion options {sorted(unknown)}')
        cfg = dict(
            strategy='morph',
            tau1=0.2,
            tau2=0.9,
            kernel_size=21,
            connectivity=4,
            large_overlap=0.6,
        )
        cfg.update(self.VARIANTS[variant])
        cfg.update(kwargs)
        self.variant = variant
        for k in self.KEYS:
            setattr(self, k, cfg[k])
        if self.strategy not in STRATEGIES:
            raise ValueError(f'strategy must be one of {STRATEGIES}')
        if self.replace not in REPLACE_MODES:
            raise ValueError(f'replace must be one of {REPLACE_MODES}')
        if self.kernel_size % 2 != 1:
            raise ValueError('kernel_size must be odd')

    def __repr__(self) -> str:
        opts = ', '.join(f'{k}={getattr(self, k)!r}' for k in self.KEYS)
        return f'MaskFusion(variant={self.variant!r}, {opts})'

    def fuse_binary(self, coarse: Tensor, masks: Tensor) -> Tensor:
        """Eqs. 9-14 for one binary R0.

        Args:
            coarse (Tensor): ``[H, W]`` bool R0.
            masks (Tensor): ``[N, H, W]`` binary raw masks (overlapping).

        Returns:
            Tensor: ``[H, W]`` bool R.
        """
        coarse = coarse.bool()
        if not bool(coarse.any()):
            # Nothing can be selected (coverage 0): R = R0 = empty.
            return coarse.clone()
        # M_sam as an owner map: the statistics of eq. 11 are bincounts and
        # only the selected masks are ever materialised.
        owner, n = overlap_owner(
            masks.to(coarse.device), complete=self.complete_partition
        )
        valid = owner >= 0
        area = torch.bincount(owner[valid], minlength=n)
        inter = torch.bincount(owner[valid & coarse], minlength=n)
        keep = select_by_counts(
            inter,
            area,
            coarse.numel(),
            self.tau1,
            self.max_area_ratio,
            self.large_overlap,
        )
        idx = torch.nonzero(keep).flatten()
        selected = owner[None] == idx[:, None, None]
        return fuse(
            coarse,
            selected,
            self.strategy,
            self.tau2,
            self.kernel_size,
            self.replace,
            self.connectivity,
        )

    def __call__(
        self, coarse: Tensor, masks: Union[Tensor, Callable[[Tensor], Tensor]]
    ) -> Tensor:
        """Fuse a label map, way by way.

        Each way ``c`` is fused as a binary R0 (``coarse == c``), as the
        official code does for its single way. Where fused ways overlap, a
        pixel keeps its R0 way if that way still claims it, else the lowest
        way claiming it.

        Args:
            coarse (Tensor): ``[H, W]`` long R0 (0 = background).
            masks (Tensor | callable): ``[N, H, W]`` masks shared by all
                ways (FastSAM, everything mode), or a function mapping a
                way's binary R0 ``[H, W]`` to its ``[N, H, W]`` masks
                (prompts derived from R0).

        Returns:
            Tensor: ``[H, W]`` long R.
        """
        ways = [int(c) for c in torch.unique(coarse) if int(c) > 0]
        out = torch.zeros_like(coarse)
        fused = {}
        for c in ways:
            region = coarse == c
            m = masks(region) if callable(masks) else masks
            fused[c] = self.fuse_binary(region, m)
        for c in sorted(ways, reverse=True):
            out[fused[c]] = c
        for c in ways:
            out[fused[c] & (coarse == c)] = c
        return out
