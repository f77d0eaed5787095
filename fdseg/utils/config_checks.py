"""Load a config the way the tools do, with the checks mmengine leaves out.

``tools/train.py`` and ``tools/test.py`` call :func:`load_config` instead of
``Config.fromfile`` + ``merge_from_dict``. On top of them it

1. names the file and line of a syntax error, also in a ``_base_`` file
   (mmengine parses with ``ast.parse`` and reports ``File "<unknown>"``);
2. warns about a top-level key that looks like a misspelled runner key
   (``test_dataloder``, ``defualt_hooks``): mmengine ignores unknown keys,
   so the setting would silently not apply;
3. checks each ``--cfg-options`` value against the type of the value it
   replaces: mmengine's ``DictAction`` turns ``shot=abc`` into a str and
   ``shot=1.5`` into a float, and the dataset fails much later, or not at
   all;
4. warns when ``--cfg-options`` overrides a top-level helper variable (such
   as ``data_root`` or ``shot``): its value was already copied into the
   dicts that use it when the config was loaded, so the override changes
   nothing.

Example::

    from fdseg.utils.config_checks import load_config
    cfg = load_config(args.config, args.cfg_options)
"""

import difflib
import functools
import inspect
import logging
import os.path as osp
import re
import warnings
from typing import Any, Collection, Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

# Top-level keys read outside the runner's constructor: by
# ``mmengine.registry.build_runner_from_cfg`` (runner_type) and by
# ``Config.fromfile`` (custom_imports). The runner's own keys are derived
# from its code, see :func:`runner_keys`.
_EXTRA_RUNNER_KEYS = frozenset({'runner_type', 'custom_imports'})

# Variables configs define for their own use (fdseg's configs/ and the usual
# OpenMMLab ones). They are never suggested as the "meant" key and never
# warned about, even when they look like a runner key
# (``tta_pipeline`` ~ ``train_pipeline``, ``train_dataset`` ~
# ``train_dataloader``).
HELPER_KEYS = frozenset(
    {
        # fdseg configs
        'data_root',
        'dataset_type',
        'shot',
        'way',
        'fold',
        'held_out',
        'img_scale',
        'train_pipeline',
        'test_pipeline',
        'val_pipeline',
        'train_dataset',
        'val_dataset',
        'test_dataset',
        'teacher_size',
        'student_size',
        'vis_backends',
        'optimizer',
        # common in OpenMMLab configs
        'crop_size',
        'img_size',
        'image_size',
        'norm_cfg',
        'backbone_norm_cfg',
        'tta_model',
        'tta_pipeline',
        'pretrained',
        'checkpoint',
        'checkpoint_file',
        'num_classes',
        'max_iters',
        'max_epochs',
        'base_lr',
        'batch_size',
        'num_workers',
        'backend_args',
        'metainfo',
        'class_names',
        'palette',
    }
)

# A key this close to a runner key (difflib ratio) but not equal to it is
# reported as a probable misspelling; 0.8 catches one or two wrong letters
# in keys such as ``model`` or ``val_cfg`` without flagging helpers.
TYPO_CUTOFF = 0.8

# ``self.cfg.get('key'`` / ``runner.cfg['key']`` in a runner's source.
_CFG_READ = re.compile(
    r"(?:self|runner)\.cfg(?:\.get\(\s*|\[\s*)['\"]([A-Za-z_]\w*)['\"]"
)


# --------------------------------------------------------------------------
# loading


def load_config(path: str, cfg_options: Optional[Dict[str, Any]] = None) -> Config:
    """``Config.fromfile`` + ``merge_from_dict`` with clear errors.

    Args:
        path (str): The config file.
        cfg_options (dict, optional): ``--cfg-options`` as parsed by
            mmengine's ``DictAction`` (dotted keys to values).

    Returns:
        Config: The loaded config with the overrides merged.

    Raises:
        SyntaxError: The config or one of its ``_base_`` files does not
            parse; the message names that file and line, the original
            exception is chained.
        ValueError: An override does not have the type of the value it
            replaces (see :func:`check_cfg_options`).
    """
    cfg = fromfile(path)
    added = set()
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        warn_ineffective_overrides(cfg, cfg_options)
        # Top-level keys that only the command line brings in.
        added = {k.split('.', 1)[0] for k, _ in _flatten(cfg_options)}
        added -= set(cfg.keys())
        cfg.merge_from_dict(cfg_options)
    warn_misspelled_keys(cfg, from_cfg_options=added)
    return cfg


def fromfile(path: str) -> Config:
    """``Config.fromfile`` whose syntax errors name the file and line.

    Args:
        path (str): The config file.

    Returns:
        Config: The loaded config.

    Raises:
        SyntaxError: With the file (the config or the ``_base_`` file at
            fault), line, offset and source text set, so that Python's
            traceback shows the offending line; the message names the
            file too.
    """
    from .mmengine_compat import setup_config_loading

    setup_config_loading()  # ``_base_ = 'fdseg::...'``
    try:
        return Config.fromfile(path)
    except SyntaxError as err:
        # mmengine's own ast.parse names the file "<unknown>"; find the
        # file ourselves by compiling the chain of _base_ files.
        found = find_syntax_error(path)
        if found is None:
            raise
        bad_file, exc, chain = found
        raise _named_syntax_error(bad_file, exc, chain) from err


def find_syntax_error(
    path: str, _chain: Tuple[str, ...] = ()
) -> Optional[Tuple[str, SyntaxError, Tuple[str, ...]]]:
    """The first Python file in ``path``'s ``_base_`` tree that fails to parse.

    Args:
        path (str): A config file.

    Returns:
        tuple | None: ``(file, SyntaxError with file-relative position,
        chain of including files)``, or None when every file parses.
    """
    path = osp.abspath(osp.expanduser(path))
    if not path.endswith('.py') or not osp.isfile(path) or path in _chain:
        return None
    with open(path, encoding='utf-8') as f:
        source = f.read()
    try:
        # A full compile also catches what ast.parse lets through
        # ('return' outside a function, ...).
        compile(source, path, 'exec', dont_inherit=True)
    except SyntaxError as exc:
        return path, exc, _chain
    try:
        bases = Config._get_base_files(path)
    except Exception:  # an unusual _base_; mmengine's message stands
        return None
    for base in bases:
        try:
            base_path, _ = Config._get_cfg_path(base, path)
        except Exception:
            continue
        found = find_syntax_error(base_path, _chain + (path,))
        if found is not None:
            return found
    return None


def _named_syntax_error(
    path: str, exc: SyntaxError, chain: Sequence[str]
) -> SyntaxError:
    where = f'config file {path}, line {exc.lineno}'
    if chain:
        where += ' (via _base_: ' + ' -> '.join([*chain, path]) + ')'
    details = (
        path,
        exc.lineno,
        exc.offset,
        exc.text,
        getattr(exc, 'end_lineno', None),
        getattr(exc, 'end_offset', None),
    )
    return SyntaxError(f'{exc.msg} in {where}', details)


# --------------------------------------------------------------------------
# misspelled top-level keys


def runner_keys(runner_type: Optional[str] = None) -> frozenset:
    """Top-level keys a runner reads: the keys a typo is compared with.

    Derived from the code: the constructor arguments of mmengine's
    ``Runner`` and ``FlexibleRunner``, of fdseg's ``FDSegRunner`` and of the
    registered ``runner_type`` class, plus every ``self.cfg.get('key')``
    in their modules (``model_wrapper_cfg``, ``compile``,
    ``load_strict``, ...).

    Args:
        runner_type (str, optional): ``cfg.runner_type``, looked up in
            fdseg's ``RUNNERS`` registry.

    Returns:
        frozenset: The key names.
    """
    keys = set(_static_runner_keys())
    cls = _runner_class(runner_type)
    if cls is not None:
        keys |= _class_keys(cls)
    return frozenset(keys)


@functools.lru_cache(maxsize=None)
def _static_runner_keys() -> frozenset:
    from mmengine.runner import Runner

    classes = [Runner]
    try:
        from mmengine.runner import FlexibleRunner

        classes.append(FlexibleRunner)
    except ImportError:  # older mmengine
        pass
    try:
        from fdseg.engine.runner import FDSegRunner

        classes.append(FDSegRunner)
    except ImportError:
        pass
    keys = set(_EXTRA_RUNNER_KEYS)
    for cls in classes:
        keys |= _class_keys(cls)
    return frozenset(keys)


@functools.lru_cache(maxsize=None)
def _class_keys(cls: type) -> frozenset:
    keys = set()
    for klass in inspect.getmro(cls):
        if klass is object:
            continue
        try:
            params = inspect.signature(klass.__init__).parameters
        except (TypeError, ValueError):
            continue
        keys |= {
            n
            for n, p in params.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        try:
            keys |= set(_CFG_READ.findall(inspect.getsource(inspect.getmodule(klass))))
        except (OSError, TypeError):  # no source (frozen, compiled)
            pass
    # 'self' and 'cfg' are parameters, not config keys.
    return frozenset(keys - {'self', 'cfg'})


def _runner_class(runner_type: Optional[str]) -> Optional[type]:
    if not isinstance(runner_type, str):
        return None
    try:
        from fdseg.registry import RUNNERS

        return RUNNERS.get(runner_type)
    except Exception:  # unknown type: building the runner will say so
        return None


def misspelled_keys(cfg: Config) -> List[Tuple[str, str]]:
    """Top-level keys that look like a misspelled runner key.

    A key warns only when it is not a runner key, not a known helper
    variable (:data:`HELPER_KEYS`), does not start with ``_``, and is at
    least :data:`TYPO_CUTOFF` similar to a runner key (ignoring case). So
    ``data_root`` or ``crop_size`` never warn, ``test_dataloder`` does.

    Args:
        cfg (Config): A loaded config.

    Returns:
        list[tuple[str, str]]: ``(key, closest runner key)`` pairs.
    """
    known = runner_keys(cfg.get('runner_type'))
    lowered = {k.lower(): k for k in known}
    out = []
    for key in cfg.keys():
        if (
            not isinstance(key, str)
            or key.startswith('_')
            or key in known
            or key in HELPER_KEYS
        ):
            continue
        close = difflib.get_close_matches(
            key.lower(), sorted(lowered), n=1, cutoff=TYPO_CUTOFF
        )
        if close:
            out.append((key, lowered[close[0]]))
    return out


def warn_misspelled_keys(
    cfg: Config, from_cfg_options: Collection[str] = ()
) -> List[Tuple[str, str]]:
    """Warn (log and ``warnings.warn``) about :func:`misspelled_keys`.

    Args:
        cfg (Config): A loaded config.
        from_cfg_options (Collection[str]): Top-level keys that
            ``--cfg-options`` added (named as such in the message).

    Returns:
        list[tuple[str, str]]: The pairs warned about.
    """
    found = misspelled_keys(cfg)
    for key, meant in found:
        if key in from_cfg_options:
            where = ' (set by --cfg-options)'
        else:
            where = f' in {cfg.filename}' if cfg.filename else ''
        msg = (
            f'Config key {key!r}{where} is not read by the runner and is '
            f'ignored; did you mean {meant!r}?'
        )
        print_log(msg, logger='current', level=logging.WARNING)
        warnings.warn(msg, UserWarning, stacklevel=2)
    return found


# --------------------------------------------------------------------------
# --cfg-options


def check_cfg_options(cfg: Config, cfg_options: Dict[str, Any]) -> None:
    """Check ``--cfg-options`` values against the values they replace.

    Only scalars are compared (``bool``, ``int``, ``float``, ``str``): a
    ``None`` on either side, a new key, or a list / tuple / dict on either
    side is accepted, since many arguments take "an int or a pair" or
    "a dict or None". Rules: an int needs an int (not a float such as
    ``1.5`` or ``1e3``, not a bool); a float takes an int or a float; a
    bool needs a bool (``True`` / ``False``); a str needs a str.

    Args:
        cfg (Config): The loaded config, before the overrides are merged.
        cfg_options (dict): Dotted keys to the values ``DictAction`` parsed.

    Raises:
        ValueError: One line per offending key, e.g.
            ``--cfg-options test_dataloader.dataset.shot: expected int,
            got 'abc'``.
    """
    errors = []
    for key, new in _flatten(cfg_options):
        found, old = _lookup(cfg._cfg_dict, key)
        if not found:
            continue
        expected = _type_mismatch(old, new)
        if expected is not None:
            errors.append(f'--cfg-options {key}: expected {expected}, got {new!r}')
    if errors:
        if any('expected str' in e for e in errors):
            errors.append(
                '(mmengine parses digits, True/False and None on the '
                'command line; a str of digits has to be set in a config '
                'file that inherits this one)'
            )
        raise ValueError('\n'.join(errors))


def _type_mismatch(old: Any, new: Any) -> Optional[str]:
    """The expected type name when ``new`` cannot replace ``old``."""
    scalars = (bool, int, float, str)
    if old is None or new is None:
        return None
    if not isinstance(old, scalars) or not isinstance(new, scalars):
        return None
    # bool is a subclass of int: test it first, both ways.
    if isinstance(old, bool):
        return None if isinstance(new, bool) else 'bool'
    if isinstance(new, bool):
        return type(old).__name__
    if isinstance(old, int):
        return None if isinstance(new, int) else 'int'
    if isinstance(old, float):
        return None if isinstance(new, (int, float)) else 'float'
    return None if isinstance(new, str) else 'str'


def _flatten(options: Dict[str, Any], prefix: str = '') -> Iterator[Tuple[str, Any]]:
    # A programmatic caller may nest dicts; DictAction gives dotted keys.
    for key, value in options.items():
        full = f'{prefix}{key}'
        if isinstance(value, dict) and value:
            yield from _flatten(value, full + '.')
        else:
            yield full, value


def _lookup(node: Any, dotted: str) -> Tuple[bool, Any]:
    # Digits index lists, as Config.merge_from_dict(allow_list_keys=True).
    for part in dotted.split('.'):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif (
            isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node)
        ):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def warn_ineffective_overrides(cfg: Config, cfg_options: Dict[str, Any]) -> List[str]:
    """Warn about overrides of top-level helper variables.

    ``--cfg-options shot=5`` changes the top-level ``shot`` only: the
    config already copied ``shot`` into ``test_dataloader.dataset.shot``
    when it was loaded, and the runner never reads ``shot`` itself.

    Args:
        cfg (Config): The loaded config, before the overrides are merged.
        cfg_options (dict): Dotted keys to values.

    Returns:
        list[str]: The overridden keys warned about.
    """
    known = runner_keys(cfg.get('runner_type'))
    warned = []
    for key, _ in _flatten(cfg_options):
        top = key.split('.', 1)[0]
        if top in known or top not in cfg or top.startswith('_'):
            continue
        uses = [
            p for p in _paths(cfg._cfg_dict) if p.rsplit('.', 1)[-1] == top and '.' in p
        ]
        hint = f'; override {" / ".join(uses[:3])} instead' if uses else ''
        msg = (
            f'--cfg-options {key}: {top!r} is a helper variable of the '
            'config, already used when the config was loaded; changing '
            f'it now has no effect{hint}'
        )
        print_log(msg, logger='current', level=logging.WARNING)
        warnings.warn(msg, UserWarning, stacklevel=2)
        warned.append(key)
    return warned


def _paths(node: Any, prefix: str = '') -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            p = f'{prefix}{k}'
            yield p
            yield from _paths(v, p + '.')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _paths(v, f'{prefix}{i}.')
