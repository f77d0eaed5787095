"""Tests of fdseg.engine and tools/train.py / tools/test.py.

The tools run on a toy regressor from ``tests/toy_modules.py``, as users run
them (subprocesses, from a directory outside the repo) where the command is
what is tested, otherwise through their ``main(argv)`` in this process
(``tests.subprocess_utils.tool_main``):

* resume is exact: 6 iterations straight (a command) == 3 + ``--resume`` + 3
  (in-process), which also
  shows that fdseg's training checkpoints (message hub with
  ``HistoryBuffer``) load although torch defaults to ``weights_only=True``;
* third-party weights stay on the weights-only path;
* 2-process CPU DDP (gloo) through ``torch.distributed.run`` ends with
  identical weights on both ranks and exit status 0.
"""

import glob
import importlib.util
import os.path as osp
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

from fdseg.engine import (
    TRUSTED_PREFIX,
    load_trusted_checkpoint,
    resolve_dist_backend,
    trusted_checkpoint_loading,
)
from fdseg.registry import HOOKS, MODELS
from tests.conftest import REPO
from tests.subprocess_utils import assert_same_state as _assert_same_state
from tests.subprocess_utils import finish as _finish
from tests.subprocess_utils import start as _start
from tests.subprocess_utils import tool_main
from tests.subprocess_utils import torchrun_train as _torchrun_train

TOOLS = osp.join(REPO, 'tools')
BASE = osp.join(REPO, 'configs', '_base_')

TOY_CFG = """
_base_ = [
    r'{base}/default_runtime.py',
    r'{base}/schedules/schedule_160k_adam.py',
]
custom_imports = dict(imports=['tests.toy_modules'],
                      allow_failed_imports=False)
randomness = dict(seed=0)
model = dict(type='ToyRegressor', in_dim=8)
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ToyRegressionDataset', num_samples=64))
test_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ToyRegressionDataset', num_samples=16, seed=1))
test_evaluator = [dict(type='ToyMSEMetric')]
val_cfg = None
optim_wrapper = dict(optimizer=dict(lr=1e-2))
train_cfg = dict(max_iters={max_iters}, val_interval=1000000)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=3))
custom_hooks = [dict(type='ToyDumpStateHook')]
"""


def write_toy_cfg(path, max_iters=6):
    """Write the toy config (inherits the real _base_ runtime/schedule)."""
    with open(path, 'w') as f:
        f.write(TOY_CFG.format(base=BASE, max_iters=max_iters))
    return str(path)


def _run(args, cwd, timeout=120):
    code, out = _finish(_start(args, cwd), timeout)
    assert code == 0, f'exit status {code}:\n{out[-6000:]}'
    return out


def _weights(ckpt):
    return load_trusted_checkpoint(str(ckpt), map_location='cpu')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Run A: 6 iters straight, as a user's command (tools/train.py in a
    subprocess, outside the repo). Run B: 3 iters, then --resume to 6,
    through the tool's main() in this process while A runs (the resume
    command is tested as a command in test_distill)."""
    root = tmp_path_factory.mktemp('engine')
    cfg6 = write_toy_cfg(root / 'toy_6.py', max_iters=6)
    cfg3 = write_toy_cfg(root / 'toy_3.py', max_iters=3)
    wd_a, wd_b = str(root / 'straight'), str(root / 'resumed')
    train = osp.join(TOOLS, 'train.py')
    pa = _start([train, cfg6, '--work-dir', wd_a], cwd=str(root))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the command (one OMP thread)
    try:
        tool_main('train', [cfg3, '--work-dir', wd_b])
        tool_main('train', [cfg6, '--work-dir', wd_b, '--resume'])
    finally:
        torch.set_num_threads(threads)
    code, out = _finish(pa, 120)
    assert code == 0, f'exit status {code}:\n{out[-6000:]}'
    # B's two runs log under their start second (one folder if the same).
    resume_log = ''
    for log in sorted(glob.glob(osp.join(wd_b, '*', '*.log'))):
        with open(log) as f:
            resume_log += f.read()
    return dict(root=root, cfg=cfg6, straight=wd_a, resumed=wd_b, resume_log=resume_log)


@pytest.mark.slow
def test_resume_is_exact(trained):
    wd_a, wd_b = trained['straight'], trained['resumed']
    assert 'resumed epoch: 0, iter: 3' in trained['resume_log']
    a3, a6 = (
        _weights(osp.join(wd_a, 'iter_3.pth')),
        _weights(osp.join(wd_a, 'iter_6.pth')),
    )
    b3, b6 = (
        _weights(osp.join(wd_b, 'iter_3.pth')),
        _weights(osp.join(wd_b, 'iter_6.pth')),
    )
    _assert_same_state(a3['state_dict'], b3['state_dict'])
    _assert_same_state(a6['state_dict'], b6['state_dict'])
    # The optimiser (Adam moments, step) resumed too.
    sa, sb = a6['optimizer']['state'], b6['optimizer']['state']
    assert sa.keys() == sb.keys()
    for k in sa:
        for name in sa[k]:
            assert torch.equal(sa[k][name], sb[k][name]), (k, name)
    assert b6['meta']['iter'] == 6
    # Training did something between the two checkpoints.
    assert not torch.equal(
        a3['state_dict']['linear.weight'], a6['state_dict']['linear.weight']
    )
    # The hook's end-of-run dump equals the last checkpoint.
    _assert_same_state(
        torch.load(osp.join(wd_b, 'rank0.pt'), weights_only=True), b6['state_dict']
    )


def test_training_checkpoint_needs_trusted_loader(trained):
    ckpt = osp.join(trained['resumed'], 'iter_6.pth')
    # The issue fixed here: mmengine's default local loader is weights-only.
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(ckpt, map_location='cpu')
    local_loader = CheckpointLoader._schemes['']
    with trusted_checkpoint_loading():
        assert 'message_hub' in _load_checkpoint(ckpt, map_location='cpu')
    assert CheckpointLoader._schemes[''] is local_loader  # restored
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(ckpt, map_location='cpu')
    # Explicit opt-in prefix, usable anywhere mmengine resolves schemes.
    ckpt_prefixed = TRUSTED_PREFIX + ckpt
    assert 'message_hub' in _load_checkpoint(ckpt_prefixed)
    assert 'message_hub' in load_trusted_checkpoint(ckpt_prefixed)
    hub = load_trusted_checkpoint(ckpt)['message_hub']
    assert any(isinstance(v, HistoryBuffer) for v in hub['log_scalars'].values())


def test_third_party_checkpoint_refused(tmp_path):
    from tests.toy_modules import ToyPayload, ToyRegressor

    state = ToyRegressor().state_dict()
    evil = str(tmp_path / 'third_party.pth')
    torch.save(dict(state_dict=state, meta=ToyPayload()), evil)
    plain = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=state), plain)

    # mmengine's loader (init_cfg=Pretrained) keeps weights_only=True ...
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(evil, map_location='cpu')
    model = MODELS.build(
        dict(type='ToyRegressor', init_cfg=dict(type='Pretrained', checkpoint=evil))
    )
    with pytest.raises(pickle.UnpicklingError):
        model.init_weights()
    # ... while a plain state dict still loads through it.
    model = MODELS.build(
        dict(type='ToyRegressor', init_cfg=dict(type='Pretrained', checkpoint=plain))
    )
    model.init_weights()
    assert torch.equal(model.linear.weight, state['linear.weight'])

    # fdseg's resolver for third-party weights, where it exists.
    try:
        from fdseg.utils.checkpoints import load_third_party_state_dict
    except ImportError:
        load_third_party_state_dict = None
    if load_third_party_state_dict is not None:
        with pytest.raises(pickle.UnpicklingError):
            load_third_party_state_dict(evil)


def test_test_tool_with_checkpoint(trained, tmp_path):
    out_dir = str(tmp_path / 'out')
    ckpt = osp.join(trained['resumed'], 'iter_6.pth')
    log = _run(
        [
            osp.join(TOOLS, 'test.py'),
            trained['cfg'],
            ckpt,
            '--work-dir',
            str(tmp_path / 'wd'),
            '--out',
            out_dir,
        ],
        cwd=str(tmp_path),
    )
    assert 'Load checkpoint from' in log
    assert osp.isfile(osp.join(out_dir, 'metrics.json'))


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'fdseg_tool_{name}', osp.join(TOOLS, f'{name}.py')
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tool_argument_handling(tmp_path):
    cfg = write_toy_cfg(tmp_path / 'toy.py')
    train = _load_tool('train')
    c = train.build_cfg(train.parse_args([cfg]))
    assert c.work_dir == osp.join('./work_dirs', 'toy')
    assert c.resume is False and c.load_from is None
    c = train.build_cfg(train.parse_args([cfg, '--resume']))
    assert c.resume is True and c.load_from is None
    c = train.build_cfg(train.parse_args([cfg, '--resume', 'x.pth']))
    assert c.resume is True and c.load_from == 'x.pth'
    c = train.build_cfg(
        train.parse_args(
            [cfg, '--amp', '--work-dir', 'w', '--cfg-options', 'train_cfg.max_iters=2']
        )
    )
    assert c.work_dir == 'w' and c.train_cfg.max_iters == 2
    expected = 'AmpOptimWrapper' if torch.cuda.is_available() else 'OptimWrapper'
    assert c.optim_wrapper.type == expected

    test = _load_tool('test')
    c = test.build_cfg(test.parse_args([cfg]))  # training-free: no ckpt
    assert c.load_from is None
    assert c.default_hooks.visualization.draw is False
    c = test.build_cfg(
        test.parse_args(
            [
                cfg,
                'a.pth',
                '--out',
                'o',
                '--show-dir',
                'vis',
                '--cfg-options',
                'test_evaluator.0.prefix=x',
            ]
        )
    )
    assert c.load_from == 'a.pth'
    assert c.test_evaluator[0].output_dir == 'o'
    vis = c.default_hooks.visualization
    assert vis.type == 'FewShotVisualizationHook'
    assert vis.draw is True and vis.show_dir == 'vis'
    # One evaluator dict, and an Evaluator holding metrics.
    ev = dict(type='ToyMSEMetric')
    test._set_output_dir(ev, 'o')
    assert ev['output_dir'] == 'o'
    ev = dict(type='Evaluator', metrics=[dict(type='A'), dict(type='B')])
    test._set_output_dir(ev, 'o')
    assert [m['output_dir'] for m in ev['metrics']] == ['o', 'o']


def test_base_configs():
    rt = Config.fromfile(osp.join(BASE, 'default_runtime.py'))
    assert rt.default_scope == 'fdseg'
    assert rt.runner_type == 'FDSegRunner'
    assert rt.env_cfg.dist_cfg.backend == 'auto'
    assert rt.env_cfg.cudnn_benchmark is False
    assert rt.log_processor.by_epoch is False
    assert rt.visualizer.type == 'FewShotSegVisualizer'
    assert rt.load_from is None and rt.resume is False

    sch = Config.fromfile(osp.join(BASE, 'schedules', 'schedule_160k_adam.py'))
    assert sch.optim_wrapper.optimizer == dict(
        type='Adam', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-5
    )
    assert sch.train_cfg.type == 'IterBasedTrainLoop'
    assert sch.train_cfg.max_iters == 160000
    assert sch.default_hooks.checkpoint.interval == 10000
    assert sch.default_hooks.checkpoint.max_keep_ckpts == 3
    assert sch.default_hooks.logger.interval == 50
    test_only = Config.fromfile(osp.join(BASE, 'schedules', 'schedule_test_only.py'))
    assert test_only.test_cfg.type == 'TestLoop'
    assert 'train_cfg' not in test_only
    for cfg in (sch, test_only):
        assert {
            'timer',
            'logger',
            'param_scheduler',
            'checkpoint',
            'sampler_seed',
            'visualization',
        } <= set(cfg.default_hooks)
        for hook in cfg.default_hooks.values():
            assert HOOKS.get(hook['type']) is not None, hook['type']


def test_resolve_dist_backend():
    cuda = torch.cuda.is_available()
    assert resolve_dist_backend('auto') == ('nccl' if cuda else 'gloo')
    assert resolve_dist_backend(None) == ('nccl' if cuda else 'gloo')
    assert resolve_dist_backend('gloo') == 'gloo'
    assert resolve_dist_backend('nccl') == ('nccl' if cuda else 'gloo')


@pytest.mark.slow
@pytest.mark.skipif(
    torch.cuda.is_available(), reason='exercises the CPU (gloo) DDP path'
)
def test_cpu_ddp_two_processes(tmp_path):
    cfg = write_toy_cfg(tmp_path / 'toy_ddp.py', max_iters=4)
    wd = str(tmp_path / 'wd')
    for attempt in range(2):  # a raced free port gets one retry
        proc = _start(
            _torchrun_train(cfg, wd),
            cwd=str(tmp_path),
        )
        code, out = _finish(proc, 150)
        if code == 0 or 'address already in use' not in out.lower():
            break
    # torchrun exits 0 only if both workers did.
    assert code == 0, f'exit status {code}:\n{out[-6000:]}'
    r0 = torch.load(osp.join(wd, 'rank0.pt'), weights_only=True)
    r1 = torch.load(osp.join(wd, 'rank1.pt'), weights_only=True)
    init = torch.load(osp.join(wd, 'rank0_init.pt'), weights_only=True)
    _assert_same_state(
        init, torch.load(osp.join(wd, 'rank1_init.pt'), weights_only=True)
    )
    _assert_same_state(r0, r1)
    assert not torch.equal(r0['linear.weight'], init['linear.weight'])
    # Only rank 0 writes checkpoints; they hold the synchronised weights.
    ckpt = _weights(osp.join(wd, 'iter_4.pth'))
    _assert_same_state(ckpt['state_dict'], r0)


def _bad_checkpoints(good, root):
    """Variants of a good fdseg checkpoint (a dict), each wrong in one way."""
    sd = good['state_dict']
    variants = {
        'missing': dict(good, state_dict={'linear.weight': sd['linear.weight']}),
        'unexpected': dict(good, state_dict=dict(sd, extra=torch.zeros(1))),
        'shape': dict(
            good, state_dict=dict(sd, **{'linear.weight': torch.zeros(1, 3)})
        ),
        # All three at once: one run of the tool checks every list is named.
        'mismatch': dict(
            good,
            state_dict={'linear.weight': torch.zeros(1, 3), 'extra': torch.zeros(1)},
        ),
        'no_state_dict': dict(sd),
        'other_model': dict(
            good,
            state_dict={'conv.weight': torch.zeros(1), 'conv.bias': torch.zeros(1)},
        ),
    }
    paths = {}
    for name, obj in variants.items():
        paths[name] = str(root / f'{name}.pth')
        torch.save(obj, paths[name])
    return paths


# What each bad checkpoint's error must name.
_BAD_NAMES = {
    'missing': ['missing keys (1): linear.bias'],
    'unexpected': ['unexpected keys (1): extra'],
    'shape': ['linear.weight (1, 3) vs model (1, 8)'],
    'no_state_dict': ['is not an fdseg checkpoint', "'linear.weight'"],
    'other_model': ['checkpoint of another model', 'conv.weight'],
}
_BAD_NAMES['mismatch'] = (
    _BAD_NAMES['missing'] + _BAD_NAMES['unexpected'] + _BAD_NAMES['shape']
)


@pytest.mark.parametrize('name', sorted(_BAD_NAMES))
def test_check_fdseg_checkpoint_names_the_keys(tmp_path, name):
    """Each way a checkpoint can misfit, checked in-process."""
    from fdseg.engine import CheckpointMismatchError, check_fdseg_checkpoint
    from tests.toy_modules import ToyRegressor

    good = dict(state_dict=ToyRegressor().state_dict(), meta={})
    paths = _bad_checkpoints(good, tmp_path)
    ckpt = load_trusted_checkpoint(paths[name], map_location='cpu')
    with pytest.raises(CheckpointMismatchError) as err:
        check_fdseg_checkpoint(ToyRegressor(), ckpt, paths[name], strict=True)
    for text in _BAD_NAMES[name]:
        assert text in str(err.value), (text, str(err.value))
    assert paths[name] in str(err.value)


@pytest.mark.slow
def test_test_tool_checkpoints_load_strictly(trained, tmp_path):
    """Through tools/test.py: a misfit checkpoint stops the run naming keys;
    --non-strict loads the matching keys and says which were left out.

    One run as a user's command (exit status, no traceback, every key list
    named); the other checkpoints through the tool's ``main()`` in-process
    (the same checks, without a Python start each)."""
    from fdseg.engine import USER_ERRORS

    good = _weights(osp.join(trained['resumed'], 'iter_6.pth'))
    paths = _bad_checkpoints(good, tmp_path)
    test_py = osp.join(TOOLS, 'test.py')
    proc = _start(
        [test_py, trained['cfg'], paths['mismatch'], '--work-dir', str(tmp_path / 'm')],
        cwd=str(tmp_path),
    )
    for name in ('no_state_dict', 'other_model'):
        with pytest.raises(USER_ERRORS) as err:
            tool_main(
                'test',
                [trained['cfg'], paths[name], '--work-dir', str(tmp_path / name)],
            )
        assert paths[name] in str(err.value), (name, str(err.value))
        for text in _BAD_NAMES[name]:
            assert text in str(err.value), (name, text, str(err.value))
    wd_ns = tmp_path / 'wd_ns'
    metrics = tool_main(
        'test',
        [trained['cfg'], paths['missing'], '--non-strict', '--work-dir', str(wd_ns)],
    )
    assert 'mse' in ' '.join(metrics), metrics
    (log,) = glob.glob(str(wd_ns / '*' / '*.log'))
    log = open(log).read()
    assert 'NON-STRICT LOAD' in log and 'linear.bias' in log, log[-3000:]

    code, out = _finish(proc, 120)
    assert code != 0, out[-3000:]
    assert paths['mismatch'] in out and 'Traceback' not in out, out[-3000:]
    for text in _BAD_NAMES['mismatch']:
        assert text in out, (text, out[-3000:])


def test_resume_loads_strictly(trained, tmp_path):
    """``tools/train.py --resume`` a misfit checkpoint: stops naming the
    key and the way out (the tool's ``main()`` in-process; its exit path
    as a command is checked with the empty cache in test_train_weights)."""
    from fdseg.engine import USER_ERRORS

    good = _weights(osp.join(trained['resumed'], 'iter_6.pth'))
    paths = _bad_checkpoints(good, tmp_path)
    with pytest.raises(USER_ERRORS) as err:
        tool_main(
            'train',
            [
                trained['cfg'],
                '--work-dir',
                str(tmp_path / 'wd'),
                '--resume',
                paths['unexpected'],
            ],
        )
    out = str(err.value)
    assert 'unexpected keys (1): extra' in out and '--non-strict' in out, out
    assert paths['unexpected'] in out, out


def test_learned_modules_need_a_checkpoint(tmp_path):
    """A model only training fills is not scored with random weights."""
    from fdseg.apis import init_model
    from fdseg.engine import FDSegRunner, UntrainedModelError, weights_report
    from tests.toy_modules import ToyLearnedRegressor

    cfg = Config.fromfile(write_toy_cfg(tmp_path / 'toy.py'))
    cfg.model = dict(type='ToyLearnedRegressor', in_dim=8)
    cfg.work_dir = str(tmp_path / 'wd')
    cfg.custom_hooks = []
    with pytest.raises(UntrainedModelError, match=r'\(model\) \(ToyLearnedRegressor\)'):
        FDSegRunner.from_cfg(cfg.copy()).test()
    with pytest.raises(UntrainedModelError, match='allow_untrained=True'):
        init_model(cfg.copy())
    # On purpose: it runs, and the weights report says UNTRAINED.
    cfg.allow_untrained = True
    cfg.experiment_name = 'toy_untrained'
    runner = FDSegRunner.from_cfg(cfg.copy())
    assert runner.test()['mse'] > 0
    log = open(runner.logger.log_file).read()
    assert 'UNTRAINED (random) weights' in log
    assert init_model(cfg.copy()).requires_training
    # With a checkpoint nothing is reported untrained.
    assert weights_report(ToyLearnedRegressor(), checkpoint='x.pth')[1:] == []
