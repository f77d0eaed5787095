"""Trivial reference heads: what any method must beat on a benchmark."""

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from fdseg.registry import MODELS

from .base_few_shot_head import BaseFewShotHead


@MODELS.register_module()
class AllBackgroundHead(BaseFewShotHead):
    """Predict background everywhere (mIoU 0, FB-IoU about 50)."""

    def encode_support(
        self,
        support_feats,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ) -> Dict:
        """Nothing to encode: the head ignores the supports."""
        return {}

    def forward(self, query_feats, supports: List[Dict]) -> Tensor:
        """All-background logits ``[B, 2, H, W]``."""
        query_feats = self.select_level(query_feats)
        b, _, h, w = query_feats.shape
        logits = query_feats.new_zeros(b, 2, h, w)
        logits[:, 0] = 1
        return logits


@MODELS.register_module()
class PasteSupportMaskHead(BaseFewShotHead):
    """Paste the support mask at the same place in the query.

    Predicts the union of the K support masks of the query's way (defects
    that sit at a fixed place on a part are found by position alone). The
    masks are resized to the query's input size with nearest neighbour.
    """

    def encode_support(
        self,
        support_feats,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ) -> Dict:
        """Keep the union of the support masks ``[H, W]`` (pasted later)."""
        return dict(mask=support_masks.amax(0).float())

    def forward(self, query_feats, supports: List[Dict]) -> Tensor:
        """Two-class logits ``[B, 2, H, W]`` from the pasted support union."""
        masks = torch.stack([s['mask'] for s in supports])[:, None]
        return torch.cat([1 - masks, masks], 1)

    def predict_by_feat(self, logits: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Resize the logits to the input size (nearest: masks stay binary)."""
        size = tuple(batch_img_metas[0]['img_shape'][:2])
        return F.interpolate(logits, size, mode='nearest')
