"""Losses: mmengine/torch losses are reachable by scope; fdseg adds its own
here (e.g. the distillation l2 loss)."""
from .distill_loss import DistillL2Loss

__all__ = ['DistillL2Loss']
