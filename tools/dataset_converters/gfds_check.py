"""Check a prepared GFDS data root against Table 1.

::

    python tools/dataset_converters/gfds_check.py data/gfds
    python tools/dataset_converters/gfds_check.py data/gfds \
        --products Tile DAGM
    python tools/dataset_converters/gfds_check.py ../shared/data \
        --config configs/quickstart/fm_filterbank_no-train_real-defects-all-1shot.py \
        --benchmark real_defects

A benchmark declared in a config (``test_dataloader.dataset.declare``, such
as ``real_defects``) is registered with ``--config`` first.

Prints per product and category the images found and the Table-1 count and
lists every difference (naming product and category); ``--strict`` exits
with status 1 if there is one.
"""

import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from fdseg.benchmarks import (  # noqa: E402
    BENCHMARKS,
    PRODUCTS,
    benchmark_categories,
    declare_from_configs,
    resolve_product,
)
from fdseg.datasets.gfds_counts import check_counts  # noqa: E402


def _found(root, key, unit):
    from fdseg.datasets.gfds_counts import count_images

    e = PRODUCTS[key]
    if e.parts:
        return count_images(osp.join(root, unit, 'images', e.categories[0]))
    return count_images(osp.join(root, e.folder, 'images', unit))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data_root')
    parser.add_argument('--products', nargs='+', default=None)
    parser.add_argument(
        '--config',
        nargs='+',
        default=[],
        help='configs whose test dataset declares products (declare=...)',
    )
    parser.add_argument('--benchmark', default='gfds')
    parser.add_argument('--strict', action='store_true')
    args = parser.parse_args(argv)
    declare_from_configs(args.config)
    if args.benchmark not in BENCHMARKS:
        parser.error(
            f'--benchmark {args.benchmark!r}: choose from {sorted(BENCHMARKS)} '
            '(a benchmark declared in a config needs --config CONFIG)'
        )
    keys = (
        [resolve_product(p) for p in args.products]
        if args.products
        else list(BENCHMARKS[args.benchmark])
    )
    print(f'{"product":<14} {"category":<22} {"found":>6} {"expected":>9}')
    for key in keys:
        e = PRODUCTS[key]
        total = 0
        for unit in benchmark_categories(key):
            n = _found(args.data_root, key, unit)
            total += n
            exp = e.counts.get(unit)
            print(f'{key:<14} {unit:<22} {n:>6} {"-" if exp is None else exp:>9}')
        print(
            f'{key:<14} {"(total)":<22} {total:>6} '
            f'{"-" if e.total is None else e.total:>9}'
        )
    issues = check_counts(args.data_root, keys, warn=False)
    for i in issues:
        print('DIFFERENCE:', i['message'])
    if not issues:
        print('all counts match Table 1')
    if args.strict and issues:
        sys.exit(1)
    return issues


if __name__ == '__main__':
    main()
