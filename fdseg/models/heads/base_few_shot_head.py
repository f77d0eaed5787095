"""Base class of few-shot heads."""

from abc import ABCMeta, abstractmethod
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from fdseg.models.utils import downsample_mask
from fdseg.registry import MODELS


class BaseFewShotHead(BaseModule, metaclass=ABCMeta):
    """A few-shot head: support features + masks and query features -> logits.

    The support set is encoded once by :meth:`encode_support` into a
    *support state* (e.g. prototypes) that :meth:`forward` reuses for any
    number of queries, so a production line pays only for the query.

    Call flow (mmsegmentation style)::

        loss    = forward(query_feats, support) + loss_by_feat(logits, samples)
        predict = forward(query_feats, support) + predict_by_feat(logits, metas)

    Args:
        num_ways (int): Maximum number of ways N; logits have ``N + 1``
            channels (background first).
        mask_downsample (str): Mode of :func:`downsample_mask`.
        align_corners (bool): Of the final logit upsampling.
        loss_decode (dict, optional): Loss config for training heads.
        ignore_index (int): Label ignored by the loss.
        in_index (int): Level picked from a multi-level backbone output
            (a tuple of ``[B, C, h, w]``), as mmseg heads do; -1 (the last,
            deepest level) by default. A single tensor is used as is.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        num_ways: int = 1,
        mask_downsample: str = 'cover',
        align_corners: bool = False,
        loss_decode: Optional[dict] = None,
        ignore_index: int = 255,
        in_index: int = -1,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg)
        self.in_index = in_index
        self.num_ways = num_ways
        self.mask_downsample = mask_downsample
        self.align_corners = align_corners
        self.ignore_index = ignore_index
        self.loss_decode = MODELS.build(loss_decode) if loss_decode else None

    def select_level(self, feats: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """The ``in_index`` level of a backbone output.

        As mmseg's ``_transform_inputs`` with a single index; a plain tensor
        passes through.
        """
        if isinstance(feats, (list, tuple)):
            return feats[self.in_index]
        return feats

    def downsample_support_masks(
        self, masks: Tensor, size, align_corners: bool = False
    ) -> Tensor:
        """``[S, H, W]`` -> ``[S, h, w]`` with the shared utility.

        Every head downsamples support masks here, so the paper's rule
        (Sec. 6: bilinear, nearest where a small defect would vanish;
        ``mask_downsample='bilinear_nearest'``) is one config key.

        Args:
            masks (Tensor): ``[S, H, W]`` binary masks.
            size (tuple[int, int]): Feature size ``(h, w)``.
            align_corners (bool): Of the bilinear modes (the official
                PFENet / SSP / HSNet / PATNet codes use True).

        Returns:
            Tensor: ``[S, h, w]`` float masks.
        """
        return downsample_mask(
            masks, size, self.mask_downsample, align_corners=align_corners
        )

    def encode_support(
        self,
        support_feats,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ) -> Dict:
        """Encode one episode's support set.

        Args:
            support_feats (Tensor | tuple[Tensor]): ``[S, C, h, w]``.
            support_masks (Tensor): ``[S, H, W]`` binary.
            support_labels (Tensor, optional): ``[S]`` way labels 1..N.

        Returns:
            dict: The support state consumed by :meth:`forward`.
        """
        if support_labels is None:
            support_labels = support_masks.new_ones(support_masks.shape[0])
        return dict(feats=support_feats, masks=support_masks, labels=support_labels)

    @abstractmethod
    def forward(self, query_feats, supports: List[Dict]) -> Tensor:
        """Match queries against their support states.

        Args:
            query_feats (Tensor | tuple[Tensor]): ``[B, C, h, w]``.
            supports (list[dict]): One support state per query.

        Returns:
            Tensor: ``[B, N + 1, h', w']`` logits / similarity maps.
        """

    def loss(
        self, query_feats, supports: List[Dict], batch_data_samples: Sequence
    ) -> Dict[str, Tensor]:
        """Forward + loss_by_feat."""
        logits = self.forward(query_feats, supports)
        return self.loss_by_feat(logits, batch_data_samples)

    def loss_by_feat(
        self, logits: Tensor, batch_data_samples: Sequence
    ) -> Dict[str, Tensor]:
        """Cross entropy of the upsampled logits against the query masks."""
        if self.loss_decode is None:
            raise RuntimeError(
                f'{type(self).__name__} has no loss_decode: it is '
                'training-free; evaluate it with tools/test.py'
            )
        gt = torch.stack([s.gt_sem_seg.data[0] for s in batch_data_samples])
        logits = F.interpolate(
            logits, gt.shape[-2:], mode='bilinear', align_corners=self.align_corners
        )
        return dict(loss_seg=self.loss_decode(logits, gt.long()))

    def predict(
        self, query_feats, supports: List[Dict], batch_img_metas: List[dict]
    ) -> Tensor:
        """Forward + predict_by_feat."""
        logits = self.forward(query_feats, supports)
        return self.predict_by_feat(logits, batch_img_metas)

    def predict_by_feat(self, logits: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Upsample logits to the (resized) input size ``img_shape``.

        Returns:
            Tensor: ``[B, N + 1, H, W]``.
        """
        size = tuple(batch_img_metas[0]['img_shape'][:2])
        if tuple(logits.shape[-2:]) == size:
            return logits
        return F.interpolate(
            logits, size, mode='bilinear', align_corners=self.align_corners
        )
