"""The GFDS benchmark (paper Sec. 3, Table 1/2, Sec. 6.1.1), declared.

Every product of the benchmark is one :class:`~fdseg.benchmarks.product.
Product` of :data:`GFDS`: its folder and category folders as the official
GFDS code names them (so that a prepared ``Dataset/`` folder of the official
code works unchanged), readable display names, the mask convention, the
Table-1 image counts and where the images come from. Folds and the
in-domain held-out classes are declared below; everything else (splits,
the dataset, the Table-4 report, the count check) is derived from these.
Nothing here changes after import (tuples, frozen dataclasses, read-only
mappings); a 13th product is declared with
:func:`fdseg.benchmarks.register_product`.

On disk a product is ``<data_root>/<folder>/images/<category>/<stem>.<ext>``
with masks in ``<data_root>/<folder>/ground_truth/<category>/<stem>.png``.
DAGM is special: Table 1 counts it as one product with ten categories, but
on disk (and in the official code) it is ten folders ``Class1`` ..
``Class10`` with a single category ``bad`` each; such a product lists its
folders in ``parts``.

Splits (computed in :mod:`fdseg.benchmarks.splits`):

* Cross-domain folds (Table 2): :data:`FOLDS`; the training set of a fold is
  the other fold.
* In-domain (Sec. 6.1.1): per product one held-out test category
  (:data:`IN_DOMAIN_TEST_CLASS`), the product's other categories train; Kol
  and DAGM are excluded (one category per product). The paper does not say
  which category it held out: ours is the first category in the official
  order, declared here (the only place) and overridable (``held_out=`` of
  the dataset).
"""

from types import MappingProxyType
from typing import Mapping, Tuple

from .product import Product

_MVTEC_LICENCE = 'CC BY-NC-SA 4.0 (MVTec AD)'
_VISA_LICENCE = 'CC BY 4.0 (VisA)'
_RESEARCH_ONLY = 'research use only (no explicit licence)'

#: Table 1, in the order of the Table 4 columns. Category folders and their
#: order are the official GFDS code's (fewshot_defectloader.py ``foldall``).
GFDS: Tuple[Product, ...] = (
    Product(
        'Tile',
        folder='tile',
        categories=['crack', 'glue_strip', 'gray_stroke', 'oil', 'rough'],
        display_names=dict(
            crack='Crack',
            glue_strip='Glue',
            gray_stroke='Gray',
            oil='Oil',
            rough='Rough',
        ),
        counts=dict(crack=11, glue_strip=18, gray_stroke=16, oil=18, rough=15),
        source='MVTec AD "tile" (test split, defect images)',
        licence=_MVTEC_LICENCE,
        quirks=[
            'MVTec AD tile/crack has 17 images; Table 1 (and the Fold0 '
            'total of 1429) count 11. The paper does not say which were '
            'left out, so a full MVTec conversion warns here.'
        ],
        aliases=['tile'],
    ),
    Product(
        'Grid',
        folder='grid',
        categories=['bent', 'broken', 'glue', 'metal_contamination', 'thread'],
        display_names=dict(
            bent='Bent',
            broken='Broken',
            glue='Glue',
            metal_contamination='Metal',
            thread='Thread',
        ),
        counts=dict(bent=12, broken=12, glue=11, metal_contamination=11, thread=11),
        source='MVTec AD "grid" (test split, defect images)',
        licence=_MVTEC_LICENCE,
        aliases=['grid'],
    ),
    Product(
        'Steel',
        folder='Steel',
        categories=['Am', 'Ld', 'Sc'],
        display_names=dict(Am='Am', Ld='Ld', Sc='Sc'),
        counts=dict(Am=50, Ld=48, Sc=50),
        source='FSSD-12 (TGRNet, Bao et al. 2021): Steel_Am, Steel_Ld, Steel_Sc',
        licence=_RESEARCH_ONLY + '; archive password from the FSSD-12 authors',
        quirks=[
            'FSSD-12 ground truth marks defects with 255 only; other values '
            'are background (the converter keeps == 255).'
        ],
        aliases=['steel', 'FSSD-12'],
    ),
    Product(
        'Kol',
        folder='KolektorSDD',
        categories=['bad'],
        display='Kol',
        display_names=dict(bad='Crack'),
        counts=dict(bad=52),
        source='KolektorSDD (Tabernik et al. 2019): the 52 images with a '
        'non-empty label',
        licence='CC BY-NC-SA 4.0 (KolektorSDD)',
        quirks=['One category: excluded from the in-domain setting.'],
        aliases=['KolektorSDD', 'KSDD'],
    ),
    Product(
        'PSP',
        folder='PSP',
        categories=[f'class_{i}' for i in range(1, 8)],
        display='PSPs',
        display_names={f'class_{i}': f'class {i}' for i in range(1, 8)},
        total=149,
        source='PSP-DS (Yao et al. 2024), polycrystalline silicon panels',
        licence='academic research only (PSP-DS)',
        quirks=[
            'Table 1 names the seven classes Liquid(19), Poke(24), Mark(14), '
            'Water(25), Oil(16), Spot(35), Scratch(16) but neither the paper '
            'nor the official code maps them to class_1..class_7, so only '
            'the product total (149) is checked.'
        ],
        aliases=['PSPs', 'PSP-DS'],
    ),
    Product(
        'DAGM',
        categories=['bad'],
        parts=[f'Class{i}' for i in range(1, 11)],
        display_names={f'Class{i}': f'C{i}' for i in range(1, 11)},
        counts=dict(
            Class1=71,
            Class2=84,
            Class3=84,
            Class4=68,
            Class5=80,
            Class6=67,
            Class7=150,
            Class8=150,
            Class9=150,
            Class10=150,
        ),
        source='DAGM 2007 (Test split, defect images) with the fine labels of '
        'the GFDS repository (DAGM_finelabel.zip)',
        licence='DAGM 2007: free for research (see the DAGM/HCI page); fine '
        'labels: GFDS repository',
        quirks=[
            'Ten folders Class1..Class10 directly under data_root, each '
            'with one category "bad" (official layout); Table 4 reports them '
            'as one product with ten categories.',
            'Some raw fine labels (Class7) are RGBA PNGs; the converter '
            'writes single-channel 0/255 PNGs.',
            'One category per folder: excluded from the in-domain setting.',
        ],
        aliases=['dagm'],
    ),
    Product(
        'R_small',
        folder='Small',
        categories=['fins', 'pit', 'scratch'],
        display_names=dict(fins='Fins', pit='Pit', scratch='Scratch'),
        counts=dict(fins=15, pit=36, scratch=30),
        source='GFDS rubber rings (small rings), released in the GFDS layout',
        licence=_RESEARCH_ONLY + ' (GFDS authors)',
        aliases=['Small'],
    ),
    Product(
        'R_large',
        folder='Large',
        categories=['bubble', 'pit', 'pressure', 'wear'],
        display_names=dict(
            bubble='Bubble', pit='Pit', pressure='Pressure', wear='Wear'
        ),
        counts=dict(bubble=26, pit=33, pressure=19, wear=11),
        source='GFDS rubber rings (large rings), released in the GFDS layout',
        licence=_RESEARCH_ONLY + ' (GFDS authors)',
        aliases=['Large'],
    ),
    Product(
        'R_side',
        folder='Side',
        categories=['holes', 'boundary'],
        display_names=dict(holes='Hole', boundary='Wear (boundary)'),
        counts=dict(holes=16, boundary=11),
        source='GFDS rubber rings (side views), released in the GFDS layout',
        licence=_RESEARCH_ONLY + ' (GFDS authors)',
        quirks=['Table 1 calls the "boundary" folder "Wear".'],
        aliases=['Side'],
    ),
    Product(
        'MSD',
        folder='Phone',
        categories=['oil', 'scratch', 'stain'],
        display_names=dict(oil='Oil', scratch='Scratch', stain='Stain'),
        counts=dict(oil=400, scratch=400, stain=400),
        source='MSD mobile phone screen defects (Zhang et al. 2022)',
        licence=_RESEARCH_ONLY + ' (MSD, Peking University)',
        aliases=['Phone'],
    ),
    Product(
        'Capsules',
        folder='capsules',
        categories=['0', '1', '2', '3', '4'],
        display_names={
            '0': 'Bubble',
            '1': 'Discolor',
            '2': 'Scratch',
            '3': 'Leak',
            '4': 'Misshape',
        },
        counts={'0': 30, '1': 15, '2': 15, '3': 20, '4': 20},
        source='VisA "capsules" (anomaly images, split by mask value)',
        licence=_VISA_LICENCE,
        quirks=[
            'Category folder k holds the images whose VisA mask has value '
            'k+1 (VisA id2class: 1 Bubble, 2 Discolor, 3 Scratch, 4 Leak, '
            '5 Misshape); this reading of the official names matches the '
            'Table-1 counts.'
        ],
        aliases=['capsules'],
    ),
    Product(
        'Macaroni2',
        folder='macaroni2',
        categories=['0', '1', '2', '4', '5', '6'],
        display_names={
            '0': 'Break',
            '1': 'Color (similar)',
            '2': 'Color (different)',
            '4': 'Crack',
            '5': 'Scratch',
            '6': 'Other',
        },
        total=97,
        source='VisA "macaroni2" (anomaly images, split by mask value)',
        licence=_VISA_LICENCE,
        quirks=[
            'The official code uses folders 0,1,2,4,5,6 (no 3). Read as '
            'VisA value k+1 (id2class: 1 breakage, 2 similar colour spot, 3 '
            'different colour spot, 4 chip around edge, 5 cracks, 6 '
            'scratches, 7 other) this leaves out "chip around edge", while '
            'Table 1 lists Break(10), Color1(20), Color2(12), Scratch(15), '
            'Edge(25), Crack(15). The mapping is unverified: only the '
            'product total (97) is checked and the display names follow '
            'the k+1 reading.'
        ],
        aliases=['macaroni2'],
    ),
)

#: Cross-domain folds (Table 2). Training on one fold tests on the other.
FOLDS: Mapping[str, Tuple[str, ...]] = MappingProxyType(
    {
        'fold0': ('DAGM', 'R_large', 'R_side', 'R_small', 'Capsules', 'Tile'),
        'fold1': ('MSD', 'Grid', 'Steel', 'Kol', 'PSP', 'Macaroni2'),
    }
)

#: In-domain setting (Sec. 6.1.1): the held-out test category per product.
#: The paper does not name them; we hold out the first category in the
#: official order. Kol and DAGM are not evaluated in-domain.
IN_DOMAIN_TEST_CLASS: Mapping[str, str] = MappingProxyType(
    {
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
)
