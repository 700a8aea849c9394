"""`python -m <plugin>.training …`: see `cli.py`."""

import sys

from .cli import main

sys.exit(main())
