"""PFENet head (Tian et al., TPAMI 2020), as the official code computes it.

Reference: ``dvlab-research/PFENet`` ``model/PFENet.py`` (forward) and
``train.py`` (frozen backbone, lr x10 on every new layer). GFDS (paper Sec.
6.1.1) trains it episodically for 400 epochs at 256x256.

Call flow::

    support layer2, layer3 [S,C,h,w] ──cat── down_supp ── masked GAP ─┐ mean
    support mask [S,H,W] ── downsample (Sec. 6 rule) ─┐                │ over
    support layer3 * mask ── backbone.layer4 ── * mask ┴─ state        │ shots
                                                                       │
    query layer2, layer3 ──cat── down_query ───────────────┐           │
    query layer4 ── cosine max over support px ── min-max ─┴─ prior (mean over
                                                          shots)
    [query, prototype, prior] ── FEM scales (60, 30, 15, 8): init_merge,
        alpha_conv (previous scale), beta_conv, inner_cls (aux logits)
    ── cat ── res1 ── res2 (+) ── cls ── logits [B, 2, h, w] ── x8 bilinear

The support's layer4 is computed from its masked layer3, so the head needs
the backbone's layer4: the segmentor hands it over with
:meth:`PFENetHead.attach_backbone` (kept out of the head's state dict and
parameters; the backbone stays the segmentor's). Input size: the official
forward asserts ``(H - 1) % 8 == 0`` (473 = 8 * 59 + 1) only so that
``align_corners=True`` maps feature cells onto pixels exactly; its output
size formula ``(H - 1) / 8 * 8 + 1`` is ``H`` for any ``H``. GFDS runs 256
(not 8k + 1), so the head accepts any size and upsamples to the input size,
with no padding or resizing of the image.
"""

import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fdseg.models.utils.mask_ops import masked_average_pool
from fdseg.registry import MODELS

from .base_few_shot_head import BaseFewShotHead


def weighted_gap(feat: Tensor, mask: Tensor, eps: float = 5e-4) -> Tensor:
    """Masked average pooling as PFENet's ``Weighted_GAP``.

    Args:
        feat (Tensor): ``[S, C, h, w]``.
        mask (Tensor): ``[S, 1, h, w]`` soft mask.
        eps (float): Added to the mask area (``0.0005``, official).

    Returns:
        Tensor: ``[S, C, 1, 1]``: ``sum(feat * mask) / (sum(mask) + eps)``.
    """
    return masked_average_pool(feat, mask, eps)[..., None, None]


@MODELS.register_module()
class PFENetHead(BaseFewShotHead):
    """Prior-guided feature enrichment network (1-way).

    Args:
        in_channels (Sequence[int]): Channels of the backbone levels the
            head reads: layer2, layer3, layer4 (512, 1024, 2048).
        in_index (Sequence[int]): Positions of layer2, layer3, layer4 in the
            backbone output tuple.
        prior_stage (int): The backbone stage run on the masked support
            layer3 (3 = layer4, :meth:`ResNetDeepStem.forward_stage`).
        reduce_dim (int): Width of the head (256).
        ppm_scales (Sequence[float]): FEM bin sizes; ``(60, 30, 15, 8)``
            officially (absolute sizes, chosen for 473 input: 60 is the
            feature size there). A value <= 1 is a ratio of the feature
            size, as the official code allows.
        dropout (float): Dropout2d of the two reducers (0.5).
        cls_dropout (float): Dropout2d in the classifiers (0.1).
        aux_weight (float): Weight of the mean auxiliary loss (1.0).
        cosine_eps (float): Of the prior's cosine and min-max (1e-7).
        gap_eps (float): Of the masked average pooling (5e-4).
        mask_downsample (str): :func:`downsample_mask` mode for the support
            mask at feature size; ``'bilinear_nearest'`` is GFDS's rule
            (bilinear as the official code, nearest for vanishing defects).
        align_corners (bool): Bilinear resizing (True, official).
        ignore_index (int): Of the cross entropies (255, official
            ``nn.CrossEntropyLoss(ignore_index=255)``, mean over the
            pixels not ignored).
    """

    #: Its layers are learned by tools/train.py: testing without an fdseg
    #: checkpoint stops (see fdseg.engine.weights.check_trained).
    requires_training = True

    def __init__(
        self,
        in_channels: Sequence[int] = (512, 1024, 2048),
        in_index: Sequence[int] = (0, 1, 2),
        prior_stage: int = 3,
        reduce_dim: int = 256,
        ppm_scales: Sequence[float] = (60, 30, 15, 8),
        dropout: float = 0.5,
        cls_dropout: float = 0.1,
        aux_weight: float = 1.0,
        cosine_eps: float = 1e-7,
        gap_eps: float = 5e-4,
        mask_downsample: str = 'bilinear_nearest',
        align_corners: bool = True,
        ignore_index: int = 255,
        num_ways: int = 1,
        init_cfg: Optional[dict] = None,
    ):
        if num_ways != 1:
            raise ValueError(f'PFENetHead is 1-way, got num_ways={num_ways}')
        super().__init__(
            num_ways=1,
            mask_downsample=mask_downsample,
            align_corners=align_corners,
            ignore_index=ignore_index,
            in_index=-1,
            init_cfg=init_cfg,
        )
        if len(in_channels) != 3 or len(in_index) != 3:
            raise ValueError('in_channels / in_index: layer2, layer3, layer4')
        self.in_index = tuple(in_index)
        self.prior_stage = prior_stage
        self.ppm_scales = tuple(ppm_scales)
        self.aux_weight = aux_weight
        self.cosine_eps = cosine_eps
        self.gap_eps = gap_eps
        c2, c3, _ = in_channels
        r = reduce_dim
        self.down_query = nn.Sequential(
            nn.Conv2d(c3 + c2, r, 1, bias=False), nn.ReLU(True), nn.Dropout2d(dropout)
        )
        self.down_supp = nn.Sequential(
            nn.Conv2d(c3 + c2, r, 1, bias=False), nn.ReLU(True), nn.Dropout2d(dropout)
        )

        def classifier():
            return nn.Sequential(
                nn.Conv2d(r, r, 3, padding=1, bias=False),
                nn.ReLU(True),
                nn.Dropout2d(cls_dropout),
                nn.Conv2d(r, 2, 1),
            )

        def conv3_pair():
            return nn.Sequential(
                nn.Conv2d(r, r, 3, padding=1, bias=False),
                nn.ReLU(True),
                nn.Conv2d(r, r, 3, padding=1, bias=False),
                nn.ReLU(True),
            )

        n = len(self.ppm_scales)
        self.init_merge = nn.ModuleList(
            nn.Sequential(nn.Conv2d(2 * r + 1, r, 1, bias=False), nn.ReLU(True))
            for _ in range(n)
        )
        self.alpha_conv = nn.ModuleList(
            nn.Sequential(nn.Conv2d(2 * r, r, 1, bias=False), nn.ReLU())
            for _ in range(n - 1)
        )
        self.beta_conv = nn.ModuleList(conv3_pair() for _ in range(n))
        self.inner_cls = nn.ModuleList(classifier() for _ in range(n))
        self.res1 = nn.Sequential(nn.Conv2d(r * n, r, 1, bias=False), nn.ReLU(True))
        self.res2 = conv3_pair()
        self.cls = classifier()
        self.__dict__['_backbone'] = None

    # ------------------------------------------------------------------
    def attach_backbone(self, backbone: nn.Module) -> None:
        """Give the head the backbone whose ``prior_stage`` it runs.

        The reference is not registered as a submodule: the backbone's
        weights stay in the segmentor's state dict only once.

        Args:
            backbone (nn.Module): Has ``forward_stage(x, index)``
                (:class:`ResNetDeepStem`).
        """
        if not hasattr(backbone, 'forward_stage'):
            raise TypeError(
                f'PFENetHead needs a backbone with forward_stage(x, index) '
                f'(e.g. ResNetDeepStem), got {type(backbone).__name__}'
            )
        self.__dict__['_backbone'] = backbone

    def _levels(self, feats) -> Tuple[Tensor, Tensor, Tensor]:
        if not isinstance(feats, (list, tuple)):
            raise TypeError('PFENetHead needs the layer2, layer3, layer4 tuple')
        return tuple(feats[i] for i in self.in_index)

    def _down(self, mask: Tensor, size) -> Tensor:
        """``[S, H, W]`` -> ``[S, 1, h, w]`` (shared rule, ``align_corners``)."""
        return self.downsample_support_masks(mask, size, self.align_corners)[:, None]

    # ------------------------------------------------------------------
    def encode_support(
        self,
        support_feats,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ) -> Dict:
        """Prototype and masked layer4 of one episode's supports.

        Args:
            support_feats (tuple[Tensor]): Backbone levels, layer2 / layer3
                ``[S, C, h, w]`` among them.
            support_masks (Tensor): ``[S, H, W]`` binary (1 = defect).
            support_labels (Tensor, optional): ``[S]``; must be all 1.

        Returns:
            dict: ``proto`` ``[1, r, 1, 1]`` (mean over shots), ``feat4``
            ``[S, C4, h4, w4]`` masked support layer4.
        """
        if self._backbone is None:
            raise RuntimeError(
                'PFENetHead has no backbone for its prior: build it inside '
                'FewShotSegmentor or call head.attach_backbone(backbone)'
            )
        if support_labels is not None and bool((support_labels > 1).any()):
            raise ValueError('PFENetHead is 1-way: support labels must be 1')
        fg = (support_masks == 1).float()
        empty = (fg.flatten(1).amax(1) == 0).nonzero().flatten().tolist()
        if empty:
            # The official code runs on (no NaN); say so instead of
            # silently matching against nothing.
            warnings.warn(
                f'support mask(s) {empty} of this episode have no defect '
                'pixel: PFENet matches the query against a zero prototype '
                'and a zero prior (as the official code does)',
                UserWarning,
                stacklevel=2,
            )
        f2, f3, _ = self._levels(support_feats)
        mask3 = self._down(fg, f3.shape[-2:])
        with torch.no_grad():  # the prior is training-free (official)
            f4 = self._backbone.forward_stage(f3 * mask3, self.prior_stage)
            feat4 = f4 * self._down(fg, f4.shape[-2:])
        feat = self.down_supp(torch.cat([f3, f2], 1))
        protos = weighted_gap(feat, mask3, self.gap_eps)  # [S, r, 1, 1]
        return dict(proto=protos.mean(0, keepdim=True), feat4=feat4)

    def prior(self, query4: Tensor, supp4: Tensor, size) -> Tensor:
        """Training-free prior of one query (mean over its shots).

        Args:
            query4 (Tensor): ``[C4, h4, w4]`` query layer4.
            supp4 (Tensor): ``[S, C4, h4', w4']`` masked support layer4.
            size (tuple): Query feature size ``(h, w)``.

        Returns:
            Tensor: ``[1, 1, h, w]`` in [0, 1].
        """
        eps = self.cosine_eps
        q = query4.flatten(1)  # [C, Nq]
        s = supp4.flatten(2).transpose(1, 2)  # [S, Ns, C]
        sim = (s @ q) / (
            s.norm(dim=2, keepdim=True) @ q.norm(dim=0, keepdim=True)[None] + eps
        )
        sim = sim.amax(1)  # [S, Nq]
        lo, hi = sim.amin(1, keepdim=True), sim.amax(1, keepdim=True)
        sim = (sim - lo) / (hi - lo + eps)
        corr = sim.view(-1, 1, *query4.shape[-2:])
        corr = F.interpolate(corr, size, mode='bilinear', align_corners=True)
        return corr.mean(0, keepdim=True)

    def _forward_all(self, query_feats, supports: List[Dict]):
        """Main and auxiliary logits at feature resolution.

        Returns:
            tuple: ``[B, 2, h, w]`` logits and the list of per-scale
            auxiliary logits ``[B, 2, bin, bin]``.
        """
        q2, q3, q4 = self._levels(query_feats)
        if len(supports) != q3.shape[0]:
            raise ValueError(f'{q3.shape[0]} queries but {len(supports)} supports')
        query = self.down_query(torch.cat([q3, q2], 1))
        size = query.shape[-2:]
        with torch.no_grad():
            prior = torch.cat(
                [self.prior(q, s['feat4'], q3.shape[-2:]) for q, s in zip(q4, supports)]
            )
        prior = F.interpolate(prior, size, mode='bilinear', align_corners=True)
        proto = torch.cat([s['proto'] for s in supports])  # [B, r, 1, 1]
        outs, pyramid = [], []
        for i, b in enumerate(self.ppm_scales):
            b = int(size[0] * b) if b <= 1.0 else int(b)
            q_bin = F.adaptive_avg_pool2d(query, b)
            merge = torch.cat(
                [
                    q_bin,
                    proto.expand(-1, -1, b, b),
                    F.interpolate(prior, (b, b), mode='bilinear', align_corners=True),
                ],
                1,
            )
            merge = self.init_merge[i](merge)
            if i >= 1:
                prev = F.interpolate(
                    pyramid[i - 1], (b, b), mode='bilinear', align_corners=True
                )
                merge = self.alpha_conv[i - 1](torch.cat([merge, prev], 1)) + merge
            merge = self.beta_conv[i](merge) + merge
            outs.append(self.inner_cls[i](merge))
            pyramid.append(
                F.interpolate(merge, size, mode='bilinear', align_corners=True)
            )
        feat = self.res1(torch.cat(pyramid, 1))
        feat = self.res2(feat) + feat
        return self.cls(feat), outs

    def forward(self, query_feats, supports: List[Dict]) -> Tensor:
        """``[B, 2, h, w]`` logits at feature resolution (stride 8)."""
        return self._forward_all(query_feats, supports)[0]

    def loss(
        self, query_feats, supports: List[Dict], batch_data_samples: Sequence
    ) -> Dict[str, Tensor]:
        """Forward + :meth:`loss_by_feat` with the auxiliary logits."""
        logits, aux = self._forward_all(query_feats, supports)
        return self.loss_by_feat(logits, batch_data_samples, aux)

    def loss_by_feat(
        self, logits: Tensor, batch_data_samples: Sequence, aux: Sequence = ()
    ) -> Dict[str, Tensor]:
        """CE of the x8 logits + ``aux_weight`` x mean CE of the scales.

        Every logit map is upsampled (bilinear, ``align_corners``) to the
        query size before its cross entropy (ignore index 255).

        Returns:
            dict: ``loss_seg`` and ``loss_aux``.
        """
        gt = torch.stack([s.gt_sem_seg.data[0] for s in batch_data_samples]).long()

        def ce(x):
            x = F.interpolate(
                x, gt.shape[-2:], mode='bilinear', align_corners=self.align_corners
            )
            return F.cross_entropy(x, gt, ignore_index=self.ignore_index)

        losses = dict(loss_seg=ce(logits))
        if aux:
            losses['loss_aux'] = self.aux_weight * sum(ce(a) for a in aux) / len(aux)
        return losses


__all__ = ['PFENetHead', 'weighted_gap']
