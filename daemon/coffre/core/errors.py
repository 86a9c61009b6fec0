"""Typed errors of coffre.

Every failure coffre reports is one of these types. The type decides the
metric label (``kind``, a bounded set), the CLI exit code and the message; no
caller ever catches "anything" and returns False.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class CoffreError(Exception):
    """Base of every error coffre reports to a person.

    ``message`` says what is wrong, ``hint`` what to do about it. ``kind`` is a
    short, bounded identifier used as a metric label and in the state.
    """

    kind: ClassVar[str] = "internal"
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


@dataclass(frozen=True)
class ConfigProblem:
    """One problem found in a configuration: where it is (dotted key path) and what is wrong."""

    key_path: str
    message: str

    def __str__(self) -> str:
        return f"{self.key_path}: {self.message}" if self.key_path else self.message


class ConfigError(CoffreError):
    """The configuration cannot be used; ``problems`` lists every issue found."""

    kind = "config"
    exit_code = 2

    def __init__(self, path: str, problems: list[ConfigProblem]) -> None:
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{path}: invalid configuration\n{lines}")
        self.path = path
        self.problems = tuple(problems)


class UsageError(CoffreError):
    """The command line asks for something that does not exist (unknown target...)."""

    kind = "usage"
    exit_code = 2


class DaemonUnavailable(CoffreError):
    """The CLI could not reach the daemon's control socket."""

    kind = "daemon_unavailable"
    exit_code = 3


class PermissionRefused(CoffreError):
    """The caller may not use the control socket (only root may)."""

    kind = "permission"
    exit_code = 4


class StateError(CoffreError):
    """The state database could not be opened or written."""

    kind = "state"


class TargetNotInitialised(CoffreError):
    """A job was asked on a target whose repository was never created by coffre."""

    kind = "not_initialised"


class RepositoryIdMismatch(CoffreError):
    """The repository found at a target is not the one coffre created there."""

    kind = "repository_mismatch"


class JobCancelled(CoffreError):
    """The job was stopped by a daemon shutdown; borg left a checkpoint where it could."""

    kind = "cancelled"


class DiskError(CoffreError):
    """Mounting, unmounting, formatting or powering off a disk failed."""

    kind = "disk_io"


class DiskAbsent(CoffreError):
    """The enrolled disk asked for is not plugged in (or was powered off)."""

    kind = "disk_absent"


class OffsiteNotEnrolled(CoffreError):
    """An offsite target has no pinned host key yet: nothing is sent to an unknown host."""

    kind = "not_enrolled"


class OffsiteUnreachable(CoffreError):
    """The offsite host did not answer (network down, host down, wrong address or port)."""

    kind = "unreachable"


class HostKeyMismatch(CoffreError):
    """The offsite host showed a host key that is not a pinned one: nothing was sent."""

    kind = "host_key_mismatch"


class OffsiteAuthRefused(CoffreError):
    """The offsite host refused the box's SSH key."""

    kind = "auth_refused"


# --- borg -----------------------------------------------------------------


class BorgError(CoffreError):
    """borg ended with an error. ``rc`` is its exit code (modern codes)."""

    kind = "borg"

    def __init__(self, message: str, *, rc: int, hint: str = "", msgid: str = "") -> None:
        super().__init__(message, hint=hint)
        self.rc = rc
        self.msgid = msgid


class BorgNotFound(BorgError):
    """The borg executable could not be started."""

    kind = "borg_missing"


class BorgLockTimeout(BorgError):
    """Another borg process holds the repository lock."""

    kind = "lock_timeout"


class BorgWrongPassphrase(BorgError):
    """The passphrase does not open the repository key."""

    kind = "wrong_passphrase"


class BorgRepositoryMissing(BorgError):
    """No repository at the given location."""

    kind = "repository_missing"


class BorgRepositoryExists(BorgError):
    """``borg init`` found a repository (or a non-empty directory) already there."""

    kind = "repository_exists"


class BorgArchiveMissing(BorgError):
    """The archive named does not exist in the repository."""

    kind = "archive_missing"


class BorgArchiveExists(BorgError):
    """An archive with that name exists already."""

    kind = "archive_exists"


class BorgNoSpace(BorgError):
    """The repository's filesystem is full."""

    kind = "no_space"


class BorgConnectionClosed(BorgError):
    """The connection to a remote repository was lost."""

    kind = "connection_closed"


class BorgIntegrityError(BorgError):
    """borg found corrupted data or metadata."""

    kind = "integrity"


class BorgIOError(BorgError):
    """The storage holding the repository failed: I/O error, read-only filesystem, device gone.

    The usual cause is a USB disk pulled out (or failing) while borg used it: ext4
    then logs I/O errors and goes read-only.
    """

    kind = "io_error"


class BorgInterrupted(BorgError):
    """borg was stopped by a signal (shutdown, or killed)."""

    kind = "interrupted"


class NotInArchive(CoffreError):
    """A path asked for a restore is in no archive looked at."""

    kind = "not_in_archive"
    exit_code = 5


class WouldOverwrite(CoffreError):
    """A restore would replace files that exist, and ``--overwrite`` was not given."""

    kind = "would_overwrite"
    exit_code = 6


class DestinationError(CoffreError):
    """A restore cannot write where it was asked to (read-only, full, not allowed)."""

    kind = "destination"


class PassphraseUnavailable(CoffreError):
    """The passphrase file cannot be read (missing, unreadable, empty): borg cannot run."""

    kind = "passphrase"


class SourceUnavailable(CoffreError):
    """A source path (the share) is missing or not a folder: nothing was backed up.

    borg would make an archive of nothing and only warn, and that empty
    archive would take a restore point from a good one.
    """

    kind = "source"


class SnapshotError(CoffreError):
    """A btrfs snapshot or subvolume could not be made, listed or removed.

    A backup never fails for it: it falls back to backing up the live share
    after a quiet moment (quiescence), and says so.
    """

    kind = "snapshot"


class SnapshotNoSpace(SnapshotError):
    """The share's btrfs filesystem has no room for one more snapshot (ENOSPC)."""

    kind = "snapshot_no_space"


class SmbStatusUnavailable(CoffreError):
    """Samba's view of open files (``smbstatus --locks --json``) could not be read.

    Missing smbstatus, a non-zero exit, a timeout, a configuration it could not
    load, or output it did not recognise: who writes over SMB is unknown.
    """

    kind = "smbstatus"


class InternalError(CoffreError):
    """Something coffre did not expect went wrong: a bug, or a failure it has no type for.

    Only the job lanes make these (:mod:`coffre.jobs.supervision`), from the
    exception that escaped a job; the traceback goes to the journal, the job
    fails with this kind, and the lane goes on with the next job.
    """

    kind = "internal"

    @classmethod
    def from_exception(cls, error: BaseException, where: str) -> InternalError:
        """The error of a job out of which ``error`` escaped, in ``where`` ("backup of x")."""
        text = str(error) or "(no message)"
        return cls(
            f"unexpected error in the {where}: {type(error).__name__}: {text}",
            hint="the daemon goes on with the next job; the traceback is in the journal "
            "(journalctl -u coffre -p err); if it happens again, report it to support",
        )


#: The kinds of the errors defined beside what raises them (audit, paper key,
#: recovery): reads and ``coffre recover``, never a run's outcome. A unit test
#: walks every CoffreError of the package and fails on a kind missing here.
ELSEWHERE_KINDS = (
    "audit_unavailable",
    "audit_damaged",
    "paper_key_invalid",
    "paper_key_mismatch",
    "repository_key_unusable",
)

#: Every ``kind`` a CoffreError can carry: the bounded label set of metrics.
ERROR_KINDS: tuple[str, ...] = tuple(
    sorted(
        {
            cls.kind
            for cls in (
                CoffreError,
                ConfigError,
                UsageError,
                DaemonUnavailable,
                PermissionRefused,
                StateError,
                TargetNotInitialised,
                RepositoryIdMismatch,
                JobCancelled,
                OffsiteNotEnrolled,
                OffsiteUnreachable,
                HostKeyMismatch,
                OffsiteAuthRefused,
                DiskError,
                DiskAbsent,
                BorgError,
                BorgNotFound,
                BorgLockTimeout,
                BorgWrongPassphrase,
                BorgRepositoryMissing,
                BorgRepositoryExists,
                BorgArchiveMissing,
                BorgArchiveExists,
                BorgNoSpace,
                BorgConnectionClosed,
                BorgIntegrityError,
                BorgIOError,
                BorgInterrupted,
                NotInArchive,
                WouldOverwrite,
                DestinationError,
                PassphraseUnavailable,
                SourceUnavailable,
                SnapshotError,
                SnapshotNoSpace,
                SmbStatusUnavailable,
                InternalError,
            )
        }
        | set(ELSEWHERE_KINDS)
    )
)
