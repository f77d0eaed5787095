""":class:`GFDSDataset`: a split of a declared benchmark as episodes.

The products, their mask conventions and the splits come from
:mod:`fdseg.benchmarks`; this module only turns them into a
:class:`~fdseg.datasets.FewShotDefectDataset` (and runs the Table-1 count
check of :mod:`fdseg.datasets.gfds_counts` when it loads).
"""

from typing import Dict, List, Optional, Sequence

from fdseg.benchmarks.splits import split_products
from fdseg.benchmarks.table import PRODUCTS, declare_products, part_map
from fdseg.registry import DATASETS

from .few_shot_defect import FewShotDefectDataset
from .gfds_counts import check_counts


@DATASETS.register_module()
class GFDSDataset(FewShotDefectDataset):
    """:class:`FewShotDefectDataset` over a split of a declared benchmark.

    Products, mask conventions and categories come from
    :data:`fdseg.benchmarks.PRODUCTS`; the split chooses which::

        dict(type='GFDSDataset', data_root='data/gfds', split='fold0')
        # the cross-domain training set of the fold0 experiment (= fold1):
        dict(type='GFDSDataset', data_root='data/gfds', split='fold0',
             subset='train')
        dict(type='GFDSDataset', data_root='data/gfds', split='in-domain',
             held_out=dict(Tile='oil'))
        # a benchmark declared in the config:
        dict(type='GFDSDataset', data_root='../shared/data',
             benchmark='real_defects',
             declare=[dict(key='crackforest', categories=['crack'],
                           benchmark='real_defects'), ...])

    Args:
        data_root (str): Folder holding the product folders.
        split (str): ``'all'``, ``'fold0'``, ``'fold1'`` or ``'in-domain'``
            (see :func:`fdseg.benchmarks.split_products`).
        subset (str): ``'test'`` or ``'train'``.
        products (Sequence[str], optional): Keep only these products of the
            split (keys or aliases, e.g. ``['Tile']``); a single string is
            one product.
        held_out (dict, optional): In-domain test class per product,
            overriding
            :data:`fdseg.benchmarks.IN_DOMAIN_TEST_CLASS`.
        benchmark (str): Benchmark of ``split='all'`` (``'gfds'``, or one
            whose products ``declare`` names, e.g. ``'real_defects'``).
        declare (Sequence[dict]): Product declarations (``key`` plus the
            other :class:`~fdseg.benchmarks.Product` fields, ``benchmark``
            among them) registered before the split is resolved, so that a
            config can declare the products of its own benchmark (see
            ``configs/_base_/datasets/real_defects.py``). Registered for the
            process, as :func:`fdseg.benchmarks.register_product` does: the
            Table-4 report takes their display names, column order and
            category counts from there.
        extra_products (Sequence[dict]): More ProductSpec dicts appended as
            they are (a product not worth declaring).
        check_counts (bool): Warn where the prepared data differ from the
            declared Table-1 counts (see
            :func:`fdseg.datasets.gfds_counts.check_counts`).
        include_good (bool, optional): Defect-free queries; defaults to the
            products' declaration (True if any declares it).
        **kwargs: :class:`FewShotDefectDataset` arguments (``shot``,
            ``way``, ``seed``, ``pipeline``, ...).
    """

    def __init__(
        self,
        data_root: str,
        split: str = 'all',
        subset: str = 'test',
        products: Optional[Sequence[str]] = None,
        held_out: Optional[Dict[str, str]] = None,
        benchmark: str = 'gfds',
        declare: Sequence[dict] = (),
        extra_products: Sequence[dict] = (),
        check_counts: bool = True,
        include_good: Optional[bool] = None,
        **kwargs,
    ):
        self.split = split
        self.subset = subset
        self.benchmark = benchmark
        declare_products(declare)
        if isinstance(products, str):
            # One product, not a sequence of one-letter product names.
            products = [products]
        specs = split_products(split, subset, products, held_out, benchmark)
        specs += [dict(p) for p in extra_products]
        if include_good is None:
            names = {s['name'] for s in specs}
            include_good = any(
                e.include_good
                for k, e in PRODUCTS.items()
                if k in names or any(p in names for p in e.parts or ())
            )
        self._check_counts = check_counts
        super().__init__(
            data_root=data_root, products=specs, include_good=include_good, **kwargs
        )

    def load_data_list(self) -> List[dict]:
        """Check the counts (warnings only), then build the episodes."""
        if self._check_counts:
            keys = []
            parts = part_map()
            for spec in self.products:
                key = parts.get(spec.name, (spec.name, None))[0]
                if key in PRODUCTS and key not in keys:
                    keys.append(key)
            if keys:
                check_counts(self.data_root, keys)
        data = super().load_data_list()
        self._metainfo['split'] = self.split
        self._metainfo['subset'] = self.subset
        return data
