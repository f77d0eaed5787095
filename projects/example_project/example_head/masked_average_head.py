"""A downstream few-shot head: one masked-average prototype per class.

This is the PANet-style baseline (a single foreground and a single
background prototype by masked average pooling, cosine similarity). It lives
outside fdseg and registers itself into fdseg's MODELS registry; a config
loads it with ``custom_imports``.
"""

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from fdseg.models.heads import BaseFewShotHead
from fdseg.registry import MODELS


@MODELS.register_module()
class MaskedAverageHead(BaseFewShotHead):
    """Masked average pooling prototypes + cosine similarity.

    Args:
        temperature (float): Logit scale.
        **kwargs: :class:`BaseFewShotHead` arguments.
    """

    def __init__(self, temperature: float = 20.0, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature

    def encode_support(
        self,
        support_feats: Tensor,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ) -> Dict:
        """``[S, C, h, w]`` features -> ``[2, C]`` bg/fg prototypes."""
        support_feats = self.select_level(support_feats)  # in_index
        m = self.downsample_support_masks(support_masks, support_feats.shape[-2:])[
            :, None
        ]
        fg = (support_feats * m).sum((0, 2, 3)) / m.sum().clamp_min(1e-6)
        bg = (support_feats * (1 - m)).sum((0, 2, 3)) / (1 - m).sum().clamp_min(1e-6)
        return dict(protos=F.normalize(torch.stack([bg, fg]), dim=1))

    def forward(self, query_feats, supports: List[Dict]) -> Tensor:
        """``[B, C, h, w]`` -> ``[B, 2, h, w]`` cosine logits."""
        query_feats = self.select_level(query_feats)
        q = F.normalize(query_feats, dim=1)
        protos = torch.stack([s['protos'] for s in supports])  # [B, 2, C]
        return torch.einsum('bchw,bkc->bkhw', q, protos) * self.temperature
