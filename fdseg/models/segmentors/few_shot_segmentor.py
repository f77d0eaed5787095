"""Backbone + few-shot head (+ optional refiner) segmentor."""
from typing import Dict, Optional, Tuple

import torch
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from torch import Tensor

from fdseg.registry import MODELS
from .support_cache import SupportCacheMixin


@MODELS.register_module()
class FewShotSegmentor(SupportCacheMixin, BaseModel):
    """Few-shot segmentor: the composition used by most fdseg methods.

    Call flow::

        support imgs [S,3,H,W] ─ backbone ─┐
        support masks [S,H,W] ─────────────┴─ head.encode_support ─ state
                                                   (cached per support set)
        query [B,3,H,W] ─ backbone ─ head.predict(feats, states)
                        ─ seg_logits [B,N+1,H,W] ─ argmax ─ R0 [B,H,W]
                        ─ refiner(query image, R0)  (optional) ─ R [B,H,W]

    Support states are cached by the episode's ``support_key`` (support file
    paths + size) in an LRU of ``support_cache_size`` entries, and can be
    pinned with :meth:`set_support` for streams of queries.

    Args:
        backbone (dict): Feature extractor config.
        head (dict): Few-shot head config.
        refiner (dict, optional): Refiner config (FastSAM fusion, ...).
        data_preprocessor (dict, optional): Defaults to
            ``EpisodeDataPreprocessor`` with ImageNet statistics.
        freeze_backbone (bool): Keep the backbone frozen and in eval mode
            (training-free methods and frozen-encoder heads).
        support_cache_size (int): Support states kept; 0 disables caching.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 refiner: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 freeze_backbone: bool = True,
                 support_cache_size: int = 8,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='EpisodeDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.head = MODELS.build(head)
        self.refiner = MODELS.build(refiner) if refiner else None
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)
        self._init_support_cache(support_cache_size)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    # ------------------------------------------------------------------
    def extract_feat(self, imgs: Tensor):
        """``[B, 3, H, W]`` normalised images -> backbone features."""
        if self.freeze_backbone:
            with torch.no_grad():
                return self.backbone(imgs)
        return self.backbone(imgs)

    def encode_support(self, support_imgs: Tensor, support_masks: Tensor,
                       support_labels: Optional[Tensor] = None) -> Dict:
        """Encode one support set (normalised images) into a head state.

        Args:
            support_imgs (Tensor): ``[S, 3, H, W]`` normalised.
            support_masks (Tensor): ``[S, H, W]`` binary.
            support_labels (Tensor, optional): ``[S]`` way labels.
        """
        feats = self.extract_feat(support_imgs)
        return self.head.encode_support(feats, support_masks, support_labels)

    def set_support(self, support_imgs: Tensor, support_masks: Tensor,
                    support_labels: Optional[Tensor] = None) -> None:
        """Pin a support set: every following query is matched against it.

        ``support_imgs`` are uint8 ``[S, 3, H, W]`` (normalised here).
        """
        imgs = self.data_preprocessor.normalize(
            support_imgs.to(self.data_preprocessor.mean.device))
        with torch.no_grad():
            self._pinned = self.encode_support(
                imgs, support_masks.to(imgs.device), support_labels)


    # ------------------------------------------------------------------
    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}"; use loss, predict or '
                           'tensor')

    def _forward(self, inputs: Tensor, data_samples) -> Tensor:
        states = self._support_states(data_samples, use_cache=False)
        return self.head.forward(self.extract_feat(inputs), states)

    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        states = self._support_states(data_samples, use_cache=False)
        return self.head.loss(self.extract_feat(inputs), states, data_samples)

    def predict(self, inputs: Tensor, data_samples) -> list:
        """Segment the queries; fills ``seg_logits`` and ``pred_sem_seg``.

        ``pred_sem_seg`` is at the network input size (``img_shape``), where
        GFDS evaluates; ``ori_shape`` in the metainfo maps it back.
        """
        states = self._support_states(data_samples, use_cache=not self.training)
        metas = [s.metainfo for s in data_samples]
        logits = self.head.predict(self.extract_feat(inputs), states, metas)
        pred = logits.argmax(1)
        if self.refiner is not None:
            imgs = self.data_preprocessor.denormalize(inputs)
            pred = self.refiner.refine(imgs, pred, data_samples)
        for s, lg, p in zip(data_samples, logits, pred):
            s.seg_logits = PixelData(data=lg)
            s.pred_sem_seg = PixelData(data=p[None].long())
        return data_samples

    @staticmethod
    def pred_to_original(pred: Tensor, ori_shape: Tuple[int, int]) -> Tensor:
        """Nearest-resize a ``[H, W]`` label map to the original size."""
        return torch.nn.functional.interpolate(
            pred[None, None].float(), tuple(ori_shape[:2]),
            mode='nearest')[0, 0].long()
