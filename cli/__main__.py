"""`python -m gapfill.cli …`: the same as the `gapfill` console script."""

import sys

from .main import main

sys.exit(main())
