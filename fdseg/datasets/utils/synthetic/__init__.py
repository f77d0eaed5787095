"""The procedural synthetic defect benchmark generator (no dataset class).

:class:`fdseg.datasets.SyntheticDefectDataset` reads what this writes.
"""

from .defects import SYNTHETIC_PRODUCTS
from .generator import (
    GENERATOR_VERSION,
    ensure_synthetic_benchmark,
    generate_synthetic_benchmark,
    render_synthetic_sample,
)

__all__ = [
    'SYNTHETIC_PRODUCTS',
    'GENERATOR_VERSION',
    'generate_synthetic_benchmark',
    'ensure_synthetic_benchmark',
    'render_synthetic_sample',
]
