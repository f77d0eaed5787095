"""Table-4 rows of the GFDS benchmark: the arithmetic.

Turns the flat metrics of :class:`~fdseg.evaluation.FewShotIoUMetric` (a
dict, or the ``metrics.json`` that ``tools/test.py --out`` writes) into a
Table-4 row: per product ``mIoU, FB-IoU`` in the paper's column order and
the "Average" column computed as the official script does (``main.py``):

* average mIoU = ``sum_p n_p * mIoU_p / sum_p n_p`` with ``n_p`` the number
  of categories the product declares (5 for Tile, 10 for DAGM, ...; 54 in
  all), i.e. the mean over the 54 categories when every category was
  evaluated, and the official weighting when only one category per product
  was (in-domain);
* average FB-IoU = mean over the products.

Rows of several runs (the two cross-domain folds; an in-domain run plus the
cross-domain Kol/DAGM numbers) merge product-wise with :func:`merge_rows`.
Formatting and the ``gfds_report.json`` file: :mod:`.gfds_report`; the
paper's numbers: :mod:`fdseg.benchmarks.paper_table4`. Pure Python.
"""

import json
import math
import os.path as osp
import warnings
from collections.abc import Mapping
from typing import Dict, List, Optional, Sequence, Union

from fdseg.benchmarks import paper_table4
from fdseg.benchmarks.table import (
    PRODUCTS,
    benchmark_categories,
    gfds_order,
    part_map,
    resolve_product,
)

REPORT_VERSION = 1


def paper_rows() -> Dict[str, dict]:
    """Table 4 of the paper as rows (see :func:`table4_row`).

    The rows keep the paper's printed "Average" (``average`` holds it), which
    the paper computed from unrounded numbers; ``recomputed_average`` holds
    our averaging of the printed per-product cells.
    """
    rows = {}
    for name, (cells, fps) in paper_table4.ROWS.items():
        products = {
            p: dict(
                mIoU=m,
                FB_IoU=f,
                categories={},
                num_categories=len(benchmark_categories(p)),
            )
            for p, (m, f) in zip(paper_table4.COLUMNS[:-1], cells[:-1])
        }
        row = _finish_row(products, fbiou='gfds', source=['paper Table 4'])
        row['recomputed_average'] = row['average']
        row['average'] = dict(row['average'], mIoU=cells[-1][0], FB_IoU=cells[-1][1])
        row['fps'] = dict(fps=fps, device='GTX 3090Ti (paper)', dtype='mixed precision')
        rows[name] = row
    return rows


# ----------------------------------------------------------------------
# Loading results
# ----------------------------------------------------------------------
def _nan(v) -> float:
    return float('nan') if v is None else float(v)


def _isnan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def load_result(source: Union[str, Mapping]) -> dict:
    """Read one result: a path or an already loaded dict.

    Accepted: the ``metrics.json`` of :class:`FewShotIoUMetric` (has
    ``metrics``), a ``gfds_report.json`` (has ``table4``), an FPS report of
    ``benchmark_fps.py`` (has ``fps``), or a flat metrics dict. A folder is
    searched for ``gfds_report.json``, then ``metrics.json``.

    Returns:
        dict: ``{'kind': 'row' | 'fps', 'row' | 'fps': ..., 'path': ...}``.
    """
    path = None
    if isinstance(source, str):
        path = source
        if osp.isdir(path):
            for name in ('gfds_report.json', 'metrics.json', 'fps.json'):
                if osp.isfile(osp.join(path, name)):
                    path = osp.join(path, name)
                    break
            else:
                raise FileNotFoundError(
                    f'{source} holds no gfds_report.json, metrics.json or fps.json'
                )
        with open(path) as f:
            data = json.load(f)
    else:
        data = dict(source)
    if 'table4' in data:
        row = data['table4']
        if data.get('fps') and not row.get('fps'):
            row['fps'] = data['fps']
        return dict(kind='row', row=row, path=path)
    if 'fps' in data and 'metrics' not in data and not any('/' in k for k in data):
        return dict(kind='fps', fps=data, path=path)
    metrics = data.get('metrics', data)
    row = table4_row(metrics)
    if path:
        row['source'] = [path]
    return dict(kind='row', row=row, path=path)


# ----------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------
def _product_key(name: str) -> str:
    try:
        return resolve_product(name)
    except KeyError:
        return name


def _declared_weight(key: str, evaluated: int) -> int:
    if key in PRODUCTS:
        return len(benchmark_categories(key))
    return evaluated


def _mean(values) -> float:
    vals = [v for v in values if not _isnan(v)]
    return sum(vals) / len(vals) if vals else float('nan')


def _finish_row(
    products: Dict[str, dict],
    fbiou: str,
    weights: str = 'declared',
    source: Optional[List[str]] = None,
) -> dict:
    """Order the products and compute the Table-4 "Average" column."""
    order = [p for p in gfds_order() if p in products]
    order += [p for p in PRODUCTS if p in products and p not in order]
    order += sorted(p for p in products if p not in order)
    num = den = 0.0
    for p in order:
        info = products[p]
        w = (
            _declared_weight(p, info['num_categories'])
            if weights == 'declared'
            else info['num_categories']
        )
        info['weight'] = w
        if not _isnan(info['mIoU']):
            num += w * info['mIoU']
            den += w
    average = dict(
        mIoU=num / den if den else float('nan'),
        FB_IoU=_mean(products[p]['FB_IoU'] for p in order),
        num_categories=int(sum(products[p]['weight'] for p in order)),
        evaluated_categories=int(sum(products[p]['num_categories'] for p in order)),
        num_products=len(order),
    )
    return dict(
        version=REPORT_VERSION,
        products={p: products[p] for p in order},
        order=order,
        average=average,
        fbiou=fbiou,
        weights=weights,
        fps=None,
        source=list(source or []),
    )


def table4_row(
    metrics: Mapping, fbiou: str = 'gfds', weights: str = 'declared'
) -> dict:
    """A Table-4 row from the flat metrics of ``FewShotIoUMetric``.

    Args:
        metrics (Mapping): Flat metrics (``<product>/mIoU``,
            ``<product>/FB-IoU(gfds)`` or ``<product>/FB-IoU``,
            ``<product>/<category>/IoU``, in percent).
        fbiou (str): ``'gfds'`` (the official script's FB-IoU, what Table 4
            reports) or ``'paper'`` (eq. 18). Falls back to the other with a
            warning if missing.
        weights (str): ``'declared'`` (official: a product's mIoU weighs its
            declared category count) or ``'evaluated'`` (its evaluated
            category count: the plain mean over evaluated categories).

    Returns:
        dict: ``products`` (key -> ``mIoU``, ``FB_IoU``, ``categories``
        {category: IoU}, ``num_categories``, ``weight``), ``order`` (Table-4
        order), ``average`` (``mIoU``, ``FB_IoU``, counts), ``fbiou``,
        ``fps`` (None). Products are keyed by their declared key (aliases
        and official folder names are resolved); DAGM's ten ``Class<k>``
        products are merged into one (approximately, see below) when the
        metrics were not produced by ``GFDSBenchmarkMetric``.
    """
    if fbiou not in ('gfds', 'paper'):
        raise ValueError(f"fbiou must be 'gfds' or 'paper', got {fbiou!r}")
    suffix = {'gfds': 'FB-IoU(gfds)', 'paper': 'FB-IoU'}
    cats: Dict[str, Dict[str, float]] = {}
    prod_miou: Dict[str, float] = {}
    prod_fb: Dict[str, Dict[str, float]] = {}
    for k, v in metrics.items():
        parts = k.split('/')
        if parts[0] in ('bench', 'gfds') or len(parts) not in (2, 3):
            continue
        if len(parts) == 3 and parts[2] == 'IoU':
            cats.setdefault(parts[0], {})[parts[1]] = _nan(v)
        elif len(parts) == 2 and parts[1] == 'mIoU':
            prod_miou[parts[0]] = _nan(v)
        elif len(parts) == 2 and parts[1] in suffix.values():
            prod_fb.setdefault(parts[0], {})[parts[1]] = _nan(v)
    names = list(dict.fromkeys([*prod_miou, *cats]))
    if not names:
        raise ValueError(
            'no per-product metrics (<product>/mIoU) found; is '
            'this the output of FewShotIoUMetric?'
        )

    fallbacks: List[str] = []

    def pick_fb(name):
        fbs = prod_fb.get(name, {})
        if suffix[fbiou] in fbs:
            return fbs[suffix[fbiou]]
        for other in suffix.values():
            if other in fbs:
                fallbacks.append(f'{name} ({other})')
                return fbs[other]
        return float('nan')

    parts = part_map()
    products: Dict[str, dict] = {}
    merged: Dict[str, List[str]] = {}
    for name in names:
        if name in parts:
            # An unmerged DAGM part (plain FewShotIoUMetric): collect.
            merged.setdefault(parts[name][0], []).append(name)
            continue
        key = _product_key(name)
        c = cats.get(name, {})
        products[key] = dict(
            mIoU=prod_miou.get(name, _mean(c.values())),
            FB_IoU=pick_fb(name),
            categories=dict(c),
            num_categories=len(c) or 1,
        )
    for key, members in merged.items():
        if key in products:
            continue
        c = {parts[m][1]: _mean(cats.get(m, {}).values()) for m in members}
        warnings.warn(
            f'{key}: the metrics hold its parts ({", ".join(members)}) as '
            f'separate products; mIoU is exact but FB-IoU is approximated '
            f"by the mean of the parts' FB-IoU. Evaluate with "
            f'GFDSBenchmarkMetric for the official pooled FB-IoU.'
        )
        products[key] = dict(
            mIoU=_mean(c.values()),
            FB_IoU=_mean(pick_fb(m) for m in members),
            categories=c,
            num_categories=len(c),
            approximate_fbiou=True,
        )
    if fallbacks:
        warnings.warn(
            f'no {suffix[fbiou]} in the metrics of '
            f'{", ".join(fallbacks)}: the other FB-IoU is used'
        )
    return _finish_row(products, fbiou, weights)


def merge_rows(rows: Sequence[dict], weights: Optional[str] = None) -> dict:
    """Merge rows product-wise; the first row holding a product wins.

    Use it for the two cross-domain folds of one method, or for an
    in-domain run completed with the cross-domain Kol and DAGM numbers (as
    Table 4 does). The FPS of the first row that has one is kept.
    """
    if not rows:
        raise ValueError('nothing to merge')
    products: Dict[str, dict] = {}
    source: List[str] = []
    fps = None
    for row in rows:
        for p in row['order']:
            products.setdefault(p, dict(row['products'][p]))
        source += row.get('source', [])
        fps = fps or row.get('fps')
    fbiou = {r['fbiou'] for r in rows}
    if len(fbiou) > 1:
        warnings.warn(f'merging rows with different FB-IoU variants {sorted(fbiou)}')
    out = _finish_row(
        products,
        rows[0]['fbiou'],
        weights or rows[0].get('weights', 'declared'),
        source,
    )
    out['fps'] = fps
    return out


def bench_metrics(row: dict) -> Dict[str, float]:
    """Flat ``bench/...`` keys of a row (for the runner's metrics)."""
    out = {}
    for p in row['order']:
        out[f'bench/{p}/mIoU'] = _round(row['products'][p]['mIoU'])
        out[f'bench/{p}/FB-IoU'] = _round(row['products'][p]['FB_IoU'])
    out['bench/mIoU'] = _round(row['average']['mIoU'])
    out['bench/FB-IoU'] = _round(row['average']['FB_IoU'])
    if row.get('fps'):
        out['bench/FPS'] = _round(row['fps']['fps'])
    return out


def _round(v, nd=2) -> float:
    return float('nan') if _isnan(v) else round(float(v), nd)


# ----------------------------------------------------------------------
# Rows of trained (meta-learning) methods: the two settings of Sec. 6.1.1
# ----------------------------------------------------------------------
def _where(row: dict) -> str:
    return ', '.join(row.get('source') or []) or 'the row'


def cross_domain_row(fold0: dict, fold1: dict) -> dict:
    """The Table-4 row of a method trained in the cross-domain setting.

    Each fold's model is tested on its own test fold (Table 2): the fold-0
    run (trained on fold 1) gives the fold-0 products, the fold-1 run the
    fold-1 products; merged, they are the 12 columns, and the "Average" is
    computed over all of them (mIoU weighted by the declared category
    counts, 54 in all, FB-IoU over the 12 products), not as a mean of the
    two folds' averages.

    Args:
        fold0 (dict): Row of the fold-0 run's test (:func:`load_result`).
        fold1 (dict): Row of the fold-1 run's test.

    Returns:
        dict: The merged row.

    Raises:
        ValueError: A run holds products of the other fold (it was not
            tested on its own test fold), or both runs are the same fold;
            the message names the source.
    """
    from fdseg.benchmarks.gfds import FOLDS

    for name, row in (('fold0', fold0), ('fold1', fold1)):
        wrong = [p for p in row['order'] if p not in FOLDS[name]]
        if wrong:
            raise ValueError(
                f'{_where(row)}: given as the {name} run but holds {wrong}, '
                f'which are not in {name} (test products: {list(FOLDS[name])}); '
                "each fold's model is tested on its own test fold"
            )
    row = merge_rows([fold0, fold1])
    missing = [p for p in gfds_order() if p not in row['products']]
    if missing:
        warnings.warn(
            f'cross-domain row without {missing}: its average covers '
            f'{row["average"]["num_products"]} products only'
        )
    row['setting'] = 'cross-domain'
    return row


def in_domain_row(in_domain: dict, cross_domain: Optional[dict] = None) -> dict:
    """The ``*`` (in-domain) row of Table 4.

    The in-domain run tests, per product, its held-out class (Sec. 6.1.1;
    :data:`fdseg.benchmarks.gfds.IN_DOMAIN_TEST_CLASS`); Kol and DAGM have
    one class per product and no in-domain split, so Table 4 fills their
    cells of the ``*`` rows with the cross-domain numbers (PFENet* and
    PFENet show the same Kol and DAGM cells). The "Average" weighs each
    product's mIoU by its declared category count, as the official script
    does, although only one class per product was evaluated.

    Args:
        in_domain (dict): Row of the in-domain run's test.
        cross_domain (dict, optional): The cross-domain row (or a fold's
            row) to take Kol and DAGM from; only those two are taken.

    Returns:
        dict: The ``*`` row.

    Raises:
        ValueError: The in-domain row holds a product without in-domain
            split, or more than one class of a product.
    """
    from fdseg.benchmarks.gfds import IN_DOMAIN_TEST_CLASS

    for p in in_domain['order']:
        if p not in IN_DOMAIN_TEST_CLASS:
            raise ValueError(
                f'{_where(in_domain)}: {p} has no in-domain split (products '
                f'with one: {list(IN_DOMAIN_TEST_CLASS)}); is this the '
                'in-domain run?'
            )
        cats = list(in_domain['products'][p].get('categories') or {})
        if len(cats) > 1:
            raise ValueError(
                f'{_where(in_domain)}: {p} has {len(cats)} evaluated classes '
                f'{cats}; the in-domain test set is one held-out class per '
                'product'
            )
    rows = [in_domain]
    if cross_domain is not None:
        extra = [p for p in cross_domain['order'] if p not in IN_DOMAIN_TEST_CLASS]
        products = {p: dict(cross_domain['products'][p]) for p in extra}
        rows.append(
            _finish_row(
                products,
                cross_domain['fbiou'],
                cross_domain.get('weights', 'declared'),
                cross_domain.get('source'),
            )
        )
    row = merge_rows(rows)
    row['setting'] = 'in-domain'
    return row
