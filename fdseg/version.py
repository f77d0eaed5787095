"""fdseg's version (PEP 440): a development release of 0.2.0.

``0.2.0.dev0`` is the unreleased state of main after 0.1.0 (see
CHANGELOG.md); a release drops the ``.devN`` suffix.
"""

__version__ = '0.2.0.dev0'
