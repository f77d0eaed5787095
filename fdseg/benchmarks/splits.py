"""Splits of a declared benchmark: the product specs a dataset loads.

* ``'all'``: every product of a benchmark (:data:`~fdseg.benchmarks.table.
  BENCHMARKS`).
* ``'fold0'`` / ``'fold1'``: the cross-domain folds of Table 2
  (:data:`~fdseg.benchmarks.gfds.FOLDS`); the training subset of a fold is
  the other fold.
* ``'in-domain'``: per product the held-out category of
  :data:`~fdseg.benchmarks.gfds.IN_DOMAIN_TEST_CLASS` tests, the others
  train (Sec. 6.1.1).

The result is a list of ``products`` entries (ProductSpec dicts) of
:class:`~fdseg.datasets.FewShotDefectDataset`. Pure Python.
"""

from typing import Dict, List, Optional, Sequence, Union

from .gfds import FOLDS, IN_DOMAIN_TEST_CLASS
from .table import (
    BENCHMARKS,
    PRODUCTS,
    benchmark_categories,
    gfds_order,
    resolve_product,
)


def gfds_products(
    names: Optional[Sequence[str]] = None,
    categories: Optional[Dict[str, Sequence[str]]] = None,
    exclude: Optional[Dict[str, Sequence[str]]] = None,
    include_good: Optional[bool] = None,
) -> List[dict]:
    """``products`` entries of :class:`FewShotDefectDataset` for products.

    Args:
        names (Sequence[str], optional): Product keys or aliases; all GFDS
            products in Table-4 order if None.
        categories (dict, optional): product -> benchmark categories to keep
            (parts for DAGM).
        exclude (dict, optional): product -> benchmark categories to drop.
        include_good (bool, optional): Override the products' default. Has
            no effect by itself: the dataset's ``include_good`` decides.

    Returns:
        list[dict]: ProductSpec dicts (DAGM expands to ten).
    """
    keys = [resolve_product(n) for n in (names or gfds_order())]
    categories = {resolve_product(k): list(v) for k, v in (categories or {}).items()}
    exclude = {resolve_product(k): set(v) for k, v in (exclude or {}).items()}
    specs = []
    for key in keys:
        entry = PRODUCTS[key]
        units = benchmark_categories(key)
        keep = categories.get(key, units)
        bad = [c for c in keep if c not in units]
        if bad:
            raise KeyError(
                f'product {key!r} has no categories {bad} (declared: {units})'
            )
        keep = [c for c in units if c in keep and c not in exclude.get(key, ())]
        common = dict(mask_mode=entry.mask_mode, mask_threshold=entry.mask_threshold)
        if entry.mask_mode == 'index':
            common['index_map'] = dict(entry.index_map)
        if entry.parts:
            for part in keep:
                specs.append(
                    dict(
                        name=part,
                        folder=part,
                        categories=list(entry.categories),
                        display_names={
                            c: entry.display_names.get(part, part)
                            for c in entry.categories
                        },
                        **common,
                    )
                )
        elif keep:
            specs.append(
                dict(
                    name=key,
                    folder=entry.folder,
                    categories=keep,
                    display_names=dict(entry.display_names),
                    **common,
                )
            )
    return specs


def fold_products(fold: Union[int, str], subset: str = 'test') -> List[str]:
    """Product keys of a cross-domain fold (Table 2).

    Args:
        fold (int | str): ``0``, ``1``, ``'fold0'`` or ``'fold1'``.
        subset (str): ``'test'`` (the fold itself) or ``'train'`` (the other
            fold, the cross-domain training set).
    """
    name = fold if str(fold).startswith('fold') else f'fold{fold}'
    if name not in FOLDS:
        raise KeyError(f'unknown fold {fold!r}; choose from {list(FOLDS)}')
    if subset == 'test':
        return list(FOLDS[name])
    if subset == 'train':
        return [p for f, ps in FOLDS.items() if f != name for p in ps]
    raise ValueError(f"subset must be 'test' or 'train', got {subset!r}")


def in_domain_split(
    product: str, subset: str = 'test', held_out: Optional[Dict[str, str]] = None
) -> List[str]:
    """Categories of ``product`` in the in-domain split (Sec. 6.1.1).

    Args:
        product (str): Product key or alias.
        subset (str): ``'test'`` (the held-out category) or ``'train'`` (the
            product's other categories).
        held_out (dict, optional): Overrides of :data:`IN_DOMAIN_TEST_CLASS`.
    """
    key = resolve_product(product)
    table = dict(IN_DOMAIN_TEST_CLASS)
    table.update({resolve_product(k): v for k, v in (held_out or {}).items()})
    if key not in table:
        raise KeyError(
            f'product {key!r} has no in-domain split (products '
            f'with one: {list(table)}); Kol and DAGM have a '
            'single category per product'
        )
    units = benchmark_categories(key)
    test = table[key]
    if test not in units:
        raise KeyError(
            f'in-domain test class {test!r} is not a category of {key!r} ({units})'
        )
    if subset == 'test':
        return [test]
    if subset == 'train':
        return [c for c in units if c != test]
    raise ValueError(f"subset must be 'test' or 'train', got {subset!r}")


def split_products(
    split: str = 'all',
    subset: str = 'test',
    products: Optional[Sequence[str]] = None,
    held_out: Optional[Dict[str, str]] = None,
    benchmark: str = 'gfds',
) -> List[dict]:
    """ProductSpec dicts of a benchmark split.

    Args:
        split (str): ``'all'`` (every product of ``benchmark``), ``'fold0'``,
            ``'fold1'`` (Table 2) or ``'in-domain'`` (Sec. 6.1.1).
        subset (str): ``'test'`` or ``'train'``. For a fold, ``'train'`` is
            the other fold; for in-domain, the non-held-out categories.
            ``'all'`` has no training subset.
        products (Sequence[str], optional): Keep only these products (with
            ``'all'``: exactly these, from any benchmark).
        held_out (dict, optional): In-domain test class overrides.
        benchmark (str): Benchmark whose products ``'all'`` means.
    """
    if subset not in ('test', 'train'):
        raise ValueError(f"subset must be 'test' or 'train', got {subset!r}")
    if split == 'all':
        if subset == 'train':
            raise ValueError(
                "split='all' has no training subset; use a fold or 'in-domain'"
            )
        if products:
            # Named products need no benchmark: any declared one will do.
            keys = list(dict.fromkeys(resolve_product(p) for p in products))
        elif benchmark not in BENCHMARKS:
            raise KeyError(
                f'unknown benchmark {benchmark!r}; declared: {list(BENCHMARKS)}'
            )
        else:
            keys = list(BENCHMARKS[benchmark])
        cats = None
    elif split in FOLDS:
        keys, cats = fold_products(split, subset), None
    elif split in ('in-domain', 'in_domain', 'indomain'):
        table = dict(IN_DOMAIN_TEST_CLASS)
        table.update({resolve_product(k): v for k, v in (held_out or {}).items()})
        keys = [k for k in gfds_order() if k in table]
        cats = {k: in_domain_split(k, subset, held_out) for k in keys}
    else:
        raise ValueError(
            f"unknown split {split!r}; choose 'all', "
            f'{", ".join(repr(f) for f in FOLDS)} or '
            "'in-domain'"
        )
    if products:
        want = [resolve_product(p) for p in products]
        missing = [p for p in want if p not in keys]
        if missing:
            raise KeyError(
                f'products {missing} are not in split {split!r} ({subset}): {keys}'
            )
        keys = [k for k in keys if k in want]
    return gfds_products(keys, categories=cats)
