"""Pure functions behind :class:`~fdseg.evaluation.FewShotIoUMetric`.

Every episode is reduced to one small *area record*: a ``[4, 2]`` float64
array whose rows are the (intersection, union, predicted, ground-truth) pixel
areas and whose columns are (background, query foreground), exactly what
:meth:`mmseg.evaluation.IoUMetric.intersect_and_union` returns for a binary
problem. All benchmark numbers are sums of these records followed by
divisions, so they are computed here, vectorised over episodes, without any
per-pixel state:

* **per category**: areas summed over all episodes of the category (the
  standard FSS protocol; also what the official GFDS ``mIOU`` confusion
  matrix does, because each category owns one row/column of it) →
  IoU, precision, recall, background IoU;
* **per product**: ``mIoU`` = mean IoU of its categories (paper eq. 17),
  ``FB-IoU`` = eq. 18 with all its episodes pooled into one foreground vs
  background problem, ``FB-IoU(gfds)`` = the official script's
  ``0.5 * (mean fg IoU of its categories + pooled background IoU)``;
* **overall**: ``mIoU`` over all categories (Table 4 "Average" mIoU),
  ``FB-IoU`` / ``FB-IoU(gfds)`` as the mean of the per-product values (Table
  4 "Average" FB-IoU), ``FB-IoU(global)`` = eq. 18 pooled over every
  episode, and mean precision / recall over categories.

Undefined ratios (a zero union, e.g. a category that only met defect-free
queries predicted empty) are NaN and are left out of every mean (nanmean);
a mean over nothing but NaN is NaN.
"""

from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
import torch
from mmseg.evaluation import IoUMetric

# Row / column indices of an area record.
AREA_INTERSECT, AREA_UNION, AREA_PRED, AREA_LABEL = range(4)
BG, FG = 0, 1
# Value given to predicted pixels of another way in N-way episodes: outside
# [0, 1], so ``torch.histc`` drops it from every bin (neither bg nor fg).
_OTHER_WAY = 2
# float32 counts from torch.histc are exact only below 2**24 pixels.
_HISTC_EXACT_LIMIT = 2**24

TensorLike = Union[torch.Tensor, np.ndarray]


def _as_2d_long(x: TensorLike, name: str) -> torch.Tensor:
    """``[H, W]`` or ``[1, H, W]`` tensor/array -> ``[H, W]`` long tensor."""
    x = torch.as_tensor(x)
    if x.ndim == 3 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 2:
        raise ValueError(
            f'{name} must have shape [H, W] or [1, H, W], got {tuple(x.shape)}'
        )
    return x.long()


def binarize_episode(
    pred: TensorLike, gt: TensorLike, query_label: int, ignore_index: int = 255
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Turn one episode's maps into the query-category binary problem.

    Args:
        pred: Predicted map ``[H, W]`` or ``[1, H, W]``, values ``0..N``
            (0 = background, ``w`` = way ``w``).
        gt: Ground truth of the same shape, ``{0, query_label}`` and
            ``ignore_index``.
        query_label: Way index of the query's category (1 for 1-way).
        ignore_index: Ground-truth value excluded from evaluation.

    Returns:
        ``(pred_bin, gt_bin)``: ``pred_bin`` is 0 (background), 1 (query
        category) or 2 (another way, which counts as neither: for N-way it
        is a wrong prediction on a background pixel and a miss on a defect
        pixel, as in a multi-class confusion matrix); ``gt_bin`` is 0, 1 or
        ``ignore_index``. Any non-zero, non-ignored ground truth is
        foreground, so binary 0/1 masks work whatever the query label.
    """
    if int(query_label) < 1:
        raise ValueError(f'query_label must be >= 1, got {query_label}')
    pred = _as_2d_long(pred, 'pred')
    gt = _as_2d_long(gt, 'gt').to(pred.device)
    if pred.shape != gt.shape:
        raise ValueError(
            f'prediction shape {tuple(pred.shape)} differs from '
            f'ground-truth shape {tuple(gt.shape)}'
        )
    pred_bin = torch.where(
        pred == 0,
        torch.zeros_like(pred),
        torch.where(
            pred == int(query_label),
            torch.ones_like(pred),
            torch.full_like(pred, _OTHER_WAY),
        ),
    )
    gt_bin = torch.where(
        gt == ignore_index, torch.full_like(gt, ignore_index), (gt != 0).long()
    )
    return pred_bin, gt_bin


def episode_areas(
    pred: TensorLike, gt: TensorLike, query_label: int = 1, ignore_index: int = 255
) -> np.ndarray:
    """Binary intersection / union / prediction / label areas of an episode.

    Args:
        pred: Predicted map, see :func:`binarize_episode`.
        gt: Ground-truth map, see :func:`binarize_episode`.
        query_label: Way index of the query's category.
        ignore_index: Ground-truth value excluded from evaluation.

    Returns:
        np.ndarray: ``[4, 2]`` float64 area record (rows
        ``AREA_INTERSECT, AREA_UNION, AREA_PRED, AREA_LABEL``; columns
        ``BG, FG``).
    """
    pred_bin, gt_bin = binarize_episode(pred, gt, query_label, ignore_index)
    if pred_bin.numel() < _HISTC_EXACT_LIMIT:
        areas = IoUMetric.intersect_and_union(pred_bin, gt_bin, 2, ignore_index)
        return torch.stack(areas).double().numpy()
    # Huge masks: exact integer counts (histc accumulates in float32).
    valid = gt_bin != ignore_index
    p, g = pred_bin[valid], gt_bin[valid]
    inter = torch.bincount(p[p == g], minlength=3)[:2]
    area_pred = torch.bincount(p, minlength=3)[:2]
    area_label = torch.bincount(g, minlength=2)[:2]
    union = area_pred + area_label - inter
    return torch.stack([inter, union, area_pred, area_label]).double().cpu().numpy()


def resize_nearest(mask: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D label map to ``shape = (H, W)``.

    Pixel-centre aligned (same as ``torch`` ``'nearest-exact'``), done by
    index arithmetic so the result is exact and backend independent: integer
    upscales replicate each pixel, and no label value is ever invented.
    """
    mask = np.asarray(mask)
    height, width = int(shape[0]), int(shape[1])
    src_h, src_w = mask.shape[:2]
    rows = np.minimum(
        ((np.arange(height) + 0.5) * src_h / height).astype(np.int64), src_h - 1
    )
    cols = np.minimum(
        ((np.arange(width) + 0.5) * src_w / width).astype(np.int64), src_w - 1
    )
    return mask[rows[:, None], cols[None, :]]


def safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Element-wise ``num / den`` that is NaN (not inf) where ``den == 0``."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def nanmean(x: np.ndarray, axis=None) -> np.ndarray:
    """Mean ignoring NaN; NaN (without a RuntimeWarning) where all are NaN."""
    x = np.asarray(x, dtype=np.float64)
    valid = ~np.isnan(x)
    count = valid.sum(axis=axis)
    total = np.where(valid, x, 0.0).sum(axis=axis)
    return safe_divide(total, count)


def group_sum(values: np.ndarray, index: np.ndarray, num_groups: int) -> np.ndarray:
    """Sum rows of ``values`` ``[E, ...]`` into ``num_groups`` groups."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros((num_groups,) + values.shape[1:], dtype=np.float64)
    np.add.at(out, np.asarray(index, dtype=np.int64), values)
    return out


def group_nanmean(values: np.ndarray, index: np.ndarray, num_groups: int) -> np.ndarray:
    """NaN-ignoring mean of a 1-D ``values`` per group."""
    values = np.asarray(values, dtype=np.float64)
    valid = ~np.isnan(values)
    total = group_sum(np.where(valid, values, 0.0), index, num_groups)
    count = group_sum(valid.astype(np.float64), index, num_groups)
    return safe_divide(total, count)


def iou(areas: np.ndarray) -> np.ndarray:
    """IoU per column (bg, fg) of area record(s) ``[..., 4, 2]``."""
    areas = np.asarray(areas, dtype=np.float64)
    return safe_divide(areas[..., AREA_INTERSECT, :], areas[..., AREA_UNION, :])


def precision(areas: np.ndarray) -> np.ndarray:
    """Precision (intersection / predicted) per column of area record(s)."""
    areas = np.asarray(areas, dtype=np.float64)
    return safe_divide(areas[..., AREA_INTERSECT, :], areas[..., AREA_PRED, :])


def recall(areas: np.ndarray) -> np.ndarray:
    """Recall (intersection / ground truth) per column of area record(s)."""
    areas = np.asarray(areas, dtype=np.float64)
    return safe_divide(areas[..., AREA_INTERSECT, :], areas[..., AREA_LABEL, :])


def fb_iou(areas: np.ndarray) -> np.ndarray:
    """Paper eq. 18 ``(IoU_F + IoU_B) / 2`` of (pooled) area record(s).

    NaN if either half is undefined (as in the official formula).
    """
    ious = iou(areas)
    return 0.5 * (ious[..., FG] + ious[..., BG])


def _encode_groups(keys: Sequence) -> Tuple[List, np.ndarray]:
    """Sorted unique keys and each element's index into them."""
    uniq = sorted(set(keys))
    lookup = {k: i for i, k in enumerate(uniq)}
    return uniq, np.array([lookup[k] for k in keys], dtype=np.int64)


def aggregate_areas(
    areas: np.ndarray, products: Sequence[str], categories: Sequence[str]
) -> Dict:
    """Aggregate per-episode area records into benchmark metrics.

    Args:
        areas: ``[E, 4, 2]`` area records (see :func:`episode_areas`).
        products: Product of each episode (length ``E``).
        categories: Category of each episode (length ``E``); categories are
            keyed by ``(product, category)``, so equal names in different
            products stay distinct.

    Returns:
        dict: Ratios in ``[0, 1]`` (NaN where undefined), keys sorted:

        - ``category_keys``: list of ``(product, category)``;
        - ``category``: arrays over categories: ``episodes``, ``areas``
          (``[C, 4, 2]`` summed records), ``iou``, ``precision``,
          ``recall``, ``bg_iou``;
        - ``product_keys``: list of products;
        - ``product``: arrays over products: ``episodes``,
          ``num_categories``, ``miou``, ``iou_f``, ``iou_b``, ``fb_iou``
          (eq. 18, product pooled), ``fb_iou_gfds`` (official variant);
        - ``overall``: floats ``miou`` (eq. 17 over all categories),
          ``fb_iou`` / ``fb_iou_gfds`` (mean over products, Table 4
          "Average"), ``fb_iou_global`` (eq. 18 over all episodes),
          ``iou_f``, ``iou_b`` (global pooled), ``mprecision``, ``mrecall``
          (over categories), ``episodes``.
    """
    areas = np.asarray(areas, dtype=np.float64).reshape(-1, 4, 2)
    num_ep = areas.shape[0]
    if len(products) != num_ep or len(categories) != num_ep:
        raise ValueError(
            f'{num_ep} area records but {len(products)} products '
            f'and {len(categories)} categories'
        )
    cat_keys, cat_idx = _encode_groups(
        [(str(p), str(c)) for p, c in zip(products, categories)]
    )
    prod_keys, prod_idx = _encode_groups([str(p) for p in products])
    num_cat, num_prod = len(cat_keys), len(prod_keys)
    # Which product each category belongs to (categories sorted by product).
    prod_lookup = {p: i for i, p in enumerate(prod_keys)}
    cat_prod_idx = np.array([prod_lookup[p] for p, _ in cat_keys], dtype=np.int64)

    ones = np.ones(num_ep)
    cat_areas = group_sum(areas, cat_idx, num_cat)
    cat_iou = iou(cat_areas)
    category = dict(
        episodes=group_sum(ones, cat_idx, num_cat).astype(np.int64),
        areas=cat_areas,
        iou=cat_iou[:, FG],
        bg_iou=cat_iou[:, BG],
        precision=precision(cat_areas)[:, FG],
        recall=recall(cat_areas)[:, FG],
    )

    prod_areas = group_sum(areas, prod_idx, num_prod)
    prod_iou = iou(prod_areas)
    prod_miou = group_nanmean(category['iou'], cat_prod_idx, num_prod)
    product = dict(
        episodes=group_sum(ones, prod_idx, num_prod).astype(np.int64),
        num_categories=np.bincount(cat_prod_idx, minlength=num_prod),
        miou=prod_miou,
        iou_f=prod_iou[:, FG],
        iou_b=prod_iou[:, BG],
        fb_iou=fb_iou(prod_areas),
        # Official GFDS: mean fg IoU of the product's categories (its
        # confusion-matrix rows 1..C) averaged with the pooled bg IoU.
        fb_iou_gfds=0.5 * (prod_miou + prod_iou[:, BG]),
    )

    all_areas = areas.sum(axis=0)
    all_iou = iou(all_areas)
    overall = dict(
        episodes=num_ep,
        miou=float(nanmean(category['iou'])),
        fb_iou=float(nanmean(product['fb_iou'])),
        fb_iou_gfds=float(nanmean(product['fb_iou_gfds'])),
        fb_iou_global=float(fb_iou(all_areas)),
        iou_f=float(all_iou[FG]),
        iou_b=float(all_iou[BG]),
        mprecision=float(nanmean(category['precision'])),
        mrecall=float(nanmean(category['recall'])),
    )
    return dict(
        category_keys=cat_keys,
        category=category,
        product_keys=prod_keys,
        product=product,
        overall=overall,
    )
