"""Base class of refiners (FastSAM fusion, SAM2 prompt modes, ...)."""
from abc import ABCMeta, abstractmethod
from typing import Optional, Sequence

from mmengine.model import BaseModule
from torch import Tensor


class BaseRefiner(BaseModule, metaclass=ABCMeta):
    """Refine a coarse few-shot mask R0 with the query image.

    A refiner is composed after any head in :class:`FewShotSegmentor`
    (``refiner=dict(type=...)``).
    """

    @abstractmethod
    def refine(self, imgs: Tensor, coarse: Tensor,
               data_samples: Optional[Sequence] = None) -> Tensor:
        """Refine coarse label maps.

        Args:
            imgs (Tensor): ``[B, 3, H, W]`` float RGB query images, 0..255
                (the data preprocessor's normalisation undone).
            coarse (Tensor): ``[B, H, W]`` long label maps R0 (0 = bg).
            data_samples (Sequence, optional): The episodes' data samples.

        Returns:
            Tensor: ``[B, H, W]`` long refined label maps R.
        """
