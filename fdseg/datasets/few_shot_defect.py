"""Episodic dataset over the GFDS folder layout.

Layout (one folder per product)::

    <data_root>/<product>/images/<category>/<stem>.<ext>
    <data_root>/<product>/ground_truth/<category>/<stem>.<ext>

Images and masks pair by stem (two files with one stem in a folder are an
error). A category named ``good`` holds defect-free images without masks.
Hidden files (``._*`` AppleDouble, ``.DS_Store``), ``Thumbs.db``, folders and
files without an image suffix are skipped with one warning. Episodes follow
the GFDS protocol: every image of every selected category is the query once,
and its K supports are drawn from the same category without the query.

Masks are read by the rules of :mod:`fdseg.datasets.transforms.conventions`
(0/1, 16-bit, palette and alpha-only masks; errors naming the file and the
product setting where the convention does not fit), and a category none of
whose masks has foreground is an error at construction.
"""

import copy
import os
import os.path as osp
import warnings
import zlib
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from fdseg.registry import DATASETS

from .transforms.conventions import IMG_EXTENSIONS
from .transforms.episode_transforms import read_mask

GOOD = 'good'
#: What operating systems and archivers drop into folders (lower-case).
JUNK_FILES = ('thumbs.db', 'desktop.ini')
JUNK_DIRS = ('__macosx',)


def _as_list(value, what: str) -> list:
    """A sequence argument; a single string (or dict) is one item.

    ``list('magnetic_tile')`` would split a product name into characters.
    """
    if value is None:
        return None
    if isinstance(value, (str, dict)):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise TypeError(f'{what} must be a list, got {value!r}') from None


def list_folder(folder: str, dirs: bool = False) -> Tuple[List[str], List[str]]:
    """Entries of ``folder`` that are data, and the paths that are not.

    Args:
        folder (str): Folder to list.
        dirs (bool): Keep sub-folders (a product's category folders) instead
            of image files.

    Returns:
        tuple[list[str], list[str]]: Sorted names kept, and sorted paths
        skipped: hidden names (``._*`` AppleDouble files, ``.DS_Store``),
        ``Thumbs.db`` / ``desktop.ini`` / ``__MACOSX``, and entries of the other kind
        (folders named ``*.png``, files without an image suffix).
    """
    kept, skipped = [], []
    with os.scandir(folder) as it:
        for e in it:
            name = e.name
            if dirs:
                ok = (
                    e.is_dir()
                    and not name.startswith('.')
                    and name.lower() not in JUNK_DIRS
                )
            else:
                # A broken link with an image suffix stays: reading it names
                # it. is_dir follows links (symlinked images are common).
                ok = (
                    not name.startswith('.')
                    and name.lower() not in JUNK_FILES
                    and not e.is_dir()
                    and name.lower().endswith(IMG_EXTENSIONS)
                )
            (kept if ok else skipped).append(name if ok else osp.join(folder, name))
    return sorted(kept), sorted(skipped)


def _by_stem(folder: str, names: List[str]) -> Dict[str, str]:
    """Map stem -> name; two names with one stem are an error naming both."""
    out = {}
    for f in names:
        stem = osp.splitext(f)[0]
        if stem in out:
            raise ValueError(
                f'{osp.join(folder, out[stem])} and {osp.join(folder, f)} '
                f'have the same stem {stem!r}: images and masks pair by '
                'stem, so keep only one of them'
            )
        out[stem] = f
    return out


class ProductSpec:
    """How one product is read.

    Args:
        name (str): Folder name under ``data_root``.
        categories (list[str], optional): Categories to use (folder names);
            all defect categories when None.
        exclude (list[str]): Categories to leave out.
        mask_mode (str): ``'binary'`` (0/255, possibly anti-aliased: fg is
            ``mask > mask_threshold`` after resizing, as GFDS does) or
            ``'index'`` (value-indexed: fg of category k is
            ``mask == index_map[k]``).
        mask_threshold (int): Threshold on the resized 8-bit mask. GFDS uses
            30.
        index_map (dict, optional): category -> mask value for ``'index'``
            masks; defaults to 1, 2, ... in sorted category order.
        display_names (dict, optional): category -> readable name.
        folder (str, optional): Folder name when it differs from ``name``.
        image_bit_depth (int, optional): Bit depth of 16-bit images (e.g. 12
            for 12-bit sensor data); inferred per image from its maximum
            (8, 10, 12, 14 or 16 bits) when None.

    A single string for ``categories`` or ``exclude`` is one category.
    """

    def __init__(
        self,
        name: str,
        categories: Optional[Sequence[str]] = None,
        exclude: Sequence[str] = (),
        mask_mode: str = 'binary',
        mask_threshold: int = 30,
        index_map: Optional[Dict[str, int]] = None,
        display_names: Optional[Dict[str, str]] = None,
        folder: Optional[str] = None,
        image_bit_depth: Optional[int] = None,
        **kwargs,
    ):
        if mask_mode not in ('binary', 'index'):
            raise ValueError(
                f'product {name!r}: mask_mode must be "binary" '
                f'or "index", got {mask_mode!r}'
            )
        if kwargs:
            raise TypeError(f'product {name!r}: unknown keys {sorted(kwargs)}')
        self.name = name
        self.folder = folder or name
        self.categories = _as_list(categories, f'product {name!r}: categories')
        self.exclude = set(_as_list(exclude, f'product {name!r}: exclude'))
        if image_bit_depth is not None and not 8 <= image_bit_depth <= 16:
            raise ValueError(
                f'product {name!r}: image_bit_depth must be in '
                f'8..16, got {image_bit_depth!r}'
            )
        self.image_bit_depth = image_bit_depth
        self.mask_mode = mask_mode
        self.mask_threshold = int(mask_threshold)
        self.index_map = dict(index_map or {})
        self.display_names = dict(display_names or {})


@DATASETS.register_module()
class FewShotDefectDataset(BaseDataset):
    """N-way K-shot episodes over products in the GFDS layout.

    Episode sampling is a pure function of ``(seed, query identity)``: the
    supports of a query are the same across runs, worker counts, processes
    and whichever other categories are selected.

    Args:
        data_root (str): Folder holding one sub-folder per product.
        products (list[str | dict]): Products to read; a dict is passed to
            :class:`ProductSpec` (mask convention, categories, ...). A single
            string (or dict) is one product.
        shot (int): K supports per way.
        way (int): N ways. Extra ways are drawn from the other selected
            categories (``way_pool``).
        seed (int): Seed of the support draw.
        way_pool (str): ``'all'`` (other categories of any selected product)
            or ``'product'`` (other categories of the query's product).
        insufficient_support (str): A category with fewer than ``shot + 1``
            images: ``'reduce'`` uses all the other images as supports (what
            the official GFDS loader does) with a warning, ``'error'``
            raises. A category with a single image always raises.
        include_good (bool): Add the product's ``good`` images as
            defect-free queries, each paired with one defect category (drawn
            by the seeded RNG); their query mask is all background.
        missing_mask (str): ``'error'`` or ``'skip'`` for a defect image
            without a mask.
        max_episodes_per_category (int, optional): Cap for quick runs; takes
            the first images in sorted order.
        pipeline (list): Transforms.
        test_mode (bool): As in mmengine.
    """

    METAINFO = dict(classes=('background', 'defect'))

    def __init__(
        self,
        data_root: str,
        products: Sequence[Union[str, dict]],
        shot: int = 1,
        way: int = 1,
        seed: int = 0,
        way_pool: str = 'all',
        insufficient_support: str = 'reduce',
        include_good: bool = False,
        missing_mask: str = 'error',
        max_episodes_per_category: Optional[int] = None,
        pipeline: Sequence = (),
        test_mode: bool = True,
        lazy_init: bool = False,
        **kwargs,
    ):
        if shot < 1:
            raise ValueError(f'shot must be >= 1, got {shot}')
        if way < 1:
            raise ValueError(f'way must be >= 1, got {way}')
        if way_pool not in ('all', 'product'):
            raise ValueError(f'way_pool must be "all" or "product", got {way_pool!r}')
        if insufficient_support not in ('reduce', 'error'):
            raise ValueError(
                'insufficient_support must be "reduce" or '
                f'"error", got {insufficient_support!r}'
            )
        if missing_mask not in ('error', 'skip'):
            raise ValueError(
                f'missing_mask must be "error" or "skip", got {missing_mask!r}'
            )
        products = _as_list(products, 'products')
        if not products:
            raise ValueError(
                'products is empty: name at least one product '
                f'folder under {data_root!r}'
            )
        self.products = [
            ProductSpec(**(dict(name=p) if isinstance(p, str) else p)) for p in products
        ]
        self.shot = shot
        self.way = way
        self.seed = seed
        self.way_pool = way_pool
        self.insufficient_support = insufficient_support
        self.include_good = include_good
        self.missing_mask = missing_mask
        self.max_episodes_per_category = max_episodes_per_category
        super().__init__(
            data_root=data_root,
            pipeline=pipeline,
            test_mode=test_mode,
            lazy_init=lazy_init,
            serialize_data=True,
            **kwargs,
        )

    # ------------------------------------------------------------------
    # listing
    # ------------------------------------------------------------------
    def _skip(self, paths: List[str]) -> None:
        """Remember non-image entries for the one warning of the scan."""
        self.__dict__.setdefault('_skipped', []).extend(paths)

    def _dirs(self, spec: ProductSpec, category: str) -> Tuple[str, str]:
        """The image folder and the mask folder of one category."""
        return (
            osp.join(self.data_root, spec.folder, 'images', category),
            osp.join(self.data_root, spec.folder, 'ground_truth', category),
        )

    def _pair_masks(self, gt_dir: str, names: List[str]) -> Dict[str, str]:
        """Image stem -> mask path, from the mask file names of a folder."""
        masks = {}
        for stem, f in _by_stem(gt_dir, names).items():
            # MVTec-style "<stem>_mask.png" names pair too.
            if stem.endswith('_mask') and stem[:-5] not in masks:
                masks.setdefault(stem[:-5], osp.join(gt_dir, f))
            masks[stem] = osp.join(gt_dir, f)
        return masks

    def _list_category(self, spec: ProductSpec, category: str) -> List[dict]:
        """Image records of one category, paired with masks by stem."""
        img_dir, gt_dir = self._dirs(spec, category)
        names, skipped = list_folder(img_dir)
        self._skip(skipped)
        imgs = _by_stem(img_dir, names)
        masks = {}
        if category != GOOD and osp.isdir(gt_dir):
            names, skipped = list_folder(gt_dir)
            self._skip(skipped)
            masks = self._pair_masks(gt_dir, names)
        records = []
        for stem, f in imgs.items():
            mask_path = None
            if category != GOOD:
                mask_path = masks.get(stem)
                if mask_path is None:
                    msg = (
                        f'{osp.join(img_dir, f)} has no mask in {gt_dir} '
                        f'(expected {self._expected_mask(stem)})'
                    )
                    if self.missing_mask == 'error':
                        raise FileNotFoundError(
                            msg + "; set missing_mask='skip' to leave such images out"
                        )
                    warnings.warn(msg + ': skipped')
                    continue
            records.append(
                dict(
                    img_path=osp.join(img_dir, f),
                    seg_map_path=mask_path,
                    stem=stem,
                    product=spec.name,
                    category=category,
                )
            )
        return records

    def _expected_mask(self, stem: str) -> str:
        """The mask name an image stem pairs with (for messages)."""
        return f'{stem}.<ext>'

    def _category_dirs(self, spec: ProductSpec) -> List[str]:
        """Category folders of a product (hidden folders skipped)."""
        img_root = osp.join(self.data_root, spec.folder, 'images')
        if not osp.isdir(img_root):
            raise FileNotFoundError(
                f'product {spec.name!r}: {img_root} does not exist (expected '
                '<data_root>/<product>/images/<category>/*)'
            )
        found, skipped = list_folder(img_root, dirs=True)
        self._skip(skipped)
        return found

    def _categories_of(self, spec: ProductSpec) -> List[str]:
        img_root = osp.join(self.data_root, spec.folder, 'images')
        found = self._category_dirs(spec)
        if spec.categories is not None:
            missing = [c for c in spec.categories if c not in found]
            if missing:
                raise FileNotFoundError(
                    f'product {spec.name!r}: categories {missing} not found '
                    f'in {img_root} (found: {found})'
                )
            cats = list(spec.categories)
        else:
            cats = [c for c in found if c != GOOD]
        return [c for c in cats if c not in spec.exclude and c != GOOD]

    def _convention(self, spec: ProductSpec) -> dict:
        """How LoadEpisode reads this product's files (episode metadata)."""
        class_values = None
        if spec.mask_mode == 'index':
            class_values = sorted(
                {self._mask_value(spec, c) for c in self._categories_of_cached(spec)}
                | {int(v) for v in spec.index_map.values()}
            )
        return dict(
            mask_mode=spec.mask_mode,
            mask_threshold=spec.mask_threshold,
            class_values=class_values,
            bit_depth=spec.image_bit_depth,
        )

    def _check_foreground(self, spec: ProductSpec, key: str, recs: List[dict]) -> None:
        """Raise if no mask of a category has foreground.

        Reads masks in sorted order and stops at the first with foreground,
        usually the first one, so this costs about one mask read per
        category; the per-file convention checks of ``read_mask`` run on it
        too, so a wrong ``mask_mode`` / ``mask_threshold`` usually fails
        here, before any model runs. Only a category whose masks are all
        empty reads them all (and then fails). Single empty masks are fine
        (the magnetic tile ``uneven`` folder has four).
        """
        conv = self._convention(spec)
        category = key.split('/', 1)[1]
        value = self._mask_value(spec, category)
        paths = [r['seg_map_path'] for r in recs if r['seg_map_path']]
        for path in paths:
            m = read_mask(
                path,
                spec.mask_mode,
                value,
                threshold=spec.mask_threshold,
                class_values=conv['class_values'],
                setting=f'product {spec.name!r}',
            )
            fg = (
                m.any()
                if spec.mask_mode == 'index'
                else (m > spec.mask_threshold).any()
            )
            if fg:
                return
        rule = (
            f'== {value} (index_map)'
            if spec.mask_mode == 'index'
            else f'> mask_threshold {spec.mask_threshold}'
        )
        raise ValueError(
            f'category {key}: none of its {len(paths)} masks has a '
            f'foreground pixel (mask {rule}), e.g. {paths[0] if paths else "-"}'
            '; its metrics would be NaN. Check mask_mode / mask_threshold / '
            f'index_map of product {spec.name!r} and the ground_truth folder, '
            'or leave the category out (exclude=...)'
        )

    # ------------------------------------------------------------------
    # episodes
    # ------------------------------------------------------------------
    def _rng(self, *keys) -> np.random.Generator:
        """A generator seeded by ``seed`` and stable string keys.

        crc32 (not ``hash``) because Python salts string hashes per process.
        """
        key = '/'.join(str(k) for k in keys)
        return np.random.default_rng([self.seed, zlib.crc32(key.encode())])

    def _draw(self, rng, pool: List[dict], k: int, exclude_stem=None):
        candidates = [r for r in pool if r['stem'] != exclude_stem]
        idx = rng.choice(len(candidates), size=min(k, len(candidates)), replace=False)
        return [candidates[i] for i in sorted(idx)]

    def load_data_list(self) -> List[dict]:
        """Scan the products and build one episode per query image."""
        by_cat: Dict[str, List[dict]] = {}
        specs: Dict[str, ProductSpec] = {}
        goods: Dict[str, List[dict]] = {}
        self._skipped = []
        for spec in self.products:
            specs[spec.name] = spec
            for cat in self._categories_of(spec):
                recs = self._list_category(spec, cat)
                key = f'{spec.name}/{cat}'
                if recs:
                    self._check_foreground(spec, key, recs)
                if len(recs) < 2:
                    raise ValueError(
                        f'category {key} has {len(recs)} image(s): an '
                        'episode needs a query and at least one support'
                    )
                if len(recs) < self.shot + 1:
                    msg = (
                        f'category {key} has {len(recs)} images, fewer '
                        f'than shot + 1 = {self.shot + 1}'
                    )
                    if self.insufficient_support == 'error':
                        raise ValueError(msg)
                    print_log(
                        msg + f': its episodes use {len(recs) - 1} supports',
                        logger='current',
                        level=30,
                    )
                by_cat[key] = recs
            good_dir = self._dirs(spec, GOOD)[0]
            if self.include_good and osp.isdir(good_dir):
                goods[spec.name] = self._list_category(spec, GOOD)
        if self._skipped:
            skipped = sorted(set(self._skipped))
            warnings.warn(
                f'{len(skipped)} entries in the data folders are not images '
                f'and were skipped (hidden / AppleDouble files, Thumbs.db, '
                f'folders, other suffixes), e.g. {skipped[0]}'
            )
        if not by_cat:
            raise ValueError(f'no categories selected under {self.data_root}')
        conventions = {s.name: self._convention(s) for s in self.products}

        cat_keys = list(by_cat)
        cat_ids = {k: i for i, k in enumerate(cat_keys)}
        episodes = []

        def make_episode(query: dict, cat_key: str, is_good: bool):
            spec = specs[query['product']]
            qid = f'{query["product"]}/{query["category"]}/{query["stem"]}'
            rng = self._rng('episode', cat_key, qid)
            ways = [cat_key]
            if self.way > 1:
                pool = [
                    k
                    for k in cat_keys
                    if k != cat_key
                    and (self.way_pool == 'all' or k.split('/')[0] == query['product'])
                ]
                if len(pool) < self.way - 1:
                    raise ValueError(
                        f'{self.way}-way episodes need {self.way - 1} other '
                        f'categories for {cat_key}, only {len(pool)} '
                        f'available (way_pool={self.way_pool!r})'
                    )
                extra = rng.choice(len(pool), self.way - 1, replace=False)
                ways += [pool[i] for i in extra]
                rng.shuffle(ways)
            supports, labels = [], []
            for w, wk in enumerate(ways):
                exclude = query['stem'] if wk == cat_key and not is_good else None
                drawn = self._draw(rng, by_cat[wk], self.shot, exclude)
                supports += drawn
                labels += [w + 1] * len(drawn)
            sp = specs
            return dict(
                img_path=query['img_path'],
                seg_map_path=query['seg_map_path'],
                product=query['product'],
                category=cat_key.split('/', 1)[1],
                category_key=cat_key,
                category_id=cat_ids[cat_key],
                display_name=spec.display_names.get(
                    cat_key.split('/', 1)[1], cat_key.split('/', 1)[1]
                ),
                query_label=ways.index(cat_key) + 1,
                way_categories=ways,
                is_good=is_good,
                support_paths=[s['img_path'] for s in supports],
                support_products=[s['product'] for s in supports],
                support_mask_paths=[s['seg_map_path'] for s in supports],
                support_labels=labels,
                support_mask_values=[
                    self._mask_value(sp[s['product']], s['category']) for s in supports
                ],
                query_mask_value=self._mask_value(spec, query['category'])
                if not is_good
                else None,
                mask_mode=spec.mask_mode,
                mask_threshold=spec.mask_threshold,
                conventions={
                    p: conventions[p]
                    for p in dict.fromkeys(
                        [query['product']] + [s['product'] for s in supports]
                    )
                },
            )

        for cat_key, recs in by_cat.items():
            queries = recs
            if self.max_episodes_per_category is not None:
                queries = recs[: self.max_episodes_per_category]
            for q in queries:
                episodes.append(make_episode(q, cat_key, False))
        for product, recs in goods.items():
            own = [k for k in cat_keys if k.split('/')[0] == product]
            if not own:
                continue
            for q in recs:
                pick = self._rng('good', product, q['stem']).integers(len(own))
                episodes.append(make_episode(q, own[pick], True))
        for i, ep in enumerate(episodes):
            ep['episode_idx'] = i
        self._metainfo['categories'] = cat_keys
        self._metainfo['products'] = [s.name for s in self.products]
        return episodes

    def _mask_value(self, spec: ProductSpec, category: str) -> Optional[int]:
        """The mask value of ``category`` for value-indexed masks."""
        if spec.mask_mode != 'index':
            return None
        if category in spec.index_map:
            return int(spec.index_map[category])
        cats = sorted(c for c in self._categories_of_cached(spec))
        return cats.index(category) + 1

    def _categories_of_cached(self, spec: ProductSpec) -> List[str]:
        cache = self.__dict__.setdefault('_cat_cache', {})
        if spec.name not in cache:
            # The same listing as the episodes (hidden folders skipped), so
            # default index values do not shift.
            cache[spec.name] = [d for d in self._category_dirs(spec) if d != GOOD]
        return cache[spec.name]

    def get_data_info(self, idx: int) -> dict:
        """A deep copy of episode ``idx`` (transforms may change it freely)."""
        info = super().get_data_info(idx)
        return copy.deepcopy(info)

    @property
    def categories(self) -> List[str]:
        """``product/category`` keys of the selected categories."""
        return list(self.metainfo.get('categories', []))


@DATASETS.register_module()
class SyntheticDefectDataset(FewShotDefectDataset):
    """:class:`FewShotDefectDataset` over the procedural synthetic benchmark.

    The benchmark is generated into ``data_root`` on first use (offline,
    deterministic from ``generator_seed``; see
    :mod:`fdseg.datasets.utils.synthetic`), so the quick start needs no
    download.

    Args:
        data_root (str): Where the benchmark is (or will be) written.
        products (list, optional): Defaults to every synthetic product.
        generator_seed (int): Seed of the generator (not of the episodes).
        num_images (int): Images per category.
        image_size (int): Generated image size.
        **kwargs: :class:`FewShotDefectDataset` arguments.
    """

    def __init__(
        self,
        data_root: str,
        products: Optional[Sequence[Union[str, dict]]] = None,
        generator_seed: int = 0,
        num_images: int = 12,
        image_size: int = 256,
        **kwargs,
    ):
        from .utils.synthetic import SYNTHETIC_PRODUCTS, ensure_synthetic_benchmark

        ensure_synthetic_benchmark(
            data_root, seed=generator_seed, num_images=num_images, image_size=image_size
        )
        if products is None:
            products = list(SYNTHETIC_PRODUCTS)
        super().__init__(data_root=data_root, products=products, **kwargs)
