"""The one base class of fdseg's few-shot segmentors."""

from abc import ABCMeta, abstractmethod
from typing import Dict, Optional, Sequence

import torch
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from torch import Tensor

from .support_cache import SupportCacheMixin


class BaseFewShotSegmentor(SupportCacheMixin, BaseModel, metaclass=ABCMeta):
    """What every few-shot segmentor shares.

    Call flow::

        forward(inputs, data_samples, mode)
          ├─ 'loss'    ─ loss(inputs, data_samples)    ─ dict of losses
          ├─ 'predict' ─ predict(inputs, data_samples) ─ data_samples with
          │               seg_logits [N+1,H,W], pred_sem_seg [1,H,W]
          └─ 'tensor'  ─ _forward(inputs, data_samples) ─ logits [B,N+1,H,W]
        each of them:  data_samples ─ _support_states ─ encode_support
                       (pinned by set_support, else LRU by support_key)

    Predictions are at the network input size (``img_shape``), where GFDS
    evaluates; mapping them to ``ori_shape`` is the metric's and the
    inferencer's job (both read ``ori_shape`` from the metainfo).

    Subclasses implement :meth:`encode_support`, :meth:`loss`,
    :meth:`predict` and :meth:`_forward`.

    Args:
        data_preprocessor (dict, optional): Defaults to
            ``EpisodeDataPreprocessor`` (ImageNet statistics).
        support_cache_size (int): Support states kept (LRU keyed by the
            episode's ``support_key``); 0 disables caching.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        data_preprocessor: Optional[dict] = None,
        support_cache_size: int = 8,
        init_cfg: Optional[dict] = None,
    ):
        if data_preprocessor is None:
            data_preprocessor = dict(type='EpisodeDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._init_support_cache(support_cache_size)

    # ------------------------------------------------------------------
    # support sets
    # ------------------------------------------------------------------
    @abstractmethod
    def encode_support(
        self,
        support_imgs: Tensor,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ):
        """Encode one support set (normalised images) into a state.

        Args:
            support_imgs (Tensor): ``[S, 3, H, W]`` normalised by the data
                preprocessor.
            support_masks (Tensor): ``[S, H, W]`` binary.
            support_labels (Tensor, optional): ``[S]`` way labels 1..N.
        """

    def encode_raw_support(
        self,
        support_imgs: Tensor,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ):
        """:meth:`encode_support` for RGB images in 0..255 (uint8)."""
        imgs = self.data_preprocessor.normalize(
            support_imgs.to(self.data_preprocessor.mean.device)
        )
        return self.encode_support(imgs, support_masks.to(imgs.device), support_labels)

    def set_support(
        self,
        support_imgs: Tensor,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ) -> None:
        """Pin a support set: every following query is matched against it.

        Args:
            support_imgs (Tensor): ``[S, 3, H, W]`` RGB in 0..255 (uint8).
            support_masks (Tensor): ``[S, H, W]`` binary.
            support_labels (Tensor, optional): ``[S]`` way index.
        """
        with torch.no_grad():
            self._pinned = self.encode_raw_support(
                support_imgs, support_masks, support_labels
            )

    # clear_support() comes from SupportCacheMixin.

    def train(self, mode: bool = True):
        """Set the mode; entering training forgets cached support states.

        States encoded with the weights of an earlier evaluation (the
        validation loop, the train-mIoU hook) would be stale once the
        weights change.
        """
        if mode:
            self.clear_support()
        return super().train(mode)

    # ------------------------------------------------------------------
    # BaseModel API
    # ------------------------------------------------------------------
    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor'):
        """Dispatch to :meth:`loss`, :meth:`predict` or :meth:`_forward`.

        Args:
            inputs (Tensor): ``[B, 3, H, W]`` normalised query images.
            data_samples (list[EpisodeDataSample]): The episodes.
            mode (str): ``'loss'``, ``'predict'`` or ``'tensor'``.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}"; use loss, predict or tensor')

    @abstractmethod
    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        """Losses of a batch of episodes."""

    @abstractmethod
    def predict(self, inputs: Tensor, data_samples) -> list:
        """Segment the queries; fills ``seg_logits`` and ``pred_sem_seg``."""

    @abstractmethod
    def _forward(self, inputs: Tensor, data_samples) -> Tensor:
        """Raw ``[B, N+1, h, w]`` logits (``mode='tensor'``)."""

    @staticmethod
    def add_pred_to_datasample(
        data_samples: Sequence, seg_logits: Sequence[Tensor], preds: Sequence[Tensor]
    ) -> Sequence:
        """Store the predictions in each sample.

        ``seg_logits`` is ``[N+1, H, W]``, ``pred_sem_seg`` ``[1, H, W]``
        (way index, 0 = background).
        """
        for s, lg, p in zip(data_samples, seg_logits, preds):
            s.seg_logits = PixelData(data=lg)
            s.pred_sem_seg = PixelData(data=p.reshape(1, *p.shape[-2:]).long())
        return data_samples
