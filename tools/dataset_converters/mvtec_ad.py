"""MVTec AD -> GFDS layout (products Tile and Grid).

MVTec AD keeps defect images in ``<object>/test/<defect>/000.png`` and their
masks in ``<object>/ground_truth/<defect>/000_mask.png``. GFDS uses the
defect images of ``tile`` and ``grid`` with the MVTec defect names as
categories::

    python tools/dataset_converters/mvtec_ad.py /data/mvtec_anomaly_detection \
        --out data/gfds

writes ``data/gfds/tile/images/crack/000.png`` and
``data/gfds/tile/ground_truth/crack/000.png`` (``_mask`` dropped, 0/255).
Note: MVTec's tile/crack has 17 images where Table 1 counts 11; the check
at the end says so.
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

# MVTec object -> (GFDS folder, GFDS product key)
OBJECTS = {'tile': ('tile', 'Tile'), 'grid': ('grid', 'Grid')}


def convert(
    src: str,
    out: str,
    objects=('tile', 'grid'),
    with_good: bool = False,
    link: bool = False,
    overwrite: bool = False,
) -> dict:
    """Convert MVTec AD objects; returns ``'<folder>/<category>' -> n``."""
    w = Writer(out, link, overwrite)
    for obj in objects:
        folder = OBJECTS.get(obj, (obj, obj))[0]
        test_dir = osp.join(src, obj, 'test')
        if not osp.isdir(test_dir):
            raise FileNotFoundError(
                f'{test_dir} not found: is {src} the unpacked MVTec AD root?'
            )
        for cat in sorted(os.listdir(test_dir)):
            cdir = osp.join(test_dir, cat)
            if not osp.isdir(cdir):
                continue
            if cat == 'good':
                if with_good:
                    for f in list_images(cdir):
                        w.image(osp.join(cdir, f), folder, 'good')
                continue
            gdir = osp.join(src, obj, 'ground_truth', cat)
            for f in list_images(cdir):
                stem = osp.splitext(f)[0]
                mpath = osp.join(gdir, f'{stem}_mask.png')
                if not osp.isfile(mpath):
                    raise FileNotFoundError(f'{osp.join(cdir, f)} has no mask {mpath}')
                w.pair(osp.join(cdir, f), read_gray(mpath) > 0, folder, cat, stem)
    return w.summary()


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        '--objects',
        nargs='+',
        default=['tile', 'grid'],
        help='MVTec objects to convert',
    )
    parser.add_argument(
        '--with-good',
        action='store_true',
        help='also copy test/good as defect-free images',
    )
    args = parser.parse_args(argv)
    summary = convert(
        args.src, args.out, args.objects, args.with_good, args.link, args.overwrite
    )
    keys = [OBJECTS[o][1] for o in args.objects if o in OBJECTS]
    print_summary(summary, lambda: check_products(args.out, keys))
    return summary


if __name__ == '__main__':
    main()
