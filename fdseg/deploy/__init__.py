"""Deployment: CPU speed helpers, the official yardstick, export."""

from .speed import (
    compare_with_official,
    cpu_capability,
    optimize_convs,
    optimize_for_cpu,
    plain_convs,
    use_channels_last,
)

__all__ = [
    'compare_with_official',
    'cpu_capability',
    'optimize_convs',
    'optimize_for_cpu',
    'plain_convs',
    'use_channels_last',
]
