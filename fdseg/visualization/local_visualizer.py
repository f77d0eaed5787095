"""Episode overlays: supports with their masks, query with GT and prediction."""

from typing import List, Optional

import cv2
import numpy as np
from mmengine.visualization import Visualizer

from fdseg.registry import VISUALIZERS

GT_COLOR = (0, 200, 0)
PRED_COLOR = (230, 40, 40)
SUPPORT_COLOR = (40, 120, 255)


def overlay_mask(
    img: np.ndarray, mask: np.ndarray, color, alpha: float = 0.45, contour: bool = True
) -> np.ndarray:
    """Blend a binary ``[H, W]`` mask over an RGB ``[H, W, 3]`` uint8 image."""
    out = img.copy()
    m = mask.astype(bool)
    if m.any():
        out[m] = (out[m] * (1 - alpha) + np.array(color) * alpha).astype(np.uint8)
        if contour:
            cs, _ = cv2.findContours(
                m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
            )
            cv2.drawContours(out, cs, -1, color, 1)
    return out


def _titled(img: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((18, img.shape[1], 3), 255, np.uint8)
    cv2.putText(
        bar,
        title[:40],
        (3, 13),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.4,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return np.concatenate([bar, img], 0)


@VISUALIZERS.register_module()
class FewShotSegVisualizer(Visualizer):
    """Draw an episode as one strip: supports | query + GT | query + pred.

    Args:
        name (str): Instance name.
        vis_backends (list[dict], optional): Storage backends.
        save_dir (str, optional): Where backends save.
        alpha (float): Mask opacity.
    """

    def __init__(
        self,
        name: str = 'visualizer',
        vis_backends: Optional[List[dict]] = None,
        save_dir: Optional[str] = None,
        alpha: float = 0.45,
        **kwargs,
    ):
        super().__init__(
            name=name, vis_backends=vis_backends, save_dir=save_dir, **kwargs
        )
        self.alpha = alpha

    def draw_episode(
        self,
        query: np.ndarray,
        supports: List[np.ndarray],
        support_masks: List[np.ndarray],
        gt: Optional[np.ndarray],
        pred: Optional[np.ndarray],
        title: str = '',
    ) -> np.ndarray:
        """Compose the strip from RGB uint8 images and binary masks."""
        panels = [
            _titled(overlay_mask(s, m, SUPPORT_COLOR, self.alpha), f'support {i}')
            for i, (s, m) in enumerate(zip(supports, support_masks))
        ]
        if gt is not None:
            panels.append(
                _titled(
                    overlay_mask(query, gt, GT_COLOR, self.alpha), f'query GT {title}'
                )
            )
        if pred is not None:
            panels.append(
                _titled(overlay_mask(query, pred, PRED_COLOR, self.alpha), 'prediction')
            )
        h = max(p.shape[0] for p in panels)
        panels = [
            np.pad(p, ((0, h - p.shape[0]), (0, 4), (0, 0)), constant_values=255)
            for p in panels
        ]
        return np.concatenate(panels, 1)

    def add_datasample(
        self,
        name: str,
        image: np.ndarray,
        data_sample=None,
        draw_gt: bool = True,
        draw_pred: bool = True,
        show: bool = False,
        wait_time: float = 0,
        out_file: Optional[str] = None,
        step: int = 0,
        supports: Optional[List[np.ndarray]] = None,
        support_masks: Optional[List[np.ndarray]] = None,
    ) -> np.ndarray:
        """Draw one episode; ``image`` is the RGB query at network size."""
        label = int(data_sample.metainfo.get('query_label', 1))
        gt = pred = None
        if draw_gt and 'gt_sem_seg' in data_sample:
            gt = data_sample.gt_sem_seg.data[0].cpu().numpy() == label
        if draw_pred and 'pred_sem_seg' in data_sample:
            pred = data_sample.pred_sem_seg.data[0].cpu().numpy() == label
        title = data_sample.metainfo.get('category_key', '')
        drawn = self.draw_episode(
            image, supports or [], support_masks or [], gt, pred, title
        )
        self.set_image(drawn)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            cv2.imwrite(out_file, cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        else:
            self.add_image(name, drawn, step)
        return drawn
