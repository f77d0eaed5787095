"""Matcher (Liu et al., ICLR 2024) as a training-free segmentor.

Table 4's "Matcher" row (5.0 mIoU / 38.5 FB-IoU on GFDS): DINOv2 ViT-L/14
patch matching turns the references into point prompts for SAM v1 ViT-H,
whose masks are scored against the references and merged. The steps follow
``matcher/Matcher.py`` and the modified ``SamAutomaticMaskGenerator`` of
the official repository (aim-uofa/Matcher); the defaults are the one-shot
semantic-segmentation settings of its ``scripts/coco.sh`` (COCO-20i).
docs/sam_baselines.md lists every choice and deviation.
"""

import itertools
import random
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fdseg.models.adapters.segment_anything import decode, encode_image
from fdseg.models.utils import downsample_mask
from fdseg.models.utils.constants import IMAGENET_MEAN_01, IMAGENET_STD_01
from fdseg.registry import MODELS

from .sam_training_free import SAMTrainingFreeSegmentor

#: scripts/coco.sh of the official repository (one-shot COCO-20i) over the
#: main_oss.py defaults; the generator keys are SamAutomaticMaskGenerator's.
COCO_ONE_SHOT = dict(
    num_centers=8,
    use_box=False,
    use_points_or_centers=True,
    sample_range=(1, 6),
    max_sample_iterations=64,
    alpha=1.0,
    beta=0.0,
    exp=0.0,
    emd_filter=0.0,
    purity_filter=0.02,
    coverage_filter=0.0,
    use_score_filter=True,
    deep_score_filter=0.33,
    deep_score_norm_filter=0.1,
    topk_scores_threshold=0.0,
    num_merging_mask=9,
)
COCO_GENERATOR = dict(
    points_per_side=64,
    points_per_batch=64,
    pred_iou_thresh=0.88,
    stability_score_thresh=0.95,
    stability_score_offset=1.0,
    sel_pred_iou_thresh=0.85,
    sel_stability_score_thresh=0.90,
    sel_stability_score_offset=1.0,
    box_nms_thresh=0.65,
    dense_pred=True,
    multimask_output=False,
    output_layer=0,
    sel_multimask_output=True,
    sel_output_layer=3,
)


def hungarian_points(
    ref_feats: Tensor,
    tar_feat: Tensor,
    ref_pool: Tensor,
    feat_size: int,
    patch: int,
    input_size: Tuple[int, int],
) -> Tuple[np.ndarray, Tensor, Tensor]:
    """Matcher's bidirectional patch matching (``patch_level_matching``).

    Args:
        ref_feats (Tensor): ``[K*N, C]`` L2-normalised reference tokens.
        tar_feat (Tensor): ``[N, C]`` L2-normalised query tokens.
        ref_pool (Tensor): ``[K*N]`` 0/1 reference patches.
        feat_size (int): Tokens per side.
        patch (int): Patch size (14).
        input_size (tuple): ``(H, W)`` of the encoder input.

    Returns:
        tuple: points ``[P, 2]`` (x, y) in input pixels, the similarity
        ``S`` ``[K*N, N]`` and the EMD cost ``C = (1 - S) / 2``.
    """
    from scipy.optimize import linear_sum_assignment

    S = ref_feats @ tar_feat.t()
    C = (1 - S) / 2
    fg = ref_pool.flatten().bool()
    S_fwd = S[fg]
    rows, cols = linear_sum_assignment(S_fwd.cpu().numpy(), maximize=True)
    rows, cols = torch.as_tensor(rows), torch.as_tensor(cols)
    scores = S_fwd[rows, cols]
    mask_idx = fg.nonzero()[:, 0]
    # Reverse matching: the matched query patches back to all references;
    # keep the pairs whose reverse match lands inside the reference mask
    # (unless none does).
    _, rev_cols = linear_sum_assignment(S.t()[cols].cpu().numpy(), maximize=True)
    keep = torch.isin(torch.as_tensor(rev_cols), mask_idx)
    if bool(keep.any()):
        rows, cols, scores = rows[keep], cols[keep], scores[keep]
    n = len(scores) // 2 if len(scores) > 40 else len(scores)
    order = torch.sort(scores, descending=True)[1][:n]
    # The official de-duplication (Python set order) fixes the point order
    # that the random prompt subsets index.
    uniq = torch.tensor(list(set(cols[order].tolist())), dtype=torch.long)
    xs = (uniq % feat_size) * patch + patch // 2
    ys = (uniq // feat_size) * patch + patch // 2
    pts = [
        [int(x), int(y)]
        for x, y in zip(xs.tolist(), ys.tolist())
        if int(x) < input_size[1] and int(y) < input_size[0]
    ]
    return np.array(pts, dtype=np.int64).reshape(-1, 2), S, C


def colex_combinations(n: int, k: int) -> List[List[int]]:
    """All ``k``-subsets of ``range(n)`` in the official order (colex)."""
    if k > n:
        return []
    combos = itertools.combinations(range(n), k)
    return [list(c) for c in sorted(combos, key=lambda c: c[::-1])]


def sample_prompt_sets(
    points: np.ndarray, sample_range, max_iterations: int, rng: random.Random
) -> List[np.ndarray]:
    """Matcher's ``RobustPromptSampler.sample_points``.

    For each size ``i`` in ``sample_range`` (clipped to the point count):
    ``max_iterations`` random subsets (``rng.sample``) when there are more
    than 8 points, else every subset.

    Returns:
        list[ndarray]: per size, ``[num_sets, i, 2]`` point sets.
    """
    n = len(points)
    out = []
    for i in range(min(sample_range[0], n), min(sample_range[1], n) + 1):
        if n > 8:
            index = [rng.sample(range(n), i) for _ in range(max_iterations)]
        else:
            index = colex_combinations(n, i)
        out.append(np.take(points, index, axis=0))
    return out


def kmeans_pp(X: Tensor, K: int, gen: torch.Generator, max_iters: int = 100):
    """Matcher's ``kmeans_pp`` (k-means++ seeding, Lloyd iterations).

    Returns:
        tuple: centres ``[K, 2]`` and the assignment ``[P]``.
    """
    centers = X[torch.randint(X.size(0), (1,), generator=gen)]
    for _ in range(K - 1):
        d = torch.cdist(X, centers).min(dim=1).values + 1e-6
        idx = torch.multinomial(d**2 / torch.sum(d**2), 1, generator=gen)
        centers = torch.cat([centers, X[idx]], dim=0)
    assign = None
    for _ in range(max_iters):
        assign = torch.argmin(torch.cdist(X, centers), dim=1)
        new = torch.stack(
            [
                X[assign == k].mean(0) if bool((assign == k).any()) else centers[k]
                for k in range(K)
            ]
        )
        if torch.equal(new, centers):
            break
        centers = new.clone()
    return centers, assign


def merge_masks(
    masks: Tensor,
    purity: Tensor,
    coverage: Tensor,
    emd: Tensor,
    cfg: Dict,
) -> Tuple[Tensor, List[int]]:
    """Matcher's instance-level filtering and controllable merging.

    Args:
        masks (Tensor): ``[M, H, W]`` bool candidate masks.
        purity (Tensor): ``[M]`` matched points inside / mask area.
        coverage (Tensor): ``[M]`` matched points inside / all points.
        emd (Tensor): ``[M]`` 1 - EMD to the reference patches.
        cfg (dict): alpha, beta, exp, the three filters, use_score_filter,
            deep_score_filter, deep_score_norm_filter,
            topk_scores_threshold, num_merging_mask.

    Returns:
        tuple: the merged ``[H, W]`` bool mask and the indices (into
        ``masks``) of the merged masks.
    """
    metrics = dict(purity=purity, coverage=coverage, emd=emd)
    scores = cfg['alpha'] * emd + cfg['beta'] * purity * coverage ** cfg['exp']
    idx_all = torch.arange(len(masks))
    for name in ('coverage', 'emd', 'purity'):
        t = cfg[f'{name}_filter']
        if t > 0:
            thres = min(t, float(metrics[name].max()))
            keep = torch.where(metrics[name] >= thres)[0]
            scores, idx_all = scores[keep], idx_all[keep]
            metrics = {k: v[keep] for k, v in metrics.items()}
    if cfg['use_score_filter']:
        dist, rank = torch.sort(1 - scores, descending=False)
        norm = (dist - dist.min()) / (dist.max() + 1e-6)
        sel = dist < cfg['deep_score_filter']
        sel[..., 0] = True
        sel = sel & (norm < cfg['deep_score_norm_filter'])
        chosen = rank[sel][: cfg['num_merging_mask']]
    else:
        k = min(cfg['num_merging_mask'], scores.size(0))
        top = scores.topk(k)[1]
        ts = scores[top].numpy()
        if cfg['topk_scores_threshold'] > 0:
            ts = ts / ts.max()
        chosen = top[torch.from_numpy(ts > cfg['topk_scores_threshold'])]
    picked = idx_all[chosen].tolist()
    merged = masks[picked].sum(0) > 0 if picked else torch.zeros_like(masks[0])
    return merged, picked


@MODELS.register_module()
class MatcherSegmentor(SAMTrainingFreeSegmentor):
    """Matcher: DINOv2 matching -> SAM prompts -> scored, merged masks.

    Call flow (one way, K references)::

        references (once per support set)
          imgs ─ resize to input_size ─ DINOv2 (pre-norm patch tokens)
          masks ─ nearest to input_size ─ 14x14 avg-pool > 0 (any overlap)
        query
          img ─ resize ─ DINOv2 ─ bidirectional Hungarian matching (scipy)
              ─ keep-inside-mask rule ─ top half when > 40 matches
              ─ points (patch centres)  [or k-means++ centres]
          robust prompt sampler: subsets of sizes sample_range (seeded)
          SAM (image at input_size): 64x64 grid masks (dense_pred) + masks
              of every subset ─ IoU / stability filters ─ box NMS
          per mask: EMD to the reference patches (POT), purity, coverage
          filters ─ score filter (or top-k) ─ union of <= num_merging_mask
          ─ nearest back to the query size ─ logits (+1 / -1)

    Randomness: each query's prompt subsets come from ``random.Random(seed)``
    and its k-means from ``torch.Generator().manual_seed(seed)``, so a query
    gives the same mask whatever ran before; ``seed`` is recorded in the
    sample's ``sam_baseline`` metainfo.

    Failure modes of the official code, defined here:
        * ``'no_mask'``: every SAM mask is filtered out (the official
          ``torch.cat`` of an empty list crashes): the prediction is empty.
        * ``'no_points'``: no matched point lies inside the image.
        * ``'kmeans_retry_limit'``: the official k-means loop re-runs until
          every cluster is non-empty, forever when the points have fewer
          distinct positions than ``num_centers``; here at most
          ``max_kmeans_retries`` runs, then the distinct centres are used.

    Args:
        encoder (dict): DINOv2 backbone config (pre-norm tokens:
            ``final_norm=False``).
        input_size (int): Size both models see the images at (the paper's
            266; the official script's 518).
        seed (int): Seed of the prompt sampler and k-means.
        max_kmeans_retries (int): See above.
        matcher_cfg (dict): Overrides of :data:`COCO_ONE_SHOT`.
        generator_cfg (dict): Overrides of :data:`COCO_GENERATOR`.
        **kwargs: :class:`SAMTrainingFreeSegmentor` arguments.
    """

    def __init__(
        self,
        encoder: dict,
        input_size: int = 266,
        seed: int = 0,
        max_kmeans_retries: int = 100,
        matcher_cfg: Optional[dict] = None,
        generator_cfg: Optional[dict] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder = MODELS.build(encoder)
        self.input_size = int(input_size)
        self.seed = int(seed)
        self.max_kmeans_retries = int(max_kmeans_retries)
        for name, given, default in (
            ('matcher_cfg', matcher_cfg, COCO_ONE_SHOT),
            ('generator_cfg', generator_cfg, COCO_GENERATOR),
        ):
            unknown = set(given or {}) - set(default)
            if unknown:
                raise KeyError(f'unknown {name} keys {sorted(unknown)}')
        self.matcher_cfg = {**COCO_ONE_SHOT, **(matcher_cfg or {})}
        self.matcher_cfg['sample_range'] = tuple(self.matcher_cfg['sample_range'])
        self.generator_cfg = {**COCO_GENERATOR, **(generator_cfg or {})}
        self.patch = self.encoder.patch_size
        self.feat_size = self.input_size // self.patch
        self.register_buffer(
            'enc_mean', torch.tensor(IMAGENET_MEAN_01)[:, None, None], False
        )
        self.register_buffer(
            'enc_std', torch.tensor(IMAGENET_STD_01)[:, None, None], False
        )

    def init_weights(self) -> None:
        """SAM from ``checkpoint``; DINOv2 from its own ``init_cfg``."""
        self.encoder.init_weights()
        super().init_weights()

    def train(self, mode: bool = True):
        """Both foundation models stay in eval."""
        super().train(mode)
        self.encoder.eval()
        return self

    # ------------------------------------------------------------------
    def _resize(self, img: np.ndarray) -> Tensor:
        """uint8 ``HxWx3`` -> ``[3, S, S]`` float in 0..1 at ``input_size``.

        The official loader's ``transforms.Resize`` (PIL bilinear with
        antialias) then ``ToTensor``.
        """
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
        s = self.input_size
        if tuple(x.shape[-2:]) != (s, s):
            x = F.interpolate(x, (s, s), mode='bilinear', antialias=True)
            x = x.round().clamp(0, 255)
        return (x / 255.0)[0]

    def _tokens(self, imgs01: Tensor) -> Tensor:
        """``[B, 3, S, S]`` in 0..1 -> L2-normalised ``[B*N, C]`` tokens."""
        x = ((imgs01 - self.enc_mean) / self.enc_std).to(self.enc_mean.device)
        f = self.encoder(x)[0]  # B, C, h, w
        f = f.flatten(2).transpose(1, 2).reshape(-1, f.shape[1])
        return F.normalize(f, dim=1, p=2)

    @staticmethod
    def _sam_uint8(img01: Tensor) -> np.ndarray:
        # Matcher.set_target: img.mul(255).byte() (truncation).
        return np.ascontiguousarray(img01.mul(255).byte().permute(1, 2, 0).numpy())

    def encode_way(self, imgs: List[np.ndarray], masks: List[Tensor]) -> Dict:
        """Reference tokens and 14x14-pooled masks of one way."""
        s = self.input_size
        refs = torch.stack([self._resize(i) for i in imgs])
        m = torch.stack([mk.float() for mk in masks])[:, None]
        m = F.interpolate(m, (s, s), mode='nearest')
        pool = F.avg_pool2d(m, (self.patch, self.patch))
        pool = (pool > self.sam.mask_threshold).float()
        failures = []
        if not bool(pool.any()):
            # A defect lost by the resize (input_size below the image size):
            # the shared small-defect rule on the original masks, any
            # overlap = foreground (the official code would put a 14x14
            # square in the image centre instead).
            orig = torch.stack([mk.float() for mk in masks])
            fs = self.feat_size
            pool = (downsample_mask(orig, (fs, fs), mode='cover') > 0).float()
            failures.append('small_defect_fallback')
        return dict(
            ref_feats=self._tokens(refs),
            ref_pool=pool.reshape(-1),
            nshot=len(imgs),
            failures=failures,
        )

    def query_features(self, img: np.ndarray) -> Dict:
        """Query tokens and SAM embedding at ``input_size``."""
        q = self._resize(img)
        sam_img = self._sam_uint8(q)
        feats, input_size = encode_image(self.sam, sam_img)
        return dict(
            tar_feat=self._tokens(q[None]),
            sam_feats=feats,
            sam_input_size=input_size,
            size=(self.input_size, self.input_size),
        )

    # ------------------------------------------------------------------
    def cluster(self, points: np.ndarray, gen: torch.Generator, rec: Dict):
        """k-means++ centres with the bounded retry loop."""
        X = torch.from_numpy(points).float()
        K = min(self.matcher_cfg['num_centers'], len(points))
        for attempt in range(self.max_kmeans_retries):
            centers, assign = kmeans_pp(X, K, gen)
            if torch.unique(assign).shape[0] == K:
                rec['kmeans_runs'] = attempt + 1
                return centers.numpy().astype(np.int64)
        rec['failures'].append('kmeans_retry_limit')
        rec['kmeans_runs'] = self.max_kmeans_retries
        c = centers[torch.unique(assign)]
        return np.unique(c.numpy().astype(np.int64), axis=0)

    def _masks_from(self, qf: Dict, coords: Tensor, labels: Tensor, dense: bool):
        """One generator batch -> kept ``(masks bool, iou, boxes)``."""
        from segment_anything.utils.amg import (
            batched_mask_to_box,
            calculate_stability_score,
            is_box_near_crop_edge,
        )

        g = self.generator_cfg
        multimask = g['multimask_output'] if dense else g['sel_multimask_output']
        high, iou, _ = decode(
            self.sam,
            qf['sam_feats'],
            qf['sam_input_size'],
            qf['size'],
            coords,
            labels,
            multimask_output=multimask,
        )
        # The official generator selects layers under sel_multimask_output
        # for both kinds of batches.
        layer = g['output_layer'] if dense else g['sel_output_layer']
        if g['sel_multimask_output']:
            if layer in (0, 1, 2):
                high, iou = high[:, layer : layer + 1], iou[:, layer : layer + 1]
            elif layer in (3, 4, 5):
                high, iou = high[:, layer - 3 :], iou[:, layer - 3 :]
        high, iou = high.flatten(0, 1), iou.flatten(0, 1)
        p = 'pred_iou_thresh' if dense else 'sel_pred_iou_thresh'
        st = 'stability_score' if dense else 'sel_stability_score'
        if g[p] > 0:
            keep = iou > g[p]
            high, iou = high[keep], iou[keep]
        stab = calculate_stability_score(
            high, self.sam.mask_threshold, g[f'{st}_offset']
        )
        if g[f'{st}_thresh'] > 0:
            keep = stab >= g[f'{st}_thresh']
            high, iou = high[keep], iou[keep]
        masks = high > self.sam.mask_threshold
        boxes = batched_mask_to_box(masks)
        H, W = qf['size']
        keep = ~is_box_near_crop_edge(boxes, [0, 0, W, H], [0, 0, W, H])
        return masks[keep], iou[keep], boxes[keep]

    def generate(self, qf: Dict, prompt_sets: List[np.ndarray], box=None):
        """The official generator's masks: grid + prompt sets, then NMS."""
        from segment_anything.utils.amg import build_all_layer_point_grids
        from segment_anything.utils.transforms import ResizeLongestSide
        from torchvision.ops.boxes import batched_nms

        g = self.generator_cfg
        H, W = qf['size']
        tf = ResizeLongestSide(self.sam.image_encoder.img_size)
        dev = self._device
        out = []
        bs = g['points_per_batch']
        if g['dense_pred']:
            grid = build_all_layer_point_grids(g['points_per_side'], 0, 1)[0]
            pts = grid * np.array([[W, H]])
            for i in range(0, len(pts), bs):
                c = torch.as_tensor(
                    tf.apply_coords(pts[i : i + bs], (H, W)), device=dev
                )
                lab = torch.ones(c.shape[0], dtype=torch.int, device=dev)
                out.append(self._masks_from(qf, c[:, None, :], lab[:, None], True))
        for sets in prompt_sets:
            labels = np.ones(sets.shape[:2])
            for i in range(0, len(sets), bs):
                c = tf.apply_coords(sets[i : i + bs].astype(np.float64), (H, W))
                c = torch.as_tensor(c, dtype=torch.float, device=dev)
                lab = torch.as_tensor(labels[i : i + bs], dtype=torch.int, device=dev)
                out.append(self._masks_from(qf, c, lab, False))
        if box is not None:
            raise NotImplementedError('use_box=True is not supported')
        masks = torch.cat([o[0] for o in out]) if out else torch.zeros(0, H, W)
        if masks.shape[0] == 0:
            return masks.bool()
        iou = torch.cat([o[1] for o in out])
        boxes = torch.cat([o[2] for o in out])
        keep = batched_nms(
            boxes.float(), iou, torch.zeros(len(boxes)), g['box_nms_thresh']
        )
        return masks[keep]

    def mask_metrics(self, mask: Tensor, points: np.ndarray, C: Tensor, pool: Tensor):
        """Matcher's ``get_mask_scores``: purity, coverage, EMD score."""
        import ot

        m = cv2.resize(
            mask.numpy().astype(np.float32),
            (self.feat_size, self.feat_size),
            interpolation=cv2.INTER_AREA,
        )
        thres = m.max() - 1e-6 if m.max() <= 0 else 0
        m = m > thres
        cost = C[pool.bool(), :][:, torch.from_numpy(m.flatten())]
        n, k = cost.shape
        emd = ot.emd2(a=[1.0 / n] * n, b=[1.0 / k] * k, M=cost.cpu().double().numpy())
        h, w = mask.shape
        p = np.clip(points.astype(np.int64)[:, ::-1], 0, [h - 1, w - 1])
        inside = int(mask.numpy()[p[:, 0], p[:, 1]].sum())
        area = max(float(m.sum()), 1.0)
        return inside / area + 1e-6, inside / len(points) + 1e-6, 1 - float(emd)

    def segment_way(
        self, img: np.ndarray, qf: Dict, state: Dict
    ) -> Tuple[Tensor, Dict]:
        """Matcher on one query for one way (logits ``[H, W]``, record)."""
        H, W = img.shape[:2]
        s = self.input_size
        rec = dict(failures=list(state.get('failures', [])), seed=self.seed)
        all_points, S, C = hungarian_points(
            state['ref_feats'],
            qf['tar_feat'],
            state['ref_pool'],
            self.feat_size,
            self.patch,
            (s, s),
        )
        rec['points'] = all_points.tolist()

        def empty(reason):
            rec['failures'].append(reason)
            return torch.full((H, W), -1.0), rec

        if len(all_points) == 0:
            return empty('no_points')
        rng = random.Random(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        points = all_points
        if not self.matcher_cfg['use_points_or_centers']:
            points = self.cluster(all_points, gen, rec)
        sets = sample_prompt_sets(
            points,
            self.matcher_cfg['sample_range'],
            self.matcher_cfg['max_sample_iterations'],
            rng,
        )
        rec['num_prompt_sets'] = int(sum(len(x) for x in sets))
        masks = self.generate(qf, sets)
        rec['num_masks'] = int(masks.shape[0])
        if masks.shape[0] == 0:
            return empty('no_mask')
        metrics = [
            self.mask_metrics(m, all_points, C, state['ref_pool']) for m in masks
        ]
        purity, coverage, emd = (
            torch.tensor([m[i] for m in metrics]) for i in range(3)
        )
        merged, picked = merge_masks(masks, purity, coverage, emd, self.matcher_cfg)
        rec['merged'] = picked
        out = F.interpolate(merged[None, None].float(), (H, W), mode='nearest')[0, 0]
        return out * 2 - 1, rec
