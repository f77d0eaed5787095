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
            run's log dir. Files: ``<product>/<category>/<stem>.png``.
        show (bool): Also show in a window.
        wait_time (float): For ``show``.
    """

    priority = 'NORMAL'

    def __init__(self,
                 draw: bool = False,
                 interval: int = 1,
                 show_dir: Optional[str] = None,
                 show: bool = False,
                 wait_time: float = 0.):
        self.draw = draw
        self.interval = interval
        self.show_dir = show_dir
        self.show = show
        self.wait_time = wait_time
        self._count = 0

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
                masks = [m.cpu().numpy().astype(np.uint8)
                         for m in sample.support_masks]
            out_file = None
            if self.show_dir is not None:
                root = self.show_dir if osp.isabs(self.show_dir) else \
                    osp.join(runner.log_dir, self.show_dir)
                stem = osp.splitext(osp.basename(meta['img_path']))[0]
                d = osp.join(root, meta.get('product', ''),
                             meta.get('category', ''))
                os.makedirs(d, exist_ok=True)
                out_file = osp.join(d, f'{stem}.png')
            vis.add_datasample(
                f'{mode}_{self._count}', query, sample, show=self.show,
                wait_time=self.wait_time, out_file=out_file,
                step=self._count, supports=supports, support_masks=masks)

    def after_val_iter(self, runner, batch_idx, data_batch, outputs) -> None:
        self._draw(runner, outputs, 'val')

    def after_test_iter(self, runner, batch_idx, data_batch, outputs) -> None:
        self._draw(runner, outputs, 'test')
