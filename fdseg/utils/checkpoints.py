"""Offline resolver for third-party weights.

fdseg never downloads anything: every pretrained file (the GFDS distilled
students, DINO / DINOv2, torchvision ResNets, SAM2.1, FastSAM) is fetched by
the user once and dropped into one checkpoint directory. This module

* reads the table :data:`CHECKPOINTS` of the files fdseg knows about (where
  to download each one, its file name, and a checksum when one is known;
  the entries are data in :mod:`fdseg.utils.checkpoint_table`),
* turns a registered name (or a path, or a known URL) into a local path with
  :func:`resolve_checkpoint`, raising an actionable ``FileNotFoundError``
  when the file is missing (what to download, from where, where to put it),
* loads third-party state dicts with ``torch.load(weights_only=True)`` only
  (:func:`load_third_party_state_dict`): foreign pickles are never executed,
* offers :class:`ResolverPretrainedMixin`, the ``init_weights`` used by the
  fdseg backbones so that ``init_cfg=dict(type='Pretrained',
  checkpoint='gfds_fm_large')`` goes through this resolver instead of
  mmengine's own loader (which would call ``torch.load`` on a name it does
  not know, or try to download a URL).

Checkpoint directory, first match wins:

1. ``$FDSEG_CHECKPOINT_DIR`` (used as the directory itself),
2. ``$FDSEG_HOME/checkpoints``,
3. ``~/.cache/fdseg/checkpoints``.

Checksums: ``sha256`` is the full digest of the file when it is published or
otherwise verifiable; ``sha256_prefix`` is the leading hex digits that
torchvision embeds in its file names (``resnet50-0676ba61.pth``) and checks
the same way (``torch.hub`` ``check_hash``). When neither is known the check
is skipped with a one-time warning. Full digests are cached in a small json
next to the files, keyed by size and mtime, so large files are hashed once.
"""

import copy
import hashlib
import json
import logging
import os
import os.path as osp
import pickle
import warnings
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from mmengine.logging import print_log

# The table (name -> url, filename, sha256, ...) is data, kept apart.
from .checkpoint_table import CHECKPOINTS  # noqa: F401 (public name)

# Environment variables. Kept as constants so messages and tests agree.
ENV_CHECKPOINT_DIR = 'FDSEG_CHECKPOINT_DIR'
ENV_HOME = 'FDSEG_HOME'
DEFAULT_HOME = osp.join('~', '.cache', 'fdseg')
SHA256_CACHE_FILE = '.fdseg_sha256_cache.json'

# Names already warned about (missing checksum), so each warns once.
_WARNED_NO_SHA: set = set()


class ChecksumMismatchError(RuntimeError):
    """A registered checkpoint's sha256 differs from the recorded one."""


class MissingCheckpointError(FileNotFoundError):
    """A pretrained file is not in the checkpoint cache (or the path).

    Its message names the checkpoint, the file, the download URL, the full
    target path and the environment variable that moves the cache.
    """


# Attribute on a module that lists the weight files it loaded; read by
# :func:`loaded_weights` for the run's "weights loaded from" report.
_LOADED_ATTR = '_fdseg_loaded_weights'


def record_loaded_weights(module, name: str, path: str) -> None:
    """Remember that ``module`` took its weights from ``path``.

    Args:
        module (nn.Module): The module that loaded the file.
        name (str): The checkpoint name the config gave (or the path).
        path (str): The resolved local file.
    """
    records = module.__dict__.setdefault(_LOADED_ATTR, [])
    records.append((str(name), osp.abspath(path)))


def loaded_weights(model) -> List[Tuple[str, str, str, str]]:
    """All weight files the modules of ``model`` recorded.

    Args:
        model (nn.Module): A model after ``init_weights()``.

    Returns:
        list[tuple]: ``(module_name, module_type, checkpoint_name, path)``
        in module order.
    """
    out = []
    for mod_name, mod in model.named_modules():
        for name, path in mod.__dict__.get(_LOADED_ATTR, ()):
            out.append((mod_name or '(model)', type(mod).__name__, name, path))
    return out


def get_cache_dir() -> str:
    """Directory holding the registered checkpoints.

    Returns:
        str: ``$FDSEG_CHECKPOINT_DIR`` if set, else ``$FDSEG_HOME/checkpoints``,
        else ``~/.cache/fdseg/checkpoints`` (user-expanded, absolute; it is
        not created here).
    """
    direct = os.environ.get(ENV_CHECKPOINT_DIR)
    if direct:
        return osp.abspath(osp.expanduser(direct))
    home = os.environ.get(ENV_HOME) or DEFAULT_HOME
    return osp.abspath(osp.join(osp.expanduser(home), 'checkpoints'))


def _lookup(name: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    """Find a registry entry by name, file name or URL."""
    if name in CHECKPOINTS:
        return name, CHECKPOINTS[name]
    for key, entry in CHECKPOINTS.items():
        if name == entry['filename']:
            return key, entry
        # Many entries share a URL (the GFDS Drive link), so a URL only
        # identifies an entry when its base name is the entry's file name.
        if name == entry['url'] and (
            osp.basename(name.split('?')[0]) == entry['filename']
        ):
            return key, entry
    return None


def _is_url(s: str) -> bool:
    return s.lower().startswith(('http://', 'https://'))


def _missing_message(name: str, entry: Dict[str, Any], target: str) -> str:
    return (
        f"Checkpoint '{name}' (file '{entry['filename']}') was not found.\n"
        f'fdseg never downloads weights. Download it from:\n'
        f'    {entry["url"]}\n'
        f'and save it as:\n'
        f'    {target}\n'
        f'To use another directory, set the environment variable '
        f'{ENV_CHECKPOINT_DIR}=<dir> (or {ENV_HOME}=<dir>, which uses '
        f'<dir>/checkpoints).\n'
        f'About this file: {entry["description"]}'
    )


def _file_sha256(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def cached_sha256(path: str) -> str:
    """sha256 of ``path``, cached by (size, mtime) in a json next to it.

    The cache file is ``.fdseg_sha256_cache.json`` in the file's directory;
    failures to read or write it only cost a re-hash.

    Args:
        path (str): File to hash.

    Returns:
        str: Lower-case hex digest.
    """
    path = osp.abspath(path)
    st = os.stat(path)
    cache_path = osp.join(osp.dirname(path), SHA256_CACHE_FILE)
    fname = osp.basename(path)
    cache: Dict[str, Any] = {}
    try:
        with open(cache_path) as f:
            cache = json.load(f)
    except (OSError, ValueError):
        cache = {}
    rec = cache.get(fname)
    if (
        isinstance(rec, dict)
        and rec.get('size') == st.st_size
        and rec.get('mtime_ns') == st.st_mtime_ns
        and rec.get('sha256')
    ):
        return rec['sha256']
    digest = _file_sha256(path)
    cache[fname] = dict(size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=digest)
    try:
        tmp = f'{cache_path}.{os.getpid()}.tmp'
        with open(tmp, 'w') as f:
            json.dump(cache, f, indent=1, sort_keys=True)
        os.replace(tmp, cache_path)  # atomic: concurrent runs never see junk
    except OSError:
        pass  # read-only checkpoint dir: verification still happened
    return digest


def _verify(name: str, entry: Dict[str, Any], path: str) -> None:
    sha = entry.get('sha256')
    prefix = entry.get('sha256_prefix')
    if not sha and not prefix:
        if name not in _WARNED_NO_SHA:
            _WARNED_NO_SHA.add(name)
            warnings.warn(
                f"No sha256 is recorded for checkpoint '{name}' "
                f'({entry["filename"]}); using {path} unverified.',
                UserWarning,
                stacklevel=3,
            )
        return
    digest = cached_sha256(path)
    expected = (sha or prefix).lower()
    ok = digest == expected if sha else digest.startswith(expected)
    if not ok:
        kind = 'sha256' if sha else 'sha256 prefix'
        raise ChecksumMismatchError(
            f"Checksum mismatch for checkpoint '{name}' at {path}: expected "
            f'{kind} {expected}, got sha256 {digest}. The file is corrupt, '
            f'truncated or not the published one: delete it and download it '
            f'again from {entry["url"]}.'
        )


def resolve_checkpoint(name_or_path: str, verify: bool = True) -> str:
    """Turn a checkpoint name, path or known URL into an existing local path.

    Never touches the network.

    Args:
        name_or_path (str): An existing file path (returned unchanged), a key
            of :data:`CHECKPOINTS` (e.g. ``'gfds_fm_large'``), a registered
            file name (``'model_large.pth'``) or a registered download URL.
        verify (bool): Check the sha256 (or sha256 prefix) of registered
            files when one is recorded. Defaults to True.

    Returns:
        str: Path of the file.

    Raises:
        FileNotFoundError: The file is not on disk; the message names the
            file, its download URL, the full target path and the
            environment variable that moves the checkpoint directory.
        ChecksumMismatchError: The file's digest differs from the record.
    """
    name_or_path = os.fspath(name_or_path)
    expanded = osp.expanduser(name_or_path)
    if osp.isfile(expanded):
        return name_or_path if expanded == name_or_path else expanded
    found = _lookup(name_or_path)
    if found is None:
        if _is_url(name_or_path):
            shared = [k for k, v in CHECKPOINTS.items() if v['url'] == name_or_path]
            if shared:  # e.g. the one GFDS Drive link for both students
                raise FileNotFoundError(
                    f"'{name_or_path}' is the download link of several "
                    f'registered checkpoints ({shared}); pass one of these '
                    f'names instead.'
                )
            # Unregistered URL: accept a manually placed copy, never fetch.
            fname = osp.basename(name_or_path.split('?')[0])
            target = osp.join(get_cache_dir(), fname)
            if osp.isfile(target):
                return target
            raise MissingCheckpointError(
                f"'{name_or_path}' is a URL and fdseg never downloads. Save "
                f"'{fname}' from it as:\n    {target}\n(or set "
                f'{ENV_CHECKPOINT_DIR}=<dir> to use another directory).'
            )
        raise MissingCheckpointError(
            f"'{name_or_path}' is neither an existing file nor a registered "
            f'checkpoint name. Registered names: {sorted(CHECKPOINTS)}.'
        )
    name, entry = found
    target = osp.join(get_cache_dir(), entry['filename'])
    if not osp.isfile(target):
        raise MissingCheckpointError(_missing_message(name, entry, target))
    if verify:
        _verify(name, entry, target)
    return target


def _unwrap(obj: Any, key: Optional[str]) -> Any:
    """Pick the state dict out of common checkpoint wrappers."""
    if key is not None:
        if isinstance(obj, dict) and key in obj:
            return obj[key]
        top = list(obj)[:20] if isinstance(obj, dict) else type(obj).__name__
        for part in key.split('.'):  # dotted path for nested wrappers
            if not isinstance(obj, dict) or part not in obj:
                raise KeyError(
                    f"Key '{key}' not found in checkpoint (top level: {top})."
                )
            obj = obj[part]
        return obj
    # A teacher beats a student (DINO full checkpoints carry both and
    # DINO evaluates the teacher); 'state_dict'/'model' are mmengine/SAM2.
    for k in ('state_dict', 'model', 'teacher', 'module', 'model_state'):
        if isinstance(obj, dict) and isinstance(obj.get(k), dict):
            return _unwrap(obj[k], None)
    return obj


def load_third_party_state_dict(
    name_or_path: str,
    map_location: Union[str, torch.device] = 'cpu',
    key: Optional[str] = None,
    prefix: Optional[str] = None,
) -> Dict[str, torch.Tensor]:
    """Load a foreign state dict safely (``torch.load(weights_only=True)``).

    Args:
        name_or_path (str): Anything :func:`resolve_checkpoint` accepts.
        map_location: Passed to ``torch.load``. Defaults to ``'cpu'``.
        key (str, optional): Entry holding the state dict (``'model'``,
            ``'teacher'``, dotted for nesting). Default: auto-unwrap
            ``state_dict`` / ``model`` / ``teacher`` / ``module`` wrappers.
        prefix (str, optional): Keep only keys starting with this prefix and
            strip it (as mmengine's ``Pretrained(prefix=...)``), e.g.
            ``'backbone.'``. A leading ``'module.'`` on every key (DDP) is
            always stripped.

    Returns:
        dict[str, Tensor]: The state dict (non-tensor entries dropped).

    Raises:
        pickle.UnpicklingError: The file holds arbitrary Python objects;
            such files are refused rather than executed.
    """
    path = resolve_checkpoint(name_or_path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(
            f'Refusing to unpickle {path}: fdseg loads third-party weights '
            f'with torch.load(weights_only=True) only and this file contains '
            f'arbitrary Python objects. Convert it to a plain state dict '
            f'with code you trust. Original error: {e}'
        ) from e
    state = _unwrap(obj, key)
    if not isinstance(state, dict):
        raise TypeError(
            f'{path} does not contain a state dict (got {type(state).__name__}).'
        )
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if state and all(k.startswith('module.') for k in state):
        state = {k[len('module.') :]: v for k, v in state.items()}
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not state:
        raise ValueError(
            f'No tensors found in {path} (key={key!r}, prefix={prefix!r}).'
        )
    return state


def split_pretrained_cfg(
    init_cfg: Union[dict, List[dict], None],
) -> Tuple[Optional[dict], Union[dict, List[dict], None]]:
    """Separate a ``type='Pretrained'`` entry from the rest of an init_cfg.

    Args:
        init_cfg: mmengine ``init_cfg`` (a dict, a list of dicts or None).

    Returns:
        tuple: ``(pretrained_cfg or None, remaining init_cfg or None)``.
    """
    if init_cfg is None:
        return None, None
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    pretrained = [c for c in cfgs if c.get('type') == 'Pretrained']
    rest = [c for c in cfgs if c.get('type') != 'Pretrained']
    if len(pretrained) > 1:
        raise ValueError('At most one Pretrained init_cfg is supported.')
    rest_cfg: Union[dict, List[dict], None] = (
        None if not rest else rest[0] if len(rest) == 1 else rest
    )
    return (dict(pretrained[0]) if pretrained else None), rest_cfg


class ResolverPretrainedMixin:
    """``init_weights`` that loads ``Pretrained`` init_cfgs via the resolver.

    Mix into an mmengine ``BaseModule`` subclass *before* ``BaseModule``
    and implement :meth:`load_pretrained_state_dict`. Supported keys of the
    Pretrained dict: ``checkpoint`` (name / path / URL), ``map_location``,
    ``key`` and ``prefix`` (see :func:`load_third_party_state_dict`). Other
    init_cfg entries (e.g. ``Kaiming``) still run through mmengine first.
    """

    #: Runs with random weights are reported (see ``prepare_weights``).
    expects_pretrained = True

    def load_pretrained_state_dict(self, state_dict: Dict[str, torch.Tensor]) -> None:
        """Copy a third-party state dict into the module (override)."""
        raise NotImplementedError

    def init_weights(self) -> None:
        """Run the non-pretrained initialisers, then load the Pretrained file."""
        pretrained, rest = split_pretrained_cfg(getattr(self, 'init_cfg', None))
        if pretrained is None:
            super().init_weights()  # type: ignore[misc]
            return
        if getattr(self, '_is_init', False):
            print_log(
                f'init_weights of {type(self).__name__} has been '
                'called more than once.',
                logger='current',
                level=logging.WARNING,
            )
            return
        if rest is not None:
            # Let mmengine run the non-pretrained initialisers first.
            original = self.init_cfg
            self.init_cfg = copy.deepcopy(rest)
            try:
                super().init_weights()  # type: ignore[misc]
            finally:
                self.init_cfg = original
        path = resolve_checkpoint(pretrained['checkpoint'])
        state = load_third_party_state_dict(
            path,
            map_location=pretrained.get('map_location', 'cpu'),
            key=pretrained.get('key'),
            prefix=pretrained.get('prefix'),
        )
        self.load_pretrained_state_dict(state)
        record_loaded_weights(self, pretrained['checkpoint'], path)
        print_log(
            f'{type(self).__name__}: loaded {len(state)} tensors from '
            f'{pretrained["checkpoint"]} ({path})',
            logger='current',
            level=logging.INFO,
        )
        self._is_init = True
