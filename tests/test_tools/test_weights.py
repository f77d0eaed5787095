"""tools/test.py loads the weights a config names: the light families.

FM with PDN / DINO / DINOv2 / ResNet backbones, PATNet, SSP and PFENet,
an fdseg checkpoint with the cache empty, and the public inferencer API in
a user's script. The SAM-based families are in test_weights_sam.py (the two
files run on the two xdist workers side by side); what both share is in
weights_common.py.
"""

import os
import os.path as osp
import warnings

import numpy as np
import pytest
import torch

from tests.subprocess_utils import finish_ok, start
from tests.test_tools.weights_common import (
    FAMILIES,
    _cfg,
    _job,
    _reference,
    _tool_predictions,
    check_fails_without_weights_naming_the_file,
    check_uses_the_cached_weights,
    run_families,
    write_cache,
    write_data,
)

# Subprocess runs of tools/test.py: CI runs them (-m ''), the default skips.
pytestmark = pytest.mark.slow

# Longest first.
HERE = ('pdn', 'resnet', 'patnet', 'dino', 'dinov2', 'ssp', 'pfenet')


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    """A checkpoint cache holding the files of this module's families."""
    return write_cache(tmp_path_factory.mktemp('ckpt_cache'), HERE)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_data(tmp_path_factory.mktemp('tw_data'))


@pytest.fixture(scope='module')
def tool_runs(cache, data, tmp_path_factory):
    """Every family of this module with the cache full, two runs at a time.

    Also FM-s from an fdseg checkpoint with an empty cache.
    """
    from fdseg.apis import init_model

    root = tmp_path_factory.mktemp('tool_runs')
    old = os.environ.get('FDSEG_CHECKPOINT_DIR')
    os.environ['FDSEG_CHECKPOINT_DIR'] = str(cache)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            model = init_model(_cfg(FAMILIES['pdn'][0]))
    finally:
        if old is None:
            os.environ.pop('FDSEG_CHECKPOINT_DIR')
        else:
            os.environ['FDSEG_CHECKPOINT_DIR'] = old
    ckpt = root / 'fm_s.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    (root / 'empty_ckpt_cache').mkdir()
    extra = {
        ('pdn', 'ckpt'): _job(
            'pdn',
            data,
            root / 'empty_ckpt_cache',
            root / 'pdn_ckpt',
            checkpoint=[str(ckpt)],
        )
    }
    runs = run_families(HERE, data, cache, root, extra)
    runs['ckpt'] = ckpt
    return runs


@pytest.mark.parametrize('family', HERE)
def test_tools_test_uses_the_cached_weights(
    family, tool_runs, cache, data, monkeypatch
):
    check_uses_the_cached_weights(family, tool_runs, cache, data, monkeypatch)


@pytest.mark.parametrize('family', HERE)
def test_tools_test_fails_without_weights_naming_the_file(
    family, tool_runs, data, monkeypatch
):
    """Empty cache: the run stops before the first episode, naming the
    file, its full target path and the environment variable."""
    check_fails_without_weights_naming_the_file(family, tool_runs, data, monkeypatch)


def test_fdseg_checkpoint_needs_no_pretrained_file(tool_runs, cache, data, monkeypatch):
    """``tools/test.py CONFIG CKPT``: the checkpoint holds the backbone, so
    an empty cache is fine and the predictions equal the reference's."""
    code, log = tool_runs['done']['pdn', 'ckpt']
    assert code == 0, log[-4000:]
    assert f'fdseg checkpoint {tool_runs["ckpt"]}' in log
    assert 'RANDOM' not in log
    _, preds = _tool_predictions(tool_runs['root'] / 'pdn_ckpt' / 'out')
    ref = _reference('pdn', data, cache, monkeypatch)
    assert set(preds) == set(ref)
    for path, mask in ref.items():
        assert np.array_equal(preds[path], mask), path


# The public API as a user's script runs it: FM-s, one support, two queries.
_API_SCRIPT = """
import sys
import numpy as np
from fdseg.apis import FewShotInferencer
config, support, mask, out = sys.argv[1:5]
queries = sys.argv[5:]
inf = FewShotInferencer(config)
inf.set_support([support], [mask])
np.savez(out, *inf(queries))
"""


def test_inferencer_api_uses_the_cached_weights(
    cache, synthetic_root, tmp_path, monkeypatch
):
    """``FewShotInferencer(config)`` in a user's script loads the cached
    FM-s file (its masks equal the same API in this process with the same
    file); with the cache empty, it raises naming the file (in-process:
    the same constructor, the script's exit path is only Python's)."""
    import glob as _glob

    from fdseg.apis import FewShotInferencer
    from fdseg.utils.checkpoints import CHECKPOINTS, MissingCheckpointError

    imgs = sorted(_glob.glob(osp.join(synthetic_root, 'fabric', 'images', '*', '*')))
    support = imgs[0]
    mask = support.replace('/images/', '/ground_truth/').rsplit('.', 1)[0] + '.png'
    queries = imgs[1:3]
    config = _cfg(FAMILIES['pdn'][0])
    script = tmp_path / 'user_script.py'
    script.write_text(_API_SCRIPT)
    proc = start(
        [str(script), config, support, mask, str(tmp_path / 'full.npz'), *queries],
        cwd=str(tmp_path),
        env={'FDSEG_CHECKPOINT_DIR': str(cache)},
    )

    # While the script runs: the cache empty, in this process.
    empty = tmp_path / 'empty'
    empty.mkdir()
    monkeypatch.setenv('FDSEG_CHECKPOINT_DIR', str(empty))
    fname = CHECKPOINTS['gfds_fm_small']['filename']
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(MissingCheckpointError) as e:
            FewShotInferencer(config)
    assert str(empty / fname) in str(e.value), str(e.value)
    finish_ok(proc, 300)

    monkeypatch.setenv('FDSEG_CHECKPOINT_DIR', str(cache))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script (tool_env: one thread)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            inf = FewShotInferencer(config)
        inf.set_support([support], [mask])
        ref = inf(queries)
    finally:
        torch.set_num_threads(threads)
    got = np.load(tmp_path / 'full.npz')
    assert len(got.files) == len(ref) == 2
    for i, r in enumerate(ref):
        assert np.array_equal(got[f'arr_{i}'], r)
