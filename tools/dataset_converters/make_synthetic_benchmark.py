"""Generate the procedural synthetic defect benchmark (GFDS folder layout).

Offline and deterministic: the same seed gives byte-identical files. See
:mod:`fdseg.datasets.utils.synthetic` for the products and defect categories.

Examples::

    python tools/dataset_converters/make_synthetic_benchmark.py data/synthetic
    python tools/dataset_converters/make_synthetic_benchmark.py \\
        data/synthetic_s1 --seed 1 --num-images 20 --products metal washer
"""

import argparse
import os.path as osp
import sys

# Work from a clean checkout, without `pip install -e .`.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from fdseg.datasets.utils.synthetic import (  # noqa: E402
    SYNTHETIC_PRODUCTS,
    generate_synthetic_benchmark,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the synthetic few-shot defect benchmark'
    )
    parser.add_argument('out_dir', help='benchmark root to create')
    parser.add_argument('--seed', type=int, default=0, help='generator seed')
    parser.add_argument(
        '--num-images', type=int, default=12, help='images per category'
    )
    parser.add_argument(
        '--image-size', type=int, default=256, help='image side in pixels'
    )
    parser.add_argument(
        '--products',
        nargs='+',
        default=None,
        help='products to generate (space- or comma-separated; default: '
        f'all of {", ".join(SYNTHETIC_PRODUCTS)})',
    )
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace out_dir if it exists and is not empty',
    )
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    products = None
    if args.products:
        products = [p for a in args.products for p in a.split(',') if p]
    try:
        summary = generate_synthetic_benchmark(
            args.out_dir,
            seed=args.seed,
            num_images=args.num_images,
            image_size=args.image_size,
            products=products,
            overwrite=args.overwrite,
            progress=not args.quiet,
        )
    except (FileExistsError, ValueError) as e:
        sys.exit(f'error: {e}')
    total = 0
    print(
        f'Synthetic benchmark in {osp.abspath(args.out_dir)} '
        f'(seed={args.seed}, {args.image_size}x{args.image_size}):'
    )
    for product, cats in summary.items():
        for category, n in cats.items():
            print(f'  {product:<8} {category:<8} {n:>4} images')
            total += n
    print(f'  total: {total} images')
    return summary


if __name__ == '__main__':
    main()
