"""MSD (mobile phone screen defects) -> GFDS layout (product MSD / Phone).

Two published layouts are read:

* folders (the MSD release): ``oil/``, ``scratch/``, ``stain/`` images with
  masks in ``ground_truth_1/`` (scratch, stain) and ``ground_truth_2/``
  (oil), paired by file stem; foreground = mask > 0;
* PASCAL VOC: ``JPEGImages/*.jpg`` with value-indexed
  ``SegmentationClass/*.png`` (1 oil, 2 scratch, 3 stain); an image goes to
  the category of each value it holds, with that value's mask.

::

    python tools/dataset_converters/msd.py /data/MSD --out data/gfds

writes ``data/gfds/Phone/images/oil/<stem>.jpg`` and
``.../ground_truth/oil/<stem>.png``.
"""

import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from gfds_convert_common import (
    Writer,
    base_parser,
    check_products,  # noqa
    list_images,
    print_summary,
    read_gray,
    read_unchanged,
)

FOLDER = 'Phone'
CATEGORIES = ('oil', 'scratch', 'stain')
VOC_VALUES = {1: 'oil', 2: 'scratch', 3: 'stain'}


def _find_dir(src, name):
    for cand in (name, name.capitalize(), name.upper()):
        if osp.isdir(osp.join(src, cand)):
            return osp.join(src, cand)
    return None


def detect_layout(src: str) -> str:
    """``'folders'`` or ``'voc'``."""
    if osp.isdir(osp.join(src, 'SegmentationClass')):
        return 'voc'
    if all(_find_dir(src, c) for c in CATEGORIES):
        return 'folders'
    raise FileNotFoundError(
        f'{src}: neither oil/scratch/stain folders nor a VOC SegmentationClass folder'
    )


def convert(
    src: str,
    out: str,
    layout: str = 'auto',
    link: bool = False,
    overwrite: bool = False,
) -> dict:
    """Convert MSD; returns ``'<folder>/<category>' -> n``."""
    w = Writer(out, link, overwrite)
    layout = detect_layout(src) if layout == 'auto' else layout
    if layout == 'folders':
        masks = {}
        for gt in ('ground_truth_1', 'ground_truth_2', 'ground_truth'):
            d = osp.join(src, gt)
            for f in list_images(d):
                masks.setdefault(osp.splitext(f)[0], []).append(osp.join(d, f))
        for cat in CATEGORIES:
            d = _find_dir(src, cat)
            for f in list_images(d):
                stem = osp.splitext(f)[0]
                if stem not in masks:
                    raise FileNotFoundError(
                        f'{osp.join(d, f)} has no mask in ground_truth_1/2'
                    )
                if len(masks[stem]) > 1:
                    raise ValueError(f'{stem}: several masks {masks[stem]}')
                fg = read_gray(masks[stem][0]) > 0
                w.pair(osp.join(d, f), fg, FOLDER, cat, stem)
    elif layout == 'voc':
        img_dir = osp.join(src, 'JPEGImages')
        seg_dir = osp.join(src, 'SegmentationClass')
        images = {osp.splitext(f)[0]: f for f in list_images(img_dir)}
        for f in list_images(seg_dir):
            stem = osp.splitext(f)[0]
            if stem not in images:
                raise FileNotFoundError(
                    f'{osp.join(seg_dir, f)} has no image in {img_dir}'
                )
            mask = read_unchanged(osp.join(seg_dir, f))
            for v in sorted(int(x) for x in np.unique(mask)):
                if v in VOC_VALUES:
                    w.pair(
                        osp.join(img_dir, images[stem]),
                        mask == v,
                        FOLDER,
                        VOC_VALUES[v],
                        stem,
                    )
    else:
        raise ValueError(f"layout must be 'auto', 'folders' or 'voc', got {layout!r}")
    return w.summary()


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument('--layout', default='auto', choices=['auto', 'folders', 'voc'])
    args = parser.parse_args(argv)
    summary = convert(args.src, args.out, args.layout, args.link, args.overwrite)
    print_summary(summary, lambda: check_products(args.out, ['MSD']))
    return summary


if __name__ == '__main__':
    main()
