"""Defect bank: named defect classes with K encoded examples each.

``fdseg.bank.file`` (the file format) imports no torch, so that
``fdseg bank list`` stays fast; the rest is imported on first use.
"""

from .file import BankError, read_meta

__all__ = [
    'BankError',
    'BankModelMismatchError',
    'DefectBank',
    'read_meta',
    'state_fingerprint',
]


def __getattr__(name):
    if name in ('BankModelMismatchError', 'DefectBank', 'state_fingerprint'):
        from . import defect_bank

        return getattr(defect_bank, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
