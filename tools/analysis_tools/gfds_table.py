r"""Merge results of several methods into the GFDS Table-4 layout.

Each ``--method NAME PATH [PATH ...]`` is one table row; its paths are
``tools/test.py --out`` folders (``gfds_report.json`` / ``metrics.json``)
or files, merged product-wise (the first holding a product wins) — e.g. the
two cross-domain folds, or an in-domain run plus the cross-domain Kol/DAGM
results as Table 4 does — and an optional ``benchmark_fps.py`` JSON for the
FPS column::

    python tools/analysis_tools/gfds_table.py \
        --method FM-s work_dirs/fms_fold0 work_dirs/fms_fold1 fms_fps.json \
        --method 'SSP*' work_dirs/ssp_in-domain work_dirs/ssp_fold0 \
        --paper FM-s SAM2-s\(1024\) --out-dir work_dirs/table4

Rows of trained (meta-learning) methods, Sec. 6.1.1: a cross-domain row
from the two fold runs (each fold's model tested on its own test fold;
checked), and a ``*`` row from the in-domain run, completed with the
cross-domain Kol and DAGM cells as Table 4 does::

    python tools/analysis_tools/gfds_table.py \
        --cross-domain PFENet work_dirs/pfenet_fold0/test work_dirs/pfenet_fold1/test \
        --in-domain 'PFENet*' work_dirs/pfenet_in-domain/test \
            work_dirs/pfenet_fold0/test work_dirs/pfenet_fold1/test \
        --paper PFENet 'PFENet*'

Products a config declares rather than the package (the development-only
``real_defects``) get their names and column order with ``--config``::

    python tools/analysis_tools/gfds_table.py \
        --config configs/quickstart/fm_filterbank_no-train_real-defects-all-1shot.py \
        --method 'matcher + FilterBank' work_dirs/real_defects

writes ``table4.md``, ``table4.csv``, ``miou_vs_fps.png`` (average mIoU
against FPS, log-scaled) and ``per_category.png`` (IoU per category and
method) to ``--out-dir``, and prints the Markdown table.
"""

import argparse
import csv
import math
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from fdseg.benchmarks import declare_from_configs  # noqa: E402
from fdseg.evaluation.gfds_report import (  # noqa: E402
    table_columns,
    to_csv_rows,
    to_markdown,
)
from fdseg.evaluation.gfds_table4 import (  # noqa: E402
    cross_domain_row,
    in_domain_row,
    load_result,
    merge_rows,
    paper_rows,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--method',
        nargs='+',
        action='append',
        default=[],
        metavar=('NAME', 'PATH'),
        help='a row: its name, then result folders/files (merged) and '
        'optionally an FPS JSON; repeat for more rows',
    )
    parser.add_argument(
        '--cross-domain',
        nargs='+',
        action='append',
        default=[],
        metavar=('NAME', 'PATH'),
        help="a cross-domain row: its name, the fold-0 run's test output, "
        "the fold-1 run's, optionally an FPS JSON",
    )
    parser.add_argument(
        '--in-domain',
        nargs='+',
        action='append',
        default=[],
        metavar=('NAME', 'PATH'),
        help="an in-domain (*) row: its name, the in-domain run's test "
        'output, then the cross-domain fold outputs whose Kol and DAGM cells '
        'complete it, optionally an FPS JSON',
    )
    parser.add_argument(
        '--paper',
        nargs='*',
        default=None,
        help="add rows of the paper's Table 4 (names, or none for all)",
    )
    parser.add_argument(
        '--products',
        nargs='+',
        default=None,
        help='columns (default: the products of the rows)',
    )
    parser.add_argument(
        '--fps',
        nargs=2,
        action='append',
        default=[],
        metavar=('NAME', 'FPS'),
        help='set the FPS of a row by hand',
    )
    parser.add_argument(
        '--out-dir', default=None, help='write table4.md/.csv and the plots here'
    )
    parser.add_argument(
        '--config',
        nargs='+',
        default=[],
        help='configs whose test dataset declares products (declare=...): '
        'registered first, for their display names and column order',
    )
    parser.add_argument('--title', default='GFDS benchmark (1-way 1-shot)')
    return parser.parse_args(argv)


def _load_parts(option, spec):
    """Rows and FPS of ``spec`` = ``[NAME, PATH, ...]``."""
    if len(spec) < 2:
        raise SystemExit(f'{option} {spec[0]}: give at least one path')
    parts, fps = [], None
    for p in spec[1:]:
        res = load_result(p)
        if res['kind'] == 'fps':
            fps = res['fps']
        else:
            parts.append(res['row'])
    return parts, fps


def build_setting_rows(cross=(), in_domain=()) -> dict:
    """``{name: row}`` from ``--cross-domain`` and ``--in-domain`` lists."""
    rows = {}
    for spec in cross:
        parts, fps = _load_parts('--cross-domain', spec)
        if len(parts) != 2:
            raise SystemExit(
                f'--cross-domain {spec[0]}: give the fold-0 and the fold-1 '
                f'test outputs (got {len(parts)} results)'
            )
        try:
            rows[spec[0]] = cross_domain_row(*parts)
        except ValueError as e:
            raise SystemExit(f'--cross-domain {spec[0]}: {e}') from None
        rows[spec[0]]['fps'] = fps or rows[spec[0]]['fps']
    for spec in in_domain:
        parts, fps = _load_parts('--in-domain', spec)
        if not parts:
            raise SystemExit(f'--in-domain {spec[0]}: no metrics among {spec[1:]}')
        cross_rows = parts[1:]
        try:
            rows[spec[0]] = in_domain_row(
                parts[0], merge_rows(cross_rows) if cross_rows else None
            )
        except ValueError as e:
            raise SystemExit(f'--in-domain {spec[0]}: {e}') from None
        rows[spec[0]]['fps'] = fps or rows[spec[0]]['fps']
    return rows


def build_rows(methods, paper=None, fps_overrides=(), settings=None) -> dict:
    """``{name: row}`` from ``--method`` lists (and paper rows)."""
    rows = dict(settings or {})
    for spec in methods:
        if len(spec) < 2:
            raise SystemExit(f'--method {spec[0]}: give at least one path')
        name, paths = spec[0], spec[1:]
        parts, fps = [], None
        for p in paths:
            res = load_result(p)
            if res['kind'] == 'fps':
                fps = res['fps']
            else:
                parts.append(res['row'])
        if not parts:
            raise SystemExit(f'--method {name}: no metrics among {paths}')
        row = merge_rows(parts)
        if fps is not None:
            row['fps'] = fps
        rows[name] = row
    if paper is not None:
        table = paper_rows()
        names = paper or list(table)
        for n in names:
            if n not in table:
                raise SystemExit(f'--paper {n}: not a Table-4 row ({", ".join(table)})')
            rows[f'{n} (paper)'] = table[n]
    for name, value in fps_overrides:
        if name not in rows:
            raise SystemExit(f'--fps {name}: no such row')
        rows[name]['fps'] = dict(fps=float(value), device='given', dtype='')
    return rows


def plot_miou_fps(rows: dict, path: str, title: str) -> None:
    """Average mIoU against FPS (log x), one labelled point per row."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, row in rows.items():
        fps = (row.get('fps') or {}).get('fps')
        miou = row['average']['mIoU']
        if fps is None or fps <= 0 or miou is None or math.isnan(miou):
            continue
        paper = name.endswith('(paper)')
        ax.scatter(
            fps,
            miou,
            marker='s' if paper else 'o',
            c='tab:gray' if paper else 'tab:red',
            zorder=3,
        )
        ax.annotate(
            name, (fps, miou), textcoords='offset points', xytext=(4, 4), fontsize=8
        )
    ax.set_xscale('log')
    ax.set_xlabel('FPS (batch 1, support excluded; log scale)')
    ax.set_ylabel('average mIoU (%)')
    ax.set_title(title)
    ax.grid(True, which='both', alpha=0.3)
    devices = sorted(
        {(r.get('fps') or {}).get('device', '') for r in rows.values() if r.get('fps')}
        - {''}
    )
    if devices:
        fig.text(0.01, 0.01, 'devices: ' + '; '.join(devices), fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def plot_per_category(rows: dict, path: str, title: str) -> bool:
    """Grouped bars: IoU of every category, one bar per method."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    named = {
        n: r
        for n, r in rows.items()
        if any(p['categories'] for p in r['products'].values())
    }
    if not named:
        return False
    cols = table_columns(named)
    labels = []
    for p in cols:
        cats = []
        for r in named.values():
            cats += [
                c
                for c in r['products'].get(p, {}).get('categories', {})
                if c not in cats
            ]
        labels += [(p, c) for c in cats]
    x = np.arange(len(labels))
    width = 0.8 / len(named)
    fig, ax = plt.subplots(
        figsize=(max(8, 0.35 * len(labels) * max(1, len(named) / 2)), 4.5)
    )
    for i, (name, row) in enumerate(named.items()):
        vals = [
            row['products'].get(p, {}).get('categories', {}).get(c, float('nan'))
            for p, c in labels
        ]
        vals = [0.0 if v is None else v for v in vals]
        ax.bar(x + (i - (len(named) - 1) / 2) * width, vals, width, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels([f'{p}/{c}' for p, c in labels], rotation=90, fontsize=7)
    ax.set_ylabel('IoU (%)')
    ax.set_title(title + ': per-category IoU')
    ax.legend(fontsize=7)
    ax.grid(True, axis='y', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return True


def main(argv=None):
    args = parse_args(argv)
    if not (args.method or args.cross_domain or args.in_domain) and args.paper is None:
        raise SystemExit(
            'nothing to tabulate: give --method, --cross-domain, --in-domain '
            'and/or --paper'
        )
    declare_from_configs(args.config)
    settings = build_setting_rows(args.cross_domain, args.in_domain)
    rows = build_rows(args.method, args.paper, args.fps, settings)
    md = to_markdown(rows, args.products)
    print(md)
    outputs = {}
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        outputs['markdown'] = osp.join(args.out_dir, 'table4.md')
        with open(outputs['markdown'], 'w') as f:
            f.write(
                f'# {args.title}\n\n'
                "Cells: 'mIoU, FB-IoU' (%). Average: mIoU over the "
                'categories (official weighting), FB-IoU over the '
                'products.\n\n' + md
            )
        outputs['csv'] = osp.join(args.out_dir, 'table4.csv')
        with open(outputs['csv'], 'w', newline='') as f:
            csv.writer(f).writerows(to_csv_rows(rows, args.products))
        outputs['miou_vs_fps'] = osp.join(args.out_dir, 'miou_vs_fps.png')
        plot_miou_fps(rows, outputs['miou_vs_fps'], args.title)
        bars = osp.join(args.out_dir, 'per_category.png')
        if plot_per_category(rows, bars, args.title):
            outputs['per_category'] = bars
        for k, v in outputs.items():
            print(f'{k}: {v}')
    return rows, outputs


if __name__ == '__main__':
    main()
