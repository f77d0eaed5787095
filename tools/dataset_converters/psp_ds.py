"""PSP-DS -> GFDS layout (product PSP).

PSP-DS (polycrystalline silicon panels) keeps each class in a folder
``class_<k>`` holding ``img_<id>.<ext>`` images and ``label_<id>.<ext>``
masks (foreground = label > 50, as the PSP-DS loader reads them)::

    python tools/dataset_converters/psp_ds.py /data/PSP-DS --out data/gfds

writes ``data/gfds/PSP/images/class_1/img_<id>.<ext>`` and
``.../ground_truth/class_1/img_<id>.png``. Class folders are searched
recursively (archives differ in nesting).
"""

import os
import os.path as osp
import re
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

FOLDER = 'PSP'
PSP_THRESHOLD = 50


def convert(src: str, out: str, link: bool = False, overwrite: bool = False) -> dict:
    """Convert PSP-DS; returns ``'<folder>/<category>' -> n``."""
    w = Writer(out, link, overwrite)
    class_dirs = {}
    for root, dirs, _ in os.walk(src):
        for d in dirs:
            if re.fullmatch(r'class_\d+', d):
                class_dirs.setdefault(d, osp.join(root, d))
    if not class_dirs:
        raise FileNotFoundError(f'no class_<k> folders under {src}')
    for cls, d in sorted(class_dirs.items(), key=lambda kv: int(kv[0].split('_')[1])):
        files = list_images(d)
        labels = {
            osp.splitext(f)[0].split('_', 1)[1]: f
            for f in files
            if f.startswith('label_')
        }
        for f in files:
            if not f.startswith('img_'):
                continue
            stem = osp.splitext(f)[0]
            ident = stem.split('_', 1)[1]
            if ident not in labels:
                raise FileNotFoundError(f'{osp.join(d, f)} has no label_{ident}.*')
            fg = read_gray(osp.join(d, labels[ident])) > PSP_THRESHOLD
            w.pair(osp.join(d, f), fg, FOLDER, cls, stem)
    return w.summary()


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    summary = convert(args.src, args.out, args.link, args.overwrite)
    print_summary(summary, lambda: check_products(args.out, ['PSP']))
    return summary


if __name__ == '__main__':
    main()
