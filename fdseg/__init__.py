"""fdseg: few-shot industrial defect segmentation toolbox."""
from .version import __version__

__all__ = ['__version__']
