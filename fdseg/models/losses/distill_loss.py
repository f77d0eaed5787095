"""Feature-map distillation loss (GFDS Sec. 5.1.1 / 6.1.2: "the l2 loss")."""

from typing import Optional

from torch import Tensor, nn

from fdseg.registry import MODELS


@MODELS.register_module()
class DistillL2Loss(nn.Module):
    """Squared l2 distance between a student and a teacher feature map.

    With the default ``reduction='mean'`` this is
    ``torch.mean((target - pred) ** 2)``, the loss of EfficientAD's
    ``pretraining.py``, which GFDS builds its student on (the GFDS
    distillation code itself is not released; the paper only says "l2
    loss"). Both maps are cast to float32 first so that AMP runs (teacher
    features in fp16) do not compute the loss in half precision.

    Args:
        reduction (str): ``'mean'`` (over batch, channels and positions),
            ``'sum'``, ``'sample'`` (mean per sample, returns ``[B]``) or
            ``'none'`` (returns ``[B, C, H, W]``). Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Key of the loss in the segmentor's loss dict; it
            must start with ``loss`` for mmengine to back-propagate it.
            Defaults to ``'loss_distill'``.
    """

    _REDUCTIONS = ('mean', 'sum', 'sample', 'none')

    def __init__(
        self,
        reduction: str = 'mean',
        loss_weight: float = 1.0,
        loss_name: str = 'loss_distill',
    ) -> None:
        super().__init__()
        if reduction not in self._REDUCTIONS:
            raise ValueError(
                f'reduction must be one of {self._REDUCTIONS}, got {reduction!r}'
            )
        self.reduction = reduction
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        """str: Key of this loss in the loss dict."""
        return self._loss_name

    def forward(
        self, pred: Tensor, target: Tensor, reduction_override: Optional[str] = None
    ) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): Student features ``[B, C, H, W]``.
            target (Tensor): Teacher features ``[B, C, H, W]`` (no gradient
                needed).
            reduction_override (str, optional): Use this reduction instead
                of ``self.reduction`` (e.g. ``'sample'`` for validation).

        Returns:
            Tensor: A scalar for ``'mean'`` / ``'sum'``, ``[B]`` for
            ``'sample'``, ``[B, C, H, W]`` for ``'none'``.
        """
        if pred.shape != target.shape:
            raise ValueError(
                f'student map {tuple(pred.shape)} and teacher '
                f'map {tuple(target.shape)} differ'
            )
        reduction = reduction_override or self.reduction
        if reduction not in self._REDUCTIONS:
            raise ValueError(f'unknown reduction {reduction!r}')
        sq = (pred.float() - target.float()).pow(2)
        if reduction == 'mean':
            loss = sq.mean()
        elif reduction == 'sum':
            loss = sq.sum()
        elif reduction == 'sample':
            loss = sq.flatten(1).mean(dim=1)
        else:
            loss = sq
        return self.loss_weight * loss


__all__ = ['DistillL2Loss']
