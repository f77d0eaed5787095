"""gfds_table.py rows of trained methods: cross-domain and in-domain (``*``).

Small ``metrics.json`` files written here stand for the test outputs of the
runs; the expected cells and averages are worked by hand (declared category
counts: Tile 5, Steel 3, Kol 1, R_small 3).
"""

import importlib.util
import json
import os.path as osp

import pytest

from tests.conftest import REPO


def _tool():
    spec = importlib.util.spec_from_file_location(
        'gfds_table_tool', osp.join(REPO, 'tools', 'analysis_tools', 'gfds_table.py')
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write(root, name, products):
    """``products``: name -> (mIoU, FB-IoU(gfds), {category: IoU})."""
    metrics = {}
    for p, (miou, fb, cats) in products.items():
        metrics[f'{p}/mIoU'] = miou
        metrics[f'{p}/FB-IoU(gfds)'] = fb
        for c, v in cats.items():
            metrics[f'{p}/{c}/IoU'] = v
    path = osp.join(str(root), name)
    with open(path, 'w') as f:
        json.dump(dict(metrics=metrics), f)
    return path


@pytest.fixture
def outputs(tmp_path):
    return dict(
        # fold-0 model, tested on fold-0 products.
        fold0=_write(
            tmp_path,
            'fold0.json',
            dict(
                Tile=(40.0, 60.0, dict(crack=30.0, oil=50.0)),
                R_small=(10.0, 50.0, dict(fins=10.0)),
            ),
        ),
        fold1=_write(
            tmp_path,
            'fold1.json',
            dict(Steel=(70.0, 80.0, dict(Am=70.0)), Kol=(20.0, 55.0, dict(bad=20.0))),
        ),
        # One held-out class per product.
        in_domain=_write(
            tmp_path,
            'in_domain.json',
            dict(
                Tile=(55.0, 70.0, dict(crack=55.0)),
                Steel=(65.0, 75.0, dict(Am=65.0)),
                R_small=(15.0, 52.0, dict(fins=15.0)),
            ),
        ),
        out=str(tmp_path / 't4'),
    )


def test_cross_domain_and_in_domain_rows(outputs):
    o = outputs
    with pytest.warns(UserWarning, match='cross-domain row without'):
        rows, files = _tool().main(
            [
                '--cross-domain', 'M', o['fold0'], o['fold1'],
                '--in-domain', 'M*', o['in_domain'], o['fold0'], o['fold1'],
                '--out-dir', o['out'],
            ]
        )  # fmt: skip
    cross, star = rows['M'], rows['M*']
    assert cross['order'] == ['Tile', 'Steel', 'Kol', 'R_small']
    # (5 * 40 + 3 * 70 + 1 * 20 + 3 * 10) / 12, not the mean of the two
    # folds' averages (28.75 and 57.5).
    assert cross['average']['mIoU'] == pytest.approx(460 / 12)
    assert cross['average']['FB_IoU'] == pytest.approx((60 + 80 + 55 + 50) / 4)
    # The * row: in-domain cells, Kol from the cross-domain runs.
    assert star['order'] == ['Tile', 'Steel', 'Kol', 'R_small']
    assert star['products']['Tile']['mIoU'] == 55.0
    assert star['products']['Kol']['mIoU'] == 20.0
    assert star['average']['mIoU'] == pytest.approx(
        (5 * 55 + 3 * 65 + 20 + 3 * 15) / 12
    )
    assert star['average']['FB_IoU'] == pytest.approx((70 + 75 + 55 + 52) / 4)
    md = open(files['markdown']).read()
    assert '| M | 40.0, 60.0 |' in md and '| M* | 55.0, 70.0 |' in md


def test_wrong_runs_are_named(outputs):
    o = outputs
    tool = _tool()
    # Folds swapped: each model must be tested on its own test fold.
    with pytest.raises(SystemExit, match=r'fold1\.json.*fold0 run.*Steel'):
        tool.main(['--cross-domain', 'M', o['fold1'], o['fold0']])
    with pytest.raises(SystemExit, match='fold-0 and the fold-1'):
        tool.main(['--cross-domain', 'M', o['fold0']])
    # A fold run given as the in-domain run.
    with pytest.raises(SystemExit, match=r'fold1\.json: Kol has no in-domain split'):
        tool.main(['--in-domain', 'M*', o['fold1']])
    # Two classes of one product: not the in-domain test set.
    with pytest.raises(SystemExit, match=r'Tile has 2 evaluated classes'):
        tool.main(['--in-domain', 'M*', o['fold0']])
