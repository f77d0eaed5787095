"""The GFDS benchmark: declarations, splits, count check, Table-4 report, FPS.

Independent references: the official GFDS code's category keys, product
grouping and averaging weights (transcribed from main.py /
fewshot_defectloader.py), and the paper's Tables 1, 2 and 4.
"""

import json
import math
import os
import os.path as osp
import warnings

import numpy as np
import pytest
import torch

from fdseg import benchmarks as G
from fdseg.datasets.gfds_counts import check_counts
from fdseg.datasets.gfds_dataset import GFDSDataset
from fdseg.evaluation import fps as F
from fdseg.evaluation import gfds_report as R
from fdseg.evaluation import gfds_table4 as T
from tests.conftest import REPO, SHARED_DATA


def write_product(root, product, categories, n=4, size=(48, 40), mode='binary', seed=0):
    """``n`` images per category with a rectangle defect each (any number
    of categories). Binary masks are anti-aliased 0..255 (fg = > 30 after
    resizing); value-indexed masks hold 1, 2, ... in sorted category order.
    """
    import cv2

    rng = np.random.default_rng(seed)
    w, h = size
    for ci, cat in enumerate(sorted(categories)):
        idir = osp.join(root, product, 'images', cat)
        gdir = osp.join(root, product, 'ground_truth', cat)
        os.makedirs(idir, exist_ok=True)
        os.makedirs(gdir, exist_ok=True)
        for i in range(n):
            img = rng.integers(90, 140, (h, w, 3)).astype(np.uint8)
            m = np.zeros((h, w), np.uint8)
            y, x = rng.integers(1, h - h // 2), rng.integers(1, w - w // 2)
            m[y : y + h // 2, x : x + w // 2] = 255
            img[m > 0] = 20 + (47 * ci) % 60
            if mode == 'binary':
                m = cv2.GaussianBlur(m, (3, 3), 0)
            else:
                m = np.where(m > 0, ci + 1, 0).astype(np.uint8)
            cv2.imwrite(osp.join(idir, f'{cat}_{i:03d}.png'), img)
            cv2.imwrite(osp.join(gdir, f'{cat}_{i:03d}.png'), m)


# fewshot_defectloader.py ``foldall`` (official key order).
OFFICIAL_KEYS = [
    'tile_crack',
    'tile_glue_strip',
    'tile_gray_stroke',
    'tile_oil',
    'tile_rough',
    'grid_bent',
    'grid_broken',
    'grid_glue',
    'grid_metal_contamination',
    'grid_thread',
    'Steel_Am',
    'Steel_Ld',
    'Steel_Sc',
    'KolektorSDD_bad',
    'PSP_class_1',
    'PSP_class_2',
    'PSP_class_3',
    'PSP_class_4',
    'PSP_class_5',
    'PSP_class_6',
    'PSP_class_7',
    'Class1_bad',
    'Class2_bad',
    'Class3_bad',
    'Class4_bad',
    'Class5_bad',
    'Class6_bad',
    'Class7_bad',
    'Class8_bad',
    'Class9_bad',
    'Class10_bad',
    'Small_fins',
    'Small_pit',
    'Small_scratch',
    'Side_holes',
    'Side_boundary',
    'Large_bubble',
    'Large_pit',
    'Large_pressure',
    'Large_wear',
    'Phone_oil',
    'Phone_scratch',
    'Phone_stain',
    'capsules_0',
    'capsules_1',
    'capsules_2',
    'capsules_3',
    'capsules_4',
    'macaroni2_0',
    'macaroni2_1',
    'macaroni2_2',
    'macaroni2_4',
    'macaroni2_5',
    'macaroni2_6',
]
# main.py: all_list groups in Table-4 order and the mIoU weights
# [5, 5, 3, 1, 7, 10, 3, 4, 2, 3, 5, 6] / 54 (its list has Side before
# Large; Table 4 has R_large before R_side).
OFFICIAL_WEIGHTS = dict(
    Tile=5,
    Grid=5,
    Steel=3,
    Kol=1,
    PSP=7,
    DAGM=10,
    R_small=3,
    R_large=4,
    R_side=2,
    MSD=3,
    Capsules=5,
    Macaroni2=6,
)
TABLE1_TOTALS = dict(
    Tile=78,
    Grid=57,
    Steel=148,
    Kol=52,
    PSP=149,
    DAGM=1054,
    R_small=81,
    R_large=89,
    R_side=27,
    MSD=1200,
    Capsules=100,
    Macaroni2=97,
)
TABLE4_ORDER = [
    'Tile',
    'Grid',
    'Steel',
    'Kol',
    'PSP',
    'DAGM',
    'R_small',
    'R_large',
    'R_side',
    'MSD',
    'Capsules',
    'Macaroni2',
]


def write_lookalike(root, n=2, size=(24, 20), products=None):
    """Every declared product in its layout and mask convention, n images
    per category (DAGM as ten Class<k>/bad folders)."""
    for key in products or G.gfds_order():
        e = G.PRODUCTS[key]
        mode = 'index' if e.mask_mode == 'index' else 'binary'
        if e.parts:
            for i, part in enumerate(e.parts):
                write_product(
                    root, part, e.categories, n=n, size=size, mode=mode, seed=i
                )
        else:
            write_product(
                root, e.folder, e.categories, n=n, size=size, mode=mode, seed=len(key)
            )
    return root


@pytest.fixture(scope='module')
def lookalike(tmp_path_factory):
    return write_lookalike(str(tmp_path_factory.mktemp('gfds_lookalike')))


def quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return fn(*a, **kw)


# ----------------------------------------------------------------------
# Declarations and splits
# ----------------------------------------------------------------------
def test_products_match_official_code_and_table1():
    assert G.gfds_order() == TABLE4_ORDER
    keys = [
        G.official_key(p, c) for p in G.gfds_order() for c in G.benchmark_categories(p)
    ]
    # Same 54 categories as the official code (Table-4 order = official
    # order except Large/Side, which the official list also swaps).
    assert sorted(keys) == sorted(OFFICIAL_KEYS) and len(keys) == 54
    for p in G.gfds_order():
        assert len(G.benchmark_categories(p)) == OFFICIAL_WEIGHTS[p]
        assert G.PRODUCTS[p].total == TABLE1_TOTALS[p]
        e = G.PRODUCTS[p]
        assert e.mask_mode == 'binary' and e.mask_threshold == 30
        assert e.source and e.licence
    assert G.PRODUCTS['DAGM'].counts == {
        f'Class{i}': n
        for i, n in enumerate([71, 84, 84, 68, 80, 67, 150, 150, 150, 150], 1)
    }


def test_folds_match_table2():
    sizes = {}
    for fold in ('fold0', 'fold1'):
        prods = G.fold_products(fold)
        sizes[fold] = (
            sum(len(G.benchmark_categories(p)) for p in prods),
            sum(G.PRODUCTS[p].total for p in prods),
        )
    assert sizes == {'fold0': (29, 1429), 'fold1': (25, 1703)}
    assert set(G.fold_products(0, 'train')) == set(G.FOLDS['fold1'])
    assert set(G.fold_products('fold1', 'train')) == set(G.FOLDS['fold0'])
    assert not set(G.FOLDS['fold0']) & set(G.FOLDS['fold1'])
    with pytest.raises(KeyError, match='unknown fold'):
        G.fold_products(2)


def test_in_domain_split_is_explicit_and_partitions_products():
    from mmengine.config import Config

    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets/gfds_in-domain.py'))
    # Declared once (fdseg/benchmarks/gfds.py); the config does not repeat
    # it, so the dataset falls back to the declaration.
    assert 'held_out' not in cfg.test_dataloader.dataset
    assert 'held_out' not in cfg.train_dataset
    assert cfg.test_dataloader.dataset.split == 'in-domain'
    assert set(G.IN_DOMAIN_TEST_CLASS) == set(TABLE4_ORDER) - {'Kol', 'DAGM'}
    for p in G.IN_DOMAIN_TEST_CLASS:
        test = G.in_domain_split(p, 'test')
        train = G.in_domain_split(p, 'train')
        assert len(test) == 1 and test[0] not in train
        assert sorted(test + train) == sorted(G.benchmark_categories(p))
    assert G.in_domain_split('tile', 'test', held_out={'Tile': 'oil'}) == ['oil']
    for p in ('Kol', 'DAGM'):
        with pytest.raises(KeyError, match='single category'):
            G.in_domain_split(p)
    with pytest.raises(KeyError, match='not a category'):
        G.in_domain_split('Tile', held_out=dict(Tile='nope'))


def test_fold_configs_select_folds():
    from mmengine.config import Config

    for fold, other in (('fold0', 'fold1'), ('fold1', 'fold0')):
        cfg = Config.fromfile(osp.join(REPO, f'configs/_base_/datasets/gfds_{fold}.py'))
        assert cfg.test_dataloader.dataset.split == fold
        assert cfg.test_dataloader.dataset.subset == 'test'
        assert cfg.train_dataset.subset == 'train'
        specs = G.split_products(cfg.train_dataset.split, 'train')
        names = {s['name'] for s in specs}
        want = G.gfds_products(G.FOLDS[other])
        assert names == {s['name'] for s in want}
        assert cfg.test_evaluator.type == 'GFDSBenchmarkMetric'


def test_aliases_and_errors():
    assert G.resolve_product('Phone') == 'MSD'
    assert G.resolve_product('kolektorsdd') == 'Kol'
    assert G.resolve_product('Small') == 'R_small'
    with pytest.raises(KeyError, match='unknown product'):
        G.resolve_product('carpet')
    with pytest.raises(ValueError, match='no training subset'):
        G.split_products('all', 'train')
    with pytest.raises(ValueError, match='unknown split'):
        G.split_products('fold2')
    with pytest.raises(KeyError, match='not in split'):
        G.split_products('fold0', products=['Steel'])


# ----------------------------------------------------------------------
# Datasets over a look-alike of every product
# ----------------------------------------------------------------------
def build(root, **kw):
    from fdseg.datasets.transforms import episode_pipeline

    kw.setdefault('pipeline', episode_pipeline(16))
    kw.setdefault('check_counts', False)
    return GFDSDataset(data_root=root, **kw)


def test_every_product_loads_with_its_convention(lookalike):
    ds = build(lookalike)
    assert len(ds) == 54 * 2
    cats = ds.categories
    assert len(cats) == 54
    assert 'Class7/bad' in cats and 'Tile/glue_strip' in cats
    # Every episode packs, with a non-empty query mask (a defect each).
    for i in range(0, len(ds), 7):
        out = ds[i]
        assert out['data_samples'].gt_sem_seg.data.sum() > 0
    # Splits partition the benchmark.
    f0, f1 = build(lookalike, split='fold0'), build(lookalike, split='fold1')
    assert len(f0) == 29 * 2 and len(f1) == 25 * 2

    def q(d):
        return {d.get_data_info(i)['img_path'] for i in range(len(d))}

    assert q(f0) | q(f1) == q(ds) and not q(f0) & q(f1)
    # Supports do not depend on the split (pure function of the query).
    sup = {
        ds.get_data_info(i)['img_path']: ds.get_data_info(i)['support_paths']
        for i in range(len(ds))
    }
    for i in range(len(f0)):
        info = f0.get_data_info(i)
        assert sup[info['img_path']] == info['support_paths']
    tr = build(lookalike, split='fold0', subset='train')
    assert q(tr) == q(f1)
    te = build(lookalike, split='in-domain')
    trn = build(lookalike, split='in-domain', subset='train')
    assert len(te) == 10 * 2
    assert len(trn) == (54 - 10 - 11) * 2
    assert not q(te) & q(trn)
    one = build(
        lookalike, split='in-domain', products=['Tile'], held_out=dict(Tile='oil')
    )
    assert {one.get_data_info(i)['category'] for i in range(len(one))} == {'oil'}


def test_index_and_threshold_conventions(tmp_path, real_defects):
    """neu_seg-like value masks and a 127 threshold reach the pipeline."""
    root = str(tmp_path)
    G.declare_products(real_defects)
    write_lookalike(root, n=3, products=['neu_seg', 'magnetic_tile'])
    ds = build(
        root,
        split='all',
        benchmark='real_defects',
        declare=real_defects,
        products=['neu_seg', 'magnetic_tile'],
    )
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    neu = [i for i in infos if i['product'] == 'neu_seg']
    assert {i['mask_mode'] for i in neu} == {'index'}
    assert {(i['category'], i['query_mask_value']) for i in neu} == {
        ('inclusion', 1),
        ('patches', 2),
        ('scratches', 3),
    }
    mag = [i for i in infos if i['product'] == 'magnetic_tile']
    assert {i['mask_threshold'] for i in mag} == {127}


def test_check_counts_names_product_and_category(tmp_path):
    root = str(tmp_path)
    e = G.PRODUCTS['R_side']
    write_product(root, e.folder, ['holes'], n=16, size=(8, 8))
    write_product(root, e.folder, ['boundary'], n=11, size=(8, 8))
    assert check_counts(root, ['R_side'], warn=False) == []
    write_product(root, 'Small', ['fins', 'pit', 'scratch', 'dust'], n=2, size=(8, 8))
    with pytest.warns(
        UserWarning,
        match=r'R_small/fins \(Fins\): 2 images, '
        r'Table 1 says 15',
    ):
        issues = check_counts(root, ['R_small', 'Kol'])
    msgs = ' | '.join(i['message'] for i in issues)
    assert 'R_small/dust' in msgs and 'not a declared category' in msgs
    assert 'Kol/bad (Crack)' in msgs and 'missing' in msgs
    # PSP: per-class counts unknown -> the product total is checked.
    write_product(root, 'PSP', [f'class_{i}' for i in range(1, 8)], n=2, size=(8, 8))
    issues = check_counts(root, ['PSP'], warn=False)
    assert [
        (i['product'], i['category'], i['expected'], i['found']) for i in issues
    ] == [('PSP', None, 149, 14)]
    # The dataset runs the check when it loads.
    with pytest.warns(UserWarning, match='R_small/pit'):
        build(root, split='fold0', products=['R_small'], check_counts=True)


def test_thirteenth_product_is_one_entry(tmp_path):
    root = str(tmp_path)
    write_product(root, 'wood', ['hole', 'scratch'], n=2, size=(16, 16))
    G.register_product(
        'Wood',
        folder='wood',
        categories=['hole', 'scratch'],
        counts=dict(hole=2, scratch=2),
        source='test',
        licence='test',
    )
    try:
        assert G.gfds_order()[-1] == 'Wood'
        ds = build(root, products=['Wood'])
        assert len(ds) == 4
        assert check_counts(root, ['Wood'], warn=False) == []
        row = T.table4_row(
            {
                'Wood/mIoU': 50.0,
                'Wood/FB-IoU(gfds)': 70.0,
                'Wood/hole/IoU': 40.0,
                'Wood/scratch/IoU': 60.0,
                'Tile/mIoU': 10.0,
                'Tile/FB-IoU(gfds)': 50.0,
            }
        )
        assert row['order'] == ['Tile', 'Wood']
        # declared weights: Tile 5 categories, Wood 2
        assert row['average']['mIoU'] == pytest.approx((5 * 10 + 2 * 50) / 7)
    finally:
        G.unregister_product('Wood')
    assert 'Wood' not in G.gfds_order()


# ----------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------
def test_official_averaging_reproduces_paper_table4():
    """Our average of the printed cells vs the printed Average column."""
    rows = T.paper_rows()
    for name in (
        'SSP*',
        'FM-l',
        'FM-s',
        'SAM2-s(1024)',
        'SAM2-t(1024)',
        'PATNet',
        'Matcher',
    ):
        row = rows[name]
        cells = [
            (row['products'][p]['mIoU'], row['products'][p]['FB_IoU'])
            for p in TABLE4_ORDER
        ]
        # Independent transcription of main.py's formula.
        w = np.array([OFFICIAL_WEIGHTS[p] for p in TABLE4_ORDER], float)
        miou = float((np.array([c[0] for c in cells]) * w).sum() / 54)
        fb = float(np.mean([c[1] for c in cells]))
        ours = T.table4_row(
            {
                **{f'{p}/mIoU': m for p, (m, _) in zip(TABLE4_ORDER, cells)},
                **{f'{p}/FB-IoU(gfds)': f for p, (_, f) in zip(TABLE4_ORDER, cells)},
            }
        )
        assert ours['average']['mIoU'] == pytest.approx(miou)
        assert ours['average']['FB_IoU'] == pytest.approx(fb)
        # The paper averaged unrounded values: agree to rounding.
        assert abs(miou - row['average']['mIoU']) <= 0.11, name
        assert abs(fb - row['average']['FB_IoU']) <= 0.11, name


def test_row_from_unmerged_dagm_and_aliases():
    m = {
        'tile/mIoU': 60.0,
        'tile/FB-IoU(gfds)': 80.0,
        'tile/FB-IoU': 81.0,
        'tile/crack/IoU': 60.0,
    }
    for k in range(1, 11):
        m[f'Class{k}/mIoU'] = float(k)
        m[f'Class{k}/FB-IoU(gfds)'] = 50.0 + k
        m[f'Class{k}/bad/IoU'] = float(k)
    with pytest.warns(UserWarning, match='approximated'):
        row = T.table4_row(m)
    assert row['order'] == ['Tile', 'DAGM']
    assert row['products']['DAGM']['mIoU'] == pytest.approx(5.5)
    assert row['products']['DAGM']['categories']['Class3'] == 3.0
    assert row['products']['Tile']['FB_IoU'] == 80.0
    assert T.table4_row(m, fbiou='paper')['products']['Tile']['FB_IoU'] == 81
    # Official weights: Tile 5, DAGM 10.
    assert row['average']['mIoU'] == pytest.approx((5 * 60 + 10 * 5.5) / 15)
    evaluated = T.table4_row(m, weights='evaluated')
    assert evaluated['average']['mIoU'] == pytest.approx((1 * 60 + 10 * 5.5) / 11)


def test_merge_rows_first_wins_and_fps_kept():
    a = T.table4_row({'Tile/mIoU': 10.0, 'Tile/FB-IoU(gfds)': 50.0})
    b = T.table4_row(
        {
            'Tile/mIoU': 99.0,
            'Tile/FB-IoU(gfds)': 99.0,
            'Kol/mIoU': 20.0,
            'Kol/FB-IoU(gfds)': 60.0,
        }
    )
    b['fps'] = dict(fps=12.0, device='x', dtype='float32')
    m = T.merge_rows([a, b])
    assert m['order'] == ['Tile', 'Kol']
    assert m['products']['Tile']['mIoU'] == 10.0 and m['fps']['fps'] == 12.0
    assert m['average']['mIoU'] == pytest.approx((5 * 10 + 20) / 6)
    line = R.format_row('x', m)
    assert line == 'x | 10.0, 50.0 | 20.0, 60.0 | 11.7, 55.0 | 12.0'


# ----------------------------------------------------------------------
# End to end: tools/test.py -> Table-4 row -> gfds_table.py
# ----------------------------------------------------------------------
def _config(tmp, root, split='all', name='cfg'):
    path = osp.join(tmp, f'{name}.py')
    base = osp.join(REPO, 'configs', '_base_')
    with open(path, 'w') as f:
        f.write(f"""
_base_ = [{osp.join(base, 'models/fm_filterbank.py')!r},
          {osp.join(base, 'datasets/gfds_all.py')!r},
          {osp.join(base, 'default_runtime.py')!r},
          {osp.join(base, 'schedules/schedule_test_only.py')!r}]
test_dataloader = dict(num_workers=0, dataset=dict(
    data_root={root!r}, split={split!r}, check_counts=False,
    pipeline=[dict(type='LoadEpisode'),
              dict(type='ResizeEpisode', scale=(32, 32)),
              dict(type='BinarizeEpisodeMasks'),
              dict(type='PackEpisodeInputs')]))
# A lighter filter bank keeps the three runs fast.
model = dict(backbone=dict(sigmas=(1.0, ), orientations=2,
                           wavelengths=(4.0, )))
test_evaluator = dict(method_name='look-alike', save_predictions=False)
custom_hooks = [dict(type='GFDSBenchmarkHook', num_warmup=1, num_iters=2)]
default_hooks = dict(logger=dict(interval=1000))
""")
    return path


def _tool(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', *name.split('/')) + '.py'
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def test_runs(lookalike, tmp_path_factory):
    """tools/test.py on the whole look-alike benchmark and on both folds."""
    tmp = str(tmp_path_factory.mktemp('runs'))
    test_py = _tool('test')
    outs = {}
    # Tiny tensors: one thread avoids oversubscription on busy runners.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for split in ('all', 'fold0', 'fold1'):
            out = osp.join(tmp, split)
            metrics = test_py.main(
                [
                    _config(tmp, lookalike, split, split),
                    '--out',
                    out,
                    '--work-dir',
                    osp.join(tmp, 'wd_' + split),
                ]
            )
            outs[split] = (out, metrics, 1)
    finally:
        torch.set_num_threads(threads)
    return tmp, outs


def test_tools_test_prints_and_writes_table4_row(test_runs):
    _, outs = test_runs
    out, metrics, threads = outs['all']
    assert set(
        k.split('/')[1] for k in metrics if k.startswith('bench/') and k.count('/') == 2
    ) == set(TABLE4_ORDER)
    assert 'bench/mIoU' in metrics and metrics['bench/FPS'] > 0
    # DAGM is one product of ten categories.
    assert 'DAGM/Class7/IoU' in metrics and 'Class7/bad/IoU' not in metrics
    with open(osp.join(out, 'gfds_report.json')) as f:
        rep = json.load(f)
    row = rep['table4']
    assert row['order'] == TABLE4_ORDER
    assert row['average']['num_categories'] == 54
    assert row['average']['num_products'] == 12
    assert len(row['products']['DAGM']['categories']) == 10
    fps = row['fps']
    assert fps['support_excluded'] and fps['batch_size'] == 1
    assert fps['threads'] == threads
    assert fps['dtype'] == 'float32' and 'CPU' in fps['device']
    # The row agrees with the metric's own per-category numbers.
    cats = [
        metrics[f'{p}/{c}/IoU']
        for p in TABLE4_ORDER
        for c in row['products'][p]['categories']
    ]
    assert row['average']['mIoU'] == pytest.approx(float(np.nanmean(cats)), abs=0.01)
    assert metrics['bench/mIoU'] == pytest.approx(metrics['mIoU'], abs=0.01)


def test_fold_runs_merge_into_the_full_benchmark(test_runs):
    _, outs = test_runs
    full = R.read_row(osp.join(outs['all'][0], 'gfds_report.json'))
    f0 = R.read_row(osp.join(outs['fold0'][0], 'gfds_report.json'))
    f1 = R.read_row(osp.join(outs['fold1'][0], 'gfds_report.json'))
    assert f0['order'] == [p for p in TABLE4_ORDER if p in G.FOLDS['fold0']]
    merged = T.merge_rows([f0, f1])
    assert merged['order'] == TABLE4_ORDER
    for p in TABLE4_ORDER:
        for key in ('mIoU', 'FB_IoU'):
            a, b = merged['products'][p][key], full['products'][p][key]
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)
    assert merged['average']['mIoU'] == pytest.approx(full['average']['mIoU'])


def test_gfds_table_from_test_outputs(test_runs, tmp_path):
    tmp, outs = test_runs
    fps_json = osp.join(str(tmp_path), 'fps.json')
    with open(fps_json, 'w') as f:
        json.dump(dict(fps=123.0, device='CPU (test)', dtype='float32', threads=1), f)
    table = _tool('analysis_tools/gfds_table')
    rows, files = table.main(
        [
            '--method',
            'folds',
            outs['fold0'][0],
            outs['fold1'][0],
            fps_json,
            '--method',
            'all',
            outs['all'][0],
            '--paper',
            'FM-s',
            '--out-dir',
            str(tmp_path / 't4'),
        ]
    )
    assert rows['folds']['fps']['fps'] == 123.0
    md = open(files['markdown']).read()
    assert '| Method | Tile | Grid | Steel | Kol | PSPs | DAGM |' in md
    assert '| FM-s (paper) | 62.3, 79.2 |' in md
    csv_rows = open(files['csv']).read().splitlines()
    assert csv_rows[0].startswith('method,Tile mIoU,Tile FB-IoU')
    assert len(csv_rows) == 4
    for k in ('miou_vs_fps', 'per_category'):
        with open(files[k], 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_benchmark_fps_tool(lookalike, tmp_path):
    cfg = _config(str(tmp_path), lookalike, 'fold0')
    out = str(tmp_path / 'fps.json')
    threads = torch.get_num_threads()
    try:
        res = _tool('analysis_tools/benchmark_fps').main(
            [
                cfg,
                '--device',
                'cpu',
                '--warmup',
                '1',
                '--iters',
                '3',
                '--episodes',
                '2',
                '--threads',
                '1',
                '--out',
                out,
            ]
        )
    finally:
        torch.set_num_threads(threads)
    assert res['threads'] == 1 and res['num_iters'] == 3
    assert res['fps'] > 0 and res['support_excluded']
    assert T.load_result(out)['kind'] == 'fps'


@pytest.mark.slow
def test_benchmark_fps_fast_conv_as_the_user_runs_it(lookalike, tmp_path):
    """Issue 14's benchmark command (``--official --fast-conv``) in a
    subprocess on FM-s with a random official-format ``model_small.pth`` in
    the cache: the tuned query against the official episode with the same
    loaded weights gives the same masks; with the cache empty it stops
    naming the file, without a traceback and without writing the JSON."""
    from fdseg.utils.checkpoints import CHECKPOINTS
    from tests.subprocess_utils import run_pool
    from tests.test_models.test_backbones import reference_student

    base = _config(str(tmp_path), lookalike, 'fold0')
    cfg = tmp_path / 'fm_s.py'
    cfg.write_text(
        f'_base_ = [{base!r}]\n'
        "model = dict(backbone=dict(_delete_=True, type='PDNStudent', "
        "size='small', out_channels=384, "
        "init_cfg=dict(type='Pretrained', checkpoint='gfds_fm_small')))\n"
    )
    fname = CHECKPOINTS['gfds_fm_small']['filename']
    full, empty = tmp_path / 'cache', tmp_path / 'empty'
    full.mkdir()
    empty.mkdir()
    torch.manual_seed(1)
    torch.save(reference_student(128, False).state_dict(), full / fname)
    tool = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_fps.py')
    args = [tool, str(cfg), '--device', 'cpu', '--threads', '1', '--warmup', '0']
    args += ['--iters', '2', '--episodes', '2', '--official', '--fast-conv']
    jobs = {
        name: (args + ['--out', str(tmp_path / f'{name}.json')], str(tmp_path), env)
        for name, env in (
            ('full', {'FDSEG_CHECKPOINT_DIR': str(full)}),
            ('empty', {'FDSEG_CHECKPOINT_DIR': str(empty)}),
        )
    }
    runs = run_pool(jobs, width=2, timeout=300)
    code, log = runs['full']
    assert code == 0, log[-3000:]
    assert f'loaded 8 tensors from gfds_fm_small ({full / fname})' in log
    assert 'masks equal on 100.000% of pixels (2 queries)' in log
    res = json.loads((tmp_path / 'full.json').read_text())
    assert res['mask_agreement'] == 1.0 and res['num_queries'] == 2
    assert res['official_ms_per_episode'] > 0 and res['fdseg_ms_per_query'] > 0
    assert res['channels_last'] is True
    assert [c['name'] for c in res['fast_conv']] == ['pdn.0', 'pdn.3', 'pdn.6', 'pdn.8']
    assert all(c['choice'] in c['ms'] for c in res['fast_conv'])
    # every 4x4 / 3x3 convolution had Winograd checked against direct
    assert all(c['rel_error']['winograd-4'] < 1e-3 for c in res['fast_conv'])
    code, log = runs['empty']
    assert code == 1, log[-3000:]
    assert str(empty / fname) in log and 'Traceback' not in log
    assert not (tmp_path / 'empty.json').exists()


def test_measure_fps_rejects_batches_of_two(lookalike):
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate

    from fdseg.apis.inference import init_model

    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/models/fm_filterbank.py'))
    cfg.default_scope = 'fdseg'
    model = init_model(cfg)
    ds = build(lookalike, split='fold0')
    with pytest.raises(ValueError, match='batch size 1'):
        F.measure_fps(model, [pseudo_collate([ds[0], ds[1]])], 0, 1)
    res = F.measure_fps(model, [pseudo_collate([ds[0]])], 0, 2, pin_support=False)
    assert res['support_excluded'] is False


# ----------------------------------------------------------------------
# Real data (../shared/data), skipped when absent
# ----------------------------------------------------------------------
@pytest.mark.skipif(
    not osp.isdir(SHARED_DATA), reason='../shared/data is not available'
)
def test_real_defects_declared_and_loaded(real_defects):
    from mmengine.config import Config

    cfg = Config.fromfile(
        osp.join(
            REPO, 'configs/quickstart/fm_filterbank_no-train_real-defects-all-1shot.py'
        )
    )
    assert cfg.test_dataloader.dataset.benchmark == 'real_defects'
    # Declared by the config, not by the package.
    assert not hasattr(G, 'REAL_DEFECTS')
    assert not {'magnetic_tile', 'neu_seg', 'crackforest'} & {p.key for p in G.GFDS}
    keys = G.declare_products(cfg.test_dataloader.dataset.declare)
    assert keys == ['magnetic_tile', 'neu_seg', 'crackforest']
    assert G.BENCHMARKS['real_defects'] == keys
    assert check_counts(SHARED_DATA, keys, warn=False) == []
    ds = build(
        SHARED_DATA, benchmark='real_defects', declare=real_defects, check_counts=True
    )
    assert len(ds) == 392 + 450 + 118
    by_product = {}
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        by_product.setdefault(info['product'], i)
    for product, i in by_product.items():
        s = ds[i]['data_samples']
        assert s.gt_sem_seg.data.max() <= 1
        assert s.support_masks.max() <= 1


def test_config_declared_products(real_defects):
    """A config's ``declare=`` registers once, names and orders the report."""
    assert 'magnetic_tile' not in {p.key for p in G.GFDS}  # nor the package
    keys = G.declare_products(real_defects)
    assert G.declare_products(real_defects) == keys  # same again: a no-op
    assert G.BENCHMARKS['real_defects'] == ['magnetic_tile', 'neu_seg', 'crackforest']
    assert G.PRODUCTS['magnetic_tile'].counts['break'] == 85
    with pytest.raises(KeyError, match='declared differently'):
        G.declare_products([dict(real_defects[2], display='other')])
    metrics = {f'{k}/mIoU': 10.0 * (i + 1) for i, k in enumerate(reversed(keys))}
    metrics.update({f'{k}/FB-IoU(gfds)': 50.0 for k in keys})
    row = T.table4_row(metrics)
    assert row['order'] == keys
    assert (
        R.format_header(row)
        == 'Method | MagTile | NEU-Seg | CrackForest | Average | FPS'
    )
    # gfds_table.py --config registers the same declarations.
    table = _tool('analysis_tools/gfds_table')
    cfg = osp.join(
        REPO, 'configs/quickstart/fm_filterbank_no-train_real-defects-all-1shot.py'
    )
    assert table.declare_from_configs([cfg]) == keys
