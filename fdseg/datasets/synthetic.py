"""Old import path of the synthetic benchmark generator.

The generator lives in :mod:`fdseg.datasets.utils.synthetic` (textures,
defects, writer, generator); this module re-exports its public names.
"""

from .utils.synthetic import (
    GENERATOR_VERSION,
    SYNTHETIC_PRODUCTS,
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
