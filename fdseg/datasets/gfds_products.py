"""Old import path of the GFDS declaration; kept so that existing code runs.

The pieces now live where their names say:

* products, folds, in-domain classes, lookups, splits: :mod:`fdseg.benchmarks`
* the Table-1 count check: :mod:`fdseg.datasets.gfds_counts`
* :class:`GFDSDataset`: :mod:`fdseg.datasets.gfds_dataset`

Everything below is a re-export of those modules (the same objects).
"""

from fdseg.benchmarks.gfds import FOLDS, IN_DOMAIN_TEST_CLASS
from fdseg.benchmarks.splits import (
    fold_products,
    gfds_products,
    in_domain_split,
    split_products,
)
from fdseg.benchmarks.table import (
    BENCHMARKS,
    GFDS_PRODUCTS,
    PRODUCTS,
    benchmark_categories,
    gfds_order,
    official_key,
    part_map,
    register_product,
    resolve_product,
    unregister_product,
)

from .gfds_counts import check_counts, count_images
from .gfds_dataset import GFDSDataset

__all__ = [
    'FOLDS',
    'IN_DOMAIN_TEST_CLASS',
    'PRODUCTS',
    'GFDS_PRODUCTS',
    'BENCHMARKS',
    'register_product',
    'unregister_product',
    'gfds_order',
    'resolve_product',
    'benchmark_categories',
    'official_key',
    'part_map',
    'gfds_products',
    'fold_products',
    'in_domain_split',
    'split_products',
    'check_counts',
    'count_images',
    'GFDSDataset',
]
