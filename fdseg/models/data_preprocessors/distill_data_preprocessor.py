"""Batch and normalise the two resolutions of a distillation batch."""

from typing import List, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from fdseg.models.utils.constants import IMAGENET_MEAN, IMAGENET_STD
from fdseg.registry import MODELS


@MODELS.register_module()
class DistillDataPreprocessor(BaseDataPreprocessor):
    """Batch and ImageNet-normalise the student and teacher images.

    Input (from :class:`~fdseg.datasets.transforms.PackDistillInputs`,
    collated by ``pseudo_collate`` or ``default_collate``)::

        dict(inputs=dict(student=[3, Hs, Ws] uint8 x B (list or stacked),
                         teacher=[3, Ht, Wt] uint8 x B),  # optional
             data_samples=list[BaseDataElement])

    Output: the same structure with stacked float ``[B, 3, H, W]`` tensors,
    normalised as ``(x - mean) / std`` on the model's device. A plain
    tensor / list as ``inputs`` is treated as student images.

    Args:
        mean (Sequence[float]): RGB mean in 0..255 (ImageNet).
        std (Sequence[float]): RGB std in 0..255 (ImageNet).
        non_blocking (bool): As in mmengine.
    """

    def __init__(
        self,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        non_blocking: bool = False,
    ) -> None:
        super().__init__(non_blocking)
        self.register_buffer('mean', torch.tensor(mean).view(-1, 1, 1), False)
        self.register_buffer('std', torch.tensor(std).view(-1, 1, 1), False)

    def _batch(self, imgs: Union[Tensor, List[Tensor]]) -> Tensor:
        if isinstance(imgs, (list, tuple)):
            shapes = {tuple(i.shape) for i in imgs}
            if len(shapes) > 1:
                raise ValueError(
                    f'images of one batch differ in size: '
                    f'{sorted(shapes)}; resize them in the '
                    'pipeline (ResizeDistill)'
                )
            imgs = torch.stack(list(imgs))
        # uint8 travels to the device; the float copy is made there.
        return (imgs.float() - self.mean) / self.std

    def forward(self, data: dict, training: bool = False) -> dict:
        """Stack and normalise.

        Args:
            data (dict): Collated batch (see class docstring).
            training (bool): Unused (no batch augmentation).

        Returns:
            dict: ``dict(inputs=dict(student=[B, 3, Hs, Ws][, teacher=[B, 3,
            Ht, Wt]]), data_samples=...)``.
        """
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, dict):
            out = {k: self._batch(v) for k, v in inputs.items()}
        else:
            out = dict(student=self._batch(inputs))
        return dict(inputs=out, data_samples=data.get('data_samples'))
