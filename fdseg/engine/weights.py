"""Weights before testing: pretrained files, fdseg checkpoints, the report.

mmengine's ``Runner`` calls ``model.init_weights()`` (and so every
``Pretrained`` init_cfg and fdseg's offline resolver) only in ``train()``;
``Runner.test()`` would score randomly initialised networks. fdseg's runner
therefore calls :func:`prepare_weights` before testing, loads fdseg
checkpoints through :func:`load_fdseg_checkpoint` (strict unless asked
otherwise), and logs :func:`weights_report` once per run.

Which weights a test run uses:

* no checkpoint: every pretrained file the config names (backbones' init_cfg,
  refiners' and SAM2's ``checkpoint``) is loaded, or the run stops before
  the first episode with the resolver's message;
* an fdseg checkpoint (``tools/test.py CONFIG CKPT`` / ``load_from``): it
  holds the whole state dict, so it is loaded strictly and the backbones'
  pretrained files are not needed; modules whose weights live outside the
  state dict (the FastSAM / SAM2 refiners) still load theirs.

Modules that only ``tools/train.py`` gives weights (``requires_training =
True``: the PFENet, HSNet and PATNet heads) make a test run without an fdseg
checkpoint stop with :class:`UntrainedModelError`, unless the config sets
``allow_untrained=True`` (smoke tests); they are then reported ``UNTRAINED``.
"""

import logging
import re
from collections import OrderedDict
from typing import Iterable, List, Optional

import torch.nn as nn
from mmengine.logging import print_log

from fdseg.utils.checkpoints import cached_sha256, loaded_weights

# Keys shown per list in an error message (the rest are counted).
_MAX_KEYS = 8


class CheckpointMismatchError(RuntimeError):
    """An fdseg checkpoint does not fit the model built from the config."""


class UntrainedModelError(RuntimeError):
    """A test run would score modules that only training gives weights."""


def untrained_modules(model: nn.Module) -> List[str]:
    """``'name (Type)'`` of every module marked ``requires_training``."""
    return [
        f'{name or "(model)"} ({type(m).__name__})'
        for name, m in model.named_modules()
        if getattr(m, 'requires_training', False)
    ]


def check_trained(
    model: nn.Module, checkpoint_given: bool, allow_untrained: bool = False
) -> None:
    """Refuse to evaluate learned modules that no checkpoint will fill.

    Args:
        model (nn.Module): The (unwrapped) model.
        checkpoint_given (bool): An fdseg checkpoint will be loaded.
        allow_untrained (bool): Run random learned modules on purpose
            (``allow_untrained=True`` in the config).

    Raises:
        UntrainedModelError: ``requires_training`` modules and no checkpoint.
    """
    if checkpoint_given or allow_untrained:
        return
    found = untrained_modules(model)
    if found:
        raise UntrainedModelError(
            f'{", ".join(found)} is learned by tools/train.py and no fdseg '
            'checkpoint was given, so its weights would be random. Pass the '
            'checkpoint of a training run (tools/test.py CONFIG CHECKPOINT; '
            'init_model(config, checkpoint)), or set allow_untrained=True '
            '(--cfg-options allow_untrained=True) to run random weights on '
            'purpose.'
        )


def prepare_weights(model: nn.Module, checkpoint_given: bool) -> None:
    """Load every pretrained weight the model's config names.

    Args:
        model (nn.Module): The (unwrapped) model.
        checkpoint_given (bool): An fdseg checkpoint will be loaded next and
            covers the state dict: only modules marked
            ``weights_outside_state_dict`` load their files.

    Raises:
        MissingCheckpointError: A named file is not in the checkpoint cache
            (the message says which file to put where).
    """
    if not checkpoint_given:
        if hasattr(model, 'init_weights'):
            model.init_weights()
        return
    for module in model.modules():
        if getattr(module, 'weights_outside_state_dict', False):
            module.init_weights()


def _sha_prefix(path: str) -> str:
    try:
        return cached_sha256(path)[:12]
    except OSError:
        return '?'


def weights_report(model: nn.Module, checkpoint: Optional[str] = None) -> List[str]:
    """Lines saying which weights the model runs with, and from where.

    Args:
        model (nn.Module): The (unwrapped) model after loading.
        checkpoint (str, optional): The fdseg checkpoint loaded into it.

    Returns:
        list[str]: One line per file (module, name, path, sha256 prefix),
        then one ``RANDOM`` line per module that expects pretrained weights
        but got none and one ``UNTRAINED`` line per ``requires_training``
        module without an fdseg checkpoint.
    """
    lines = []
    if checkpoint is not None:
        lines.append(
            f'  (model): fdseg checkpoint {checkpoint} '
            f'[sha256 {_sha_prefix(checkpoint)}]'
        )
    records = loaded_weights(model)
    for mod_name, mod_type, name, path in records:
        shown = '' if name == path else f'{name} <- '
        lines.append(
            f'  {mod_name} ({mod_type}): {shown}{path} [sha256 {_sha_prefix(path)}]'
        )
    loaded = {r[0] for r in records}
    for mod_name, module in model.named_modules():
        if not getattr(module, 'expects_pretrained', False):
            continue
        if (mod_name or '(model)') in loaded:
            continue
        covered = checkpoint is not None and not getattr(
            module, 'weights_outside_state_dict', False
        )
        if not covered:
            lines.append(
                f'  {mod_name or "(model)"} '
                f'({type(module).__name__}): RANDOM weights (the '
                'config names no pretrained checkpoint)'
            )
    if checkpoint is None:
        for found in untrained_modules(model):
            lines.append(
                f'  {found}: UNTRAINED (random) weights (learned by '
                'tools/train.py; no fdseg checkpoint was given)'
            )
    return lines


def log_weights_report(model: nn.Module, checkpoint: Optional[str] = None) -> None:
    """Log :func:`weights_report` once (WARNING when anything is random)."""
    lines = weights_report(model, checkpoint)
    if not lines:
        lines = [
            '  none: the model has no pretrained or trained weights '
            '(a training-free, parameter-free method)'
        ]
    random_ = any('RANDOM' in ln or 'UNTRAINED' in ln for ln in lines)
    print_log(
        'Weights of this run:\n' + '\n'.join(lines),
        logger='current',
        level=logging.WARNING if random_ else logging.INFO,
    )


def _head(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    more = f' ... (+{len(keys) - _MAX_KEYS} more)' if len(keys) > _MAX_KEYS else ''
    return ', '.join(keys[:_MAX_KEYS]) + more


def check_fdseg_checkpoint(
    model: nn.Module,
    checkpoint: dict,
    filename: str,
    strict: bool = True,
    revise_keys=((r'^module\.', ''),),
) -> dict:
    """Validate an fdseg checkpoint against a model; return its state dict.

    Args:
        model (nn.Module): The (unwrapped) model.
        checkpoint (dict): What ``torch.load`` returned.
        filename (str): Its path (for messages).
        strict (bool): Missing, unexpected or mis-shaped keys are errors;
            otherwise they are logged as a warning.
        revise_keys (Sequence[tuple]): ``(pattern, replacement)`` pairs
            applied to the keys (DDP's ``module.`` prefix by default).

    Returns:
        dict: The revised state dict.

    Raises:
        CheckpointMismatchError: Not an fdseg checkpoint, another model's
            checkpoint, or (strict) keys that do not match; the message
            names the keys.
    """
    if not isinstance(checkpoint, dict) or not isinstance(
        checkpoint.get('state_dict'), dict
    ):
        top = (
            sorted(checkpoint)[:10]
            if isinstance(checkpoint, dict)
            else type(checkpoint).__name__
        )
        raise CheckpointMismatchError(
            f'{filename} is not an fdseg checkpoint: it has no "state_dict" '
            f'(top level: {top}). Pretrained third-party weights are named '
            "in the config (init_cfg=dict(type='Pretrained', checkpoint=...)"
            " or a refiner's checkpoint=...), not passed as CHECKPOINT."
        )
    state = checkpoint['state_dict']
    # torch keeps per-module versions here (BatchNorm's num_batches_tracked).
    metadata = getattr(state, '_metadata', OrderedDict())
    for pattern, repl in revise_keys:
        state = {re.sub(pattern, repl, k): v for k, v in state.items()}
    state = OrderedDict(state)
    state._metadata = metadata
    own = model.state_dict()
    missing = set(own) - set(state)
    unexpected = set(state) - set(own)
    shape = {
        k
        for k in set(own) & set(state)
        if hasattr(state[k], 'shape') and tuple(state[k].shape) != tuple(own[k].shape)
    }
    if not (missing or unexpected or shape):
        return state
    meta = checkpoint.get('meta') or {}
    origin = meta.get('experiment_name')
    if len(set(own) & set(state)) < 0.5 * max(len(own), 1):
        raise CheckpointMismatchError(
            f'{filename} looks like a checkpoint of another model: only '
            f"{len(set(own) & set(state))} of the model's {len(own)} keys "
            f'are in it'
            + (f' (it was saved by experiment {origin!r})' if origin else '')
            + f'. Model keys missing from it: {_head(missing)}; keys in it '
            f'the model does not have: {_head(unexpected)}.'
        )
    parts = []
    if missing:
        parts.append(f'missing keys ({len(missing)}): {_head(missing)}')
    if unexpected:
        parts.append(f'unexpected keys ({len(unexpected)}): {_head(unexpected)}')
    if shape:
        parts.append(
            'shape mismatches: '
            + _head(
                f'{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
                for k in shape
            )
        )
    msg = f'{filename} does not match the model: ' + '; '.join(parts)
    if strict:
        raise CheckpointMismatchError(
            msg + '. Use the config the checkpoint was trained with, or '
            'pass --non-strict to load the matching keys only (the rest '
            'keep their initial values).'
        )
    print_log(
        'NON-STRICT LOAD: ' + msg + '. Mismatched keys keep their '
        'initial (pretrained or random) values.',
        logger='current',
        level=logging.WARNING,
    )
    # Drop mis-shaped tensors: load_state_dict would fail on them.
    for k in shape:
        del state[k]
    return state
