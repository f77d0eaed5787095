"""Step-by-step transcription of the official GFDS ``MatchingNet`` episode.

Written from the behaviour of ``MatchingNet.forward`` (liutongkun/GFDS,
``MatchingNet_PatchBased.py``) as the yardstick of the speed benchmark
(issue 14): every support and the query go through the extractor, the
prototypes are rebuilt, and the full ``[P, h, w]`` similarity volume is
materialised before its maximum, as the official code does.
"""

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _official_cosine_max(feat_q: Tensor, protos: Tensor) -> Tensor:
    """Max cosine over prototypes, the official way (full volume first).

    Args:
        feat_q (Tensor): ``[1, C, h, w]``.
        protos (Tensor): ``[1, C, P]`` (not normalised).

    Returns:
        Tensor: ``[1, h, w]``.
    """
    _, C, h, w = feat_q.shape
    qn = F.normalize(feat_q, p=2, dim=1).view(1, C, h * w).transpose(1, 2)
    pn = F.normalize(protos, p=2, dim=1)
    vol = torch.bmm(qn, pn).transpose(1, 2).reshape(1, protos.shape[2], h, w)
    return vol.max(dim=1)[0]


@torch.no_grad()
def official_episode(
    network: nn.Module,
    support_imgs: Sequence[Tensor],
    support_masks: Sequence[Tensor],
    query_img: Tensor,
) -> Tensor:
    """One official episode (support + query), cosine distance.

    Args:
        network (nn.Module): The extractor (e.g. the PDN ``Sequential``).
        support_imgs (list[Tensor]): K normalised ``[1, 3, H, W]`` images.
        support_masks (list[Tensor]): K ``[1, H, W]`` masks (1 = defect).
        query_img (Tensor): ``[1, 3, H, W]`` normalised.

    Returns:
        Tensor: ``[1, 2, H, W]`` logits (bg, fg), x10, bilinear with
        ``align_corners=True``.
    """
    H, W = query_img.shape[-2:]
    feats_s = [network(s) for s in support_imgs]
    feat_q = network(query_img)
    side = feat_q.shape[2]
    fgs, bgs = [], []
    for fs, m in zip(feats_s, support_masks):
        m = (m == 1).float()
        pix = (m[0] == 1).nonzero()
        # pixel -> cell: divide by the (slightly inflated) scale, truncate
        cells = (pix / (m.shape[1] / (fs.shape[2] + 1e-6))).to(torch.int64)
        cells = torch.unique(cells.clamp(max=side - 1), dim=0)
        taken = torch.zeros(side, side)
        taken[cells[:, 0], cells[:, 1]] = 1
        free = (taken == 0).nonzero()
        fg = fs[:, :, cells[:, 0], cells[:, 1]]
        if fg.shape[-1] > 10:  # 1-D windows of 3 along the cell list
            fg = fg.unfold(2, 3, 1).mean(dim=-1)
        fgs.append(fg)
        bgs.append(fs[:, :, free[:, 0], free[:, 1]])
    fg_max = _official_cosine_max(feat_q, torch.cat(fgs, -1))
    bg_max = _official_cosine_max(feat_q, torch.cat(bgs, -1))
    logits = torch.stack([bg_max, fg_max], 1) * 10.0
    return F.interpolate(logits, size=(H, W), mode='bilinear', align_corners=True)
