"""Inference API: pin a support set once, then segment a stream of queries.

Example::

    from fdseg.apis import FewShotInferencer
    inf = FewShotInferencer('configs/quickstart/...py', checkpoint=None)
    inf.set_support(['s1.png'], ['s1_mask.png'])
    masks = inf(['q1.png', 'q2.png'])      # list of [H, W] uint8 0/1
"""
from typing import List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from fdseg.datasets.transforms import read_image, read_mask
from fdseg.registry import MODELS
from fdseg.structures import EpisodeDataSample

ImageLike = Union[str, np.ndarray]


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build a model from a config and optionally load an fdseg checkpoint.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): An fdseg training checkpoint (trusted:
            loaded with ``weights_only=False``). Pretrained third-party
            weights come through the model's ``init_cfg`` instead.
        device (str): Device.
        cfg_options (dict, optional): Overrides merged into the config.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'fdseg'))
    import fdseg.utils
    fdseg.utils.register_all_modules(init_default_scope=False)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if checkpoint is not None:
        from fdseg.engine.checkpoint import trusted_checkpoint_loading
        with trusted_checkpoint_loading():
            load_checkpoint(model, checkpoint, map_location='cpu')
    model.cfg = cfg
    return model.to(device).eval()


def _test_scale(cfg: Config):
    """The ``ResizeEpisode`` scale of the config's test pipeline, if any."""
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get(
        'pipeline', [])
    for t in pipeline:
        if t.get('type') == 'ResizeEpisode':
            s = t.get('scale', (256, 256))
            return (s, s) if isinstance(s, int) else tuple(s)
    return None


class FewShotInferencer:
    """Segment queries against a pinned support set.

    Images are read and resized as in the config's test pipeline; masks are
    thresholded after resizing (``mask_threshold``, 30 as in GFDS; use 127
    for clean 0/255 masks). Predictions are returned at each query's
    original size.

    Args:
        model (str | Config | nn.Module): Config (file) or a built model.
        checkpoint (str, optional): fdseg checkpoint for a config.
        device (str): Device.
        scale (tuple[int, int], optional): Network input ``(w, h)``;
            defaults to the config's test pipeline, else 256x256.
        mask_threshold (int): Support-mask threshold after resizing.
    """

    def __init__(self,
                 model,
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 scale=None,
                 mask_threshold: int = 30):
        if not isinstance(model, torch.nn.Module):
            model = init_model(model, checkpoint, device)
        self.model = model.eval()
        self.device = device
        cfg = getattr(model, 'cfg', None)
        self.scale = tuple(scale) if scale is not None else (
            _test_scale(cfg) if cfg is not None else None) or (256, 256)
        self.mask_threshold = mask_threshold
        self._support = None

    def _load_img(self, img: ImageLike) -> np.ndarray:
        if isinstance(img, str):
            img = read_image(img)
        elif img.ndim == 2:
            img = np.repeat(img[..., None], 3, 2)
        return img

    def _to_tensor(self, img: np.ndarray) -> torch.Tensor:
        img = cv2.resize(img, self.scale, interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

    def set_support(self,
                    images: Sequence[ImageLike],
                    masks: Sequence[ImageLike],
                    labels: Optional[Sequence[int]] = None) -> None:
        """Encode and pin a support set (K images with their masks).

        Args:
            images (list[str | ndarray]): RGB images or paths.
            masks (list[str | ndarray]): Masks (0/255 or 0/1) or paths.
            labels (list[int], optional): Way of each support (N-way).

        Raises:
            ValueError: Different numbers of images and masks, or a mask of
                another size than its image.
        """
        if len(images) != len(masks) or not images:
            raise ValueError(f'set_support needs as many masks as images '
                             f'(got {len(images)} images, {len(masks)} masks)')
        imgs, ms = [], []
        for i, (im, m) in enumerate(zip(images, masks)):
            im = self._load_img(im)
            m = read_mask(m) if isinstance(m, str) else np.asarray(m)
            if m.shape[:2] != im.shape[:2]:
                raise ValueError(f'support {i}: mask is {m.shape[:2]} but '
                                 f'image is {im.shape[:2]}')
            if m.max(initial=0) <= 1:
                m = m.astype(np.uint8) * 255
            m = cv2.resize(m.astype(np.uint8), self.scale,
                           interpolation=cv2.INTER_LINEAR)
            imgs.append(self._to_tensor(im))
            ms.append(torch.from_numpy(
                (m > self.mask_threshold).astype(np.int64)))
        lab = torch.as_tensor(labels if labels is not None else [1] *
                              len(imgs))
        self.model.set_support(
            torch.stack(imgs).to(self.device), torch.stack(ms).to(self.device),
            lab.to(self.device))
        self._support = len(imgs)

    @torch.no_grad()
    def __call__(self, queries: Union[ImageLike, Sequence[ImageLike]],
                 batch_size: int = 8) -> List[np.ndarray]:
        """Segment queries; returns ``[H, W]`` uint8 label maps (0 = bg)."""
        if self._support is None:
            raise RuntimeError('call set_support() before segmenting queries')
        if isinstance(queries, (str, np.ndarray)):
            queries = [queries]
        out = []
        for b in range(0, len(queries), batch_size):
            chunk = [self._load_img(q) for q in queries[b:b + batch_size]]
            samples = []
            for q in chunk:
                s = EpisodeDataSample()
                s.set_metainfo(
                    dict(ori_shape=q.shape[:2],
                         img_shape=(self.scale[1], self.scale[0])))
                samples.append(s)
            data = self.model.data_preprocessor(
                dict(inputs=[self._to_tensor(q) for q in chunk],
                     data_samples=samples))
            res = self.model.predict(data['inputs'], data['data_samples'])
            for q, r in zip(chunk, res):
                pred = r.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
                out.append(
                    cv2.resize(pred, (q.shape[1], q.shape[0]),
                               interpolation=cv2.INTER_NEAREST))
        return out
