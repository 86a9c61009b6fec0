"""Domain values shared by the pure modules and the adapters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from coffre.core.outcomes import BackupWarnings


@dataclass(frozen=True, order=True)
class Archive:
    """One archive of a repository.

    ``time`` is the archive's start time, timezone-aware (UTC as borg stores it).
    """

    time: datetime
    name: str
    id: str = ""

    @property
    def is_checkpoint(self) -> bool:
        """True for the partial archives borg leaves when a create is interrupted."""
        base, _, suffix = self.name.rpartition(".checkpoint")
        return bool(base) and (suffix == "" or (suffix.startswith(".") and suffix[1:].isdigit()))


@dataclass(frozen=True)
class Item:
    """One entry of an archive, as ``borg list --json-lines`` shows it.

    ``path`` as stored (no leading ``/``); ``kind`` borg's one-letter type
    (``-`` file, ``d`` folder, ``l`` symlink...); ``size`` in bytes (0 for a
    folder); ``mtime`` timezone-aware, UTC.
    """

    path: str
    kind: str
    size: int
    mtime: datetime

    @property
    def is_file(self) -> bool:
        return self.kind == "-"


#: Outcomes a run can have.
RUNNING = "running"
SUCCESS = "success"
#: The work was done with borg warnings: a backup made its archive, but some
#: files are not in it (unreadable, vanished) or may be inconsistent (changed).
WARNING = "warning"
FAILED = "failed"
INTERRUPTED = "interrupted"

#: Outcomes of runs that did their work: a backup's archive exists. "The last
#: success" of a target (freshness, restore points, the disk's last backup) is
#: its newest run with one of these; whether it was complete is its outcome.
COMPLETED: tuple[str, ...] = (SUCCESS, WARNING)
#: Outcomes of runs that did not (no archive).
UNSUCCESSFUL: tuple[str, ...] = (FAILED, INTERRUPTED)


@dataclass(frozen=True)
class RunStats:
    """What a backup produced, as kept in state.

    ``warnings``: None when borg saved every file; else the counts of what it
    warned about, and the run's outcome is WARNING.
    """

    archive: str
    original_bytes: int
    compressed_bytes: int
    deduplicated_bytes: int
    nfiles: int
    warnings: BackupWarnings | None = None


@dataclass(frozen=True)
class DiskRecord:
    """An enrolled USB disk: its identity and what was last seen of it.

    ``present``: the kernel shows it now (at ``devnode``). ``safe_to_remove``:
    its last job ended with the disk unmounted and powered off.
    ``streak_started``: since when it has been the only disk plugged in (set
    when it is plugged after another disk), for the swap reminder.
    """

    name: str
    fs_uuid: str
    repository_id: str
    enrolled_at: datetime
    last_seen: datetime | None
    devnode: str | None
    devpath: str | None
    present: bool
    safe_to_remove: bool
    free_bytes: int | None
    streak_started: datetime | None
    usb_device: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """One run of a job kind on a target."""

    id: int
    target: str
    kind: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    error_kind: str | None
    error_message: str | None
    stats: RunStats | None

    @property
    def warnings(self) -> BackupWarnings | None:
        """What borg warned about in this run (None: a clean run, or no archive)."""
        return None if self.stats is None else self.stats.warnings

    @property
    def duration(self) -> float | None:
        """Seconds between start and end, None while running."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


#: Error kinds worth another attempt a little later: the network or the host
#: (a host compacting holds the lock), not a refusal or a broken repository.
RETRIABLE = frozenset({"unreachable", "connection_closed", "lock_timeout", "interrupted"})
