"""HSNet: hypercorrelation squeeze networks (Min et al., ICCV 2021).

GFDS Table 4 rows "HSNet" (cross-domain) and "HSNet*" (in-domain). The
structure, kernel sizes, strides and K-shot protocol follow the official
code (github.com/juhongm999/hsnet, ``model/hsnet.py``, ``model/learner.py``,
``model/base/*``); the deviations are listed in docs/meta_learning.md.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fdseg.models.utils import CenterPivotConv4d
from fdseg.registry import MODELS

from .base_few_shot_head import BaseFewShotHead


def _building_block(
    in_channels: int,
    out_channels: Sequence[int],
    kernel_sizes: Sequence[int],
    support_strides: Sequence[int],
    groups: int,
) -> nn.Sequential:
    """Center-pivot 4D convs, each + GroupNorm + ReLU (official layout)."""
    layers = []
    for i, (c, k, s) in enumerate(zip(out_channels, kernel_sizes, support_strides)):
        layers += [
            CenterPivotConv4d(
                in_channels if i == 0 else out_channels[i - 1],
                c,
                (k,) * 4,
                (1, 1, s, s),
                (k // 2,) * 4,
            ),
            nn.GroupNorm(groups, c),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


@MODELS.register_module()
class HPNLearner(nn.Module):
    """HSNet's 4D-conv learner: squeeze, mix coarse-to-fine, decode.

    Per pyramid level three center-pivot 4D blocks (16 -> 64 -> 128
    channels, GroupNorm 4, ReLU) with the official kernel sizes / support
    strides (deepest level: 3,3,3 / 2,2,2; middle: 5,3,3 / 4,2,2; shallow:
    5,5,3 / 4,4,2); the deeper result is bilinearly resized over its query
    dims to the next level, added and mixed by three 128-channel blocks;
    the support dims are averaged; the 2D decoder is 128 -> 128 -> 64,
    x2 bilinear, 64 -> 64 -> 2. Module names match the official
    ``HPNLearner`` so its state dict loads one-to-one.

    Args:
        in_channels (Sequence[int]): Correlation channels per level, deepest
            first: ``(3, 6, 4)`` for ResNet-50 layer4 / layer3 / layer2.
        groups (int): GroupNorm groups (4).
    """

    def __init__(self, in_channels: Sequence[int] = (3, 6, 4), groups: int = 4):
        super().__init__()
        c1, c2, c3 = 16, 64, 128
        self.encoder_layer4 = _building_block(
            in_channels[0], [c1, c2, c3], [3, 3, 3], [2, 2, 2], groups
        )
        self.encoder_layer3 = _building_block(
            in_channels[1], [c1, c2, c3], [5, 3, 3], [4, 2, 2], groups
        )
        self.encoder_layer2 = _building_block(
            in_channels[2], [c1, c2, c3], [5, 5, 3], [4, 4, 2], groups
        )
        self.encoder_layer4to3 = _building_block(
            c3, [c3, c3, c3], [3, 3, 3], [1, 1, 1], groups
        )
        self.encoder_layer3to2 = _building_block(
            c3, [c3, c3, c3], [3, 3, 3], [1, 1, 1], groups
        )
        self.decoder1 = nn.Sequential(
            nn.Conv2d(c3, c3, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c3, c2, 3, padding=1),
            nn.ReLU(),
        )
        self.decoder2 = nn.Sequential(
            nn.Conv2d(c2, c2, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c2, 2, 3, padding=1),
        )

    @staticmethod
    def resize_query_dims(x: Tensor, size: Tuple[int, int]) -> Tensor:
        """Resize ``[B, C, Hq, Wq, Hs, Ws]`` over the query dims (bilinear).

        ``align_corners=True``, to ``size``.

        The official function is named ``interpolate_support_dims`` but
        resizes dims 2-3, the query ones (the support dims were already
        strided to a common size).
        """
        B, C, Hq, Wq, Hs, Ws = x.shape
        y = x.permute(0, 4, 5, 1, 2, 3).reshape(B * Hs * Ws, C, Hq, Wq)
        y = F.interpolate(y, size, mode='bilinear', align_corners=True)
        return y.view(B, Hs, Ws, C, *size).permute(0, 3, 4, 5, 1, 2).contiguous()

    def forward(self, pyramid: Sequence[Tensor]) -> Tensor:
        """Hypercorrelation pyramid -> 2-class logits.

        Args:
            pyramid (Sequence[Tensor]): Deepest level first,
                ``[N, n_l, Hq_l, Wq_l, Hs_l, Ws_l]`` (n = 3 / 6 / 4).

        Returns:
            Tensor: ``[N, 2, 2 Hq_2, 2 Wq_2]`` logits (twice the shallowest
            query feature size).
        """
        sqz4 = self.encoder_layer4(pyramid[0])
        sqz3 = self.encoder_layer3(pyramid[1])
        sqz2 = self.encoder_layer2(pyramid[2])
        mix43 = self.resize_query_dims(sqz4, sqz3.shape[2:4]) + sqz3
        mix43 = self.encoder_layer4to3(mix43)
        mix432 = self.resize_query_dims(mix43, sqz2.shape[2:4]) + sqz2
        mix432 = self.encoder_layer3to2(mix432)
        encoded = mix432.flatten(4).mean(-1)  # mean over the support dims
        decoded = self.decoder1(encoded)
        # Official: (2 W, 2 W), i.e. square inputs only; (2 H, 2 W) is the
        # same for square inputs and right for the others.
        size = (decoded.shape[-2] * 2, decoded.shape[-1] * 2)
        decoded = F.interpolate(decoded, size, mode='bilinear', align_corners=True)
        return self.decoder2(decoded)


@MODELS.register_module()
class HSNetHead(BaseFewShotHead):
    """HSNet head: multi-layer 4D correlation + center-pivot 4D learner.

    Call flow (one 1-shot pass per (query, support) pair, as official)::

        support feats (13 levels) x bilinear-resized mask ─ L2-normalise ─ state
        query feats (13 levels) ─ L2-normalise ─┐
        state ──────────────────────────────────┴─ cosine, clamp(min=0)
            ─ stack per stage: [N, n, Hq, Wq, Hs, Ws], n = 3 / 6 / 4
            ─ HPNLearner ─ [B, K, 2, h, w]           (forward)
        loss:    bilinear (align_corners) to the query size ─ 2-class CE
        predict: bilinear to img_shape ─ K = 1: logits;
                 K > 1: argmax per shot, vote, / max vote, >= 0.5

    Args:
        stage_sizes (Sequence[int]): Backbone features per stage, shallow
            first (ResNet-50 layer2..4: ``(4, 6, 3)``); the backbone output
            must hold ``sum(stage_sizes)`` levels.
        mask_downsample (str): Support-mask resizing
            (:func:`~fdseg.models.utils.downsample_mask`):
            ``'bilinear_nearest'`` (default; the paper's rule, Sec. 6: the
            official bilinear resize, nearest when a small defect would
            vanish) or ``'bilinear'`` (official).
        mask_align_corners (bool): Of the bilinear mask resize (official:
            True).
        corr_eps (float): Added to the feature norms (official 1e-5).
        vote_threshold (float): K-shot: foreground where
            ``votes / max(max votes, 1) >= vote_threshold`` (0.5).
        loss_weight (float): Weight of the cross entropy.
        ignore_index (int): Label ignored by the loss.
        align_corners (bool): Logit upsampling (official: True).
        learner (dict, optional): Overrides of the :class:`HPNLearner`
            config (``groups``).
        init_cfg (dict, optional): Initialisation config.
    """

    #: Its layers are learned by tools/train.py: testing without an fdseg
    #: checkpoint stops (see fdseg.engine.weights.check_trained).
    requires_training = True

    #: Background score of the K-shot vote map: a normalised vote
    #: ``v = a / b`` (integers, ``b <= K``) below 0.5 is at most
    #: ``0.5 - 1 / (2K)``, so ``v >= 0.5`` is exactly ``v > VOTE_BG``.
    VOTE_BG_OFFSET = 1e-6

    def __init__(
        self,
        stage_sizes: Sequence[int] = (4, 6, 3),
        mask_downsample: str = 'bilinear_nearest',
        mask_align_corners: bool = True,
        corr_eps: float = 1e-5,
        vote_threshold: float = 0.5,
        loss_weight: float = 1.0,
        ignore_index: int = 255,
        align_corners: bool = True,
        learner: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(
            num_ways=1,
            mask_downsample=mask_downsample,
            align_corners=align_corners,
            ignore_index=ignore_index,
            init_cfg=init_cfg,
        )
        if len(stage_sizes) != 3:
            raise ValueError(f'stage_sizes needs 3 stages, got {stage_sizes!r}')
        self.stage_sizes = tuple(int(n) for n in stage_sizes)
        self.mask_align_corners = mask_align_corners
        self.corr_eps = corr_eps
        self.vote_threshold = vote_threshold
        self.loss_weight = loss_weight
        cfg = dict(type='HPNLearner', in_channels=tuple(reversed(self.stage_sizes)))
        cfg.update(learner or {})
        self.learner = MODELS.build(cfg)

    # ------------------------------------------------------------------
    def _levels(self, feats) -> List[Tensor]:
        if isinstance(feats, Tensor) or len(feats) != sum(self.stage_sizes):
            n = 1 if isinstance(feats, Tensor) else len(feats)
            raise ValueError(
                f'{type(self).__name__} needs {sum(self.stage_sizes)} backbone '
                f'levels (stage_sizes={self.stage_sizes}), got {n}: use '
                'the ResNetBottlenecks backbone'
            )
        return list(feats)

    def _resized_masks(self, masks: Tensor, feats: Sequence[Tensor]) -> List[Tensor]:
        """``[S, H, W]`` -> one ``[S, 1, h, w]`` mask per level."""
        cache: Dict[tuple, Tensor] = {}
        out = []
        for f in feats:
            size = tuple(f.shape[-2:])
            if size not in cache:
                cache[size] = self.downsample_support_masks(
                    masks, size, align_corners=self.mask_align_corners
                )[:, None]
            out.append(cache[size].to(f.dtype))
        return out

    def _normalize(self, f: Tensor) -> Tensor:
        """``[N, C, h, w]`` -> ``[N, C, h*w]`` divided by (norm + eps)."""
        f = f.flatten(2)
        return f / (f.norm(dim=1, p=2, keepdim=True) + self.corr_eps)

    def encode_support(
        self,
        support_feats,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ) -> Dict:
        """Mask and normalise the support features of one episode.

        Args:
            support_feats (tuple[Tensor]): 13 levels ``[S, C_l, h_l, w_l]``.
            support_masks (Tensor): ``[S, H, W]`` binary.
            support_labels (Tensor, optional): ``[S]``; 1-way only.

        Returns:
            dict: ``feats`` (per level ``[S, C_l, h_l * w_l]`` normalised),
            ``sizes`` (per level ``(h_l, w_l)``) and ``num_shots``.
        """
        feats = self._levels(support_feats)
        self._check_one_way(support_labels)
        masks = self._resized_masks(support_masks, feats)
        return dict(
            feats=[self._normalize(f * m) for f, m in zip(feats, masks)],
            sizes=[tuple(f.shape[-2:]) for f in feats],
            num_shots=feats[0].shape[0],
        )

    @staticmethod
    def _check_one_way(labels: Optional[Tensor]) -> None:
        if labels is not None and labels.numel() and int(labels.max()) > 1:
            raise ValueError(
                'HSNet / PATNet are 1-way: support_labels must all be 1, got '
                f'{labels.tolist()}'
            )

    # ------------------------------------------------------------------
    def _pairs(self, query_feats, supports: List[Dict]) -> Tuple[List[Tensor], Tensor]:
        """Query levels and the query index of every (query, support) pair."""
        feats = self._levels(query_feats)
        B = feats[0].shape[0]
        if len(supports) != B:
            raise ValueError(f'{B} queries but {len(supports)} support states')
        shots = {int(s['num_shots']) for s in supports}
        if len(shots) != 1:
            raise ValueError(
                f'all episodes of a batch need the same number of shots, got {shots}'
            )
        K = shots.pop()
        if K < 1:
            raise ValueError('an episode needs at least one support image')
        qidx = torch.arange(B, device=feats[0].device).repeat_interleave(K)
        return feats, qidx

    def correlations(self, query_feats, supports: List[Dict]) -> List[Tensor]:
        """Clamped cosine correlation of every level and pair.

        Returns:
            list[Tensor]: Per level ``[N, Hq, Wq, Hs, Ws]``, ``N = B * K``
            pairs ordered query-major.
        """
        feats, qidx = self._pairs(query_feats, supports)
        corrs = []
        for lvl, q in enumerate(feats):
            hq, wq = q.shape[-2:]
            hs, ws = supports[0]['sizes'][lvl]
            s = torch.cat([st['feats'][lvl] for st in supports])
            qn = self._normalize(q)[qidx]
            corr = torch.bmm(qn.transpose(1, 2), s.to(qn.dtype)).clamp(min=0)
            corrs.append(corr.view(-1, hq, wq, hs, ws))
        return corrs

    def hypercorrelation(self, corrs: Sequence[Tensor]) -> List[Tensor]:
        """Stack the levels of each stage: ``[N, n, Hq, Wq, Hs, Ws]``.

        Deepest stage first, as the learner takes them.
        """
        out, start = [], 0
        for n in self.stage_sizes:
            out.append(torch.stack(corrs[start : start + n], dim=1))
            start += n
        return out[::-1]

    def forward(self, query_feats, supports: List[Dict]) -> Tensor:
        """One 1-shot pass of the learner per (query, support) pair.

        Args:
            query_feats (tuple[Tensor]): 13 levels ``[B, C_l, h_l, w_l]``.
            supports (list[dict]): One support state per query, all with
                the same number of shots ``K``.

        Returns:
            Tensor: ``[B, K, 2, h, w]`` logits (``h = 2 h_2``: a quarter of
            the input size for ResNet-50).
        """
        corrs = self.correlations(query_feats, supports)
        logits = self.learner(self.hypercorrelation(corrs))
        B = len(supports)
        return logits.view(B, -1, *logits.shape[1:])

    # ------------------------------------------------------------------
    def loss_by_feat(
        self, logits: Tensor, batch_data_samples: Sequence
    ) -> Dict[str, Tensor]:
        """2-class cross entropy of every pass at the query mask size.

        The official ``compute_objective`` on the upsampled logits.

        Args:
            logits (Tensor): ``[B, K, 2, h, w]``.
            batch_data_samples (Sequence): With ``gt_sem_seg`` ``[1, H, W]``.
        """
        gt = torch.stack([s.gt_sem_seg.data[0] for s in batch_data_samples]).long()
        B, K = logits.shape[:2]
        up = F.interpolate(
            logits.flatten(0, 1),
            gt.shape[-2:],
            mode='bilinear',
            align_corners=self.align_corners,
        )
        target = gt.repeat_interleave(K, dim=0)
        loss = F.cross_entropy(up, target, ignore_index=self.ignore_index)
        return dict(loss_seg=self.loss_weight * loss)

    def predict_by_feat(self, logits: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Logits (1-shot) or the vote map (K-shot) at ``img_shape``.

        Args:
            logits (Tensor): ``[B, K, 2, h, w]``.
            batch_img_metas (list[dict]): With ``img_shape``.

        Returns:
            Tensor: ``[B, 2, H, W]``. K = 1: the upsampled logits. K > 1:
            channel 1 holds ``votes / max(max votes, 1)`` (votes: per-shot
            argmax summed, official ``predict_mask_nshot``) and channel 0
            ``vote_threshold - 1e-6``, so the argmax is the official
            ``>= 0.5`` decision.
        """
        size = tuple(batch_img_metas[0]['img_shape'][:2])
        B, K = logits.shape[:2]
        up = F.interpolate(
            logits.flatten(0, 1),
            size,
            mode='bilinear',
            align_corners=self.align_corners,
        ).view(B, K, 2, *size)
        if K == 1:
            return up[:, 0]
        votes = up.argmax(2).sum(1).float()  # [B, H, W]
        max_vote = votes.flatten(1).amax(1).clamp(min=1).view(B, 1, 1)
        fg = votes / max_vote
        bg = torch.full_like(fg, self.vote_threshold - self.VOTE_BG_OFFSET)
        return torch.stack([bg, fg], dim=1)


__all__ = ['HPNLearner', 'HSNetHead']
