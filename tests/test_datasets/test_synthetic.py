"""The procedural synthetic benchmark: layout, exact masks, determinism,
atomic writes, ensure_synthetic_benchmark and the CLI."""

import filecmp
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from fdseg.datasets.utils.synthetic import (
    GENERATOR_VERSION,
    SYNTHETIC_PRODUCTS,
    ensure_synthetic_benchmark,
    generate_synthetic_benchmark,
    render_synthetic_sample,
    textures,
)
from fdseg.datasets.utils.synthetic import generator as synthetic
from tests.conftest import REPO

CLI = osp.join(REPO, 'tools', 'dataset_converters', 'make_synthetic_benchmark.py')
SIZE = 96  # small images keep the module fast
N = 3


def _files(root):
    out = []
    for d, _, fs in os.walk(root):
        out += [osp.relpath(osp.join(d, f), root) for f in fs]
    return sorted(out)


def _same_tree(a, b):
    fa, fb = _files(a), _files(b)
    assert fa == fb
    _, mismatch, errors = filecmp.cmpfiles(a, b, fa, shallow=False)
    return not mismatch and not errors


def _siblings(path):
    parent, base = osp.split(path)
    return [f for f in os.listdir(parent) if f.startswith(f'.{base}.')]


@pytest.fixture(scope='module')
def bench(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synth') / 'bench')
    summary = generate_synthetic_benchmark(
        root, seed=0, num_images=N, image_size=SIZE, progress=False
    )
    return root, summary


def test_products_and_categories():
    assert len(SYNTHETIC_PRODUCTS) >= 3
    assert {'fabric', 'metal', 'washer'} <= set(SYNTHETIC_PRODUCTS)
    for cats in SYNTHETIC_PRODUCTS.values():
        assert 3 <= len(cats) <= 4 and len(set(cats)) == len(cats)


def test_layout_pairing_and_meta(bench):
    root, summary = bench
    assert summary == {
        p: {c: N for c in cats} for p, cats in SYNTHETIC_PRODUCTS.items()
    }
    assert sorted(os.listdir(root)) == sorted(
        ['README.md', 'meta.json', *SYNTHETIC_PRODUCTS]
    )
    for product, cats in SYNTHETIC_PRODUCTS.items():
        assert sorted(os.listdir(osp.join(root, product))) == ['ground_truth', 'images']
        for sub in ('images', 'ground_truth'):
            assert sorted(os.listdir(osp.join(root, product, sub))) == sorted(cats)
        for cat in cats:
            imgs = sorted(os.listdir(osp.join(root, product, 'images', cat)))
            gts = sorted(os.listdir(osp.join(root, product, 'ground_truth', cat)))
            assert imgs == gts == [f'{cat}_{i:03d}.png' for i in range(N)]
    meta = json.load(open(osp.join(root, 'meta.json')))
    assert meta['seed'] == 0 and meta['version'] == GENERATOR_VERSION
    assert meta['num_images'] == N and meta['image_size'] == SIZE
    assert meta['products'] == summary
    readme = open(osp.join(root, 'README.md')).read()
    assert 'seed: 0' in readme and GENERATOR_VERSION in readme
    assert not _siblings(root)  # no temporary directory left behind


def test_images_rgb_masks_binary_nonempty(bench):
    root, _ = bench
    for product, cats in SYNTHETIC_PRODUCTS.items():
        for cat in cats:
            for i in range(N):
                stem = f'{cat}_{i:03d}.png'
                img = cv2.imread(
                    osp.join(root, product, 'images', cat, stem), cv2.IMREAD_UNCHANGED
                )
                m = cv2.imread(
                    osp.join(root, product, 'ground_truth', cat, stem),
                    cv2.IMREAD_UNCHANGED,
                )
                assert img.dtype == np.uint8 and img.shape == (SIZE, SIZE, 3)
                assert m.dtype == np.uint8 and m.shape == (SIZE, SIZE)
                assert set(np.unique(m)) == {0, 255}
                # >= 20 px at 256 x 256, scaled by area.
                assert (m > 0).sum() >= 20 * (SIZE / 256) ** 2
                assert (m > 0).mean() < 0.25


@pytest.mark.parametrize(
    'product,category', [(p, c) for p, cs in SYNTHETIC_PRODUCTS.items() for c in cs]
)
def test_masks_are_exact(bench, product, category):
    root, _ = bench
    for i in range(2):
        img, mask, clean = render_synthetic_sample(
            product, category, i, seed=0, image_size=SIZE
        )
        # Foreground is exactly the set of pixels the defect changed.
        np.testing.assert_array_equal(mask > 0, (img != clean).any(-1))
        assert mask.sum() // 255 >= 20 * (SIZE / 256) ** 2
        # The written files are these renders (RGB on disk as BGR PNG).
        stem = f'{category}_{i:03d}.png'
        disk = cv2.imread(osp.join(root, product, 'images', category, stem))
        np.testing.assert_array_equal(cv2.cvtColor(disk, cv2.COLOR_BGR2RGB), img)
        np.testing.assert_array_equal(
            cv2.imread(
                osp.join(root, product, 'ground_truth', category, stem),
                cv2.IMREAD_UNCHANGED,
            ),
            mask,
        )


def test_washer_defects_stay_on_the_part():
    for cat in SYNTHETIC_PRODUCTS['washer']:
        for i in range(3):
            rng = textures._rng_for(0, 'washer', cat, i)
            part = textures._washer(rng, 256)['valid']
            _, mask, _ = render_synthetic_sample('washer', cat, i, seed=0)
            assert not (mask > 0)[~part].any()


def test_textures_vary_between_images():
    a = render_synthetic_sample('metal', 'spot', 0)[2]
    b = render_synthetic_sample('metal', 'spot', 1)[2]
    assert np.abs(a.astype(int) - b).mean() > 3


def test_deterministic_and_seed_dependent(tmp_path):
    kw = dict(num_images=2, image_size=64, products=['metal', 'washer'], progress=False)
    generate_synthetic_benchmark(tmp_path / 'a', seed=7, **kw)
    generate_synthetic_benchmark(tmp_path / 'b', seed=7, **kw)
    generate_synthetic_benchmark(tmp_path / 'c', seed=8, **kw)
    assert _same_tree(tmp_path / 'a', tmp_path / 'b')
    img = osp.join('metal', 'images', 'spot', 'spot_000.png')
    assert (
        open(tmp_path / 'a' / img, 'rb').read()
        != open(tmp_path / 'c' / img, 'rb').read()
    )


def test_subset_matches_full(bench, tmp_path):
    root, _ = bench
    out = tmp_path / 'washer_only'
    summary = generate_synthetic_benchmark(
        out, seed=0, num_images=N, image_size=SIZE, products='washer', progress=False
    )
    assert list(summary) == ['washer']
    assert sorted(os.listdir(out)) == ['README.md', 'meta.json', 'washer']
    assert _same_tree(out / 'washer', osp.join(root, 'washer'))


def test_overwrite_protection(tmp_path):
    out = tmp_path / 'bench'
    kw = dict(num_images=1, image_size=64, products=['fabric'], progress=False)
    out.mkdir()  # an existing empty directory is fine
    generate_synthetic_benchmark(out, seed=0, **kw)
    with pytest.raises(FileExistsError, match=str(out)):
        generate_synthetic_benchmark(out, seed=1, **kw)
    assert json.load(open(out / 'meta.json'))['seed'] == 0
    generate_synthetic_benchmark(out, seed=1, overwrite=True, **kw)
    assert json.load(open(out / 'meta.json'))['seed'] == 1
    assert not _siblings(str(out))
    (tmp_path / 'afile').write_text('x')
    with pytest.raises(FileExistsError, match='afile'):
        generate_synthetic_benchmark(tmp_path / 'afile', **kw)


def test_invalid_arguments(tmp_path):
    out = tmp_path / 'bench'
    with pytest.raises(ValueError, match='fabric.*metal.*washer'):
        generate_synthetic_benchmark(out, products=['metal', 'wood'], progress=False)
    with pytest.raises(ValueError, match='num_images'):
        generate_synthetic_benchmark(out, num_images=0, progress=False)
    with pytest.raises(ValueError, match='image_size'):
        generate_synthetic_benchmark(out, image_size=16, progress=False)
    with pytest.raises(ValueError, match='seed'):
        generate_synthetic_benchmark(out, seed=-1, progress=False)
    assert os.listdir(tmp_path) == []


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real = synthetic.render_synthetic_sample

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, 'render_synthetic_sample', flaky)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic_benchmark(
            tmp_path / 'bench', num_images=2, image_size=64, progress=False
        )
    assert os.listdir(tmp_path) == []


def test_ensure_is_idempotent_and_checks_settings(tmp_path, monkeypatch):
    out = str(tmp_path / 'bench')
    kw = dict(num_images=1, image_size=64, progress=False)
    s1 = ensure_synthetic_benchmark(out, seed=2, products=['metal'], **kw)
    assert s1 == {'metal': {c: 1 for c in SYNTHETIC_PRODUCTS['metal']}}
    assert osp.isfile(out + '.lock')
    before = {f: os.stat(osp.join(out, f)).st_mtime_ns for f in _files(out)}

    def fail(*a, **k):
        raise AssertionError('regenerated an existing benchmark')

    monkeypatch.setattr(synthetic, 'generate_synthetic_benchmark', fail)
    assert ensure_synthetic_benchmark(out, seed=2, products='metal', **kw) == s1
    assert before == {f: os.stat(osp.join(out, f)).st_mtime_ns for f in _files(out)}
    with pytest.raises(ValueError, match='seed=2'):
        ensure_synthetic_benchmark(out, seed=3, products=['metal'], **kw)
    with pytest.raises(ValueError, match='image_size'):
        ensure_synthetic_benchmark(
            out, seed=2, products=['metal'], num_images=1, image_size=128
        )
    with pytest.raises(ValueError, match='missing'):
        ensure_synthetic_benchmark(out, seed=2, **kw)  # all products
    meta = json.load(open(osp.join(out, 'meta.json')))
    meta['version'] = '0.0'
    json.dump(meta, open(osp.join(out, 'meta.json'), 'w'))
    with pytest.raises(ValueError, match='version'):
        ensure_synthetic_benchmark(out, seed=2, products=['metal'], **kw)


def test_ensure_refuses_foreign_directory(tmp_path):
    out = tmp_path / 'data'
    out.mkdir()
    (out / 'mine.txt').write_text('not a benchmark')
    with pytest.raises(FileExistsError):
        ensure_synthetic_benchmark(
            out, num_images=1, image_size=64, products=['metal'], progress=False
        )
    assert os.listdir(out) == ['mine.txt']


def test_ensure_concurrent_callers_generate_once(tmp_path, monkeypatch):
    out = str(tmp_path / 'bench')
    real = synthetic.generate_synthetic_benchmark
    calls = []

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(synthetic, 'generate_synthetic_benchmark', counted)
    results, errors = [], []

    def worker():
        try:
            results.append(
                ensure_synthetic_benchmark(
                    out,
                    seed=0,
                    num_images=2,
                    image_size=64,
                    products=['washer'],
                    progress=False,
                )
            )
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    # flock locks belong to open file descriptions, so threads that each
    # open the lock file exclude each other like separate processes do.
    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(calls) == 1
    assert results[0] == results[1] == results[2]


def _load_cli():
    spec = importlib.util.spec_from_file_location('make_synthetic_cli', CLI)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_subprocess(tmp_path):
    out = tmp_path / 'cli'
    proc = subprocess.run(
        [
            sys.executable,
            CLI,
            str(out),
            '--seed',
            '3',
            '--num-images',
            '2',
            '--image-size',
            '64',
            '--products',
            'metal,washer',
        ],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert 'total: 14 images' in proc.stdout
    assert sorted(os.listdir(out)) == ['README.md', 'meta.json', 'metal', 'washer']
    assert json.load(open(out / 'meta.json'))['seed'] == 3


def test_cli_errors_and_overwrite(tmp_path, capsys):
    cli = _load_cli()
    out = str(tmp_path / 'cli')
    argv = [
        out,
        '--num-images',
        '1',
        '--image-size',
        '64',
        '--products',
        'fabric',
        '--quiet',
    ]
    summary = cli.main(argv)
    assert summary == {'fabric': {c: 1 for c in SYNTHETIC_PRODUCTS['fabric']}}
    with pytest.raises(SystemExit, match='exists'):
        cli.main(argv)
    cli.main(argv + ['--overwrite', '--seed', '5'])
    assert json.load(open(osp.join(out, 'meta.json')))['seed'] == 5
    with pytest.raises(SystemExit, match='valid products'):
        cli.main([str(tmp_path / 'x'), '--products', 'wood', '--quiet'])


def test_old_import_path():
    """``fdseg.datasets.synthetic`` still exports the generator (issue 10)."""
    from fdseg.datasets import synthetic as old

    assert old.generate_synthetic_benchmark is generate_synthetic_benchmark
    assert old.ensure_synthetic_benchmark is ensure_synthetic_benchmark
    assert old.render_synthetic_sample is render_synthetic_sample
    assert old.SYNTHETIC_PRODUCTS is SYNTHETIC_PRODUCTS
    assert old.GENERATOR_VERSION == GENERATOR_VERSION
