"""The real defect trio of ``../shared/data`` (development data, not GFDS).

Magnetic tile, NEU-Seg and CrackForest as products of a second benchmark,
``'real_defects'`` (``configs/_base_/datasets/real_defects.py``), with
their mask conventions. They exist for the development data only; they are
kept apart from the GFDS declaration (:mod:`fdseg.benchmarks.gfds`).
"""

from typing import Tuple

from .product import Product

_RESEARCH_ONLY = 'research use only (no explicit licence)'

REAL_DEFECTS: Tuple[Product, ...] = (
    Product(
        'magnetic_tile',
        categories=['blowhole', 'break', 'crack', 'fray', 'uneven'],
        display='MagTile',
        counts={'blowhole': 115, 'break': 85, 'crack': 57, 'fray': 32, 'uneven': 103},
        mask_threshold=127,
        source='Magnetic-tile-defect-datasets (Huang et al., The Visual Computer 2020)',
        licence=_RESEARCH_ONLY,
        quirks=[
            'Anti-aliased 0..255 masks: foreground is mask > 127.',
            '4 "uneven" masks are empty.',
            '40 defect-free images in "good" (defect-free queries with '
            'include_good=True).',
        ],
        benchmark='real_defects',
    ),
    Product(
        'neu_seg',
        categories=['inclusion', 'patches', 'scratches'],
        display='NEU-Seg',
        counts=dict(inclusion=150, patches=150, scratches=150),
        mask_mode='index',
        index_map=dict(inclusion=1, patches=2, scratches=3),
        source='NEU-Seg (DHW-Master/NEU_Seg), 150 random images per class',
        licence=_RESEARCH_ONLY,
        quirks=[
            'Value-indexed masks (1 inclusion, 2 patches, 3 scratches); an '
            'image with several classes sits in several category folders.'
        ],
        benchmark='real_defects',
    ),
    Product(
        'crackforest',
        categories=['crack'],
        display='CrackForest',
        counts=dict(crack=118),
        source='CrackForest (Shi et al., IEEE T-ITS 2016)',
        licence='non-commercial research only (CrackForest)',
        quirks=[
            'Masks converted from the original .mat (Segmentation >= 2) to '
            '0/255 PNG; thin cracks, so the GFDS threshold (> 30 after '
            'resizing) is kept.'
        ],
        benchmark='real_defects',
    ),
)
