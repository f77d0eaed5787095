"""Evaluation metrics of fdseg."""
from .few_shot_iou_metric import FewShotIoUMetric

__all__ = ['FewShotIoUMetric']
