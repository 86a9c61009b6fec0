"""The collaborators a job works with, passed in rather than imported."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from coffre.borg.protocol import Borg
from coffre.consistency.share_desk import ShareDesk
from coffre.core.clock import Clock
from coffre.core.config_types import Config
from coffre.storage.state import State

# Borg is declared in coffre.borg.protocol; named here too because Services.borg is one.
__all__ = ["Borg", "Services"]


@dataclass(frozen=True)
class Services:
    config: Config
    state: State
    borg: Borg
    clock: Clock
    logger: logging.Logger
    #: The share's snapshots and quiet waits (None: backups read the live share at once).
    share: ShareDesk | None = None
