"""The table of declared products and lookups into it.

Built once from the GFDS declaration (:data:`fdseg.benchmarks.gfds.GFDS`);
:func:`register_product` adds a product at run time (a 13th GFDS product,
a product of another benchmark, e.g. the development-only ``real_defects``
products that ``configs/_base_/datasets/real_defects.py`` declares and
:class:`~fdseg.datasets.GFDSDataset` registers with ``declare=``)::

    from fdseg.benchmarks import register_product
    register_product('Wood', folder='wood',
                     categories=['color', 'hole', 'scratch'],
                     counts=dict(color=8, hole=10, scratch=21),
                     source='MVTec AD', benchmark='gfds')
"""

from typing import Dict, List, Mapping, Optional, Sequence

from .gfds import GFDS
from .product import Product

#: Every declared product, in the order of Table 4 (then other products).
PRODUCTS: Dict[str, Product] = {p.key: p for p in GFDS}
#: The GFDS products (``benchmark='gfds'``), in Table-4 column order.
GFDS_PRODUCTS: Dict[str, Product] = {
    k: p for k, p in PRODUCTS.items() if p.benchmark == 'gfds'
}
#: Benchmarks: name -> product keys in report order.
BENCHMARKS: Dict[str, List[str]] = {}
for _p in PRODUCTS.values():
    BENCHMARKS.setdefault(_p.benchmark, []).append(_p.key)
del _p


def register_product(key: str, overwrite: bool = False, **fields) -> Product:
    """Declare a product (a column of Table 4) at run time.

    Args:
        key (str): Product key, used in metric names (``<key>/mIoU``).
        overwrite (bool): Replace an existing declaration.
        **fields: The other :class:`~fdseg.benchmarks.product.Product`
            fields (``folder``, ``categories``, ``counts``, ``benchmark``,
            ...).

    Returns:
        Product: The stored declaration.
    """
    if key in PRODUCTS and not overwrite:
        raise KeyError(
            f'product {key!r} is already declared; pass overwrite=True to replace it'
        )
    entry = Product(key, **fields)
    if key in PRODUCTS:
        unregister_product(key)
    PRODUCTS[key] = entry
    BENCHMARKS.setdefault(entry.benchmark, []).append(key)
    if entry.benchmark == 'gfds':
        GFDS_PRODUCTS[key] = entry
    return entry


def declare_products(declarations: Sequence[Mapping]) -> List[str]:
    """Register product declarations (dicts of :class:`Product` fields).

    The form a config declares products in (``GFDSDataset(declare=...)``).
    A product already declared identically is left as it is, so building the
    same dataset twice is harmless; a different declaration under a taken
    key raises ``KeyError``.

    Args:
        declarations (Sequence[Mapping]): ``key`` plus the other
            :class:`Product` fields.

    Returns:
        list[str]: The product keys, in the given order.
    """
    keys = []
    for decl in declarations:
        fields = dict(decl)  # counts may be (category, count) pairs
        key = fields.pop('key')
        entry = Product(key, **fields)
        if key in PRODUCTS:
            if PRODUCTS[key] != entry:
                raise KeyError(
                    f'product {key!r} is already declared differently: '
                    f'{PRODUCTS[key]} (unregister_product it first)'
                )
        else:
            register_product(key, **fields)
        keys.append(key)
    return keys


def declare_from_configs(paths: Sequence[str]) -> List[str]:
    """Register the products the configs' test datasets declare.

    For the tools that read reports or data without building a dataset
    (``gfds_table.py``, ``gfds_check.py``): a benchmark declared in a config
    (``test_dataloader.dataset.declare``) gets its names and order back.

    Args:
        paths (Sequence[str]): Config files.

    Returns:
        list[str]: The declared product keys, in order.
    """
    from fdseg.utils.config_checks import load_config

    keys = []
    for path in paths:
        dataset = load_config(path).get('test_dataloader', {}).get('dataset', {})
        keys += declare_products(dataset.get('declare', ()))
    return keys


def unregister_product(key: str) -> None:
    """Remove a declared product (tests, experiments)."""
    entry = PRODUCTS.pop(resolve_product(key))
    GFDS_PRODUCTS.pop(entry.key, None)
    members = BENCHMARKS.get(entry.benchmark, [])
    if entry.key in members:
        members.remove(entry.key)
    if not members:
        BENCHMARKS.pop(entry.benchmark, None)


def gfds_order() -> List[str]:
    """GFDS product keys in Table-4 column order (then added products)."""
    return list(GFDS_PRODUCTS)


def resolve_product(name: str) -> str:
    """Product key of ``name`` (a key, an official folder or an alias).

    Matching is case-insensitive; raises ``KeyError`` listing the known
    products otherwise.
    """
    if name in PRODUCTS:
        return name
    low = str(name).lower()
    for key, entry in PRODUCTS.items():
        names = [key, entry.folder, entry.display, *entry.aliases]
        if any(low == n.lower() for n in names if n):
            return key
    raise KeyError(
        f'unknown product {name!r}; declared: {list(PRODUCTS)} '
        '(declare more with fdseg.benchmarks.register_product)'
    )


def benchmark_categories(name: str) -> List[str]:
    """Benchmark categories of a product: its categories, or its parts."""
    return list(PRODUCTS[resolve_product(name)].units)


def official_key(product: str, category: str) -> str:
    """The official GFDS key ``<folder>_<category folder>``.

    ``category`` is a benchmark category (a part for DAGM), e.g.
    ``official_key('Tile', 'crack') == 'tile_crack'`` and
    ``official_key('DAGM', 'Class3') == 'Class3_bad'``.
    """
    entry = PRODUCTS[resolve_product(product)]
    if entry.parts:
        return f'{category}_{entry.categories[0]}'
    return f'{entry.folder}_{category}'


def part_map(products: Optional[Sequence[str]] = None) -> Dict[str, tuple]:
    """Dataset product name -> (product key, benchmark category).

    Only products with ``parts`` appear: DAGM's ``Class3`` maps to
    ``('DAGM', 'Class3')``. Used to report DAGM as one Table-4 product.
    """
    keys = [resolve_product(p) for p in products] if products else list(PRODUCTS)
    out = {}
    for key in keys:
        for part in PRODUCTS[key].parts or ():
            out[part] = (key, part)
    return out
