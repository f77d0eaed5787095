from .feature_distiller import FeatureDistiller
from .few_shot_segmentor import FewShotSegmentor
from .sam2_video_segmentor import SAM2VideoSegmentor

__all__ = ['FewShotSegmentor', 'FeatureDistiller', 'SAM2VideoSegmentor']
