"""PerSAM / PerSAM-F (Zhang et al., 2023) as a training-free segmentor.

Table 4's "PerSAM" row (8.0 mIoU / 37.9 FB-IoU on GFDS): SAM v1 ViT-H
personalised by one reference image and mask. The steps and their
constants follow ``persam.py`` / ``persam_f.py`` of the official repository
(ZrrSkywalker/Personalize-SAM); docs/sam_baselines.md lists every choice
and deviation.
"""

from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fdseg.models.adapters.segment_anything import (
    decode,
    encode_image,
    sam_image,
    upsample_to_image,
)
from fdseg.models.utils import downsample_mask
from fdseg.registry import MODELS

from .sam_training_free import SAMTrainingFreeSegmentor


def point_selection(sim: Tensor, topk: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """PerSAM's location prior: argmax (positive) / argmin (negative).

    Args:
        sim (Tensor): ``[H, W]`` similarity at the image size.
        topk (int): Points of each kind (1 in the official scripts).

    Returns:
        tuple: ``(pos [k, 2], neg [k, 2])`` (x, y) pixel coordinates.
    """
    w = sim.shape[1]
    flat = sim.flatten()
    pos = flat.topk(topk)[1]
    neg = flat.topk(topk, largest=False)[1]

    def xy(idx):
        return torch.stack((idx % w, idx // w), dim=1).cpu().numpy()

    return xy(pos), xy(neg)


def mask_box(mask: Tensor) -> Optional[np.ndarray]:
    """``[x_min, y_min, x_max, y_max]`` of a bool mask, None when empty."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if ys.numel() == 0:
        return None
    return np.array(
        [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())], dtype=np.int64
    )


def dice_loss(logits: Tensor, target: Tensor) -> Tensor:
    """PerSAM-F's dice loss (``calculate_dice_loss``), ``[1, HW]`` inputs."""
    p = logits.sigmoid().flatten(1)
    num = 2 * (p * target).sum(-1)
    den = p.sum(-1) + target.sum(-1)
    return (1 - (num + 1) / (den + 1)).sum()


def sigmoid_focal_loss(
    logits: Tensor, target: Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> Tensor:
    """PerSAM-F's focal loss (``calculate_sigmoid_focal_loss``)."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.mean(1).sum()


@MODELS.register_module()
class PerSAMSegmentor(SAMTrainingFreeSegmentor):
    """PerSAM (training-free) and PerSAM-F (``variant='persam_f'``).

    Call flow (one way, one reference)::

        reference (once per support set)
          img ─ SAM encoder ─ F_R [C,h,w]
          mask (0/255, 3 ch) ─ resize + normalise + pad like the image
               ─ bilinear to h x w ─ channel 0 > 0 ─ fg cells
               (a defect that vanishes: small-defect rule, see below)
          t = mean F_R[fg]  (PerSAM-F: (max + mean) / 2)
        query
          img ─ SAM encoder ─ F_Q ─ cos(t, F_Q) ─ x4 + postprocess ─ S [H,W]
          P+ = argmax S, P- = argmin S  (PerSAM-F: P+ only)
          PerSAM:   decoder(P+, P-, single mask,
                            attn_sim = sigmoid(zscore(S) at h x w),
                            target embedding t)          ─ step 1
                    decoder(points, mask input, 3 masks) ─ refinement 1
                    decoder(points, box, mask input)     ─ refinement 2
          PerSAM-F: decoder(P+, 3 masks) ─ sum_i w_i M_i  (w learnt on the
                    reference: 1000 AdamW steps, dice + focal)
                    decoder(P+, box, mask input) twice
          final mask logits (SAM threshold 0) at the query size

    Failure modes of the official code, defined here:
        * ``'empty_prediction'``: a refinement needs the box of an empty
          mask (the official code crashes on ``x.min()``). The remaining
          refinements are skipped and the empty mask is the result (an
          empty result stays empty).
        * ``'small_defect_fallback'``: the reference mask has no cell left
          on the h x w grid (the official mean over zero features is NaN).
          The cells come from :func:`fdseg.models.utils.downsample_mask`
          (``small_defect_rule``, default ``'bilinear_nearest'``: bilinear,
          then nearest, then any-overlap), so a defect is never lost.
        * ``'empty_support'``: see ``empty_support``.
        Each sample's metainfo ``sam_baseline`` lists them per way, with the
        prompts.

    PerSAM is one-shot: a way with more than one support raises (the
    method personalises SAM from a single reference).

    Args:
        variant (str): ``'persam'`` (training-free) or ``'persam_f'``.
        target_guided_attention (bool): PerSAM's attention guidance.
        target_semantic_prompting (bool): PerSAM's target embedding.
        num_refinements (int): Cascaded post-refinement steps (0-2; 2).
        topk (int): Points of each kind in the location prior (1).
        small_defect_rule (str): ``downsample_mask`` mode of the fallback.
        persam_f_epochs (int): PerSAM-F steps (1000).
        persam_f_lr (float): AdamW learning rate (1e-3).
        persam_f_eps (float): AdamW eps (1e-4).
        **kwargs: :class:`SAMTrainingFreeSegmentor` arguments.
    """

    def __init__(
        self,
        variant: str = 'persam',
        target_guided_attention: bool = True,
        target_semantic_prompting: bool = True,
        num_refinements: int = 2,
        topk: int = 1,
        small_defect_rule: str = 'bilinear_nearest',
        persam_f_epochs: int = 1000,
        persam_f_lr: float = 1e-3,
        persam_f_eps: float = 1e-4,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if variant not in ('persam', 'persam_f'):
            raise ValueError(f"variant must be 'persam' or 'persam_f', got {variant!r}")
        if num_refinements not in (0, 1, 2):
            raise ValueError(
                f'num_refinements must be 0, 1 or 2, got {num_refinements}'
            )
        self.variant = variant
        self.target_guided_attention = target_guided_attention
        self.target_semantic_prompting = target_semantic_prompting
        self.num_refinements = num_refinements
        self.topk = topk
        self.small_defect_rule = small_defect_rule
        self.persam_f_epochs = persam_f_epochs
        self.persam_f_lr = persam_f_lr
        self.persam_f_eps = persam_f_eps

    # ------------------------------------------------------------------
    # reference
    # ------------------------------------------------------------------
    def reference_cells(self, mask: Tensor, feat_hw) -> Tuple[Tensor, bool]:
        """Foreground cells of the reference mask on the embedding grid.

        Official: the 0/255 mask (3 channels) goes through ``set_image``'s
        resize, normalisation and padding, is resized bilinearly to the
        grid and channel 0 is thresholded at 0.

        Returns:
            tuple: ``[h, w]`` bool and whether the small-defect rule was
            needed.
        """
        m = mask.to(torch.uint8).numpy() * 255
        x, (h, w) = sam_image(self.sam, np.repeat(m[..., None], 3, axis=2))
        cells = F.interpolate(x, size=feat_hw, mode='bilinear')[0, 0] > 0
        if bool(cells.any()):
            return cells, False
        # Small-defect rule on the binary mask in the same (padded) frame:
        # any resized pixel above the background value (a defect shrunk by
        # the resize keeps a few grey pixels), padding excluded.
        bg = -self.sam.pixel_mean[0, 0, 0] / self.sam.pixel_std[0, 0, 0]
        binary = torch.zeros_like(x[:, 0])
        binary[:, :h, :w] = (x[:, 0, :h, :w] > bg + 1e-3).float()
        soft = downsample_mask(binary, feat_hw, mode=self.small_defect_rule)[0]
        return soft > 0.5 if bool((soft > 0.5).any()) else soft > 0, True

    def encode_way(self, imgs: List[np.ndarray], masks: List[Tensor]) -> Dict:
        """PerSAM's target embedding (and PerSAM-F's mask weights)."""
        if len(imgs) != 1:
            raise ValueError(
                f'PerSAM is one-shot: got {len(imgs)} supports for one way '
                '(use a 1-shot dataset, shot=1)'
            )
        img, mask = imgs[0], masks[0]
        feats, input_size = encode_image(self.sam, img)
        ref_feat = feats[0].permute(1, 2, 0)  # h, w, C
        cells, fallback = self.reference_cells(mask, ref_feat.shape[:2])
        target = ref_feat[cells]
        mean = target.mean(0)
        state = dict(failures=['small_defect_fallback'] if fallback else [])
        if self.variant == 'persam':
            state['target_feat'] = (mean / mean.norm())[None]
            state['target_embedding'] = mean[None, None]
            return state
        feat = target.max(0)[0] / 2 + mean / 2
        state['target_feat'] = (feat / feat.norm())[None]
        state['weights'] = self.fit_mask_weights(
            img, feats, input_size, state['target_feat'], mask
        )
        return state

    def fit_mask_weights(
        self, img, feats: Tensor, input_size, target_feat: Tensor, mask: Tensor
    ) -> Tensor:
        """PerSAM-F: learn the 3 mask weights on the reference (``[3]``)."""
        H, W = img.shape[:2]
        sim = self.similarity(feats, target_feat, input_size, (H, W))
        pos, _ = point_selection(sim, self.topk)
        coords, labels = self._points(pos, None, (H, W))
        high, _, _ = decode(
            self.sam, feats, input_size, (H, W), coords, labels, multimask_output=True
        )
        logits_high = high[0].flatten(1).detach()  # 3, HW
        gt = mask.float().flatten()[None].to(logits_high.device)
        w = torch.nn.Parameter(torch.ones(2, 1, device=logits_high.device) / 3)
        opt = torch.optim.AdamW([w], lr=self.persam_f_lr, eps=self.persam_f_eps)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.persam_f_epochs)
        with torch.enable_grad():
            for _ in range(self.persam_f_epochs):
                weights = torch.cat((1 - w.sum(0)[None], w), dim=0)
                lg = (logits_high * weights).sum(0)[None]
                loss = dice_loss(lg, gt) + sigmoid_focal_loss(lg, gt)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        return torch.cat((1 - w.sum(0)[None], w), dim=0).detach().flatten()

    # ------------------------------------------------------------------
    # query
    # ------------------------------------------------------------------
    def query_features(self, img: np.ndarray) -> Dict:
        """SAM image embedding of the query (shared by the ways)."""
        feats, input_size = encode_image(self.sam, img)
        return dict(feats=feats, input_size=input_size)

    def similarity(self, feats: Tensor, target_feat: Tensor, input_size, size):
        """Cosine map of the target feature on the query, ``[H, W]``."""
        C, h, w = feats.shape[1:]
        f = feats[0] / feats[0].norm(dim=0, keepdim=True)
        sim = (target_feat @ f.reshape(C, h * w)).reshape(1, 1, h, w)
        return upsample_to_image(self.sam, sim, input_size, size)

    def _points(self, pos, neg, size):
        from segment_anything.utils.transforms import ResizeLongestSide

        xy = pos if neg is None else np.concatenate([pos, neg], axis=0)
        labels = np.array([1] * len(pos) + ([] if neg is None else [0] * len(neg)))
        tf = ResizeLongestSide(self.sam.image_encoder.img_size)
        xy = tf.apply_coords(xy, size)
        dev = self._device
        coords = torch.as_tensor(xy, dtype=torch.float, device=dev)[None]
        return coords, torch.as_tensor(labels, dtype=torch.int, device=dev)[None]

    def _box(self, box: np.ndarray, size) -> Tensor:
        from segment_anything.utils.transforms import ResizeLongestSide

        tf = ResizeLongestSide(self.sam.image_encoder.img_size)
        b = tf.apply_boxes(box[None], size)
        return torch.as_tensor(b, dtype=torch.float, device=self._device)

    def segment_way(
        self, img: np.ndarray, qf: Dict, state: Dict
    ) -> Tuple[Tensor, Dict]:
        """PerSAM / PerSAM-F on one query for one way.

        Returns:
            tuple: mask logits ``[H, W]`` (> 0 = defect) and the record
            ``dict(failures, points, labels, boxes)``.
        """
        size = img.shape[:2]
        feats, input_size = qf['feats'], qf['input_size']
        sim = self.similarity(feats, state['target_feat'], input_size, size)
        rec = dict(failures=list(state['failures']), boxes=[])
        if self.variant == 'persam':
            pos, neg = point_selection(sim, self.topk)
        else:
            pos, neg = point_selection(sim, self.topk)[0], None
        coords, labels = self._points(pos, neg, size)
        rec['points'] = (pos if neg is None else np.concatenate([pos, neg])).tolist()
        rec['labels'] = labels[0].tolist()

        def run(**kw):
            return decode(self.sam, feats, input_size, size, coords, labels, **kw)

        if self.variant == 'persam':
            attn_sim = target = None
            if self.target_guided_attention:
                z = (sim - sim.mean()) / torch.std(sim)
                z = F.interpolate(z[None, None], size=feats.shape[-2:], mode='bilinear')
                attn_sim = z.sigmoid().unsqueeze(0).flatten(3)
            if self.target_semantic_prompting:
                target = state['target_embedding']
            high, iou, low = run(
                multimask_output=False, attn_sim=attn_sim, target_embedding=target
            )
            logit, low_in = high[0, 0], low[:, 0:1]
            steps = [dict(box=False)] * min(self.num_refinements, 1)
            steps += [dict(box=True)] * max(self.num_refinements - 1, 0)
        else:
            high, iou, low = run(multimask_output=True)
            wts = state['weights'].to(high)
            logit = (high[0] * wts[:, None, None]).sum(0)
            low_in = (low[0] * wts[:, None, None]).sum(0)[None, None]
            steps = [dict(box=True)] * self.num_refinements
        for step in steps:
            kw = dict(mask_input=low_in, multimask_output=True)
            if step['box']:
                box = mask_box(logit > self.sam.mask_threshold)
                if box is None:
                    rec['failures'].append('empty_prediction')
                    break
                rec['boxes'].append(box.tolist())
                kw['boxes'] = self._box(box, size)
            high, iou, low = run(**kw)
            best = int(torch.argmax(iou[0]))
            logit, low_in = high[0, best], low[:, best : best + 1]
        return logit, rec
