from .feature_distiller import FeatureDistiller
from .few_shot_segmentor import FewShotSegmentor

__all__ = ['FewShotSegmentor', 'FeatureDistiller']
