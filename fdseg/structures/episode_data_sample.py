"""The episode data sample: the data contract shared by every fdseg method."""

from typing import Optional

import torch
from mmseg.structures import SegDataSample


class EpisodeDataSample(SegDataSample):
    """One few-shot episode: a query with its support set.

    The query image itself travels as the model's ``inputs`` (``[3, H, W]``
    per sample, ``[B, 3, H, W]`` after the data preprocessor), like in
    mmsegmentation; this element carries everything else.

    Data fields:
        - ``support_imgs`` (Tensor): ``[S, 3, H, W]`` support images
          (``uint8`` after packing, normalised ``float`` after the data
          preprocessor). ``S = N * K`` for an N-way K-shot episode.
        - ``support_masks`` (Tensor): ``[S, H, W]`` binary (0/1) masks.
        - ``support_labels`` (Tensor): ``[S]`` way index of each support,
          ``1..N`` (all ones for 1-way).
        - ``gt_sem_seg`` (PixelData): query mask ``[1, H, W]`` with values
          ``{0, query_label}`` (255 = ignore).
        - ``pred_sem_seg`` / ``seg_logits`` (PixelData): model outputs.

    Meta information (set by ``PackEpisodeInputs``): ``product``,
    ``category``, ``category_id``, ``query_label``, ``way_categories``,
    ``is_good``, ``query_path``, ``query_mask_path``, ``support_paths``,
    ``support_mask_paths``, ``ori_shape``, ``img_shape``, ``episode_idx``,
    ``support_key``.
    """

    @property
    def support_imgs(self) -> torch.Tensor:
        """Support images ``[S, 3, H, W]``."""
        return self._support_imgs

    @support_imgs.setter
    def support_imgs(self, value: torch.Tensor) -> None:
        self.set_field(value, '_support_imgs', dtype=torch.Tensor)

    @support_imgs.deleter
    def support_imgs(self) -> None:
        del self._support_imgs

    @property
    def support_masks(self) -> torch.Tensor:
        """Support masks ``[S, H, W]`` (0 background, 1 defect)."""
        return self._support_masks

    @support_masks.setter
    def support_masks(self, value: torch.Tensor) -> None:
        self.set_field(value, '_support_masks', dtype=torch.Tensor)

    @support_masks.deleter
    def support_masks(self) -> None:
        del self._support_masks

    @property
    def support_labels(self) -> torch.Tensor:
        """Way of each support ``[S]`` (1..N)."""
        return self._support_labels

    @support_labels.setter
    def support_labels(self, value: torch.Tensor) -> None:
        self.set_field(value, '_support_labels', dtype=torch.Tensor)

    @support_labels.deleter
    def support_labels(self) -> None:
        del self._support_labels

    def support_labels_or_default(self) -> torch.Tensor:
        """Support way labels, defaulting to all-ones (1-way)."""
        labels: Optional[torch.Tensor] = getattr(self, '_support_labels', None)
        if labels is None:
            labels = torch.ones(
                self.support_masks.shape[0],
                dtype=torch.long,
                device=self.support_masks.device,
            )
        return labels
