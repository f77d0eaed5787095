"""Dataset converters on small generated look-alikes of the official downloads.

Each test writes a few files in the source dataset's published layout and
mask convention, converts them, checks the GFDS layout and masks, and loads
the result with :class:`GFDSDataset`.
"""

import csv
import importlib.util
import os
import os.path as osp
import zipfile

import cv2
import numpy as np
import pytest

from tests.conftest import REPO

CONV = osp.join(REPO, 'tools', 'dataset_converters')


def tool(name):
    spec = importlib.util.spec_from_file_location(
        f'conv_{name}', osp.join(CONV, f'{name}.py')
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def img(h=24, w=32, seed=0, gray=False):
    rng = np.random.default_rng(seed)
    shape = (h, w) if gray else (h, w, 3)
    return rng.integers(60, 200, shape).astype(np.uint8)


def rect(h=24, w=32, value=255, y=4, x=6, size=8):
    m = np.zeros((h, w), np.uint8)
    m[y : y + size, x : x + size] = value
    return m


def write(path, array):
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, array), path


def read(path):
    return cv2.imread(path, cv2.IMREAD_UNCHANGED)


def load_one(root, product):
    """Read the converted ``product`` with its GFDS declaration (only the
    categories the look-alike has) and pack one episode."""
    from fdseg.benchmarks import PRODUCTS, gfds_products
    from fdseg.datasets import FewShotDefectDataset
    from fdseg.datasets.transforms import episode_pipeline

    e = PRODUCTS[product]
    present = [
        c for c in e.categories if osp.isdir(osp.join(root, e.folder, 'images', c))
    ]
    ds = FewShotDefectDataset(
        data_root=root,
        pipeline=episode_pipeline(16),
        products=gfds_products([product], categories={product: present}),
    )
    out = ds[0]
    assert out['data_samples'].gt_sem_seg.data.sum() > 0
    return ds


def test_mvtec_ad(tmp_path):
    src, out = str(tmp_path / 'mvtec'), str(tmp_path / 'gfds')
    for obj, cats in (('tile', ['crack', 'oil']), ('grid', ['bent'])):
        for c in cats:
            for i in range(2):
                write(f'{src}/{obj}/test/{c}/{i:03d}.png', img(seed=i))
                write(f'{src}/{obj}/ground_truth/{c}/{i:03d}_mask.png', rect(y=2 + i))
        write(f'{src}/{obj}/test/good/000.png', img())
        write(f'{src}/{obj}/train/good/000.png', img())
    summary = tool('mvtec_ad').main([src, '--out', out])
    assert summary == {'grid/bent': 2, 'tile/crack': 2, 'tile/oil': 2}
    m = read(f'{out}/tile/ground_truth/crack/001.png')
    assert m.ndim == 2 and set(np.unique(m)) == {0, 255}
    assert (m > 0).sum() == 64
    assert (
        open(f'{out}/tile/images/crack/001.png', 'rb').read()
        == open(f'{src}/tile/test/crack/001.png', 'rb').read()
    )
    assert not osp.exists(f'{out}/tile/images/good')
    ds = load_one(out, 'Tile')
    assert len(ds) == 4
    with pytest.raises(FileExistsError, match='--overwrite'):
        tool('mvtec_ad').convert(src, out)
    assert (
        tool('mvtec_ad').convert(src, out, with_good=True, overwrite=True)['tile/good']
        == 1
    )


def test_visa_value_masks_and_split_csv(tmp_path):
    src, out = str(tmp_path / 'VisA'), str(tmp_path / 'gfds')
    rows = [('object', 'split', 'label', 'image', 'mask')]
    # capsules: 000 holds values 1 and 3 (bubble + scratch), 001 value 5.
    masks = {
        ('capsules', '000'): [(1, 2), (3, 14)],
        ('capsules', '001'): [(5, 2)],
        ('capsules', '002'): [(1, 14)],
        ('macaroni2', '000'): [(1, 2)],
        ('macaroni2', '001'): [(4, 2), (7, 14)],
    }
    for (obj, stem), vals in masks.items():
        m = np.zeros((24, 32), np.uint8)
        for v, x in vals:
            m[4:12, x : x + 8] = v
        ip = f'{obj}/Data/Images/Anomaly/{stem}.JPG'
        mp = f'{obj}/Data/Masks/Anomaly/{stem}.png'
        write(f'{src}/{ip}', img())
        write(f'{src}/{mp}', m)
        rows.append((obj, 'test', 'anomaly', ip, mp))
    write(f'{src}/capsules/Data/Images/Normal/0001.JPG', img())
    rows.append(
        ('capsules', 'train', 'normal', 'capsules/Data/Images/Normal/0001.JPG', '')
    )
    os.makedirs(f'{src}/split_csv')
    with open(f'{src}/split_csv/1cls.csv', 'w', newline='') as f:
        csv.writer(f).writerows(rows)
    s = tool('visa').main([src, '--out', out])
    assert s['capsules/0'] == 2 and s['capsules/2'] == 1
    assert s['capsules/4'] == 1 and s['macaroni2/0'] == 1
    assert s['macaroni2/6'] == 1  # value 7 -> folder 6
    # value 4 -> folder 3, which the benchmark does not use: skipped.
    assert s['macaroni2/skipped'] == {4: 1}
    assert s['capsules/values'] == {1: 2, 3: 1, 5: 1}
    m0 = read(f'{out}/capsules/ground_truth/0/000.png')
    m2 = read(f'{out}/capsules/ground_truth/2/000.png')
    assert m0[4:12, 2:10].min() == 255 and m0[4:12, 14:22].max() == 0
    assert m2[4:12, 14:22].min() == 255 and m2[4:12, 2:10].max() == 0
    assert osp.isfile(f'{out}/capsules/images/0/000.JPG')
    # Without the CSV the Anomaly folders are scanned: same result.
    s2 = tool('visa').convert(
        src, str(tmp_path / 'g2'), split_csv=str(tmp_path / 'none.csv')
    )
    assert {k: v for k, v in s2.items() if isinstance(v, int)} == {
        k: v for k, v in s.items() if isinstance(v, int)
    }
    # Read back: categories 0 (two images) and 2 of capsules.
    from fdseg.datasets import FewShotDefectDataset
    from fdseg.datasets.transforms import episode_pipeline

    ds = FewShotDefectDataset(
        data_root=out,
        pipeline=episode_pipeline(16),
        products=[dict(name='Capsules', folder='capsules', categories=['0'])],
    )
    assert len(ds) == 2 and ds[0]['data_samples'].gt_sem_seg.data.sum() > 0


def test_kolektorsdd(tmp_path):
    src, out = str(tmp_path / 'KolektorSDD'), str(tmp_path / 'gfds')
    for k, item in enumerate(['kos01', 'kos02']):
        for part in range(3):
            defect = part == 1 or (k == 1 and part == 2)
            write(f'{src}/{item}/Part{part}.jpg', img(seed=part))
            write(
                f'{src}/{item}/Part{part}_label.bmp',
                rect() if defect else np.zeros((24, 32), np.uint8),
            )
    s = tool('kolektorsdd').main([src, '--out', out, '--with-good'])
    assert s == {'KolektorSDD/bad': 3, 'KolektorSDD/good': 3}
    assert sorted(os.listdir(f'{out}/KolektorSDD/ground_truth/bad')) == [
        'kos01_Part1.png',
        'kos02_Part1.png',
        'kos02_Part2.png',
    ]
    load_one(out, 'Kol')


def test_dagm_fine_labels_pick_test_split(tmp_path):
    src, out = str(tmp_path / 'DAGM'), str(tmp_path / 'gfds')
    # Train and Test reuse file names; the fine labels are for Test.
    for k in (1, 7):
        for split, seed in (('Train', 1), ('Test', 2)):
            for stem in ('0002', '0005', '0009'):
                write(f'{src}/Class{k}/{split}/{stem}.PNG', img(seed=seed, gray=True))
        write(f'{src}/Class{k}/Train/Label/0009_label.PNG', rect())
        for stem in ('0002', '0005'):
            write(f'{src}/Class{k}/Test/Label/{stem}_label.PNG', rect())
    zpath = str(tmp_path / 'DAGM_finelabel.zip')
    with zipfile.ZipFile(zpath, 'w') as z:
        for k in (1, 7):
            for stem in ('0002', '0005'):
                m = rect(size=5)
                if k == 7:  # Class7 fine labels are RGBA in the release
                    m = cv2.cvtColor(m, cv2.COLOR_GRAY2BGRA)
                ok, buf = cv2.imencode('.PNG', m)
                z.writestr(
                    f'DAGM_finelabel/Class{k}/ground_truth/bad/{stem}.PNG',
                    buf.tobytes(),
                )
    conv = tool('dagm')
    s = conv.convert(src, zpath, out, classes=(1, 7))
    assert s['Class1/split'] == 'Test' and s['Class7/split'] == 'Test'
    assert s['Class1/bad'] == 2 and s['Class7/bad'] == 2
    assert (
        open(f'{out}/Class7/images/bad/0005.PNG', 'rb').read()
        == open(f'{src}/Class7/Test/0005.PNG', 'rb').read()
    )
    m = read(f'{out}/Class7/ground_truth/bad/0005.png')
    assert m.ndim == 2 and (m == 255).sum() == 25
    # Only two of the ten DAGM classes exist here: read them as products.
    from fdseg.datasets import FewShotDefectDataset
    from fdseg.datasets.transforms import episode_pipeline

    ds = FewShotDefectDataset(
        data_root=out, products=['Class1', 'Class7'], pipeline=episode_pipeline(16)
    )
    assert len(ds) == 4 and ds[0]['data_samples'].gt_sem_seg.data.sum() > 0
    # An explicit split without the fine-label images fails loudly.
    os.remove(f'{src}/Class1/Train/0005.PNG')
    with pytest.raises(FileNotFoundError, match='0005'):
        conv.convert(src, zpath, str(tmp_path / 'g2'), split='Train', classes=(1,))


def test_psp_ds(tmp_path):
    src, out = str(tmp_path / 'PSP-DS' / 'data'), str(tmp_path / 'gfds')
    for c in (1, 2):
        for i in (1, 2):
            write(f'{src}/class_{c}/img_{i:03d}.png', img(seed=i))
            m = rect(value=200)
            m[0:2, 0:2] = 40  # below the PSP threshold (50)
            write(f'{src}/class_{c}/label_{i:03d}.png', m)
    s = tool('psp_ds').main([str(tmp_path / 'PSP-DS'), '--out', out])
    assert s == {'PSP/class_1': 2, 'PSP/class_2': 2}
    m = read(f'{out}/PSP/ground_truth/class_2/img_002.png')
    assert (m == 255).sum() == 64 and m[0, 0] == 0
    from fdseg.datasets import FewShotDefectDataset
    from fdseg.datasets.transforms import episode_pipeline

    ds = FewShotDefectDataset(
        data_root=out, products=['PSP'], pipeline=episode_pipeline(16)
    )
    assert len(ds) == 4


def test_fssd12_steel(tmp_path):
    src, out = str(tmp_path / 'FSSD-12'), str(tmp_path / 'gfds')
    for cls in ('Steel_Am', 'Steel_Ld', 'Steel_Sc', 'Steel_Pa'):
        for i in (1, 2):
            write(f'{src}/{cls}/Images/{cls}_{i}.jpg', img(seed=i))
            m = rect()
            m[20:22, 0:4] = 128  # not a defect in FSSD-12 (== 255 only)
            write(f'{src}/{cls}/GT/{cls}_{i}.png', m)
    s = tool('fssd12').main([src, '--out', out])
    assert s == {'Steel/Am': 2, 'Steel/Ld': 2, 'Steel/Sc': 2}
    m = read(f'{out}/Steel/ground_truth/Ld/Steel_Ld_2.png')
    assert (m == 255).sum() == 64 and m[20, 0] == 0
    ds = load_one(out, 'Steel')
    assert len(ds) == 6


@pytest.mark.parametrize('layout', ['folders', 'voc'])
def test_msd(tmp_path, layout):
    src, out = str(tmp_path / 'MSD'), str(tmp_path / 'gfds')
    values = {'oil': 1, 'scratch': 2, 'stain': 3}
    for cat, v in values.items():
        for i in (1, 2):
            stem = f'{cat.capitalize()}_{i:04d}'
            if layout == 'folders':
                write(f'{src}/{cat}/{stem}.jpg', img(seed=i))
                gt = 'ground_truth_2' if cat == 'oil' else 'ground_truth_1'
                write(f'{src}/{gt}/{stem}.png', rect(value=v))
            else:
                write(f'{src}/JPEGImages/{stem}.jpg', img(seed=i))
                write(f'{src}/SegmentationClass/{stem}.png', rect(value=v))
    s = tool('msd').main([src, '--out', out])
    assert s == {'Phone/oil': 2, 'Phone/scratch': 2, 'Phone/stain': 2}
    m = read(f'{out}/Phone/ground_truth/stain/Stain_0002.png')
    assert set(np.unique(m)) == {0, 255}
    ds = load_one(out, 'MSD')
    assert len(ds) == 6


def test_gfds_check_cli(tmp_path, capsys):
    out = str(tmp_path)
    for c, n in (('holes', 16), ('boundary', 10)):
        for i in range(n):
            write(f'{out}/Side/images/{c}/{i}.png', img(4, 4))
    mod = tool('gfds_check')
    issues = mod.main([out, '--products', 'R_side'])
    text = capsys.readouterr().out
    assert 'R_side/boundary (Wear (boundary)): 10 images, Table 1 says 11' in text
    assert len(issues) == 1
    with pytest.raises(SystemExit):
        mod.main([out, '--products', 'R_side', '--strict'])
