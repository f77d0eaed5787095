"""What PerSAM and Matcher share: SAM v1, its weights, episodes -> masks."""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from fdseg.models.adapters.segment_anything import (
    SAM_MODELS,
    build_sam,
    load_sam_checkpoint,
)
from fdseg.models.utils.mask_ops import argmax_labels

from .base import BaseFewShotSegmentor

#: Logit of a way without a target (empty support): all background.
NO_TARGET_LOGIT = -1024.0


class SAMTrainingFreeSegmentor(BaseFewShotSegmentor):
    """Base of the training-free SAM v1 baselines (PerSAM, Matcher).

    Subclasses implement :meth:`encode_way` (one way's supports -> state)
    and :meth:`segment_way` (query + state -> logits at the query size and
    a record of what happened). Ways are segmented independently; the
    prediction is the argmax over ``[0, way logits...]`` (SAM's threshold
    0 is channel 0), i.e. ``logit > 0`` for 1-way.

    Args:
        sam_arch (str): ``'vit_h'`` (paper), ``'vit_l'``, ``'vit_b'`` or
            ``'tiny'`` (tests).
        checkpoint (str, optional): Offline-resolver name or path of the
            official SAM file, loaded by :meth:`init_weights` (never at
            construction). None keeps random weights.
        empty_support (str): ``'background'``: a way whose support masks
            are all empty predicts no defect (recorded as the failure
            ``'empty_support'``); ``'error'`` raises.
        support_cache_size (int): Support states kept (LRU).
        data_preprocessor (dict, optional): Its normalisation is undone.
        init_cfg (dict, optional): Unused (weights come from ``checkpoint``).
    """

    expects_pretrained = True

    def __init__(
        self,
        sam_arch: str = 'vit_h',
        checkpoint: Optional[str] = 'sam_vit_h',
        empty_support: str = 'background',
        support_cache_size: int = 8,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(
            data_preprocessor=data_preprocessor,
            support_cache_size=support_cache_size,
            init_cfg=init_cfg,
        )
        if sam_arch not in SAM_MODELS:
            raise KeyError(
                f'unknown sam_arch {sam_arch!r}; choose from {sorted(SAM_MODELS)}'
            )
        if empty_support not in ('background', 'error'):
            raise ValueError(
                f"empty_support must be 'background' or 'error', got {empty_support!r}"
            )
        self.sam_arch = sam_arch
        self.checkpoint = checkpoint
        self.empty_support = empty_support
        self.sam = build_sam(sam_arch)
        self.sam.requires_grad_(False)

    # ------------------------------------------------------------------
    def init_weights(self) -> None:
        """Load ``checkpoint`` (if any) into SAM, strictly."""
        if self.checkpoint is not None:
            load_sam_checkpoint(self.sam, self.checkpoint, self)
        self._is_init = True

    def train(self, mode: bool = True):
        """Set the mode; the frozen foundation models stay in eval."""
        super().train(mode)
        self.sam.eval()
        return self

    @property
    def _device(self) -> torch.device:
        return self.sam.pixel_mean.device

    def to_uint8(self, imgs: Tensor, normalized: bool = True) -> List[np.ndarray]:
        """``[B, 3, H, W]`` -> list of ``HxWx3`` uint8 RGB (official input).

        The preprocessor's normalisation is undone and the values rounded
        back to the 8-bit integers the official scripts read from disk.
        """
        x = imgs.float()
        if normalized:
            x = self.data_preprocessor.denormalize(x)
        x = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return [np.ascontiguousarray(a) for a in x.cpu().numpy()]

    @staticmethod
    def binary(mask: Tensor) -> Tensor:
        """Support mask -> bool (255 = ignore is background)."""
        return (mask > 0) & (mask != 255)

    # ------------------------------------------------------------------
    def encode_way(self, imgs: List[np.ndarray], masks: List[Tensor]) -> Dict:
        """One way's supports (uint8 images, bool masks) -> its state."""
        raise NotImplementedError

    def query_features(self, img: np.ndarray) -> Dict:
        """Per-query features shared by the ways (override)."""
        raise NotImplementedError

    def segment_way(
        self, img: np.ndarray, feats: Dict, state: Dict
    ) -> Tuple[Tensor, Dict]:
        """Logits ``[H, W]`` (> 0 = defect) and a record dict."""
        raise NotImplementedError

    def encode_support(
        self,
        support_imgs: Tensor,
        support_masks: Tensor,
        support_labels: Optional[Tensor] = None,
        normalized: bool = True,
    ) -> List[Optional[Dict]]:
        """One state per way (None: no target in any of its supports).

        Args:
            support_imgs (Tensor): ``[S, 3, H, W]``.
            support_masks (Tensor): ``[S, H, W]``.
            support_labels (Tensor, optional): ``[S]`` way index 1..N.
            normalized (bool): Images normalised by the preprocessor.
        """
        if support_labels is None:
            support_labels = torch.ones(support_masks.shape[0], dtype=torch.long)
        support_labels = support_labels.cpu()
        num_ways = int(support_labels.max()) if support_labels.numel() else 0
        imgs = self.to_uint8(support_imgs, normalized)
        states: List[Optional[Dict]] = []
        with torch.no_grad():
            for way in range(1, num_ways + 1):
                idx = torch.nonzero(support_labels == way).flatten().tolist()
                masks = [self.binary(support_masks[i]).cpu() for i in idx]
                if not any(bool(m.any()) for m in masks):
                    if self.empty_support == 'error':
                        raise ValueError(
                            f'way {way}: every support mask is empty '
                            '(empty_support="error")'
                        )
                    states.append(None)
                    continue
                states.append(self.encode_way([imgs[i] for i in idx], masks))
        return states

    def encode_raw_support(self, support_imgs, support_masks, support_labels=None):
        """:meth:`encode_support` on 0..255 images (no normalisation)."""
        return self.encode_support(
            support_imgs, support_masks, support_labels, normalized=False
        )

    def segment(
        self,
        inputs: Tensor,
        states: Sequence[List],
        out_shapes: Optional[Sequence[Tuple[int, int]]] = None,
        normalized: bool = True,
    ) -> Tuple[List[Tensor], List[List[Dict]]]:
        """Segment every query against its support states.

        Returns:
            tuple: ``seg_logits`` per query ``[N+1, h, w]`` and the per-way
            records (failure modes, prompts, seeds).
        """
        B = inputs.shape[0]
        if out_shapes is None:
            out_shapes = [tuple(inputs.shape[-2:])] * B
        all_logits, all_records = [], []
        with torch.no_grad():
            for i in range(B):
                h, w = out_shapes[i]
                img = self.to_uint8(inputs[i : i + 1, :, :h, :w], normalized)[0]
                feats = None
                logits = [torch.zeros(h, w)]
                records = []
                for state in states[i]:
                    if state is None:
                        logits.append(torch.full((h, w), NO_TARGET_LOGIT))
                        records.append(dict(failures=['empty_support']))
                        continue
                    if feats is None:
                        feats = self.query_features(img)
                    lg, rec = self.segment_way(img, feats, state)
                    logits.append(lg.float().cpu())
                    records.append(rec)
                all_logits.append(torch.stack(logits).to(inputs.device))
                all_records.append(records)
        return all_logits, all_records

    # ------------------------------------------------------------------
    def _forward(self, inputs: Tensor, data_samples) -> Tensor:
        logits, _ = self.segment(
            inputs, self._support_states(data_samples, use_cache=False)
        )
        return torch.stack(logits)

    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        """Training-free."""
        raise NotImplementedError(
            f'{type(self).__name__} is training-free: use tools/test.py'
        )

    def predict(self, inputs: Tensor, data_samples) -> list:
        """Fill ``seg_logits``, ``pred_sem_seg`` and the per-way records.

        ``seg_logits`` is ``[N+1, h, w]``; the records (failure modes,
        prompts, seeds) go to the metainfo key ``sam_baseline``.
        """
        states = self._support_states(data_samples, use_cache=True)
        shapes = [
            tuple(s.metainfo.get('img_shape', inputs.shape[-2:]))[:2]
            for s in data_samples
        ]
        logits, records = self.segment(inputs, states, shapes)
        self.add_pred_to_datasample(
            data_samples, logits, [argmax_labels(lg, 0) for lg in logits]
        )
        for s, rec in zip(data_samples, records):
            s.set_metainfo(dict(sam_baseline=rec))
        return data_samples
