"""``fdseg predict`` and docs/own_data.md, run the way a user runs them.

The subprocess tests take the commands of docs/own_data.md verbatim (its
``bash`` blocks; ``$DATA`` is the folder this test writes: the user's
``my_defects/`` and a ``line/`` of new images with a corrupt file in the
middle), with a random-valued official-format FM-s file in a temporary
``FDSEG_CHECKPOINT_DIR``: the benchmark (``tools/test.py``) and the
deployment (``fdseg predict``, whose files must equal the Python API's on
the same weights), and ``fdseg predict`` with the cache empty (must fail
naming the file). Bad inputs are checked in-process through the same
``main()`` the console script calls.
"""

import json
import os
import os.path as osp
import re
import shlex
import shutil
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import REPO, SHARED_DATA
from tests.subprocess_utils import run_pool

DOC = osp.join(REPO, 'docs', 'own_data.md')
MODEL = 'fm_pdn-s_no-train_custom-all-1shot'


def fdseg_command() -> list:
    """The console script next to this Python (else ``-m fdseg``)."""
    script = Path(sys.executable).parent / 'fdseg'
    return [str(script)] if script.is_file() else ['-m', 'fdseg']


def doc_commands() -> dict:
    """``python tools/test.py ...`` and ``fdseg predict ...`` of the doc."""
    text = open(DOC).read()
    found = {}
    for block in re.findall(r'```bash\n(.*?)```', text, re.S):
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.strip()
            for key, start in (
                ('benchmark', 'python tools/test.py '),
                ('predict', 'fdseg predict '),
            ):
                if line.startswith(start):
                    assert key not in found, f'two {key} commands in {DOC}'
                    found[key] = line
    assert set(found) == {'benchmark', 'predict'}, found
    return found


def _args(line: str, data) -> list:
    """A documented command line as the shell would split it."""
    return shlex.split(line.replace('$DATA', str(data)))


# ---------------------------------------------------------------- the data
def _copy_pair(src_root, product, cat, stem, ext, dst, dst_cat):
    img = osp.join(src_root, product, 'images', cat, stem + ext)
    shutil.copy(img, dst / 'images' / dst_cat / (stem + ext))
    if dst_cat != 'good':
        mask = osp.join(src_root, product, 'ground_truth', cat, stem + '.png')
        shutil.copy(mask, dst / 'masks' / dst_cat / (stem + '.png'))


def _user_folder(data):
    """``$DATA/my_defects`` and ``$DATA/line``: real images if present.

    One class (``blowhole``, two examples) and one defect-free image (FM-s
    costs about 1 s per episode here); the line has a defect and a
    defect-free image with a truncated file sorted between them.
    """
    my, line = data / 'my_defects', data / 'line'
    for sub in ('images/blowhole', 'masks/blowhole', 'images/good'):
        (my / sub).mkdir(parents=True)
    line.mkdir()
    tile = osp.join(SHARED_DATA, 'magnetic_tile')
    if osp.isdir(tile):
        defects = sorted(os.listdir(osp.join(tile, 'images/blowhole')))
        for name in defects[:2]:
            shutil.copy(osp.join(tile, 'images/blowhole', name), my / 'images/blowhole')
            mask = osp.splitext(name)[0] + '.png'
            shutil.copy(
                osp.join(tile, 'ground_truth/blowhole', mask), my / 'masks/blowhole'
            )
        good = sorted(os.listdir(osp.join(tile, 'images/good')))
        shutil.copy(osp.join(tile, 'images/good', good[0]), my / 'images/good')
        shutil.copy(osp.join(tile, 'images/blowhole', defects[2]), line / 'a.jpg')
        shutil.copy(osp.join(tile, 'images/good', good[1]), line / 'c.jpg')
    else:
        rng = np.random.default_rng(0)
        for i in range(4):
            img = rng.integers(90, 140, (40, 56, 3)).astype(np.uint8)
            m = np.zeros((40, 56), np.uint8)
            m[8 + 5 * i : 18 + 5 * i, 10 + 6 * i : 24 + 6 * i] = 255
            img[m > 0] = 30
            if i < 2:
                cv2.imwrite(str(my / f'images/blowhole/{i}.png'), img)
                cv2.imwrite(str(my / f'masks/blowhole/{i}.png'), m)
            else:
                cv2.imwrite(str(line / 'a.png'), img)
        cv2.imwrite(str(my / 'images/good/g.png'), rng.integers(90, 140, (40, 56, 3)))
        cv2.imwrite(str(line / 'c.png'), rng.integers(90, 140, (40, 56, 3)))
    mask = sorted((my / 'masks/blowhole').iterdir())[0]
    (line / 'b.png').write_bytes(mask.read_bytes()[:60])  # truncated PNG


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('own_data')
    _user_folder(root)
    return root


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    """``model_small.pth`` with random values, in the official format."""
    from fdseg.utils.checkpoints import CHECKPOINTS
    from tests.test_models.test_backbones import reference_student

    d = tmp_path_factory.mktemp('ckpt')
    torch.manual_seed(1)
    path = d / CHECKPOINTS['gfds_fm_small']['filename']
    torch.save(reference_student(128, False).state_dict(), path)
    return d


@pytest.fixture(scope='module')
def runs(data, cache, tmp_path_factory):
    """``fdseg predict`` as documented, and with the cache empty."""
    predict = _args(doc_commands()['predict'], data)
    assert predict[0] == 'fdseg'
    empty = tmp_path_factory.mktemp('empty_cache')
    fdseg = fdseg_command()
    no_weights = [a.replace('predictions', 'no_weights') for a in predict]
    jobs = {
        'predict': (
            fdseg + predict[1:],
            str(data),
            {'FDSEG_CHECKPOINT_DIR': str(cache)},
        ),
        'no_weights': (
            fdseg + no_weights[1:],
            str(data),
            {'FDSEG_CHECKPOINT_DIR': str(empty)},
        ),
        'fast': (
            fdseg
            + [a.replace('predictions', 'predictions_fast') for a in predict[1:]]
            + ['--fast-cpu', '--device', 'cpu'],
            str(data),
            {'FDSEG_CHECKPOINT_DIR': str(cache)},
        ),
    }
    return run_pool(jobs, width=2, timeout=400), empty


@pytest.mark.slow
def test_documented_benchmark_runs(data, cache, monkeypatch):
    """The documented ``python tools/test.py`` line, run from the fdseg
    folder (in this process: tools/test.py has its own subprocess tests)."""
    import importlib.util

    bench = _args(doc_commands()['benchmark'], data)
    assert bench[:2] == ['python', 'tools/test.py']
    monkeypatch.chdir(REPO)
    monkeypatch.setenv('FDSEG_CHECKPOINT_DIR', str(cache))
    spec = importlib.util.spec_from_file_location('_tools_test', bench[1])
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        tool.main(bench[2:])
    with open(data / 'benchmark' / 'metrics.json') as f:
        metrics = json.load(f)
    # 2 defect queries, each with the other as support, and the good one
    eps = metrics['episodes']
    assert [(osp.basename(e['query_path']), e['is_good']) for e in eps] == [
        (n, False) for n in sorted(os.listdir(data / 'my_defects/images/blowhole'))
    ] + [(os.listdir(data / 'my_defects/images/good')[0], True)]
    assert [osp.basename(e['support_paths'][0]) for e in eps[:2]] == [
        osp.basename(eps[1]['query_path']),
        osp.basename(eps[0]['query_path']),
    ]
    assert 'custom/blowhole/IoU' in metrics['metrics']


@pytest.mark.slow
def test_documented_predict_equals_the_api(runs, data, cache, monkeypatch):
    """Files of ``fdseg predict`` == ``FewShotInferencer.predict`` in this
    process on the same weights and support; the corrupt file in the
    middle of the line is reported, skipped and counted."""
    from fdseg.apis import FewShotInferencer

    code, log = runs[0]['predict']
    assert code == 0, log[-4000:]
    out = data / 'predictions'
    assert 'warning: skipped b.png' in log and 'truncated' in log
    assert '1 skipped (unreadable: b.png)' in log
    summary = json.loads((out / 'summary.json').read_text())
    assert (summary['images'], summary['skipped']) == (3, 1)
    assert summary['defect'] + summary['no_defect'] == 2
    assert summary['class_names'] == ['background', 'blowhole']
    lines = [json.loads(x) for x in (out / 'results.jsonl').read_text().splitlines()]
    assert [x['image'] for x in lines] == sorted(os.listdir(data / 'line'))
    assert 'truncated' in lines[1]['error']

    # the reference: support listed by hand (classes in sorted order)
    my = data / 'my_defects'
    imgs, masks, labels = [], [], []
    for way, cat in enumerate(['blowhole'], 1):
        for name in sorted(os.listdir(my / 'images' / cat)):
            stem = osp.splitext(name)[0]
            imgs.append(str(my / 'images' / cat / name))
            masks.append(str(my / 'masks' / cat / (stem + '.png')))
            labels.append(way)
    monkeypatch.setenv('FDSEG_CHECKPOINT_DIR', str(cache))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocess (one OMP thread)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            inf = FewShotInferencer(MODEL, device='cpu')
        inf.set_support(imgs, masks, labels, class_names=['blowhole'])
        skipped = []
        ref = inf.predict(data / 'line', on_error=lambda n, e: skipped.append(n))
    finally:
        torch.set_num_threads(threads)
    assert skipped == ['b.png'] and len(ref) == 2
    for r, line in zip(ref, [x for x in lines if 'error' not in x]):
        stem = osp.splitext(r.name)[0]
        assert line == json.loads(r.to_json())
        mask = cv2.imread(str(out / 'masks' / f'{stem}.png'), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(mask, r.mask_image())
        assert np.array_equal(np.load(out / 'scores' / f'{stem}.npy'), r.score_map)
        overlay = cv2.imread(str(out / 'overlays' / f'{stem}.png'))
        assert np.array_equal(overlay[..., ::-1], r.plot())
    # no staging folder left next to the output
    assert not [n for n in os.listdir(data) if n.startswith('.tmp-')]


@pytest.mark.slow
def test_predict_without_weights_names_the_file(runs, data):
    from fdseg.utils.checkpoints import CHECKPOINTS

    code, log = runs[0]['no_weights']
    fname = CHECKPOINTS['gfds_fm_small']['filename']
    assert code == 1, log[-3000:]
    assert str(runs[1] / fname) in log and 'Traceback' not in log
    assert not (data / 'no_weights').exists()


# ------------------------------------------------------- bad inputs (fast)
def _pair(folder, stem, size=(24, 32), mask_size=None, empty=False, cat=''):
    (folder / 'images' / cat).mkdir(parents=True, exist_ok=True)
    (folder / 'masks' / cat).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(
        str(folder / 'images' / cat / f'{stem}.png'), np.full((*size, 3), 99, np.uint8)
    )
    m = np.zeros(mask_size or size, np.uint8)
    if not empty:
        m[2:8, 3:9] = 255
    cv2.imwrite(str(folder / 'masks' / cat / f'{stem}.png'), m)


@pytest.fixture
def user(tmp_path):
    """A valid support folder and source; each test breaks one thing."""
    sup, src = tmp_path / 'support', tmp_path / 'line'
    _pair(sup, 'a')
    _pair(sup, 'b')
    src.mkdir()
    cv2.imwrite(str(src / 'q.png'), np.full((24, 32, 3), 99, np.uint8))
    return tmp_path


def _main(user, capsys, **over):
    from fdseg.cli.main import main

    args = dict(
        model='fm_filterbank_no-train_synthetic-all-1shot',
        support=str(user / 'support'),
        source=str(user / 'line'),
        out=str(user / 'out'),
    )
    args.update(over)
    argv = ['predict'] + [
        x for k, v in args.items() for x in ((f'--{k}', v) if v else (f'--{k}',))
    ]
    code = main(argv)
    err = capsys.readouterr().err
    assert not (user / 'out').exists() or over.get('out')
    return code, err


@pytest.mark.parametrize(
    'breakage,over,match',
    [
        (
            lambda u: shutil.copy(u / 'line/q.png', u / 'line/q.jpg'),
            {},
            r'--source: .*q\.jpg and .*q\.png would both be written as q\.png',
        ),
        (lambda u: None, {'threshold': '1.5'}, r'--threshold .* in \[0, 1\], got 1.5'),
        (
            lambda u: os.remove(u / 'support/masks/b.png'),
            {},
            r'--support .*support: .*support/images/b\.png has no mask in '
            r'.*support/masks \(expected b\.<ext>\)',
        ),
        (
            lambda u: _pair(u / 'support', 'b', mask_size=(12, 32)),
            {},
            r'--support: mask .*support/masks/b\.png is 32x12 but image '
            r'.*support/images/b\.png is 32x24',
        ),
        (
            lambda u: _pair(u / 'support', 'b', empty=True),
            {},
            r'--support: mask .*support/masks/b\.png is empty \(no pixel above '
            r'--mask-threshold 30\)',
        ),
        (
            lambda u: os.remove(u / 'line/q.png'),
            {},
            r'--source: no images in folder .*line',
        ),
        (
            lambda u: None,
            {'source': 'nowhere/*.png'},
            r"glob 'nowhere/\*\.png' matches no",
        ),
        (
            lambda u: None,
            {'model': 'fm_pdn-s_no-train_custom-1shot'},
            r'--model fm_pdn-s_no-train_custom-1shot: not a config file.*Did you '
            r'mean: fm_pdn-s_no-train_custom-all-1shot',
        ),
        (lambda u: None, {'support': 'nowhere'}, r'--support nowhere: no such folder'),
        (
            lambda u: (u / 'mine').mkdir() or (u / 'mine/notes.txt').write_text('x'),
            {'out': 'OUT'},
            r'--out .*mine: the folder is not empty and is not an earlier fdseg',
        ),
    ],
    ids=[
        'same-stem',
        'bad-threshold',
        'missing-mask',
        'size-mismatch',
        'empty-mask',
        'no-images',
        'empty-glob',
        'unknown-model',
        'no-support',
        'foreign-out',
    ],
)
def test_bad_input_names_it_and_writes_nothing(user, capsys, breakage, over, match):
    breakage(user)
    if over.get('out') == 'OUT':
        over = dict(out=str(user / 'mine'))
    code, err = _main(user, capsys, **over)
    assert code == 1
    assert re.search(match, err), err
    assert err.startswith('error: ') and 'Traceback' not in err
    assert not (user / 'out').exists()
    assert sorted(os.listdir(user)) == sorted(
        n for n in os.listdir(user) if not n.startswith('.tmp-')
    )


@pytest.mark.slow
def test_fast_cpu_predicts_what_the_documented_command_predicts(runs, data):
    """The documented command with ``--fast-cpu`` (same weights file):
    every convolution of FM-s tuned, named on stderr; the same masks and
    scores up to float rounding."""
    code, log = runs[0]['fast']
    assert code == 0, log[-4000:]
    assert 'fast CPU convolutions: pdn.0 ' in log and ' pdn.8 ' in log
    plain, fast = data / 'predictions', data / 'predictions_fast'
    stems = sorted(osp.splitext(n)[0] for n in os.listdir(plain / 'masks'))
    assert stems and stems == sorted(
        osp.splitext(n)[0] for n in os.listdir(fast / 'masks')
    )
    for stem in stems:
        a = cv2.imread(str(plain / 'masks' / f'{stem}.png'), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(fast / 'masks' / f'{stem}.png'), cv2.IMREAD_UNCHANGED)
        assert (a == b).mean() >= 0.995
        np.testing.assert_allclose(
            np.load(fast / 'scores' / f'{stem}.npy'),
            np.load(plain / 'scores' / f'{stem}.npy'),
            atol=1e-4,
        )


def test_fast_cpu_is_refused_on_a_gpu(user, capsys):
    code, err = _main(user, capsys, device='cuda', **{'fast-cpu': None})
    assert code == 1 and '--fast-cpu tunes CPU inference; --device cuda' in err


def test_support_folder_classes(tmp_path):
    """Each category sub-folder is one class (sorted), good/ is left out."""
    from fdseg.cli.predict import read_support_folder

    _pair(tmp_path, 'a', cat='scratch')
    _pair(tmp_path, 'b', cat='dent')
    _pair(tmp_path, 'c', cat='scratch')
    (tmp_path / 'images/good').mkdir()
    cv2.imwrite(str(tmp_path / 'images/good/g.png'), np.zeros((4, 4), np.uint8))
    imgs, masks, labels, names = read_support_folder(str(tmp_path))
    assert [osp.relpath(p, tmp_path) for p in imgs] == [
        'images/dent/b.png',
        'images/scratch/a.png',
        'images/scratch/c.png',
    ]
    assert [osp.relpath(p, tmp_path) for p in masks] == [
        'masks/dent/b.png',
        'masks/scratch/a.png',
        'masks/scratch/c.png',
    ]
    assert (labels, names) == ([1, 2, 2], ['dent', 'scratch'])


class _FakePredictor:
    """Thresholds the red channel; raises on the image named ``crash``."""

    class_names = ('background', 'defect')

    def predict_batch(self, items):
        from fdseg.apis import FewShotResult

        out = []
        for name, rgb in items:
            if name.startswith('crash'):
                raise RuntimeError('model crashed')
            score = rgb[..., 0].astype(np.float32) / 255
            out.append(FewShotResult.from_maps(name, score > 0.5, score, image=rgb))
        return out

    def describe(self):
        return dict(kind='fake')


def test_crash_mid_run_leaves_the_earlier_output(tmp_path):
    """A run that stops half-way writes nothing at --out: an earlier output
    stays as it was, no staging folder is left; a finished run replaces the
    earlier output as a whole."""
    from fdseg.cli.predict import predict_to_folder

    src = tmp_path / 'line'
    src.mkdir()
    img = np.zeros((8, 8, 3), np.uint8)
    img[2:5, 2:6] = (0, 0, 255)  # red in BGR
    for name in ('a', 'b', 'crash'):
        cv2.imwrite(str(src / f'{name}.png'), img)
    out = tmp_path / 'out'
    first = predict_to_folder(
        _FakePredictor(), str(src / 'a.png'), str(out), overlay=True
    )
    assert first['defect'] == 1 and sorted(os.listdir(out)) == [
        'masks',
        'overlays',
        'results.jsonl',
        'summary.json',
    ]
    before = (out / 'results.jsonl').read_text()
    with pytest.raises(RuntimeError, match='model crashed'):
        predict_to_folder(_FakePredictor(), str(src), str(out), batch_size=1)
    assert (out / 'results.jsonl').read_text() == before
    assert os.listdir(out / 'masks') == ['a.png']
    assert sorted(os.listdir(tmp_path)) == ['line', 'out']  # no staging left
    os.remove(src / 'crash.png')
    predict_to_folder(_FakePredictor(), str(src), str(out))
    assert sorted(os.listdir(out)) == ['masks', 'results.jsonl', 'summary.json']
    lines = (out / 'results.jsonl').read_text().splitlines()
    assert [json.loads(x)['instances'][0]['bbox'] for x in lines] == [[2, 2, 4, 3]] * 2
