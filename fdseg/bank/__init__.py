"""Defect bank: named defect classes with K encoded examples each."""

from .defect_bank import (
    BankError,
    BankModelMismatchError,
    DefectBank,
    state_fingerprint,
)

__all__ = ['BankError', 'BankModelMismatchError', 'DefectBank', 'state_fingerprint']
