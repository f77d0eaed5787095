"""VisA -> GFDS layout (products Capsules and Macaroni2).

VisA masks are value-indexed: a pixel holds the defect type id of
``id2class`` (capsules: 1 Bubble, 2 Discolor, 3 Scratch, 4 Leak, 5 Misshape;
macaroni2: 1 breakage, 2 similar colour spot, 3 different colour spot,
4 chip around edge, 5 cracks, 6 scratches, 7 other). The official GFDS
categories are folders ``0``, ``1``, ... which we read as value - 1
(``--value-offset``). Each anomalous image of the split CSV (``label ==
'anomaly'``) goes into the folder of every defect value it holds, with the
binary mask of that value::

    python tools/dataset_converters/visa.py /data/VisA --out data/gfds

reads ``/data/VisA/split_csv/1cls.csv`` (or scans
``<object>/Data/{Images,Masks}/Anomaly`` without it) and writes
``data/gfds/capsules/images/0/000.JPG`` +
``data/gfds/capsules/ground_truth/0/000.png``. Values whose folder the
benchmark does not use (macaroni2: 3) are skipped and reported; the value
histogram is printed so the mapping can be verified.
"""

import csv
import os.path as osp
import sys
from collections import Counter

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from gfds_convert_common import (
    Writer,
    base_parser,
    check_products,  # noqa
    list_images,
    print_summary,
    read_unchanged,
)

# VisA object -> (GFDS folder, product key, category folders used by GFDS)
OBJECTS = {
    'capsules': ('capsules', 'Capsules', ['0', '1', '2', '3', '4']),
    'macaroni2': ('macaroni2', 'Macaroni2', ['0', '1', '2', '4', '5', '6']),
}


def _anomalies(src, obj, split_csv):
    """(image path, mask path) of the anomalous images of ``obj``."""
    if split_csv and osp.isfile(split_csv):
        with open(split_csv, newline='') as f:
            for row in csv.DictReader(f):
                if row['object'] == obj and row['label'] == 'anomaly':
                    yield (osp.join(src, row['image']), osp.join(src, row['mask']))
        return
    img_dir = osp.join(src, obj, 'Data', 'Images', 'Anomaly')
    mask_dir = osp.join(src, obj, 'Data', 'Masks', 'Anomaly')
    if not osp.isdir(img_dir):
        raise FileNotFoundError(
            f'{img_dir} not found and no split CSV: is {src} the unpacked VisA root?'
        )
    masks = {osp.splitext(f)[0]: f for f in list_images(mask_dir)}
    for f in list_images(img_dir):
        stem = osp.splitext(f)[0]
        if stem not in masks:
            raise FileNotFoundError(f'{osp.join(img_dir, f)} has no mask in {mask_dir}')
        yield osp.join(img_dir, f), osp.join(mask_dir, masks[stem])


def convert(
    src: str,
    out: str,
    objects=('capsules', 'macaroni2'),
    split_csv: str = None,
    value_offset: int = 1,
    all_values: bool = False,
    link: bool = False,
    overwrite: bool = False,
) -> dict:
    """Convert VisA objects; returns ``'<folder>/<category>' -> n`` plus
    ``'<folder>/values'`` (a histogram of the defect values met) and
    ``'<folder>/skipped'`` (skipped value occurrences)."""
    if split_csv is None:
        split_csv = osp.join(src, 'split_csv', '1cls.csv')
    w = Writer(out, link, overwrite)
    extra = {}
    for obj in objects:
        folder, _, used = OBJECTS.get(obj, (obj, obj, None))
        hist, skipped = Counter(), Counter()
        for img_path, mask_path in _anomalies(src, obj, split_csv):
            mask = read_unchanged(mask_path)
            stem = osp.splitext(osp.basename(img_path))[0]
            for v in sorted(int(x) for x in np.unique(mask) if x != 0):
                hist[v] += 1
                cat = str(v - value_offset)
                if used is not None and cat not in used and not all_values:
                    skipped[v] += 1
                    continue
                w.pair(img_path, mask == v, folder, cat, stem)
        extra[f'{folder}/values'] = dict(sorted(hist.items()))
        extra[f'{folder}/skipped'] = dict(sorted(skipped.items()))
    out_summary = w.summary()
    out_summary.update(extra)
    return out_summary


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument('--objects', nargs='+', default=['capsules', 'macaroni2'])
    parser.add_argument(
        '--split-csv',
        default=None,
        help='VisA split CSV (default <src>/split_csv/'
        '1cls.csv; scanned folders if absent)',
    )
    parser.add_argument(
        '--value-offset',
        type=int,
        default=1,
        help='category folder = mask value - offset',
    )
    parser.add_argument(
        '--all-values',
        action='store_true',
        help='also write values the benchmark does not use',
    )
    args = parser.parse_args(argv)
    summary = convert(
        args.src,
        args.out,
        args.objects,
        args.split_csv,
        args.value_offset,
        args.all_values,
        args.link,
        args.overwrite,
    )
    counts = {k: v for k, v in summary.items() if isinstance(v, int)}
    for k, v in summary.items():
        if not isinstance(v, int):
            print(f'  {k}: {v}')
    keys = [OBJECTS[o][1] for o in args.objects if o in OBJECTS]
    print_summary(counts, lambda: check_products(args.out, keys))
    return summary


if __name__ == '__main__':
    main()
