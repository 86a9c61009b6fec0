"""``python -m coffre.cli``: the ``coffre`` command (the demo and the tests use it)."""

import sys

from coffre.cli import main

if __name__ == "__main__":
    sys.exit(main())
