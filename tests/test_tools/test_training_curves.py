"""tools/analysis_tools/plot_training_curves.py (Fig. 7), run as users do.

The logs are written here in mmengine's ``vis_data/scalars.json`` layout
(what ``tests/test_engine/test_episodic_training.py`` checks a real run
writes): a run interrupted after epoch 2 and resumed from epoch 1, so the
resumed run's epoch 2 replaces the first one's. Per-epoch values are worked
by hand.
"""

import json
import os
import os.path as osp

import pytest

from tests.conftest import REPO
from tests.subprocess_utils import finish, start

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'plot_training_curves.py')


def _log(work_dir, stamp, lines):
    d = osp.join(work_dir, stamp, 'vis_data')
    os.makedirs(d)
    with open(osp.join(d, 'scalars.json'), 'w') as f:
        for line in lines:
            f.write(json.dumps(line) + '\n')


def _loss(epoch, it, v):
    return dict(lr=0.01, loss=v, loss_seg=v, epoch=epoch, iter=it, step=it)


@pytest.mark.slow
def test_plot_training_curves(tmp_path):
    wd = str(tmp_path / 'run')
    _log(
        wd,
        '20250101_000000',
        [
            {'train/mIoU': 5.0, 'train/FB-IoU': 40.0, 'step': 0},
            _loss(1, 1, 1.0),
            _loss(1, 2, 0.8),
            {'train/mIoU': 10.0, 'step': 1},
            {'mIoU': 3.0, 'FB-IoU': 45.0, 'data_time': 0.1, 'step': 1},
            _loss(2, 3, 0.9),  # interrupted: replaced by the resumed run
        ],
    )
    _log(
        wd,
        '20250101_010000',
        [
            _loss(2, 3, 0.5),
            _loss(2, 4, 0.3),
            {'train/mIoU': 20.0, 'step': 2},
            {'mIoU': 6.0, 'step': 2},
            _loss(3, 5, 0.2),
            {'train/mIoU': 30.0, 'step': 3},
            {'mIoU': 7.0, 'step': 3},
        ],
    )
    out = str(tmp_path / 'fig7.png')
    bad = str(tmp_path / 'bad')
    _log(bad, '20250101_000000', [_loss(1, 1, 1.0), {'mIoU': 3.0, 'step': 1}])
    procs = [
        start([TOOL, wd, '--out', out], cwd=str(tmp_path)),
        start([TOOL, bad, '--out', str(tmp_path / 'no.png')], cwd=str(tmp_path)),
    ]
    (code, text), (bad_code, bad_text) = (finish(p, 120) for p in procs)
    assert code == 0, text
    rows = [line.split() for line in text.splitlines() if line[:5].strip().isdigit()]
    assert rows == [
        ['0', '-', '5.00', '-'],
        ['1', '0.9000', '10.00', '3.00'],
        ['2', '0.4000', '20.00', '6.00'],
        ['3', '0.2000', '30.00', '7.00'],
    ]
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert os.path.getsize(out) < 200_000
    # A log without the train-set mIoU: the file and the key are named,
    # and nothing is written.
    assert bad_code == 1
    assert osp.join(bad, '20250101_000000', 'vis_data', 'scalars.json') in bad_text
    assert "'train/mIoU'" in bad_text and 'train_miou' in bad_text
    assert not osp.exists(tmp_path / 'no.png')
