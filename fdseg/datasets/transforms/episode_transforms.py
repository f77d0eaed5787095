"""Transforms over whole episodes (a query plus its supports).

Results dict keys produced by :class:`LoadEpisode` and used downstream:

- ``img``: query image ``[H, W, 3]`` uint8 RGB;
- ``gt_mask``: query mask ``[H, W]`` uint8 (0..255 before binarisation,
  0/1 after); all zeros for a defect-free query;
- ``support_imgs``: list of ``[H, W, 3]`` uint8 RGB;
- ``support_masks``: list of ``[H, W]`` uint8 masks;
- ``ori_shape``, ``img_shape``: query shapes ``(H, W)``.
"""

import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData

from fdseg.registry import TRANSFORMS
from fdseg.structures import EpisodeDataSample

from .conventions import (
    decode_image_file,
    decode_mask_file,
    file_format,
    image_to_rgb_uint8,
    mask_to_uint8,
)

_INTERP = dict(
    nearest=cv2.INTER_NEAREST,
    bilinear=cv2.INTER_LINEAR,
    bicubic=cv2.INTER_CUBIC,
    area=cv2.INTER_AREA,
)


def _check_complete(path: str, buf: np.ndarray) -> None:
    """Reject truncated JPEG/PNG files, which OpenCV may decode silently."""
    data = buf.tobytes()
    kind = file_format(path, buf)
    if kind == 'jpeg':
        if not data.rstrip(b'\x00').endswith(b'\xff\xd9'):
            raise OSError(f'{path} is truncated (no JPEG end-of-image marker)')
    elif kind == 'png':
        if b'IEND' not in data[-16:]:
            raise OSError(f'{path} is truncated (no PNG IEND chunk)')


def _read_bytes(path: str) -> np.ndarray:
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist')
    buf = np.fromfile(path, dtype=np.uint8)
    if buf.size == 0:
        raise OSError(f'{path} is empty')
    _check_complete(path, buf)
    return buf


def read_image(
    path: str, grayscale: bool = False, bit_depth: Optional[int] = None
) -> np.ndarray:
    """Read an image as uint8 RGB ``[H, W, 3]`` or gray ``[H, W]``.

    The conventions of :mod:`.conventions` apply: 16-bit data are scaled by
    their bit depth (not cut to the top 8 bits), a constant alpha channel
    is dropped, a JPEG whose body libjpeg reports as corrupt is an error.

    Args:
        path (str): Image file.
        grayscale (bool): Return ``[H, W]`` (luma of the RGB image).
        bit_depth (int, optional): Bit depth of integer data above 8 bits
            (a product's ``image_bit_depth``); inferred per image from its
            maximum if None.

    Raises:
        FileNotFoundError: The file does not exist.
        OSError: The file cannot be decoded, is truncated or corrupt.
        ValueError: Pixels outside the conventions (e.g. transparency).
    """
    buf = _read_bytes(path)
    raw, order = decode_image_file(path, buf)
    img = image_to_rgb_uint8(raw, path, order, bit_depth)
    if grayscale:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return img


def read_mask(
    path: str,
    mode: Optional[str] = None,
    value: Optional[int] = None,
    threshold: Optional[float] = None,
    class_values: Optional[Sequence[int]] = None,
    setting: str = 'the product',
) -> np.ndarray:
    """Read a defect mask as ``[H, W]``.

    The conventions of :mod:`.conventions` apply (palette index, alpha-only
    masks, 0/1 and 16-bit masks, value checks).

    Args:
        path (str): Mask file.
        mode (str, optional): ``'binary'``: uint8 0..255 as stored (0/1 and
            16-bit masks rescaled), possibly anti-aliased, for the threshold
            to apply after resizing as GFDS does. ``'index'``: 0/255 for
            ``mask == value``. None: the stored values (palette indices,
            16-bit kept), no checks.
        value (int, optional): Class value for ``'index'``.
        threshold (float, optional): The product's ``mask_threshold``: a
            binary mask that is non-zero but nowhere above it is an error.
        class_values (Sequence[int], optional): All class values of the
            product (``'index'``): other non-zero values (except 255) are an
            error.
        setting (str): Where the settings named in errors live.

    Raises:
        FileNotFoundError: The file does not exist.
        OSError: The file cannot be decoded, is truncated or corrupt.
        ValueError: The mask does not fit the convention (the message names
            the file and the setting to change).
    """
    buf = _read_bytes(path)
    raw, palette = decode_mask_file(path, buf)
    return mask_to_uint8(
        raw,
        path,
        mode,
        value,
        threshold,
        class_values,
        palette=palette,
        setting=setting,
    )


@TRANSFORMS.register_module()
class LoadEpisode(BaseTransform):
    """Load the query and support images and masks of an episode.

    Required keys: ``img_path``, ``seg_map_path``, ``support_paths``,
    ``support_mask_paths``, ``mask_mode``, ``support_mask_values``,
    ``query_mask_value``, ``is_good``. Optional: ``conventions`` (product ->
    ``mask_mode``, ``mask_threshold``, ``class_values``, ``bit_depth``),
    ``product`` and ``support_products``, so that supports of another
    product (N-way episodes) are read with their own product's convention.

    Adds ``support_mask_thresholds`` (each support's product threshold) for
    :class:`BinarizeEpisodeMasks`.

    Raises:
        ValueError: A mask whose size differs from its image's (names both),
            or a mask that does not fit its product's convention.
    """

    @staticmethod
    def _convention(results: dict, product: Optional[str]) -> dict:
        conv = (results.get('conventions') or {}).get(product)
        if conv is None:
            conv = dict(
                mask_mode=results.get('mask_mode', 'binary'),
                mask_threshold=results.get('mask_threshold'),
                class_values=None,
                bit_depth=None,
            )
        return conv

    def _load_pair(self, img_path, mask_path, conv, value, product, is_good=False):
        img = read_image(img_path, bit_depth=conv.get('bit_depth'))
        if is_good or mask_path is None:
            mask = np.zeros(img.shape[:2], np.uint8)
        else:
            mask = read_mask(
                mask_path,
                conv['mask_mode'],
                value,
                threshold=conv.get('mask_threshold'),
                class_values=conv.get('class_values'),
                setting=f'product {product!r}' if product else 'the product',
            )
            if mask.shape != img.shape[:2]:
                raise ValueError(
                    f'mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} '
                    f'but image {img_path} is {img.shape[1]}x{img.shape[0]}'
                )
        return img, mask

    def transform(self, results: dict) -> dict:
        """Read the query and its supports (images and masks) of an episode."""
        product = results.get('product')
        conv = self._convention(results, product)
        img, mask = self._load_pair(
            results['img_path'],
            results.get('seg_map_path'),
            conv,
            results.get('query_mask_value'),
            product,
            results.get('is_good', False),
        )
        results['img'] = img
        results['gt_mask'] = mask
        results['ori_shape'] = img.shape[:2]
        results['img_shape'] = img.shape[:2]
        n = len(results['support_paths'])
        s_imgs, s_masks, s_thr = [], [], []
        values = results.get('support_mask_values') or [None] * n
        products = results.get('support_products') or [product] * n
        for p, mp, v, sp in zip(
            results['support_paths'], results['support_mask_paths'], values, products
        ):
            sconv = self._convention(results, sp)
            si, sm = self._load_pair(p, mp, sconv, v, sp)
            s_imgs.append(si)
            s_masks.append(sm)
            s_thr.append(sconv.get('mask_threshold'))
        results['support_imgs'] = s_imgs
        results['support_masks'] = s_masks
        results['support_ori_shapes'] = [s.shape[:2] for s in s_imgs]
        if any(t is not None for t in s_thr):
            results['support_mask_thresholds'] = s_thr
        return results


@TRANSFORMS.register_module()
class ResizeEpisode(BaseTransform):
    """Resize the query and supports (images and masks) to a fixed size.

    Masks are resized with the same (bilinear by default) interpolation as in
    GFDS and thresholded afterwards by :class:`BinarizeEpisodeMasks`.

    Args:
        scale (tuple[int, int]): Output ``(width, height)``; 256x256 in GFDS.
        interpolation (str): Image interpolation.
        mask_interpolation (str): Mask interpolation.
    """

    def __init__(
        self,
        scale: Tuple[int, int] = (256, 256),
        interpolation: str = 'bilinear',
        mask_interpolation: str = 'bilinear',
    ):
        if isinstance(scale, int):
            scale = (scale, scale)
        self.scale = tuple(int(s) for s in scale)
        self.interp = _INTERP[interpolation]
        self.mask_interp = _INTERP[mask_interpolation]

    def transform(self, results: dict) -> dict:
        """Resize the query and supports; masks stay 0..255 until binarised."""
        size = self.scale
        results['img'] = cv2.resize(results['img'], size, interpolation=self.interp)
        results['gt_mask'] = cv2.resize(
            results['gt_mask'], size, interpolation=self.mask_interp
        )
        results['support_imgs'] = [
            cv2.resize(i, size, interpolation=self.interp)
            for i in results['support_imgs']
        ]
        results['support_masks'] = [
            cv2.resize(m, size, interpolation=self.mask_interp)
            for m in results['support_masks']
        ]
        results['img_shape'] = results['img'].shape[:2]
        results['scale_factor'] = (
            size[0] / results['ori_shape'][1],
            size[1] / results['ori_shape'][0],
        )
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(scale={self.scale})'


@TRANSFORMS.register_module()
class BinarizeEpisodeMasks(BaseTransform):
    """Threshold the 8-bit masks into 0/1: ``mask > threshold``.

    Args:
        threshold (int, optional): One threshold for every mask. Defaults to
            the product's ``mask_threshold`` carried in the results (30 for
            GFDS): the query's for the query mask, each support's own
            product's (``support_mask_thresholds``) for the supports.
    """

    def __init__(self, threshold: Optional[int] = None):
        self.threshold = threshold

    def transform(self, results: dict) -> dict:
        """Threshold every mask after resizing (0/1 ``uint8``)."""
        t = self.threshold
        if t is None:
            t = results.get('mask_threshold', 30)
        s_thr = [t] * len(results['support_masks'])
        if self.threshold is None and results.get('support_mask_thresholds'):
            s_thr = [
                t if st is None else st for st in results['support_mask_thresholds']
            ]
        results['gt_mask'] = (results['gt_mask'] > t).astype(np.uint8)
        results['support_masks'] = [
            (m > st).astype(np.uint8) for m, st in zip(results['support_masks'], s_thr)
        ]
        return results


def _pairs(results: dict):
    """Yield None (the query) then the index of every support."""
    yield None
    for i in range(len(results['support_imgs'])):
        yield i


def _get(results, i):
    if i is None:
        return results['img'], results['gt_mask']
    return results['support_imgs'][i], results['support_masks'][i]


def _random(results: dict):
    """The episode's generator (per-epoch training episodes carry one).

    Falls back to numpy's global generator. A per-epoch episode's ``rng`` is
    seeded by ``(seed, epoch, query)``, so its augmentation is the same
    whatever the worker count, process count or resume point.
    """
    return results.get('rng') or np.random.default_rng(np.random.randint(2**31))


def _set(results, i, img, mask):
    if i is None:
        results['img'], results['gt_mask'] = img, mask
    else:
        results['support_imgs'][i] = img
        results['support_masks'][i] = mask


@TRANSFORMS.register_module()
class RandomFlipEpisode(BaseTransform):
    """Random horizontal / vertical flips, each image with its own mask.

    Draws from the episode's ``rng`` when it has one (per-epoch training
    episodes of :class:`~fdseg.datasets.FewShotDefectDataset`), else from
    numpy's global generator.

    Args:
        prob (float): Probability of flipping along each direction.
        directions (Sequence[str]): ``'horizontal'`` and/or ``'vertical'``.
        per_image (bool): Draw independently for the query and each support
            (as the official PFENet / SSP loaders transform the query and
            each support separately); else one draw for the episode.
    """

    def __init__(
        self,
        prob: float = 0.5,
        directions: Sequence[str] = ('horizontal', 'vertical'),
        per_image: bool = True,
    ):
        for d in directions:
            if d not in ('horizontal', 'vertical'):
                raise ValueError(f'unknown flip direction {d!r}')
        self.prob = prob
        self.directions = tuple(directions)
        self.per_image = per_image

    def transform(self, results: dict) -> dict:
        """Flip each image together with its mask."""
        results['augmented'] = True
        rng = _random(results)
        draws = None
        for i in _pairs(results):
            if draws is None or self.per_image:
                draws = [rng.random() < self.prob for _ in self.directions]
            img, mask = _get(results, i)
            for d, do in zip(self.directions, draws):
                if do:
                    axis = 1 if d == 'horizontal' else 0
                    img = np.flip(img, axis)
                    mask = np.flip(mask, axis)
            _set(results, i, np.ascontiguousarray(img), np.ascontiguousarray(mask))
        return results


@TRANSFORMS.register_module()
class RandomRotate90Episode(BaseTransform):
    """Random rotations by k * 90 degrees, each image with its own mask.

    Draws from the episode's ``rng`` as :class:`RandomFlipEpisode` does.

    Args:
        prob (float): Probability of rotating (k drawn from 1..3).
        per_image (bool): See :class:`RandomFlipEpisode`.
    """

    def __init__(self, prob: float = 0.5, per_image: bool = True):
        self.prob = prob
        self.per_image = per_image

    def transform(self, results: dict) -> dict:
        """Rotate each image together with its mask by a multiple of 90 degrees."""
        results['augmented'] = True
        rng = _random(results)
        k = None
        for i in _pairs(results):
            if k is None or self.per_image:
                k = int(rng.integers(1, 4)) if rng.random() < self.prob else 0
            if k:
                img, mask = _get(results, i)
                _set(
                    results,
                    i,
                    np.ascontiguousarray(np.rot90(img, k)),
                    np.ascontiguousarray(np.rot90(mask, k)),
                )
        results['img_shape'] = results['img'].shape[:2]
        return results


@TRANSFORMS.register_module()
class PackEpisodeInputs(BaseTransform):
    """Pack an episode into ``inputs`` (query) and an EpisodeDataSample.

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo.
    """

    DEFAULT_META_KEYS = (
        'img_path',
        'seg_map_path',
        'product',
        'category',
        'category_key',
        'category_id',
        'display_name',
        'query_label',
        'way_categories',
        'is_good',
        'support_paths',
        'support_mask_paths',
        'ori_shape',
        'img_shape',
        'scale_factor',
        'episode_idx',
        'support_ori_shapes',
    )

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS):
        self.meta_keys = tuple(meta_keys)

    @staticmethod
    def _to_chw(img: np.ndarray) -> torch.Tensor:
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

    def transform(self, results: dict) -> dict:
        """Pack the episode into ``inputs`` and an ``EpisodeDataSample``."""
        for m in [results['gt_mask'], *results['support_masks']]:
            if m.max(initial=0) > 1:
                raise ValueError(
                    f'{results.get("img_path")}: masks must be binary before '
                    'packing; add BinarizeEpisodeMasks to the pipeline'
                )
        sample = EpisodeDataSample()
        sample.support_imgs = torch.stack(
            [self._to_chw(i) for i in results['support_imgs']]
        )
        sample.support_masks = torch.from_numpy(
            np.stack(results['support_masks'])
        ).long()
        sample.support_labels = torch.as_tensor(
            results.get('support_labels', [1] * len(results['support_imgs'])),
            dtype=torch.long,
        )
        label = int(results.get('query_label', 1))
        gt = torch.from_numpy(results['gt_mask']).long() * label
        sample.gt_sem_seg = PixelData(data=gt[None])
        meta = {k: results[k] for k in self.meta_keys if k in results}
        meta['query_path'] = results.get('img_path')
        meta['query_mask_path'] = results.get('seg_map_path')
        # Identifies the support set for feature caching (same files, same
        # geometry); None when random augmentation may have changed them.
        meta['support_key'] = (
            None
            if results.get('augmented')
            else (
                tuple(results['support_paths'])
                + tuple(str(p) for p in results['support_mask_paths'])
                + (tuple(results['img_shape']),)
            )
        )
        sample.set_metainfo(meta)
        return dict(inputs=self._to_chw(results['img']), data_samples=sample)

    def __repr__(self):
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'


def episode_pipeline(
    scale: Union[int, Tuple[int, int]] = 256, train: bool = False
) -> List[dict]:
    """The default GFDS pipeline as a list of transform configs."""
    if isinstance(scale, int):
        scale = (scale, scale)
    pipe = [
        dict(type='LoadEpisode'),
        dict(type='ResizeEpisode', scale=scale),
        dict(type='BinarizeEpisodeMasks'),
    ]
    if train:
        pipe += [
            dict(type='RandomFlipEpisode', prob=0.5),
            dict(type='RandomRotate90Episode', prob=0.5),
        ]
    pipe.append(dict(type='PackEpisodeInputs'))
    return pipe
