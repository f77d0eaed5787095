"""Episodic dataset over the GFDS folder layout.

Layout (one folder per product)::

    <data_root>/<product>/images/<category>/<stem>.<ext>
    <data_root>/<product>/ground_truth/<category>/<stem>.<ext>

Images and masks pair by stem. A category named ``good`` holds defect-free
images without masks. Episodes follow the GFDS protocol: every image of every
selected category is the query once, and its K supports are drawn from the
same category without the query.
"""
import copy
import os
import os.path as osp
import warnings
import zlib
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from fdseg.registry import DATASETS

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
GOOD = 'good'


def _default_product(name: str) -> dict:
    return dict(name=name)


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
    """

    def __init__(self,
                 name: str,
                 categories: Optional[Sequence[str]] = None,
                 exclude: Sequence[str] = (),
                 mask_mode: str = 'binary',
                 mask_threshold: int = 30,
                 index_map: Optional[Dict[str, int]] = None,
                 display_names: Optional[Dict[str, str]] = None,
                 folder: Optional[str] = None,
                 **kwargs):
        if mask_mode not in ('binary', 'index'):
            raise ValueError(f'product {name!r}: mask_mode must be "binary" '
                             f'or "index", got {mask_mode!r}')
        if kwargs:
            raise TypeError(f'product {name!r}: unknown keys '
                            f'{sorted(kwargs)}')
        self.name = name
        self.folder = folder or name
        self.categories = list(categories) if categories is not None else None
        self.exclude = set(exclude)
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
            :class:`ProductSpec` (mask convention, categories, ...).
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

    def __init__(self,
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
                 **kwargs):
        if shot < 1:
            raise ValueError(f'shot must be >= 1, got {shot}')
        if way < 1:
            raise ValueError(f'way must be >= 1, got {way}')
        if way_pool not in ('all', 'product'):
            raise ValueError(f'way_pool must be "all" or "product", got '
                             f'{way_pool!r}')
        if insufficient_support not in ('reduce', 'error'):
            raise ValueError('insufficient_support must be "reduce" or '
                             f'"error", got {insufficient_support!r}')
        if missing_mask not in ('error', 'skip'):
            raise ValueError('missing_mask must be "error" or "skip", got '
                             f'{missing_mask!r}')
        if not products:
            raise ValueError('products is empty: name at least one product '
                             f'folder under {data_root!r}')
        self.products = [
            ProductSpec(**(dict(name=p) if isinstance(p, str) else p))
            for p in products
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
            **kwargs)

    # ------------------------------------------------------------------
    # listing
    # ------------------------------------------------------------------
    def _list_category(self, spec: ProductSpec, category: str) -> List[dict]:
        """Image records of one category, paired with masks by stem."""
        img_dir = osp.join(self.data_root, spec.folder, 'images', category)
        gt_dir = osp.join(self.data_root, spec.folder, 'ground_truth',
                          category)
        imgs = sorted(f for f in os.listdir(img_dir)
                      if f.lower().endswith(IMG_EXTENSIONS))
        masks = {}
        if category != GOOD and osp.isdir(gt_dir):
            for f in sorted(os.listdir(gt_dir)):
                if f.lower().endswith(IMG_EXTENSIONS):
                    stem = osp.splitext(f)[0]
                    # MVTec-style "<stem>_mask.png" names pair too.
                    if stem.endswith('_mask') and stem[:-5] not in masks:
                        masks.setdefault(stem[:-5], osp.join(gt_dir, f))
                    masks[stem] = osp.join(gt_dir, f)
        records = []
        for f in imgs:
            stem = osp.splitext(f)[0]
            mask_path = None
            if category != GOOD:
                mask_path = masks.get(stem)
                if mask_path is None:
                    msg = (f'{osp.join(img_dir, f)} has no mask in {gt_dir} '
                           f'(expected {stem}.<ext>)')
                    if self.missing_mask == 'error':
                        raise FileNotFoundError(
                            msg + "; set missing_mask='skip' to leave such "
                            'images out')
                    warnings.warn(msg + ': skipped')
                    continue
            records.append(
                dict(
                    img_path=osp.join(img_dir, f),
                    seg_map_path=mask_path,
                    stem=stem,
                    product=spec.name,
                    category=category,
                ))
        return records

    def _categories_of(self, spec: ProductSpec) -> List[str]:
        img_root = osp.join(self.data_root, spec.folder, 'images')
        if not osp.isdir(img_root):
            raise FileNotFoundError(
                f'product {spec.name!r}: {img_root} does not exist (expected '
                '<data_root>/<product>/images/<category>/*)')
        found = sorted(d for d in os.listdir(img_root)
                       if osp.isdir(osp.join(img_root, d)))
        if spec.categories is not None:
            missing = [c for c in spec.categories if c not in found]
            if missing:
                raise FileNotFoundError(
                    f'product {spec.name!r}: categories {missing} not found '
                    f'in {img_root} (found: {found})')
            cats = list(spec.categories)
        else:
            cats = [c for c in found if c != GOOD]
        return [c for c in cats if c not in spec.exclude and c != GOOD]

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
        idx = rng.choice(len(candidates), size=min(k, len(candidates)),
                         replace=False)
        return [candidates[i] for i in sorted(idx)]

    def load_data_list(self) -> List[dict]:
        """Scan the products and build one episode per query image."""
        by_cat: Dict[str, List[dict]] = {}
        specs: Dict[str, ProductSpec] = {}
        goods: Dict[str, List[dict]] = {}
        for spec in self.products:
            specs[spec.name] = spec
            for cat in self._categories_of(spec):
                recs = self._list_category(spec, cat)
                key = f'{spec.name}/{cat}'
                if len(recs) < 2:
                    raise ValueError(
                        f'category {key} has {len(recs)} image(s): an '
                        'episode needs a query and at least one support')
                if len(recs) < self.shot + 1:
                    msg = (f'category {key} has {len(recs)} images, fewer '
                           f'than shot + 1 = {self.shot + 1}')
                    if self.insufficient_support == 'error':
                        raise ValueError(msg)
                    print_log(
                        msg + f': its episodes use {len(recs) - 1} supports',
                        logger='current', level=30)
                by_cat[key] = recs
            good_dir = osp.join(self.data_root, spec.folder, 'images', GOOD)
            if self.include_good and osp.isdir(good_dir):
                goods[spec.name] = self._list_category(spec, GOOD)
        if not by_cat:
            raise ValueError(f'no categories selected under {self.data_root}')

        cat_keys = list(by_cat)
        cat_ids = {k: i for i, k in enumerate(cat_keys)}
        episodes = []

        def make_episode(query: dict, cat_key: str, is_good: bool):
            spec = specs[query['product']]
            qid = f"{query['product']}/{query['category']}/{query['stem']}"
            rng = self._rng('episode', cat_key, qid)
            ways = [cat_key]
            if self.way > 1:
                pool = [
                    k for k in cat_keys if k != cat_key and (
                        self.way_pool == 'all'
                        or k.split('/')[0] == query['product'])
                ]
                if len(pool) < self.way - 1:
                    raise ValueError(
                        f'{self.way}-way episodes need {self.way - 1} other '
                        f'categories for {cat_key}, only {len(pool)} '
                        f'available (way_pool={self.way_pool!r})')
                extra = rng.choice(len(pool), self.way - 1, replace=False)
                ways += [pool[i] for i in extra]
                rng.shuffle(ways)
            supports, labels = [], []
            for w, wk in enumerate(ways):
                exclude = query['stem'] if wk == cat_key and not is_good \
                    else None
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
                    cat_key.split('/', 1)[1], cat_key.split('/', 1)[1]),
                query_label=ways.index(cat_key) + 1,
                way_categories=ways,
                is_good=is_good,
                support_paths=[s['img_path'] for s in supports],
                support_mask_paths=[s['seg_map_path'] for s in supports],
                support_labels=labels,
                support_mask_values=[
                    self._mask_value(sp[s['product']], s['category'])
                    for s in supports
                ],
                query_mask_value=self._mask_value(spec, query['category'])
                if not is_good else None,
                mask_mode=spec.mask_mode,
                mask_threshold=spec.mask_threshold,
            )

        for cat_key, recs in by_cat.items():
            queries = recs
            if self.max_episodes_per_category is not None:
                queries = recs[:self.max_episodes_per_category]
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
            img_root = osp.join(self.data_root, spec.folder, 'images')
            cache[spec.name] = sorted(
                d for d in os.listdir(img_root)
                if osp.isdir(osp.join(img_root, d)) and d != GOOD)
        return cache[spec.name]

    def get_data_info(self, idx: int) -> dict:
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
    :mod:`fdseg.datasets.synthetic`), so the quick start needs no download.

    Args:
        data_root (str): Where the benchmark is (or will be) written.
        products (list, optional): Defaults to every synthetic product.
        generator_seed (int): Seed of the generator (not of the episodes).
        num_images (int): Images per category.
        image_size (int): Generated image size.
        **kwargs: :class:`FewShotDefectDataset` arguments.
    """

    def __init__(self,
                 data_root: str,
                 products: Optional[Sequence[Union[str, dict]]] = None,
                 generator_seed: int = 0,
                 num_images: int = 12,
                 image_size: int = 256,
                 **kwargs):
        from .synthetic import SYNTHETIC_PRODUCTS, ensure_synthetic_benchmark
        ensure_synthetic_benchmark(
            data_root, seed=generator_seed, num_images=num_images,
            image_size=image_size)
        if products is None:
            products = list(SYNTHETIC_PRODUCTS)
        super().__init__(data_root=data_root, products=products, **kwargs)
