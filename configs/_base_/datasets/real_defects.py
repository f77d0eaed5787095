# Three small real defect datasets of ../shared/data (magnetic tile,
# NEU-Seg, CrackForest; see docs/benchmark.md). They are development data,
# not GFDS, so they are declared here (not in fdseg/benchmarks) as the
# products of a benchmark 'real_defects', with their mask conventions:
#   magnetic_tile  anti-aliased 0..255 masks, fg = mask > 127
#   neu_seg        value-indexed masks (1 inclusion, 2 patches, 3 scratches)
#   crackforest    0/255 masks (thin cracks; the GFDS threshold, > 30)
# GFDSDataset registers the declarations (fdseg.benchmarks.register_product)
# when it is built, so the Table-4 report knows their names, column order
# and category counts. Same protocol as GFDS: 1-way 1-shot, every image the
# query once, 256x256.
_base_ = ['./gfds_all.py']

real_defects_products = [
    dict(
        key='magnetic_tile',
        categories=['blowhole', 'break', 'crack', 'fray', 'uneven'],
        display='MagTile',
        # (category, count) pairs: a dict with the key 'break' (a Python
        # keyword) breaks mmengine's dump of the config.
        counts=[
            ['blowhole', 115],
            ['break', 85],
            ['crack', 57],
            ['fray', 32],
            ['uneven', 103],
        ],
        mask_threshold=127,
        source='Magnetic-tile-defect-datasets (Huang et al., The Visual Computer 2020)',
        licence='research use only (no explicit licence)',
        quirks=[
            'Anti-aliased 0..255 masks: foreground is mask > 127.',
            '4 "uneven" masks are empty.',
            '40 defect-free images in "good" (defect-free queries with '
            'include_good=True).',
        ],
        benchmark='real_defects',
    ),
    dict(
        key='neu_seg',
        categories=['inclusion', 'patches', 'scratches'],
        display='NEU-Seg',
        counts=dict(inclusion=150, patches=150, scratches=150),
        mask_mode='index',
        index_map=dict(inclusion=1, patches=2, scratches=3),
        source='NEU-Seg (DHW-Master/NEU_Seg), 150 random images per class',
        licence='research use only (no explicit licence)',
        quirks=[
            'Value-indexed masks (1 inclusion, 2 patches, 3 scratches); an '
            'image with several classes sits in several category folders.'
        ],
        benchmark='real_defects',
    ),
    dict(
        key='crackforest',
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
]

data_root = '../shared/data'
test_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        split='all',
        benchmark='real_defects',
        declare=real_defects_products,
    )
)
