"""Pure: borg create's warnings (``--log-json``), sorted into ``coffre.core.outcomes``' reasons.

borg 1.4.5 (``archiver.py``, ``print_warning_instance``) logs each problem
with a file at WARNING level, its ``msgid`` the qualified name of the
exception it caught (``helpers/errors.py``), its message "PATH: what went
wrong". ``archive.py``'s ``backup_io`` maps the OSError of a file to
BackupPermissionError (EPERM, EACCES, EBUSY), BackupFileNotFoundError
(ENOENT), BackupIOError (EIO) or BackupOSError (any other errno). Their
modern exit codes: 100 FileChangedWarning, 101 IncludePatternNeverMatchedWarning,
102 BackupError, 103 BackupRaceConditionError, 104 BackupOSError, 105
BackupPermissionError, 106 BackupIOError, 107 BackupFileNotFoundError; 1
when several kinds were met. A file in any of these but FileChangedWarning
is left out of the archive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from coffre.borg.records import LogRecord
from coffre.core.outcomes import BackupWarnings, Reason

#: borg's msgid of a warning about one file -> why that file is missing or suspect.
FILE_MSGIDS: Final[Mapping[str, Reason]] = {
    "BackupPermissionError": Reason.PERMISSION,
    "BackupIOError": Reason.IO_ERROR,
    "BackupOSError": Reason.UNREADABLE,
    "BackupError": Reason.UNREADABLE,
    "BackupFileNotFoundError": Reason.VANISHED,
    # "file type or inode changed while we backed it up (race condition, skipped file)"
    "BackupRaceConditionError": Reason.VANISHED,
    "FileChangedWarning": Reason.CHANGED,
}


@dataclass(frozen=True)
class Warned:
    """One warning of borg: its reason, and borg's message (which names the file, if any).

    The message stays on the box: it goes to the journal, never to state,
    status, metrics or alerts.
    """

    reason: Reason
    message: str


def classify(records: Sequence[LogRecord]) -> tuple[BackupWarnings, tuple[Warned, ...]]:
    """The counts by reason of ``records`` (a run's WARNING records), and each one sorted.

    Meant for a run that ended with a warning exit code: records at another
    level are ignored. A msgid coffre does not know counts as
    ``Reason.OTHER``. Raises nothing.
    """
    warned = tuple(
        Warned(FILE_MSGIDS.get(record.msgid, Reason.OTHER), record.message)
        for record in records
        if record.level == "WARNING"
    )
    counts: dict[Reason, int] = {}
    for item in warned:
        counts[item.reason] = counts.get(item.reason, 0) + 1
    return BackupWarnings.of(counts), warned
