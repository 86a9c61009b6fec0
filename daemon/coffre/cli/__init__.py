"""The ``coffre`` command: one module per command group; ``dispatch`` parses and runs.

``main`` is the console script's entry point (``coffre.cli:main``, unchanged by the
layout). It imports the dispatcher only when called, so that importing one
command's module does not load the others.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``coffre`` command with ``argv`` (the process's arguments if None)."""
    from coffre.cli.dispatch import main as run

    return run(argv)
