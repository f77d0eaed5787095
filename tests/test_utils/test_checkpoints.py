"""Offline checkpoint resolver: lookup, messages, checksums, safe loading."""

import hashlib
import json
import os
import pickle
import warnings

import pytest
import torch

from fdseg.utils import checkpoints as ck


@pytest.fixture
def ckpt_dir(tmp_path, monkeypatch):
    d = tmp_path / 'ckpts'
    d.mkdir()
    monkeypatch.setenv(ck.ENV_CHECKPOINT_DIR, str(d))
    return d


def test_cache_dir_env(tmp_path, monkeypatch):
    monkeypatch.delenv(ck.ENV_CHECKPOINT_DIR, raising=False)
    monkeypatch.delenv(ck.ENV_HOME, raising=False)
    assert ck.get_cache_dir() == os.path.abspath(
        os.path.expanduser('~/.cache/fdseg/checkpoints')
    )
    monkeypatch.setenv(ck.ENV_HOME, str(tmp_path / 'home'))
    assert ck.get_cache_dir() == str(tmp_path / 'home' / 'checkpoints')
    monkeypatch.setenv(ck.ENV_CHECKPOINT_DIR, str(tmp_path / 'direct'))
    assert ck.get_cache_dir() == str(tmp_path / 'direct')


def test_registry_entries_complete():
    required = {
        'gfds_fm_large': 'model_large.pth',
        'gfds_fm_small': 'model_small.pth',
        'dino_vits16': 'dino_deitsmall16_pretrain.pth',
        'dino_vits8': 'dino_deitsmall8_pretrain.pth',
        'dino_vitb16': 'dino_vitbase16_pretrain.pth',
        'dino_vitb8': 'dino_vitbase8_pretrain.pth',
        'dinov2_vits14': 'dinov2_vits14_pretrain.pth',
        'dinov2_vitb14': 'dinov2_vitb14_pretrain.pth',
        'dinov2_vitl14': 'dinov2_vitl14_pretrain.pth',
        'sam2.1_hiera_tiny': 'sam2.1_hiera_tiny.pt',
        'sam2.1_hiera_large': 'sam2.1_hiera_large.pt',
        'fastsam_x': 'FastSAM-x.pt',
        'fastsam_s': 'FastSAM-s.pt',
    }
    for name, fname in required.items():
        e = ck.CHECKPOINTS[name]
        assert e['filename'] == fname
        assert e['url'].startswith('https://')
        assert 'sha256' in e and e['description']
    for e in ck.CHECKPOINTS.values():
        assert e['sha256'] is None or len(e['sha256']) == 64


def test_torchvision_entries_match_installed_torchvision():
    tvm = pytest.importorskip('torchvision.models')
    pairs = {
        'torchvision_resnet18': tvm.ResNet18_Weights.IMAGENET1K_V1,
        'torchvision_resnet50': tvm.ResNet50_Weights.IMAGENET1K_V1,
        'torchvision_wide_resnet50_2': tvm.Wide_ResNet50_2_Weights.IMAGENET1K_V1,
        'torchvision_wide_resnet101_2': tvm.Wide_ResNet101_2_Weights.IMAGENET1K_V1,
    }
    for name, w in pairs.items():
        e = ck.CHECKPOINTS[name]
        assert e['url'] == w.url
        assert w.url.endswith(e['filename'])
        assert e['filename'].split('-')[-1].startswith(e['sha256_prefix'])


def test_existing_path_returned_as_is(tmp_path):
    p = tmp_path / 'anything.pth'
    torch.save({'w': torch.zeros(1)}, p)
    assert ck.resolve_checkpoint(str(p)) == str(p)


def test_missing_file_message(ckpt_dir):
    with pytest.raises(FileNotFoundError) as info:
        ck.resolve_checkpoint('dino_vits8')
    msg = str(info.value)
    entry = ck.CHECKPOINTS['dino_vits8']
    assert entry['filename'] in msg
    assert entry['url'] in msg
    assert str(ckpt_dir / entry['filename']) in msg
    assert ck.ENV_CHECKPOINT_DIR in msg


def test_unknown_name(ckpt_dir):
    with pytest.raises(FileNotFoundError, match='Registered names'):
        ck.resolve_checkpoint('no_such_model')


def test_lookup_by_filename_and_url(ckpt_dir):
    entry = ck.CHECKPOINTS['dino_vits16']
    path = ckpt_dir / entry['filename']
    torch.save({'w': torch.zeros(1)}, path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert ck.resolve_checkpoint(entry['filename']) == str(path)
        assert ck.resolve_checkpoint(entry['url']) == str(path)
        assert ck.resolve_checkpoint('dino_vits16') == str(path)


def test_unknown_sha_warns_once(ckpt_dir):
    ck._WARNED_NO_SHA.discard('dino_vitb8')
    torch.save(
        {'w': torch.zeros(1)}, ckpt_dir / ck.CHECKPOINTS['dino_vitb8']['filename']
    )
    with pytest.warns(UserWarning, match='No sha256'):
        ck.resolve_checkpoint('dino_vitb8')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        ck.resolve_checkpoint('dino_vitb8')  # second time: silent


def _register(monkeypatch, name, filename, **kw):
    entry = dict(
        url='https://example.invalid/' + filename,
        sha256=None,
        filename=filename,
        description='test entry',
    )
    entry.update(kw)
    monkeypatch.setitem(ck.CHECKPOINTS, name, entry)


def test_sha256_verified_and_cached(ckpt_dir, monkeypatch):
    path = ckpt_dir / 'good.pth'
    torch.save({'w': torch.arange(4.0)}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _register(monkeypatch, 'good', 'good.pth', sha256=digest)
    assert ck.resolve_checkpoint('good') == str(path)
    cache = json.loads((ckpt_dir / ck.SHA256_CACHE_FILE).read_text())
    assert cache['good.pth']['sha256'] == digest
    # The cached digest is reused while size and mtime are unchanged.
    calls = []
    monkeypatch.setattr(
        ck, '_file_sha256', lambda p, chunk=0: calls.append(p) or digest
    )
    ck.resolve_checkpoint('good')
    assert calls == []


def test_sha256_mismatch(ckpt_dir, monkeypatch):
    path = ckpt_dir / 'bad.pth'
    torch.save({'w': torch.zeros(3)}, path)
    _register(monkeypatch, 'bad', 'bad.pth', sha256='0' * 64)
    with pytest.raises(ck.ChecksumMismatchError, match='bad.pth'):
        ck.resolve_checkpoint('bad')
    _register(monkeypatch, 'badp', 'bad.pth', sha256_prefix='00000000')
    real = hashlib.sha256(path.read_bytes()).hexdigest()
    if not real.startswith('00000000'):
        with pytest.raises(ck.ChecksumMismatchError, match='prefix'):
            ck.resolve_checkpoint('badp')
    _register(monkeypatch, 'goodp', 'bad.pth', sha256_prefix=real[:8])
    assert ck.resolve_checkpoint('goodp') == str(path)


def test_weights_only_refuses_pickled_objects(tmp_path):
    # Any non-tensor class: torch.load(weights_only=True) must refuse it.
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'obj': _Arbitrary()}, path)
    with pytest.raises(pickle.UnpicklingError, match='weights_only'):
        ck.load_third_party_state_dict(str(path))


class _Arbitrary:
    pass


def test_wrappers_unwrapped(tmp_path):
    sd = {'a.weight': torch.ones(2), 'a.bias': torch.zeros(2)}
    for wrapper in ('model', 'state_dict', 'teacher'):
        p = tmp_path / f'{wrapper}.pth'
        torch.save({wrapper: sd, 'epoch': 3}, p)
        out = ck.load_third_party_state_dict(str(p))
        assert set(out) == set(sd)
    p = tmp_path / 'ddp.pth'
    torch.save({'model': {'module.' + k: v for k, v in sd.items()}}, p)
    assert set(ck.load_third_party_state_dict(str(p))) == set(sd)
    p = tmp_path / 'full.pth'
    torch.save(
        {
            'student': {'x': torch.zeros(1)},
            'teacher': {'backbone.' + k: v for k, v in sd.items()},
        },
        p,
    )
    out = ck.load_third_party_state_dict(str(p), key='teacher', prefix='backbone.')
    assert set(out) == set(sd)


def test_split_pretrained_cfg():
    pre, rest = ck.split_pretrained_cfg(
        [dict(type='Kaiming'), dict(type='Pretrained', checkpoint='x')]
    )
    assert pre == dict(type='Pretrained', checkpoint='x')
    assert rest == dict(type='Kaiming')
    assert ck.split_pretrained_cfg(None) == (None, None)


def test_table_is_data_beside_the_resolver():
    """The entries live in checkpoint_table (issue 10); the resolver reads
    the same dict, so old imports and monkeypatched entries keep working."""
    from fdseg.utils import checkpoint_table

    assert ck.CHECKPOINTS is checkpoint_table.CHECKPOINTS
    assert not hasattr(ck, 'registered_names')
    for entry in checkpoint_table.CHECKPOINTS.values():
        assert {'url', 'filename', 'description', 'sha256'} <= set(entry)
