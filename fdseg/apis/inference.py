"""Inference API: pin a support set once, then segment a stream of queries.

Example::

    from fdseg.apis import FewShotInferencer
    cfg = 'fdseg::quickstart/fm_filterbank_no-train_synthetic-all-1shot.py'
    inf = FewShotInferencer(cfg, device='auto')
    inf.set_support(['s1.png'], ['s1_mask.png'])
    for r in inf.predict('line/*.png'):        # FewShotResult per image
        print(r.name, r.decision, r.score, r.instances)
        r.save('out', overlay=True)
    masks = inf(['q1.png', 'q2.png'])          # list of [H, W] uint8 labels

Images and masks go through the config's own test pipeline (every transform
between ``LoadEpisode`` and ``PackEpisodeInputs``, e.g. ``ResizeEpisode``
and ``BinarizeEpisodeMasks``), so the inferencer sees exactly what
``tools/test.py`` sees. Inputs follow the dataset's conventions
(:mod:`fdseg.datasets.transforms.conventions`, docs/get_started.md): what
is not unambiguous is refused with a message naming the argument.
"""

import difflib
import glob
import os
import os.path as osp
import warnings
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import init_default_scope

from fdseg.datasets.transforms import episode_pipeline, read_mask
from fdseg.datasets.transforms.conventions import mask_to_uint8
from fdseg.registry import MODELS
from fdseg.structures import EpisodeDataSample

from .results import FewShotResult
from .sources import (
    ImageLike,
    ImageSource,
    is_path,
    is_pil,
    load_rgb,
    pil_array,
    to_hwc,
)

#: Pipeline steps the inferencer does itself (it reads arrays as well as
#: files, and packs batches of queries without supports).
_OWN_STEPS = ('LoadEpisode', 'PackEpisodeInputs')
#: Random test-time steps would make a pinned support differ per query.
_RANDOM_STEPS = ('RandomFlipEpisode', 'RandomRotate90Episode')


def resolve_device(device: Optional[str]) -> str:
    """``'auto'`` (or None) -> ``'cuda'`` when available, else ``'cpu'``."""
    if device in (None, 'auto'):
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return device


def config_root() -> str:
    """The configs shipped with fdseg (``fdseg/.mim/configs``)."""
    return osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs')


def resolve_config(model: str) -> str:
    """A config file from a path, an ``fdseg::`` name or a bare config name.

    Args:
        model (str): ``path/to/config.py``; ``fdseg::quickstart/x.py`` (a
            config shipped with fdseg); or a config's name without folder
            or suffix (``fm_pdn-s_no-train_custom-1shot``), looked up among
            the shipped configs.

    Returns:
        str: The config file.

    Raises:
        FileNotFoundError: No such file or shipped config; the message
            names the argument and the closest config names.
    """
    model = os.fspath(model)
    if osp.isfile(model):
        return model
    root = config_root()
    if model.startswith('fdseg::'):
        rel = model[len('fdseg::') :]
        path = osp.join(root, rel if rel.endswith('.py') else rel + '.py')
        if osp.isfile(path):
            return path
        raise FileNotFoundError(
            f'--model {model}: no config {rel} shipped with fdseg (under {root})'
        )
    shipped = {
        osp.splitext(osp.basename(p))[0]: p
        for p in glob.glob(osp.join(root, '**', '*.py'), recursive=True)
        if '_base_' not in p.split(os.sep)
    }
    name = osp.splitext(osp.basename(model))[0]
    if '/' not in model and os.sep not in model and name in shipped:
        return shipped[name]
    close = difflib.get_close_matches(name, list(shipped), n=3, cutoff=0.5)
    hint = f' Did you mean: {", ".join(close)}?' if close else ''
    raise FileNotFoundError(
        f'--model {model}: not a config file, and no config of that name '
        f'ships with fdseg (configs/*/<name>.py).{hint}'
    )


def init_model(
    config: Union[str, Config],
    checkpoint: Optional[str] = None,
    device: str = 'cpu',
    cfg_options: Optional[dict] = None,
    strict: bool = True,
    allow_untrained: bool = False,
) -> torch.nn.Module:
    """Build a model from a config and optionally load an fdseg checkpoint.

    Args:
        config (str | Config): Config file, ``fdseg::`` name, bare config
            name (see :func:`resolve_config`) or config object.
        checkpoint (str, optional): An fdseg training checkpoint (trusted:
            loaded with ``weights_only=False``). Pretrained third-party
            weights come through the model's ``init_cfg`` instead.
        device (str): Device; ``'auto'`` picks CUDA when available.
        cfg_options (dict, optional): Overrides merged into the config
            (``--cfg-options`` style dotted keys).
        strict (bool): The checkpoint must match the model key for key
            (otherwise the matching keys load and a warning names the rest).
        allow_untrained (bool): Build a model whose learned modules (PFENet,
            HSNet, PATNet heads) stay random without ``checkpoint`` (also
            ``allow_untrained=True`` in the config).

    Raises:
        MissingCheckpointError: A pretrained file the config names is not
            in the checkpoint cache (without ``checkpoint``).
        CheckpointMismatchError: The checkpoint does not fit the model.
        UntrainedModelError: Learned modules and no ``checkpoint``.
    """
    from fdseg.engine.checkpoint import register_trusted_scheme
    from fdseg.utils import setup_config_loading
    from fdseg.utils.config_checks import load_config

    setup_config_loading()  # ``_base_ = 'fdseg::...'``
    register_trusted_scheme()  # ``init_cfg`` with ``fdseg-trusted://``
    if isinstance(config, (str, os.PathLike)):
        cfg = load_config(resolve_config(config), cfg_options)
    else:
        cfg = config
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    device = resolve_device(device)
    init_default_scope(cfg.get('default_scope', 'fdseg'))
    import fdseg.utils

    fdseg.utils.register_all_modules(init_default_scope=False)
    model = MODELS.build(cfg.model)
    # The same rules as tools/test.py (fdseg.engine.weights): pretrained
    # files without a checkpoint; a checkpoint loads strictly.
    from fdseg.engine.checkpoint import load_trusted_checkpoint
    from fdseg.engine.weights import (
        check_fdseg_checkpoint,
        check_trained,
        prepare_weights,
    )

    check_trained(
        model,
        checkpoint is not None,
        allow_untrained or bool(cfg.get('allow_untrained', False)),
    )
    prepare_weights(model, checkpoint_given=checkpoint is not None)
    if checkpoint is not None:
        ckpt = load_trusted_checkpoint(checkpoint, map_location='cpu')
        model.load_state_dict(
            check_fdseg_checkpoint(model, ckpt, checkpoint, strict), strict=strict
        )
    model.cfg = cfg
    return model.to(device).eval()


def _as_items(x, arg: str, batch_ndim: Optional[int]) -> list:
    """A sequence argument as a list; a single item is a list of one.

    Args:
        x: A list / tuple, or one path, PIL image, array or tensor.
        arg (str): Argument name for errors.
        batch_ndim (int, optional): An array or tensor with this many
            dimensions is a batch (``[B, H, W, C]`` / ``[B, C, H, W]``).
    """
    if is_path(x) or is_pil(x):
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


def test_transforms(
    cfg: Optional[Config], scale: Optional[Tuple[int, int]] = None
) -> Tuple[Compose, Tuple[int, int]]:
    """The config's test pipeline without loading and packing.

    Args:
        cfg (Config, optional): Config with ``test_dataloader.dataset
            .pipeline``; the default GFDS pipeline (256x256) when None or
            absent.
        scale (tuple[int, int], optional): Overrides the ``ResizeEpisode``
            scale ``(w, h)``.

    Returns:
        tuple: The transforms (over LoadEpisode's results dict) and the
        network input size ``(w, h)``.

    Raises:
        ValueError: The pipeline has no ``ResizeEpisode`` (queries of
            several sizes could not be batched) or a random transform.
    """
    pipeline = None
    if cfg is not None:
        pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline')
    if not pipeline:
        pipeline = episode_pipeline(256)
    steps = []
    for t in pipeline:
        t = dict(t)
        kind = t.get('type')
        if kind in _OWN_STEPS:
            continue
        if kind in _RANDOM_STEPS:
            raise ValueError(
                f'the test pipeline has the random transform {kind}: remove '
                'it for inference'
            )
        if kind == 'ResizeEpisode' and scale is not None:
            t['scale'] = tuple(scale)
        steps.append(t)
    resize = [t for t in steps if t.get('type') == 'ResizeEpisode']
    if not resize:
        raise ValueError(
            'the test pipeline has no ResizeEpisode: the inferencer needs a '
            'fixed network input size'
        )
    s = resize[-1].get('scale', (256, 256))
    size = (s, s) if isinstance(s, int) else tuple(int(v) for v in s)
    return Compose(steps), size


class FewShotInferencer:
    """Segment queries against a pinned support set.

    Images and masks go through the config's test pipeline (see
    :func:`test_transforms`: e.g. bilinear ``ResizeEpisode`` and
    ``BinarizeEpisodeMasks``); support masks are thresholded after resizing
    (``mask_threshold``, 30 as in GFDS; use 127 for clean 0/255 masks).
    Predictions are returned at each query's original size:
    :meth:`predict` gives :class:`~fdseg.apis.FewShotResult` objects (mask,
    score map, instances, decision), calling the inferencer gives label
    maps only.

    Inputs (supports and queries alike, by the dataset's rules):

    - paths (``str`` or ``pathlib.Path``) are read as the dataset reads
      files (:func:`~fdseg.datasets.transforms.read_image` /
      :func:`~fdseg.datasets.transforms.read_mask`); queries may also be a
      folder or a glob (:class:`~fdseg.apis.ImageSource`);
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
        model (str | Config | nn.Module): Config file, ``fdseg::`` name,
            bare config name (:func:`resolve_config`), Config, or a built
            model.
        checkpoint (str, optional): fdseg checkpoint for a config.
        device (str): Device; ``'auto'`` picks CUDA when available.
        scale (tuple[int, int], optional): Network input ``(w, h)``;
            defaults to the config's test pipeline, else 256x256.
        mask_threshold (int): Support-mask threshold after resizing.
        image_bit_depth (int, optional): Bit depth of 16-bit images (e.g. 12);
            inferred per image when None.
        cfg_options (dict, optional): Config overrides (dotted keys).
        fast_cpu (bool): On a CPU, run the backbone channels-last with each
            convolution in the fastest fp32 algorithm for this machine and
            input size (direct, Winograd or im2col + GEMM, timed once here:
            a few seconds; :func:`fdseg.deploy.optimize_for_cpu`). Masks
            equal the plain model's up to float rounding; the parameters are
            unchanged. The choices are in ``self.cpu_report``.
    """

    def __init__(
        self,
        model,
        checkpoint: Optional[str] = None,
        device: str = 'cpu',
        scale=None,
        mask_threshold: int = 30,
        image_bit_depth: Optional[int] = None,
        cfg_options: Optional[dict] = None,
        fast_cpu: bool = False,
    ):
        device = resolve_device(device)
        if not isinstance(model, torch.nn.Module):
            model = init_model(model, checkpoint, device, cfg_options=cfg_options)
        else:
            model = model.to(device)
        self.model = model.eval()
        self.device = device
        self.transforms, self.scale = test_transforms(
            getattr(model, 'cfg', None), scale
        )
        self.mask_threshold = mask_threshold
        self.image_bit_depth = image_bit_depth
        self.class_names: Tuple[str, ...] = ('background', 'defect')
        self._support = None
        self.cpu_report = self._optimize_for_cpu() if fast_cpu else None

    def _optimize_for_cpu(self) -> list:
        """Tune the backbone for this CPU on an input of the network size."""
        from fdseg.deploy import optimize_for_cpu

        if torch.device(self.device).type != 'cpu':
            raise ValueError(f'fast_cpu=True needs a CPU device, got {self.device!r}')
        if not hasattr(self.model, 'backbone'):
            raise ValueError(
                f'fast_cpu=True: {type(self.model).__name__} has no backbone to tune'
            )
        w, h = self.scale
        # values do not change the timings; the error check needs non-zeros
        example = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
        return optimize_for_cpu(self.model, example)

    def load_image(self, img: ImageLike, arg: str = 'image') -> np.ndarray:
        """Any accepted image -> uint8 RGB ``[H, W, 3]``."""
        return load_rgb(img, arg, self.image_bit_depth)

    def load_mask(self, m, arg: str) -> np.ndarray:
        """Any accepted mask -> uint8 ``[H, W]`` 0..255 (binary rules)."""
        setting = f'FewShotInferencer(mask_threshold={self.mask_threshold})'
        hint = 'pass a binary mask such as (mask == k) for class k'
        if is_path(m):
            return read_mask(
                os.fspath(m), 'binary', threshold=self.mask_threshold, setting=setting
            )
        palette = False
        if is_pil(m):
            arr, palette = pil_array(m, arg, mask=True)
        elif isinstance(m, (np.ndarray, torch.Tensor)):
            arr = to_hwc(m, arg)
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

    def preprocess(self, img: np.ndarray, s_imgs=(), s_masks=()) -> dict:
        """Run the config's test pipeline on a query (and supports).

        Args:
            img (np.ndarray): ``[H, W, 3]`` uint8 RGB query.
            s_imgs (Sequence[np.ndarray]): Support images, as ``img``.
            s_masks (Sequence[np.ndarray]): Their ``[H, W]`` uint8 masks.

        Returns:
            dict: The pipeline's results (``img``, ``support_imgs``,
            ``support_masks``, ... at the network size).
        """
        results = dict(
            img=img,
            gt_mask=np.zeros(img.shape[:2], np.uint8),
            support_imgs=list(s_imgs),
            support_masks=list(s_masks),
            ori_shape=img.shape[:2],
            img_shape=img.shape[:2],
            mask_threshold=self.mask_threshold,
        )
        return self.transforms(results)

    @staticmethod
    def to_chw(img: np.ndarray) -> torch.Tensor:
        """``[H, W, 3]`` (or gray ``[H, W]``) array -> ``[3, H, W]`` tensor."""
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

    def query_batch(self, images: Sequence[np.ndarray]) -> dict:
        """Queries as the model's ``predict`` takes them.

        Args:
            images (list[np.ndarray]): ``[H, W, 3]`` uint8 RGB queries.

        Returns:
            dict: ``inputs`` (``[N, 3, h, w]`` normalised, on the device) and
            ``data_samples`` (with ``ori_shape`` / ``img_shape``).
        """
        inputs, samples = [], []
        for q in images:
            res = self.preprocess(q)
            s = EpisodeDataSample()
            s.set_metainfo(dict(ori_shape=q.shape[:2], img_shape=res['img'].shape[:2]))
            samples.append(s)
            inputs.append(self.to_chw(res['img']))
        return self.model.data_preprocessor(dict(inputs=inputs, data_samples=samples))

    def set_support(
        self,
        images: Union[ImageLike, Sequence[ImageLike]],
        masks: Union[ImageLike, Sequence[ImageLike]],
        labels: Optional[Sequence[int]] = None,
        class_names: Optional[Sequence[str]] = None,
        empty: str = 'warn',
    ) -> None:
        """Encode and pin a support set (K images with their masks).

        An empty support mask (after resizing and thresholding) adds no
        foreground: with the prototype matcher, a way whose supports are all
        empty is never predicted. A full one adds no background: if every
        support is full, every query pixel is predicted foreground. Both
        warn (or raise, ``empty='error'``), naming the support.

        Args:
            images (list[str | Path | ndarray | Tensor | PIL.Image]): Support
                images (arrays are RGB, see the class docstring); one item is
                one support.
            masks (list[str | Path | ndarray | Tensor | PIL.Image]): Their
                masks (0/255, 0/1, bool, soft ``[0, 1]`` floats, ...).
            labels (list[int], optional): Way of each support (N-way):
                integers covering 1..N; all 1 when None.
            class_names (list[str], optional): Name of each way 1..N (the
                results' ``class_names[1:]``); ``defect`` (one way) or
                ``defect_<k>`` when None.
            empty (str): ``'warn'`` or ``'error'`` for an empty or full mask.

        Raises:
            ValueError: Different numbers of images and masks or labels, a
                mask of another size than its image, labels outside 1..N,
                class names not matching the ways, an empty / full mask with
                ``empty='error'``, or an input outside the conventions
                (named by argument).
            TypeError: An argument of an unsupported type.
        """
        if empty not in ('warn', 'error'):
            raise ValueError(f'empty must be "warn" or "error", got {empty!r}')
        images = _as_items(images, 'images', batch_ndim=4)
        masks = _as_items(masks, 'masks', batch_ndim=None)
        if len(images) != len(masks) or not images:
            raise ValueError(
                f'set_support needs as many masks as images '
                f'(got {len(images)} images, {len(masks)} masks;'
                ' pass masks as a list of [H, W] masks)'
            )
        lab = self._check_labels(labels, len(images))
        n_ways = int(lab.max())
        if class_names is None:
            class_names = (
                ['defect']
                if n_ways == 1
                else [f'defect_{k}' for k in range(1, n_ways + 1)]
            )
        class_names = [str(c) for c in class_names]
        if len(class_names) != n_ways or len(set(class_names)) != n_ways:
            raise ValueError(
                f'class_names must be {n_ways} distinct names (one per way), '
                f'got {class_names}'
            )
        imgs, ms, names = [], [], []
        for i, (im, m) in enumerate(zip(images, masks)):
            im = self.load_image(im, f'images[{i}]')
            name = f'masks[{i}]' + (f' ({os.fspath(m)})' if is_path(m) else '')
            m = self.load_mask(m, name)
            if m.shape[:2] != im.shape[:2]:
                files = ''
                if is_path(masks[i]) and is_path(images[i]):
                    files = (
                        f' (mask {os.fspath(masks[i])}, image {os.fspath(images[i])})'
                    )
                raise ValueError(
                    f'support {i}: mask is {m.shape[:2]} but image is '
                    f'{im.shape[:2]} (H, W){files}'
                )
            imgs.append(im)
            ms.append(m)
            names.append(name)
        res = self.preprocess(imgs[0], imgs, ms)
        t_imgs, t_masks = [], []
        for i, (im, m) in enumerate(zip(res['support_imgs'], res['support_masks'])):
            fg = np.asarray(m) > 0  # 0/1 after BinarizeEpisodeMasks
            if not fg.any() or fg.all():
                msg = (
                    f'{names[i]} is {"empty" if not fg.any() else "full"} at the '
                    f'network size {self.scale[0]}x{self.scale[1]} (mask > '
                    f'{self.mask_threshold}): support {i} adds no '
                    f'{"foreground" if not fg.any() else "background"}'
                )
                if empty == 'error':
                    raise ValueError(msg)
                warnings.warn(msg)
            t_imgs.append(self.to_chw(im))
            t_masks.append(torch.from_numpy(fg.astype(np.int64)))
        self.model.set_support(
            torch.stack(t_imgs).to(self.device),
            torch.stack(t_masks).to(self.device),
            lab.to(self.device),
        )
        self.class_names = ('background', *class_names)
        self._support = len(t_imgs)

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

    # ------------------------------------------------------------------
    # queries
    # ------------------------------------------------------------------
    @torch.no_grad()
    def predict_arrays(
        self, images: Sequence[np.ndarray]
    ) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Segment RGB queries in one forward pass.

        Args:
            images (list[np.ndarray]): ``[H, W, 3]`` uint8 RGB queries.

        Returns:
            list[tuple]: Per query, at its original size, the ``[H, W]``
            uint8 label map (nearest-neighbour resize of ``pred_sem_seg``)
            and the ``[H, W]`` float32 defect score
            ``1 - softmax(seg_logits)[0]`` (bilinear resize).
        """
        if self._support is None:
            raise RuntimeError('call set_support() before segmenting queries')
        if not len(images):
            return []
        data = self.query_batch(images)
        out = []
        for q, r in zip(
            images, self.model.predict(data['inputs'], data['data_samples'])
        ):
            size = (q.shape[1], q.shape[0])
            pred = r.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
            logits = r.seg_logits.data.float()
            score = (1 - torch.softmax(logits, 0)[0]).cpu().numpy().astype(np.float32)
            out.append(
                (
                    cv2.resize(pred, size, interpolation=cv2.INTER_NEAREST),
                    np.clip(
                        cv2.resize(score, size, interpolation=cv2.INTER_LINEAR), 0, 1
                    ),
                )
            )
        return out

    def predict_batch(
        self,
        items: Sequence[Tuple[str, np.ndarray]],
        threshold: Optional[float] = None,
    ) -> List[FewShotResult]:
        """Results of named RGB queries (one forward pass).

        The interface ``fdseg predict`` calls on every source of
        predictions.

        Args:
            items (list[tuple[str, np.ndarray]]): ``(name, [H, W, 3] uint8
                RGB)`` as :class:`~fdseg.apis.ImageSource` yields them.
            threshold (float, optional): Image-level decision threshold (see
                :meth:`FewShotResult.from_maps`).
        """
        maps = self.predict_arrays([img for _, img in items])
        return [
            FewShotResult.from_maps(
                name, mask, score, self.class_names, image=img, threshold=threshold
            )
            for (name, img), (mask, score) in zip(items, maps)
        ]

    def stream(
        self,
        source,
        batch_size: int = 8,
        threshold: Optional[float] = None,
        on_error: Optional[Callable[[str, Exception], None]] = None,
        recursive: bool = False,
    ) -> Iterator[FewShotResult]:
        """Yield a :class:`~fdseg.apis.FewShotResult` per query, lazily.

        Args:
            source: Path, folder, glob, ``Path``, PIL image, RGB array,
                tensor or a list of them (:class:`~fdseg.apis.ImageSource`),
                or an :class:`~fdseg.apis.ImageSource`.
            batch_size (int): Queries per forward pass.
            threshold (float, optional): Image-level decision threshold.
            on_error (callable, optional): ``on_error(name, exc)`` for an
                input that cannot be read, which is then skipped; None
                raises.
            recursive (bool): List folders recursively.
        """
        if self._support is None:
            raise RuntimeError('call set_support() before segmenting queries')
        if not isinstance(source, ImageSource):
            source = ImageSource(
                source,
                recursive=recursive,
                bit_depth=self.image_bit_depth,
                on_error=on_error,
                arg='queries',
            )
        chunk = []
        for item in source:
            chunk.append(item)
            if len(chunk) == batch_size:
                yield from self.predict_batch(chunk, threshold)
                chunk = []
        if chunk:
            yield from self.predict_batch(chunk, threshold)

    def predict(
        self,
        source,
        batch_size: int = 8,
        threshold: Optional[float] = None,
        on_error: Optional[Callable[[str, Exception], None]] = None,
        recursive: bool = False,
    ) -> List[FewShotResult]:
        """:meth:`stream` as a list (same arguments)."""
        return list(self.stream(source, batch_size, threshold, on_error, recursive))

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
        if isinstance(queries, (list, tuple)) and not queries:
            return []
        return [r.mask for r in self.stream(queries, batch_size)]
