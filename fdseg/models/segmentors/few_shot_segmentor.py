"""Backbone + few-shot head (+ optional refiner) segmentor."""

from typing import Dict, Optional

import torch
from torch import Tensor

from fdseg.models.utils.mask_ops import argmax_labels
from fdseg.registry import MODELS

from .base import BaseFewShotSegmentor


@MODELS.register_module()
class FewShotSegmentor(BaseFewShotSegmentor):
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

    def __init__(
        self,
        backbone: dict,
        head: dict,
        refiner: Optional[dict] = None,
        data_preprocessor: Optional[dict] = None,
        freeze_backbone: bool = True,
        support_cache_size: int = 8,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(
            data_preprocessor=data_preprocessor,
            support_cache_size=support_cache_size,
            init_cfg=init_cfg,
        )
        self.backbone = MODELS.build(backbone)
        self.head = MODELS.build(head)
        self.refiner = MODELS.build(refiner) if refiner else None
        if hasattr(self.head, 'attach_backbone'):
            # Heads that run part of the backbone themselves (PFENet's prior
            # runs layer4 on the masked support layer3).
            self.head.attach_backbone(self.backbone)
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True):
        """Set the mode; a frozen backbone always stays in eval mode."""
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

    def encode_support(
        self,
        support_imgs: Tensor,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ) -> Dict:
        """Encode one support set (normalised images) into a head state.

        Args:
            support_imgs (Tensor): ``[S, 3, H, W]`` normalised.
            support_masks (Tensor): ``[S, H, W]`` binary.
            support_labels (Tensor, optional): ``[S]`` way labels.
        """
        feats = self.extract_feat(support_imgs)
        return self.head.encode_support(feats, support_masks, support_labels)

    # set_support / clear_support and forward(mode): BaseFewShotSegmentor.

    # ------------------------------------------------------------------
    def _forward(self, inputs: Tensor, data_samples) -> Tensor:
        states = self._support_states(data_samples, use_cache=False)
        return self.head.forward(self.extract_feat(inputs), states)

    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        """The head's losses on a batch of episodes."""
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
        pred = argmax_labels(logits, 1)
        if self.refiner is not None:
            imgs = self.data_preprocessor.denormalize(inputs)
            pred = self.refiner.refine(imgs, pred, data_samples)
        return self.add_pred_to_datasample(data_samples, logits, pred)
