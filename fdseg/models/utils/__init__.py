from .mask_ops import downsample_mask
from .size import to_hw

__all__ = ['downsample_mask', 'to_hw']
