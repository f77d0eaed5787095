"""Save episode overlays during validation / testing (``--show-dir``)."""

import os
import os.path as osp
from typing import Optional, Sequence

import cv2
import numpy as np
from mmengine.hooks import Hook
from mmengine.visualization import Visualizer

from fdseg.registry import HOOKS


@HOOKS.register_module()
class FewShotVisualizationHook(Hook):
    """Draw supports, query GT and prediction of test / val episodes.

    Args:
        draw (bool): Off by default; ``tools/test.py --show-dir`` turns it on.
        interval (int): Draw every ``interval``-th episode.
        show_dir (str, optional): Output folder; relative paths go under the
            run's log dir. Files: ``<product>/<category>/<stem>.png``. An
            existing file or a folder that cannot be written fails before
            the first episode (``before_val`` / ``before_test``).
        show (bool): Also show in a window.
        wait_time (float): For ``show``.
    """

    priority = 'NORMAL'

    def __init__(
        self,
        draw: bool = False,
        interval: int = 1,
        show_dir: Optional[str] = None,
        show: bool = False,
        wait_time: float = 0.0,
    ):
        self.draw = draw
        self.interval = interval
        self.show_dir = show_dir
        self.show = show
        self.wait_time = wait_time
        self._count = 0

    def _root(self, runner) -> Optional[str]:
        if self.show_dir is None:
            return None
        return (
            self.show_dir
            if osp.isabs(self.show_dir)
            else osp.join(runner.log_dir, self.show_dir)
        )

    def _check(self, runner) -> None:
        # Fail before the first episode, naming the folder.
        if self.draw and self.show_dir is not None:
            from fdseg.evaluation.writers import check_output_dirs

            check_output_dirs(show_dir=osp.abspath(self._root(runner)))

    def before_val(self, runner) -> None:
        """Check ``show_dir`` before the first episode."""
        self._check(runner)

    def before_test(self, runner) -> None:
        """Check ``show_dir`` before the first episode."""
        self._check(runner)

    def _draw(self, runner, outputs: Sequence, mode: str) -> None:
        if not self.draw:
            return
        from fdseg.datasets.transforms import read_image

        vis = Visualizer.get_current_instance()
        for sample in outputs:
            self._count += 1
            if (self._count - 1) % self.interval:
                continue
            meta = sample.metainfo
            h, w = meta['img_shape'][:2]
            query = cv2.resize(read_image(meta['img_path']), (w, h))
            supports, masks = [], []
            for p in meta.get('support_paths', []):
                supports.append(cv2.resize(read_image(p), (w, h)))
            if 'support_masks' in sample:
                masks = [m.cpu().numpy().astype(np.uint8) for m in sample.support_masks]
            out_file = None
            if self.show_dir is not None:
                root = self._root(runner)
                stem = osp.splitext(osp.basename(meta['img_path']))[0]
                d = osp.join(root, meta.get('product', ''), meta.get('category', ''))
                os.makedirs(d, exist_ok=True)
                out_file = osp.join(d, f'{stem}.png')
            vis.add_datasample(
                f'{mode}_{self._count}',
                query,
                sample,
                show=self.show,
                wait_time=self.wait_time,
                out_file=out_file,
                step=self._count,
                supports=supports,
                support_masks=masks,
            )

    def after_val_iter(self, runner, batch_idx, data_batch, outputs) -> None:
        """Draw the episodes of a validation batch."""
        self._draw(runner, outputs, 'val')

    def after_test_iter(self, runner, batch_idx, data_batch, outputs) -> None:
        """Draw the episodes of a test batch."""
        self._draw(runner, outputs, 'test')
