"""Few-shot defect segmentation as SAM2 video tracking (paper Sec. 5.2).

The support image(s) with their masks are the conditioning frames of a short
video and the query is the next frame: SAM2's memory encoder turns each
support into a memory (eq. 15), memory attention conditions the query
features on that memory bank and the mask decoder segments the query
(eq. 16). Everything runs in memory on :class:`sam2.modeling.sam2_base.SAM2Base`
(no JPEG folder, no inference-state bookkeeping), and the support memory is
computed once per support set and reused for every query against it.

``sam2`` is imported lazily: importing it initialises Hydra globally.
"""

from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fdseg.models.adapters.sam2 import (
    SAM2_MODELS,
    encode_new_memory,
    prepare_backbone_features,
    sam2_model,
)
from fdseg.models.utils.constants import IMAGENET_MEAN_01, IMAGENET_STD_01
from fdseg.models.utils.mask_ops import argmax_labels
from fdseg.registry import MODELS

from .base import BaseFewShotSegmentor

# SAM2's placeholder logit for "no object" (sam2.modeling.sam2_base).
NO_OBJ_SCORE = -1024.0

# Frame normalisation of sam2.utils.misc.load_video_frames: ImageNet in 0..1.
SAM2_IMG_MEAN = IMAGENET_MEAN_01
SAM2_IMG_STD = IMAGENET_STD_01

# Kept for old imports (tools/analysis_tools/benchmark_sam2_video.py): the
# one SAM2.1 model table of fdseg.models.adapters.sam2.
SAM2_VARIANTS = SAM2_MODELS

# What sam2.build_sam.build_sam2_video_predictor adds to every config
# (besides the predictor class and its hole filling, handled here).
PREDICTOR_OVERRIDES = (
    '++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true',
    '++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05',
    '++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98',
)


def fill_holes_in_mask_scores(mask: Tensor, max_area: int) -> Tensor:
    """Fill small background regions of mask logits, as SAM2's predictor does.

    Same semantics as ``sam2.utils.misc.fill_holes_in_mask_scores``: every
    8-connected background component (``logit <= 0``) with an area of at most
    ``max_area`` pixels gets the logit 0.1. SAM2 computes the components with
    its compiled CUDA extension and silently skips the step without it; here
    the extension is used on CUDA when built, and SciPy everywhere else, so
    the result does not depend on how sam2 was installed.

    Args:
        mask (Tensor): ``[B, 1, h, w]`` mask logits.
        max_area (int): Largest area (pixels) that is filled.

    Returns:
        Tensor: ``[B, 1, h, w]`` mask logits with the small holes filled.
    """
    if max_area <= 0:
        return mask
    bg = mask <= 0
    if mask.is_cuda:
        try:
            from sam2 import _C

            labels, areas = _C.get_connected_componnets(bg.to(torch.uint8).contiguous())
            is_hole = (labels > 0) & (areas <= max_area)
            return torch.where(is_hole, 0.1, mask)
        except Exception:  # not built / kernel failure: SciPy below
            pass
    from scipy import ndimage

    eight = np.ones((3, 3), dtype=bool)
    bg_np = bg.cpu().numpy()
    is_hole = np.zeros_like(bg_np)
    for b in range(bg_np.shape[0]):
        labels, _ = ndimage.label(bg_np[b, 0], structure=eight)
        areas = np.bincount(labels.ravel())
        is_hole[b, 0] = (labels > 0) & (areas[labels] <= max_area)
    return torch.where(torch.from_numpy(is_hole).to(mask.device), 0.1, mask)


@MODELS.register_module()
class SAM2VideoSegmentor(BaseFewShotSegmentor):
    """SAM2 video-track mode for few-shot defect segmentation (Sec. 5.2).

    Call flow (one way; an N-way episode tracks each way as its own object)::

        support k = 0..K-1 (conditioning frames, once per support set)
          img ─ resize to image_size ─ E_img ─┐
          mask ─ resize to image_size ────────┴─ track_step(k, cond, mask)
                 (SAM2.1 outputs the input mask itself) ─ fill holes
                 ─ E_mem(f_s, M_s) = f_mem (eq. 15) ─ memory bank (bf16)
        query (frame K)
          img ─ resize ─ E_img ─ f_q ─ Atten(f_q, f_mem) ─ D_mask (eq. 16)
              ─ low-res logits [1,1,S/4,S/4] ─ fill holes
              ─ bilinear to img_shape ─ seg_logits ─ > 0 ─ pred_sem_seg

    This is what ``SAM2VideoPredictor`` computes for the video
    ``[support_0, ..., support_{K-1}, query]`` after ``add_new_mask`` on
    frames ``0..K-1`` and ``propagate_in_video`` (same weights and frames
    give the same query mask; tests/test_models/test_sam2_video.py checks it), minus the
    state bookkeeping, the JPEG decoding and the re-encoding of the supports
    for every query.

    Frames follow the official loader: RGB in 0..255 rounded to integers (the
    official frames are 8-bit), resized to ``image_size`` with PIL-style
    bicubic resampling when their size differs, divided by 255 and
    normalised with SAM2's mean/std. Whatever normalisation the data
    preprocessor applies is undone first. Support masks are resized like
    ``add_new_mask`` (antialiased bilinear, ``>= 0.5``).

    No-object behaviour:
        - A way whose supports are all empty has no target: with
          ``empty_support='background'`` (default) the tracker is skipped
          and the way's logits are ``NO_OBJ_SCORE`` (-1024) everywhere, so
          the query is all background. ``'track'`` runs SAM2 anyway (the
          official predictor's behaviour: an empty conditioning mask gives a
          "no object" memory and pointer). Empty supports among non-empty
          ones stay in the memory bank as "no object" frames, as in SAM2.
        - A query where SAM2's object score is ``<= 0`` gets SAM2's own
          ``NO_OBJ_SCORE`` logits, i.e. an all-background mask. The object
          score logits are returned in each sample's ``obj_score_logits``
          (``[N]``; ``NO_OBJ_SCORE`` for skipped ways).

    Label maps: ``seg_logits`` is ``[N+1, H, W]`` with a constant 0 in
    channel 0 (SAM2's threshold) and the way logits in channels ``1..N``;
    ``pred_sem_seg`` is its argmax, i.e. ``logit > 0`` for 1-way.

    Args:
        model_cfg (str): ``'tiny'``, ``'small'``, ``'base_plus'``,
            ``'large'`` (the SAM2.1 models; ``'t'``, ``'s'``, ``'b+'``,
            ``'l'`` too) or a sam2 Hydra config name such
            as ``'configs/sam2.1/sam2.1_hiera_s.yaml'``.
        checkpoint (str, optional): Checkpoint name for
            :func:`fdseg.utils.checkpoints.resolve_checkpoint` (e.g.
            ``'sam2.1_hiera_small'``) or a path to a SAM2 checkpoint
            (``{'model': state_dict}``). None keeps random weights (tests).
        image_size (int): SAM2's input resolution; 1024 is the trained one,
            256 and 512 rescale the positional encodings as the official
            video mode allows. A multiple of 32.
        fill_hole_area (int): Fill background holes up to this area (pixels
            of the ``image_size / 4`` mask) on every frame, as the official
            predictor (8). 0 disables.
        binarize_mask_for_mem_enc (bool): Binarise the conditioning masks
            before the memory encoder, as the official predictor does.
        mem_dtype (str, optional): Storage dtype of the memory features;
            ``'bfloat16'`` as in the official predictor, None keeps float32.
        autocast (bool): bf16 autocast on CUDA, as the official code is run
            (ignored on CPU).
        empty_support (str): ``'background'`` or ``'track'`` (see above).
        hydra_overrides (Sequence[str]): Extra sam2 Hydra overrides.
        support_cache_size (int): Support memories kept (LRU keyed by the
            episode's ``support_key``); 0 disables caching.
        data_preprocessor (dict, optional): Defaults to
            ``EpisodeDataPreprocessor`` (its normalisation is undone here).
        init_cfg (dict, optional): Unused; the weights come from
            ``checkpoint``.
    """

    def __init__(
        self,
        model_cfg: str = 'small',
        checkpoint: Optional[str] = None,
        image_size: int = 1024,
        fill_hole_area: int = 8,
        binarize_mask_for_mem_enc: bool = True,
        mem_dtype: Optional[str] = 'bfloat16',
        autocast: bool = True,
        empty_support: str = 'background',
        hydra_overrides: Sequence[str] = (),
        support_cache_size: int = 8,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(
            data_preprocessor=data_preprocessor,
            support_cache_size=support_cache_size,
            init_cfg=init_cfg,
        )
        if image_size % 32 != 0:
            # Hiera's stride-32 stage and the FPN's 2x top-down upsampling
            # need image_size / 32 to be an integer.
            raise ValueError(f'image_size must be a multiple of 32, got {image_size}')
        if empty_support not in ('background', 'track'):
            raise ValueError(
                f'empty_support must be "background" or "track", got {empty_support!r}'
            )
        if mem_dtype not in (None, 'bfloat16', 'float16', 'float32'):
            raise ValueError(f'unknown mem_dtype {mem_dtype!r}')
        self.model_cfg = (sam2_model(model_cfg) or (model_cfg, None))[0]
        self.image_size = int(image_size)
        self.fill_hole_area = int(fill_hole_area)
        self.mem_dtype = getattr(torch, mem_dtype) if mem_dtype else None
        self.autocast = autocast
        self.empty_support = empty_support

        from sam2.build_sam import build_sam2  # lazy: initialises Hydra

        overrides = (
            list(PREDICTOR_OVERRIDES)
            + [
                f'++model.image_size={self.image_size}',
                '++model.binarize_mask_from_pts_for_mem_enc='
                f'{str(bool(binarize_mask_for_mem_enc)).lower()}',
            ]
            + list(hydra_overrides)
        )
        self.sam2 = build_sam2(
            self.model_cfg,
            ckpt_path=None,
            device='cpu',
            mode='eval',
            hydra_overrides_extra=overrides,
            apply_postprocessing=False,
        )
        # Loaded by init_weights() (the runner calls it before testing):
        # nothing is read from disk while the model is built.
        self.checkpoint = checkpoint
        # Training-free: SAM2 stays frozen and in eval mode (its memory
        # attention has dropout, and track_step branches on self.training).
        self.sam2.requires_grad_(False)
        self.sam2.eval()
        self.register_buffer(
            'sam2_mean', torch.tensor(SAM2_IMG_MEAN)[:, None, None], False
        )
        self.register_buffer(
            'sam2_std', torch.tensor(SAM2_IMG_STD)[:, None, None], False
        )

    # ------------------------------------------------------------------
    # weights and modes
    # ------------------------------------------------------------------
    #: Runs with random weights are reported (see ``prepare_weights``).
    expects_pretrained = True

    def init_weights(self) -> None:
        """Load ``checkpoint`` (if any) into the SAM2 model."""
        if self.checkpoint is not None:
            self.load_sam2_checkpoint(self.checkpoint)
        self._is_init = True

    def load_sam2_checkpoint(self, checkpoint: str) -> None:
        """Load official SAM2 weights (``{'model': state_dict}``), strictly.

        Args:
            checkpoint (str): A name known to the offline weight resolver or
                a file path.
        """
        # The offline resolver: no download, a precise message when the file
        # is missing, and torch.load(weights_only=True).
        from fdseg.utils.checkpoints import (
            load_third_party_state_dict,
            record_loaded_weights,
            resolve_checkpoint,
        )

        path = resolve_checkpoint(checkpoint)
        state = load_third_party_state_dict(path, key='model')
        self.sam2.load_state_dict(state, strict=True)
        record_loaded_weights(self, checkpoint, path)

    def train(self, mode: bool = True):
        """Set the mode; the SAM2 model itself always stays in eval."""
        super().train(mode)
        self.sam2.eval()
        return self

    @property
    def _device(self) -> torch.device:
        return self.sam2_mean.device

    def _autocast(self):
        # The official code runs the whole video predictor under bf16
        # autocast on CUDA (paper Sec. 6.3 "mixed precision mode").
        if self.autocast and self._device.type == 'cuda':
            return torch.autocast('cuda', dtype=torch.bfloat16)
        return nullcontext()

    # ------------------------------------------------------------------
    # frames and masks as the official loader / add_new_mask make them
    # ------------------------------------------------------------------
    def sam2_frames(self, imgs: Tensor, normalized: bool = True) -> Tensor:
        """Turn images into SAM2 input frames like ``load_video_frames``.

        Args:
            imgs (Tensor): ``[B, 3, H, W]`` RGB images, normalised by the
                data preprocessor (``normalized=True``) or in 0..255.
            normalized (bool): Whether to undo the preprocessor's
                normalisation first.

        Returns:
            Tensor: ``[B, 3, S, S]`` float32 frames, ``S = image_size``.
        """
        x = imgs.float()
        if normalized:
            x = self.data_preprocessor.denormalize(x)
        # The official frames are 8-bit (decoded JPEG, PIL resize): rounding
        # restores the exact integers after the preprocessor's round trip.
        x = x.round().clamp_(0, 255)
        size = self.image_size
        if tuple(x.shape[-2:]) != (size, size):
            # Bicubic with antialias is PIL's resampling (Image.resize's
            # default), within one grey level.
            x = (
                F.interpolate(
                    x, (size, size), mode='bicubic', align_corners=False, antialias=True
                )
                .round_()
                .clamp_(0, 255)
            )
        # Same operations (and float rounding) as load_video_frames:
        # uint8 / 255 in float64, stored as float32, then mean / std.
        x = (x.double() / 255.0).float()
        # Contiguous NCHW like the official frames: a channels-last input
        # (e.g. a permuted HWC array) would pick other conv kernels.
        return ((x - self.sam2_mean) / self.sam2_std).contiguous()

    def sam2_mask(self, mask: Tensor) -> Tensor:
        """``[H, W]`` binary mask -> ``[1, 1, S, S]`` as ``add_new_mask``."""
        m = (mask > 0).float()[None, None].to(self._device)
        size = self.image_size
        if tuple(m.shape[-2:]) != (size, size):
            m = F.interpolate(
                m, (size, size), mode='bilinear', align_corners=False, antialias=True
            )
            m = (m >= 0.5).float()
        return m

    # ------------------------------------------------------------------
    # SAM2 steps
    # ------------------------------------------------------------------
    def _image_features(self, frames: Tensor) -> Tuple[list, list, list]:
        """``[B, 3, S, S]`` frames -> SAM2's flattened multi-level features."""
        backbone_out = self.sam2.forward_image(frames)
        return prepare_backbone_features(self.sam2, backbone_out)

    @staticmethod
    def _slice_features(feats: list, pos: list, i: int) -> Tuple[list, list]:
        # Flattened features are [HW, B, C]: take batch element i.
        return ([f[:, i : i + 1] for f in feats], [p[:, i : i + 1] for p in pos])

    def _conditioning_frame(
        self, frame: Tensor, mask: Tensor, frame_idx: int, num_frames: int
    ) -> Dict[str, Tensor]:
        """Encode one support as a conditioning frame (eq. 15).

        Args:
            frame (Tensor): ``[1, 3, S, S]`` SAM2 frame.
            mask (Tensor): ``[1, 1, S, S]`` binary mask.
            frame_idx (int): Its index in the video (0..K-1).
            num_frames (int): Video length ``K + 1``.

        Returns:
            dict: The compact frame output the predictor stores:
            ``maskmem_features`` ``[1, C_mem, S/16, S/16]``,
            ``maskmem_pos_enc`` (list), ``pred_masks`` ``[1, 1, S/4, S/4]``,
            ``obj_ptr`` ``[1, C]``, ``object_score_logits`` ``[1, 1]``.
        """
        sam = self.sam2
        feats, pos, sizes = self._image_features(frame)
        out = sam.track_step(
            frame_idx=frame_idx,
            is_init_cond_frame=True,
            current_vision_feats=feats,
            current_vision_pos_embeds=pos,
            feat_sizes=sizes,
            point_inputs=None,
            mask_inputs=mask,
            output_dict={'cond_frame_outputs': {}, 'non_cond_frame_outputs': {}},
            num_frames=num_frames,
            run_mem_encoder=False,
        )
        pred_masks = fill_holes_in_mask_scores(out['pred_masks'], self.fill_hole_area)
        # Like propagate_in_video_preflight: the memory encoder sees the
        # stored low-res mask upsampled back to image_size (binarised by
        # `binarize_mask_from_pts_for_mem_enc`).
        high_res = F.interpolate(
            pred_masks,
            (self.image_size, self.image_size),
            mode='bilinear',
            align_corners=False,
        )
        mem_feats, mem_pos = encode_new_memory(
            sam,
            feats,
            sizes,
            high_res,
            out['object_score_logits'],
            is_mask_from_pts=True,
        )
        if self.mem_dtype is not None:
            mem_feats = mem_feats.to(self.mem_dtype)
        return dict(
            maskmem_features=mem_feats,
            maskmem_pos_enc=mem_pos,
            pred_masks=pred_masks,
            obj_ptr=out['obj_ptr'],
            object_score_logits=out['object_score_logits'],
        )

    def _track(
        self, feats: list, pos: list, sizes: list, way_state: Dict
    ) -> Tuple[Tensor, Tensor]:
        """Track one way into the query frame (eq. 16).

        Returns:
            tuple: low-res logits ``[1, 1, S/4, S/4]`` (holes filled) and the
            object score logit ``[1, 1]``.
        """
        k = way_state['num_frames'] - 1
        out = self.sam2.track_step(
            frame_idx=k,
            is_init_cond_frame=False,
            current_vision_feats=feats,
            current_vision_pos_embeds=pos,
            feat_sizes=sizes,
            point_inputs=None,
            mask_inputs=None,
            output_dict={
                'cond_frame_outputs': way_state['cond'],
                'non_cond_frame_outputs': {},
            },
            num_frames=way_state['num_frames'],
            run_mem_encoder=False,
        )
        pred = fill_holes_in_mask_scores(out['pred_masks'], self.fill_hole_area)
        return pred.float(), out['object_score_logits'].float()

    # ------------------------------------------------------------------
    # support memory
    # ------------------------------------------------------------------
    def encode_support(
        self,
        support_imgs: Tensor,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
        normalized: bool = True,
    ) -> List[Optional[Dict]]:
        """Build the memory bank of one support set.

        Args:
            support_imgs (Tensor): ``[S, 3, H, W]`` (see :meth:`sam2_frames`).
            support_masks (Tensor): ``[S, H, W]`` binary.
            support_labels (Tensor, optional): ``[S]`` way index ``1..N``
                (all ones by default).
            normalized (bool): Whether the images are normalised by the data
                preprocessor (else 0..255).

        Returns:
            list: One entry per way: None for a way without any defect pixel
            (when ``empty_support='background'``), else ``dict(cond={k:
            frame output}, num_frames=K + 1)``.
        """
        if support_labels is None:
            support_labels = torch.ones(support_masks.shape[0], dtype=torch.long)
        support_labels = support_labels.to('cpu')
        num_ways = int(support_labels.max()) if support_labels.numel() else 0
        states: List[Optional[Dict]] = []
        with torch.inference_mode(), self._autocast():
            frames = self.sam2_frames(
                support_imgs.to(self._device), normalized=normalized
            )
            for way in range(1, num_ways + 1):
                idx = torch.nonzero(support_labels == way).flatten().tolist()
                masks = [support_masks[i] for i in idx]
                if not idx or (
                    self.empty_support == 'background'
                    and not any(bool((m > 0).any()) for m in masks)
                ):
                    states.append(None)
                    continue
                num_frames = len(idx) + 1
                cond = {
                    k: self._conditioning_frame(
                        frames[i : i + 1], self.sam2_mask(m), k, num_frames
                    )
                    for k, (i, m) in enumerate(zip(idx, masks))
                }
                states.append(dict(cond=cond, num_frames=num_frames))
        return states

    def encode_raw_support(
        self,
        support_imgs: Tensor,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
    ) -> List[Optional[Dict]]:
        """Call :meth:`encode_support` on RGB images in 0..255.

        What :meth:`set_support` pins: no normalisation round trip.
        """
        return self.encode_support(
            support_imgs, support_masks, support_labels, normalized=False
        )

    # ------------------------------------------------------------------
    # queries
    # ------------------------------------------------------------------
    def segment(
        self,
        inputs: Tensor,
        states: Sequence[List],
        out_shapes: Optional[Sequence[Tuple[int, int]]] = None,
        normalized: bool = True,
    ) -> Tuple[List[Tensor], List[Tensor]]:
        """Track every query against its support memory.

        Args:
            inputs (Tensor): ``[B, 3, H, W]`` query images.
            states (Sequence[list]): Per query, the output of
                :meth:`encode_support`.
            out_shapes (Sequence[tuple], optional): Per query ``(h, w)`` of
                the output (defaults to ``(H, W)``); the valid image is the
                top-left ``h x w`` of the input.
            normalized (bool): See :meth:`sam2_frames`.

        Returns:
            tuple: ``seg_logits`` per query ``[N+1, h, w]`` (channel 0 is the
            constant 0 threshold) and object score logits per query ``[N]``.
        """
        B = inputs.shape[0]
        if out_shapes is None:
            out_shapes = [tuple(inputs.shape[-2:])] * B
        all_logits, all_scores = [], []
        with torch.inference_mode(), self._autocast():
            if len({tuple(s) for s in out_shapes}) == 1:
                h, w = out_shapes[0]
                frames = self.sam2_frames(inputs[..., :h, :w], normalized)
            else:
                frames = torch.cat(
                    [
                        self.sam2_frames(inputs[i : i + 1, :, :h, :w], normalized)
                        for i, (h, w) in enumerate(out_shapes)
                    ]
                )
            feats, pos, sizes = self._image_features(frames)
            for i in range(B):
                f_i, p_i = self._slice_features(feats, pos, i)
                h, w = out_shapes[i]
                way_logits, way_scores = [], []
                for way_state in states[i]:
                    if way_state is None:
                        way_logits.append(
                            inputs.new_full(
                                (1, 1, h, w), NO_OBJ_SCORE, dtype=torch.float32
                            )
                        )
                        way_scores.append(NO_OBJ_SCORE)
                        continue
                    low_res, score = self._track(f_i, p_i, sizes, way_state)
                    if tuple(low_res.shape[-2:]) != (h, w):
                        low_res = F.interpolate(
                            low_res, (h, w), mode='bilinear', align_corners=False
                        )
                    way_logits.append(low_res)
                    way_scores.append(float(score))
                logits = torch.cat(
                    [inputs.new_zeros((1, 1, h, w), dtype=torch.float32)] + way_logits,
                    dim=1,
                )[0]
                all_logits.append(logits)
                all_scores.append(torch.tensor(way_scores))
        # Plain tensors (not inference tensors) for the metric / visualiser.
        return [lg.clone() for lg in all_logits], all_scores

    # ------------------------------------------------------------------
    # BaseModel API
    # ------------------------------------------------------------------
    # forward(mode) dispatch, set_support / clear_support:
    # BaseFewShotSegmentor.
    def _forward(self, inputs: Tensor, data_samples) -> Tensor:
        logits, _ = self.segment(
            inputs, self._support_states(data_samples, use_cache=False)
        )
        return torch.stack(logits)

    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        """SAM2's video mode is used training-free (paper Sec. 5.2)."""
        raise NotImplementedError(
            'SAM2VideoSegmentor is training-free: use tools/test.py'
        )

    def predict(self, inputs: Tensor, data_samples) -> list:
        """Segment the queries; fills ``seg_logits`` and ``pred_sem_seg``.

        Args:
            inputs (Tensor): ``[B, 3, H, W]`` normalised query images.
            data_samples (list[EpisodeDataSample]): The episodes.

        Returns:
            list[EpisodeDataSample]: With ``seg_logits`` ``[N+1, h, w]``,
            ``pred_sem_seg`` ``[1, h, w]`` (way index, 0 = background) and
            ``obj_score_logits`` ``[N]``, at ``img_shape``.
        """
        # SAM2 is frozen, so a support memory stays valid in any mode.
        states = self._support_states(data_samples, use_cache=True)
        shapes = [
            tuple(s.metainfo.get('img_shape', inputs.shape[-2:]))[:2]
            for s in data_samples
        ]
        logits, scores = self.segment(inputs, states, shapes)
        self.add_pred_to_datasample(
            data_samples, logits, [argmax_labels(lg, 0) for lg in logits]
        )
        for s, sc in zip(data_samples, scores):
            s.obj_score_logits = sc
        return data_samples
