"""Benchmark declarations as frozen data (no torch, nothing mutated at import).

* :mod:`.product`: :class:`Product`, one column of Table 4.
* :mod:`.gfds`: the 12 GFDS products (Table 1), folds (Table 2), in-domain
  held-out classes (Sec. 6.1.1).
* :mod:`.table`: the table of declared products and lookups into it; other
  benchmarks' products are registered at run time (the development-only
  ``real_defects`` of ``../shared/data`` are declared in
  ``configs/_base_/datasets/real_defects.py``).
* :mod:`.splits`: the product specs of a split (``all``, folds, in-domain).
* :mod:`.paper_table4`: the paper's Table-4 numbers.
"""

from .gfds import FOLDS, GFDS, IN_DOMAIN_TEST_CLASS
from .product import Product
from .splits import fold_products, gfds_products, in_domain_split, split_products
from .table import (
    BENCHMARKS,
    GFDS_PRODUCTS,
    PRODUCTS,
    benchmark_categories,
    declare_from_configs,
    declare_products,
    gfds_order,
    official_key,
    part_map,
    register_product,
    resolve_product,
    unregister_product,
)

__all__ = [
    'Product',
    'GFDS',
    'FOLDS',
    'IN_DOMAIN_TEST_CLASS',
    'PRODUCTS',
    'GFDS_PRODUCTS',
    'BENCHMARKS',
    'register_product',
    'declare_from_configs',
    'declare_products',
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
]
