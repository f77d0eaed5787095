"""PATNet: pyramid anchor-based transformation (Lei et al., ECCV 2022).

GFDS Table 4 rows "PATNet" (cross-domain) and "PATNet*" (in-domain).
HSNet plus the Pyramid Anchor-based Transformation Module (PATM), following
the official code (github.com/slei109/PATNet, ``model/patnet.py``); the
deviations are listed in docs/meta_learning.md.
"""

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fdseg.models.utils.mask_ops import masked_average_pool
from fdseg.registry import MODELS

from .hsnet_head import HSNetHead


@MODELS.register_module()
class PATNetHead(HSNetHead):
    """HSNet head with the pyramid anchor-based transformation.

    Per backbone stage a learnable anchor matrix ``R`` ``[2, C]`` (rows:
    background, foreground; Kaiming-normal, fan-in, shared by the blocks of
    the stage). For every level the support fg / bg prototypes (masked
    averages) form ``C_s`` ``[2, C]``; both are row-normalised and the query
    and masked support features are mapped by ``P = (pinv(C_s) R)^T``
    before the HSNet correlation, so the support prototypes land on the
    anchors.

    ``P f = R^T (pinv(C_s)^T f)`` has rank 2: fdseg evaluates it in the
    2-D coordinates ``u = T pinv(C_s)^T f`` with ``R^T = Q T`` (QR,
    ``Q^T Q = I``), which keeps every dot product and norm of the
    ``C``-dimensional transformed features (so the same correlation, within
    float rounding) without forming the ``C x C`` matrix ``P``.

    Test-time anchor fine-tuning (``finetune_reference``, the paper's TFI;
    the official test script never runs it): for each query, a copy of the
    anchors is optimised with Adam for ``steps`` steps on the KL divergence
    between the softmaxed *transformed* support and query foreground
    prototypes of the first stage's levels (the query prototype from the
    prediction with the trained anchors), averaged over the shots; the
    query is then predicted with that copy. The module's parameters never
    change, so nothing carries over to the next episode. (The official
    ``finetune_reference`` computes the prototypes before the
    transformation, where the anchors get no gradient.)

    Args:
        in_channels (Sequence[int]): Channels per stage, shallow first
            (ResNet-50 layer2..4: ``(512, 1024, 2048)``).
        proto_eps (float): Masked-average and row-normalisation epsilon
            (official 1e-6).
        finetune_reference (dict, optional): None or ``steps=0`` (default,
            the official test) or e.g. ``dict(steps=50, lr=1e-3)`` (Adam;
            the authors report about 50 steps, lr 1e-3 or 5e-5).
        **kwargs: :class:`HSNetHead` arguments.
    """

    def __init__(
        self,
        in_channels: Sequence[int] = (512, 1024, 2048),
        proto_eps: float = 1e-6,
        finetune_reference: Optional[dict] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if len(in_channels) != len(self.stage_sizes):
            raise ValueError(
                f'in_channels {in_channels!r} and stage_sizes '
                f'{self.stage_sizes!r} differ in length'
            )
        self.in_channels = tuple(int(c) for c in in_channels)
        self.proto_eps = proto_eps
        self.anchors = nn.ParameterList(
            [nn.Parameter(torch.empty(2, c)) for c in self.in_channels]
        )
        for a in self.anchors:
            # Official: nn.Linear(C, 2) weight, kaiming_normal_(fan_in, linear).
            nn.init.kaiming_normal_(a, a=0, mode='fan_in', nonlinearity='linear')
        if finetune_reference is not None:
            unknown = set(finetune_reference) - {'steps', 'lr'}
            if unknown:
                raise KeyError(f'finetune_reference: unknown keys {sorted(unknown)}')
            finetune_reference = dict(
                steps=int(finetune_reference.get('steps', 50)),
                lr=float(finetune_reference.get('lr', 1e-3)),
            )
            if finetune_reference['steps'] <= 0:
                finetune_reference = None  # off (steps=0)
        self.finetune_reference = finetune_reference
        self._stage_of = [i for i, n in enumerate(self.stage_sizes) for _ in range(n)]

    # ------------------------------------------------------------------
    def _masked_protos(self, f: Tensor, m: Tensor):
        """Masked fg / bg averages of ``[S, C, h, w]`` by ``[S, 1, h, w]``."""
        fg = masked_average_pool(f, m, self.proto_eps)
        bg = masked_average_pool(f, 1 - m, self.proto_eps)
        return fg, bg

    def encode_support(
        self,
        support_feats,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ) -> Dict:
        """Masked support features and their fg / bg prototypes.

        Returns:
            dict: ``feats`` (per level ``[S, C_l, h_l * w_l]`` masked, not
            normalised), ``protos`` (per level ``[S, 2, C_l]``, rows bg, fg),
            ``sizes``, ``num_shots``.
        """
        feats = self._levels(support_feats)
        self._check_one_way(support_labels)
        masks = self._resized_masks(support_masks, feats)
        out, protos = [], []
        for f, m in zip(feats, masks):
            fg, bg = self._masked_protos(f, m)
            protos.append(torch.stack([bg, fg], dim=1))
            out.append((f * m).flatten(2))
        return dict(
            feats=out,
            protos=protos,
            sizes=[tuple(f.shape[-2:]) for f in feats],
            num_shots=feats[0].shape[0],
        )

    def _row_normalize(self, x: Tensor) -> Tensor:
        return x / (x.norm(dim=-1, keepdim=True) + self.proto_eps)

    def coordinates(self, protos: Tensor, anchor: Tensor) -> Tensor:
        """The 2-D coordinate map ``M = T pinv(C_s)^T`` ``[N, 2, C]``.

        ``M f`` are the coordinates of ``P f`` in an orthonormal basis of
        the anchors' row space.

        Args:
            protos (Tensor): ``[N, 2, C]`` support prototypes (bg, fg).
            anchor (Tensor): ``[2, C]`` the stage's anchors.
        """
        # pinv / QR have no half-precision kernels: float32 under autocast.
        with torch.autocast(protos.device.type, enabled=False):
            c = self._row_normalize(protos.float())
            r = self._row_normalize(anchor.float())
            _, t = torch.linalg.qr(r.t())  # r^T = q t, t [2, 2]
            return t @ torch.linalg.pinv(c).transpose(1, 2)

    def transform(self, f: Tensor, protos: Tensor, anchor: Tensor) -> Tensor:
        """``P f`` as the official ``[N, C, C]`` product (reference path).

        Args:
            f (Tensor): ``[N, C, L]``.
            protos (Tensor): ``[N, 2, C]``.
            anchor (Tensor): ``[2, C]``.

        Returns:
            Tensor: ``[N, C, L]`` (only used by tests and TFI prototypes).
        """
        c = self._row_normalize(protos)
        r = self._row_normalize(anchor)
        return r.t() @ (torch.linalg.pinv(c).transpose(1, 2) @ f)

    def correlations(
        self, query_feats, supports: List[Dict], anchors: Optional[Sequence] = None
    ) -> List[Tensor]:
        """Clamped cosine correlation of the transformed features.

        Args:
            query_feats (tuple[Tensor]): 13 levels ``[B, C, h, w]``.
            supports (list[dict]): Support states.
            anchors (Sequence[Tensor], optional): Anchors to use instead of
                the module's (test-time fine-tuning).
        """
        anchors = self.anchors if anchors is None else anchors
        feats, qidx = self._pairs(query_feats, supports)
        corrs = []
        for lvl, q in enumerate(feats):
            hq, wq = q.shape[-2:]
            hs, ws = supports[0]['sizes'][lvl]
            s = torch.cat([st['feats'][lvl] for st in supports]).to(q.dtype)
            protos = torch.cat([st['protos'][lvl] for st in supports]).to(q.dtype)
            m = self.coordinates(protos, anchors[self._stage_of[lvl]])
            m = m.to(q.dtype)
            uq = m @ q.flatten(2)[qidx]  # [N, 2, hq*wq]
            us = m @ s  # [N, 2, hs*ws]
            uq = uq / (uq.norm(dim=1, keepdim=True) + self.corr_eps)
            us = us / (us.norm(dim=1, keepdim=True) + self.corr_eps)
            corr = torch.bmm(uq.transpose(1, 2), us).clamp(min=0)
            corrs.append(corr.view(-1, hq, wq, hs, ws))
        return corrs

    def forward(
        self, query_feats, supports: List[Dict], anchors: Optional[Sequence] = None
    ) -> Tensor:
        """One 1-shot pass per (query, support) pair: ``[B, K, 2, h, w]``."""
        corrs = self.correlations(query_feats, supports, anchors)
        logits = self.learner(self.hypercorrelation(corrs))
        return logits.view(len(supports), -1, *logits.shape[1:])

    # ------------------------------------------------------------------
    def predict(
        self, query_feats, supports: List[Dict], batch_img_metas: List[dict]
    ) -> Tensor:
        """Forward + predict_by_feat (+ per-query anchor fine-tuning).

        The fine-tuning runs when ``finetune_reference`` is set and the head
        is not training.
        """
        logits = self.forward(query_feats, supports)
        if self.finetune_reference is None or self.training:
            return self.predict_by_feat(logits, batch_img_metas)
        feats = self._levels(query_feats)
        preds = self.predict_by_feat(logits, batch_img_metas)
        out = []
        for b, state in enumerate(supports):
            q = [f[b : b + 1] for f in feats]
            anchors = self.finetuned_anchors(q, state, preds[b : b + 1].argmax(1))
            with torch.no_grad():
                lg = self.forward(q, [state], anchors)
            out.append(self.predict_by_feat(lg, batch_img_metas[b : b + 1]))
        return torch.cat(out)

    def tfi_loss(self, query_feats, state: Dict, query_mask: Tensor, anchors) -> Tensor:
        """TFI loss: KL(softmax(P s_fg) || softmax(P q_fg)).

        Summed over the first stage's levels, averaged over the shots.

        Args:
            query_feats (list[Tensor]): 13 levels ``[1, C, h, w]``.
            state (dict): The episode's support state.
            query_mask (Tensor): ``[1, H, W]`` predicted query mask.
            anchors (Sequence[Tensor]): Anchors being fine-tuned.
        """
        masks = self._resized_masks(query_mask, query_feats)
        K = int(state['num_shots'])
        loss = query_feats[0].new_zeros(())
        for lvl in range(self.stage_sizes[0]):
            q_fg, _ = self._masked_protos(query_feats[lvl], masks[lvl])  # [1, C]
            protos = state['protos'][lvl].to(q_fg.dtype)  # [K, 2, C]
            a = anchors[0]
            tq = self.transform(q_fg.expand(K, -1)[..., None], protos, a)[..., 0]
            ts = self.transform(protos[:, 1, :, None], protos, a)[..., 0]
            loss = loss + F.kl_div(
                F.log_softmax(tq, -1), F.softmax(ts, -1), reduction='sum'
            )
        return loss / K

    def finetuned_anchors(
        self, query_feats, state: Dict, query_mask: Tensor
    ) -> List[Tensor]:
        """A fine-tuned copy of the anchors for one episode (TFI).

        Only the first stage's anchor receives gradients (the KL uses the
        first stage's levels); the others are returned unchanged.
        """
        cfg = self.finetune_reference
        anchors = [a.detach().clone() for a in self.anchors]
        first = anchors[0].requires_grad_(True)
        opt = torch.optim.Adam([first], lr=cfg['lr'])
        q = [f.detach() for f in query_feats]
        with torch.enable_grad():
            for _ in range(cfg['steps']):
                opt.zero_grad()
                loss = self.tfi_loss(q, state, query_mask, anchors)
                loss.backward()
                opt.step()
        return [a.detach() for a in anchors]


__all__ = ['PATNetHead']
