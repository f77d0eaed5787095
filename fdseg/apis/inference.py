"""Inference API: pin a support set once, then segment a stream of queries.

Example::

    from fdseg.apis import FewShotInferencer
    inf = FewShotInferencer('configs/quickstart/...py', checkpoint=None)
    inf.set_support(['s1.png'], ['s1_mask.png'])
    masks = inf(['q1.png', 'q2.png'])      # list of [H, W] uint8 0/1

Inputs follow the same conventions as the dataset
(:mod:`fdseg.datasets.transforms.conventions`, docs/get_started.md): what is
not unambiguous is refused with a message naming the argument.
"""

import os
import warnings
from typing import Any, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from fdseg.datasets.transforms import read_image, read_mask
from fdseg.datasets.transforms.conventions import image_to_rgb_uint8, mask_to_uint8
from fdseg.registry import MODELS
from fdseg.structures import EpisodeDataSample

#: A path (str / PathLike), an RGB ``[H, W, 3]`` / gray ``[H, W]`` array, a
#: ``[3, H, W]`` tensor or a PIL image.
ImageLike = Union[str, os.PathLike, np.ndarray, torch.Tensor, Any]


def init_model(
    config: Union[str, Config],
    checkpoint: Optional[str] = None,
    device: str = 'cpu',
    cfg_options: Optional[dict] = None,
    strict: bool = True,
) -> torch.nn.Module:
    """Build a model from a config and optionally load an fdseg checkpoint.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): An fdseg training checkpoint (trusted:
            loaded with ``weights_only=False``). Pretrained third-party
            weights come through the model's ``init_cfg`` instead.
        device (str): Device.
        cfg_options (dict, optional): Overrides merged into the config.
        strict (bool): The checkpoint must match the model key for key
            (otherwise the matching keys load and a warning names the rest).

    Raises:
        MissingCheckpointError: A pretrained file the config names is not
            in the checkpoint cache (without ``checkpoint``).
        CheckpointMismatchError: The checkpoint does not fit the model.
    """
    from fdseg.engine.checkpoint import register_trusted_scheme
    from fdseg.utils import setup_config_loading

    setup_config_loading()  # ``_base_ = 'fdseg::...'``
    register_trusted_scheme()  # ``init_cfg`` with ``fdseg-trusted://``
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'fdseg'))
    import fdseg.utils

    fdseg.utils.register_all_modules(init_default_scope=False)
    model = MODELS.build(cfg.model)
    # The same rules as tools/test.py (fdseg.engine.weights): pretrained
    # files without a checkpoint; a checkpoint loads strictly.
    from fdseg.engine.checkpoint import load_trusted_checkpoint
    from fdseg.engine.weights import check_fdseg_checkpoint, prepare_weights

    prepare_weights(model, checkpoint_given=checkpoint is not None)
    if checkpoint is not None:
        ckpt = load_trusted_checkpoint(checkpoint, map_location='cpu')
        model.load_state_dict(
            check_fdseg_checkpoint(model, ckpt, checkpoint, strict), strict=strict
        )
    model.cfg = cfg
    return model.to(device).eval()


def _test_scale(cfg: Config):
    """The ``ResizeEpisode`` scale of the config's test pipeline, if any."""
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])
    for t in pipeline:
        if t.get('type') == 'ResizeEpisode':
            s = t.get('scale', (256, 256))
            return (s, s) if isinstance(s, int) else tuple(s)
    return None


def _is_pil(x) -> bool:
    # PIL is imported lazily: only check the type when it is loaded.
    import sys

    pil = sys.modules.get('PIL.Image')
    return pil is not None and isinstance(x, pil.Image)


def _is_path(x) -> bool:
    return isinstance(x, (str, os.PathLike))


def _as_items(x, arg: str, batch_ndim: Optional[int]) -> list:
    """A sequence argument as a list; a single item is a list of one.

    Args:
        x: A list / tuple, or one path, PIL image, array or tensor.
        arg (str): Argument name for errors.
        batch_ndim (int, optional): An array or tensor with this many
            dimensions is a batch (``[B, H, W, C]`` / ``[B, C, H, W]``).
    """
    if _is_path(x) or _is_pil(x):
        return [x]
    if isinstance(x, (np.ndarray, torch.Tensor)):
        if batch_ndim is not None and x.ndim == batch_ndim:
            return list(x)
        return [x]
    if isinstance(x, (list, tuple)):
        return list(x)
    raise TypeError(
        f'{arg} must be a list of paths, arrays, tensors or PIL '
        f'images (or one of them), got {type(x).__name__}'
    )


def _to_hwc(x, arg: str) -> np.ndarray:
    """Array / tensor -> numpy ``[H, W]`` or ``[H, W, C]``.

    Arrays are channel-last unless only channel-first fits, tensors the
    other way round; the channel count must be 1, 3 or 4.
    """
    chw_first = isinstance(x, torch.Tensor)
    if chw_first:
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim == 2:
        return x
    if x.ndim != 3:
        raise ValueError(
            f'{arg}: expected [H, W], [H, W, C] or [C, H, W], '
            f'got shape {tuple(x.shape)}'
        )
    hwc, chw = x.shape[2] in (1, 3, 4), x.shape[0] in (1, 3, 4)
    if (chw_first and chw) or (chw and not hwc):
        return x.transpose(1, 2, 0)
    if hwc:
        return x
    raise ValueError(
        f'{arg}: no axis of shape {tuple(x.shape)} has 1, 3 '
        'or 4 channels (pass several images or masks as a '
        'list)'
    )


_PIL_KEEP = ('L', 'RGB', 'RGBA', 'I', 'I;16', 'I;16B', 'I;16L', 'F')


def _pil_array(im, arg: str, mask: bool) -> Tuple[np.ndarray, bool]:
    """A PIL image as an array; returns ``(array, palette indices)``.

    16-bit and float modes keep their values (the conventions scale them);
    an image of another mode is converted to RGB(A), a mask of a palette
    mode gives its indices (not the colours).
    """
    if mask:
        if im.mode == 'P':
            return np.asarray(im), True
        if im.mode not in _PIL_KEEP + ('1', 'LA'):
            raise ValueError(
                f'{arg}: PIL mask of mode {im.mode!r}; pass '
                "mode 'L', '1', 'P' or 'I;16'"
            )
        return np.asarray(im), False
    if im.mode not in _PIL_KEEP:
        alpha = im.mode in ('LA', 'PA', 'La', 'RGBa') or ('transparency' in im.info)
        im = im.convert('RGBA' if alpha else 'RGB')
    return np.asarray(im), False


class FewShotInferencer:
    """Segment queries against a pinned support set.

    Images are read and resized as in the config's test pipeline; masks are
    thresholded after resizing (``mask_threshold``, 30 as in GFDS; use 127
    for clean 0/255 masks). Predictions are returned at each query's
    original size.

    Inputs (supports and queries alike, by the dataset's rules):

    - paths (``str`` or ``pathlib.Path``) are read as the dataset reads
      files (:func:`~fdseg.datasets.transforms.read_image` /
      :func:`~fdseg.datasets.transforms.read_mask`);
    - arrays are **RGB** (not OpenCV's BGR: convert ``cv2.imread`` results
      with ``cv2.cvtColor(img, cv2.COLOR_BGR2RGB)``), ``[H, W, 3]``,
      ``[H, W]`` (gray) or ``[H, W, 4]`` (a constant alpha is dropped,
      transparency is refused); ``[3, H, W]`` arrays and torch tensors
      (``[3, H, W]``, or ``[H, W, 3]``) are accepted where only that
      layout fits; a 4-D array / tensor is a batch;
    - uint8 as is; uint16 scaled by its bit depth (``image_bit_depth``, or
      the smallest of 8, 10, 12, 14, 16 bits holding the maximum); floats in
      ``[0, 1]`` are scaled by 255, floats in ``[0, 255]`` kept, anything
      else (e.g. mean/std normalised) is refused;
    - PIL images as their arrays (palette images: their colours).

    Masks: bool, 0/1 (any dtype) and soft floats in ``[0, 1]`` are scaled
    to 0..255, uint8 0..255 is kept, 16-bit is scaled by its bit depth, a PIL
    palette mask gives its index (one non-zero index allowed); then
    ``mask > mask_threshold`` after resizing is foreground. A mask whose
    non-zero values are all <= ``mask_threshold`` (e.g. a value-indexed
    ``{0, 2}`` mask) is refused: pass ``mask == k``.

    Args:
        model (str | Config | nn.Module): Config (file) or a built model.
        checkpoint (str, optional): fdseg checkpoint for a config.
        device (str): Device.
        scale (tuple[int, int], optional): Network input ``(w, h)``;
            defaults to the config's test pipeline, else 256x256.
        mask_threshold (int): Support-mask threshold after resizing.
        image_bit_depth (int, optional): Bit depth of 16-bit images (e.g. 12);
            inferred per image when None.
    """

    def __init__(
        self,
        model,
        checkpoint: Optional[str] = None,
        device: str = 'cpu',
        scale=None,
        mask_threshold: int = 30,
        image_bit_depth: Optional[int] = None,
    ):
        if not isinstance(model, torch.nn.Module):
            model = init_model(model, checkpoint, device)
        self.model = model.eval()
        self.device = device
        cfg = getattr(model, 'cfg', None)
        self.scale = (
            tuple(scale)
            if scale is not None
            else (_test_scale(cfg) if cfg is not None else None) or (256, 256)
        )
        self.mask_threshold = mask_threshold
        self.image_bit_depth = image_bit_depth
        self._support = None

    def _load_img(self, img: ImageLike, arg: str = 'image') -> np.ndarray:
        """Any accepted image -> uint8 RGB ``[H, W, 3]``."""
        if _is_path(img):
            return read_image(os.fspath(img), bit_depth=self.image_bit_depth)
        if _is_pil(img):
            arr = _pil_array(img, arg, mask=False)[0]
        elif isinstance(img, (np.ndarray, torch.Tensor)):
            arr = _to_hwc(img, arg)
        else:
            raise TypeError(
                f'{arg}: expected a path, an array, a tensor or a '
                f'PIL image, got {type(img).__name__}'
            )
        return image_to_rgb_uint8(arr, arg, 'rgb', self.image_bit_depth)

    def _load_mask(self, m, arg: str) -> np.ndarray:
        """Any accepted mask -> uint8 ``[H, W]`` 0..255 (binary rules)."""
        setting = f'FewShotInferencer(mask_threshold={self.mask_threshold})'
        hint = 'pass a binary mask such as (mask == k) for class k'
        if _is_path(m):
            return read_mask(
                os.fspath(m), 'binary', threshold=self.mask_threshold, setting=setting
            )
        palette = False
        if _is_pil(m):
            arr, palette = _pil_array(m, arg, mask=True)
        elif isinstance(m, (np.ndarray, torch.Tensor)):
            arr = _to_hwc(m, arg)
        else:
            raise TypeError(
                f'{arg}: expected a path, an array, a tensor or a '
                f'PIL image, got {type(m).__name__}'
            )
        return mask_to_uint8(
            arr,
            arg,
            'binary',
            threshold=self.mask_threshold,
            palette=palette,
            setting=setting,
            index_hint=hint,
        )

    def _to_tensor(self, img: np.ndarray) -> torch.Tensor:
        img = cv2.resize(img, self.scale, interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

    def set_support(
        self,
        images: Union[ImageLike, Sequence[ImageLike]],
        masks: Union[ImageLike, Sequence[ImageLike]],
        labels: Optional[Sequence[int]] = None,
    ) -> None:
        """Encode and pin a support set (K images with their masks).

        An empty support mask (after resizing and thresholding) adds no
        foreground: with the prototype matcher, a way whose supports are all
        empty is never predicted. A full one adds no background: if every
        support is full, every query pixel is predicted foreground. Both
        warn, naming the support.

        Args:
            images (list[str | Path | ndarray | Tensor | PIL.Image]): Support
                images (arrays are RGB, see the class docstring); one item is
                one support.
            masks (list[str | Path | ndarray | Tensor | PIL.Image]): Their
                masks (0/255, 0/1, bool, soft ``[0, 1]`` floats, ...).
            labels (list[int], optional): Way of each support (N-way):
                integers covering 1..N; all 1 when None.

        Raises:
            ValueError: Different numbers of images and masks or labels, a
                mask of another size than its image, labels outside 1..N,
                or an input outside the conventions (named by argument).
            TypeError: An argument of an unsupported type.
        """
        images = _as_items(images, 'images', batch_ndim=4)
        masks = _as_items(masks, 'masks', batch_ndim=None)
        if len(images) != len(masks) or not images:
            raise ValueError(
                f'set_support needs as many masks as images '
                f'(got {len(images)} images, {len(masks)} masks;'
                ' pass masks as a list of [H, W] masks)'
            )
        lab = self._check_labels(labels, len(images))
        imgs, ms = [], []
        for i, (im, m) in enumerate(zip(images, masks)):
            im = self._load_img(im, f'images[{i}]')
            name = f'masks[{i}]' + (f' ({os.fspath(m)})' if _is_path(m) else '')
            m = self._load_mask(m, name)
            if m.shape[:2] != im.shape[:2]:
                raise ValueError(
                    f'support {i}: mask is {m.shape[:2]} but image is {im.shape[:2]}'
                )
            m = cv2.resize(m, self.scale, interpolation=cv2.INTER_LINEAR)
            fg = m > self.mask_threshold
            if not fg.any() or fg.all():
                warnings.warn(
                    f'{name} is {"empty" if not fg.any() else "full"} at the '
                    f'network size {self.scale[0]}x{self.scale[1]} (mask > '
                    f'{self.mask_threshold}): support {i} adds no '
                    f'{"foreground" if not fg.any() else "background"}'
                )
            imgs.append(self._to_tensor(im))
            ms.append(torch.from_numpy(fg.astype(np.int64)))
        self.model.set_support(
            torch.stack(imgs).to(self.device),
            torch.stack(ms).to(self.device),
            lab.to(self.device),
        )
        self._support = len(imgs)

    @staticmethod
    def _check_labels(labels, n: int) -> torch.Tensor:
        """Labels as a ``[K]`` long tensor; ways must be 1..N (0 = bg)."""
        if labels is None:
            return torch.ones(n, dtype=torch.long)
        if isinstance(labels, (str, bytes)) or np.ndim(labels) != 1:
            raise ValueError(
                f'labels must be a list of {n} ints (one per support), got {labels!r}'
            )
        vals = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if len(vals) != n:
            raise ValueError(f'labels has {len(vals)} entries for {n} supports')
        if (
            vals.dtype == bool
            or not np.issubdtype(vals.dtype, np.number)
            or (vals != np.round(vals)).any()
        ):
            raise ValueError(f'labels must be integers, got {list(labels)}')
        vals = vals.astype(np.int64)
        ways = sorted(set(vals.tolist()))
        if ways[0] < 1 or ways != list(range(1, ways[-1] + 1)):
            raise ValueError(
                f'labels must cover the ways 1..N (0 is the background, a '
                f'way without a support is never predicted), got '
                f'{vals.tolist()}'
            )
        return torch.from_numpy(vals)

    @torch.no_grad()
    def __call__(
        self, queries: Union[ImageLike, Sequence[ImageLike]], batch_size: int = 8
    ) -> List[np.ndarray]:
        """Segment queries; returns ``[H, W]`` uint8 label maps (0 = bg).

        Args:
            queries: One image or a list (paths, RGB arrays, tensors, PIL
                images; a 4-D array / tensor is a batch), read by the same
                rules as the supports.
            batch_size (int): Queries per forward pass.
        """
        if self._support is None:
            raise RuntimeError('call set_support() before segmenting queries')
        queries = _as_items(queries, 'queries', batch_ndim=4)
        out = []
        for b in range(0, len(queries), batch_size):
            chunk = [
                self._load_img(q, f'queries[{b + i}]')
                for i, q in enumerate(queries[b : b + batch_size])
            ]
            samples = []
            for q in chunk:
                s = EpisodeDataSample()
                s.set_metainfo(
                    dict(
                        ori_shape=q.shape[:2], img_shape=(self.scale[1], self.scale[0])
                    )
                )
                samples.append(s)
            data = self.model.data_preprocessor(
                dict(inputs=[self._to_tensor(q) for q in chunk], data_samples=samples)
            )
            res = self.model.predict(data['inputs'], data['data_samples'])
            for q, r in zip(chunk, res):
                pred = r.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
                out.append(
                    cv2.resize(
                        pred, (q.shape[1], q.shape[0]), interpolation=cv2.INTER_NEAREST
                    )
                )
        return out
