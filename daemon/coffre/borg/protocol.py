"""What code that runs borg types against: the runner's door, as one Protocol.

:class:`coffre.borg.runner.BorgRunner` satisfies all three below; unit tests
hand in a fake. :class:`Borg` is the door; the two others are the same door
with one more keyword of ``BorgRunner.run``, asked for only by the code that
needs it, so that a fake implements what its user calls and no more:

- :class:`Borg`: what a job gets (``Services.borg``): argv in, result or typed
  error out. No per-run environment and no stdin: an offsite target's runs go
  through ``OffsiteBorg``, which sets ``BORG_RSH`` and the upload limit
  itself, and a job must not be able to run borg past that (nor does any
  job answer borg's prompts).
- :class:`EnvBorg`: plus ``extra_env``, the run's own environment
  (``OffsiteBorg`` wraps the daemon's runner and adds the target's ``BORG_RSH``).
- :class:`StdinBorg`: plus ``stdin``, the answers to borg's prompts (the
  recovery feeds the paper key's lines to ``borg key import --paper``; its
  ``BORG_RSH`` is in the runner's own environment, made for the recovery).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from coffre.borg.records import Progress
    from coffre.borg.runner import BorgResult

__all__ = ["Borg", "EnvBorg", "StdinBorg"]


class Borg(Protocol):
    """The one door to borg (``BorgRunner``, ``OffsiteBorg``, or a fake in unit tests)."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cwd: Path | None = None,
        use_passphrase: bool = True,
    ) -> BorgResult:
        """Run borg ``argv``: see :meth:`coffre.borg.runner.BorgRunner.run`."""
        ...


class EnvBorg(Borg, Protocol):
    """The door, with extra environment variables for one run (``BorgRunner``)."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cwd: Path | None = None,
        use_passphrase: bool = True,
        extra_env: Mapping[str, str] | None = None,
    ) -> BorgResult:
        """Run borg ``argv`` with ``extra_env`` added: see ``BorgRunner.run``."""
        ...


class StdinBorg(Borg, Protocol):
    """The door, with the answers to borg's prompts on its stdin (``BorgRunner``)."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cwd: Path | None = None,
        use_passphrase: bool = True,
        stdin: bytes | None = None,
    ) -> BorgResult:
        """Run borg ``argv`` with ``stdin`` written to it: see ``BorgRunner.run``."""
        ...
