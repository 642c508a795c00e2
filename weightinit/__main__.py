"""``python -m weightinit``: the same command line as the ``weightinit`` script."""

import sys

from weightinit.service.cli import main

if __name__ == "__main__":
    sys.exit(main())
