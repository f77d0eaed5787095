from .mask_ops import downsample_mask

__all__ = ['downsample_mask']
