"""``fdseg bank`` / ``fdseg predict --bank`` / ``fdseg export`` as a user runs them.

One subprocess chain through the console script (``bank add --support``,
``bank calibrate``, ``bank list``, ``predict --bank`` with a corrupt image
mid-stream, ``export --format onnx``) on files written here, with an
official-format FM-s weight file (random values) in a temporary checkpoint
cache; its outputs must equal the in-process DefectBank reference (the ONNX
graph's masks through onnxruntime: >= 99.9 % equal pixels). ``fdseg export``
runs once more with the cache empty, through the console script's ``main()``
in-process: exit status 1 naming the missing file, no traceback, no output
(the console script's empty-cache exit path as a command is ``fdseg
predict``'s, in test_predict; ``bank add`` builds the model through
``FewShotInferencer``, whose empty-cache failure is tested there too).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.subprocess_utils import finish, tool_env

pytest.importorskip('safetensors', reason='safetensors is not installed')

FDSEG = Path(sys.executable).parent / 'fdseg'
CONFIG = 'fm_pdn-s_no-train_custom-all-1shot'
EXPORT = f'{FDSEG} export --model {CONFIG} --bank line.bank --format onnx --out'
HAVE_ORT = all(importlib.util.find_spec(m) for m in ('onnx', 'onnxruntime'))


def _img(seed, size=(64, 64), box=None):
    r = np.random.default_rng(seed)
    img = r.integers(0, 255, (*size, 3), dtype=np.uint8)
    mask = np.zeros(size, np.uint8)
    if box is not None:
        y0, y1, x0, x1 = box
        mask[y0:y1, x0:x1] = 255
        img[mask > 0] = img[mask > 0] // 4 + 180
    return img, mask


def _write_files(root: Path) -> None:
    for cls, seed, box in (
        ('scratch', 1, (20, 40, 10, 30)),
        ('dent', 3, (40, 60, 40, 60)),
    ):
        img, mask = _img(seed, box=box)
        for sub, arr in (('images', img), ('masks', mask)):
            (root / 'support' / sub / cls).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / 'support' / sub / cls / 'a.png'), arr)
    (root / 'good').mkdir()
    for i in range(6):
        cv2.imwrite(str(root / 'good' / f'g{i}.png'), _img(100 + i)[0])
    (root / 'src').mkdir()
    cv2.imwrite(str(root / 'src' / 'q1.png'), _img(5, box=(20, 40, 10, 30))[0])
    (root / 'src' / 'q2_broken.png').write_bytes(b'\x89PNG\r\n\x1a\n broken')
    cv2.imwrite(
        str(root / 'src' / 'q3.png'), _img(6, size=(48, 80), box=(5, 30, 40, 70))[0]
    )


@pytest.mark.slow
def test_bank_cli_matches_in_process(tmp_path, monkeypatch, capsys):
    from tests.conftest import REPO  # noqa: F401  (the suite's root)

    _write_files(tmp_path)
    cache = tmp_path / 'cache'
    cache.mkdir()
    from fdseg.models.backbones import PDNStudent

    torch.manual_seed(4)
    torch.save(PDNStudent(size='small').pdn.state_dict(), cache / 'model_small.pth')
    add = (
        f'{FDSEG} bank add --bank {{bank}} --model {CONFIG} --scale 64 64 '
        f'--support support --device cpu'
    )
    chain = ' && '.join(
        [
            add.format(bank='line.bank'),
            f'{FDSEG} bank calibrate --bank line.bank --good good --far 0.2 --seed 1',
            f'{FDSEG} bank list --bank line.bank --json > list.json',
            f'{FDSEG} predict --bank line.bank --source src --out pred --device cpu',
        ]
        + ([f'{EXPORT} line.onnx'] if HAVE_ORT else [])
    )

    def popen(cmd, cache_dir):
        return subprocess.Popen(
            ['bash', '-c', cmd],
            cwd=tmp_path,
            env={**tool_env(), 'FDSEG_CHECKPOINT_DIR': str(cache_dir)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    code, out = finish(popen(chain, cache), 300)
    assert code == 0, out[-6000:]
    assert "added support/images/scratch/a.png to 'scratch'" in out
    assert '2 classes' in out and '1 skipped' in out and 'q2_broken.png' in out
    # the in-process reference: same files, same calls
    monkeypatch.setenv('FDSEG_CHECKPOINT_DIR', str(cache))
    monkeypatch.chdir(tmp_path)
    from fdseg.bank import DefectBank

    bank = DefectBank(CONFIG, device='cpu', scale=(64, 64))
    for cls in ('dent', 'scratch'):  # sorted sub-folders, as the CLI reads them
        bank.add(cls, f'support/images/{cls}/a.png', f'support/masks/{cls}/a.png')
    cal = bank.calibrate('good', target_far=0.2, seed=1)
    saved = DefectBank.read_meta('line.bank')
    assert saved['calibration']['threshold'] == cal['threshold']
    assert saved['calibration']['holdout_far'] == cal['holdout_far']
    assert [c['name'] for c in saved['classes']] == ['dent', 'scratch']
    assert saved['model']['state_sha256'] == bank.fingerprint
    listed = json.loads((tmp_path / 'list.json').read_text())
    assert [(c['name'], c['examples']) for c in listed['classes']] == [
        ('dent', 1),
        ('scratch', 1),
    ]
    assert listed['calibration']['threshold'] == cal['threshold']
    lines = [json.loads(x) for x in (tmp_path / 'pred' / 'results.jsonl').open()]
    assert [x['image'] for x in lines] == ['q1.png', 'q2_broken.png', 'q3.png']
    assert 'error' in lines[1]
    ref = {r.name: r for r in bank.predict('src', on_error=lambda n, e: None)}
    for rec in (lines[0], lines[2]):
        r = ref[rec['image']]
        assert rec['decision'] == r.decision and rec['threshold'] == cal['threshold']
        assert rec['score'] == pytest.approx(r.score, abs=1e-6)
        assert len(rec['instances']) == len(r.instances)
        png = cv2.imread(
            os.path.join(tmp_path, 'pred', 'masks', rec['image']), cv2.IMREAD_UNCHANGED
        )
        np.testing.assert_array_equal(png, r.mask_image())
    assert any(len(r.instances) for r in ref.values())

    # ``fdseg export`` with the cache empty: the console script's main() in
    # this process (its empty-cache exit path as a command: test_predict).
    from fdseg.cli.main import main as fdseg_main

    empty = tmp_path / 'empty_cache'
    empty.mkdir()
    monkeypatch.setenv('FDSEG_CHECKPOINT_DIR', str(empty))
    capsys.readouterr()
    code = fdseg_main(EXPORT.split()[1:] + ['empty.onnx'])
    out = ''.join(capsys.readouterr())
    assert code == 1, out[-4000:]
    assert 'model_small.pth' in out and str(empty) in out, out[-4000:]
    assert 'Traceback' not in out, out[-4000:]
    assert not list(tmp_path.glob('empty.onnx*'))

    if not HAVE_ORT:
        pytest.skip('onnx / onnxruntime not installed: fdseg export parity not run')
    from fdseg.deploy.export import ExportedBank

    graph = ExportedBank(str(tmp_path / 'line.onnx'))
    assert list(graph.class_names) == ['background', 'dent', 'scratch']
    same = total = 0  # pooled over the queries (a few resize-edge pixels)
    for name in ('q1.png', 'q3.png'):
        bgr = cv2.imread(str(tmp_path / 'src' / name))
        mask, _ = graph(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        assert mask.shape == ref[name].mask.shape
        assert (mask == ref[name].mask).mean() >= 0.995, name
        same, total = same + (mask == ref[name].mask).sum(), total + mask.size
    assert same / total >= 0.999, same / total
