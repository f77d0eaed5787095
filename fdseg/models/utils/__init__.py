from .center_pivot_conv4d import CenterPivotConv4d
from .constants import IMAGENET_MEAN, IMAGENET_MEAN_01, IMAGENET_STD, IMAGENET_STD_01
from .fast_conv import FastConv2d
from .mask_ops import argmax_labels, downsample_mask, masked_average_pool
from .size import to_hw

__all__ = [
    'argmax_labels',
    'CenterPivotConv4d',
    'FastConv2d',
    'downsample_mask',
    'masked_average_pool',
    'to_hw',
    'IMAGENET_MEAN',
    'IMAGENET_STD',
    'IMAGENET_MEAN_01',
    'IMAGENET_STD_01',
]
