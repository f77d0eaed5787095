"""fdseg: few-shot industrial defect segmentation toolbox.

Importing fdseg has no side effects: ``fdseg::`` config names become
loadable with :func:`fdseg.utils.setup_config_loading` (also done by
:func:`fdseg.utils.register_all_modules` and the config loaders).
"""

from . import utils  # noqa: F401  (``fdseg.utils`` after ``import fdseg``)
from .version import __version__

__all__ = ['__version__']
