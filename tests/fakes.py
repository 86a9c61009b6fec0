"""The fakes of the unit tests, one of each: a clock, a configuration, borg, a repository,
the journal.

They stand for the real thing in unit tests of pure logic and orchestration only
(what coffre decides, in what order it asks borg); the real parts are driven by
tests/integration. Each implements the protocol it stands for in full, as the
real part would answer (mypy --strict checks it, see :func:`_conforms`), and
records what it was asked so that a test can assert it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from borg.algorithms.checksums import StreamingXXH64  # type: ignore[import-untyped]

from coffre.borg.records import LogRecord, Progress
from coffre.borg.runner import BorgResult
from coffre.core.config_types import (
    Config,
    EncryptionConfig,
    LocalTarget,
    PathsConfig,
    RetentionConfig,
    ScheduleConfig,
    SourceConfig,
    TargetConfig,
)
from coffre.core.errors import BorgError

if TYPE_CHECKING:
    from coffre.borg.protocol import Borg, EnvBorg, StdinBorg
    from coffre.core.clock import Clock as ClockProtocol
    from coffre.jobs.services import Services
    from coffre.observe.facts import BorgVersion
    from coffre.targets.base import RemovableDisk, Repository

#: The ID of the repository the fakes stand for (borg's 64 hex digits).
REPO_ID = "ab" * 32


# --- the clock -------------------------------------------------------------------------


class Clock:
    """``coffre.core.clock.Clock`` that gives ``moments`` in turn, then stays on the last.

    One moment is a clock that stands still; several are the times a job reads
    one after the other (a window that opens during an upload, say).
    :meth:`advance` moves the clock on, as a fake ``sleep`` would.
    """

    def __init__(self, first: datetime, *then: datetime) -> None:
        moments = [first, *then]
        if any(moment.tzinfo is None for moment in moments):
            raise ValueError("a clock gives timezone-aware moments only")
        self._moments = moments

    def now(self) -> datetime:
        """The next moment; the last one again once the others were given."""
        return self._moments.pop(0) if len(self._moments) > 1 else self._moments[0]

    @property
    def upcoming(self) -> datetime:
        """What :meth:`now` gives next, without using it up."""
        return self._moments[0]

    def advance(self, by: timedelta) -> None:
        """Move every moment still to come on by ``by``."""
        self._moments = [moment + by for moment in self._moments]


# --- the configuration -----------------------------------------------------------------


def config(
    root: Path,
    *targets: TargetConfig,
    share: str = "share",
    timezone: str = "Europe/Paris",
    paths: PathsConfig | None = None,
    make_share: bool = True,
) -> Config:
    """A practice's configuration under ``root``, as ``coffre.config.loader`` would give it.

    The share is ``root/<share>``, created unless ``make_share`` is false
    (backups refuse a missing share); the passphrase file is ``root/passphrase``
    (not created: no fake reads it). The nightly run is at 01:30 in
    ``timezone``, archives are named ``cabinet-...`` and kept by the default
    retention; ``paths`` defaults to ``root/state``, ``root/cache`` and
    ``root/run``: a test never writes into the box's own folders.
    """
    if make_share:
        (root / share).mkdir(parents=True, exist_ok=True)
    return Config(
        source=SourceConfig(paths=(root / share,)),
        schedule=ScheduleConfig(daily=time(1, 30), timezone=ZoneInfo(timezone)),
        retention=RetentionConfig(prefix="cabinet"),
        encryption=EncryptionConfig(passphrase_file=root / "passphrase"),
        paths=paths
        or PathsConfig(state=root / "state", cache=root / "cache", runtime=root / "run"),
        targets=targets,
    )


# --- borg ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Made:
    """What a ``borg create`` says of the archive it makes: the progress it reports on the
    way, then its ``--json`` statistics (sizes in bytes, the start in borg's UTC)."""

    original: int = 10
    compressed: int = 5
    deduplicated: int = 1
    files: int = 3
    start: str = "2026-11-29T00:30:00.000000"
    progress: Progress = field(default_factory=lambda: Progress(10, 5, 1, 3, False))
    #: The repository's compressed size (``cache.stats.unique_csize``).
    repository_size: int = 1_000_000_000


class FakeBorg:
    """borg 1.4.5 in memory, for one repository: every borg protocol of coffre in one.

    ``run`` answers each command as ``BorgRunner.run`` returns borg's answer:
    ``create`` reports ``made`` (progress first) and adds the archive it names;
    ``list --json`` lists the archives made; ``delete --stats`` logs the space
    it ``freed`` (borg's "Deleted data" line); ``extract`` writes the files of
    ``archive`` ({stored path: content}) under ``cwd``, stripped as
    ``--strip-components`` says, warning about patterns that matched nothing;
    ``--version`` prints ``borg 1.4.5``; ``extract --dry-run`` and other commands
    succeed silently.

    What can go wrong, as borg does it: ``fail`` gives, per command, the
    errors its next runs raise in turn (a BorgError as ``BorgRunner`` raises
    it for an error exit code); ``create_logs`` are the records of a create
    that ends with ``create_rc`` (a warning code with warnings); in
    ``extract_fails`` ({stored path: (msgid, reason)}) a file is written half,
    then warned about, as borg 1.4 goes on after a failed write; in
    ``extract_stops`` ({stored path: error}) a file is written half, then the
    whole extract ends with that error, as borg 1.4 does on a damaged chunk;
    ``extract_notes`` are other warnings of an extract. ``block_create`` makes
    the first create wait until it is cancelled, as a long upload is stopped
    at a checkpoint (counted in ``stopped``).

    Each run is recorded: its argv in ``calls``, its ``extra_env`` in ``envs``.
    """

    def __init__(
        self,
        *,
        made: Made = Made(),
        freed: str = "-1.20 kB",
        fail: Mapping[str, Sequence[BorgError]] = {},
        create_logs: Sequence[LogRecord] = (),
        create_rc: int = 0,
        block_create: bool = False,
        archive: Mapping[str, bytes] = {},
        extract_fails: Mapping[str, tuple[str, str]] = {},
        extract_stops: Mapping[str, BorgError] = {},
        extract_notes: Sequence[str] = (),
        repository_id: str = REPO_ID,
    ) -> None:
        self.made = made
        self.freed = freed
        self.fail = {command: list(errors) for command, errors in fail.items()}
        self.create_logs = tuple(create_logs)
        self.create_rc = create_rc
        self.block_create = block_create
        self.archive = archive
        self.extract_fails = extract_fails
        self.extract_stops = extract_stops
        self.extract_notes = tuple(extract_notes)
        self.repository_id = repository_id
        #: The archives made, oldest first: (name, start).
        self.archives: list[tuple[str, str]] = []
        self.calls: list[tuple[str, ...]] = []
        self.envs: list[dict[str, str]] = []
        self.stopped = 0

    async def run(
        self,
        argv: Sequence[str],
        *,
        on_progress: Callable[[Progress], None] | None = None,
        cwd: Path | None = None,
        use_passphrase: bool = True,
        extra_env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> BorgResult:
        self.calls.append(tuple(argv))
        self.envs.append(dict(extra_env or {}))
        command = argv[0]
        if self.fail.get(command):
            raise self.fail[command].pop(0)
        rc, stdout = 0, ""
        logs: tuple[LogRecord, ...] = ()
        if command == "create":
            rc, stdout, logs = await self._create(argv, on_progress)
        elif command == "list":
            stdout = self._contents(argv) if "--json-lines" in argv else self._list()
        elif command == "delete":
            logs = self._delete(argv)
        elif command == "extract" and "--dry-run" in argv:
            pass  # reads and verifies every chunk of the archive, writes nothing
        elif command == "extract":
            assert cwd is not None, "borg extract writes into its working directory"
            logs = self._extract(argv, cwd, on_progress)
            rc = 1 if logs else 0
        elif command == "--version":
            stdout = "borg 1.4.5\n"
        warnings = tuple(record for record in logs if record.level == "WARNING")
        return BorgResult(tuple(argv), rc, stdout, logs, warnings, 0.1)

    async def version(self) -> str:
        """As ``BorgRunner.version``: the version ``borg --version`` prints."""
        result = await self.run(("--version",), use_passphrase=False)
        return result.stdout.split()[1]

    async def _create(
        self, argv: Sequence[str], on_progress: Callable[[Progress], None] | None
    ) -> tuple[int, str, tuple[LogRecord, ...]]:
        made = self.made
        if on_progress:
            on_progress(made.progress)
        if self.block_create:
            self.block_create = False
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.stopped += 1  # the runner would SIGINT borg: a checkpoint
                raise
        name = argv[-2].split("::")[1]
        self.archives.append((name, made.start))
        stdout = json.dumps(
            {
                "repository": {"id": self.repository_id, "location": argv[-2].split("::")[0]},
                "archive": {
                    "name": name,
                    "id": _archive_id(name),
                    "start": made.start,
                    "duration": 1.5,
                    "stats": {
                        "original_size": made.original,
                        "compressed_size": made.compressed,
                        "deduplicated_size": made.deduplicated,
                        "nfiles": made.files,
                    },
                },
                "cache": {"stats": {"unique_csize": made.repository_size}},
            }
        )
        return self.create_rc, stdout, self.create_logs

    def _list(self) -> str:
        listed = [
            {"name": name, "id": _archive_id(name), "start": start} for name, start in self.archives
        ]
        return json.dumps({"archives": listed})

    def _delete(self, argv: Sequence[str]) -> tuple[LogRecord, ...]:
        self.archives = [(name, start) for name, start in self.archives if name not in argv]
        line = f"Deleted data:               -5.00 MB             -5.00 MB   {self.freed}"
        return (LogRecord("INFO", line, "", "borg.output.stats"),)

    def _contents(self, argv: Sequence[str]) -> str:
        """``list --json-lines`` of ``archive``'s files (at the archive's start; ``--format`` keys
        ``ctime`` and ``xxh64`` added as borg adds them), limited to the ``pp:`` paths."""
        wanted = [a.removeprefix("pp:") for a in argv if a.startswith("pp:")]
        form = next((a for a in argv if a.startswith("--format=")), "")
        lines = []
        for path, content in self.archive.items():
            if wanted and not any(path == w or path.startswith(w + "/") for w in wanted):
                continue
            # With a --format, borg 1.4 gives its fixed keys and the format's only.
            item: dict[str, object] = {"type": "-", "path": path}
            if not form or "{size}" in form:
                item["size"] = len(content)
            if not form or "{mtime}" in form:
                item["mtime"] = self.made.start
            if "{ctime}" in form:
                item["ctime"] = self.made.start
            if "{xxh64}" in form:
                digest = StreamingXXH64()
                digest.update(content)
                item["xxh64"] = digest.hexdigest()
            lines.append(json.dumps(item))
        return "".join(line + "\n" for line in lines)

    def _extract(
        self, argv: Sequence[str], cwd: Path, on_progress: Callable[[Progress], None] | None = None
    ) -> tuple[LogRecord, ...]:
        strip = next((int(a.split("=")[1]) for a in argv if a.startswith("--strip-components=")), 0)
        wanted = [a.removeprefix("pp:") for a in argv if a.startswith("pp:")]
        warnings = []
        for path in wanted:
            hits = [p for p in self.archive if p == path or p.startswith(path + "/")]
            if not hits:
                warnings.append(
                    LogRecord("WARNING", f"Include pattern '{path}' never matched.", "", "borg")
                )
            for hit in hits:
                if on_progress is not None and "--list" in argv:
                    on_progress(Progress(0, 0, 0, 0, False, message=hit))
                out = cwd.joinpath(*PurePosixPath(hit).parts[strip:])
                out.parent.mkdir(parents=True, exist_ok=True)
                content = self.archive[hit]
                if hit in self.extract_stops:  # a chunk fails its checks: borg ends there
                    out.write_bytes(content[: len(content) // 2])
                    raise self.extract_stops[hit]
                if hit in self.extract_fails:
                    msgid, reason = self.extract_fails[hit]
                    out.write_bytes(content[: len(content) // 2])
                    warnings.append(LogRecord("WARNING", f"{hit}: {reason}", msgid, "borg"))
                else:
                    out.write_bytes(content)
        warnings += [LogRecord("WARNING", note, "", "borg") for note in self.extract_notes]
        return tuple(warnings)


def _archive_id(name: str) -> str:
    """A stable archive ID (64 hex digits) for ``name``."""
    return hashlib.sha256(name.encode()).hexdigest()


# --- a target's repository -------------------------------------------------------------

#: The local target :class:`FakeRepository` stands for by default.
LOCAL = LocalTarget(name="local", path=Path("/srv/repo"))


class FakeRepository:
    """``coffre.targets.base.Repository`` of a local target whose directory is always there.

    It holds the repository ``repository_id``; :meth:`opened` refuses (an
    AssertionError: the jobs must check the ID first) any other ID.
    """

    def __init__(
        self, name: str = "local", location: str = "/srv/repo", repository_id: str = REPO_ID
    ) -> None:
        self.name = name
        self.location = location
        self.id = repository_id

    #: A local repository: retention compacts it, jobs use the daemon's services.
    compacts = True

    def as_disk(self) -> RemovableDisk | None:
        return None

    def job_services(self, daemon: Services) -> Services:
        return daemon

    def require_ready(self) -> None:
        return None

    async def repository_id(self) -> str:
        return self.id

    def opened(self, expected_id: str) -> AbstractAsyncContextManager[str]:
        @asynccontextmanager
        async def reachable() -> AsyncIterator[str]:
            assert expected_id == self.id
            yield self.location

        return reachable()


# --- the journal -----------------------------------------------------------------------


class Journal(logging.Handler):
    """Stands for journald's handler (``systemd.journal.JournalHandler``): keeps each record,
    with the fields coffre gives it (``extra={"MESSAGE_ID": ...}`` lands on the record,
    where journald's handler reads it), for asserting."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def with_id(self, message_id: str) -> list[logging.LogRecord]:
        """The records with ``message_id``, in order."""
        return [r for r in self.records if getattr(r, "MESSAGE_ID", None) == message_id]

    @classmethod
    @contextlib.contextmanager
    def of(cls, logger: logging.Logger, level: int = logging.INFO) -> Iterator[Journal]:
        """A journal of ``logger`` (its records of ``level`` and up) for the ``with`` block."""
        journal = cls()
        before = logger.level
        logger.addHandler(journal)
        logger.setLevel(level)
        try:
            yield journal
        finally:
            logger.removeHandler(journal)
            logger.setLevel(before)


def _conforms(
    clock: Clock, borg: FakeBorg, repository: FakeRepository
) -> tuple[ClockProtocol, Borg, EnvBorg, StdinBorg, BorgVersion, Repository]:
    """Never called: mypy checks here that each fake is the protocol it stands for."""
    return clock, borg, borg, borg, borg, repository
