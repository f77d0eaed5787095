"""Entry point of the ``fdseg`` console script.

Each sub-command lives in its own module of :mod:`fdseg.cli` and exposes
``add_parser(subparsers)`` (which returns its parser) and ``run(args)``
(which returns an exit status). The modules import torch and the models
only inside ``run``, so ``fdseg --help`` stays fast (~0.6 s).
"""

import argparse
import importlib
import sys
from typing import List, Optional

# sub-command name -> module implementing it.
SUBCOMMANDS = {
    'predict': 'fdseg.cli.predict',
    'bank': 'fdseg.cli.bank',
    'export': 'fdseg.cli.export',
}


def _available():
    """Yield ``(name, module)`` of the sub-commands that are installed."""
    for name, module_name in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            continue
        yield name, module


def build_parser() -> argparse.ArgumentParser:
    """The ``fdseg`` parser with every available sub-command."""
    from fdseg.version import __version__

    parser = argparse.ArgumentParser(
        prog='fdseg',
        description='Few-shot industrial defect segmentation on the line.',
    )
    parser.add_argument('--version', action='version', version=__version__)
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, module in _available():
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, '_run', None) is None:
        parser.print_help()
        return 2
    return int(args._run(args) or 0)


if __name__ == '__main__':
    sys.exit(main())
