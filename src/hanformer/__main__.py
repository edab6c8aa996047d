"""`python -m hanformer ...`: the same command line as the `hanformer` script."""

from __future__ import annotations

import sys

from hanformer.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
