"""From a target's name to the object jobs use to reach its repository.

Configured targets come from the configuration; USB disks from state, where
``coffre disk enroll`` records them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from coffre.core.config_types import Config, OffsiteTarget, TargetConfig
from coffre.jobs.services import Services
from coffre.storage.state import State
from coffre.targets.base import Repository
from coffre.targets.local import LocalRepository
from coffre.targets.offsite.repository import OffsiteRepository
from coffre.targets.usb.repository import UsbRepository


def repository_for(target: TargetConfig, services: Services | None = None) -> Repository:
    """The Repository of a configured ``target``, by its kind.

    An offsite target needs the daemon's ``services`` (its borg goes over
    SSH, its preflight is recorded in state): ValueError without them.
    """
    if isinstance(target, OffsiteTarget):
        if services is None:
            raise ValueError(f"offsite target {target.name} needs the daemon's services")
        return OffsiteRepository(target, services)
    return LocalRepository(target)


def require_known(config: Config, state: State, name: str) -> str:
    """``name`` when it is a configured target or an enrolled disk; UsageError naming the known."""
    if state.disk(name) is None:
        config.target(name)  # raises UsageError naming the configured targets
    return name


class RepositoryCatalog(Mapping[str, Repository]):
    """Every repository coffre knows: configured targets, then enrolled disks."""

    def __init__(
        self, config: Config, state: State, mount_root: Path, services: Services | None = None
    ) -> None:
        self._configured = {t.name: repository_for(t, services) for t in config.targets}
        self._state = state
        self._mount_root = mount_root

    def __getitem__(self, name: str) -> Repository:
        if name in self._configured:
            return self._configured[name]
        if self._state.disk(name) is not None:
            return UsbRepository(name, self._state.disk, self._mount_root)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        yield from self._configured
        yield from (d.name for d in self._state.disks())

    def __len__(self) -> int:
        return len(self._configured) + len(self._state.disks())
