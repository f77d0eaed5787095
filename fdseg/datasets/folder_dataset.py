"""Few-shot episodes over a user's own folder of defect images and masks.

Layout (category sub-folders optional)::

    <data_root>/images/<stem>.<ext>             one defect class ('defect')
    <data_root>/masks/<stem><mask_suffix>.<ext>
  or
    <data_root>/images/<category>/<stem>.<ext>  one class per sub-folder
    <data_root>/masks/<category>/<stem><mask_suffix>.<ext>
  and optionally
    <data_root>/images/good/<stem>.<ext>        defect-free images (no masks)

The same folder is what ``fdseg predict --support`` reads, so the images
one benchmarks with ``tools/test.py`` are the ones deployed. Masks follow
:mod:`fdseg.datasets.transforms.conventions` (0/255, 0/1, palette,
alpha-only, 16-bit); ``mask_mode='index'`` reads value-indexed masks.
"""

import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from fdseg.registry import DATASETS

from .few_shot_defect import (
    GOOD,
    FewShotDefectDataset,
    ProductSpec,
    _by_stem,
    list_folder,
)
from .transforms.conventions import IMG_EXTENSIONS


@DATASETS.register_module()
class FolderFewShotDataset(FewShotDefectDataset):
    """N-way K-shot episodes over ``images/`` + ``masks/`` of one folder.

    The GFDS protocol of :class:`FewShotDefectDataset`: every defect image
    is the query once, its K supports are drawn (seeded) from the other
    images of its category; ``good`` images are defect-free queries (their
    mask is all background) when ``include_good``.

    Args:
        data_root (str): The folder holding ``images/`` and ``masks/``.
        name (str): Name of the data in reports (``<name>/<category>``).
        img_dir (str): Image folder under ``data_root``.
        mask_dir (str): Mask folder under ``data_root``.
        mask_suffix (str): The mask of ``<stem>.<ext>`` is
            ``<stem><mask_suffix>.<any image ext>`` (e.g. ``'_mask'``). With
            ``''`` both ``<stem>`` and ``<stem>_mask`` pair.
        mask_mode (str): ``'binary'`` (fg is ``mask > mask_threshold``
            after resizing) or ``'index'`` (value-indexed masks, see
            :class:`ProductSpec`).
        mask_threshold (int): Threshold on the resized 8-bit mask (30 as
            GFDS; 127 for anti-aliased masks).
        index_map (dict, optional): category -> mask value (``'index'``).
        categories (list[str], optional): Categories to use; all when None.
        exclude (list[str]): Categories to leave out.
        flat_category (str): Category name of images directly in
            ``images/`` (no sub-folder).
        image_bit_depth (int, optional): Bit depth of 16-bit images.
        include_good (bool): Use ``images/good`` as defect-free queries.
        **kwargs: :class:`FewShotDefectDataset` arguments (``shot``,
            ``way``, ``seed``, ``pipeline``, ...).
    """

    def __init__(
        self,
        data_root: str,
        name: str = 'custom',
        img_dir: str = 'images',
        mask_dir: str = 'masks',
        mask_suffix: str = '',
        mask_mode: str = 'binary',
        mask_threshold: int = 30,
        index_map: Optional[Dict[str, int]] = None,
        categories: Optional[Sequence[str]] = None,
        exclude: Sequence[str] = (),
        flat_category: str = 'defect',
        image_bit_depth: Optional[int] = None,
        include_good: bool = True,
        **kwargs,
    ):
        if 'products' in kwargs:
            raise TypeError(
                'FolderFewShotDataset reads one folder: set data_root (and '
                'name), not products'
            )
        self.img_dir = img_dir
        self.mask_dir = mask_dir
        self.mask_suffix = mask_suffix
        self.flat_category = flat_category
        product = dict(
            name=name,
            categories=categories,
            exclude=exclude,
            mask_mode=mask_mode,
            mask_threshold=mask_threshold,
            index_map=index_map,
            image_bit_depth=image_bit_depth,
        )
        super().__init__(
            data_root=data_root, products=[product], include_good=include_good, **kwargs
        )

    # ------------------------------------------------------------------
    def _roots(self) -> Tuple[str, str]:
        return (
            osp.join(self.data_root, self.img_dir),
            osp.join(self.data_root, self.mask_dir),
        )

    def _dirs(self, spec: ProductSpec, category: str) -> Tuple[str, str]:
        img_root, mask_root = self._roots()
        if category == self.flat_category and self._has_flat_images():
            return img_root, mask_root
        return osp.join(img_root, category), osp.join(mask_root, category)

    def _has_flat_images(self) -> bool:
        cache = self.__dict__.setdefault('_flat_cache', {})
        if 'flat' not in cache:
            img_root = self._roots()[0]
            cache['flat'] = bool(osp.isdir(img_root) and list_folder(img_root)[0])
        return cache['flat']

    def _category_dirs(self, spec: ProductSpec) -> List[str]:
        img_root = self._roots()[0]
        if not osp.isdir(img_root):
            raise FileNotFoundError(
                f'{img_root} does not exist: expected {self.data_root}/'
                f'{self.img_dir}/ (defect images, optionally in category '
                f'sub-folders) and {self.data_root}/{self.mask_dir}/ (their '
                'masks); see docs/own_data.md'
            )
        found, skipped = list_folder(img_root, dirs=True)
        # Files here are flat images (or junk, reported when listed as such).
        self._skip([p for p in skipped if not osp.isfile(p)])
        if self._has_flat_images():
            if self.flat_category in found:
                raise ValueError(
                    f'{img_root} has images directly inside and a sub-folder '
                    f'{self.flat_category!r}, which is also the category of '
                    'the images directly inside: move them into the '
                    'sub-folder or set flat_category'
                )
            found = sorted(found + [self.flat_category])
        if not [c for c in found if c != GOOD]:
            raise ValueError(
                f'{img_root} has no defect images (only {found or "nothing"}): '
                'put defect images in it (or in category sub-folders) and '
                f'their masks in {self._roots()[1]}'
            )
        return found

    def _pair_masks(self, gt_dir: str, names: List[str]) -> Dict[str, str]:
        if not self.mask_suffix:
            return super()._pair_masks(gt_dir, names)
        masks = {}
        n = len(self.mask_suffix)
        for stem, f in _by_stem(gt_dir, names).items():
            if stem.endswith(self.mask_suffix):
                masks[stem[:-n]] = osp.join(gt_dir, f)
        return masks

    def _skip(self, paths: List[str]) -> None:
        # Category sub-folders next to flat images are data, not junk.
        super()._skip(
            [
                p
                for p in paths
                if not (osp.isdir(p) and not p.lower().endswith(IMG_EXTENSIONS))
            ]
        )

    def _expected_mask(self, stem: str) -> str:
        return f'{stem}{self.mask_suffix}.<ext>'
