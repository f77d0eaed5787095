"""Normalise and batch few-shot episodes."""

from typing import Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from fdseg.models.utils.constants import IMAGENET_MEAN, IMAGENET_STD
from fdseg.registry import MODELS

__all__ = ['EpisodeDataPreprocessor', 'IMAGENET_MEAN', 'IMAGENET_STD']


@MODELS.register_module()
class EpisodeDataPreprocessor(BaseDataPreprocessor):
    """Normalise the query and support images and stack the queries.

    Input: ``inputs`` is a list of ``[3, H, W]`` uint8 query images and
    ``data_samples`` a list of :class:`EpisodeDataSample` with uint8
    ``support_imgs`` ``[S, 3, H, W]``.

    Output: ``inputs`` ``[B, 3, H, W]`` float, normalised; each sample's
    ``support_imgs`` normalised the same way (in place of the uint8 ones).
    The episodes of a batch must share the query size; they may differ in
    their number of supports.

    Args:
        mean (Sequence[float]): RGB mean in 0..255 (ImageNet by default).
        std (Sequence[float]): RGB std in 0..255.
        non_blocking (bool): As in mmengine.
    """

    def __init__(
        self,
        mean: Optional[Sequence[float]] = IMAGENET_MEAN,
        std: Optional[Sequence[float]] = IMAGENET_STD,
        non_blocking: bool = False,
    ):
        super().__init__(non_blocking)
        self._enable_normalize = mean is not None
        if self._enable_normalize:
            self.register_buffer('mean', torch.tensor(mean).view(-1, 1, 1), False)
            self.register_buffer('std', torch.tensor(std).view(-1, 1, 1), False)

    def normalize(self, img: torch.Tensor) -> torch.Tensor:
        """``[..., 3, H, W]`` uint8 or float in 0..255 -> normalised float."""
        img = img.float()
        if self._enable_normalize:
            img = (img - self.mean) / self.std
        return img

    def denormalize(self, img: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`, back to float 0..255."""
        if self._enable_normalize:
            img = img * self.std + self.mean
        return img

    def forward(self, data: dict, training: bool = False) -> dict:
        """Stack and normalise the query and support images of a batch."""
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            shapes = {tuple(i.shape) for i in inputs}
            if len(shapes) > 1:
                raise ValueError(
                    'queries of one batch must share a size, got '
                    f'{sorted(shapes)}; add ResizeEpisode'
                )
            inputs = torch.stack(list(inputs))
        if not inputs.is_floating_point():
            inputs = self.normalize(inputs)
        samples = data.get('data_samples')
        if samples is not None:
            for s in samples:
                # uint8 supports come from the pipeline; float ones were
                # normalised already (e.g. a second pass over the batch).
                if 'support_imgs' in s and not s.support_imgs.is_floating_point():
                    s.support_imgs = self.normalize(s.support_imgs)
        return dict(inputs=inputs, data_samples=samples)
