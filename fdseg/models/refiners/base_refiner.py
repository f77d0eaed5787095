"""Base class of refiners (FastSAM fusion, SAM2 prompt modes, ...)."""

from abc import ABCMeta, abstractmethod
from typing import Optional, Sequence

from mmengine.model import BaseModule
from torch import Tensor


class BaseRefiner(BaseModule, metaclass=ABCMeta):
    """Refine a coarse few-shot mask R0 with the query image.

    A refiner is composed after any head in :class:`FewShotSegmentor`
    (``refiner=dict(type=...)``).

    Its foundation model (ultralytics FastSAM, sam2) lives outside the
    module's ``state_dict``, so fdseg checkpoints never carry it:
    :meth:`init_weights` resolves the file through the offline resolver
    (failing early, naming the file, when it is missing) and the model
    itself is built lazily on first use. fdseg's runner calls
    :meth:`init_weights` of such modules even when it loads an fdseg
    checkpoint (``weights_outside_state_dict``).
    """

    #: Weights come from a file named by ``self.checkpoint``, not from the
    #: state dict (read by :func:`fdseg.engine.weights.prepare_weights`).
    weights_outside_state_dict = True
    #: Runs with random weights are reported (see ``prepare_weights``).
    expects_pretrained = True

    def init_weights(self) -> None:
        """Resolve (and record) the refiner's weight file; build nothing.

        Raises:
            MissingCheckpointError: The file is not in the checkpoint cache.
        """
        super().init_weights()
        checkpoint = getattr(self, 'checkpoint', None)
        if checkpoint is None:
            return  # random weights (tests); reported by the runner
        from fdseg.utils.checkpoints import record_loaded_weights, resolve_checkpoint

        if not any(
            n == checkpoint for n, _ in self.__dict__.get('_fdseg_loaded_weights', ())
        ):
            record_loaded_weights(self, checkpoint, resolve_checkpoint(checkpoint))

    @abstractmethod
    def refine(
        self, imgs: Tensor, coarse: Tensor, data_samples: Optional[Sequence] = None
    ) -> Tensor:
        """Refine coarse label maps.

        Args:
            imgs (Tensor): ``[B, 3, H, W]`` float RGB query images, 0..255
                (the data preprocessor's normalisation undone).
            coarse (Tensor): ``[B, H, W]`` long label maps R0 (0 = bg).
            data_samples (Sequence, optional): The episodes' data samples.

        Returns:
            Tensor: ``[B, H, W]`` long refined label maps R.
        """
