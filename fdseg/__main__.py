"""``python -m fdseg`` runs the ``fdseg`` console script."""

import sys

from fdseg.cli.main import main

sys.exit(main())
