"""The Table-1 count check of a prepared benchmark folder."""

import os
import os.path as osp
import warnings
from typing import List, Optional, Sequence

from fdseg.benchmarks.table import PRODUCTS, gfds_order, resolve_product

from .few_shot_defect import GOOD, IMG_EXTENSIONS


def count_images(folder: str) -> int:
    """Number of image files in ``folder`` (0 if it does not exist)."""
    if not osp.isdir(folder):
        return 0
    return sum(1 for f in os.listdir(folder) if f.lower().endswith(IMG_EXTENSIONS))


def check_counts(
    data_root: str, products: Optional[Sequence[str]] = None, warn: bool = True
) -> List[dict]:
    """Compare a prepared dataset with the Table-1 counts.

    Counts defect images per category folder (``good`` is not counted) and
    warns, naming the product and category, wherever the folder is missing,
    holds a different number of images than Table 1, or a category folder
    exists that the declaration does not know.

    Args:
        data_root (str): Folder holding the product folders.
        products (Sequence[str], optional): Product keys; all GFDS products
            if None.
        warn (bool): Emit a ``UserWarning`` per mismatch.

    Returns:
        list[dict]: One record per mismatch: ``product``, ``category``
        (None for a product total), ``expected``, ``found``, ``message``.
    """
    keys = [resolve_product(p) for p in (products or gfds_order())]
    issues = []

    def report(product, category, expected, found, msg):
        issues.append(
            dict(
                product=product,
                category=category,
                expected=expected,
                found=found,
                message=msg,
            )
        )
        if warn:
            warnings.warn(msg, stacklevel=3)

    for key in keys:
        entry = PRODUCTS[key]
        found_total = 0
        if entry.parts:
            units = [
                (p, osp.join(data_root, p, 'images', entry.categories[0]))
                for p in entry.parts
            ]
        else:
            units = [
                (c, osp.join(data_root, entry.folder, 'images', c))
                for c in entry.categories
            ]
            img_root = osp.join(data_root, entry.folder, 'images')
            if osp.isdir(img_root):
                extra = sorted(
                    d
                    for d in os.listdir(img_root)
                    if osp.isdir(osp.join(img_root, d))
                    and d != GOOD
                    and d not in entry.categories
                )
                for d in extra:
                    report(
                        key,
                        d,
                        None,
                        count_images(osp.join(img_root, d)),
                        f'{key}/{d}: category folder {img_root}/{d} is not '
                        f'a declared category of {key} '
                        f'({entry.categories}); it is not used',
                    )
        for unit, folder in units:
            name = entry.display_names.get(unit, unit)
            if not osp.isdir(folder):
                report(
                    key,
                    unit,
                    entry.counts.get(unit),
                    0,
                    f'{key}/{unit} ({name}): {folder} is missing',
                )
                continue
            n = count_images(folder)
            found_total += n
            expected = entry.counts.get(unit)
            if expected is not None and n != expected:
                report(
                    key,
                    unit,
                    expected,
                    n,
                    f'{key}/{unit} ({name}): {n} images, Table 1 says {expected}',
                )
        all_known = all(entry.counts.get(u) is not None for u, _ in units)
        if entry.total is not None and not all_known and found_total != entry.total:
            report(
                key,
                None,
                entry.total,
                found_total,
                f'{key}: {found_total} images in total, Table 1 says {entry.total}',
            )
    return issues
