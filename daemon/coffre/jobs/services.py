"""The collaborators a job works with, passed in rather than imported."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from coffre.core.clock import Clock
from coffre.core.config_types import Config
from coffre.storage.state import State

if TYPE_CHECKING:
    from coffre.borg.runner import BorgResult, Progress


class Borg(Protocol):
    """The one door to borg (``coffre.borg.runner.BorgRunner``, or a fake in unit tests)."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cwd: Path | None = None,
        use_passphrase: bool = True,
    ) -> BorgResult: ...


@dataclass(frozen=True)
class Services:
    config: Config
    state: State
    borg: Borg
    clock: Clock
    logger: logging.Logger
