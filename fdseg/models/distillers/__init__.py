"""Distillers: models that train a backbone (e.g. the GFDS student).

They are not segmentors: no support set, no masks.
"""

from .feature_distiller import FeatureDistiller

__all__ = ['FeatureDistiller']
