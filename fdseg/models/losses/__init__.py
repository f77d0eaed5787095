"""Losses: mmengine/torch losses are reachable by scope; fdseg adds its own
here (e.g. the distillation l2 loss)."""
