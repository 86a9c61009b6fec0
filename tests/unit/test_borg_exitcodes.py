"""borg exit codes -> typed errors; log records as borg 1.4.5 writes them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coffre.borg.exitcodes import TABLE, error_for, is_success, is_warning
from coffre.borg.records import LogRecord
from coffre.core.errors import (
    ERROR_KINDS,
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

CREATE = ("create", "--json", "/r::a", "/src")

TRACEBACK_ENOSPC = """Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/borg/archiver.py", line 5917, in main
    exit_code = archiver.run(args)
  File "/venv/lib/python3.11/site-packages/borg/platform/base.py", line 173, in write
    self.f.write(data)
OSError: [Errno 28] No space left on device

Platform: Linux box 6.1.0 #1 SMP x86_64
Borg: 1.4.5  Python: CPython 3.11.2 msgpack: 1.2.1
PID: 5216  CWD: /
"""


def error(message: str, msgid: str = "") -> LogRecord:
    return LogRecord("ERROR", message, msgid, "borg.archiver")


def test_success_and_warnings() -> None:
    assert is_success(0)
    assert not is_success(1)
    for rc in (1, 100, 107, 127):
        assert is_warning(rc)
    for rc in (0, 2, 73, 99, 128, 143, -15):
        assert not is_warning(rc)


@pytest.mark.parametrize(
    ("rc", "msgid", "expected"),
    [
        (73, "LockTimeout", BorgLockTimeout),
        (70, "LockError", BorgLockTimeout),
        (52, "PassphraseWrong", BorgWrongPassphrase),
        (50, "NoPassphraseFailure", BorgWrongPassphrase),
        (13, "Repository.DoesNotExist", BorgRepositoryMissing),
        (15, "Repository.InvalidRepository", BorgRepositoryMissing),
        (10, "Repository.AlreadyExists", BorgRepositoryExists),
        (19, "Repository.PathAlreadyExists", BorgRepositoryExists),
        (31, "Archive.DoesNotExist", BorgArchiveMissing),
        (30, "Archive.AlreadyExists", BorgArchiveExists),
        (80, "ConnectionClosed", BorgConnectionClosed),
        (81, "ConnectionClosedWithHint", BorgConnectionClosed),
        (90, "IntegrityError", BorgIntegrityError),
        (12, "Repository.CheckNeeded", BorgIntegrityError),
        (64, "Cache.RepositoryReplay", BorgIntegrityError),
        (14, "Repository.InsufficientFreeSpaceError", BorgNoSpace),
        (20, "Repository.StorageQuotaExceeded", BorgNoSpace),
    ],
)
def test_mapped_codes(rc: int, msgid: str, expected: type[BorgError]) -> None:
    logs = [
        LogRecord("WARNING", "something before", "", "borg.archiver"),
        error("borg's message", msgid),
    ]
    err = error_for(rc, logs, CREATE)
    assert type(err) is expected
    assert err.rc == rc
    assert err.message == "borg's message"
    assert err.msgid == msgid
    assert err.hint


def test_lock_timeout_hint_names_break_lock() -> None:
    err = error_for(73, [error("Failed to create/acquire the lock /r/lock (timeout).")], CREATE)
    assert "borg break-lock" in err.hint
    assert "/r/lock" in str(err)


def test_unknown_code_is_plain_borg_error() -> None:
    err = error_for(7, [error("odd", "Odd")], CREATE)
    assert type(err) is BorgError
    assert err.rc == 7
    assert err.message == "odd"


def test_fallback_message_without_logs() -> None:
    err = error_for(2, [], CREATE)
    assert type(err) is BorgError
    assert err.message == "borg create failed with exit code 2"
    assert error_for(2, [], ("key", "export", "--paper", "/r")).message.startswith(
        "borg key export failed"
    )
    assert error_for(2, [], ("--version",)).message == "borg failed with exit code 2"


def test_raw_stderr_line_when_no_error_record() -> None:
    logs = [
        LogRecord("WARNING", "usage: borg create [-h] ...", "", "stderr"),
        LogRecord("WARNING", 'borg create: error: argument ARCHIVE: "r": No archive', "", "stderr"),
    ]
    err = error_for(2, logs, CREATE)
    assert err.message == 'borg create: error: argument ARCHIVE: "r": No archive'


def test_no_space_from_local_exception_traceback() -> None:
    # What borg 1.4.5 logs when the repository's filesystem fills up (rc 2).
    logs = [
        LogRecord(
            "WARNING",
            "No space left on device, cleaning up partial transaction to free space.",
            "",
            "borg.repository",
        ),
        error("Local Exception", "Exception"),
        error(TRACEBACK_ENOSPC),
    ]
    err = error_for(2, logs, CREATE)
    assert type(err) is BorgNoSpace
    assert err.message == "OSError: [Errno 28] No space left on device"
    assert err.msgid == "Exception"
    assert err.rc == 2


def test_no_space_from_remote_traceback() -> None:
    # A remote server's OSError comes back whole as the error message (rc 2).
    err = error_for(2, [error(TRACEBACK_ENOSPC, "OSError")], CREATE)
    assert type(err) is BorgNoSpace
    assert err.message == "OSError: [Errno 28] No space left on device"


def test_read_only_filesystem_lock_failure_is_io_error() -> None:
    message = (
        "Failed to create/acquire the lock /mnt/usb/repo/lock.exclusive "
        "([Errno 30] Read-only file system: '/mnt/usb/repo/lock.exclusive.tmp')."
    )
    err = error_for(72, [error(message, "LockFailed")], CREATE)
    assert type(err) is BorgIOError
    assert err.message == message
    assert "unplugged" in err.hint


def test_io_error_in_traceback() -> None:
    tb = TRACEBACK_ENOSPC.replace(
        "[Errno 28] No space left on device", "[Errno 5] Input/output error"
    )
    err = error_for(2, [error("Local Exception", "Exception"), error(tb)], CREATE)
    assert type(err) is BorgIOError
    assert err.message == "OSError: [Errno 5] Input/output error"


def test_errno_text_is_only_read_from_error_records() -> None:
    logs = [
        LogRecord("WARNING", "/src/f: [Errno 5] Input/output error", "", "borg.archiver"),
        error("Repository /r does not exist.", "Repository.DoesNotExist"),
    ]
    assert type(error_for(13, logs, CREATE)) is BorgRepositoryMissing


@pytest.mark.parametrize(
    ("rc", "name"), [(143, "SIGTERM (15)"), (130, "SIGINT (2)"), (-9, "SIGKILL")]
)
def test_signals(rc: int, name: str) -> None:
    err = error_for(rc, [error("Received SIGTERM", "Signal.SIGTERM")], CREATE)
    assert type(err) is BorgInterrupted
    assert name in err.message
    assert err.message.startswith("borg create was stopped by")
    assert err.rc >= 128


def test_message_keeps_main_record_over_later_traceback() -> None:
    logs = [
        error("Data integrity error: Manifest authentication did not verify", "TAMInvalid"),
        error("Traceback (most recent call last):\n  ...\nborg.crypto.key.TAMInvalid: x\n"),
    ]
    err = error_for(97, logs, CREATE)
    assert err.message == "Data integrity error: Manifest authentication did not verify"
    assert err.msgid == "TAMInvalid"


def test_new_error_kind_is_registered() -> None:
    assert BorgIOError.kind in ERROR_KINDS


def _borg_error_classes() -> Iterator[type]:
    import borg.archiver  # type: ignore[import-untyped]  # noqa: F401  (imports every module)
    from borg.helpers.errors import ErrorBase  # type: ignore[import-untyped]

    todo: list[type] = [ErrorBase]
    while todo:
        cls = todo.pop()
        yield cls
        todo.extend(cls.__subclasses__())


def test_table_matches_installed_borg() -> None:
    """Each code in the table is the exit_mcode of the borg exception it names."""
    codes = {cls.__qualname__: getattr(cls, "exit_mcode", None) for cls in _borg_error_classes()}
    for rc, entry in TABLE.items():
        assert codes.get(entry.borg_error) == rc, (rc, entry.borg_error)
