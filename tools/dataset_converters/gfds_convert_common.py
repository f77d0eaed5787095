"""Shared helpers of the GFDS dataset converters.

Every converter writes the GFDS layout that ``FewShotDefectDataset`` and the
official GFDS loader read::

    <out>/<folder>/images/<category>/<stem>.<image ext>
    <out>/<folder>/ground_truth/<category>/<stem>.png     (0/255, 8-bit)

Images are copied byte for byte (or linked); masks are re-encoded as
single-channel 0/255 PNGs with the source dataset's own foreground rule.
"""

import argparse
import os
import os.path as osp
import shutil
from collections import Counter
from typing import Callable, Dict, Optional

import cv2
import numpy as np

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


def read_gray(path: str) -> np.ndarray:
    """Read an image as 8-bit grayscale ``[H, W]`` (RGBA/RGB converted)."""
    buf = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if buf.size else None
    if img is None:
        raise OSError(f'{path} cannot be read as an image')
    return img


def read_unchanged(path: str) -> np.ndarray:
    """Read an image keeping its values (value-indexed masks)."""
    buf = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise OSError(f'{path} cannot be read as an image')
    if img.ndim == 3:
        # Palette PNGs decode to BGR(A) in OpenCV; values are then in every
        # channel only for gray palettes, so fall back to PIL for indices.
        try:
            from PIL import Image

            with Image.open(path) as im:
                if im.mode == 'P':
                    return np.asarray(im)
        except ImportError:  # pragma: no cover
            pass
        img = (
            img[..., 0]
            if img.shape[2] < 3
            else cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
        )
    return img


def list_images(folder: str):
    """Sorted image file names in ``folder`` ([] if it does not exist)."""
    if not osp.isdir(folder):
        return []
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMG_EXTENSIONS))


class Writer:
    """Writes image/mask pairs into the GFDS layout and counts them.

    Args:
        out_root (str): Output root (``data/gfds``).
        link (bool): Symlink images instead of copying them.
        overwrite (bool): Replace existing files (else raise).
    """

    def __init__(self, out_root: str, link: bool = False, overwrite: bool = False):
        self.out_root = out_root
        self.link = link
        self.overwrite = overwrite
        self.counts: Counter = Counter()

    def _dst(self, folder, kind, category, name):
        d = osp.join(self.out_root, folder, kind, category)
        os.makedirs(d, exist_ok=True)
        path = osp.join(d, name)
        if osp.lexists(path):
            if not self.overwrite:
                raise FileExistsError(f'{path} exists; pass --overwrite')
            os.remove(path)
        return path

    def image(
        self, src: str, folder: str, category: str, stem: Optional[str] = None
    ) -> str:
        """Copy (or link) one image; returns its stem."""
        stem = stem or osp.splitext(osp.basename(src))[0]
        ext = osp.splitext(src)[1]
        dst = self._dst(folder, 'images', category, stem + ext)
        if self.link:
            os.symlink(osp.abspath(src), dst)
        else:
            shutil.copyfile(src, dst)
        self.counts[(folder, category)] += 1
        return stem

    def mask(self, fg: np.ndarray, folder: str, category: str, stem: str) -> None:
        """Write a boolean foreground as a 0/255 PNG."""
        dst = self._dst(folder, 'ground_truth', category, stem + '.png')
        if not cv2.imwrite(dst, np.where(fg, 255, 0).astype(np.uint8)):
            raise OSError(f'could not write {dst}')

    def pair(
        self,
        img_src: str,
        fg: np.ndarray,
        folder: str,
        category: str,
        stem: Optional[str] = None,
    ) -> str:
        """Write an image and its mask under the same stem."""
        stem = self.image(img_src, folder, category, stem)
        self.mask(fg, folder, category, stem)
        return stem

    def summary(self) -> Dict[str, int]:
        """``'<folder>/<category>' -> images written``."""
        return {f'{f}/{c}': n for (f, c), n in sorted(self.counts.items())}


def base_parser(description: str) -> argparse.ArgumentParser:
    """Arguments shared by every converter."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='the downloaded dataset (unpacked)')
    parser.add_argument(
        '--out', default='data/gfds', help='GFDS data root to write into'
    )
    parser.add_argument(
        '--link', action='store_true', help='symlink images instead of copying them'
    )
    parser.add_argument(
        '--overwrite', action='store_true', help='replace existing files'
    )
    return parser


def print_summary(summary: Dict[str, int], check: Optional[Callable] = None) -> None:
    """Print what was written (and the Table-1 check if given)."""
    for k, n in summary.items():
        print(f'  {k}: {n} images')
    print(f'  total: {sum(summary.values())} images')
    if check is not None:
        check()


def check_products(out_root: str, products) -> None:
    """Warn where the written data differ from Table 1."""
    import sys

    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    if repo not in sys.path:
        sys.path.insert(0, repo)
    try:
        from fdseg.datasets.gfds_counts import check_counts
    except ImportError as e:  # fdseg not importable: skip the check
        print(f'(Table-1 check skipped: {e})')
        return
    issues = check_counts(out_root, products, warn=False)
    for issue in issues:
        print(f'  Table 1 check: {issue["message"]}')
    if not issues:
        print('  Table 1 check: counts match')
