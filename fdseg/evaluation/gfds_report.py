"""Table-4 reporting and the FPS protocol of the GFDS benchmark.

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
:func:`measure_fps` implements the paper's speed protocol (Sec. 6.3).

Pure Python + numpy except :func:`measure_fps` (torch).
"""
import contextlib
import json
import math
import os
import os.path as osp
import platform
import time
import warnings
from collections.abc import Mapping
from typing import Dict, List, Optional, Sequence, Union

from fdseg.datasets.gfds_products import (PRODUCTS, benchmark_categories,
                                          gfds_order, part_map,
                                          resolve_product)

# Table 4 of the paper ('mIoU, FB-IoU' per product, Average, FPS), for
# comparison plots and as a check of the averaging. Rows marked '*' use the
# in-domain training set. Transcribed from the paper; HSNet reads 'H5Net'
# in the text extraction.
_PAPER_COLUMNS = ['Tile', 'Grid', 'Steel', 'Kol', 'PSP', 'DAGM', 'R_small',
                  'R_large', 'R_side', 'MSD', 'Capsules', 'Macaroni2',
                  'Average']
_PAPER_ROWS = {
    'PFENet': ([(0.0, 45.0), (0.0, 49.5), (17.3, 51.0), (10.6, 55.0), (2.0, 50.0), (0.0, 49.6), (0.0, 49.9), (0.0, 49.6), (0.0, 49.9), (12.3, 59.4), (0.0, 49.7), (0.0, 45.0), (21.1, 50.3)], 154.0),  # noqa: E501
    'PFENet*': ([(56.5, 76.2), (28.0, 63.5), (43.6, 68.2), (10.6, 55.0), (23.2, 60.9), (0.0, 49.6), (0.0, 49.9), (28.3, 64.0), (0.0, 49.9), (7.4, 53.2), (24.0, 62.1), (0.0, 50.0), (18.6, 58.6)], 154.0),  # noqa: E501
    'SSP': ([(54.1, 74.4), (29.4, 63.2), (50.4, 71.0), (2.2, 43.7), (16.7, 55.8), (21.2, 59.5), (0.6, 40.6), (6.2, 47.3), (1.2, 40.3), (22.7, 60.7), (2.4, 44.3), (1.0, 47.6), (18.8, 54.0)], 302.4),  # noqa: E501
    'SSP*': ([(65.3, 80.5), (38.0, 68.4), (61.2, 77.6), (2.2, 43.7), (34.5, 66.3), (21.2, 59.5), (10.2, 54.7), (33.4, 65.9), (34.1, 65.7), (26.8, 62.8), (23.1, 62.1), (9.4, 53.8), (30.4, 63.4)], 302.4),  # noqa: E501
    'HSNet': ([(7.1, 47.4), (2.6, 50.4), (35.1, 63.2), (5.0, 52.1), (15.6, 57.5), (8.4, 51.7), (1.0, 49.8), (6.2, 51.4), (2.9, 49.1), (16.3, 59.9), (1.5, 49.6), (2.5, 50.9), (8.5, 52.8)], 148.1),  # noqa: E501
    'HSNet*': ([(42.8, 68.4), (10.0, 54.5), (28.9, 60.0), (5.0, 52.1), (4.8, 51.0), (8.4, 51.7), (1.5, 50.9), (4.9, 52.3), (0.0, 49.7), (6.3, 52.4), (0.1, 49.7), (0.0, 50.0), (9.6, 53.6)], 148.1),  # noqa: E501
    'PATNet': ([(51.1, 74.6), (19.1, 58.0), (50.3, 71.1), (8.4, 53.9), (21.3, 60.4), (27.7, 66.4), (1.0, 48.8), (6.2, 51.3), (2.0, 50.0), (17.7, 64.5), (2.0, 50.3), (0.5, 50.1), (19.2, 58.3)], 95.0),  # noqa: E501
    'PATNet*': ([(57.3, 77.1), (25.1, 62.1), (53.9, 73.5), (8.4, 53.9), (16.2, 57.0), (27.7, 66.4), (8.4, 55.4), (10.6, 55.6), (0.0, 49.9), (6.5, 52.4), (4.2, 51.8), (0.0, 50.0), (20.1, 58.8)], 95.0),  # noqa: E501
    'PerSAM': ([(39.1, 52.4), (1.3, 18.3), (15.4, 48.6), (0.0, 9.2), (3.7, 41.2), (10.1, 33.7), (0.0, 35.3), (5.4, 46.4), (1.1, 38.9), (1.4, 31.0), (4.4, 51.3), (1.0, 48.4), (8.0, 37.9)], 5.2),  # noqa: E501
    'Matcher': ([(14.0, 39.4), (1.8, 46.7), (32.6, 54.8), (0.0, 18.7), (6.2, 42.9), (2.1, 14.5), (0.0, 32.3), (3.0, 39.8), (1.1, 41.9), (1.9, 35.3), (2.0, 49.5), (0.0, 46.7), (5.0, 38.5)], 4.5),  # noqa: E501
    'SAM2-l(1024)': ([(71.8, 84.1), (48.1, 73.8), (64.1, 80.1), (58.2, 78.9), (33.2, 65.9), (53.5, 76.6), (42.5, 71.2), (51.3, 75.4), (62.7, 81.3), (43.1, 71.4), (7.7, 53.4), (20.1, 60.0), (43.8, 72.7)], 14.1),  # noqa: E501
    'SAM2-b(1024)': ([(76.6, 86.9), (32.4, 65.7), (71.7, 84.3), (57.1, 78.4), (32.4, 65.4), (61.7, 80.7), (45.8, 72.8), (49.9, 74.7), (46.2, 73.0), (53.6, 76.6), (10.5, 54.8), (21.4, 60.6), (45.0, 72.8)], 23.8),  # noqa: E501
    'SAM2-t(1024)': ([(79.0, 88.4), (31.3, 65.2), (74.3, 85.7), (55.3, 77.5), (37.0, 67.8), (60.0, 79.9), (36.9, 68.4), (57.8, 78.7), (50.9, 75.4), (56.3, 78.0), (10.2, 54.7), (14.1, 57.0), (45.1, 73.1)], 34.5),  # noqa: E501
    'SAM2-s(1024)': ([(80.5, 89.2), (35.6, 67.4), (75.8, 86.5), (58.0, 78.9), (33.6, 66.0), (63.4, 81.5), (50.8, 75.3), (49.0, 74.2), (55.5, 77.7), (47.2, 73.4), (15.4, 57.2), (29.2, 64.6), (47.9, 74.3)], 32.3),  # noqa: E501
    'SAM2-s(512)': ([(72.2, 84.2), (32.2, 65.7), (72.9, 85.0), (43.6, 71.6), (28.3, 63.3), (52.8, 76.2), (42.6, 71.3), (41.7, 70.5), (28.6, 64.2), (37.5, 68.6), (4.6, 51.8), (16.0, 57.9), (38.8, 69.2)], 75.1),  # noqa: E501
    'SAM2-s(256)': ([(62.4, 78.5), (18.5, 58.7), (67.1, 81.6), (16.1, 57.8), (15.9, 56.7), (37.2, 68.4), (5.9, 52.9), (17.5, 57.9), (7.6, 53.6), (19.6, 59.4), (4.1, 51.6), (1.0, 50.2), (23.9, 60.6)], 76.9),  # noqa: E501
    'FM-l': ([(65.2, 80.7), (14.9, 56.1), (69.0, 82.3), (22.4, 60.8), (35.4, 66.7), (50.3, 74.9), (18.2, 59.0), (39.9, 69.7), (33.7, 66.8), (33.5, 66.3), (14.0, 56.7), (22.9, 61.4), (36.5, 66.8)], 277.8),  # noqa: E501
    'FM-s': ([(62.3, 79.2), (15.6, 56.4), (68.1, 81.9), (21.8, 60.4), (33.1, 65.5), (45.9, 72.7), (17.9, 58.9), (35.8, 67.7), (37.3, 68.6), (31.9, 65.5), (10.6, 55.0), (24.0, 62.0), (34.6, 66.1)], 588.2),  # noqa: E501
    'FM-l+FastSAM-s': ([(70.1, 83.4), (15.2, 56.0), (69.1, 82.4), (22.4, 60.8), (36.6, 67.2), (51.9, 75.8), (18.2, 59.0), (38.1, 68.7), (35.6, 67.7), (37.2, 68.2), (19.7, 59.6), (23.5, 61.7), (38.2, 67.5)], 104.2),  # noqa: E501
    'FM-l+FastSAM': ([(74.9, 86.1), (17.2, 57.3), (73.6, 84.9), (22.4, 60.8), (37.1, 67.5), (52.9, 76.2), (18.2, 59.0), (38.1, 68.7), (36.0, 67.9), (38.9, 69.1), (19.4, 59.5), (23.2, 61.5), (39.3, 68.2)], 90.9),  # noqa: E501
}

REPORT_VERSION = 1


def paper_rows() -> Dict[str, dict]:
    """Table 4 of the paper as rows (see :func:`table4_row`).

    The rows keep the paper's printed "Average" (``average`` holds it), which
    the paper computed from unrounded numbers; ``recomputed_average`` holds
    our averaging of the printed per-product cells.
    """
    rows = {}
    for name, (cells, fps) in _PAPER_ROWS.items():
        products = {
            p: dict(mIoU=m, FB_IoU=f, categories={},
                    num_categories=len(benchmark_categories(p)))
            for p, (m, f) in zip(_PAPER_COLUMNS[:-1], cells[:-1])
        }
        row = _finish_row(products, fbiou='gfds', source=['paper Table 4'])
        row['recomputed_average'] = row['average']
        row['average'] = dict(row['average'], mIoU=cells[-1][0],
                              FB_IoU=cells[-1][1])
        row['fps'] = dict(fps=fps, device='GTX 3090Ti (paper)',
                          dtype='mixed precision')
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
                    f'{source} holds no gfds_report.json, metrics.json or '
                    'fps.json')
        with open(path) as f:
            data = json.load(f)
    else:
        data = dict(source)
    if 'table4' in data:
        row = data['table4']
        if data.get('fps') and not row.get('fps'):
            row['fps'] = data['fps']
        return dict(kind='row', row=row, path=path)
    if 'fps' in data and 'metrics' not in data and not any(
            '/' in k for k in data):
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


def _finish_row(products: Dict[str, dict], fbiou: str,
                weights: str = 'declared',
                source: Optional[List[str]] = None) -> dict:
    """Order the products and compute the Table-4 "Average" column."""
    order = [p for p in gfds_order() if p in products]
    order += [p for p in PRODUCTS if p in products and p not in order]
    order += sorted(p for p in products if p not in order)
    num = den = 0.0
    for p in order:
        info = products[p]
        w = (_declared_weight(p, info['num_categories'])
             if weights == 'declared' else info['num_categories'])
        info['weight'] = w
        if not _isnan(info['mIoU']):
            num += w * info['mIoU']
            den += w
    average = dict(
        mIoU=num / den if den else float('nan'),
        FB_IoU=_mean(products[p]['FB_IoU'] for p in order),
        num_categories=int(sum(products[p]['weight'] for p in order)),
        evaluated_categories=int(
            sum(products[p]['num_categories'] for p in order)),
        num_products=len(order))
    return dict(
        version=REPORT_VERSION,
        products={p: products[p] for p in order},
        order=order,
        average=average,
        fbiou=fbiou,
        weights=weights,
        fps=None,
        source=list(source or []))


def table4_row(metrics: Mapping,
               fbiou: str = 'gfds',
               weights: str = 'declared') -> dict:
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
        raise ValueError('no per-product metrics (<product>/mIoU) found; is '
                         'this the output of FewShotIoUMetric?')

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
            num_categories=len(c) or 1)
    for key, members in merged.items():
        if key in products:
            continue
        c = {parts[m][1]: _mean(cats.get(m, {}).values()) for m in members}
        warnings.warn(
            f'{key}: the metrics hold its parts ({", ".join(members)}) as '
            f'separate products; mIoU is exact but FB-IoU is approximated '
            f'by the mean of the parts\' FB-IoU. Evaluate with '
            f'GFDSBenchmarkMetric for the official pooled FB-IoU.')
        products[key] = dict(
            mIoU=_mean(c.values()),
            FB_IoU=_mean(pick_fb(m) for m in members),
            categories=c,
            num_categories=len(c),
            approximate_fbiou=True)
    if fallbacks:
        warnings.warn(f'no {suffix[fbiou]} in the metrics of '
                      f'{", ".join(fallbacks)}: the other FB-IoU is used')
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
        warnings.warn(f'merging rows with different FB-IoU variants '
                      f'{sorted(fbiou)}')
    out = _finish_row(products, rows[0]['fbiou'],
                      weights or rows[0].get('weights', 'declared'), source)
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


# ----------------------------------------------------------------------
# Formatting
# ----------------------------------------------------------------------
def _round(v, nd=2) -> float:
    return float('nan') if _isnan(v) else round(float(v), nd)


def _cell(m, f) -> str:
    fmt = (lambda v: '-' if _isnan(v) else f'{v:.1f}')
    return f'{fmt(m)}, {fmt(f)}'


def _display(p: str) -> str:
    return PRODUCTS[p]['display'] if p in PRODUCTS else p


def table_columns(rows: Mapping[str, dict],
                  products: Optional[Sequence[str]] = None) -> List[str]:
    """Product columns: ``products`` or the union of the rows' products."""
    if products:
        return [_product_key(p) for p in products]
    cols: List[str] = []
    for row in rows.values():
        cols += [p for p in row['order'] if p not in cols]
    order = {p: i for i, p in enumerate(list(PRODUCTS))}
    return sorted(cols, key=lambda p: order.get(p, len(order)))


def _fps_text(row) -> str:
    fps = row.get('fps')
    return '-' if not fps else f"{fps['fps']:.1f}"


def format_header(row: dict,
                  products: Optional[Sequence[str]] = None) -> str:
    """Header of :func:`format_row` (display names, Table-4 order)."""
    cols = table_columns({'': row}, products)
    return ' | '.join(['Method', *[_display(p) for p in cols], 'Average',
                       'FPS'])


def format_row(name: str, row: dict,
               products: Optional[Sequence[str]] = None) -> str:
    """One Table-4 line: ``name | Tile mIoU, FB-IoU | ... | Average | FPS``."""
    cols = table_columns({name: row}, products)
    cells = [_cell(row['products'][p]['mIoU'], row['products'][p]['FB_IoU'])
             if p in row['products'] else '-' for p in cols]
    avg = _cell(row['average']['mIoU'], row['average']['FB_IoU'])
    return ' | '.join([name, *cells, avg, _fps_text(row)])


def to_markdown(rows: Mapping[str, dict],
                products: Optional[Sequence[str]] = None) -> str:
    """Rows as a Markdown table in the Table-4 layout."""
    cols = table_columns(rows, products)
    head = ['Method', *[_display(p) for p in cols], 'Average', 'FPS']
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '|'.join(['---'] + [':-:'] * (len(head) - 1)) + '|']
    for name, row in rows.items():
        cells = [_cell(row['products'][p]['mIoU'],
                       row['products'][p]['FB_IoU'])
                 if p in row['products'] else '-' for p in cols]
        lines.append('| ' + ' | '.join(
            [name, *cells,
             _cell(row['average']['mIoU'], row['average']['FB_IoU']),
             _fps_text(row)]) + ' |')
    return '\n'.join(lines) + '\n'


def to_csv_rows(rows: Mapping[str, dict],
                products: Optional[Sequence[str]] = None) -> List[List]:
    """Rows as CSV records (one mIoU and one FB-IoU column per product)."""
    cols = table_columns(rows, products)
    header = ['method']
    for p in cols + ['Average']:
        header += [f'{p} mIoU', f'{p} FB-IoU']
    header += ['FPS', 'FPS device', 'FPS dtype']
    out = [header]
    for name, row in rows.items():
        rec = [name]
        for p in cols:
            info = row['products'].get(p)
            rec += ([_round(info['mIoU']), _round(info['FB_IoU'])]
                    if info else ['', ''])
        rec += [_round(row['average']['mIoU']),
                _round(row['average']['FB_IoU'])]
        fps = row.get('fps') or {}
        rec += [_round(fps['fps']) if fps else '', fps.get('device', ''),
                fps.get('dtype', '')]
        out.append(['' if isinstance(v, float) and math.isnan(v) else v
                    for v in rec])
    return out


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, 'item'):
        return _jsonable(obj.item())
    return obj


def write_report(path: str, row: dict, **extra) -> None:
    """Write ``{'table4': row, ...}`` as strict JSON (NaN -> null), atomically.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    payload = dict(table4=row, **extra)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(_jsonable(payload), f, indent=2, allow_nan=False)
    os.replace(tmp, path)


def read_row(path: str) -> dict:
    """Read the row of a ``gfds_report.json`` (null -> NaN)."""
    with open(path) as f:
        row = json.load(f)['table4']

    def fix(obj):
        if isinstance(obj, dict):
            return {k: (float('nan') if v is None and k in (
                'mIoU', 'FB_IoU') else fix(v)) for k, v in obj.items()}
        return obj
    return fix(row)


# ----------------------------------------------------------------------
# FPS protocol (paper Sec. 6.3)
# ----------------------------------------------------------------------
def device_description(device) -> str:
    """Readable name of a torch device (GPU model or CPU model)."""
    import torch
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    name = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return f'CPU ({name})'


def resolve_amp_dtype(device, amp: Union[str, bool] = 'auto'):
    """The autocast dtype of the protocol, or None for fp32.

    ``'auto'``: bf16 on a CUDA device that supports it, else fp16 on CUDA
    (the official SAM2 / GFDS code run under ``torch.autocast`` on CUDA),
    fp32 on CPU (CPU autocast slows most of these models down).
    """
    import torch
    device = torch.device(device)
    if amp in (False, None, 'none', 'fp32', 'float32'):
        return None
    if amp in ('bf16', 'bfloat16'):
        return torch.bfloat16
    if amp in ('fp16', 'float16'):
        return torch.float16
    if amp not in ('auto', True):
        raise ValueError(f'unknown amp setting {amp!r}')
    if device.type != 'cuda':
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() \
        else torch.float16


def measure_fps(model,
                batches: Sequence[dict],
                num_warmup: int = 10,
                num_iters: int = 50,
                amp: Union[str, bool] = 'auto',
                pin_support: bool = True) -> dict:
    """Time query inference as the paper does (Sec. 6.3).

    Protocol: batch size 1; the support set of the first episode is encoded
    once and pinned (``model.set_support``), so support processing is
    excluded; queries are pre-loaded and pre-normalised on the device (data
    loading excluded); ``num_warmup`` untimed queries, then ``num_iters``
    timed ones (synchronising CUDA), each the full prediction
    (backbone, head, refiner, argmax); mixed precision where the device
    supports it (see :func:`resolve_amp_dtype`).

    Args:
        model: A FewShotSegmentor-like model (``data_preprocessor``,
            ``forward(inputs, data_samples, mode='predict')``, optionally
            ``set_support`` / ``clear_support``), on its device.
        batches (Sequence[dict]): Collated batches of ONE episode each (what
            the test dataloader yields with ``batch_size=1``); cycled when
            fewer than ``num_warmup + num_iters``.
        num_warmup (int): Untimed queries first.
        num_iters (int): Timed queries.
        amp (str | bool): ``'auto'``, ``'bf16'``, ``'fp16'`` or ``'fp32'``.
        pin_support (bool): Pin the first support set. Without it (or a
            model without ``set_support``) support encoding is timed too and
            the report says so.

    Returns:
        dict: ``fps``, ``ms_per_query``, ``num_iters``, ``num_warmup``,
        ``device`` (readable), ``device_type``, ``dtype``, ``threads``
        (``torch.get_num_threads()``), ``support_excluded``, ``batch_size``
        (1), ``torch`` version.
    """
    import torch
    if not batches:
        raise ValueError('measure_fps needs at least one batch')
    if num_iters < 1:
        raise ValueError(f'num_iters must be >= 1, got {num_iters}')
    model.eval()
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device('cpu')
    dtype = resolve_amp_dtype(device, amp)
    for b in batches:
        n = len(b['inputs']) if isinstance(b['inputs'], (list, tuple)) \
            else b['inputs'].shape[0]
        if n != 1:
            raise ValueError(f'the FPS protocol uses batch size 1, got a '
                             f'batch of {n}')

    can_pin = pin_support and hasattr(model, 'set_support')
    prepared = []
    with torch.no_grad():
        first = batches[0]['data_samples'][0]
        if can_pin:
            sup = first.support_imgs
            if sup.is_floating_point():
                raise ValueError('pin_support needs the raw uint8 support '
                                 'images: pass batches straight from the '
                                 'dataloader')
            labels = first.get('support_labels', None)
            model.set_support(sup.to(device), first.support_masks.to(device),
                              None if labels is None else labels.to(device))
        for b in batches:
            prepared.append(model.data_preprocessor(b, False))

    def run(data):
        ctx = torch.autocast(device.type, dtype=dtype) if dtype is not None \
            else contextlib.nullcontext()
        with torch.no_grad(), ctx:
            model(data['inputs'], data['data_samples'], mode='predict')

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    total = num_warmup + num_iters
    try:
        for i in range(num_warmup):
            run(prepared[i % len(prepared)])
        sync()
        elapsed = 0.0
        for i in range(num_warmup, total):
            data = prepared[i % len(prepared)]
            sync()
            t0 = time.perf_counter()
            run(data)
            sync()
            elapsed += time.perf_counter() - t0
    finally:
        if can_pin and hasattr(model, 'clear_support'):
            model.clear_support()
    ms = 1000.0 * elapsed / num_iters
    return dict(
        fps=1000.0 / ms if ms > 0 else float('inf'),
        ms_per_query=ms,
        num_iters=num_iters,
        num_warmup=num_warmup,
        batch_size=1,
        device=device_description(device),
        device_type=device.type,
        dtype=str(dtype).replace('torch.', '') if dtype else 'float32',
        threads=torch.get_num_threads(),
        support_excluded=bool(can_pin),
        torch=torch.__version__)

