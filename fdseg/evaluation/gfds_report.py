"""The Table-4 report of the GFDS benchmark: formatting and its JSON file.

* :func:`format_header` / :func:`format_row`: the printed Table-4 line;
  :func:`to_markdown` / :func:`to_csv_rows`: tables of several rows.
* :func:`write_report` / :func:`read_row`: ``gfds_report.json``.

The rows themselves are computed in :mod:`.gfds_table4`, FPS in
:mod:`.fps`; their names are re-exported here for code that imported them
from this module.
"""

import json
import math
import os
import os.path as osp
from collections.abc import Mapping
from typing import List, Optional, Sequence

from fdseg.benchmarks.table import PRODUCTS

from .fps import device_description, measure_fps, resolve_amp_dtype
from .gfds_table4 import (
    REPORT_VERSION,
    _isnan,
    _product_key,
    _round,
    bench_metrics,
    load_result,
    merge_rows,
    paper_rows,
    table4_row,
)

#: File name of the report in a ``tools/test.py --out`` folder.
REPORT_NAME = 'gfds_report.json'

__all__ = [
    'REPORT_NAME',
    'REPORT_VERSION',
    'format_header',
    'format_row',
    'to_markdown',
    'to_csv_rows',
    'table_columns',
    'write_report',
    'read_row',
    'table4_row',
    'merge_rows',
    'bench_metrics',
    'paper_rows',
    'load_result',
    'measure_fps',
    'device_description',
    'resolve_amp_dtype',
]


# ----------------------------------------------------------------------
# Formatting
# ----------------------------------------------------------------------
def _cell(m, f) -> str:
    def fmt(v):
        return '-' if _isnan(v) else f'{v:.1f}'

    return f'{fmt(m)}, {fmt(f)}'


def _display(p: str) -> str:
    return PRODUCTS[p].display if p in PRODUCTS else p


def table_columns(
    rows: Mapping[str, dict], products: Optional[Sequence[str]] = None
) -> List[str]:
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
    return '-' if not fps else f'{fps["fps"]:.1f}'


def format_header(row: dict, products: Optional[Sequence[str]] = None) -> str:
    """Header of :func:`format_row` (display names, Table-4 order)."""
    return ' | '.join(_head(table_columns({'': row}, products)))


def _head(cols: Sequence[str]) -> List[str]:
    return ['Method', *[_display(p) for p in cols], 'Average', 'FPS']


def _row_cells(name: str, row: dict, cols: Sequence[str]) -> List[str]:
    """``name``, the product cells of ``cols``, the average and the FPS."""
    cells = [
        _cell(row['products'][p]['mIoU'], row['products'][p]['FB_IoU'])
        if p in row['products']
        else '-'
        for p in cols
    ]
    avg = _cell(row['average']['mIoU'], row['average']['FB_IoU'])
    return [name, *cells, avg, _fps_text(row)]


def format_row(name: str, row: dict, products: Optional[Sequence[str]] = None) -> str:
    """One Table-4 line: ``name | Tile mIoU, FB-IoU | ... | Average | FPS``."""
    return ' | '.join(_row_cells(name, row, table_columns({name: row}, products)))


def to_markdown(
    rows: Mapping[str, dict], products: Optional[Sequence[str]] = None
) -> str:
    """Rows as a Markdown table in the Table-4 layout.

    Written by hand rather than with prettytable's ``MARKDOWN`` style: that
    pads every column to its widest cell, and the compact form
    (``| Method | Tile | ... |``) is what readers and tests grep for.
    """
    cols = table_columns(rows, products)
    head = _head(cols)
    body = [_row_cells(name, row, cols) for name, row in rows.items()]
    lines = [
        '| ' + ' | '.join(head) + ' |',
        '|' + '|'.join(['---'] + [':-:'] * (len(head) - 1)) + '|',
        *('| ' + ' | '.join(cells) + ' |' for cells in body),
    ]
    return '\n'.join(lines) + '\n'


def to_csv_rows(
    rows: Mapping[str, dict], products: Optional[Sequence[str]] = None
) -> List[List]:
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
            rec += [_round(info['mIoU']), _round(info['FB_IoU'])] if info else ['', '']
        rec += [_round(row['average']['mIoU']), _round(row['average']['FB_IoU'])]
        fps = row.get('fps') or {}
        rec += [
            _round(fps['fps']) if fps else '',
            fps.get('device', ''),
            fps.get('dtype', ''),
        ]
        out.append(['' if isinstance(v, float) and math.isnan(v) else v for v in rec])
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
    """Write ``{'table4': row, ...}`` as strict JSON (NaN -> null), atomically."""
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
            return {
                k: (float('nan') if v is None and k in ('mIoU', 'FB_IoU') else fix(v))
                for k, v in obj.items()
            }
        return obj

    return fix(row)
