"""SSP: self-support prototypes (Fan et al., ECCV 2022), as officially coded.

Reference: ``fanq15/SSP`` ``model/SSP_matching.py`` (``SSP_MatchingNet``
with ``refine=True``, as the official ``all.sh`` trains it) and ``main.py``
(loss, SGD). The head is decoder-free: it only has the backbone's features
(deep-stem ResNet-50 up to a dilated layer3 without its last ReLU), so with
the ImageNet backbone it is a training-free baseline ("SSP before training",
epoch 0 in the GFDS paper, Sec. 6.4).

Call flow::

    support layer3 [S,C,h,w] + mask ── masked average ── FP, BP (mean over
                                                           shots)
    query layer3 [B,C,h,w] ── cos(q, FP), cos(q, BP) x10 ── out0
      ── self-support (softmax > 0.7 fg / > 0.6 bg, else top-12):
         SSFP, SSBP (means), ASBP (per-pixel attention over bg pixels)
      ── FP1 = 0.5 FP + 0.5 SSFP, BP1 = 0.3 SSBP + 0.7 ASBP ── out1
      ── refine: self-support again on out1 ── FP2, BP2 (0.5/0.2/0.3 mix)
         ── out2 = 0.7 cos(q, FP2, BP2) + 0.3 out1    [B, 2, h, w]

Training adds the query's self-similarity to its own ground-truth
prototypes and the supports' similarity to their prototypes:
``loss = CE(out2) + CE(out1) + CE(self) + 0.2 * CE(support)``.
"""

import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from fdseg.models.utils.mask_ops import masked_average_pool
from fdseg.registry import MODELS

from .base_few_shot_head import BaseFewShotHead


@MODELS.register_module()
class SSPHead(BaseFewShotHead):
    """Self-support matching head (1-way, no learnable parameters).

    Args:
        in_index (int): Backbone level used (layer3, the last; -1).
        refine (bool): The second self-support pass (official: True).
        scale (float): Cosine logit multiplier (10).
        fg_thresh (float): Query pixels with fg probability above this form
            the self-support foreground (0.7).
        bg_thresh (float): Same for background (0.6).
        topk (int): Pixels taken when none passes a threshold (12).
        local_temperature (float): Multiplier of the cosine before the
            softmax of the local (per-pixel) background prototype (2.0).
        fg_mix (tuple[float]): Weights of (support FP, self-support FP) (0.5,
            0.5).
        bg_mix (tuple[float]): Weights of (global SSBP, local ASBP) (0.3,
            0.7).
        refine_mix (tuple[float]): Weights of (P, P1, P2) for the refined
            prototypes (0.5, 0.2, 0.3).
        refine_out_mix (tuple[float]): Weights of (out2, out1) (0.7, 0.3).
        support_loss_weight (float): Of the support self-similarity CE (0.2).
        map_eps (float): Masked average pooling's denominator term (1e-5).
        mask_downsample (str): :func:`downsample_mask` mode; bilinear as the
            official code with GFDS's nearest fallback for small defects.
        align_corners (bool): Bilinear resizing (True, official).
        ignore_index (int): Of the cross entropies (255).
    """

    def __init__(
        self,
        in_index: int = -1,
        refine: bool = True,
        scale: float = 10.0,
        fg_thresh: float = 0.7,
        bg_thresh: float = 0.6,
        topk: int = 12,
        local_temperature: float = 2.0,
        fg_mix: Tuple[float, float] = (0.5, 0.5),
        bg_mix: Tuple[float, float] = (0.3, 0.7),
        refine_mix: Tuple[float, float, float] = (0.5, 0.2, 0.3),
        refine_out_mix: Tuple[float, float] = (0.7, 0.3),
        support_loss_weight: float = 0.2,
        map_eps: float = 1e-5,
        mask_downsample: str = 'bilinear_nearest',
        align_corners: bool = True,
        ignore_index: int = 255,
        num_ways: int = 1,
        init_cfg: Optional[dict] = None,
    ):
        if num_ways != 1:
            raise ValueError(f'SSPHead is 1-way, got num_ways={num_ways}')
        super().__init__(
            num_ways=1,
            mask_downsample=mask_downsample,
            align_corners=align_corners,
            ignore_index=ignore_index,
            in_index=in_index,
            init_cfg=init_cfg,
        )
        self.refine = refine
        self.scale = scale
        self.fg_thresh = fg_thresh
        self.bg_thresh = bg_thresh
        self.topk = topk
        self.local_temperature = local_temperature
        self.fg_mix = tuple(fg_mix)
        self.bg_mix = tuple(bg_mix)
        self.refine_mix = tuple(refine_mix)
        self.refine_out_mix = tuple(refine_out_mix)
        self.support_loss_weight = support_loss_weight
        self.map_eps = map_eps

    # ------------------------------------------------------------------
    def masked_average(self, feat: Tensor, mask: Tensor) -> Tensor:
        """Masked average pooling (official ``masked_average_pooling``).

        Args:
            feat (Tensor): ``[N, C, h, w]``.
            mask (Tensor): ``[N, H, W]`` binary (float).

        Returns:
            Tensor: ``[N, C]``.
        """
        m = self.downsample_support_masks(mask, feat.shape[-2:], self.align_corners)
        return masked_average_pool(feat, m, self.map_eps)

    def similarity(self, feat: Tensor, fg: Tensor, bg: Tensor) -> Tensor:
        """``[bg, fg]`` cosine logits times ``scale``.

        Args:
            feat (Tensor): ``[N, C, h, w]``.
            fg (Tensor): ``[N, C, 1, 1]`` or ``[N, C, h, w]`` prototypes.
            bg (Tensor): Same for the background.

        Returns:
            Tensor: ``[N, 2, h, w]``.
        """
        s_fg = F.cosine_similarity(feat, fg, dim=1)
        s_bg = F.cosine_similarity(feat, bg, dim=1)
        return torch.stack([s_bg, s_fg], 1) * self.scale

    def self_support(self, feat: Tensor, logits: Tensor) -> Tuple[Tensor, ...]:
        """Self-support prototypes of each query (official ``SSP_func``).

        Args:
            feat (Tensor): ``[B, C, h, w]`` query features.
            logits (Tensor): ``[B, 2, h, w]`` current prediction.

        Returns:
            tuple[Tensor]: global fg ``[B, C, 1, 1]``, global bg
            ``[B, C, 1, 1]``, local (per-pixel) bg ``[B, C, h, w]``. (The
            official code also builds a local fg prototype it never uses.)
        """
        B, C, h, w = feat.shape
        prob = logits.softmax(1).flatten(2)  # [B, 2, h*w]
        fgs, bgs, bg_locals = [], [], []
        for b in range(B):
            cur = feat[b].flatten(1)  # [C, N]
            sel = []
            for p, t in ((prob[b, 1], self.fg_thresh), (prob[b, 0], self.bg_thresh)):
                keep = p > t
                if keep.any():
                    sel.append(cur[:, keep])
                else:
                    sel.append(cur[:, p.topk(min(self.topk, p.numel())).indices])
            fg_feat, bg_feat = sel
            fgs.append(fg_feat.mean(-1))
            bgs.append(bg_feat.mean(-1))
            bg_norm = bg_feat / bg_feat.norm(2, 0, True)
            cur_norm = cur / cur.norm(2, 0, True)
            att = (cur_norm.t() @ bg_norm * self.local_temperature).softmax(-1)
            bg_locals.append((att @ bg_feat.t()).t().reshape(C, h, w))
        return (
            torch.stack(fgs)[..., None, None],
            torch.stack(bgs)[..., None, None],
            torch.stack(bg_locals),
        )

    # ------------------------------------------------------------------
    def encode_support(
        self,
        support_feats,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ) -> Dict:
        """Foreground / background prototypes of one episode.

        Args:
            support_feats (Tensor | tuple[Tensor]): ``[S, C, h, w]``.
            support_masks (Tensor): ``[S, H, W]`` binary (255 ignored).
            support_labels (Tensor, optional): ``[S]``; must be all 1.

        Returns:
            dict: ``fg``, ``bg`` ``[1, C, 1, 1]`` (means over shots); in
            training also ``logits`` ``[S, 2, h, w]`` (each support against
            its own prototypes) and ``masks``.
        """
        if support_labels is not None and bool((support_labels > 1).any()):
            raise ValueError('SSPHead is 1-way: support labels must be 1')
        feat = self.select_level(support_feats)
        fg_m = (support_masks == 1).float()
        empty = (fg_m.flatten(1).amax(1) == 0).nonzero().flatten().tolist()
        if empty:
            # The official code runs on (no NaN); say so instead of
            # silently matching against nothing.
            warnings.warn(
                f'support mask(s) {empty} of this episode have no defect '
                'pixel: SSP matches the query against a zero foreground prototype '
                '(as the official code does)',
                UserWarning,
                stacklevel=2,
            )
        fg = self.masked_average(feat, fg_m)
        bg = self.masked_average(feat, (support_masks == 0).float())
        state = dict(
            fg=fg.mean(0)[None, :, None, None], bg=bg.mean(0)[None, :, None, None]
        )
        if self.training:
            state['logits'] = self.similarity(
                feat, fg[..., None, None], bg[..., None, None]
            )
            state['masks'] = support_masks
        return state

    def _forward_all(self, query_feats, supports: List[Dict]):
        feat = self.select_level(query_feats)
        if len(supports) != feat.shape[0]:
            raise ValueError(f'{feat.shape[0]} queries but {len(supports)} supports')
        FP = torch.cat([s['fg'] for s in supports])
        BP = torch.cat([s['bg'] for s in supports])
        out0 = self.similarity(feat, FP, BP)
        ssfp, ssbp, asbp = self.self_support(feat, out0)
        FP1 = FP * self.fg_mix[0] + ssfp * self.fg_mix[1]
        BP1 = ssbp * self.bg_mix[0] + asbp * self.bg_mix[1]
        out1 = self.similarity(feat, FP1, BP1)
        if not self.refine:
            return out1, [out1]
        ssfp, ssbp, asbp = self.self_support(feat, out1)
        FP2 = FP * self.fg_mix[0] + ssfp * self.fg_mix[1]
        BP2 = ssbp * self.bg_mix[0] + asbp * self.bg_mix[1]
        a, b, c = self.refine_mix
        FP2 = FP * a + FP1 * b + FP2 * c
        BP2 = BP * a + BP1 * b + BP2 * c
        o2, o1 = self.refine_out_mix
        out2 = self.similarity(feat, FP2, BP2) * o2 + out1 * o1
        return out2, [out2, out1]

    def forward(self, query_feats, supports: List[Dict]) -> Tensor:
        """``[B, 2, h, w]`` logits (out2 with ``refine``, else out1)."""
        return self._forward_all(query_feats, supports)[0]

    def loss(
        self, query_feats, supports: List[Dict], batch_data_samples: Sequence
    ) -> Dict[str, Tensor]:
        """Official SSP loss.

        ``CE(out2) + CE(out1) + CE(self) + 0.2 * CE(support)``, every map
        upsampled bilinearly (``align_corners=True``) to the image size.

        Returns:
            dict: ``loss_seg`` (the query terms), ``loss_self`` and
            ``loss_support``.
        """
        _, outs = self._forward_all(query_feats, supports)
        feat = self.select_level(query_feats)
        gt = torch.stack([s.gt_sem_seg.data[0] for s in batch_data_samples]).long()
        fg_q = self.masked_average(feat, (gt == 1).float())
        bg_q = self.masked_average(feat, (gt == 0).float())
        self_out = self.similarity(feat, fg_q[..., None, None], bg_q[..., None, None])
        if any('logits' not in s for s in supports):
            raise RuntimeError('SSPHead.loss needs support states encoded in training')
        supp_out = torch.cat([s['logits'] for s in supports])
        supp_gt = torch.cat([s['masks'] for s in supports]).long()
        losses = dict(
            loss_seg=sum(self.ce(o, gt) for o in outs),
            loss_self=self.ce(self_out, gt),
            loss_support=self.support_loss_weight * self.ce(supp_out, supp_gt),
        )
        return losses

    def ce(self, logits: Tensor, gt: Tensor) -> Tensor:
        """Cross entropy (ignore 255) of logits upsampled to ``gt``'s size.

        Args:
            logits (Tensor): ``[N, 2, h, w]``.
            gt (Tensor): ``[N, H, W]`` labels.
        """
        logits = F.interpolate(
            logits, gt.shape[-2:], mode='bilinear', align_corners=self.align_corners
        )
        return F.cross_entropy(logits, gt, ignore_index=self.ignore_index)


__all__ = ['SSPHead']
