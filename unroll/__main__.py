"""``python -m unroll ...``: the same command line as the ``unroll`` script."""

import sys

from unroll.cli import main

if __name__ == "__main__":
    sys.exit(main())
