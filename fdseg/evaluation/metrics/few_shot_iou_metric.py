"""Few-shot defect segmentation metric (GFDS paper Sec. 6.2, Table 4)."""

import logging
import math
import os.path as osp
from collections.abc import Mapping
from typing import Dict, List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.structures import BaseDataElement
from prettytable import PrettyTable

from fdseg.registry import METRICS

from .. import functional as F
from .. import writers

# Keys every data sample must carry, and those needed to save predictions.
REQUIRED_KEYS = (
    'pred_sem_seg',
    'gt_sem_seg',
    'product',
    'category',
    'query_label',
    'is_good',
)
SAVE_KEYS = ('query_path', 'ori_shape')
FBIOU_VARIANTS = ('paper', 'gfds')
GOOD_QUERY_MODES = ('count', 'ignore')


# Episode keys recorded so that a run can be replayed (PackEpisodeInputs).
REPLAY_KEYS = (
    'episode_idx',
    'query_mask_path',
    'support_paths',
    'support_mask_paths',
    'support_labels',
    'way_categories',
)


def _replay_info(sample: Mapping) -> dict:
    """The replay keys of a data sample (``None`` where absent)."""

    def as_list(value, cast):
        if value is None:
            return None
        if isinstance(value, torch.Tensor):
            value = value.tolist()
        if isinstance(value, (str, bytes)) or not hasattr(value, '__iter__'):
            value = [value]
        return [cast(v) for v in value]

    idx = sample.get('episode_idx')
    mask_path = sample.get('query_mask_path')
    return dict(
        episode_idx=None if idx is None else int(idx),
        query_mask_path=None if mask_path is None else str(mask_path),
        support_paths=as_list(sample.get('support_paths'), str),
        support_mask_paths=as_list(
            sample.get('support_mask_paths'), lambda p: None if p is None else str(p)
        ),
        support_labels=as_list(sample.get('support_labels'), int),
        way_categories=as_list(sample.get('way_categories'), str),
    )


def _percent(value: float) -> float:
    """Ratio -> percent rounded to 2 decimals (like mmseg); NaN stays NaN."""
    value = float(value)
    return value if math.isnan(value) else float(np.round(value * 100, 2))


def _jsonable(obj):
    """Recursively turn numpy scalars into Python ones and NaN into None."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # strict JSON has no NaN
    return obj


def _fmt(value) -> str:
    """Table cell: 2 decimals, '-' for NaN."""
    if isinstance(value, float):
        return '-' if math.isnan(value) else f'{value:.2f}'
    return str(value)


def _pixel_data(value, key: str) -> torch.Tensor:
    """``data`` of a PixelData or of its ``to_dict()`` form."""
    if isinstance(value, Mapping):
        if 'data' not in value:
            raise KeyError(f'data sample key {key!r} has no "data" entry')
        return value['data']
    if hasattr(value, 'data'):
        return value.data
    raise TypeError(
        f'{key} must be a PixelData or a dict with "data", got {type(value).__name__}'
    )


@METRICS.register_module()
class FewShotIoUMetric(BaseMetric):
    """mIoU / FB-IoU of few-shot defect segmentation episodes.

    Each episode (one query with its support set) is reduced to the binary
    areas of its query category (:func:`fdseg.evaluation.functional.
    episode_areas`), then aggregated like the GFDS benchmark: per category
    IoU with areas summed over its episodes; per product mIoU (eq. 17),
    FB-IoU (eq. 18, the product's episodes pooled into one fg-vs-bg problem)
    and the official GFDS script's variant (``0.5 * (mean fg IoU of the
    product's categories + pooled bg IoU)``, what its ``mIOU`` class prints
    as "FB_IOU"); and the Table 4 "Average": mIoU over all categories and
    FB-IoU averaged over products. Metrics are computed at the resolution of
    ``pred_sem_seg`` / ``gt_sem_seg`` (which must match).

    Output keys (percent, 2 decimals, NaN where undefined):
    ``mIoU``, ``FB-IoU`` (mean over products of eq. 18), ``FB-IoU(global)``
    (eq. 18 over all episodes pooled), ``FB-IoU(gfds)`` (mean over products
    of the official variant, i.e. the official ``final_fbiou``),
    ``mPrecision``, ``mRecall`` (means over categories),
    ``<product>/mIoU``, ``<product>/FB-IoU``, ``<product>/FB-IoU(gfds)``,
    ``<product>/<category>/IoU``. FB-IoU keys of a variant not listed in
    ``fbiou_variants`` are omitted.

    Args:
        good_queries (str): Defect-free (``is_good``) queries. ``'ignore'``
            (official GFDS: their ground truth is set to ``ignore_index`` so
            they contribute nothing) or ``'count'`` (their predicted pixels
            are false positives of the category they were paired with, and
            their background counts towards background IoU).
        fbiou_variants (Sequence[str]): FB-IoU definitions to report, any of
            ``'paper'`` (eq. 18) and ``'gfds'`` (official script).
        output_dir (str, optional): If set, predictions (see
            ``save_predictions``) go to ``<output_dir>/predictions/<product>/
            <category>/<query stem>.png`` (defect-free queries under
            ``.../<category>/good/<stem>.png``; a query met again in another
            episode gets ``<stem>__<k>.png``), and every metric, the
            per-category / per-product tables and one record per episode
            (``episodes[i]``: ``episode_idx``, ``product``, ``category``,
            ``query_path``, ``query_mask_path``, ``support_paths``,
            ``support_mask_paths``, ``support_labels``,
            ``way_categories``, ``query_label``, ``is_good``, ``IoU``,
            ``prediction``: enough to replay it) to ``<output_dir>/
            metrics.json``. Nothing is visible there until the evaluation
            succeeded: files are staged in hidden ``.tmp-*`` folders and
            moved into place at the end (:mod:`fdseg.evaluation.writers`);
            an earlier fdseg output there is replaced, and anything fdseg
            did not write is never deleted: the first ``process`` call
            raises :class:`~fdseg.evaluation.writers.OutputDirError`
            instead.
        save_predictions (bool): Save the predicted query-category mask
            (255 = defect) resized (nearest) to ``ori_shape``. Only used with
            ``output_dir``.
        ignore_index (int): Ground-truth value excluded from evaluation.
        collect_device (str): ``'cpu'`` or ``'gpu'``, to collect results
            across ranks.
        prefix (str, optional): Prefix added to the metric names.

    Each element of ``data_samples`` (a dict, or a data element converted
    with ``to_dict()``) needs ``pred_sem_seg`` / ``gt_sem_seg`` (``{'data':
    LongTensor [1, H, W]}``, prediction values ``0..N``, ground truth
    ``{0, query_label}`` and ``ignore_index``), ``product``, ``category``,
    ``query_label`` and ``is_good``, plus ``query_path`` and ``ori_shape``
    when predictions are saved; a missing one raises a ``KeyError`` naming
    it. Optional replay keys (``episode_idx``, ``query_mask_path``,
    ``support_paths``, ``support_mask_paths``, ``support_labels``,
    ``way_categories``; packed by ``PackEpisodeInputs``) are recorded as
    ``null`` when absent.
    """

    # '' = no prefix, without BaseMetric's "prefix is not set" warning.
    default_prefix: Optional[str] = ''

    def __init__(
        self,
        good_queries: str = 'count',
        fbiou_variants: Union[str, Sequence[str]] = ('paper', 'gfds'),
        output_dir: Optional[str] = None,
        save_predictions: bool = True,
        ignore_index: int = 255,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if good_queries not in GOOD_QUERY_MODES:
            raise ValueError(
                f'good_queries must be one of {GOOD_QUERY_MODES}, got {good_queries!r}'
            )
        if isinstance(fbiou_variants, str):
            fbiou_variants = (fbiou_variants,)
        unknown = set(fbiou_variants) - set(FBIOU_VARIANTS)
        if unknown:
            raise ValueError(
                f'unknown fbiou_variants {sorted(unknown)}; '
                f'choose from {FBIOU_VARIANTS}'
            )
        self.good_queries = good_queries
        self.fbiou_variants = tuple(fbiou_variants)
        self.output_dir = output_dir
        self.save_predictions = bool(save_predictions)
        self.ignore_index = int(ignore_index)
        # Per-rank hidden staging folder in output_dir and a counter naming
        # its files; rank 0 merges all ranks' folders, whose names reach it
        # through the collected results.
        self._staging: Optional[writers.StagingDir] = None
        self._tmp_count = 0
        # output_dir is checked once per round, before anything is written.
        self._checked = False

    @property
    def _saving(self) -> bool:
        return self.output_dir is not None and self.save_predictions

    # ------------------------------------------------------------------
    # process
    # ------------------------------------------------------------------
    def process(self, data_batch, data_samples: Sequence) -> None:
        """Reduce each episode to its area record (and stage its mask).

        Args:
            data_batch: Unused.
            data_samples (Sequence[dict]): Episode outputs, see the class
                docstring.
        """
        try:
            if self.output_dir is not None and not self._checked:
                writers.check_output_dir(self.output_dir, 'output_dir')
                self._checked = True
            samples = [self._as_dict(s) for s in data_samples]
            # Validate the whole batch before writing anything.
            for sample in samples:
                self._check_keys(sample)
            for sample in samples:
                self.results.append(self._process_one(sample))
        except BaseException:
            # A failed round is abandoned: drop its staged files so no
            # partial output survives, and the records pointing to them.
            self._discard_tmp_dir()
            self.results.clear()
            raise

    @staticmethod
    def _as_dict(sample) -> Mapping:
        if isinstance(sample, BaseDataElement):
            return sample.to_dict()
        if isinstance(sample, Mapping):
            return sample
        raise TypeError(
            f'data samples must be dicts or data elements, got {type(sample).__name__}'
        )

    def _check_keys(self, sample: Mapping) -> None:
        keys = REQUIRED_KEYS + (SAVE_KEYS if self._saving else ())
        for key in keys:
            if key not in sample:
                raise KeyError(
                    f'FewShotIoUMetric: data sample lacks required key '
                    f'{key!r} (has {sorted(sample.keys())})'
                )

    def _process_one(self, sample: Mapping) -> dict:
        pred = torch.as_tensor(_pixel_data(sample['pred_sem_seg'], 'pred_sem_seg'))
        gt = torch.as_tensor(_pixel_data(sample['gt_sem_seg'], 'gt_sem_seg'))
        label = int(sample['query_label'])
        is_good = bool(sample['is_good'])
        if is_good and self.good_queries == 'ignore':
            # Official GFDS: a defect-free query's mask is all 255.
            gt = torch.full_like(gt, self.ignore_index)
        record = dict(
            product=str(sample['product']),
            category=str(sample['category']),
            query_label=label,
            is_good=is_good,
            query_path=str(sample.get('query_path', '')),
            areas=F.episode_areas(pred, gt, label, self.ignore_index),
        )
        record.update(_replay_info(sample))
        if self._saving:
            record.update(self._stage_prediction(pred, sample, label, is_good))
        return record

    def _stage_prediction(
        self, pred: torch.Tensor, sample: Mapping, label: int, is_good: bool
    ) -> dict:
        """Write the query mask into this rank's hidden folder."""
        if self._staging is None:
            self._staging = writers.StagingDir(
                self.output_dir, f'r{get_rank()}', on_remove=self._on_staging_removed
            )
        pred2d = pred[0] if pred.ndim == 3 else pred
        mask = ((pred2d == label).to(torch.uint8) * 255).cpu().numpy()
        height, width = (int(v) for v in tuple(sample['ori_shape'])[:2])
        if mask.shape != (height, width):
            mask = np.ascontiguousarray(F.resize_nearest(mask, (height, width)))
        tmp_png = f'{self._staging.name}/{self._tmp_count:08d}.png'
        self._tmp_count += 1
        if not cv2.imwrite(osp.join(self.output_dir, tmp_png), mask):
            raise OSError(f'could not write {tmp_png} in {self.output_dir}')
        stem = osp.splitext(osp.basename(str(sample['query_path'])))[0]
        parts = [str(sample['product']), str(sample['category'])]
        # Defect-free images often share stems with defect ones (000.png).
        parts += ['good', stem] if is_good else [stem]
        return dict(tmp_png=tmp_png, target='/'.join(parts))

    def _on_staging_removed(self) -> None:
        # Removed on a signal or at exit: the round's records point to
        # files that are gone, so the round is abandoned.
        self._staging = None
        self._tmp_count = 0
        self._checked = False
        self.results.clear()

    def _discard_tmp_dir(self) -> None:
        if self._staging is not None:
            self._staging.discard()
        self._forget_tmp_dir()

    def _forget_tmp_dir(self) -> None:
        if self._staging is not None:
            self._staging.forget()
        self._staging = None
        self._tmp_count = 0
        self._checked = False

    def evaluate(self, size: int) -> dict:
        """Collect, compute (rank 0) and broadcast; see ``BaseMetric``."""
        try:
            return super().evaluate(size)
        finally:
            # Rank 0 has moved or removed this round's staged files; the
            # next round stages into a fresh folder.
            self._forget_tmp_dir()

    # ------------------------------------------------------------------
    # compute_metrics
    # ------------------------------------------------------------------
    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Aggregate all episodes, log tables and write ``output_dir``.

        Args:
            results (list[dict]): Records of all ranks' ``process`` calls.

        Returns:
            dict[str, float]: Flat metrics in percent (see class docstring).
        """
        try:
            return self._compute_and_write(results)
        except BaseException:
            self._remove_staged(results)
            raise

    def _compute_and_write(self, results: List[dict]) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        if not results:
            print_log(
                'FewShotIoUMetric: no episode to evaluate',
                logger,
                level=logging.WARNING,
            )
            return {}
        agg = F.aggregate_areas(
            np.stack([r['areas'] for r in results]),
            [r['product'] for r in results],
            [r['category'] for r in results],
        )
        metrics = self._flat_metrics(agg)
        cat_rows, prod_rows, avg_rows = self._table_rows(agg, results)
        self._log_tables(cat_rows, prod_rows, avg_rows, logger)
        if self.output_dir is not None:
            self._write_outputs(results, agg, metrics, cat_rows, prod_rows, avg_rows)
            print_log(f'FewShotIoUMetric: results written to {self.output_dir}', logger)
        return metrics

    def _flat_metrics(self, agg: dict) -> Dict[str, float]:
        paper = 'paper' in self.fbiou_variants
        gfds = 'gfds' in self.fbiou_variants
        ov, prod, cat = agg['overall'], agg['product'], agg['category']
        metrics = {'mIoU': _percent(ov['miou'])}
        if paper:
            metrics['FB-IoU'] = _percent(ov['fb_iou'])
            metrics['FB-IoU(global)'] = _percent(ov['fb_iou_global'])
        if gfds:
            metrics['FB-IoU(gfds)'] = _percent(ov['fb_iou_gfds'])
        metrics['mPrecision'] = _percent(ov['mprecision'])
        metrics['mRecall'] = _percent(ov['mrecall'])
        for i, name in enumerate(agg['product_keys']):
            metrics[f'{name}/mIoU'] = _percent(prod['miou'][i])
            if paper:
                metrics[f'{name}/FB-IoU'] = _percent(prod['fb_iou'][i])
            if gfds:
                metrics[f'{name}/FB-IoU(gfds)'] = _percent(prod['fb_iou_gfds'][i])
        for i, (product, category) in enumerate(agg['category_keys']):
            metrics[f'{product}/{category}/IoU'] = _percent(cat['iou'][i])
        return metrics

    def _table_rows(self, agg: dict, results: List[dict]):
        """Per-category, per-product and average rows (percent values)."""
        cat, prod, ov = agg['category'], agg['product'], agg['overall']
        good = {}
        for r in results:
            if r['is_good']:
                key = (r['product'], r['category'])
                good[key] = good.get(key, 0) + 1
        cat_rows = [
            dict(
                product=p,
                category=c,
                episodes=int(cat['episodes'][i]),
                good_episodes=good.get((p, c), 0),
                IoU=_percent(cat['iou'][i]),
                precision=_percent(cat['precision'][i]),
                recall=_percent(cat['recall'][i]),
                bg_IoU=_percent(cat['bg_iou'][i]),
            )
            for i, (p, c) in enumerate(agg['category_keys'])
        ]
        prod_rows = []
        for i, p in enumerate(agg['product_keys']):
            row = dict(
                product=p,
                categories=int(prod['num_categories'][i]),
                episodes=int(prod['episodes'][i]),
                mIoU=_percent(prod['miou'][i]),
            )
            if 'paper' in self.fbiou_variants:
                row['FB-IoU'] = _percent(prod['fb_iou'][i])
            if 'gfds' in self.fbiou_variants:
                row['FB-IoU(gfds)'] = _percent(prod['fb_iou_gfds'][i])
            row['IoU_F'] = _percent(prod['iou_f'][i])
            row['IoU_B'] = _percent(prod['iou_b'][i])
            prod_rows.append(row)
        avg_rows = [('mIoU (mean over categories, eq. 17)', _percent(ov['miou']))]
        if 'paper' in self.fbiou_variants:
            avg_rows += [
                ('FB-IoU (mean over products, eq. 18)', _percent(ov['fb_iou'])),
                (
                    'FB-IoU(global) (eq. 18, all episodes pooled)',
                    _percent(ov['fb_iou_global']),
                ),
            ]
        if 'gfds' in self.fbiou_variants:
            avg_rows.append(
                (
                    'FB-IoU(gfds) (mean over products, official)',
                    _percent(ov['fb_iou_gfds']),
                )
            )
        avg_rows += [
            ('mPrecision (mean over categories)', _percent(ov['mprecision'])),
            ('mRecall (mean over categories)', _percent(ov['mrecall'])),
            ('categories', len(agg['category_keys'])),
            ('products', len(agg['product_keys'])),
            ('episodes', int(ov['episodes'])),
            ('defect-free episodes', f'{sum(good.values())} ({self.good_queries})'),
        ]
        return cat_rows, prod_rows, avg_rows

    @staticmethod
    def _log_tables(cat_rows, prod_rows, avg_rows, logger) -> None:
        for title, rows in (
            ('per category results:', cat_rows),
            ('per product results:', prod_rows),
        ):
            table = PrettyTable()
            table.field_names = list(rows[0].keys())
            for row in rows:
                table.add_row([_fmt(v) for v in row.values()])
            print_log(title, logger)
            print_log('\n' + table.get_string(), logger=logger)
        table = PrettyTable()
        table.field_names = ['average', 'value']
        table.align['average'] = 'l'
        for name, value in avg_rows:
            table.add_row([name, _fmt(value)])
        print_log('benchmark averages:', logger)
        print_log('\n' + table.get_string(), logger=logger)

    # ------------------------------------------------------------------
    # output_dir
    # ------------------------------------------------------------------
    def _final_names(self, results: List[dict]) -> List[str]:
        """Relative prediction paths, suffixing repeated queries."""
        seen: Dict[str, int] = {}
        names = []
        for r in results:
            target = r['target']
            k = seen.get(target, 0)
            seen[target] = k + 1
            names.append(f'{target}.png' if k == 0 else f'{target}__{k}.png')
        return names

    def _write_outputs(
        self, results, agg, metrics, cat_rows, prod_rows, avg_rows
    ) -> None:
        try:
            names = self._final_names(results) if self._saving else None
            episodes = []
            for i, r in enumerate(results):
                ep = dict(
                    episode_idx=r.get('episode_idx'),
                    product=r['product'],
                    category=r['category'],
                    query_path=r['query_path'],
                )
                ep.update({k: r.get(k) for k in REPLAY_KEYS if k != 'episode_idx'})
                ep.update(
                    query_label=r['query_label'],
                    is_good=r['is_good'],
                    IoU=_percent(F.iou(r['areas'])[F.FG]),
                )
                if names is not None:
                    ep['prediction'] = f'predictions/{names[i]}'
                episodes.append(ep)
            payload = dict(
                metrics=metrics,
                averages={name: value for name, value in avg_rows},
                categories=cat_rows,
                products=prod_rows,
                num_episodes=len(results),
                num_good_episodes=sum(bool(r['is_good']) for r in results),
                config=dict(
                    good_queries=self.good_queries,
                    fbiou_variants=list(self.fbiou_variants),
                    ignore_index=self.ignore_index,
                    save_predictions=self.save_predictions,
                ),
                episodes=episodes,
            )
            predictions = (
                None
                if names is None
                else [(r['tmp_png'], name) for r, name in zip(results, names)]
            )
            writers.write_outputs(self.output_dir, _jsonable(payload), predictions)
        finally:
            self._remove_staged(results)

    def _remove_staged(self, results: List[dict]) -> None:
        """Remove every rank's hidden staging folder of this round."""
        if self.output_dir is None:
            return
        names = {r['tmp_png'].split('/')[0] for r in results if 'tmp_png' in r}
        if self._staging is not None:
            names.add(self._staging.name)
        writers.discard_staging(self.output_dir, names)
