"""The result of segmenting one image on the line.

:class:`FewShotResult` is what :meth:`fdseg.apis.FewShotInferencer.predict`
returns and what ``fdseg predict`` writes; any other source of predictions
(e.g. a defect bank) builds it with :meth:`FewShotResult.from_maps` so that
the command, the files and ``results.jsonl`` stay the same.

Everything is at the image's **original size**:

- ``mask``: ``[H, W]`` uint8 label map, 0 = background, ``k`` = class
  ``class_names[k]``;
- ``score_map``: ``[H, W]`` float32 defect score in ``[0, 1]`` (for a
  segmentor: ``1 - softmax(seg_logits)[background]``, bilinearly resized);
- ``instances``: one dict per connected component (8-connectivity, OpenCV)
  of each class of ``mask``: ``class_name``, ``label``, ``area`` (pixels),
  ``bbox`` (``[x, y, w, h]``, pixels) and ``mean_score`` (mean of
  ``score_map`` over the component);
- ``score``: the image-level defect score, the maximum of ``score_map``;
- ``decision``: ``'defect'`` or ``'no defect'`` (see
  :meth:`FewShotResult.from_maps`).
"""

import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

DEFECT = 'defect'
NO_DEFECT = 'no defect'

# Overlay colours (RGB) of classes 1, 2, ...; class k uses entry (k-1) % len.
PALETTE = (
    (255, 40, 40),
    (40, 200, 255),
    (255, 200, 0),
    (180, 60, 255),
    (0, 230, 120),
    (255, 120, 200),
)


def find_instances(
    mask: np.ndarray, score_map: np.ndarray, class_names: Sequence[str]
) -> List[dict]:
    """Connected components of every class of a label map.

    Args:
        mask (np.ndarray): ``[H, W]`` label map (0 = background).
        score_map (np.ndarray): ``[H, W]`` float defect scores.
        class_names (Sequence[str]): Name of each label (index 0 is the
            background).

    Returns:
        list[dict]: ``class_name``, ``label``, ``area`` (px), ``bbox``
        (``[x, y, w, h]``) and ``mean_score`` per component, by label then
        by OpenCV's component order (top-to-bottom scan).
    """
    out = []
    for label in np.unique(mask):
        label = int(label)
        if label == 0:
            continue
        binary = (mask == label).astype(np.uint8)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            out.append(
                dict(
                    class_name=str(class_names[label])
                    if label < len(class_names)
                    else f'class_{label}',
                    label=label,
                    area=area,
                    bbox=[x, y, w, h],
                    mean_score=float(score_map[comp == i].mean()),
                )
            )
    return out


@dataclass
class FewShotResult:
    """Prediction for one image, at its original size.

    Build it with :meth:`from_maps` (which finds the instances and the
    image-level decision) rather than field by field.

    Attributes:
        name (str): The image's name: its path relative to the source
            folder (or the file name), or ``image_<i>`` for in-memory
            images. Saved files use its stem.
        mask (np.ndarray): ``[H, W]`` uint8 label map, 0 = background.
        score_map (np.ndarray): ``[H, W]`` float32 defect score in
            ``[0, 1]``.
        class_names (tuple[str]): Label names, ``class_names[0]`` is
            ``'background'``.
        instances (list[dict]): Connected components (see module docs).
        score (float): Image-level defect score (max of ``score_map``).
        decision (str): ``'defect'`` or ``'no defect'``.
        threshold (float, optional): Image-level threshold on ``score``
            the decision used; None when the decision is "any defect
            pixel in ``mask``".
        image (np.ndarray, optional): The ``[H, W, 3]`` uint8 RGB input,
            kept for :meth:`plot`.
    """

    name: str
    mask: np.ndarray
    score_map: np.ndarray
    class_names: tuple
    instances: List[dict]
    score: float
    decision: str
    threshold: Optional[float] = None
    image: Optional[np.ndarray] = field(default=None, repr=False)

    @classmethod
    def from_maps(
        cls,
        name: str,
        mask: np.ndarray,
        score_map: np.ndarray,
        class_names: Sequence[str] = ('background', 'defect'),
        image: Optional[np.ndarray] = None,
        threshold: Optional[float] = None,
    ) -> 'FewShotResult':
        """A result from a label map and a score map at the original size.

        Args:
            name (str): Image name.
            mask (np.ndarray): ``[H, W]`` label map (0 = background).
            score_map (np.ndarray): ``[H, W]`` defect score in ``[0, 1]``.
            class_names (Sequence[str]): Label names, index 0 background.
            image (np.ndarray, optional): ``[H, W, 3]`` uint8 RGB input.
            threshold (float, optional): Image-level threshold: the image
                is a defect when ``score >= threshold`` (a calibrated
                decision). None: a defect when ``mask`` has a defect pixel.

        Raises:
            ValueError: ``mask`` and ``score_map`` (or ``image``) differ in
                size, or ``score_map`` has NaN values.
        """
        mask = np.asarray(mask)
        score_map = np.asarray(score_map, dtype=np.float32)
        if mask.ndim != 2 or score_map.shape != mask.shape:
            raise ValueError(
                f'{name}: mask {mask.shape} and score_map {score_map.shape} '
                'must be [H, W] of one size'
            )
        if image is not None and image.shape[:2] != mask.shape:
            raise ValueError(f'{name}: image {image.shape[:2]} but mask {mask.shape}')
        if np.isnan(score_map).any():
            raise ValueError(f'{name}: the score map has NaN values')
        mask = mask.astype(np.uint8)
        class_names = tuple(class_names)
        instances = find_instances(mask, score_map, class_names)
        score = float(score_map.max()) if score_map.size else 0.0
        if threshold is None:
            defect = bool(mask.any())
        else:
            # in float32, the score map's precision: --threshold 0.9 and a
            # score printed as 0.9 agree
            defect = bool(np.float32(score) >= np.float32(threshold))
        return cls(
            name=name,
            mask=mask,
            score_map=score_map,
            class_names=class_names,
            instances=instances,
            score=score,
            decision=DEFECT if defect else NO_DEFECT,
            threshold=None if threshold is None else float(threshold),
            image=image,
        )

    # ------------------------------------------------------------------
    @property
    def is_defect(self) -> bool:
        """``decision == 'defect'``."""
        return self.decision == DEFECT

    @property
    def shape(self) -> tuple:
        """``(H, W)`` of the original image."""
        return tuple(self.mask.shape)

    def to_dict(self) -> dict:
        """The ``results.jsonl`` record: JSON types only.

        Keys: ``image``, ``height``, ``width``, ``decision``, ``score``,
        ``threshold``, ``defect_area`` (px), ``instances``.
        """
        return dict(
            image=self.name,
            height=int(self.mask.shape[0]),
            width=int(self.mask.shape[1]),
            decision=self.decision,
            score=round(float(self.score), 6),
            threshold=self.threshold,
            defect_area=int(np.count_nonzero(self.mask)),
            instances=[
                dict(inst, mean_score=round(float(inst['mean_score']), 6))
                for inst in self.instances
            ],
        )

    def to_json(self) -> str:
        """:meth:`to_dict` as one line of JSON (no newline)."""
        return json.dumps(self.to_dict(), sort_keys=False)

    # ------------------------------------------------------------------
    def mask_image(self) -> np.ndarray:
        """The mask as saved: 0/255 for one defect class, else the labels."""
        if len(self.class_names) <= 2:
            return (self.mask > 0).astype(np.uint8) * 255
        return self.mask

    def plot(self, alpha: float = 0.5, boxes: bool = True) -> np.ndarray:
        """An RGB overlay: class colours, contours, boxes and scores.

        Args:
            alpha (float): Opacity of the class colour inside the mask.
            boxes (bool): Draw each instance's box with its class name and
                mean score.

        Returns:
            np.ndarray: ``[H, W, 3]`` uint8 RGB (the input image when kept,
            else the score map in gray).
        """
        if self.image is not None:
            canvas = self.image.copy()
        else:
            gray = np.clip(self.score_map * 255, 0, 255).astype(np.uint8)
            canvas = np.repeat(gray[..., None], 3, axis=2)
        out = canvas.astype(np.float32)
        for label in np.unique(self.mask):
            if label == 0:
                continue
            colour = np.array(PALETTE[(int(label) - 1) % len(PALETTE)], np.float32)
            sel = self.mask == label
            out[sel] = (1 - alpha) * out[sel] + alpha * colour
        out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        thick = max(1, round(max(self.mask.shape) / 400))
        for label in np.unique(self.mask):
            if label == 0:
                continue
            colour = PALETTE[(int(label) - 1) % len(PALETTE)]
            contours, _ = cv2.findContours(
                (self.mask == label).astype(np.uint8),
                cv2.RETR_EXTERNAL,
                cv2.CHAIN_APPROX_SIMPLE,
            )
            cv2.drawContours(out, contours, -1, colour, thick)
        if boxes:
            for inst in self.instances:
                x, y, w, h = inst['bbox']
                colour = PALETTE[(inst['label'] - 1) % len(PALETTE)]
                cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), colour, thick)
                text = f'{inst["class_name"]} {inst["mean_score"]:.2f}'
                cv2.putText(
                    out,
                    text,
                    (x, max(y - 3, 10)),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.35 * thick,
                    colour,
                    1,
                    cv2.LINE_AA,
                )
        return out

    def save(
        self,
        out_dir: str,
        mask: bool = True,
        overlay: bool = False,
        scores: bool = False,
    ) -> Dict[str, str]:
        """Write the result's files under ``out_dir``.

        Layout (``<stem>`` is :attr:`name` without its suffix, sub-folders
        kept)::

            out_dir/masks/<stem>.png      0/255 (one class) or labels 0..N
            out_dir/overlays/<stem>.png   RGB overlay (plot())
            out_dir/scores/<stem>.npy     float32 [H, W] score map

        Args:
            out_dir (str): Output folder (created).
            mask (bool): Write the mask.
            overlay (bool): Write the overlay.
            scores (bool): Write the score map.

        Returns:
            dict[str, str]: Kind (``mask``, ``overlay``, ``scores``) ->
            written path.
        """
        stem = osp.splitext(self.name)[0]
        written = {}
        if mask:
            written['mask'] = _write_png(
                osp.join(out_dir, 'masks', stem + '.png'), self.mask_image()
            )
        if overlay:
            written['overlay'] = _write_png(
                osp.join(out_dir, 'overlays', stem + '.png'),
                cv2.cvtColor(self.plot(), cv2.COLOR_RGB2BGR),
            )
        if scores:
            path = osp.join(out_dir, 'scores', stem + '.npy')
            os.makedirs(osp.dirname(path), exist_ok=True)
            np.save(path, self.score_map.astype(np.float32))
            written['scores'] = path
        return written


def _write_png(path: str, arr: np.ndarray) -> str:
    """Write a PNG (any path, also non-ASCII ones)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    ok, buf = cv2.imencode('.png', arr)
    if not ok:
        raise OSError(f'could not encode {path}')
    buf.tofile(path)
    return path
