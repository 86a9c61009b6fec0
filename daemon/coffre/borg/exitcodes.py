"""borg's exit codes (``BORG_EXIT_CODES=modern``, borg 1.4) and the typed error of each.

Modern codes: 0 success; 1 and 100..127 warnings (the run reached its end);
2..99 errors (2 is the generic one: an unexpected exception); 128+N killed
by signal N. The table below is read from borg 1.4.5's ``exit_mcode``
attributes (``borg/helpers/errors.py``, ``repository.py``, ``locking.py``,
``crypto/key.py``, ``remote.py``, ``cache.py``, ``archive.py``); borg logs the
same exception's qualified name as the error record's ``msgid``.

borg has no exit code of its own for a full or failing disk (14 is only its
own free-space check, ``additional_free_space``): an OSError such as ENOSPC
or EIO ends borg with the generic code 2 ("Local Exception", or a remote
"OSError"), its errno only visible in the logged traceback. Those are
recognised from the ERROR records' text, before the code is looked up (a
lock that cannot be created on a read-only disk says so in its message too).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from coffre.borg.records import STDERR_NAME, LogRecord
from coffre.core.errors import (
    BorgArchiveExists,
    BorgArchiveMissing,
    BorgConnectionClosed,
    BorgError,
    BorgIntegrityError,
    BorgInterrupted,
    BorgIOError,
    BorgLockTimeout,
    BorgNoSpace,
    BorgRepositoryExists,
    BorgRepositoryMissing,
    BorgWrongPassphrase,
)

#: ``rc`` of a BorgError raised without borg having run (or finished): bad
#: passphrase size, missing binary, repository checked by reading its config.
NOT_RUN: Final = -1

SIGNAL_BASE: Final = 128

_HINT_LOCK = (
    "another borg process uses this repository; if none runs, the lock may be stale: "
    "see `borg break-lock`"
)
_HINT_PASSPHRASE = (
    "the passphrase file does not open this repository's key: restore the right one "
    "(it is escrowed on paper with the exported key)"
)
_HINT_NO_PASSPHRASE = "the repository is encrypted but borg was given no passphrase"
_HINT_REPO_MISSING = (
    "check that the repository's disk is mounted and its location right; "
    "create it with `coffre target init NAME`"
)
_HINT_REPO_EXISTS = (
    "something is already at that location; coffre never overwrites it: "
    "choose another location or move it away by hand"
)
_HINT_ARCHIVE_MISSING = "the archive may have been deleted meanwhile; list the repository again"
_HINT_ARCHIVE_EXISTS = "archive names must be unique in a repository"
_HINT_NO_SPACE = (
    "free space on the repository's disk (delete old archives, then compact), "
    "in coffre's cache directory, or in its state directory (borg's security "
    "and config dirs live there): `df -h` tells which is full"
)
_HINT_QUOTA = "the repository's storage quota is reached: delete old archives, then compact"
_HINT_CONNECTION = (
    "the SSH connection to the remote host was lost; the next run resumes from the last checkpoint"
)
_HINT_INTEGRITY = (
    "run `borg check` on this repository and read its report before writing to it again"
)
_HINT_REPLAY = (
    "borg has seen a newer state of a repository with this id: an old copy of the "
    "repository (or another repository cloned from it) is in use; never copy a repository"
)
_HINT_IO = (
    "the storage holding the repository failed: a USB disk unplugged, failing or gone "
    "read-only; check the disk and the kernel log (dmesg)"
)
_HINT_INTERRUPTED = (
    "borg was stopped before its end (shutdown, or killed); an interrupted backup "
    "resumes from its last checkpoint at the next run"
)
_HINT_NEWER_BORG = "a newer borg wrote this repository: upgrade borg"
_HINT_RELOCATED = (
    "borg refused the repository: it was seen at another location before (mount it "
    "where it was), or it is unencrypted and unknown"
)
_HINT_LOCK_FAILED = "borg could not create its lock in the repository: check its permissions"
_HINT_LOCK_LOST = "borg's lock was removed while it ran (`borg break-lock` from elsewhere?)"


@dataclass(frozen=True)
class Entry:
    """What an error exit code means: borg's exception, coffre's error type, what to do."""

    borg_error: str
    error: type[BorgError]
    hint: str


#: rc -> Entry, for the codes coffre knows what to say about; others give a plain BorgError.
TABLE: Final[Mapping[int, Entry]] = {
    3: Entry("CancelledByUser", BorgError, "borg asked for a confirmation and coffre answered no"),
    10: Entry("Repository.AlreadyExists", BorgRepositoryExists, _HINT_REPO_EXISTS),
    11: Entry(
        "Repository.AtticRepository",
        BorgError,
        "an Attic repository: convert it with `borg upgrade`",
    ),
    12: Entry("Repository.CheckNeeded", BorgIntegrityError, _HINT_INTEGRITY),
    13: Entry("Repository.DoesNotExist", BorgRepositoryMissing, _HINT_REPO_MISSING),
    14: Entry("Repository.InsufficientFreeSpaceError", BorgNoSpace, _HINT_NO_SPACE),
    15: Entry("Repository.InvalidRepository", BorgRepositoryMissing, _HINT_REPO_MISSING),
    16: Entry("Repository.InvalidRepositoryConfig", BorgIntegrityError, _HINT_INTEGRITY),
    17: Entry("Repository.ObjectNotFound", BorgIntegrityError, _HINT_INTEGRITY),
    18: Entry("Repository.ParentPathDoesNotExist", BorgRepositoryMissing, _HINT_REPO_MISSING),
    19: Entry("Repository.PathAlreadyExists", BorgRepositoryExists, _HINT_REPO_EXISTS),
    20: Entry("Repository.StorageQuotaExceeded", BorgNoSpace, _HINT_QUOTA),
    21: Entry(
        "Repository.PathPermissionDenied",
        BorgError,
        "permission denied on the repository's location",
    ),
    25: Entry("MandatoryFeatureUnsupported", BorgError, _HINT_NEWER_BORG),
    26: Entry("NoManifestError", BorgIntegrityError, _HINT_INTEGRITY),
    27: Entry("UnsupportedManifestError", BorgError, _HINT_NEWER_BORG),
    30: Entry("Archive.AlreadyExists", BorgArchiveExists, _HINT_ARCHIVE_EXISTS),
    31: Entry("Archive.DoesNotExist", BorgArchiveMissing, _HINT_ARCHIVE_MISSING),
    40: Entry("KeyfileInvalidError", BorgIntegrityError, _HINT_INTEGRITY),
    44: Entry("RepoKeyNotFoundError", BorgIntegrityError, _HINT_INTEGRITY),
    48: Entry("UnsupportedPayloadError", BorgError, _HINT_NEWER_BORG),
    50: Entry("NoPassphraseFailure", BorgWrongPassphrase, _HINT_NO_PASSPHRASE),
    52: Entry("PassphraseWrong", BorgWrongPassphrase, _HINT_PASSPHRASE),
    53: Entry("PasswordRetriesExceeded", BorgWrongPassphrase, _HINT_PASSPHRASE),
    60: Entry("Cache.CacheInitAbortedError", BorgError, _HINT_RELOCATED),
    61: Entry("Cache.EncryptionMethodMismatch", BorgIntegrityError, _HINT_REPLAY),
    62: Entry("Cache.RepositoryAccessAborted", BorgError, _HINT_RELOCATED),
    63: Entry("Cache.RepositoryIDNotUnique", BorgIntegrityError, _HINT_REPLAY),
    64: Entry("Cache.RepositoryReplay", BorgIntegrityError, _HINT_REPLAY),
    70: Entry("LockError", BorgLockTimeout, _HINT_LOCK),
    72: Entry("LockFailed", BorgError, _HINT_LOCK_FAILED),
    73: Entry("LockTimeout", BorgLockTimeout, _HINT_LOCK),
    74: Entry("NotLocked", BorgError, _HINT_LOCK_LOST),
    75: Entry("NotMyLock", BorgError, _HINT_LOCK_LOST),
    80: Entry("ConnectionClosed", BorgConnectionClosed, _HINT_CONNECTION),
    81: Entry("ConnectionClosedWithHint", BorgConnectionClosed, _HINT_CONNECTION),
    83: Entry(
        "PathNotAllowed", BorgError, "the remote host refuses this repository path (forced command)"
    ),
    84: Entry(
        "RemoteRepository.RPCServerOutdated",
        BorgError,
        "the remote host's borg is too old for this client",
    ),
    86: Entry(
        "UnexpectedRPCDataFormatFromServer",
        BorgConnectionClosed,
        "the remote host sent something that is not borg",
    ),
    87: Entry("ConnectionBrokenWithHint", BorgConnectionClosed, _HINT_CONNECTION),
    90: Entry("IntegrityError", BorgIntegrityError, _HINT_INTEGRITY),
    91: Entry("FileIntegrityError", BorgIntegrityError, _HINT_INTEGRITY),
    92: Entry("DecompressionError", BorgIntegrityError, _HINT_INTEGRITY),
    95: Entry("ArchiveTAMInvalid", BorgIntegrityError, _HINT_INTEGRITY),
    96: Entry("ArchiveTAMRequiredError", BorgIntegrityError, _HINT_INTEGRITY),
    97: Entry("TAMInvalid", BorgIntegrityError, _HINT_INTEGRITY),
    98: Entry("TAMRequiredError", BorgIntegrityError, _HINT_INTEGRITY),
    99: Entry("TAMUnsupportedSuiteError", BorgError, _HINT_NEWER_BORG),
}

_NO_SPACE = re.compile(r"\[Errno 28\]|No space left on device")
# EIO, ENXIO, ENODEV, EROFS: what a pulled-out or dying disk gives.
_STORAGE_FAILURE = re.compile(
    r"\[Errno (?:5|6|19|30)\]|Input/output error|Read-only file system|No such device"
)
# borg commands made of two words.
_GROUPS = frozenset({"key", "debug", "benchmark"})
_TRACEBACK_HEAD = "Traceback (most recent call last):"
# Generic messages of borg's top-level handler: the traceback says more.
_VAGUE = frozenset({"Local Exception", ""})


def is_success(rc: int) -> bool:
    """True when borg reached its end with no problem."""
    return rc == 0


def is_warning(rc: int) -> bool:
    """True when borg reached its end with warnings (a file changed, a file unreadable...)."""
    return rc == 1 or 100 <= rc <= 127


def error_for(rc: int, logs: Sequence[LogRecord], argv: Sequence[str]) -> BorgError:
    """The typed error for a borg run that ended with ``rc`` (neither success nor warning).

    ``logs`` are the run's records, in order; ``argv`` what followed the
    common options (its first word names the command in the fallback
    message). The message is borg's own last error message (for an
    unexpected exception, the last line of its traceback), else the last
    raw stderr line, else "borg CMD failed with exit code N". A negative
    ``rc`` (asyncio's "killed by signal -rc") counts as 128 - rc.
    """
    command = _command(argv)
    main = _main_record(logs)
    msgid = main.msgid if main else ""
    if rc < 0:
        rc = SIGNAL_BASE - rc
    if rc >= SIGNAL_BASE:
        message = f"{command} was stopped by {_signal_name(rc - SIGNAL_BASE)}"
        return BorgInterrupted(message, rc=rc, hint=_HINT_INTERRUPTED, msgid=msgid)
    message = _message(main, logs) or f"{command} failed with exit code {rc}"
    error_text = "\n".join(r.message for r in logs if r.is_error)
    if _NO_SPACE.search(error_text):
        return BorgNoSpace(message, rc=rc, hint=_HINT_NO_SPACE, msgid=msgid)
    if _STORAGE_FAILURE.search(error_text):
        return BorgIOError(message, rc=rc, hint=_HINT_IO, msgid=msgid)
    entry = TABLE.get(rc)
    if entry is None:
        return BorgError(message, rc=rc, msgid=msgid)
    return entry.error(message, rc=rc, hint=entry.hint, msgid=msgid)


def _command(argv: Sequence[str]) -> str:
    """``borg`` and its command words: "borg create", "borg key export"."""
    if not argv or argv[0].startswith("-"):
        return "borg"
    if argv[0] in _GROUPS and len(argv) > 1:
        return f"borg {argv[0]} {argv[1]}"
    return f"borg {argv[0]}"


def _signal_name(number: int) -> str:
    try:
        return f"{signal.Signals(number).name} ({number})"
    except ValueError:
        return f"signal {number}"


def _main_record(logs: Sequence[LogRecord]) -> LogRecord | None:
    """borg's closing error record: the last error with a msgid, else the last error at all."""
    errors = [r for r in logs if r.is_error]
    with_msgid = [r for r in errors if r.msgid]
    if with_msgid:
        return with_msgid[-1]
    return errors[-1] if errors else None


def _message(main: LogRecord | None, logs: Sequence[LogRecord]) -> str:
    if main is not None:
        text = main.message.strip()
        if text.startswith(_TRACEBACK_HEAD):
            return _traceback_tail(text)
        if text in _VAGUE:
            tail = next(
                (
                    _traceback_tail(r.message)
                    for r in reversed(logs)
                    if r.is_error and r.message.lstrip().startswith(_TRACEBACK_HEAD)
                ),
                "",
            )
            return tail or text
        return text
    raw = [r.message.strip() for r in logs if r.name == STDERR_NAME and r.message.strip()]
    return raw[-1] if raw else ""


def _traceback_tail(text: str) -> str:
    """The exception line of a Python traceback (borg appends its system info after it)."""
    body = text.split("\nPlatform:", 1)[0]
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    return lines[-1] if lines else ""
