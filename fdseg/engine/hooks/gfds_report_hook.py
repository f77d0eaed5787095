"""Adds the FPS column to the Table-4 row at the end of ``tools/test.py``."""

import itertools
import logging
import os.path as osp
from typing import Dict, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from fdseg.evaluation.metrics.gfds_benchmark_metric import ROW_INFO_KEY
from fdseg.registry import HOOKS


@HOOKS.register_module()
class GFDSBenchmarkHook(Hook):
    """Measure FPS with the paper's protocol after testing; print the row.

    After the test epoch, when the evaluator produced a Table-4 row
    (``GFDSBenchmarkMetric`` hands it over in the message hub's runtime
    info, key ``'gfds_benchmark'``), the model is timed on the first
    episodes of the test dataloader with :func:`fdseg.evaluation.fps.
    measure_fps` (batch size 1, support pinned, warm-up, mixed precision on
    CUDA), ``bench/FPS`` is added to the returned metrics, the complete row
    is logged and ``gfds_report.json`` (in the metric's ``output_dir``)
    gains the FPS record.

    Args:
        measure (bool): Measure FPS at all (False: only print the row).
        num_warmup (int): Untimed queries.
        num_iters (int): Timed queries.
        amp (str): ``'auto'``, ``'bf16'``, ``'fp16'`` or ``'fp32'``.
        fps (float, optional): A known FPS (e.g. from
            ``benchmark_fps.py`` on another machine) used instead of
            measuring.
    """

    priority = 'LOW'

    def __init__(
        self,
        measure: bool = True,
        num_warmup: int = 10,
        num_iters: int = 50,
        amp: str = 'auto',
        fps: Optional[float] = None,
    ):
        self.measure = measure
        self.num_warmup = int(num_warmup)
        self.num_iters = int(num_iters)
        self.amp = amp
        self.fps = fps

    def before_test_epoch(self, runner) -> None:
        """Forget a row an earlier test run left in the message hub."""
        runner.message_hub.pop_info(ROW_INFO_KEY, None)

    def _measure(self, runner) -> Optional[dict]:
        from fdseg.evaluation.fps import measure_fps

        if self.fps is not None:
            return dict(
                fps=float(self.fps),
                device='given',
                dtype='',
                threads=None,
                support_excluded=None,
            )
        if not self.measure:
            return None
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        loader = runner.test_loop.dataloader
        batches = list(itertools.islice(iter(loader), self.num_warmup + self.num_iters))
        if not batches:
            return None
        if len(batches[0]['inputs']) != 1:
            print_log(
                'GFDSBenchmarkHook: FPS needs batch_size=1 in the test '
                'dataloader; not measured',
                'current',
                level=logging.WARNING,
            )
            return None
        return measure_fps(
            model, batches, self.num_warmup, self.num_iters, amp=self.amp
        )

    def after_test_epoch(
        self, runner, metrics: Optional[Dict[str, float]] = None
    ) -> None:
        """Time the model and complete the row (main process only)."""
        from fdseg.evaluation.gfds_report import (
            REPORT_NAME,
            format_header,
            format_row,
            read_row,
            write_report,
        )

        bench = runner.message_hub.pop_info(ROW_INFO_KEY, None)
        if bench is None or not is_main_process():
            return
        row = bench['row']
        fps = self._measure(runner)
        row['fps'] = fps
        if fps is not None and metrics is not None:
            metrics['bench/FPS'] = round(fps['fps'], 2)
        header = format_header(row)
        fps_note = (
            ''
            if fps is None
            else (
                f' (FPS: {fps["device"]}, {fps["dtype"]}, '
                f'{fps["threads"]} threads, batch 1, support excluded: '
                f'{fps["support_excluded"]})'
            )
        )
        print_log(
            f'GFDS Table-4 row{fps_note}:\n{header}\n'
            f'{format_row(bench["method_name"], row)}',
            'current',
        )
        out = bench.get('output_dir')
        if out is not None and osp.isfile(osp.join(out, REPORT_NAME)):
            path = osp.join(out, REPORT_NAME)
            saved = read_row(path)
            saved['fps'] = fps
            write_report(path, saved, metrics=metrics)
