"""fdseg: few-shot industrial defect segmentation toolbox."""
from .utils.mmengine_compat import apply as _apply_mmengine_compat
from .version import __version__

_apply_mmengine_compat()

__all__ = ['__version__']
