"""The defect bank file: safetensors with fdseg's metadata (no torch needed).

A bank file is a safetensors file whose ``__metadata__['fdseg']`` is a JSON
document: ``format`` (``'fdseg-defect-bank'``), ``version``, ``model``
(config, cfg options, type, state / architecture SHA-256), ``preprocessing``
(network size, mask threshold, mean / std), ``classes`` (name, threshold,
examples with the layout of their tensors) and ``calibration``. Reading it
needs only the header, so ``fdseg bank list`` does not build the model.
"""

import json
import os.path as osp

FORMAT = 'fdseg-defect-bank'
FORMAT_VERSION = 1
_MAX_HEADER = 100 * 1024 * 1024


class BankError(ValueError):
    """A bad bank operation or input (the message names it)."""


def read_meta(path: str) -> dict:
    """The fdseg metadata of a bank file (from the safetensors header).

    Raises:
        BankError: No such file, not a safetensors file, not an fdseg bank,
            or another format version.
    """
    if not osp.isfile(path):
        raise BankError(f'bank {path}: no such file')
    try:
        with open(path, 'rb') as f:
            n = int.from_bytes(f.read(8), 'little')
            if not 2 <= n <= _MAX_HEADER:
                raise ValueError('bad header length')
            header = json.loads(f.read(n))
        meta = json.loads(header['__metadata__']['fdseg'])
    except (OSError, ValueError, KeyError, TypeError):
        raise BankError(
            f'bank {path}: not an fdseg defect bank (unreadable safetensors '
            'header or no fdseg metadata)'
        ) from None
    if not isinstance(meta, dict) or meta.get('format') != FORMAT:
        raise BankError(f'bank {path}: not an fdseg defect bank')
    if meta.get('version') != FORMAT_VERSION:
        raise BankError(
            f'bank {path}: format version {meta.get("version")}, this fdseg '
            f'reads version {FORMAT_VERSION}'
        )
    return meta


def summary(meta: dict, path: str) -> dict:
    """What ``fdseg bank list`` shows, from the metadata."""
    return dict(
        bank=osp.abspath(path),
        model=meta['model'].get('config_name'),
        classes=[
            dict(
                name=c['name'],
                label=i + 1,
                examples=len(c['examples']),
                threshold=c.get('threshold'),
                sources=[e['source'] for e in c['examples']],
            )
            for i, c in enumerate(meta['classes'])
        ],
        calibration=meta.get('calibration'),
    )
