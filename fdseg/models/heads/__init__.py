from .base_few_shot_head import BaseFewShotHead
from .baseline_heads import AllBackgroundHead, PasteSupportMaskHead
from .hsnet_head import HPNLearner, HSNetHead
from .patnet_head import PATNetHead
from .pfenet_head import PFENetHead
from .prototype_matcher_head import PrototypeMatcherHead
from .ssp_head import SSPHead

__all__ = [
    'BaseFewShotHead',
    'PrototypeMatcherHead',
    'AllBackgroundHead',
    'PasteSupportMaskHead',
    'HPNLearner',
    'HSNetHead',
    'PATNetHead',
    'PFENetHead',
    'SSPHead',
]
