"""FSSD-12 (TGRNet) -> GFDS layout (product Steel).

FSSD-12 keeps each class in ``<class>/Images/<class>_<n>.jpg`` with masks
``<class>/GT/<class>_<n>.png`` whose defects are 255 (the TGRNet loader sets
every other value to background). GFDS uses Steel_Am, Steel_Ld and Steel_Sc
as the categories Am, Ld, Sc of the product Steel::

    python tools/dataset_converters/fssd12.py /data/FSSD-12 --out data/gfds

writes ``data/gfds/Steel/images/Am/Steel_Am_1.jpg`` and
``.../ground_truth/Am/Steel_Am_1.png``.
"""

import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from gfds_convert_common import (
    Writer,
    base_parser,
    check_products,  # noqa
    list_images,
    print_summary,
    read_gray,
)

FOLDER = 'Steel'
CLASSES = {'Steel_Am': 'Am', 'Steel_Ld': 'Ld', 'Steel_Sc': 'Sc'}


def convert(
    src: str, out: str, classes=None, link: bool = False, overwrite: bool = False
) -> dict:
    """Convert FSSD-12 classes; returns ``'<folder>/<category>' -> n``."""
    w = Writer(out, link, overwrite)
    for cls, cat in (classes or CLASSES).items():
        img_dir = osp.join(src, cls, 'Images')
        gt_dir = osp.join(src, cls, 'GT')
        if not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'{img_dir} not found: is {src} the unpacked FSSD-12 root?'
            )
        gts = {osp.splitext(f)[0]: f for f in list_images(gt_dir)}
        for f in list_images(img_dir):
            stem = osp.splitext(f)[0]
            if stem not in gts:
                raise FileNotFoundError(
                    f'{osp.join(img_dir, f)} has no mask in {gt_dir}'
                )
            fg = read_gray(osp.join(gt_dir, gts[stem])) == 255
            w.pair(osp.join(img_dir, f), fg, FOLDER, cat, stem)
    return w.summary()


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    summary = convert(args.src, args.out, link=args.link, overwrite=args.overwrite)
    print_summary(summary, lambda: check_products(args.out, ['Steel']))
    return summary


if __name__ == '__main__':
    main()
