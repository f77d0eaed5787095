"""SAM2 refiner with prompts derived from R0 (paper Sec. 7.2, Table 8)."""

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from fdseg.models.adapters.sam2 import (
    SAM2_ALIASES,
    SAM2_MODELS,
    predict_batched,
    sam2_model,
    set_predictor_image_size,
)
from fdseg.registry import MODELS

from .base_refiner import BaseRefiner
from .fusion import MaskFusion, component_stats, connected_components

PROMPT_MODES = ('everything', 'points', 'center_points', 'boxes', 'center_points_boxes')

#: Kept for old imports: the short names of
#: :data:`fdseg.models.adapters.sam2.SAM2_MODELS` (the one table).
SAM21_MODELS = {k: SAM2_MODELS[v] for k, v in SAM2_ALIASES.items()}


def prompts_from_mask(
    region: Tensor,
    mode: str,
    point_stride: int = 1,
    point_sampling: str = 'raster',
    center: str = 'centroid',
    connectivity: int = 4,
) -> Dict[str, Optional[Tensor]]:
    """Turn a binary R0 into a batch of SAM prompts (one mask per prompt).

    Modes (Table 8):

    - ``'points'``: every R0 pixel is a one-point prompt; ``point_stride``
      sub-samples them (``8`` = "points(8x)"): ``'raster'`` keeps every
      ``point_stride``-th R0 pixel in row-major order (8x fewer prompts,
      which matches the paper's 0.8 -> 5.2 FPS), ``'grid'`` keeps the R0
      pixels on a ``point_stride`` lattice (``point_stride^2`` fewer).
    - ``'center_points'``: one point per connected component, at its
      ``'centroid'`` (may fall outside a non-convex component) or at the
      component pixel nearest to it (``center='inside'``).
    - ``'boxes'``: the bounding box of each component.
    - ``'center_points_boxes'``: the box and the centre point of each
      component together in one prompt.

    Args:
        region (Tensor): ``[H, W]`` bool R0 of one way.
        mode (str): One of the modes above.
        point_stride (int): Sub-sampling of ``'points'``.
        point_sampling (str): ``'raster'`` or ``'grid'``.
        center (str): ``'centroid'`` or ``'inside'``.
        connectivity (int): Of R0's components (4, as the fusion).

    Returns:
        dict: ``points`` ``[P, 1, 2]`` float ``(x, y)`` pixel coordinates or
        None, ``labels`` ``[P, 1]`` int (all foreground) or None, ``boxes``
        ``[P, 4]`` float ``(x0, y0, x1, y1)`` or None. ``P`` may be 0.
    """
    dev = region.device
    out: Dict[str, Optional[Tensor]] = dict(points=None, labels=None, boxes=None)
    if mode == 'points':
        ys, xs = torch.nonzero(region, as_tuple=True)  # row-major order
        if point_sampling == 'raster':
            keep = torch.arange(0, ys.numel(), point_stride, device=dev)
            ys, xs = ys[keep], xs[keep]
        elif point_sampling == 'grid':
            on = (ys % point_stride == 0) & (xs % point_stride == 0)
            ys, xs = ys[on], xs[on]
        else:
            raise ValueError(f'unknown point_sampling {point_sampling!r}')
        pts = torch.stack([xs, ys], 1).float()[:, None]
    elif mode in ('center_points', 'boxes', 'center_points_boxes'):
        labels, num = connected_components(region, connectivity)
        stats = component_stats(labels, num)
        pts = stats['centroid']
        if center == 'inside' and num:
            ys, xs = torch.nonzero(labels, as_tuple=True)
            lab = labels[ys, xs] - 1
            d = (xs.float() - pts[lab, 0]) ** 2 + (ys.float() - pts[lab, 1]) ** 2
            # Nearest pixel per component: sort by (component, distance);
            # stable, so ties go to the first pixel in raster order.
            key = lab.double() * (float(d.max()) + 1) + d.double()
            order = torch.sort(key, stable=True).indices
            lab_sorted = lab[order]
            first = torch.ones_like(lab_sorted, dtype=torch.bool)
            first[1:] = lab_sorted[1:] != lab_sorted[:-1]
            sel = order[first]
            pts = torch.stack([xs[sel], ys[sel]], 1).float()
        elif center != 'centroid':
            raise ValueError(f'unknown center {center!r}')
        pts = pts[:, None]
        if mode != 'center_points':
            out['boxes'] = stats['box']
        if mode == 'boxes':
            pts = None
    else:
        raise ValueError(f'prompt mode must be one of {PROMPT_MODES[1:]}')
    if pts is not None:
        out['points'] = pts
        out['labels'] = torch.ones(pts.shape[:2], dtype=torch.int, device=dev)
    return out


@MODELS.register_module()
class SAM2PromptRefiner(BaseRefiner):
    """Refine R0 with SAM2 masks prompted from R0 (Table 8).

    Call flow::

        query ─ SAM2 image encoder (once per image, at image_size) ─ feats
        R0 ─ prompts (points / centres / boxes; one mask each) ──┐
             or a point grid (everything: automatic generator) ──┴─ decoder
        ─ masks [P,H,W] ─ MaskFusion (the FastSAM fusion, eqs. 9-14) ─ R

    All prompts of an image share one image encoding and go through the
    mask decoder in batches of ``prompts_per_batch``. With multimask output
    the mask with the highest predicted IoU is kept for each prompt.
    ``'everything'`` uses sam2's ``SAM2AutomaticMaskGenerator`` with its
    default filters (predicted IoU, stability, box NMS) and
    ``points_per_side`` grid points.

    Like :class:`FastSAMRefiner`, the SAM2 model is built lazily and kept
    out of this module's ``state_dict``; ``sam2`` is imported lazily
    (importing it initialises Hydra).

    Args:
        model (str): SAM2.1 size, ``'t'``, ``'s'`` (paper), ``'b+'``, ``'l'``
            (or ``'tiny'``, ``'small'``, ``'base_plus'``, ``'large'``).
        checkpoint (str, optional): Registered name or path; defaults to
            the size's registered SAM2.1 checkpoint. ``None`` (explicitly)
            keeps random weights. Use ``'default'`` for the registered one.
        image_size (int): SAM2 input resolution; the query is up-sampled to
            it (1024, SAM2's default).
        prompt_mode (str): ``'everything'``, ``'points'``,
            ``'center_points'``, ``'boxes'``, ``'center_points_boxes'``.
        points_per_side (int): Grid of ``'everything'`` (64 or 32).
        point_stride (int): ``'points'`` sub-sampling (1 or 8).
        point_sampling (str): ``'raster'`` or ``'grid'``
            (see :func:`prompts_from_mask`).
        center (str): ``'centroid'`` or ``'inside'``.
        prompts_per_batch (int): Prompts per decoder call (memory bound).
        multimask_output (bool | str): ``'auto'`` = three masks (best kept)
            for single-point prompts, one mask when a box is given, as SAM
            recommends for ambiguous vs. unambiguous prompts.
        amg_cfg (dict, optional): Extra ``SAM2AutomaticMaskGenerator``
            arguments for ``'everything'``.
        fusion (dict, optional): :class:`MaskFusion` options.
        init_cfg (dict, optional): Unused.
    """

    def __init__(
        self,
        model: str = 's',
        checkpoint: Optional[str] = 'default',
        image_size: int = 1024,
        prompt_mode: str = 'center_points',
        points_per_side: int = 32,
        point_stride: int = 1,
        point_sampling: str = 'raster',
        center: str = 'centroid',
        prompts_per_batch: int = 64,
        multimask_output='auto',
        amg_cfg: Optional[dict] = None,
        fusion: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg=init_cfg)
        if sam2_model(model) is None:
            raise ValueError(
                f'model must be one of {list(SAM2_ALIASES) + list(SAM2_MODELS)}'
            )
        if prompt_mode not in PROMPT_MODES:
            raise ValueError(f'prompt_mode must be one of {PROMPT_MODES}')
        if image_size % 32:
            raise ValueError('image_size must be a multiple of 32')
        self.model_size = model
        self.config_file, default_ckpt = sam2_model(model)
        self.checkpoint = default_ckpt if checkpoint == 'default' else checkpoint
        self._check_checkpoint_matches()
        self.image_size = image_size
        self.prompt_mode = prompt_mode
        self.points_per_side = points_per_side
        self.point_stride = point_stride
        self.point_sampling = point_sampling
        self.center = center
        self.prompts_per_batch = prompts_per_batch
        self.multimask_output = multimask_output
        self.amg_cfg = dict(amg_cfg or {})
        self.fusion = MaskFusion(**(fusion or {}))
        self._engine: List = []  # [predictor or mask generator]

    def _check_checkpoint_matches(self) -> None:
        """A registered SAM2.1 name must belong to ``model``'s config."""
        from fdseg.utils.checkpoints import CHECKPOINTS

        entry = CHECKPOINTS.get(self.checkpoint or '')
        cfg = (entry or {}).get('sam2_config')
        if cfg is not None and not self.config_file.endswith(cfg):
            raise ValueError(
                f'checkpoint {self.checkpoint!r} is for {cfg}, but '
                f'model={self.model_size!r} builds {self.config_file}'
            )

    # ------------------------------------------------------------------
    def load(self, device='cpu'):
        """Build the SAM2 predictor / mask generator once and return it."""
        if self._engine:
            eng = self._engine[0]
            model = eng.model if hasattr(eng, 'model') else eng.predictor.model
            if model.device != torch.device(device):
                model.to(device)
            return eng
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        ckpt = None
        if self.checkpoint is not None:
            from fdseg.utils.checkpoints import resolve_checkpoint

            ckpt = resolve_checkpoint(self.checkpoint)
        overrides = []
        if self.image_size != 1024:
            overrides.append(f'++model.image_size={self.image_size}')
        # sam2 loads the checkpoint with torch.load(weights_only=True).
        net = build_sam2(
            self.config_file,
            ckpt,
            device=str(device),
            mode='eval',
            hydra_overrides_extra=overrides,
        )
        if self.prompt_mode == 'everything':
            eng = SAM2AutomaticMaskGenerator(
                net, points_per_side=self.points_per_side, **self.amg_cfg
            )
            predictor = eng.predictor
        else:
            eng = predictor = SAM2ImagePredictor(net)
        # The predictor hard-codes the 1024-input feature sizes.
        set_predictor_image_size(predictor, self.image_size)
        self._engine.append(eng)
        return eng

    @staticmethod
    def _to_numpy(img: Tensor) -> np.ndarray:
        """``[3, H, W]`` float 0..255 -> ``[H, W, 3]`` uint8 RGB."""
        return img.round().clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()

    def _multimask(self, prompts: Dict[str, Optional[Tensor]]) -> bool:
        if self.multimask_output != 'auto':
            return bool(self.multimask_output)
        return prompts['boxes'] is None

    @torch.no_grad()
    def predict_prompts(
        self, predictor, prompts: Dict[str, Optional[Tensor]], size
    ) -> Tensor:
        """Decode a batch of prompts on the predictor's current image.

        Args:
            predictor: A ``SAM2ImagePredictor`` with its image set.
            prompts (dict): Output of :func:`prompts_from_mask`.
            size (tuple[int, int]): ``(H, W)`` of the query.

        Returns:
            Tensor: ``[P, H, W]`` bool, one mask per prompt.
        """
        dev = predictor.device
        pts, lab, box = prompts['points'], prompts['labels'], prompts['boxes']
        n = pts.shape[0] if pts is not None else box.shape[0]
        if n == 0:
            return torch.zeros(0, *size, dtype=torch.bool, device=dev)
        out = []
        for masks, iou in predict_batched(
            predictor, pts, lab, box, self._multimask(prompts), self.prompts_per_batch
        ):
            best = iou.argmax(1)  # [p]; a no-op without multimask
            out.append(masks[torch.arange(masks.shape[0]), best])
        return torch.cat(out, 0).bool()

    @torch.no_grad()
    def refine(
        self, imgs: Tensor, coarse: Tensor, data_samples: Optional[Sequence] = None
    ) -> Tensor:
        """Refine coarse label maps with SAM2 (Table 8 prompt modes).

        Args:
            imgs (Tensor): ``[B, 3, H, W]`` float RGB query images, 0..255.
            coarse (Tensor): ``[B, H, W]`` long R0.
            data_samples (Sequence, optional): Unused.

        Returns:
            Tensor: ``[B, H, W]`` long R.
        """
        out = coarse.clone()
        h, w = coarse.shape[-2:]
        for i in range(coarse.shape[0]):
            if not bool((coarse[i] > 0).any()):
                continue  # no prompt / nothing selectable: R = R0
            eng = self.load(imgs.device)
            img = self._to_numpy(imgs[i])
            if self.prompt_mode == 'everything':
                anns = eng.generate(img)
                if anns:
                    masks = torch.from_numpy(
                        np.stack([a['segmentation'] for a in anns])
                    ).to(coarse.device)
                else:
                    masks = torch.zeros(0, h, w, dtype=torch.bool, device=coarse.device)
                out[i] = self.fusion(coarse[i], masks)
                continue
            eng.set_image(img)  # one encoding for every prompt and way

            def masks_of(region: Tensor) -> Tensor:
                prompts = prompts_from_mask(
                    region,
                    self.prompt_mode,
                    self.point_stride,
                    self.point_sampling,
                    self.center,
                    self.fusion.connectivity,
                )
                return self.predict_prompts(eng, prompts, (h, w)).to(region.device)

            out[i] = self.fusion(coarse[i], masks_of)
            eng.reset_predictor()
        return out
