"""The GFDS benchmark (paper Sec. 3, Table 1/2, Sec. 6.1.1) as data.

Every product of the benchmark is one entry of :data:`GFDS_PRODUCTS`: its
folder and category folders as the official GFDS code names them (so that a
prepared ``Dataset/`` folder of the official code works unchanged), readable
display names, the mask convention, the Table-1 image counts and where the
images come from. Everything else (fold and in-domain splits, the dataset
class, the Table-4 report, the count check) is derived from these entries, so
a 13th product is one more entry::

    from fdseg.datasets.gfds_products import register_product
    register_product('Wood', folder='wood',
                     categories=['color', 'hole', 'scratch'],
                     counts=dict(color=8, hole=10, scratch=21),
                     source='MVTec AD', benchmark='gfds')

On disk a product is ``<data_root>/<folder>/images/<category>/<stem>.<ext>``
with masks in ``<data_root>/<folder>/ground_truth/<category>/<stem>.png``.
DAGM is special: Table 1 counts it as one product with ten categories, but
on disk (and in the official code) it is ten folders ``Class1`` ..
``Class10`` with a single category ``bad`` each; such a product lists its
folders in ``parts``.

Splits:

* Cross-domain folds (Table 2): :data:`FOLDS`; the training set of a fold is
  the other fold (:func:`fold_products`).
* In-domain (Sec. 6.1.1): per product one held-out test category
  (:data:`IN_DOMAIN_TEST_CLASS`), the product's other categories train; Kol
  and DAGM are excluded (one category per product). The paper does not say
  which category it held out: ours is the first category in the official
  order, declared here and overridable (``held_out=`` of the dataset).
"""
import copy
import os
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Union

from fdseg.registry import DATASETS
from .few_shot_defect import GOOD, IMG_EXTENSIONS, FewShotDefectDataset

# ----------------------------------------------------------------------
# Product declarations
# ----------------------------------------------------------------------
#: Every declared product, in the order of Table 4 (then extra products).
PRODUCTS: Dict[str, dict] = {}
#: The GFDS products (``benchmark='gfds'``), in Table-4 column order.
GFDS_PRODUCTS: Dict[str, dict] = {}
#: Benchmarks: name -> product keys in report order.
BENCHMARKS: Dict[str, List[str]] = {}

_MVTEC_LICENCE = 'CC BY-NC-SA 4.0 (MVTec AD)'
_VISA_LICENCE = 'CC BY 4.0 (VisA)'
_RESEARCH_ONLY = 'research use only (no explicit licence)'


def register_product(key: str,
                     folder: Optional[str] = None,
                     categories: Sequence[str] = (),
                     parts: Optional[Sequence[str]] = None,
                     display: Optional[str] = None,
                     display_names: Optional[Dict[str, str]] = None,
                     counts: Optional[Dict[str, Optional[int]]] = None,
                     total: Optional[int] = None,
                     mask_mode: str = 'binary',
                     mask_threshold: int = 30,
                     index_map: Optional[Dict[str, int]] = None,
                     source: str = '',
                     licence: str = '',
                     quirks: Sequence[str] = (),
                     aliases: Sequence[str] = (),
                     benchmark: str = 'gfds',
                     include_good: bool = False,
                     overwrite: bool = False) -> dict:
    """Declare a product (a column of Table 4).

    Args:
        key (str): Product key, used in metric names (``<key>/mIoU``).
        folder (str, optional): Folder under ``data_root``; ``key`` if None.
            Ignored when ``parts`` is given.
        categories (Sequence[str]): Category folders in the official order.
            With ``parts``: the categories inside each part folder.
        parts (Sequence[str], optional): Folders that together form the
            product, each holding ``categories`` (DAGM: ``Class1`` ..
            ``Class10`` with ``bad``). Each part is one benchmark category.
        display (str, optional): Readable product name (Table 4 header).
        display_names (dict, optional): category (or part) -> readable name.
        counts (dict, optional): category (or part) -> Table-1 image count;
            None where the paper gives no per-category number.
        total (int, optional): Table-1 image count of the product; the sum of
            ``counts`` if None.
        mask_mode (str): ``'binary'`` (fg = resized mask > threshold) or
            ``'index'`` (fg of category c = mask == index_map[c]).
        mask_threshold (int): Binary threshold on the resized 8-bit mask
            (30 in the official GFDS loader).
        index_map (dict, optional): category -> mask value for ``'index'``.
        source (str): Where the images come from.
        licence (str): Licence of the source.
        quirks (Sequence[str]): Things a user preparing the data should know.
        aliases (Sequence[str]): Other names accepted for ``key``.
        benchmark (str): Benchmark the product belongs to (``'gfds'`` or
            another name, e.g. ``'real_defects'``).
        include_good (bool): Default for adding ``good`` images as
            defect-free queries.
        overwrite (bool): Replace an existing declaration.

    Returns:
        dict: The stored entry.
    """
    if key in PRODUCTS and not overwrite:
        raise KeyError(f'product {key!r} is already declared; pass '
                       'overwrite=True to replace it')
    if not categories:
        raise ValueError(f'product {key!r}: categories is empty')
    if mask_mode not in ('binary', 'index'):
        raise ValueError(f'product {key!r}: mask_mode must be "binary" or '
                         f'"index", got {mask_mode!r}')
    if parts is not None and len(categories) != 1:
        # Each part is one benchmark category, as DAGM's Class<k>/bad.
        raise ValueError(f'product {key!r}: a product with parts has one '
                         'category per part folder')
    units = list(parts) if parts is not None else list(categories)
    counts = dict(counts or {})
    unknown = set(counts) - set(units)
    if unknown:
        raise ValueError(f'product {key!r}: counts for undeclared categories '
                         f'{sorted(unknown)}')
    if total is None and units and all(
            counts.get(u) is not None for u in units):
        total = sum(counts[u] for u in units)
    entry = dict(
        key=key,
        folder=folder or key,
        categories=list(categories),
        parts=list(parts) if parts is not None else None,
        display=display or key,
        display_names=dict(display_names or {}),
        counts={u: counts.get(u) for u in units},
        total=total,
        mask_mode=mask_mode,
        mask_threshold=int(mask_threshold),
        index_map=dict(index_map or {}),
        source=source,
        licence=licence,
        quirks=list(quirks),
        aliases=list(aliases),
        benchmark=benchmark,
        include_good=bool(include_good))
    if key in PRODUCTS:
        unregister_product(key)
    PRODUCTS[key] = entry
    BENCHMARKS.setdefault(benchmark, []).append(key)
    if benchmark == 'gfds':
        GFDS_PRODUCTS[key] = entry
    return entry


def unregister_product(key: str) -> None:
    """Remove a declared product (tests, experiments)."""
    entry = PRODUCTS.pop(resolve_product(key))
    GFDS_PRODUCTS.pop(entry['key'], None)
    members = BENCHMARKS.get(entry['benchmark'], [])
    if entry['key'] in members:
        members.remove(entry['key'])
    if not members:
        BENCHMARKS.pop(entry['benchmark'], None)


# Table 1, in the order of the Table 4 columns. Category folders and their
# order are the official GFDS code's (fewshot_defectloader.py ``foldall``).
register_product(
    'Tile', folder='tile',
    categories=['crack', 'glue_strip', 'gray_stroke', 'oil', 'rough'],
    display_names=dict(crack='Crack', glue_strip='Glue', gray_stroke='Gray',
                       oil='Oil', rough='Rough'),
    counts=dict(crack=11, glue_strip=18, gray_stroke=16, oil=18, rough=15),
    source='MVTec AD "tile" (test split, defect images)',
    licence=_MVTEC_LICENCE,
    quirks=['MVTec AD tile/crack has 17 images; Table 1 (and the Fold0 '
            'total of 1429) count 11. The paper does not say which were '
            'left out, so a full MVTec conversion warns here.'],
    aliases=['tile'])
register_product(
    'Grid', folder='grid',
    categories=['bent', 'broken', 'glue', 'metal_contamination', 'thread'],
    display_names=dict(bent='Bent', broken='Broken', glue='Glue',
                       metal_contamination='Metal', thread='Thread'),
    counts=dict(bent=12, broken=12, glue=11, metal_contamination=11,
                thread=11),
    source='MVTec AD "grid" (test split, defect images)',
    licence=_MVTEC_LICENCE, aliases=['grid'])
register_product(
    'Steel', folder='Steel', categories=['Am', 'Ld', 'Sc'],
    display_names=dict(Am='Am', Ld='Ld', Sc='Sc'),
    counts=dict(Am=50, Ld=48, Sc=50),
    source='FSSD-12 (TGRNet, Bao et al. 2021): Steel_Am, Steel_Ld, Steel_Sc',
    licence=_RESEARCH_ONLY + '; archive password from the FSSD-12 authors',
    quirks=['FSSD-12 ground truth marks defects with 255 only; other values '
            'are background (the converter keeps == 255).'],
    aliases=['steel', 'FSSD-12'])
register_product(
    'Kol', folder='KolektorSDD', categories=['bad'],
    display='Kol', display_names=dict(bad='Crack'), counts=dict(bad=52),
    source='KolektorSDD (Tabernik et al. 2019): the 52 images with a '
           'non-empty label',
    licence='CC BY-NC-SA 4.0 (KolektorSDD)',
    quirks=['One category: excluded from the in-domain setting.'],
    aliases=['KolektorSDD', 'KSDD'])
register_product(
    'PSP', folder='PSP', categories=[f'class_{i}' for i in range(1, 8)],
    display='PSPs',
    display_names={f'class_{i}': f'class {i}' for i in range(1, 8)},
    total=149,
    source='PSP-DS (Yao et al. 2024), polycrystalline silicon panels',
    licence='academic research only (PSP-DS)',
    quirks=['Table 1 names the seven classes Liquid(19), Poke(24), Mark(14), '
            'Water(25), Oil(16), Spot(35), Scratch(16) but neither the paper '
            'nor the official code maps them to class_1..class_7, so only '
            'the product total (149) is checked.'],
    aliases=['PSPs', 'PSP-DS'])
register_product(
    'DAGM', categories=['bad'], parts=[f'Class{i}' for i in range(1, 11)],
    display_names={f'Class{i}': f'C{i}' for i in range(1, 11)},
    counts=dict(Class1=71, Class2=84, Class3=84, Class4=68, Class5=80,
                Class6=67, Class7=150, Class8=150, Class9=150, Class10=150),
    source='DAGM 2007 (Test split, defect images) with the fine labels of '
           'the GFDS repository (DAGM_finelabel.zip)',
    licence='DAGM 2007: free for research (see the DAGM/HCI page); fine '
            'labels: GFDS repository',
    quirks=['Ten folders Class1..Class10 directly under data_root, each '
            'with one category "bad" (official layout); Table 4 reports them '
            'as one product with ten categories.',
            'Some raw fine labels (Class7) are RGBA PNGs; the converter '
            'writes single-channel 0/255 PNGs.',
            'One category per folder: excluded from the in-domain setting.'],
    aliases=['dagm'])
register_product(
    'R_small', folder='Small', categories=['fins', 'pit', 'scratch'],
    display_names=dict(fins='Fins', pit='Pit', scratch='Scratch'),
    counts=dict(fins=15, pit=36, scratch=30),
    source='GFDS rubber rings (small rings), released in the GFDS layout',
    licence=_RESEARCH_ONLY + ' (GFDS authors)', aliases=['Small'])
register_product(
    'R_large', folder='Large',
    categories=['bubble', 'pit', 'pressure', 'wear'],
    display_names=dict(bubble='Bubble', pit='Pit', pressure='Pressure',
                       wear='Wear'),
    counts=dict(bubble=26, pit=33, pressure=19, wear=11),
    source='GFDS rubber rings (large rings), released in the GFDS layout',
    licence=_RESEARCH_ONLY + ' (GFDS authors)', aliases=['Large'])
register_product(
    'R_side', folder='Side', categories=['holes', 'boundary'],
    display_names=dict(holes='Hole', boundary='Wear (boundary)'),
    counts=dict(holes=16, boundary=11),
    source='GFDS rubber rings (side views), released in the GFDS layout',
    licence=_RESEARCH_ONLY + ' (GFDS authors)',
    quirks=['Table 1 calls the "boundary" folder "Wear".'],
    aliases=['Side'])
register_product(
    'MSD', folder='Phone', categories=['oil', 'scratch', 'stain'],
    display_names=dict(oil='Oil', scratch='Scratch', stain='Stain'),
    counts=dict(oil=400, scratch=400, stain=400),
    source='MSD mobile phone screen defects (Zhang et al. 2022)',
    licence=_RESEARCH_ONLY + ' (MSD, Peking University)',
    aliases=['Phone'])
register_product(
    'Capsules', folder='capsules', categories=['0', '1', '2', '3', '4'],
    display_names={'0': 'Bubble', '1': 'Discolor', '2': 'Scratch',
                   '3': 'Leak', '4': 'Misshape'},
    counts={'0': 30, '1': 15, '2': 15, '3': 20, '4': 20},
    source='VisA "capsules" (anomaly images, split by mask value)',
    licence=_VISA_LICENCE,
    quirks=['Category folder k holds the images whose VisA mask has value '
            'k+1 (VisA id2class: 1 Bubble, 2 Discolor, 3 Scratch, 4 Leak, '
            '5 Misshape); this reading of the official names matches the '
            'Table-1 counts.'],
    aliases=['capsules'])
register_product(
    'Macaroni2', folder='macaroni2',
    categories=['0', '1', '2', '4', '5', '6'],
    display_names={'0': 'Break', '1': 'Color (similar)',
                   '2': 'Color (different)', '4': 'Crack', '5': 'Scratch',
                   '6': 'Other'},
    total=97,
    source='VisA "macaroni2" (anomaly images, split by mask value)',
    licence=_VISA_LICENCE,
    quirks=['The official code uses folders 0,1,2,4,5,6 (no 3). Read as '
            'VisA value k+1 (id2class: 1 breakage, 2 similar colour spot, 3 '
            'different colour spot, 4 chip around edge, 5 cracks, 6 '
            'scratches, 7 other) this leaves out "chip around edge", while '
            'Table 1 lists Break(10), Color1(20), Color2(12), Scratch(15), '
            'Edge(25), Crack(15). The mapping is unverified: only the '
            'product total (97) is checked and the display names follow '
            'the k+1 reading.'],
    aliases=['macaroni2'])

#: Cross-domain folds (Table 2). Training on one fold tests on the other.
FOLDS: Dict[str, List[str]] = {
    'fold0': ['DAGM', 'R_large', 'R_side', 'R_small', 'Capsules', 'Tile'],
    'fold1': ['MSD', 'Grid', 'Steel', 'Kol', 'PSP', 'Macaroni2'],
}
#: Table 2 "Quantity": (categories, images) of each fold.
FOLD_SIZES = {'fold0': (29, 1429), 'fold1': (25, 1703)}

#: In-domain setting (Sec. 6.1.1): the held-out test category per product.
#: The paper does not name them; we hold out the first category in the
#: official order. Kol and DAGM are not evaluated in-domain.
IN_DOMAIN_TEST_CLASS: Dict[str, str] = {
    'Tile': 'crack',
    'Grid': 'bent',
    'Steel': 'Am',
    'PSP': 'class_1',
    'R_small': 'fins',
    'R_large': 'bubble',
    'R_side': 'holes',
    'MSD': 'oil',
    'Capsules': '0',
    'Macaroni2': '0',
}
IN_DOMAIN_EXCLUDED = ('Kol', 'DAGM')

# The real defect trio of ../shared/data (development data, not GFDS).
register_product(
    'magnetic_tile',
    categories=['blowhole', 'break', 'crack', 'fray', 'uneven'],
    display='MagTile',
    counts={'blowhole': 115, 'break': 85, 'crack': 57, 'fray': 32,
            'uneven': 103},
    mask_threshold=127,
    source='Magnetic-tile-defect-datasets (Huang et al., The Visual '
           'Computer 2020)',
    licence=_RESEARCH_ONLY,
    quirks=['Anti-aliased 0..255 masks: foreground is mask > 127.',
            '4 "uneven" masks are empty.',
            '40 defect-free images in "good" (defect-free queries with '
            'include_good=True).'],
    benchmark='real_defects')
register_product(
    'neu_seg', categories=['inclusion', 'patches', 'scratches'],
    display='NEU-Seg',
    counts=dict(inclusion=150, patches=150, scratches=150),
    mask_mode='index',
    index_map=dict(inclusion=1, patches=2, scratches=3),
    source='NEU-Seg (DHW-Master/NEU_Seg), 150 random images per class',
    licence=_RESEARCH_ONLY,
    quirks=['Value-indexed masks (1 inclusion, 2 patches, 3 scratches); an '
            'image with several classes sits in several category folders.'],
    benchmark='real_defects')
register_product(
    'crackforest', categories=['crack'], display='CrackForest',
    counts=dict(crack=118),
    source='CrackForest (Shi et al., IEEE T-ITS 2016)',
    licence='non-commercial research only (CrackForest)',
    quirks=['Masks converted from the original .mat (Segmentation >= 2) to '
            '0/255 PNG; thin cracks, so the GFDS threshold (> 30 after '
            'resizing) is kept.'],
    benchmark='real_defects')


# ----------------------------------------------------------------------
# Lookups
# ----------------------------------------------------------------------
def gfds_order() -> List[str]:
    """GFDS product keys in Table-4 column order (then added products)."""
    return list(GFDS_PRODUCTS)


def resolve_product(name: str) -> str:
    """Product key of ``name`` (a key, an official folder or an alias).

    Matching is case-insensitive; raises ``KeyError`` listing the known
    products otherwise.
    """
    if name in PRODUCTS:
        return name
    low = str(name).lower()
    for key, entry in PRODUCTS.items():
        names = [key, entry['folder'], entry['display'], *entry['aliases']]
        if any(low == n.lower() for n in names if n):
            return key
    raise KeyError(f'unknown product {name!r}; declared: {list(PRODUCTS)} '
                   '(declare more with fdseg.datasets.gfds_products.'
                   'register_product)')


def product_info(name: str) -> dict:
    """A copy of the declaration of product ``name``."""
    return copy.deepcopy(PRODUCTS[resolve_product(name)])


def benchmark_categories(name: str) -> List[str]:
    """Benchmark categories of a product: its categories, or its parts."""
    entry = PRODUCTS[resolve_product(name)]
    return list(entry['parts'] or entry['categories'])


def official_key(product: str, category: str) -> str:
    """The official GFDS key ``<folder>_<category folder>``.

    ``category`` is a benchmark category (a part for DAGM), e.g.
    ``official_key('Tile', 'crack') == 'tile_crack'`` and
    ``official_key('DAGM', 'Class3') == 'Class3_bad'``.
    """
    entry = PRODUCTS[resolve_product(product)]
    if entry['parts']:
        return f"{category}_{entry['categories'][0]}"
    return f"{entry['folder']}_{category}"


def part_map(products: Optional[Sequence[str]] = None) -> Dict[str, tuple]:
    """Dataset product name -> (product key, benchmark category).

    Only products with ``parts`` appear: DAGM's ``Class3`` maps to
    ``('DAGM', 'Class3')``. Used to report DAGM as one Table-4 product.
    """
    keys = [resolve_product(p) for p in products] if products else list(
        PRODUCTS)
    out = {}
    for key in keys:
        for part in PRODUCTS[key]['parts'] or ():
            out[part] = (key, part)
    return out


def gfds_products(names: Optional[Sequence[str]] = None,
                  categories: Optional[Dict[str, Sequence[str]]] = None,
                  exclude: Optional[Dict[str, Sequence[str]]] = None,
                  include_good: Optional[bool] = None) -> List[dict]:
    """``products`` entries of :class:`FewShotDefectDataset` for products.

    Args:
        names (Sequence[str], optional): Product keys or aliases; all GFDS
            products in Table-4 order if None.
        categories (dict, optional): product -> benchmark categories to keep
            (parts for DAGM).
        exclude (dict, optional): product -> benchmark categories to drop.
        include_good (bool, optional): Override the products' default. Has
            no effect by itself: the dataset's ``include_good`` decides.

    Returns:
        list[dict]: ProductSpec dicts (DAGM expands to ten).
    """
    keys = [resolve_product(n) for n in (names or gfds_order())]
    categories = {resolve_product(k): list(v)
                  for k, v in (categories or {}).items()}
    exclude = {resolve_product(k): set(v) for k, v in (exclude or {}).items()}
    specs = []
    for key in keys:
        entry = PRODUCTS[key]
        units = benchmark_categories(key)
        keep = categories.get(key, units)
        bad = [c for c in keep if c not in units]
        if bad:
            raise KeyError(f'product {key!r} has no categories {bad} '
                           f'(declared: {units})')
        keep = [c for c in units if c in keep and c not in exclude.get(
            key, ())]
        common = dict(
            mask_mode=entry['mask_mode'],
            mask_threshold=entry['mask_threshold'])
        if entry['mask_mode'] == 'index':
            common['index_map'] = dict(entry['index_map'])
        if entry['parts']:
            for part in keep:
                specs.append(dict(
                    name=part, folder=part,
                    categories=list(entry['categories']),
                    display_names={
                        c: entry['display_names'].get(part, part)
                        for c in entry['categories']},
                    **common))
        elif keep:
            specs.append(dict(
                name=key, folder=entry['folder'], categories=keep,
                display_names=dict(entry['display_names']), **common))
    return specs


def fold_products(fold: Union[int, str], subset: str = 'test') -> List[str]:
    """Product keys of a cross-domain fold (Table 2).

    Args:
        fold (int | str): ``0``, ``1``, ``'fold0'`` or ``'fold1'``.
        subset (str): ``'test'`` (the fold itself) or ``'train'`` (the other
            fold, the cross-domain training set).
    """
    name = fold if str(fold).startswith('fold') else f'fold{fold}'
    if name not in FOLDS:
        raise KeyError(f'unknown fold {fold!r}; choose from {list(FOLDS)}')
    if subset == 'test':
        return list(FOLDS[name])
    if subset == 'train':
        return [p for f, ps in FOLDS.items() if f != name for p in ps]
    raise ValueError(f"subset must be 'test' or 'train', got {subset!r}")


def in_domain_split(product: str, subset: str = 'test',
                    held_out: Optional[Dict[str, str]] = None) -> List[str]:
    """Categories of ``product`` in the in-domain split (Sec. 6.1.1).

    Args:
        product (str): Product key or alias.
        subset (str): ``'test'`` (the held-out category) or ``'train'`` (the
            product's other categories).
        held_out (dict, optional): Overrides of :data:`IN_DOMAIN_TEST_CLASS`.
    """
    key = resolve_product(product)
    table = dict(IN_DOMAIN_TEST_CLASS)
    table.update({resolve_product(k): v for k, v in (held_out or {}).items()})
    if key not in table:
        raise KeyError(f'product {key!r} has no in-domain split (products '
                       f'with one: {list(table)}); Kol and DAGM have a '
                       'single category per product')
    units = benchmark_categories(key)
    test = table[key]
    if test not in units:
        raise KeyError(f'in-domain test class {test!r} is not a category of '
                       f'{key!r} ({units})')
    if subset == 'test':
        return [test]
    if subset == 'train':
        return [c for c in units if c != test]
    raise ValueError(f"subset must be 'test' or 'train', got {subset!r}")


def split_products(split: str = 'all', subset: str = 'test',
                   products: Optional[Sequence[str]] = None,
                   held_out: Optional[Dict[str, str]] = None,
                   benchmark: str = 'gfds') -> List[dict]:
    """ProductSpec dicts of a benchmark split.

    Args:
        split (str): ``'all'`` (every product of ``benchmark``), ``'fold0'``,
            ``'fold1'`` (Table 2) or ``'in-domain'`` (Sec. 6.1.1).
        subset (str): ``'test'`` or ``'train'``. For a fold, ``'train'`` is
            the other fold; for in-domain, the non-held-out categories.
            ``'all'`` has no training subset.
        products (Sequence[str], optional): Keep only these products (with
            ``'all'``: exactly these, from any benchmark).
        held_out (dict, optional): In-domain test class overrides.
        benchmark (str): Benchmark whose products ``'all'`` means.
    """
    if subset not in ('test', 'train'):
        raise ValueError(f"subset must be 'test' or 'train', got {subset!r}")
    if split == 'all':
        if subset == 'train':
            raise ValueError("split='all' has no training subset; use a fold "
                             "or 'in-domain'")
        if products:
            # Named products need no benchmark: any declared one will do.
            keys = list(dict.fromkeys(resolve_product(p) for p in products))
        elif benchmark not in BENCHMARKS:
            raise KeyError(f'unknown benchmark {benchmark!r}; declared: '
                           f'{list(BENCHMARKS)}')
        else:
            keys = list(BENCHMARKS[benchmark])
        cats = None
    elif split in FOLDS:
        keys, cats = fold_products(split, subset), None
    elif split in ('in-domain', 'in_domain', 'indomain'):
        table = dict(IN_DOMAIN_TEST_CLASS)
        table.update({resolve_product(k): v
                      for k, v in (held_out or {}).items()})
        keys = [k for k in gfds_order() if k in table]
        cats = {k: in_domain_split(k, subset, held_out) for k in keys}
    else:
        raise ValueError(f"unknown split {split!r}; choose 'all', "
                         f"{', '.join(repr(f) for f in FOLDS)} or "
                         "'in-domain'")
    if products:
        want = [resolve_product(p) for p in products]
        missing = [p for p in want if p not in keys]
        if missing:
            raise KeyError(f'products {missing} are not in split {split!r} '
                           f'({subset}): {keys}')
        keys = [k for k in keys if k in want]
    return gfds_products(keys, categories=cats)


# ----------------------------------------------------------------------
# Table-1 count check
# ----------------------------------------------------------------------
def count_images(folder: str) -> int:
    """Number of image files in ``folder`` (0 if it does not exist)."""
    if not osp.isdir(folder):
        return 0
    return sum(1 for f in os.listdir(folder)
               if f.lower().endswith(IMG_EXTENSIONS))


def check_counts(data_root: str,
                 products: Optional[Sequence[str]] = None,
                 warn: bool = True) -> List[dict]:
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
        issues.append(dict(product=product, category=category,
                           expected=expected, found=found, message=msg))
        if warn:
            warnings.warn(msg, stacklevel=3)

    for key in keys:
        entry = PRODUCTS[key]
        found_total = 0
        if entry['parts']:
            units = [(p, osp.join(data_root, p, 'images',
                                  entry['categories'][0]))
                     for p in entry['parts']]
        else:
            units = [(c, osp.join(data_root, entry['folder'], 'images', c))
                     for c in entry['categories']]
            img_root = osp.join(data_root, entry['folder'], 'images')
            if osp.isdir(img_root):
                extra = sorted(
                    d for d in os.listdir(img_root)
                    if osp.isdir(osp.join(img_root, d)) and d != GOOD
                    and d not in entry['categories'])
                for d in extra:
                    report(key, d, None, count_images(osp.join(img_root, d)),
                           f'{key}/{d}: category folder {img_root}/{d} is not '
                           f'a declared category of {key} '
                           f"({entry['categories']}); it is not used")
        for unit, folder in units:
            name = entry['display_names'].get(unit, unit)
            if not osp.isdir(folder):
                report(key, unit, entry['counts'].get(unit), 0,
                       f'{key}/{unit} ({name}): {folder} is missing')
                continue
            n = count_images(folder)
            found_total += n
            expected = entry['counts'].get(unit)
            if expected is not None and n != expected:
                report(key, unit, expected, n,
                       f'{key}/{unit} ({name}): {n} images, Table 1 says '
                       f'{expected}')
        all_known = all(entry['counts'].get(u) is not None
                        for u, _ in units)
        if (entry['total'] is not None and not all_known
                and found_total != entry['total']):
            report(key, None, entry['total'], found_total,
                   f'{key}: {found_total} images in total, Table 1 says '
                   f"{entry['total']}")
    return issues


# ----------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------
@DATASETS.register_module()
class GFDSDataset(FewShotDefectDataset):
    """:class:`FewShotDefectDataset` over a split of a declared benchmark.

    Products, mask conventions and categories come from
    :data:`PRODUCTS`; the split chooses which::

        dict(type='GFDSDataset', data_root='data/gfds', split='fold0')
        # the cross-domain training set of the fold0 experiment (= fold1):
        dict(type='GFDSDataset', data_root='data/gfds', split='fold0',
             subset='train')
        dict(type='GFDSDataset', data_root='data/gfds', split='in-domain',
             held_out=dict(Tile='oil'))

    Args:
        data_root (str): Folder holding the product folders.
        split (str): ``'all'``, ``'fold0'``, ``'fold1'`` or ``'in-domain'``
            (see :func:`split_products`).
        subset (str): ``'test'`` or ``'train'``.
        products (Sequence[str], optional): Keep only these products of the
            split (keys or aliases, e.g. ``['Tile']``); a single string is
            one product.
        held_out (dict, optional): In-domain test class per product,
            overriding :data:`IN_DOMAIN_TEST_CLASS`.
        benchmark (str): Benchmark of ``split='all'`` (``'gfds'`` or
            ``'real_defects'``).
        extra_products (Sequence[dict]): More ProductSpec dicts appended as
            they are (a product not worth declaring).
        check_counts (bool): Warn where the prepared data differ from the
            declared Table-1 counts (see :func:`check_counts`).
        include_good (bool, optional): Defect-free queries; defaults to the
            products' declaration (True if any declares it).
        **kwargs: :class:`FewShotDefectDataset` arguments (``shot``,
            ``way``, ``seed``, ``pipeline``, ...).
    """

    def __init__(self,
                 data_root: str,
                 split: str = 'all',
                 subset: str = 'test',
                 products: Optional[Sequence[str]] = None,
                 held_out: Optional[Dict[str, str]] = None,
                 benchmark: str = 'gfds',
                 extra_products: Sequence[dict] = (),
                 check_counts: bool = True,
                 include_good: Optional[bool] = None,
                 **kwargs):
        self.split = split
        self.subset = subset
        self.benchmark = benchmark
        if isinstance(products, str):
            # One product, not a sequence of one-letter product names.
            products = [products]
        specs = split_products(split, subset, products, held_out, benchmark)
        specs += [dict(p) for p in extra_products]
        if include_good is None:
            names = {s['name'] for s in specs}
            include_good = any(
                e['include_good'] for k, e in PRODUCTS.items()
                if k in names or any(p in names for p in e['parts'] or ()))
        self._check_counts = check_counts
        super().__init__(data_root=data_root, products=specs,
                         include_good=include_good, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Check the counts (warnings only), then build the episodes."""
        if self._check_counts:
            keys = []
            parts = part_map()
            for spec in self.products:
                key = parts.get(spec.name, (spec.name, None))[0]
                if key in PRODUCTS and key not in keys:
                    keys.append(key)
            if keys:
                check_counts(self.data_root, keys)
        data = super().load_data_list()
        self._metainfo['split'] = self.split
        self._metainfo['subset'] = self.subset
        return data
