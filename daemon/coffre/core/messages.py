"""What the CLI and the daemon say to each other over the control socket: the requests, typed.

The wire is one JSON object a line. A request line becomes one of the
``*Request`` classes here (:func:`parse_request`), whose ``to_json`` gives the
line back with the same keys: a field renamed on one side is a type error, not
a blank line in ``coffre status``. A malformed request is a :class:`UsageError`
naming the op and the field, so whoever wrote the line sees what is wrong.

Here, below every package, so that both sides (and a job that streams
progress) share the shapes without importing the socket's transport
(``coffre.daemon.control``, ``coffre.cli.client``). No I/O, nothing heavy: the
CLI imports it at start. What comes back is typed in :mod:`coffre.core.job_events`
(a job's events and result) and :mod:`coffre.core.reports` (status, archives,
disks, an offsite enrollment).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NotRequired, TypeAlias, TypedDict

from coffre.core.errors import CoffreError, DaemonUnavailable, UsageError
from coffre.core.request_check import check_request

if TYPE_CHECKING:
    # The daemon's side only: the CLI starts faster without asyncio and restore planning.
    import asyncio

    from coffre.core.restore_plan import Wanted

__all__ = [
    "FINAL_EVENTS",
    "MAX_REQUEST",
    "PING",
    "REQUEST_OPS",
    "ArchivesRequest",
    "BackupRequest",
    "BrowseRequest",
    "Client",
    "DiskEnrollRequest",
    "DiskForgetRequest",
    "DisksRequest",
    "ErrorInfo",
    "Event",
    "FindRequest",
    "IncidentClearRequest",
    "IncidentShowRequest",
    "InitRequest",
    "JobOptions",
    "JsonObject",
    "KeyExportRequest",
    "OffsiteEnrollRequest",
    "Person",
    "PingRequest",
    "PruneRequest",
    "ReadRequest",
    "Request",
    "RestoreRequest",
    "Send",
    "StatusRequest",
    "encode",
    "error_info",
    "other_version",
    "parse_day",
    "parse_request",
]

#: A decoded JSON object, as read from or written to the socket: only the
#: parsers below look into one; everything past them uses the typed shapes.
JsonObject: TypeAlias = dict[str, object]

#: An event line as the CLI reads it off the socket: looked into through the
#: ``*_from_json`` readers below, or ``.get`` for what it only prints.
Event: TypeAlias = dict[str, Any]

#: Sends one event line to the client (any of the shapes below, or an error line).
Send = Callable[[Mapping[str, object]], Awaitable[None]]

#: A request line longer than this is refused: requests are small.
MAX_REQUEST = 64 * 1024

#: The ``event`` of the last line the daemon sends for a request.
FINAL_EVENTS = frozenset({"result", "error"})

#: The line a client sends after its request to say its browse mount is in use.
PING = b'{"op":"in_use"}\n'


def encode(message: Mapping[str, object]) -> bytes:
    """One JSON line (keys sorted: the same message is the same bytes)."""
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode() + b"\n"


@dataclass(frozen=True)
class Client:
    """Who sent a request (kernel-checked uid and pid), whether they hung up, and their pings.

    ``gone`` is set when the client closes its end: a browse mount lives
    as long as the command that asked for it. ``pinged`` is set at each
    :data:`PING` line the client sends after its request (``coffre browse``
    sees who works in the mount; the hardened daemon cannot).
    """

    uid: int
    pid: int
    gone: asyncio.Event
    pinged: asyncio.Event


class ErrorInfo(TypedDict):
    """An error as the CLI gets it: in an ``error`` line, a failed target, a failed result.

    A job cut by a stop has no ``exit_code`` (the CLI exits 1).
    """

    kind: str
    message: str
    hint: str
    exit_code: NotRequired[int]


def error_info(error: CoffreError) -> ErrorInfo:
    """The JSON form of ``error``: kind, message, hint and exit code."""
    return {
        "kind": error.kind,
        "message": error.message,
        "hint": error.hint,
        "exit_code": error.exit_code,
    }


def parse_day(value: str | None) -> date | None:
    """``YYYY-MM-DD`` as a date; None for None or "". Raises UsageError showing ``value``."""
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{value!r} is not a date", hint="write it YYYY-MM-DD") from None


# --- reading the fields of a request line ---------------------------------------------


class _Fields:
    """The fields of one request line, each read with its type checked.

    Every reader raises UsageError naming the op and the key when the value
    has the wrong type; a key absent or null gives the default. Keys nobody
    reads are ignored (an older or newer client may send more).
    """

    def __init__(self, op: str, raw: Mapping[str, object]) -> None:
        self.op = op
        self._raw = raw

    def _bad(self, key: str, expected: str) -> UsageError:
        value = self._raw.get(key)
        return UsageError(
            f"bad request {self.op}: {key} must be {expected}, not {type(value).__name__}",
            hint="use the coffre command of this box",
        )

    def text(self, key: str) -> str | None:
        """A string, or None when absent, null or empty."""
        value = self._raw.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def required(self, key: str) -> str:
        """A string that must be there and not empty."""
        value = self.text(key)
        if value is None:
            raise UsageError(
                f"bad request {self.op}: {key} is missing",
                hint="use the coffre command of this box",
            )
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self._raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        """A list of strings, or one string (one item); () when absent, null or empty."""
        value = self._raw.get(key)
        if value is None or value == "":
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, "a list of strings")
        return tuple(str(v) for v in value)

    def person(self) -> Person | None:
        value = self._raw.get("person")
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._bad("person", "an object")
        return Person.from_json(value)


# --- who asks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """Who asks for an audited operation, as the CLI claims it.

    ``user`` is the person (``SUDO_USER``, else the login name), ``login`` the
    account name of ``uid`` (None if it has none), ``ssh`` the
    ``SSH_CONNECTION`` or None. Claims only: the daemon adds the uid and pid
    the kernel vouches for.
    """

    user: str | None = None
    login: str | None = None
    uid: int | None = None
    ssh: str | None = None

    #: The longest claim kept: a client may send anything.
    MAX_FIELD: ClassVar[int] = 200

    def to_json(self) -> JsonObject:
        return {"user": self.user, "login": self.login, "uid": self.uid, "ssh": self.ssh}

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> Person:
        """The claims of ``raw``: strings cut to MAX_FIELD; other values count as absent."""

        def claim(key: str) -> str | None:
            value = raw.get(key)
            return value[: cls.MAX_FIELD] if isinstance(value, str) else None

        uid = raw.get("uid")
        return cls(
            user=claim("user"),
            login=claim("login"),
            uid=uid if isinstance(uid, int) and not isinstance(uid, bool) else None,
            ssh=claim("ssh"),
        )

    def audited(self, uid: int, pid: int) -> JsonObject:
        """The ``person`` of an audit entry: the claims made, and the kernel's ``uid`` and ``pid``.

        Claims absent are left out; the claimed uid is replaced by the kernel's.
        """
        claimed = {"user": self.user, "login": self.login, "ssh": self.ssh}
        return {**{k: v for k, v in claimed.items() if v is not None}, "uid": uid, "pid": pid}


# --- the requests --------------------------------------------------------------------------


@dataclass(frozen=True)
class PingRequest:
    op: ClassVar[Literal["ping"]] = "ping"

    def to_json(self) -> JsonObject:
        return {"op": self.op}

    @classmethod
    def parse(cls, fields: _Fields) -> PingRequest:
        return cls()


@dataclass(frozen=True)
class StatusRequest:
    op: ClassVar[Literal["status"]] = "status"

    def to_json(self) -> JsonObject:
        return {"op": self.op}

    @classmethod
    def parse(cls, fields: _Fields) -> StatusRequest:
        return cls()


@dataclass(frozen=True)
class DisksRequest:
    op: ClassVar[Literal["disks"]] = "disks"

    def to_json(self) -> JsonObject:
        return {"op": self.op}

    @classmethod
    def parse(cls, fields: _Fields) -> DisksRequest:
        return cls()


@dataclass(frozen=True)
class ArchivesRequest:
    """The archives of ``targets`` (none: every configured target)."""

    targets: tuple[str, ...] = ()
    op: ClassVar[Literal["archives"]] = "archives"

    def to_json(self) -> JsonObject:
        return {"op": self.op, "targets": list(self.targets)}

    @classmethod
    def parse(cls, fields: _Fields) -> ArchivesRequest:
        return cls(targets=fields.texts("targets"))


@dataclass(frozen=True)
class BackupRequest:
    """A backup of ``targets`` (none: every one); ``wait``: follow it to its result."""

    targets: tuple[str, ...] = ()
    wait: bool = True
    op: ClassVar[Literal["backup"]] = "backup"

    def to_json(self) -> JsonObject:
        return {"op": self.op, "targets": list(self.targets), "wait": self.wait}

    @classmethod
    def parse(cls, fields: _Fields) -> BackupRequest:
        return cls(targets=fields.texts("targets"), wait=fields.flag("wait", True))


@dataclass(frozen=True)
class PruneRequest:
    """Retention now on ``targets`` (none: every one); ``dry_run``: only say what would go."""

    targets: tuple[str, ...] = ()
    dry_run: bool = False
    wait: bool = True
    op: ClassVar[Literal["prune"]] = "prune"

    def to_json(self) -> JsonObject:
        return {
            "op": self.op,
            "targets": list(self.targets),
            "dry_run": self.dry_run,
            "wait": self.wait,
        }

    @classmethod
    def parse(cls, fields: _Fields) -> PruneRequest:
        return cls(
            targets=fields.texts("targets"),
            dry_run=fields.flag("dry_run"),
            wait=fields.flag("wait", True),
        )


@dataclass(frozen=True)
class InitRequest:
    """Create repositories (``adopt``: record the one found; ``replace``: succeed a lost one)."""

    targets: tuple[str, ...] = ()
    adopt: bool = False
    replace: bool = False
    wait: bool = True
    op: ClassVar[Literal["init"]] = "init"

    def to_json(self) -> JsonObject:
        return {
            "op": self.op,
            "targets": list(self.targets),
            "adopt": self.adopt,
            "replace": self.replace,
            "wait": self.wait,
        }

    @classmethod
    def parse(cls, fields: _Fields) -> InitRequest:
        return cls(
            targets=fields.texts("targets"),
            adopt=fields.flag("adopt"),
            replace=fields.flag("replace"),
            wait=fields.flag("wait", True),
        )


#: The kinds of ``borg check`` coffre runs (``coffre check --kind``).
CHECK_KINDS = ("repository", "archives", "data")


@dataclass(frozen=True)
class CheckRequest:
    """A check of ``targets`` (none: every one) now, in the maintenance lane.

    ``kinds``: repository, archives, data (none: each target's routine checks);
    ``wait``: follow it to its result.
    """

    targets: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    wait: bool = True
    op: ClassVar[Literal["check"]] = "check"

    def to_json(self) -> JsonObject:
        return {
            "op": self.op,
            "targets": list(self.targets),
            "kinds": list(self.kinds),
            "wait": self.wait,
        }

    @classmethod
    def parse(cls, fields: _Fields) -> CheckRequest:
        kinds = fields.texts("kinds")
        unknown = [kind for kind in kinds if kind not in CHECK_KINDS]
        if unknown:
            raise UsageError(
                f"bad request check: {unknown[0]!r} is no kind of check",
                hint=f"use {', '.join(CHECK_KINDS)}",
            )
        return cls(targets=fields.texts("targets"), kinds=kinds, wait=fields.flag("wait", True))


@dataclass(frozen=True)
class DiskForgetRequest:
    name: str
    op: ClassVar[Literal["disk_forget"]] = "disk_forget"

    def to_json(self) -> JsonObject:
        return {"op": self.op, "name": self.name}

    @classmethod
    def parse(cls, fields: _Fields) -> DiskForgetRequest:
        return cls(name=fields.required("name"))


@dataclass(frozen=True)
class DiskEnrollRequest:
    """Enroll the disk at ``device`` as ``name``; formatted only with ``format`` and ``yes``."""

    name: str
    device: str
    format: bool = False
    yes: bool = False
    adopt: bool = False
    op: ClassVar[Literal["disk_enroll"]] = "disk_enroll"

    def to_json(self) -> JsonObject:
        return {
            "op": self.op,
            "device": self.device,
            "name": self.name,
            "format": self.format,
            "yes": self.yes,
            "adopt": self.adopt,
        }

    @classmethod
    def parse(cls, fields: _Fields) -> DiskEnrollRequest:
        return cls(
            name=fields.required("name"),
            device=fields.required("device"),
            format=fields.flag("format"),
            yes=fields.flag("yes"),
            adopt=fields.flag("adopt"),
        )


@dataclass(frozen=True)
class OffsiteEnrollRequest:
    """Enroll offsite target ``name``; ``accept``: the host key fingerprint to pin."""

    name: str
    accept: str | None = None
    op: ClassVar[Literal["offsite_enroll"]] = "offsite_enroll"

    def to_json(self) -> JsonObject:
        return {"op": self.op, "name": self.name, "accept": self.accept}

    @classmethod
    def parse(cls, fields: _Fields) -> OffsiteEnrollRequest:
        return cls(name=fields.required("name"), accept=fields.text("accept"))


@dataclass(frozen=True)
class RestoreRequest:
    """Bring ``paths`` back from ``target`` (None: the fastest), ``archive`` or ``date``.

    ``to``: an absolute folder (None: the share's ``_restaurations``);
    ``progress``: the asker wants progress events (a terminal).
    """

    paths: tuple[str, ...]
    target: str | None = None
    archive: str | None = None
    date: str | None = None
    to: str | None = None
    overwrite: bool = False
    progress: bool = False
    person: Person | None = None
    op: ClassVar[Literal["restore"]] = "restore"

    def to_json(self) -> JsonObject:
        return {
            "op": self.op,
            "paths": list(self.paths),
            "target": self.target,
            "archive": self.archive,
            "date": self.date,
            "to": self.to,
            "overwrite": self.overwrite,
            "progress": self.progress,
            **_person_json(self.person),
        }

    @classmethod
    def parse(cls, fields: _Fields) -> RestoreRequest:
        return cls(
            paths=fields.texts("paths"),
            target=fields.text("target"),
            archive=fields.text("archive"),
            date=fields.text("date"),
            to=fields.text("to"),
            overwrite=fields.flag("overwrite"),
            progress=fields.flag("progress"),
            person=fields.person(),
        )


@dataclass(frozen=True)
class FindRequest:
    """The archives of ``target`` (None: the fastest) holding paths matching ``pattern``."""

    pattern: str
    target: str | None = None
    since: str | None = None
    archive: str | None = None
    date: str | None = None
    person: Person | None = None
    op: ClassVar[Literal["find"]] = "find"

    def to_json(self) -> JsonObject:
        return {
            "op": self.op,
            "pattern": self.pattern,
            "target": self.target,
            "since": self.since,
            **({"archive": self.archive} if self.archive is not None else {}),
            **({"date": self.date} if self.date is not None else {}),
            **_person_json(self.person),
        }

    @classmethod
    def parse(cls, fields: _Fields) -> FindRequest:
        return cls(
            # An empty pattern is refused by the desk, after the audit's "asked" line.
            pattern=fields.text("pattern") or "",
            target=fields.text("target"),
            since=fields.text("since"),
            archive=fields.text("archive"),
            date=fields.text("date"),
            person=fields.person(),
        )


@dataclass(frozen=True)
class BrowseRequest:
    """Mount ``target``'s archives (or ``archive``, or the last of ``date``) read-only."""

    target: str | None = None
    archive: str | None = None
    date: str | None = None
    person: Person | None = None
    op: ClassVar[Literal["browse"]] = "browse"

    def to_json(self) -> JsonObject:
        return {
            "op": self.op,
            "target": self.target,
            "archive": self.archive,
            "date": self.date,
            **_person_json(self.person),
        }

    @classmethod
    def parse(cls, fields: _Fields) -> BrowseRequest:
        return cls(
            target=fields.text("target"),
            archive=fields.text("archive"),
            date=fields.text("date"),
            person=fields.person(),
        )


@dataclass(frozen=True)
class KeyExportRequest:
    """The paper key of ``targets`` (none: every repository reachable now)."""

    targets: tuple[str, ...] = ()
    person: Person | None = None
    op: ClassVar[Literal["key_export"]] = "key_export"

    def to_json(self) -> JsonObject:
        return {"op": self.op, "targets": list(self.targets), **_person_json(self.person)}

    @classmethod
    def parse(cls, fields: _Fields) -> KeyExportRequest:
        return cls(targets=fields.texts("targets"), person=fields.person())


@dataclass(frozen=True)
class IncidentShowRequest:
    """The open incidents that freeze pruning, with their evidence (on the box only)."""

    op: ClassVar[Literal["incident_show"]] = "incident_show"

    def to_json(self) -> JsonObject:
        return {"op": self.op}

    @classmethod
    def parse(cls, fields: _Fields) -> IncidentShowRequest:
        return cls()


@dataclass(frozen=True)
class IncidentClearRequest:
    """Clear the open incident of ``kind`` (None: the only one open), for ``why``; audited."""

    why: str
    kind: str | None = None
    person: Person | None = None
    op: ClassVar[Literal["incident_clear"]] = "incident_clear"

    def to_json(self) -> JsonObject:
        return {
            "op": self.op,
            "kind": self.kind,
            "why": self.why,
            "person": _person_json(self.person),
        }

    @classmethod
    def parse(cls, fields: _Fields) -> IncidentClearRequest:
        return cls(why=fields.required("why"), kind=fields.text("kind"), person=fields.person())


@dataclass(frozen=True)
class DrillRequest:
    """A restore drill now on ``target`` (None: every target that can be read now); audited."""

    target: str | None = None
    person: Person | None = None
    op: ClassVar[Literal["drill"]] = "drill"

    def to_json(self) -> JsonObject:
        return {"op": self.op, "target": self.target, **_person_json(self.person)}

    @classmethod
    def parse(cls, fields: _Fields) -> DrillRequest:
        return cls(target=fields.text("target"), person=fields.person())


def _person_json(person: Person | None) -> JsonObject:
    return {} if person is None else {"person": person.to_json()}


Request = (
    PingRequest
    | StatusRequest
    | DisksRequest
    | ArchivesRequest
    | BackupRequest
    | PruneRequest
    | InitRequest
    | DiskForgetRequest
    | DiskEnrollRequest
    | OffsiteEnrollRequest
    | RestoreRequest
    | FindRequest
    | BrowseRequest
    | KeyExportRequest
    | IncidentShowRequest
    | IncidentClearRequest
    | DrillRequest
    | CheckRequest
)

#: The audited reads of support staff: what the support desk serves.
ReadRequest = RestoreRequest | FindRequest | BrowseRequest | KeyExportRequest

_REQUESTS: dict[str, Callable[[_Fields], Request]] = {
    cls.op: cls.parse
    for cls in (
        PingRequest,
        StatusRequest,
        DisksRequest,
        ArchivesRequest,
        BackupRequest,
        PruneRequest,
        InitRequest,
        DiskForgetRequest,
        DiskEnrollRequest,
        OffsiteEnrollRequest,
        RestoreRequest,
        FindRequest,
        BrowseRequest,
        KeyExportRequest,
        IncidentShowRequest,
        IncidentClearRequest,
        DrillRequest,
        CheckRequest,
    )
}


#: Every op a request line may carry.
REQUEST_OPS = frozenset(_REQUESTS)


def parse_request(raw: Mapping[str, object]) -> Request:
    """The request of a decoded request line.

    Raises UsageError for a value no job may take (:func:`check_request`: a
    control character in a path...), an unknown or missing ``op``, and a field
    of the wrong type or missing, naming the op and the field. Keys the op does
    not read are ignored.
    """
    check_request(raw)  # a value borg would refuse is a usage error, before any job
    op = raw.get("op")
    if not isinstance(op, str):
        raise UsageError(
            "bad request: expected one JSON object with an op per line",
            hint="use the coffre command of this box",
        )
    parse = _REQUESTS.get(op)
    if parse is None:
        raise UsageError(f"unknown request {op!r}", hint="use the coffre command of this box")
    return parse(_Fields(op, raw))


# --- what a job is asked to do beyond its kind and targets ---------------------------------


@dataclass(frozen=True)
class JobOptions:
    """The options of a job, each read by the kinds named beside it.

    Frozen and compared whole: two prunes with the same options are one job.
    """

    #: prune: only say what would go.
    dry_run: bool = False
    #: prune asked by a person: retention on borg's own list, not state's.
    refresh: bool = False
    #: init, enroll: record the repository found there instead of creating one.
    adopt: bool = False
    #: init: create a new repository where the recorded one is lost.
    replace: bool = False
    #: enroll: the device to enroll, and whether it may be formatted.
    device: str = ""
    format: bool = False
    #: restore: the paths asked, where they go (None: the share), may they replace files,
    #: and does the asker want progress events.
    wanted: tuple[Wanted, ...] = ()
    to: str | None = None
    overwrite: bool = False
    progress: bool = False
    #: find: the pattern, and the first instant of the archives searched.
    pattern: str = ""
    since: datetime | None = None
    #: restore, find, browse: the archive asked by name, or the last of a day.
    archive: str | None = None
    day: date | None = None
    #: drill: who asked (the audit log's person, as pairs); () for the schedule.
    asked_by: tuple[tuple[str, str | int], ...] = ()
    #: check: the kinds of check (repository, archives, data; none: the target's routine
    #: ones) and the seconds a rolling repository check may take (None: a whole pass).
    checks: tuple[str, ...] = ()
    budget: float | None = None


# --- an answer the CLI cannot read -------------------------------------------------------------


def other_version(what: str) -> DaemonUnavailable:
    """The error of an answer lacking ``what``: the daemon runs another version.

    The CLI's one check of what a daemon of another version may send: a clear
    error instead of a KeyError halfway through the output.
    """
    return DaemonUnavailable(
        f"the daemon's answer lacks {what}",
        hint="the daemon runs another version of coffre: systemctl restart coffre",
    )
