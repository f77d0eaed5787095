from .base_few_shot_head import BaseFewShotHead
from .baseline_heads import AllBackgroundHead, PasteSupportMaskHead
from .prototype_matcher_head import PrototypeMatcherHead

__all__ = [
    'BaseFewShotHead',
    'PrototypeMatcherHead',
    'AllBackgroundHead',
    'PasteSupportMaskHead',
]
