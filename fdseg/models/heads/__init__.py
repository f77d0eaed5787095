from .base_few_shot_head import BaseFewShotHead
from .prototype_matcher_head import PrototypeMatcherHead

__all__ = ['BaseFewShotHead', 'PrototypeMatcherHead']
