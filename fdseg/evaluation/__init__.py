"""Evaluation: few-shot IoU metrics and the functions behind them."""

from . import functional
from .functional import (
    aggregate_areas,
    binarize_episode,
    episode_areas,
    fb_iou,
    iou,
    nanmean,
    precision,
    recall,
    resize_nearest,
    safe_divide,
)
from .metrics import FewShotIoUMetric

__all__ = [
    'functional',
    'FewShotIoUMetric',
    'aggregate_areas',
    'binarize_episode',
    'episode_areas',
    'fb_iou',
    'iou',
    'nanmean',
    'precision',
    'recall',
    'resize_nearest',
    'safe_divide',
]
