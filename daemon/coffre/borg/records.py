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


@dataclass(frozen=True)
class FileStatus:
    """One item borg ``create --list`` considered (a ``file_status`` record of ``--log-json``).

    ``status`` is borg's one-letter flag. With ``--filter=AMCE`` (``argv.create``'s
    ``list_changed``) only regular files come: ``A`` added, ``M`` modified, ``C``
    changed while read, ``E`` unreadable. A and M are decided by borg's *files
    cache* (per repository, keyed by the path; checked with borg 1.4.5): a path
    the cache does not hold is ``A``, one whose ctime, size or inode changed is
    ``M``, else ``U``. So a renamed file is ``A`` under its new name; after the
    cache is lost (a new cache dir, ``borg delete --cache-only``) every file is
    ``A`` although its chunks are already in the repository (deduplicated size
    about 0); and borg never memorises the files with the newest ctime of a run
    (a guard against timestamp granularity), so the last file written before a
    backup is ``A`` again at the next one even when unchanged.

    ``path`` is the path as borg walked it: absolute when the source path given
    was absolute (borg strips the leading ``/`` only inside the archive), relative
    to borg's working directory otherwise. A name that is not UTF-8 comes back
    with surrogate escapes (``os.fsencode`` gives its bytes back).
    """

    status: str
    path: str
