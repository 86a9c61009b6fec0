"""What borg tells while it runs: log records and progress, as the runner hands them on.

These live apart from the runner so that the exit-code table can read log
records without importing the runner.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Levels of borg's Python logging, as ``--log-json`` spells them.
ERROR_LEVELS = frozenset({"ERROR", "CRITICAL"})

#: ``LogRecord.name`` of a stderr line that was not borg's JSON (argparse errors, prompts).
STDERR_NAME = "stderr"


@dataclass(frozen=True)
class LogRecord:
    """One ``log_message`` of ``borg --log-json`` (or a raw stderr line, name ``stderr``).

    ``msgid`` is borg's stable handle of the message (``LockTimeout``,
    ``Repository.DoesNotExist``...), empty when borg gave none.
    """

    level: str
    message: str
    msgid: str
    name: str

    @property
    def is_error(self) -> bool:
        """True for ERROR and CRITICAL records."""
        return self.level in ERROR_LEVELS


@dataclass(frozen=True)
class Progress:
    """One progress report of a running borg.

    From ``archive_progress`` (create): the sizes and file count so far, and
    ``message`` the path being read. From ``progress_percent`` and
    ``progress_message`` (cache sync, extract, check...): ``message`` and, for
    the former, ``percent``; the sizes then repeat the last ones seen in the
    same run (0 before any). From an ``extract --list`` line: ``message`` is
    the item written, ``percent`` None. ``finished`` marks the end of one
    operation.
    """

    original_size: int
    compressed_size: int
    deduplicated_size: int
    nfiles: int
    finished: bool
    message: str = ""
    percent: float | None = None
