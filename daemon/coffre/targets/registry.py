"""From a target's configuration to the object jobs use to reach its repository."""

from __future__ import annotations

from coffre.config_types import TargetConfig
from coffre.targets.base import Repository
from coffre.targets.local import LocalRepository


def repository_for(target: TargetConfig) -> Repository:
    """The Repository of ``target``, by its kind."""
    return LocalRepository(target)
