"""Episodic training through tools/train.py: resume, CPU DDP, train mIoU.

A tiny trainable head (``tests/toy_modules.py``: conv backbone, masked
average prototype, 1x1 conv; no dropout, no batch norm) trains on a tiny
GFDS-layout folder (32x32 images, 8 training episodes, 2 epochs) with the
real bases ``gfds_episodic_fold0.py`` and ``episodic_epoch.py``:

* run A: 2 epochs straight, batch 4 (in-process ``tools/train.py``);
* run B: 1 epoch, then ``--resume`` to 2 epochs: equal to A bit for bit,
  optimiser state included;
* run C: ``torchrun`` 2 CPU processes (gloo), batch 2 each: the same global
  batch as A, so the same weights (to float rounding: the all-reduce sums
  in another order) and the same train-set mIoU;
* the train-mIoU hook's logged value equals an independent computation of
  the mIoU of the final model on the same training episodes.
"""

import importlib.util
import json
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

from fdseg.engine import load_trusted_checkpoint
from tests.conftest import REPO, write_product
from tests.subprocess_utils import finish, start, torchrun_train

BASE = osp.join(REPO, 'configs', '_base_')

CFG = """
_base_ = [r'{base}/datasets/gfds_episodic_fold0.py',
          r'{base}/schedules/episodic_epoch.py']
custom_imports = dict(imports=['tests.toy_modules'], allow_failed_imports=False)
model = dict(type='FewShotSegmentor', freeze_backbone=False,
             backbone=dict(type='ToyConvBackbone', channels=4),
             head=dict(type='ToyEpisodeHead', channels=4))
_ds = dict(_delete_=True, type='FewShotDefectDataset', data_root=r'{data}',
           shot=1, seed=0)
_train = [dict(type='LoadEpisode'), dict(type='ResizeEpisode', scale=(32, 32)),
          dict(type='BinarizeEpisodeMasks'),
          dict(type='RandomFlipEpisode', prob=0.5),
          dict(type='RandomRotate90Episode', prob=0.5),
          dict(type='PackEpisodeInputs')]
_test = [dict(type='LoadEpisode'), dict(type='ResizeEpisode', scale=(32, 32)),
         dict(type='BinarizeEpisodeMasks'), dict(type='PackEpisodeInputs')]
train_dataloader = dict(
    batch_size={batch}, num_workers=0, persistent_workers=False,
    dataset=dict(_ds, products=['texture'], support_draw='per_epoch',
                 pipeline=_train))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(_ds, products=['other'], pipeline=_test))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='FewShotIoUMetric')
test_evaluator = val_evaluator
custom_hooks = [dict(type='ToyDumpStateHook')]
# One visualizer instance per run (mmengine keeps them by name, and the
# runs A and B share this process).
visualizer = dict(name='vis_{tag}')
optim_wrapper = dict(optimizer=dict(lr=0.05))
# Few checkpoints and validations: each checkpoint formats the config (yapf).
train_cfg = dict(max_epochs={epochs}, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2),
                     train_miou=dict(interval=1, num_episodes=6, batch_size=2))
"""


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        name.replace('/', '_'), osp.join(REPO, 'tools', name + '.py')
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write_cfg(root, name, epochs, batch):
    path = osp.join(root, name)
    with open(path, 'w') as f:
        f.write(
            CFG.format(
                base=BASE,
                data=osp.join(root, 'data'),
                epochs=epochs,
                batch=batch,
                tag=osp.splitext(name)[0],
            )
        )
    return path


def _scalars(work_dir):
    """The lines of the run's vis_data/scalars.json (the last run's)."""
    import glob

    paths = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    with open(paths[-1]) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('episodic'))
    write_product(
        osp.join(root, 'data'), 'texture', ['crack', 'spot'], n=4, size=(32, 32)
    )
    write_product(
        osp.join(root, 'data'), 'other', ['a', 'b'], n=3, size=(32, 32), seed=1
    )
    wd = {k: osp.join(root, k) for k in ('a', 'b', 'c')}
    # C (2 processes, batch 2) in the background while A and B run here.
    cfg_c = _write_cfg(root, 'toy_c.py', 2, 2)
    proc_c = start(torchrun_train(cfg_c, wd['c']), cwd=root)
    train = _tool('train')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # Distinct file names: mmengine names its logger and visualizer
        # instances after the config file and the second.
        train.main([_write_cfg(root, 'toy_a.py', 2, 4), '--work-dir', wd['a']])
        train.main([_write_cfg(root, 'toy_b1.py', 1, 4), '--work-dir', wd['b']])
        train.main(
            [_write_cfg(root, 'toy_b2.py', 2, 4), '--work-dir', wd['b'], '--resume']
        )
    finally:
        torch.set_num_threads(threads)
    code, out_c = finish(proc_c, 300)
    assert code == 0, f'exit status {code}:\n{out_c[-6000:]}'
    return dict(root=root, wd=wd, out_c=out_c)


def _ckpt(path):
    return load_trusted_checkpoint(path, map_location='cpu')


@pytest.mark.slow
def test_resume_is_exact(runs):
    wd = runs['wd']
    a = _ckpt(osp.join(wd['a'], 'epoch_2.pth'))
    b = _ckpt(osp.join(wd['b'], 'epoch_2.pth'))
    init = torch.load(osp.join(wd['a'], 'rank0_init.pt'), weights_only=True)
    assert b['meta']['epoch'] == 2
    assert osp.isfile(osp.join(wd['b'], 'epoch_1.pth'))  # resumed from there
    for k, v in a['state_dict'].items():
        assert torch.equal(v, b['state_dict'][k]), k
    assert not torch.equal(a['state_dict']['head.cls.weight'], init['head.cls.weight'])
    sa, sb = a['optimizer']['state'], b['optimizer']['state']
    for k in sa:
        for name in sa[k]:
            assert torch.equal(sa[k][name], sb[k][name]), (k, name)
    # Best checkpoint by the test-fold mIoU of the validation loop.
    assert any(n.startswith('best_mIoU_epoch_') for n in _listdir(wd['a']))


def _listdir(d):
    import os

    return os.listdir(d)


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU (gloo) DDP path')
def test_two_process_ddp_equals_one_process_with_the_global_batch(runs):
    wd = runs['wd']
    r0 = torch.load(osp.join(wd['c'], 'rank0.pt'), weights_only=True)
    r1 = torch.load(osp.join(wd['c'], 'rank1.pt'), weights_only=True)
    init = torch.load(osp.join(wd['c'], 'rank0_init.pt'), weights_only=True)
    single = torch.load(osp.join(wd['a'], 'rank0.pt'), weights_only=True)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
        torch.testing.assert_close(r0[k], single[k], rtol=1e-5, atol=1e-6)
    assert not torch.equal(init['head.cls.weight'], r0['head.cls.weight'])
    # The train-mIoU hook gathered both ranks' episodes: same value.
    ta = [s for s in _scalars(wd['a']) if 'train/mIoU' in s]
    tc = [s for s in _scalars(wd['c']) if 'train/mIoU' in s]
    assert [s['step'] for s in tc] == [1, 2]
    for x, y in zip(ta, tc):
        assert x['train/mIoU'] == pytest.approx(y['train/mIoU'], abs=0.01)


@pytest.mark.slow
def test_logs_hold_fig7_curves_and_train_miou_is_right(runs):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from fdseg.registry import DATASETS, MODELS

    wd = runs['wd']
    lines = _scalars(wd['a'])
    losses = [s for s in lines if 'loss' in s]
    assert [s['epoch'] for s in losses] == [1, 1, 2, 2]  # 8 episodes / 4
    assert [s['step'] for s in lines if 'mIoU' in s and 'loss' not in s] == [2]
    train_miou = [s for s in lines if 'train/mIoU' in s]
    assert [s['step'] for s in train_miou] == [1, 2]
    # Independent check: the final model on the hook's sample of training
    # episodes (6 of 8 chosen by default_rng(0), fixed supports, no
    # augmentation), IoU per category with areas summed over its episodes.
    init_default_scope('fdseg')
    import tests.toy_modules  # noqa: F401

    cfg = Config.fromfile(osp.join(runs['root'], 'toy_a.py'))
    ds_cfg = cfg.train_dataloader.dataset.copy()
    ds_cfg.update(support_draw='fixed', pipeline=cfg._test)
    ds = DATASETS.build(ds_cfg)
    chosen = np.sort(np.random.default_rng(0).choice(len(ds), 6, replace=False))
    model = MODELS.build(cfg.model)
    state = _ckpt(osp.join(wd['a'], 'epoch_2.pth'))['state_dict']
    model.load_state_dict(state)
    model.eval()
    inter, union = {}, {}
    with torch.no_grad():
        for i in chosen:
            out = model.val_step(dict((k, [v]) for k, v in ds[int(i)].items()))[0]
            pred = out.pred_sem_seg.data[0] == 1
            gt = out.gt_sem_seg.data[0] == 1
            cat = out.category
            inter[cat] = inter.get(cat, 0) + int((pred & gt).sum())
            union[cat] = union.get(cat, 0) + int((pred | gt).sum())
    miou = 100 * np.mean([inter[c] / union[c] for c in inter])
    assert train_miou[-1]['train/mIoU'] == pytest.approx(miou, abs=0.01)


def test_entering_training_forgets_cached_supports():
    from mmengine.registry import init_default_scope

    import tests.toy_modules  # noqa: F401
    from fdseg.registry import MODELS

    init_default_scope('fdseg')
    model = MODELS.build(
        dict(
            type='FewShotSegmentor',
            freeze_backbone=False,
            backbone=dict(type='ToyConvBackbone', channels=4),
            head=dict(type='ToyEpisodeHead', channels=4),
        )
    )
    model._support_cache[('x',)] = 'state of old weights'
    model.eval()
    assert model._support_cache
    model.train()
    assert not model._support_cache


def test_amp_flag(monkeypatch, tmp_path):
    train = _tool('train')
    cfg = _write_cfg(str(tmp_path), 'toy_amp.py', 1, 4)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    # CPU: documented fallback, the optimiser wrapper is left alone.
    built = train.build_cfg(train.parse_args([cfg, '--amp']))
    assert built.optim_wrapper.type == 'OptimWrapper'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    built = train.build_cfg(train.parse_args([cfg, '--amp']))
    assert built.optim_wrapper.type == 'AmpOptimWrapper'
    assert built.optim_wrapper.loss_scale == 'dynamic'
    shutil.rmtree(str(tmp_path), ignore_errors=True)


def test_train_miou_hook_interval_zero_is_off():
    """``default_hooks.train_miou.interval=0`` switches the hook off (mmengine
    accepts ``None`` only for its own default hooks); negative is refused."""
    from fdseg.engine.hooks import EpisodicTrainMIoUHook

    off = EpisodicTrainMIoUHook(interval=0, before_train=True)
    # A runner would be touched (and this one fails on any attribute) if the
    # hook evaluated anything.
    off.before_train(object())
    off.after_train_epoch(object())
    with pytest.raises(ValueError, match='interval must be >= 0'):
        EpisodicTrainMIoUHook(interval=-1)
    on = EpisodicTrainMIoUHook(interval=1, before_train=True)
    with pytest.raises(AttributeError):
        on.after_train_epoch(object())
