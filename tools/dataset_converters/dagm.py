"""DAGM 2007 + the GFDS fine labels -> GFDS layout (product DAGM).

DAGM 2007 ships ``Class<k>/{Train,Test}/<NNNN>.PNG`` with coarse elliptic
labels in ``Label/<NNNN>_label.PNG``. The GFDS authors re-annotated the
defects of the Test split (``DAGM_finelabel.zip`` in the GFDS repository:
``DAGM_finelabel/Class<k>/ground_truth/bad/<NNNN>.PNG``; 71, 84, 84, 68, 80,
67 and 4 x 150 images, Table 1). This converter pairs every fine label with
its DAGM image::

    python tools/dataset_converters/dagm.py /data/DAGM2007 \
        --fine-labels GFDS/DAGM_finelabel.zip --out data/gfds

and writes the official layout ``data/gfds/Class1/images/bad/0002.PNG`` +
``data/gfds/Class1/ground_truth/bad/0002.png`` (single-channel 0/255: some
fine labels are RGBA; foreground = grayscale > 30 as the official loader).
``--split auto`` (default) picks, per class, the DAGM split whose defect
list (``Label/*_label.PNG``) covers the fine labels, since Train and Test
reuse the same file names.
"""

import os
import os.path as osp
import re
import sys
import tempfile
import zipfile

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from gfds_convert_common import (
    Writer,
    base_parser,
    check_products,  # noqa
    list_images,
    print_summary,
    read_gray,
)

FINE_THRESHOLD = 30  # the official loader's mask > 30


def _class_dir(src: str, k: int) -> str:
    """``Class<k>`` folder holding Train/Test (some archives nest it)."""
    for cand in (osp.join(src, f'Class{k}'), osp.join(src, f'Class{k}', f'Class{k}')):
        if osp.isdir(osp.join(cand, 'Test')) or osp.isdir(osp.join(cand, 'Train')):
            return cand
    raise FileNotFoundError(f'Class{k}/Test not found under {src}')


def _fine_root(fine: str, tmp: str) -> str:
    """Folder holding ``Class<k>/ground_truth/bad`` (a zip is extracted)."""
    if zipfile.is_zipfile(fine):
        with zipfile.ZipFile(fine) as z:
            z.extractall(tmp)
        fine = tmp
    for root, dirs, _ in os.walk(fine):
        if any(
            re.fullmatch(r'Class\d+', d)
            and osp.isdir(osp.join(root, d, 'ground_truth'))
            for d in dirs
        ):
            return root
    raise FileNotFoundError(f'no Class<k>/ground_truth in {fine}')


def _defect_stems(split_dir: str) -> set:
    label_dir = osp.join(split_dir, 'Label')
    return {
        osp.splitext(f)[0][: -len('_label')]
        for f in list_images(label_dir)
        if osp.splitext(f)[0].endswith('_label')
    }


def convert(
    src: str,
    fine_labels: str,
    out: str,
    split: str = 'auto',
    classes=range(1, 11),
    link: bool = False,
    overwrite: bool = False,
) -> dict:
    """Convert DAGM; returns ``'<folder>/<category>' -> n`` and
    ``'Class<k>/split'`` (the split used)."""
    w = Writer(out, link, overwrite)
    used = {}
    with tempfile.TemporaryDirectory() as tmp:
        fine_root = _fine_root(fine_labels, tmp)
        for k in classes:
            gdir = osp.join(fine_root, f'Class{k}', 'ground_truth', 'bad')
            fines = {osp.splitext(f)[0]: f for f in list_images(gdir)}
            if not fines:
                raise FileNotFoundError(f'no fine labels in {gdir}')
            cdir = _class_dir(src, k)
            if split == 'auto':
                scores = {}
                for s in ('Test', 'Train'):
                    if osp.isdir(osp.join(cdir, s)):
                        scores[s] = len(set(fines) & _defect_stems(osp.join(cdir, s)))
                chosen = max(scores, key=lambda s: (scores[s], s == 'Test'))
            else:
                chosen = split
            used[f'Class{k}/split'] = chosen
            sdir = osp.join(cdir, chosen)
            images = {osp.splitext(f)[0]: f for f in list_images(sdir)}
            for stem in sorted(fines):
                if stem not in images:
                    raise FileNotFoundError(
                        f'fine label Class{k}/{fines[stem]} has no image '
                        f'{stem}.PNG in {sdir}'
                    )
                fg = read_gray(osp.join(gdir, fines[stem])) > FINE_THRESHOLD
                w.pair(osp.join(sdir, images[stem]), fg, f'Class{k}', 'bad', stem)
    summary = w.summary()
    summary.update(used)
    return summary


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        '--fine-labels',
        required=True,
        help='DAGM_finelabel.zip (or its unpacked folder) from the GFDS repository',
    )
    parser.add_argument('--split', default='auto', choices=['auto', 'Test', 'Train'])
    args = parser.parse_args(argv)
    summary = convert(
        args.src,
        args.fine_labels,
        args.out,
        args.split,
        link=args.link,
        overwrite=args.overwrite,
    )
    for k, v in summary.items():
        if not isinstance(v, int):
            print(f'  {k}: {v}')
    print_summary(
        {k: v for k, v in summary.items() if isinstance(v, int)},
        lambda: check_products(args.out, ['DAGM']),
    )
    return summary


if __name__ == '__main__':
    main()
