# FeatureDistiller moved to fdseg.models.distillers (it trains a backbone);
# re-exported here so `from fdseg.models.segmentors import FeatureDistiller`
# keeps working.
from ..distillers import FeatureDistiller  # noqa: E402
from .base import BaseFewShotSegmentor
from .few_shot_segmentor import FewShotSegmentor
from .matcher import MatcherSegmentor
from .persam import PerSAMSegmentor
from .sam2_video_segmentor import SAM2VideoSegmentor

__all__ = [
    'BaseFewShotSegmentor',
    'FewShotSegmentor',
    'SAM2VideoSegmentor',
    'PerSAMSegmentor',
    'MatcherSegmentor',
    'FeatureDistiller',
]
