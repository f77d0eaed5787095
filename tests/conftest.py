"""Shared fixtures: tiny GFDS-layout folders generated on the fly."""

import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

os.environ.setdefault('YOLO_OFFLINE', '1')

if os.environ.get('PYTEST_XDIST_WORKER'):
    # Two workers share the cores: one torch thread each (two would spin
    # waiting for a core the other worker holds).
    import torch

    torch.set_num_threads(1)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED_DATA = osp.join(osp.dirname(REPO), 'shared', 'data')


@pytest.fixture(autouse=True)
def _fdseg_scope():
    init_default_scope('fdseg')
    import fdseg.utils

    fdseg.utils.register_all_modules(init_default_scope=False)


def write_product(
    root,
    product,
    categories,
    n=4,
    size=(48, 40),
    mode='binary',
    good=0,
    seed=0,
    ext='.png',
    gray=False,
):
    """Write ``n`` images per category with a rectangle defect each.

    Binary masks are anti-aliased (a blurred edge); value-indexed masks hold
    the category index (1, 2, ...) in sorted order.
    """
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
            y, x = rng.integers(2, h - 12), rng.integers(2, w - 12)
            m[y : y + 8, x : x + 10] = 255
            img[m > 0] = 30 + 60 * ci
            if mode == 'binary':
                m = cv2.GaussianBlur(m, (3, 3), 0)
            else:
                m = np.where(m > 0, ci + 1, 0).astype(np.uint8)
            if gray:
                img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            cv2.imwrite(osp.join(idir, f'{cat}_{i:03d}{ext}'), img)
            cv2.imwrite(osp.join(gdir, f'{cat}_{i:03d}.png'), m)
    if good:
        gd = osp.join(root, product, 'images', 'good')
        os.makedirs(gd, exist_ok=True)
        for i in range(good):
            img = rng.integers(90, 140, (h, w, 3)).astype(np.uint8)
            cv2.imwrite(osp.join(gd, f'good_{i:03d}{ext}'), img)


@pytest.fixture(scope='session')
def gfds_root(tmp_path_factory):
    """Two products: binary masks with a good folder, and value-indexed."""
    root = str(tmp_path_factory.mktemp('gfds'))
    write_product(root, 'texture', ['crack', 'spot'], n=4, good=2)
    write_product(
        root,
        'indexed',
        ['a', 'b', 'c'],
        n=3,
        mode='index',
        ext='.jpg',
        gray=True,
        seed=1,
    )
    return root


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """A small synthetic benchmark (fdseg.datasets.synthetic)."""
    from fdseg.datasets.synthetic import generate_synthetic_benchmark

    root = str(tmp_path_factory.mktemp('synthetic') / 'bench')
    generate_synthetic_benchmark(root, seed=0, num_images=4, progress=False)
    return root


#: The config that declares the development-only ``real_defects`` products.
REAL_DEFECTS_CFG = osp.join(REPO, 'configs', '_base_', 'datasets', 'real_defects.py')


@pytest.fixture
def real_defects():
    """The ``real_defects`` declarations of the config (``declare=`` dicts).

    Read from ``configs/_base_/datasets/real_defects.py``, the one place
    they are written; products a test registers with them (by building a
    ``GFDSDataset(declare=...)``) are unregistered afterwards.
    """
    from mmengine.config import Config

    from fdseg.benchmarks import PRODUCTS, unregister_product

    cfg = Config.fromfile(REAL_DEFECTS_CFG)
    declared = [dict(d) for d in cfg.test_dataloader.dataset.declare]
    before = set(PRODUCTS)
    yield declared
    for d in declared:
        if d['key'] in PRODUCTS and d['key'] not in before:
            unregister_product(d['key'])


def pytest_collection_modifyitems(config, items):
    """Run the modules with the most ``slow`` tests first.

    The suite runs on xdist workers one file at a time (``--dist loadfile``),
    handed out in collection order: the long files start first, so no
    worker is left with one of them at the end while the other idles.
    """
    slow = {}
    for item in items:
        if item.get_closest_marker('slow'):
            slow[item.module.__name__] = slow.get(item.module.__name__, 0) + 1
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda it: (-slow.get(it.module.__name__, 0), order[id(it)]))
