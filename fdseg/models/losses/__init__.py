"""fdseg's own losses (e.g. the distillation l2 loss).

mmengine / torch losses are reachable by scope.
"""

from .distill_loss import DistillL2Loss

__all__ = ['DistillL2Loss']
