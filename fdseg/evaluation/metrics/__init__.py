"""Evaluation metrics of fdseg."""

from .few_shot_iou_metric import FewShotIoUMetric
from .gfds_benchmark_metric import GFDSBenchmarkMetric

__all__ = ['FewShotIoUMetric', 'GFDSBenchmarkMetric']
