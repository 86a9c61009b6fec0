"""The support desk: the control-socket requests of support staff (restore, find, browse,
key export) turned into audited jobs on the right target.

Each request is recorded in the audit log twice: when asked (before anything
is read, so even a refused or crashed attempt leaves a trace) and with its
outcome. The person is what the CLI saw (``SUDO_USER``, ``SSH_CONNECTION``)
plus what the kernel vouches for (the peer's uid and pid).
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from pathlib import PurePosixPath
from time import monotonic

from coffre.core.clock import Clock
from coffre.core.config_types import Config, OffsiteTarget
from coffre.core.errors import CoffreError, UsageError
from coffre.core.messages import (
    BrowseRequest,
    Client,
    DrillRequest,
    FindRequest,
    JobOptions,
    JsonObject,
    KeyExportRequest,
    Person,
    ReadRequest,
    RestoreRequest,
    Send,
    parse_day,
)
from coffre.core.request_check import check_request
from coffre.core.restore_plan import Candidate, choose_target, resolve
from coffre.jobs import lanes
from coffre.jobs.queue import Job, JobRequest, JobResult, waiting_for
from coffre.storage.audit import AuditLog, AuditUnavailable
from coffre.storage.state import State
from coffre.targets.registry import require_known

Submit = Callable[[JobRequest], lanes.Run]


def person_of(request: ReadRequest, client: Client) -> JsonObject:
    """Who asks: the CLI's claims (bounded strings) and the kernel's uid and pid."""
    return (request.person or Person()).audited(client.uid, client.pid)


def _unescape(field: str) -> str:
    """A path of /proc/self/mountinfo, its octal escapes (``\\040``: a space) undone."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def private_mount(path: PurePosixPath, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The mount point over ``path`` when only this service sees it, else None.

    Under the unit, /tmp and /var/tmp are bind mounts of systemd's
    ``/tmp/systemd-private-*`` folders (PrivateTmp=): whatever the daemon
    writes there is invisible to the engineer's shell and gone at the next
    restart. Outside systemd (tests, a daemon run by hand) nothing is private.
    """
    path = PurePosixPath(posixpath.normpath(path))
    try:
        with open(mountinfo, encoding="utf-8") as lines:
            mounts = [line.split() for line in lines]
    except OSError:
        return None
    over: tuple[PurePosixPath, str] | None = None
    for fields in mounts:
        root, point = _unescape(fields[3]), PurePosixPath(_unescape(fields[4]))
        # The last of equal mount points is the one on top.
        if path.is_relative_to(point) and (over is None or len(point.parts) >= len(over[0].parts)):
            over = (point, root)
    if over is not None and "/systemd-private-" in over[1]:
        return str(over[0])
    return None


class SupportDesk:
    """Turns support requests into audited jobs on the right target."""

    def __init__(
        self,
        config: Config,
        state: State,
        clock: Clock,
        audit: AuditLog,
        submit: Submit,
        *,
        disk_busy: Callable[[str], bool],
    ) -> None:
        self._config = config
        self._state = state
        self._clock = clock
        self._audit = audit
        self._submit = submit
        self._disk_busy = disk_busy

    # --- choosing ----------------------------------------------------------------

    def candidates(self) -> list[Candidate]:
        """Every target and enrolled disk, whether it can serve a read now, its archives."""
        found = []
        for target in self._config.targets:
            found.append(
                Candidate(
                    name=target.name,
                    kind="offsite" if isinstance(target, OffsiteTarget) else "local",
                    available=self._state.repository_id(target.name) is not None,
                    archives=self._state.archives(target.name),
                )
            )
        for disk in self._state.disks():
            found.append(
                Candidate(
                    name=disk.name,
                    kind="usb",
                    available=disk.present and not self._disk_busy(disk.name),
                    archives=self._state.archives(disk.name),
                )
            )
        return found

    def _target(self, asked: str | None, *, archive: str | None, day: date | None) -> str:
        if asked:
            return require_known(self._config, self._state, asked)
        name, _ = choose_target(
            self.candidates(),
            self._config.retention.prefix,
            name=archive,
            day=day,
            tz=self._config.schedule.timezone,
        )
        return name

    # --- requests ---------------------------------------------------------------

    async def handle(self, request: ReadRequest, send: Send, client: Client) -> None:
        """Serve ``request`` (restore, find, browse, key_export) for ``client``; audited.

        Raises AuditUnavailable when the "asked" line cannot be written (nothing
        is done then), and the CoffreError that refuses the request; the outcome
        line is written whatever happens (the journal keeps it if the log cannot).
        """
        # Refused before the audit: nothing was asked that could be done. The socket
        # checked the line already; a request made in the daemon is checked the same.
        check_request(request.to_json())
        op, person, asked = request.op, person_of(request, client), _asked(request)
        try:
            self._record(
                op, person, asked.target, asked.archive, asked.paths, "asked", asked.details
            )
        except OSError as error:
            raise AuditUnavailable.writing(
                op, self._audit.path, error, why=": every access to patient data must be recorded"
            ) from error
        outcome = "failed: internal"
        details: dict[str, object] = {}
        try:
            final = await self._serve(request, send, client)
            details = _summary(final)
            outcome = "ok" if final.get("ok") else f"failed: {_error_kind(final)}"
        except CoffreError as error:
            outcome = f"failed: {error.kind}"
            raise
        except asyncio.CancelledError:
            outcome = "failed: cancelled"  # the daemon stops
            raise
        finally:
            # Done, but its outcome not on disk: AuditLog.record logged it to the
            # journal; the asked line is in the log.
            target = details.pop("target", asked.target)
            archive = details.pop("archive", asked.archive)
            with contextlib.suppress(OSError):
                self._record(
                    op,
                    person,
                    None if target is None else str(target),
                    None if archive is None else str(archive),
                    asked.paths,
                    outcome,
                    details,
                )

    def _record(
        self,
        op: str,
        person: JsonObject,
        target: str | None,
        archive: str | None,
        paths: Sequence[str],
        outcome: str,
        details: Mapping[str, object],
    ) -> None:
        extra = {k: v for k, v in details.items() if k in ("date", "to", "overwrite", "since")}
        extra.update({k: v for k, v in details.items() if k.startswith("result_")})
        self._audit.record(
            op=op,
            at=self._clock.now(),
            person=person,
            target=target or None,
            archive=archive,
            paths=list(paths),
            outcome=outcome,
            details=extra,
        )

    async def _serve(self, request: ReadRequest, send: Send, client: Client) -> JobResult:
        """Queue the job ``request`` asks for; relay its events; return its result."""
        if isinstance(request, KeyExportRequest):
            return await self._key_export(request, send)
        day = parse_day(request.date)
        if request.archive is not None and day is not None:
            raise UsageError("give --archive or --date, not both")
        if isinstance(request, RestoreRequest):
            options = self._restore_options(request)
        elif isinstance(request, FindRequest):
            options = self._find_options(request)
        else:
            options = JobOptions()
        options = replace(options, archive=request.archive, day=day)
        target = self._target(request.target, archive=request.archive, day=day)
        run = self._submit(
            JobRequest(kind=request.op, targets=(target,), reason="asked", options=options)
        )
        relay: asyncio.Task[None] | None = None
        if isinstance(request, BrowseRequest):
            relay = asyncio.create_task(_relay_browse(client, run.jobs[0]))
        try:
            return await _follow(run, send)
        finally:
            if relay is not None:
                relay.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay

    def _restore_options(self, request: RestoreRequest) -> JobOptions:
        """The restore job's options: paths resolved in the share, ``--to`` checked."""
        roots = [PurePosixPath(p) for p in self._config.source.paths]
        if not request.paths:
            raise UsageError("name at least one file or folder to restore")
        wanted = tuple(resolve(p, roots) for p in request.paths)
        to = request.to
        if to:
            if not PurePosixPath(to).is_absolute():
                raise UsageError(f"--to {to}: give an absolute path")
            private = private_mount(PurePosixPath(to))
            if private is not None:
                raise UsageError(
                    f"--to {to}: {private} is the service's own (systemd's PrivateTmp=): "
                    "nobody else would see the files, and they would go at its next restart",
                    hint="restore into the share (the default) or --to a folder under it",
                )
        return JobOptions(
            wanted=wanted, to=to or None, overwrite=request.overwrite, progress=request.progress
        )

    def _find_options(self, request: FindRequest) -> JobOptions:
        """The find job's options: the pattern, and ``--since`` as the day's first instant."""
        if not request.pattern.strip():
            raise UsageError("the pattern is empty", hint="e.g. coffre find dupont")
        since = parse_day(request.since)
        tz = self._config.schedule.timezone
        return JobOptions(
            pattern=request.pattern,
            since=None if since is None else datetime.combine(since, time(0), tzinfo=tz),
        )

    async def drill(self, request: DrillRequest, send: Send, client: Client) -> None:
        """Queue a restore drill on the target asked (none: each one readable now); relay it.

        The drill job writes its own audit lines (the sampled paths are known only
        there, and before anything is read). Raises UsageError for an unknown
        target or when there is nothing to drill.
        """
        person = (request.person or Person()).audited(client.uid, client.pid)
        if request.target:
            names: tuple[str, ...] = (require_known(self._config, self._state, request.target),)
        else:
            names = tuple(c.name for c in self.candidates() if c.available)
        if not names:
            raise UsageError(
                "no repository to drill",
                hint="initialise a target first (`coffre target init NAME`)",
            )
        asked_by = tuple((k, v) for k, v in person.items() if isinstance(v, str | int))
        run = self._submit(
            JobRequest(
                kind="drill", targets=names, reason="asked", options=JobOptions(asked_by=asked_by)
            )
        )
        await _follow(run, send)

    async def _key_export(self, request: KeyExportRequest, send: Send) -> JobResult:
        if request.targets:
            names = tuple(require_known(self._config, self._state, n) for n in request.targets)
            absent: list[str] = []
        else:
            # Disks away are named in the result, not waited for: one at a time, by name.
            candidates = self.candidates()
            names = tuple(c.name for c in candidates if c.available or c.kind != "usb")
            absent = [c.name for c in candidates if c.kind == "usb" and not c.available]
        if not names:
            raise UsageError(
                "no repository to export the key of",
                hint="initialise a target first (`coffre target init NAME`)",
            )
        run = self._submit(JobRequest(kind="key_export", targets=names, reason="asked"))
        final: JobResult = {**await _follow(run, send, hold_result=True), "absent_disks": absent}
        await send(final)
        return final


@dataclass(frozen=True)
class _Asked:
    """What the audit's "asked" line records of a request: never file contents."""

    target: str | None
    archive: str | None
    paths: tuple[str, ...]
    details: Mapping[str, object]


def _asked(request: ReadRequest) -> _Asked:
    """The audit's view of ``request``, with the options the CLI sends (None when not given)."""
    if isinstance(request, KeyExportRequest):
        return _Asked(target=None, archive=None, paths=(), details={})
    if isinstance(request, RestoreRequest):
        details: Mapping[str, object] = {
            "date": request.date,
            "to": request.to,
            "overwrite": request.overwrite,
        }
        return _Asked(request.target, request.archive, request.paths, details)
    if isinstance(request, FindRequest):
        found = {"since": request.since, **({"date": request.date} if request.date else {})}
        return _Asked(request.target, request.archive, (request.pattern,), found)
    return _Asked(request.target, request.archive, (), {"date": request.date})


async def _relay_browse(client: Client, job: Job) -> None:
    """Pass the browse client's pings and hang-up on to its job."""
    gone = asyncio.create_task(client.gone.wait())
    try:
        while not client.gone.is_set():
            pinged = asyncio.create_task(client.pinged.wait())
            await asyncio.wait({gone, pinged}, return_when=asyncio.FIRST_COMPLETED)
            pinged.cancel()
            if client.pinged.is_set():
                client.pinged.clear()
                job.last_used = monotonic()
        job.released.set()
    finally:
        gone.cancel()


async def _follow(run: lanes.Run, send: Send, *, hold_result: bool = False) -> JobResult:
    """Relay ``run``'s events to ``send``; return its result (sent unless ``hold_result``).

    A client that hangs up stops getting events, but the job goes on and its
    result is still returned: the audit log records how it really ended.
    """
    listening = True
    ahead = run.ahead()
    if ahead:
        with contextlib.suppress(ConnectionError):
            await send({"event": "waiting", "message": waiting_for(run.request.kind, ahead)})

    async def relay(event: Mapping[str, object]) -> None:
        nonlocal listening
        if hold_result and event.get("event") == "result":
            return
        if listening:
            try:
                await send(event)
            except ConnectionError:
                listening = False

    await run.follow(relay)
    return run.done.result()


def _error_kind(final: JobResult) -> str:
    error = final.get("error")
    if error is not None:
        return error["kind"]
    outcomes = final.get("targets", {})
    for outcome in outcomes.values():
        if not outcome["ok"]:
            failed = outcome.get("error")
            return "unknown" if failed is None else failed["kind"]
    return "unknown"


def _summary(final: JobResult) -> dict[str, object]:
    """What the audit keeps of a result: target, archive, counts (never file contents)."""
    outcomes = final.get("targets", {})
    if len(outcomes) != 1:
        return {"result_targets": sorted(outcomes)}
    name, outcome = next(iter(outcomes.items()))
    summary: dict[str, object] = {"target": name}
    if outcome.get("archive"):
        summary["archive"] = outcome.get("archive")
    for key in ("nfiles", "nbytes", "destinations", "total", "archives_searched", "ended"):
        if key in outcome:
            summary[f"result_{key}"] = outcome[key]
    return summary
