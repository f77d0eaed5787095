"""The ``fdseg`` console script (``fdseg predict``, ``fdseg bank``, ...)."""

from .main import main

__all__ = ['main']
