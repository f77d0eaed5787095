"""FewShotIoUMetric + the Table-4 report of the GFDS benchmark."""

import logging
import os.path as osp
from typing import Dict, List

from mmengine.logging import MessageHub, MMLogger, print_log

from fdseg.benchmarks.table import part_map
from fdseg.registry import METRICS

from ..gfds_report import REPORT_NAME, format_header, format_row, write_report
from ..gfds_table4 import bench_metrics, table4_row
from .few_shot_iou_metric import FewShotIoUMetric

#: Runtime-info key of the row handed to ``GFDSBenchmarkHook``.
ROW_INFO_KEY = 'gfds_benchmark'


@METRICS.register_module()
class GFDSBenchmarkMetric(FewShotIoUMetric):
    """:class:`FewShotIoUMetric` that also reports the Table-4 row.

    Differences from the parent:

    * Products declared with ``parts`` (DAGM's ten ``Class<k>`` folders) are
      evaluated as ONE product whose categories are the parts, as the
      official script does (it runs the ten classes in one call): keys read
      ``DAGM/mIoU``, ``DAGM/FB-IoU(gfds)``, ``DAGM/Class3/IoU``.
    * The flat metrics gain ``bench/<product>/mIoU``,
      ``bench/<product>/FB-IoU``, ``bench/mIoU`` and ``bench/FB-IoU``: the
      Table-4 cells, with the "Average" computed as the official script
      does (see :mod:`fdseg.evaluation.gfds_table4`).
    * The row is logged in the Table-4 layout, and with ``output_dir`` also
      written to ``<output_dir>/gfds_report.json``.
    * The row is handed to
      :class:`~fdseg.engine.hooks.gfds_report_hook.GFDSBenchmarkHook`, which
      adds the FPS column, through the runtime info of mmengine's
      ``MessageHub``: key :data:`ROW_INFO_KEY`, value
      ``dict(row=..., method_name=..., output_dir=...)``.

    Args:
        fbiou (str): FB-IoU of the Table-4 cells: ``'gfds'`` (official
            script, default, what Table 4 reports) or ``'paper'`` (eq. 18).
        weights (str): ``'declared'`` or ``'evaluated'`` weights of the
            average mIoU (see :func:`~fdseg.evaluation.gfds_table4.
            table4_row`).
        merge_parts (bool): Evaluate DAGM-like parts as one product.
        method_name (str): Name printed in front of the row.
        **kwargs: :class:`FewShotIoUMetric` arguments.
    """

    def __init__(
        self,
        fbiou: str = 'gfds',
        weights: str = 'declared',
        merge_parts: bool = True,
        method_name: str = 'this run',
        **kwargs,
    ):
        if fbiou not in ('gfds', 'paper'):
            raise ValueError(f"fbiou must be 'gfds' or 'paper', got {fbiou!r}")
        if weights not in ('declared', 'evaluated'):
            raise ValueError(
                f"weights must be 'declared' or 'evaluated', got {weights!r}"
            )
        variants = kwargs.pop('fbiou_variants', ('paper', 'gfds'))
        if isinstance(variants, str):
            variants = (variants,)
        if fbiou not in variants:
            variants = tuple(variants) + (fbiou,)
        super().__init__(fbiou_variants=variants, **kwargs)
        self.fbiou = fbiou
        self.weights = weights
        self.merge_parts = merge_parts
        self.method_name = method_name

    def _merge_parts(self, results: List[dict]) -> List[dict]:
        """Rename ``Class3/bad`` records to ``DAGM/Class3``."""
        parts = part_map()
        out = []
        for r in results:
            if r['product'] in parts:
                product, category = parts[r['product']]
                r = dict(r, product=product, category=category)
            out.append(r)
        return out

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Parent metrics, then the Table-4 row (logged, ``bench/`` keys).

        Args:
            results (list[dict]): Records of all ranks' ``process`` calls.

        Returns:
            dict[str, float]: The parent's keys plus ``bench/...``.
        """
        if self.merge_parts:
            results = self._merge_parts(results)
        metrics = super().compute_metrics(results)
        if not metrics:
            return metrics
        logger: MMLogger = MMLogger.get_current_instance()
        row = table4_row(metrics, fbiou=self.fbiou, weights=self.weights)
        MessageHub.get_current_instance().update_info(
            ROW_INFO_KEY,
            dict(row=row, method_name=self.method_name, output_dir=self.output_dir),
            resumed=False,
        )
        metrics.update(bench_metrics(row))
        header = format_header(row)
        print_log(
            'GFDS Table-4 row (mIoU, FB-IoU'
            f'{"(gfds)" if self.fbiou == "gfds" else ""}; average mIoU of '
            f'{row["average"]["evaluated_categories"]} evaluated categories '
            f'({self.weights} weights), FB-IoU over '
            f'{row["average"]["num_products"]} products):\n{header}\n'
            f'{format_row(self.method_name, row)}',
            logger,
        )
        if self.output_dir is not None:
            path = osp.join(self.output_dir, REPORT_NAME)
            try:
                write_report(path, row, metrics=metrics)
            except OSError as e:  # the parent's outputs are already there
                print_log(f'could not write {path}: {e}', logger, level=logging.WARNING)
        return metrics
