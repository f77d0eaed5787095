"""Transforms of the feature-distillation pipeline (GFDS Sec. 5.1.1, 6.1.2).

One image feeds two networks: the frozen teacher at a high resolution (512
for DINO ViT-S/8, 896 for DINOv2 ViT-S/14) and the student at 256, so that
both output a 64x64 map. Both inputs are resized **from the same original
(augmented) image**, never the teacher input upsampled from the student's
256 image. This is what EfficientAD's ``pretraining.py`` does
(``Resize((512, 512))`` and ``Resize((256, 256))`` of one PIL image after a
shared ``RandomGrayscale(0.1)``), which GFDS acknowledges as its source; the
GFDS distillation script itself is not released.

Results-dict keys:

- ``img``: ``[H, W, 3]`` uint8 RGB; after :class:`ResizeDistill` the student
  image ``[Hs, Ws, 3]``;
- ``teacher_img``: ``[Ht, Wt, 3]`` uint8 RGB, the teacher image (set by
  :class:`ResizeDistill`);
- ``ori_shape``, ``img_shape``, ``teacher_shape``: ``(H, W)`` tuples.

Typical pipeline (the default of ``configs/_base_/datasets/
imagenet_distill.py``)::

    [dict(type='LoadDistillImage'),
     dict(type='DistillRandomGrayscale', prob=0.1),
     dict(type='ResizeDistill', student_size=256, teacher_size=512),
     dict(type='PackDistillInputs')]
"""

import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement
from PIL import Image

from fdseg.registry import TRANSFORMS

from .episode_transforms import read_image

SizeType = Union[int, Sequence[int]]

_PIL_INTERP = dict(
    nearest=Image.Resampling.NEAREST,
    bilinear=Image.Resampling.BILINEAR,
    bicubic=Image.Resampling.BICUBIC,
    lanczos=Image.Resampling.LANCZOS,
    box=Image.Resampling.BOX,
)


def _hw(size: SizeType) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def load_rgb(path: str) -> np.ndarray:
    """Read an image as ``[H, W, 3]`` uint8 RGB with the episode rules.

    The same reader as the episodic datasets
    (:func:`fdseg.datasets.transforms.read_image`, rules in
    :mod:`.conventions`): JPEG / PNG are told apart by content, not suffix
    (ImageNet's train set has a PNG named ``.JPEG``), CMYK JPEGs and gray
    images become RGB, 16-bit images are scaled by their bit depth, a
    constant alpha channel is dropped.

    Args:
        path (str): Image file.

    Returns:
        np.ndarray: ``[H, W, 3]`` uint8 RGB.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        OSError: The file cannot be decoded (truncated, corrupt, not an
            image); the message names the file.
        ValueError: Pixels outside the conventions (transparency).
    """
    return read_image(path)


@TRANSFORMS.register_module()
class LoadDistillImage(BaseTransform):
    """Load ``results['img_path']`` as an RGB uint8 image (:func:`load_rgb`).

    Required keys: ``img_path``. Added keys: ``img`` ``[H, W, 3]`` uint8 RGB,
    ``ori_shape``, ``img_shape``.
    """

    def transform(self, results: dict) -> dict:
        """Read ``img_path`` as ``[H, W, 3]`` uint8 RGB into ``img``."""
        img = load_rgb(results['img_path'])
        results['img'] = img
        results['ori_shape'] = img.shape[:2]
        results['img_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class DistillRandomGrayscale(BaseTransform):
    """Random grayscale, kept as 3 channels (EfficientAD's augmentation).

    Same as torchvision's ``RandomGrayscale(p)`` on a PIL image: Pillow's
    ``convert('L')`` (ITU-R 601-2 luma, rounded) replicated to RGB. Applied
    before :class:`ResizeDistill`, so teacher and student see the same
    (gray or colour) image. The draw uses NumPy's global generator, which
    mmengine seeds per dataloader worker.

    Args:
        prob (float): Probability of converting. Defaults to 0.1.
    """

    def __init__(self, prob: float = 0.1) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob

    def transform(self, results: dict) -> dict:
        """Turn ``img`` grey (three equal channels) with probability ``prob``."""
        if np.random.rand() < self.prob:
            gray = Image.fromarray(results['img']).convert('L')
            results['img'] = np.asarray(gray.convert('RGB')).copy()
            results['grayscale'] = True
        else:
            results['grayscale'] = False
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class RandomScaleAspectCrop(BaseTransform):
    """Crop a random area / aspect ratio window (no resizing).

    The sampling of torchvision's ``RandomResizedCrop.get_params`` (10
    tries, then a central crop clamped to ``ratio``); the resize is left to
    :class:`ResizeDistill` so both resolutions come from the crop. Not used
    by the paper recipe (EfficientAD resizes the whole image); offered for
    experiments.

    Args:
        scale (tuple[float, float]): Area fraction range. Defaults to
            ``(0.08, 1.0)``.
        ratio (tuple[float, float]): Aspect ratio (w / h) range. Defaults to
            ``(3/4, 4/3)``.
    """

    def __init__(
        self,
        scale: Tuple[float, float] = (0.08, 1.0),
        ratio: Tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
    ) -> None:
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError('scale and ratio must be (min, max) pairs')
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)

    def _params(self, h: int, w: int) -> Tuple[int, int, int, int]:
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * np.random.uniform(*self.scale)
            ar = math.exp(np.random.uniform(*log_ratio))
            cw = int(round(math.sqrt(target * ar)))
            ch = int(round(math.sqrt(target / ar)))
            if 0 < cw <= w and 0 < ch <= h:
                return (
                    np.random.randint(0, h - ch + 1),
                    np.random.randint(0, w - cw + 1),
                    ch,
                    cw,
                )
        in_ratio = w / h  # fallback: whole image, clamped aspect ratio
        if in_ratio < min(self.ratio):
            cw, ch = w, int(round(w / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            ch, cw = h, int(round(h * max(self.ratio)))
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def transform(self, results: dict) -> dict:
        """Crop ``img`` at a random scale and aspect ratio."""
        img = results['img']
        y, x, ch, cw = self._params(*img.shape[:2])
        results['img'] = img[y : y + ch, x : x + cw].copy()
        results['img_shape'] = results['img'].shape[:2]
        results['crop_bbox'] = (x, y, x + cw, y + ch)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(scale={self.scale}, ratio={self.ratio})'


@TRANSFORMS.register_module()
class DistillRandomFlip(BaseTransform):
    """Horizontal flip with probability ``prob`` (before the two resizes).

    Args:
        prob (float): Flip probability. Defaults to 0.5.
    """

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = prob

    def transform(self, results: dict) -> dict:
        """Flip ``img`` horizontally with probability ``prob``."""
        flip = bool(np.random.rand() < self.prob)
        if flip:
            results['img'] = results['img'][:, ::-1].copy()
        results['flip'] = flip
        return results


@TRANSFORMS.register_module()
class ResizeDistill(BaseTransform):
    """Resize one image into the student and the teacher inputs.

    Both come from the current ``img`` (the original or an augmented crop of
    it), so the teacher's 512 input holds real detail, not an upsampled
    256 student image.

    Args:
        student_size (int | tuple[int, int]): Student input ``(h, w)``; 256
            in the paper.
        teacher_size (int | tuple[int, int], optional): Teacher input; 512
            for DINO ViT-S/8 and the ResNet layer2 teachers, 896 for DINOv2
            ViT-S/14 (64x64 maps in all cases). None: no teacher image (the
            model then resizes the student input, see ``FeatureDistiller``).
        interpolation (str): Pillow filter: ``'bilinear'`` (default, as
            torchvision's ``Resize`` on PIL images, antialiased when
            shrinking), ``'bicubic'``, ``'nearest'``, ``'lanczos'``, ``'box'``.
    """

    def __init__(
        self,
        student_size: SizeType = 256,
        teacher_size: Optional[SizeType] = 512,
        interpolation: str = 'bilinear',
    ) -> None:
        if interpolation not in _PIL_INTERP:
            raise ValueError(
                f'interpolation must be one of '
                f'{sorted(_PIL_INTERP)}, got {interpolation!r}'
            )
        self.student_size = _hw(student_size)
        self.teacher_size = None if teacher_size is None else _hw(teacher_size)
        self.interpolation = interpolation

    def _resize(self, pil: Image.Image, size: Tuple[int, int]) -> np.ndarray:
        h, w = size
        if pil.size == (w, h):
            return np.asarray(pil).copy()
        return np.asarray(pil.resize((w, h), _PIL_INTERP[self.interpolation]))

    def transform(self, results: dict) -> dict:
        """Resize ``img`` for the student (and the teacher) inputs."""
        pil = Image.fromarray(np.ascontiguousarray(results['img']))
        if self.teacher_size is not None:
            results['teacher_img'] = self._resize(pil, self.teacher_size)
            results['teacher_shape'] = self.teacher_size
        results['img'] = self._resize(pil, self.student_size)
        results['img_shape'] = self.student_size
        return results

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(student_size={self.student_size}, '
            f'teacher_size={self.teacher_size}, '
            f'interpolation={self.interpolation!r})'
        )


def _to_chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
class PackDistillInputs(BaseTransform):
    """Pack the student and teacher images for ``DistillDataPreprocessor``.

    Output::

        dict(inputs=dict(student=uint8 [3, Hs, Ws],
                         teacher=uint8 [3, Ht, Wt]),   # if teacher_img
             data_samples=BaseDataElement(metainfo=...))

    Args:
        meta_keys (Sequence[str]): Keys copied into the sample's metainfo
            when present.
    """

    def __init__(
        self,
        meta_keys: Sequence[str] = (
            'img_path',
            'ori_shape',
            'img_shape',
            'teacher_shape',
            'flip',
            'grayscale',
            'crop_bbox',
        ),
    ) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack the images as ``[3, H, W]`` tensors in ``inputs``."""
        inputs = dict(student=_to_chw(results['img']))
        if 'teacher_img' in results:
            inputs['teacher'] = _to_chw(results['teacher_img'])
        meta = {k: results[k] for k in self.meta_keys if k in results}
        return dict(inputs=inputs, data_samples=BaseDataElement(metainfo=meta))

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'


__all__ = [
    'load_rgb',
    'LoadDistillImage',
    'DistillRandomGrayscale',
    'RandomScaleAspectCrop',
    'DistillRandomFlip',
    'ResizeDistill',
    'PackDistillInputs',
]
