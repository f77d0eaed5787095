"""Config edge cases (issue 9).

Syntax errors name the file and line, misspelled top-level keys warn,
``--cfg-options`` values keep their type.

Unit tests call :mod:`fdseg.utils.config_checks` directly; the tool tests
call ``tools/test.py`` / ``tools/train.py``'s ``main(argv)`` in-process with
a user's arguments and stop before any dataset is built (a bad head type
ends the run otherwise).
"""

import glob
import inspect
import os.path as osp
import warnings

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from fdseg.utils.config_checks import (
    HELPER_KEYS,
    check_cfg_options,
    find_syntax_error,
    fromfile,
    load_config,
    misspelled_keys,
    runner_keys,
)
from tests.conftest import REPO
from tests.subprocess_utils import tool_main

QUICKSTART = osp.join(
    REPO, 'configs', 'quickstart', 'fm_filterbank_no-train_synthetic-all-1shot.py'
)
DISTILL = osp.join(
    REPO, 'configs', 'distill', 'distill_pdn-l_dino-vits8_160k_imagenet.py'
)
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    + glob.glob(osp.join(REPO, 'projects', '*', 'configs', '*.py'))
)

# A small config with one value of each scalar type, a None and a list.
SMALL = """\
model = dict(type='M', depth=3, ratio=0.5, frozen=False, name='pdn',
             init_cfg=None, scale=(256, 256))
pipeline = [dict(type='Resize', size=4)]
"""


def write(path, text):
    path.write_text(text)
    return str(path)


def no_warnings(fn, *args):
    # Only this module's warnings: mmengine may add its own (deprecations).
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        out = fn(*args)
    ours = [str(w.message) for w in record if w.filename.endswith('config_checks.py')]
    assert not ours, ours
    return out


# ------------------------------------------------------------ syntax errors


def test_syntax_error_names_config_file_and_line(tmp_path):
    cfg = write(tmp_path / 'cfg.py', 'a = 1\nb = 2\nc = dict(x=1,\n')
    with pytest.raises(SyntaxError) as info:
        fromfile(cfg)
    err = info.value
    assert err.filename == cfg and err.lineno == 3
    assert f'config file {cfg}, line 3' in str(err)
    # mmengine's own error stays attached
    assert isinstance(err.__cause__, SyntaxError)


def test_syntax_error_in_base_names_base_file_and_line(tmp_path):
    base = write(tmp_path / 'base.py', 'a = 1\nb = dict(\n')
    sub = tmp_path / 'sub'
    sub.mkdir()
    mid = write(sub / 'mid.py', "_base_ = ['../base.py']\nm = 1\n")
    cfg = write(tmp_path / 'cfg.py', "_base_ = ['./sub/mid.py']\nc = 1\n")
    with pytest.raises(SyntaxError) as info:
        load_config(cfg)
    err = info.value
    assert err.filename == base and err.lineno == 2
    assert f'config file {base}, line 2' in str(err)
    assert f'(via _base_: {cfg} -> {mid} -> {base})' in str(err)
    assert err.__cause__ is not None


def test_find_syntax_error_none_for_valid_chain(tmp_path):
    write(tmp_path / 'base.py', 'a = 1\n')
    cfg = write(tmp_path / 'cfg.py', "_base_ = ['./base.py']\nb = 2\n")
    assert find_syntax_error(cfg) is None
    assert find_syntax_error(QUICKSTART) is None


def test_runtime_error_in_config_is_unchanged(tmp_path):
    # mmengine already names the file for errors raised while executing
    cfg = write(tmp_path / 'cfg.py', 'a = undefined_name\n')
    with pytest.raises(NameError, match='undefined_name'):
        load_config(cfg)


# ---------------------------------------------------------- misspelled keys


def test_runner_keys_come_from_the_runner():
    keys = runner_keys('FDSegRunner')
    params = set(inspect.signature(Runner.__init__).parameters) - {'self', 'cfg'}
    assert params <= keys
    # read with self.cfg.get(...) by mmengine's and fdseg's runners
    assert {
        'model_wrapper_cfg',
        'find_unused_parameters',
        'compile',
        'load_strict',
        'runner_type',
        'custom_imports',
    } <= keys
    assert not keys & HELPER_KEYS


@pytest.mark.parametrize(
    'key,meant',
    [
        ('test_dataloder', 'test_dataloader'),
        ('defualt_hooks', 'default_hooks'),
        ('optim_wraper', 'optim_wrapper'),
        ('Test_cfg', 'test_cfg'),
        ('modle', 'model'),
    ],
)
def test_misspelled_top_level_key_warns(tmp_path, key, meant):
    cfg = write(tmp_path / 'cfg.py', f'_base_ = [{QUICKSTART!r}]\n{key} = dict()\n')
    with pytest.warns(UserWarning) as record:
        load_config(cfg)
    msgs = [str(w.message) for w in record]
    assert any(
        repr(key) in m and f'did you mean {meant!r}' in m and cfg in m for m in msgs
    ), msgs


def test_misspelled_key_from_cfg_options_warns():
    with pytest.warns(
        UserWarning,
        match=r"'test_dataloder' \(set by "
        r"--cfg-options\).*'test_dataloader'",
    ):
        load_config(QUICKSTART, {'test_dataloder.batch_size': 2})


def test_helper_variables_do_not_warn(tmp_path):
    helpers = [
        'data_root',
        'crop_size',
        'train_pipeline',
        'test_pipeline',
        'train_dataset',
        'tta_pipeline',
        'tta_model',
        'norm_cfg',
        'img_scale',
        'my_own_thing',
        '_private_cfg',
    ]
    text = f'_base_ = [{QUICKSTART!r}]\n' + ''.join(f'{h} = 1\n' for h in helpers)
    cfg = no_warnings(load_config, write(tmp_path / 'cfg.py', text))
    assert misspelled_keys(cfg) == []


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_no_shipped_config_warns(path, monkeypatch):
    if 'projects' in path:  # its custom_imports live in the project folder
        monkeypatch.syspath_prepend(osp.dirname(osp.dirname(path)))
    cfg = no_warnings(load_config, path)
    assert misspelled_keys(cfg) == []


# ------------------------------------------------------------ --cfg-options


@pytest.mark.parametrize(
    'key,value,expected',
    [
        ('model.depth', 'abc', 'int'),
        ('model.depth', 1.5, 'int'),
        ('model.depth', 1000.0, 'int'),  # shot=1e3 parses as a float
        ('model.depth', True, 'int'),  # bool is an int subclass
        ('model.frozen', 1, 'bool'),
        ('model.frozen', 'yes', 'bool'),
        ('model.ratio', 'abc', 'float'),
        ('model.ratio', False, 'float'),
        ('model.name', 12, 'str'),
        ('pipeline.0.size', 'big', 'int'),  # list index, as merge_from_dict
    ],
)
def test_cfg_options_wrong_type_raises(key, value, expected):
    cfg = Config.fromstring(SMALL, '.py')
    with pytest.raises(ValueError) as info:
        check_cfg_options(cfg, {key: value})
    assert str(info.value).splitlines()[0] == (
        f'--cfg-options {key}: expected {expected}, got {value!r}'
    )


@pytest.mark.parametrize(
    'key,value',
    [
        ('model.depth', 5),
        ('model.ratio', 1),  # an int for a float is fine
        ('model.ratio', 0.25),
        ('model.frozen', True),
        ('model.name', 'dino'),
        ('model.init_cfg', 'file.pth'),  # None replaced
        ('model.depth', None),  # switched off
        ('model.scale', 512),  # containers are not compared
        ('model.scale', [128, 128]),
        ('model.new_key', 'abc'),  # new keys are fine
        ('pipeline.3.size', 'x'),  # past the end of the list: new
    ],
)
def test_cfg_options_compatible_values_pass(key, value):
    cfg = Config.fromstring(SMALL, '.py')
    check_cfg_options(cfg, {key: value})


def test_cfg_options_all_errors_in_one_message():
    cfg = Config.fromstring(SMALL, '.py')
    with pytest.raises(ValueError) as info:
        check_cfg_options(cfg, {'model.depth': 'abc', 'model.ratio': 'x'})
    lines = str(info.value).splitlines()
    assert lines == [
        "--cfg-options model.depth: expected int, got 'abc'",
        "--cfg-options model.ratio: expected float, got 'x'",
    ]


def test_load_config_checks_and_merges_cfg_options():
    with pytest.raises(
        ValueError,
        match=r'^--cfg-options test_dataloader'
        r"\.dataset\.shot: expected int, got 'abc'$",
    ):
        load_config(QUICKSTART, {'test_dataloader.dataset.shot': 'abc'})
    cfg = no_warnings(load_config, QUICKSTART, {'test_dataloader.dataset.shot': 5})
    assert cfg.test_dataloader.dataset.shot == 5


def test_overriding_a_helper_variable_warns():
    with pytest.warns(
        UserWarning,
        match=r'--cfg-options shot: .*no effect; '
        r'override test_dataloader\.dataset\.shot instead',
    ):
        cfg = load_config(QUICKSTART, {'shot': 5})
    assert cfg.test_dataloader.dataset.shot == 1


# --------------------------------------------------------- through the tools


def run_tool(tool, *args):
    """``tools/<tool>``'s ``main()`` in this process: ``(exception, output)``.

    These checks happen in the tool's argument / config handling, before
    any data; the tools' exit paths (status, no traceback) are tested as
    commands elsewhere (test_writers, test_runner, test_train_weights).
    """
    name = osp.splitext(tool)[0]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        with pytest.raises(Exception) as err:
            tool_main(name, args)
    return err.value, str(err.value) + ''.join(f'\n{w.message}' for w in seen)


def test_test_py_syntax_error_in_base_names_file_and_line(tmp_path):
    base = write(tmp_path / 'base.py', 'a = 1\nb = dict(x=1,\n')
    cfg = write(tmp_path / 'cfg.py', "_base_ = ['./base.py']\n")
    _, out = run_tool('test.py', cfg, '--work-dir', str(tmp_path))
    assert f'config file {base}, line 2' in out, out[-3000:]


def test_test_py_warns_about_misspelled_key(tmp_path):
    cfg = write(
        tmp_path / 'cfg.py', f'_base_ = [{QUICKSTART!r}]\ndefualt_hooks = dict()\n'
    )
    err, out = run_tool(
        'test.py',
        cfg,
        '--work-dir',
        str(tmp_path),
        '--cfg-options',
        'model.head.type=NoSuchHead',
    )
    # the bad head stops the run before any data
    assert 'NoSuchHead is not in the' in str(err), str(err)
    assert "'defualt_hooks'" in out and "did you mean 'default_hooks'" in out, out[
        -3000:
    ]


def test_test_py_rejects_wrongly_typed_cfg_options(tmp_path):
    _, out = run_tool(
        'test.py',
        QUICKSTART,
        '--work-dir',
        str(tmp_path),
        '--cfg-options',
        'test_dataloader.dataset.shot=abc',
        'test_dataloader.dataset.num_images=1.5',
        'model.head.type=NoSuchHead',
    )
    assert (
        "--cfg-options test_dataloader.dataset.shot: expected int, got 'abc'"
    ) in out, out[-3000:]
    assert (
        '--cfg-options test_dataloader.dataset.num_images: expected int, got 1.5'
    ) in out
    # stopped at the options, before the model was built
    assert 'NoSuchHead' not in out.replace('model.head.type=NoSuchHead', '')


def test_train_py_rejects_wrongly_typed_cfg_options(tmp_path):
    _, out = run_tool(
        'train.py',
        DISTILL,
        '--work-dir',
        str(tmp_path),
        '--cfg-options',
        'train_cfg.max_iters=1.5',
        'model.type=NoSuchModel',
    )
    assert '--cfg-options train_cfg.max_iters: expected int, got 1.5' in out, out[
        -3000:
    ]
    assert 'NoSuchModel' not in out.replace('model.type=NoSuchModel', '')
