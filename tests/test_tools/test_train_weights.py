"""``tools/train.py`` on a meta-learning config loads the backbone file.

The way a user runs it: a subprocess, SSP's official-format
``ssp_resnet50.pth`` (random values, tiny width) in a temporary checkpoint
cache, a generated GFDS-layout product as the training subset (Steel: fold
1, which the fold-0 config trains on), one epoch. The run reports the file
with its sha256 prefix, and the checkpoint it saves holds the file's
backbone (the frozen stem, layer1 and every BatchNorm unchanged; layer2 /
layer3 trained from it). With the cache empty it stops before training,
naming the file, with exit status 1 and no traceback.
"""

import glob
import hashlib
import os.path as osp

import pytest
import torch

from tests.conftest import REPO, write_product
from tests.subprocess_utils import run_pool

pytestmark = pytest.mark.slow
CONFIG = osp.join(REPO, 'configs', 'ssp', 'ssp_r50-deep_200e_gfds-fold0-1shot.py')
# SSP's official stem keys -> ResNetDeepStem's (test_resnet_deep_stem.py).
STEM = {
    'conv1.0.': 'conv1.',
    'conv1.1.': 'bn1.',
    'conv1.3.': 'conv2.',
    'conv1.4.': 'bn2.',
    'conv1.6.': 'conv3.',
    'bn1.': 'bn3.',
}


def _ours(key):
    for a, b in STEM.items():
        if key.startswith(a):
            return 'backbone.' + b + key[len(a) :]
    return 'backbone.' + key


def _options(root):
    opts = [
        'model.backbone.base_channels=8',
        'model.backbone.stage_blocks=[1,1,2]',
        'train_cfg.max_epochs=1',
        'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_dataloader.dataset.products=[Steel]',
        'train_dataloader.dataset.check_counts=False',
        'default_hooks.train_miou.num_episodes=1',
        'custom_hooks=[]',
    ]
    for loader in ('train', 'val', 'test'):
        opts.append(f'{loader}_dataloader.dataset.data_root={root}')
    for loader in ('val', 'test'):  # the last epoch validates: Steel, 1 episode
        opts += [
            f'{loader}_dataloader.dataset.split=all',
            f'{loader}_dataloader.dataset.products=[Steel]',
            f'{loader}_dataloader.dataset.check_counts=False',
            f'{loader}_dataloader.dataset.max_episodes_per_category=1',
            f'{loader}_dataloader.num_workers=0',
        ]
    return opts


def test_train_tool_loads_the_backbone_or_names_the_file(tmp_path):
    from fdseg.utils.checkpoints import CHECKPOINTS
    from tests.test_models.test_resnet_deep_stem import OfficialSSPResNet, randomise

    fname = CHECKPOINTS['ssp_resnet50']['filename']
    full, empty = tmp_path / 'cache', tmp_path / 'empty'
    full.mkdir()
    empty.mkdir()
    torch.manual_seed(6)
    official = randomise(OfficialSSPResNet(8, (1, 1, 2)), 7).state_dict()
    torch.save(official, full / fname)
    sha = hashlib.sha256((full / fname).read_bytes()).hexdigest()
    data = tmp_path / 'gfds'
    write_product(str(data), 'Steel', ['Am', 'Ld', 'Sc'], n=2, size=(64, 48))
    train = osp.join(REPO, 'tools', 'train.py')
    jobs = {
        name: (
            [
                train,
                CONFIG,
                '--work-dir',
                str(tmp_path / name),
                '--cfg-options',
                *_options(data),
            ],
            str(tmp_path),
            {'FDSEG_CHECKPOINT_DIR': str(cache)},
        )
        for name, cache in (('full', full), ('empty', empty))
    }
    done = run_pool(jobs, width=2, timeout=600)

    code, log = done['empty']
    assert code == 1, log[-4000:]
    assert f"error: Checkpoint 'ssp_resnet50' (file '{fname}')" in log, log[-3000:]
    assert str(empty / fname) in log and 'Traceback' not in log, log[-3000:]
    assert not glob.glob(str(tmp_path / 'empty' / '*.pth'))

    code, log = done['full']
    assert code == 0, log[-4000:]
    assert log.count('Weights of this run') == 1
    report = log.split('Weights of this run')[1][:1500]
    assert f'ssp_resnet50 <- {full / fname}' in report, report
    assert sha[:8] in report, report
    assert 'RANDOM' not in report, report
    ckpts = sorted(glob.glob(str(tmp_path / 'full' / 'epoch_*.pth')))
    assert ckpts, sorted(p.name for p in (tmp_path / 'full').iterdir())
    saved = torch.load(ckpts[-1], map_location='cpu', weights_only=False)
    state = saved['state_dict']
    trained = 0
    for key, value in official.items():
        ours = state[_ours(key)]
        assert ours.shape == value.shape, key
        # 4-D: a convolution (downsample.0 too); 0-/1-D: BatchNorm
        if key.split('.')[0] in ('layer2', 'layer3') and value.dim() == 4:
            trained += not torch.equal(ours, value)
        else:  # frozen: the stem, layer1, every BatchNorm (norm_eval)
            assert torch.equal(ours, value), key
    assert trained, 'layer2 / layer3 did not train'
