"""KolektorSDD -> GFDS layout (product Kol).

KolektorSDD holds 50 folders ``kos01`` .. ``kos50`` of ``Part<k>.jpg``
images with ``Part<k>_label.bmp`` masks; 52 images have a defect. GFDS uses
those 52 as the single category ``bad``::

    python tools/dataset_converters/kolektorsdd.py /data/KolektorSDD \
        --out data/gfds

writes ``data/gfds/KolektorSDD/images/bad/kos01_Part5.jpg`` and
``.../ground_truth/bad/kos01_Part5.png``. Images with an empty label are
skipped (``--with-good`` copies them to ``images/good``).
"""

import os
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

FOLDER = 'KolektorSDD'


def convert(
    src: str,
    out: str,
    with_good: bool = False,
    link: bool = False,
    overwrite: bool = False,
) -> dict:
    """Convert KolektorSDD; returns ``'<folder>/<category>' -> n``."""
    w = Writer(out, link, overwrite)
    items = sorted(d for d in os.listdir(src) if osp.isdir(osp.join(src, d)))
    if not items:
        raise FileNotFoundError(f'no kosXX folders in {src}')
    for item in items:
        d = osp.join(src, item)
        for f in list_images(d):
            stem = osp.splitext(f)[0]
            if stem.endswith('_label'):
                continue
            labels = [
                x for x in list_images(d) if osp.splitext(x)[0] == f'{stem}_label'
            ]
            if not labels:
                raise FileNotFoundError(f'{osp.join(d, f)} has no {stem}_label.bmp')
            fg = read_gray(osp.join(d, labels[0])) > 0
            name = f'{item}_{stem}'
            if fg.any():
                w.pair(osp.join(d, f), fg, FOLDER, 'bad', name)
            elif with_good:
                w.image(osp.join(d, f), FOLDER, 'good', name)
    return w.summary()


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        '--with-good',
        action='store_true',
        help='copy defect-free images to images/good',
    )
    args = parser.parse_args(argv)
    summary = convert(args.src, args.out, args.with_good, args.link, args.overwrite)
    print_summary(summary, lambda: check_products(args.out, ['Kol']))
    return summary


if __name__ == '__main__':
    main()
