"""Training-free prototype matcher (paper Sec. 5.1.2, eqs. 1-8, Table 6)."""

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from fdseg.registry import MODELS

from .base_few_shot_head import BaseFewShotHead

STRATEGIES = ('dense', 'patch', 'pool')


@MODELS.register_module()
class PrototypeMatcherHead(BaseFewShotHead):
    """Match query features to foreground/background support prototypes.

    Support vectors are split by the downsampled support mask into
    foreground (eq. 2) and background (eq. 3) sets, turned into prototypes
    by a strategy (eq. 4, Table 6), and each query vector gets its maximum
    similarity to each set (eqs. 5-8). Logits are ``[bg, way_1 .. way_N]``
    maxima times ``scale``; the prediction is their argmax after upsampling.

    Prototype strategies (``fg_strategy`` / ``bg_strategy``):

    - ``'dense'``: every vector is a prototype.
    - ``'patch'``: 3-wide averaging with stride 1 (eq. 4). What "patch"
      means for a *set* of vectors depends on ``patch_mode``:

      * ``'sequence'`` (official GFDS): the vectors of one support, taken in
        row-major order of their cells, are averaged over sliding windows of
        ``patch_size`` consecutive vectors (``unfold`` along the list), and
        only when the support has more than ``patch_min_vectors`` of them;
        ``n`` vectors give ``n - patch_size + 1`` prototypes.
      * ``'spatial'`` (the paper's reading): the support feature map is
        averaged over ``patch_size x patch_size`` windows (stride 1, zero
        padding not counted) and the averaged vectors of the selected cells
        are the prototypes; ``n`` vectors give ``n`` prototypes.
    - ``'pool'``: the mean of all the set's vectors (over all shots) is the
      single prototype.

    K-shot: every support contributes its own prototypes (patch averaging
    never crosses supports); the sets of all shots of a way are pooled.

    Args:
        fg_strategy (str): Foreground prototypes; ``'patch'`` (paper).
        bg_strategy (str): Background prototypes; ``'dense'`` (paper).
        patch_mode (str): ``'sequence'`` (official) or ``'spatial'``.
        patch_size (int): Window size; 3 in the paper.
        patch_min_vectors (int): ``'sequence'`` mode averages only a set of
            more than this many vectors (10, official).
        distance (str): ``'cosine'`` (eqs. 5-6) or ``'l2'`` (similarity
            ``1 / (d + 1e-8)``, official).
        scale (float): Logit multiplier; 10 in the official code (it does
            not change the argmax).
        upsample (str): ``'logits'`` (official: bilinear upsampling of the
            similarity maps, then argmax) or ``'labels'`` (the paper's text:
            argmax at feature resolution, then nearest upsampling).
        fg_threshold (float): A cell is foreground if its downsampled mask
            value is above this (eq. 2 uses ``> 0``).
        empty_score (float): Similarity (before ``scale``) of a way without
            any prototype (an empty support mask): below every cosine, so an
            empty support predicts all background.
        mask_downsample (str): ``'cover'`` (official: a cell is foreground
            if it holds any foreground pixel) or another
            :func:`downsample_mask` mode.
        align_corners (bool): Bilinear upsampling; True as officially.
        chunk_size (int): Query vectors matched per block. The similarity
            of a block (``chunk_size x P``) is reduced to its per-group
            maxima at once, so the full ``[h*w, P]`` similarity tensor is
            never materialised (same values, bounded memory). 0 = no chunks.
        bg_coreset (float | int): 0 (default, official): every background
            prototype is matched. A fraction in (0, 1) or a count > 1 keeps
            a greedy k-centre coreset of the background prototypes for a
            first pass; cells where a way may beat the background (in their
            3x3 neighbourhood, so bilinear upsampling cannot be affected)
            are then matched against ALL prototypes. Masks are those of the
            full matching; only the background score of clearly-background
            cells is a lower bound (the coreset maximum). Cosine only.
    """

    def __init__(
        self,
        fg_strategy: str = 'patch',
        bg_strategy: str = 'dense',
        patch_mode: str = 'sequence',
        patch_size: int = 3,
        patch_min_vectors: int = 10,
        distance: str = 'cosine',
        scale: float = 10.0,
        upsample: str = 'logits',
        fg_threshold: float = 0.0,
        empty_score: float = -2.0,
        num_ways: int = 1,
        mask_downsample: str = 'cover',
        align_corners: bool = True,
        chunk_size: int = 1024,
        bg_coreset: float = 0,
        init_cfg: Optional[dict] = None,
        **kwargs,
    ):
        super().__init__(
            num_ways=num_ways,
            mask_downsample=mask_downsample,
            align_corners=align_corners,
            init_cfg=init_cfg,
            **kwargs,
        )
        for name, s in (('fg_strategy', fg_strategy), ('bg_strategy', bg_strategy)):
            if s not in STRATEGIES:
                raise ValueError(f'{name} must be one of {STRATEGIES}, got {s!r}')
        if patch_mode not in ('sequence', 'spatial'):
            raise ValueError(
                f'patch_mode must be "sequence" or "spatial", got {patch_mode!r}'
            )
        if distance not in ('cosine', 'l2'):
            raise ValueError(f'distance must be "cosine" or "l2", got {distance!r}')
        if upsample not in ('logits', 'labels'):
            raise ValueError(f'upsample must be "logits" or "labels", got {upsample!r}')
        self.fg_strategy = fg_strategy
        self.bg_strategy = bg_strategy
        self.patch_mode = patch_mode
        self.patch_size = patch_size
        self.patch_min_vectors = patch_min_vectors
        self.distance = distance
        self.scale = scale
        self.upsample = upsample
        self.fg_threshold = fg_threshold
        self.empty_score = empty_score
        if chunk_size < 0:
            raise ValueError(f'chunk_size must be >= 0, got {chunk_size}')
        if bg_coreset < 0 or (bg_coreset > 0 and distance != 'cosine'):
            raise ValueError(
                'bg_coreset must be >= 0 and needs distance="cosine", got '
                f'{bg_coreset!r} with {distance!r}'
            )
        self.chunk_size = chunk_size
        self.bg_coreset = bg_coreset

    # ------------------------------------------------------------------
    # support side
    # ------------------------------------------------------------------
    def _patch_sequence(self, vecs: Tensor) -> Tensor:
        """``[n, C]`` -> ``[n - p + 1, C]`` sliding-window means."""
        p = self.patch_size
        if vecs.shape[0] <= self.patch_min_vectors or vecs.shape[0] < p:
            return vecs
        return vecs.unfold(0, p, 1).mean(-1)

    def _prototypes(
        self, feat: Tensor, cells: Tensor, strategy: str, smoothed: Optional[Tensor]
    ) -> Tensor:
        """Prototypes of one support's selected cells (before pooling).

        Args:
            feat (Tensor): ``[C, h * w]`` support features.
            cells (Tensor): ``[h * w]`` bool selection, row-major.
            strategy (str): ``'patch'``, ``'dense'`` or ``'pooling'``.
            smoothed (Tensor, optional): ``[C, h * w]`` spatially averaged
                features for the ``'spatial'`` patch mode.
        """
        if strategy == 'patch':
            if self.patch_mode == 'spatial':
                return smoothed[:, cells].t()
            return self._patch_sequence(feat[:, cells].t())
        # 'dense' and 'pool' (pooled over all shots by the caller)
        return feat[:, cells].t()

    def encode_support(
        self,
        support_feats: Tensor,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ) -> Dict:
        """Build prototypes of one episode.

        Args:
            support_feats (Tensor): ``[S, C, h, w]``.
            support_masks (Tensor): ``[S, H, W]`` binary.
            support_labels (Tensor, optional): ``[S]`` ways 1..N.

        Returns:
            dict: ``protos`` ``[P, C]`` (L2-normalised for cosine) and
            ``groups`` ``[P]`` (0 = background, w = way w).
        """
        support_feats = self.select_level(support_feats)
        S, C, h, w = support_feats.shape
        if support_labels is None:
            support_labels = support_masks.new_ones(S)
        cells = self.downsample_support_masks(support_masks, (h, w))
        fg_cells = (cells > self.fg_threshold).flatten(1)  # [S, h*w]
        flat = support_feats.flatten(2)  # [S, C, h*w]
        smoothed = None
        if (
            'patch' in (self.fg_strategy, self.bg_strategy)
            and self.patch_mode == 'spatial'
        ):
            p = self.patch_size
            smoothed = F.avg_pool2d(
                support_feats, p, 1, p // 2, count_include_pad=False
            ).flatten(2)
        num_ways = int(support_labels.max().item()) if S else 1
        protos, groups = [], []
        # The loop runs over the (few) supports and ways, never over pixels
        # or prototypes.
        for way in range(0, num_ways + 1):
            if way == 0:
                sel = [(i, ~fg_cells[i]) for i in range(S)]
                strategy = self.bg_strategy
            else:
                sel = [
                    (i, fg_cells[i]) for i in range(S) if int(support_labels[i]) == way
                ]
                strategy = self.fg_strategy
            vecs = [
                self._prototypes(
                    flat[i], c, strategy, None if smoothed is None else smoothed[i]
                )
                for i, c in sel
            ]
            vecs = torch.cat(vecs) if vecs else flat.new_zeros(0, C)
            if strategy == 'pool' and vecs.shape[0] > 0:
                vecs = vecs.mean(0, keepdim=True)
            protos.append(vecs)
            groups.append(
                torch.full((vecs.shape[0],), way, dtype=torch.long, device=flat.device)
            )
        protos = torch.cat(protos)
        if self.distance == 'cosine':
            protos = F.normalize(protos, dim=1)
        state = dict(protos=protos, groups=torch.cat(groups), num_ways=num_ways)
        if self.bg_coreset:
            state['coreset'] = self.coreset_index(protos, state['groups'])
        return state

    def coreset_index(self, protos: Tensor, groups: Tensor) -> Tensor:
        """Prototype indices of the first matching pass (``bg_coreset``).

        Greedy k-centre (farthest point) selection on the cosine distance
        among the background prototypes, started from the first one; every
        way prototype is kept.

        Args:
            protos (Tensor): ``[P, C]`` L2-normalised, grouped.
            groups (Tensor): ``[P]``.

        Returns:
            Tensor: ``[P']`` sorted indices into ``protos`` (still grouped).
        """
        nbg = int((groups == 0).sum())
        k = self.bg_coreset
        k = int(round(k * nbg)) if k < 1 else int(k)
        k = max(1, min(k, nbg))
        if k >= nbg:
            return torch.arange(protos.shape[0], device=protos.device)
        bg = protos[:nbg]
        chosen = torch.zeros(k, dtype=torch.long, device=protos.device)
        # best[i]: highest similarity of bg prototype i to a chosen centre.
        best = bg @ bg[0]
        for j in range(1, k):
            chosen[j] = torch.argmin(best)
            best = torch.maximum(best, bg @ bg[chosen[j]])
        rest = torch.arange(nbg, protos.shape[0], device=protos.device)
        return torch.cat([chosen.sort().values, rest])

    # ------------------------------------------------------------------
    # query side
    # ------------------------------------------------------------------
    def similarity(self, query_feat: Tensor, state: Dict) -> Tensor:
        """Per-way maximum similarity of one query (eqs. 5-8).

        Args:
            query_feat (Tensor): ``[C, h, w]``.
            state (dict): From :meth:`encode_support`.

        Returns:
            Tensor: ``[N + 1, h, w]`` (before ``scale``).
        """
        C, h, w = query_feat.shape
        q = query_feat.flatten(1).t()  # [h*w, C]
        protos, groups = state['protos'].to(q.dtype), state['groups']
        if self.distance == 'cosine':
            q = F.normalize(q, dim=1)
        n = max(int(state['num_ways']), self.num_ways)
        # Prototypes are stored grouped (bg, way 1, ..., way N), so each
        # group's maximum is a max over one contiguous slice of columns.
        counts = torch.bincount(groups, minlength=n + 1).tolist()[: n + 1]
        coreset = state.get('coreset') if self.bg_coreset else None
        if coreset is None or coreset.numel() == protos.shape[0]:
            return self._group_max(q, protos, counts).reshape(n + 1, h, w)
        # First pass on the coreset: the bg maximum is a lower bound, so a
        # cell whose every way scores below it is background for sure.
        sub_counts = torch.bincount(groups[coreset], minlength=n + 1).tolist()
        out = self._group_max(q, protos[coreset], sub_counts[: n + 1])
        margin = out[1:].amax(0) - out[0]  # >= the exact margin
        unsure = F.max_pool2d(
            (margin >= 0).float().reshape(1, 1, h, w), 3, 1, 1
        ).flatten()
        idx = unsure.nonzero()[:, 0]
        if idx.numel():
            out[0, idx] = self._group_max(q[idx], protos[: counts[0]], counts[:1])[0]
        return out.reshape(n + 1, h, w)

    def _group_max(self, q: Tensor, protos: Tensor, counts: List[int]) -> Tensor:
        """Per-group maximum similarity, block by block.

        Args:
            q (Tensor): ``[M, C]`` query vectors (normalised for cosine).
            protos (Tensor): ``[P, C]`` grouped prototypes.
            counts (list[int]): Prototypes per group (sum ``P``).

        Returns:
            Tensor: ``[len(counts), M]``; ``empty_score`` for empty groups.
        """
        out = q.new_full((len(counts), q.shape[0]), self.empty_score)
        if protos.shape[0] == 0 or q.shape[0] == 0:
            return out
        step = self.chunk_size or q.shape[0]
        pt = protos.t()
        for i in range(0, q.shape[0], step):
            blk = q[i : i + step]
            if self.distance == 'cosine':
                sim = blk @ pt
            else:
                sim = 1.0 / (torch.cdist(blk[None], protos[None])[0] + 1e-8)
            for g, part in enumerate(torch.split(sim, counts, dim=1)):
                if part.shape[1]:
                    out[g, i : i + step] = part.amax(1)
        return out

    def forward(self, query_feats, supports: List[Dict]) -> Tensor:
        """Per-way similarity maps of the query features to the prototypes."""
        query_feats = self.select_level(query_feats)
        if len(supports) != query_feats.shape[0]:
            raise ValueError(
                f'{query_feats.shape[0]} queries but {len(supports)} support states'
            )
        maps = [self.similarity(q, s) for q, s in zip(query_feats, supports)]
        n = max(m.shape[0] for m in maps)
        maps = [
            F.pad(m, (0, 0, 0, 0, 0, n - m.shape[0]), value=self.empty_score)
            for m in maps
        ]
        return torch.stack(maps) * self.scale

    def predict_by_feat(self, logits: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Logits at the input size.

        Bilinearly upsampled maps (``upsample='logits'``), or the one-hot
        argmax upsampled with nearest neighbour (``'labels'``).
        """
        if self.upsample == 'logits':
            return super().predict_by_feat(logits, batch_img_metas)
        size = tuple(batch_img_metas[0]['img_shape'][:2])
        labels = logits.argmax(1, keepdim=True).float()
        labels = F.interpolate(labels, size, mode='nearest').long()[:, 0]
        return F.one_hot(labels, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
