"""A restore drill on one target: the latest archive's sample read back and compared.

Steps, each through the one door to borg: the archive list (the latest
archive, checkpoints left out), its items with their ctime (the sample,
:mod:`coffre.proof.drill_sample`), the audit log's "asked" line naming the
sampled paths (a drill reads patient data: no line, no drill), one ``borg
extract`` of the sample into a private scratch folder (timed alone: the
throughput of the restore-time estimate), the comparison
(:mod:`coffre.proof.drill`; borg's ``{xxh64}`` of the files changed on the
share since), then the record in state (:mod:`coffre.proof.drill_ledger`,
counts only), the audit log's outcome line and the journal's line (the names
of mismatching files, escaped: they stay on the box).

The scratch folder is ``<paths.cache>/drills/<target>``: root's, 0700, never
in the share; removed after the drill, and a leftover of a killed drill is
removed at the next drill of that target.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from coffre.borg import argv
from coffre.borg.records import LogRecord, Progress
from coffre.core.config_types import Config
from coffre.core.errors import BorgArchiveMissing, BorgError, BorgIntegrityError, CoffreError
from coffre.core.model import Archive
from coffre.core.printable import controls_escaped
from coffre.core.restore_plan import describe_paths
from coffre.jobs.archive_list import list_archives
from coffre.jobs.services import Services
from coffre.proof.drill import HASH_KEY, Verdict, by_bytes, by_hash, hashes_of
from coffre.proof.drill_ledger import DrillLedger, DrillOutcome, DrillRecord
from coffre.proof.drill_sample import LISTING_KEYS, ArchivedFile, SampleLimits, choose, files_of
from coffre.storage.audit import AuditLog, AuditUnavailable, audit_path
from coffre.storage.dirfd import empty_tree, open_dir, opened, proc_path

__all__ = ["SCHEDULED", "DrillReport", "drill_target", "run_drill", "scratch_dir"]

#: The audit log's person of a drill nobody asked for.
SCHEDULED: Mapping[str, str] = {"user": "coffre", "why": "scheduled drill"}

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class DrillReport:
    """A drill's record, and what only the box sees: the names of the files that differ.

    ``by_bytes``/``by_hash``: how many files were compared with the share, with borg's hash.
    """

    target: str
    record: DrillRecord
    mismatched: tuple[str, ...] = ()
    by_bytes: int = 0
    by_hash: int = 0

    def summary(self) -> str:
        """One line for a person: the figures, and the files that differ (escaped)."""
        r = self.record
        rate = r.throughput
        said = (
            f"drill of {self.target} (archive {r.archive}): {r.files} file(s), "
            f"{r.bytes / 1e6:.1f} MB read back"
            + (f" at {rate / 1e6:.1f} MB/s" if rate is not None else "")
            + f"; {self.by_bytes} compared with the share, {self.by_hash} with borg's hash"
        )
        if self.mismatched:
            said += f"; {len(self.mismatched)} differ: {describe_paths(self.mismatched)}"
        return said


def scratch_dir(config: Config) -> Path:
    """Where drills extract: under the cache folder (root's, 0700), one folder per target."""
    return config.paths.cache / "drills"


async def drill_target(
    services: Services,
    target: str,
    *,
    person: Mapping[str, object] | None,
    location: str,
    rng: random.Random | None = None,
) -> DrillRecord:
    """Drill ``target`` (its repository at ``location``, opened by the caller); its record.

    See :func:`run_drill` for what is done, recorded and raised.
    """
    return (await run_drill(services, target, location, person=person, rng=rng)).record


async def run_drill(
    services: Services,
    target: str,
    location: str,
    *,
    person: Mapping[str, object] | None,
    rng: random.Random | None = None,
) -> DrillReport:
    """Drill the latest archive of ``target`` at ``location``; the report, also recorded.

    ``person`` is who asked (the audit log's), None for the schedule. Returns
    a report whose outcome is "ok" or "mismatch" (a file that differs, or
    that borg could not extract whole: a damaged chunk stops borg's extract,
    the drill names that file and extracts the rest). Raises AuditUnavailable
    (nothing read, nothing recorded), BorgArchiveMissing (no archive yet) and
    BorgError subclasses as borg fails otherwise (an extract that stops
    before writing anything, or on more than MAX_STOPS damaged files:
    BorgIntegrityError naming the last); each of those after a "failed"
    record in state. A cancelled drill (preempted, the daemon
    stops) is not recorded in state, only in the audit log.
    """
    who = dict(SCHEDULED if person is None else person)
    audit = AuditLog(audit_path(services.config), services.logger)
    archive = ""
    try:
        archive = (await _latest(services, target, location)).name
        sample = await _sample(services, location, archive, rng or random.Random())
    except CoffreError as error:
        _remember(services, target, _failed(services, archive, (), error, "listing"), ())
        raise
    paths = [f.path for f in sample]
    try:
        _audit(audit, services, who, target, archive, paths, "asked", {})
    except OSError as error:
        raise AuditUnavailable.writing(
            "drill", audit.path, error, why=": a drill reads patient data"
        ) from error
    outcome = "failed: cancelled"
    try:
        report = await _read_back(services, target, location, archive, sample)
        outcome = report.record.outcome
    except CoffreError as error:
        outcome = f"failed: {error.kind}"
        raise
    finally:
        with contextlib.suppress(OSError):  # AuditLog.record logged it to the journal
            _audit(audit, services, who, target, archive, paths, outcome, {})
    _remember(services, target, report.record, report.mismatched)
    return report


async def _latest(services: Services, target: str, location: str) -> Archive:
    """The newest archive of ``location`` that is not a checkpoint (borg asked, not state)."""
    archives = [a for a in await list_archives(services, target, location) if not a.is_checkpoint]
    if not archives:
        raise BorgArchiveMissing(
            f"target {target} has no archive to drill",
            rc=0,
            hint=f"back it up first: `coffre backup --target {target} --wait`",
        )
    return max(archives)


async def _sample(
    services: Services, location: str, archive: str, rng: random.Random
) -> list[ArchivedFile]:
    """The drill's sample of ``archive`` (its items listed with their ctime)."""
    listed = await services.borg.run(argv.list_contents(location, archive, keys=LISTING_KEYS))
    drills = services.config.drills
    limits = SampleLimits(
        files=drills.files, budget=drills.mib << 20, largest=drills.largest, recent=drills.recent
    )
    return choose(files_of(listed.stdout), limits, rng)


def _audit(
    audit: AuditLog,
    services: Services,
    who: Mapping[str, object],
    target: str,
    archive: str,
    paths: Sequence[str],
    outcome: str,
    details: Mapping[str, object],
) -> None:
    audit.record(
        op="drill",
        at=services.clock.now(),
        person=who,
        target=target,
        archive=archive or None,
        paths=list(paths),
        outcome=outcome,
        details=details,
    )


async def _read_back(
    services: Services,
    target: str,
    location: str,
    archive: str,
    sample: Sequence[ArchivedFile],
) -> DrillReport:
    """Extract ``sample`` into the scratch folder, compare, and judge; raises as run_drill."""
    config = services.config
    roots = [PurePosixPath(p) for p in config.source.paths]
    total = sum(f.size for f in sample)
    with _scratch(scratch_dir(config), target) as tree:
        try:
            seconds, damaged = await _extract(services, location, archive, sample, tree)
        except _Stopped as stopped:
            named = () if stopped.last is None else (stopped.last,)
            _remember(
                services,
                target,
                _failed(services, archive, sample, stopped.error, "extract", mismatches=len(named)),
                named,
            )
            raise _named(stopped, target, archive) from stopped.error
        whole = [f for f in sample if f.path not in damaged]
        verdicts, left = await asyncio.to_thread(by_bytes, tree, roots, whole)
        hashed: list[Verdict] = []
        if left:
            try:
                listed = await services.borg.run(
                    argv.list_contents(location, archive, [f.path for f in left], keys=(HASH_KEY,))
                )
            except CoffreError as error:
                _remember(
                    services, target, _failed(services, archive, sample, error, "hashing"), ()
                )
                raise
            hashed = await asyncio.to_thread(by_hash, tree, left, hashes_of(listed.stdout))
    bad = tuple(sorted(damaged)) + tuple(v.path for v in verdicts + hashed if not v.ok)
    outcome: DrillOutcome = "mismatch" if bad else "ok"
    record = DrillRecord(
        at=services.clock.now(),
        archive=archive,
        files=len(sample),
        bytes=total,
        extract_seconds=seconds,
        outcome=outcome,
        mismatches=len(bad),
        error=None,
    )
    return DrillReport(target, record, bad, len(verdicts), len(hashed))


class _Stopped(Exception):
    """borg's extract ended with an error; ``last`` the file it was writing (None: before any)."""

    def __init__(self, error: BorgError, last: str | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.last = last


def _named(stopped: _Stopped, target: str, archive: str) -> CoffreError:
    """The error of an extract stopped by borg, naming the file it stopped on (escaped)."""
    if stopped.last is None:
        return stopped.error
    return BorgIntegrityError(
        f"drill of {target}: borg could not read {controls_escaped(stopped.last)} "
        f"back from archive {archive}: {stopped.error}",
        rc=stopped.error.rc,
        hint="the repository is damaged: check it (`borg check`), see docs/; "
        "restore that file from another archive or target",
    )


#: Damaged files an extract may stop on before the drill gives up on the rest of its sample.
MAX_STOPS = 10


async def _extract(
    services: Services,
    location: str,
    archive: str,
    sample: Sequence[ArchivedFile],
    tree: int,
) -> tuple[float, frozenset[str]]:
    """Extract ``sample`` into ``tree``; (seconds borg took, the files not extracted whole).

    borg 1.4 stops the whole extract at a chunk that fails its checks (an
    IntegrityError, not a warning): the file it was writing (its last
    ``--list`` line) is damaged, those listed before it came out whole, and
    the rest of the sample is extracted by another run, up to MAX_STOPS
    times. Raises _Stopped when borg fails otherwise, or before writing anything.
    """
    left = [f.path for f in sample]
    seconds = 0.0
    damaged: set[str] = set()
    listed: list[str] = []

    def began(p: Progress) -> None:
        if p.message and not p.finished:
            listed.append(p.message)

    while left:
        listed.clear()
        began_at = time.monotonic()
        try:
            result = await services.borg.run(
                argv.extract(location, archive, left, list_items=True),
                cwd=Path(proc_path(tree)),
                on_progress=began,
            )
        except BorgIntegrityError as error:
            seconds += time.monotonic() - began_at
            if not listed or len(damaged) >= MAX_STOPS:
                raise _Stopped(error, listed[-1] if listed else None) from error
            damaged.add(listed[-1])
            done = set(listed)
            left = [p for p in left if p not in done]
            continue
        except BorgError as error:
            raise _Stopped(error, None) from error
        seconds += time.monotonic() - began_at
        return seconds, frozenset(damaged | _damaged(result.warnings, left))
    return seconds, frozenset(damaged)


def _damaged(warnings: Sequence[LogRecord], paths: Sequence[str]) -> frozenset[str]:
    """The sampled ``paths`` borg's warnings say it could not extract whole (BackupError...)."""
    failed = [r.message for r in warnings if r.msgid.startswith("Backup")]
    return frozenset(p for p in paths if any(m.startswith(p + ":") for m in failed))


@contextlib.contextmanager
def _scratch(root: Path, target: str) -> Iterator[int]:
    """A fresh, empty, private folder ``root/target`` (its descriptor), removed after.

    A leftover of a drill cut short (the daemon killed) is emptied first.
    Raises OSError when it cannot be made.
    """
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with opened(os.open(root, _DIR_FLAGS)) as root_fd:
        os.fchmod(root_fd, 0o700)
        _remove(root_fd, target, root)
        os.mkdir(target, mode=0o700, dir_fd=root_fd)
        tree = open_dir(root_fd, target, shown=PurePosixPath(root, target))
        try:
            yield tree
        finally:
            os.close(tree)
            _remove(root_fd, target, root)


def _remove(root_fd: int, name: str, root: Path) -> None:
    """Remove the folder ``name`` of ``root_fd`` and all in it (nothing when absent)."""
    try:
        fd = open_dir(root_fd, name, shown=PurePosixPath(root, name))
    except FileNotFoundError:
        return
    with opened(fd):
        empty_tree(fd)
    os.rmdir(name, dir_fd=root_fd)


def _failed(
    services: Services,
    archive: str,
    sample: Sequence[ArchivedFile],
    error: CoffreError,
    step: str,
    *,
    mismatches: int = 0,
) -> DrillRecord:
    """The record of a drill that failed at ``step``: no name in it (borg's words may hold one)."""
    return DrillRecord(
        at=services.clock.now(),
        archive=archive,
        files=len(sample),
        bytes=sum(f.size for f in sample),
        extract_seconds=0.0,
        outcome="failed",
        mismatches=mismatches,
        error=f"{step} failed ({error.kind})",
    )


def _remember(
    services: Services, target: str, record: DrillRecord, mismatched: Sequence[str]
) -> None:
    """Keep ``record`` in state and say it in the journal (the names there, escaped).

    A record state cannot take is logged, not raised: the drill's answer stands.
    """
    try:
        DrillLedger(services.state).record(target, record)
    except CoffreError as error:
        services.logger.error("drill of %s: state cannot record it: %s", target, error)
    said = (
        f"drill of {target}: {record.outcome}, archive {record.archive}, "
        f"{record.files} file(s), {record.bytes} bytes, extract {record.extract_seconds:.2f}s"
    )
    if mismatched:
        said += f"; {len(mismatched)} differ: " + ", ".join(controls_escaped(p) for p in mismatched)
    if record.error:
        said += f"; {record.error}"
    level = services.logger.info if record.outcome == "ok" else services.logger.error
    level(
        "%s",
        said,
        extra={
            "COFFRE_DRILL_OUTCOME": record.outcome,
            "COFFRE_DRILL_MISMATCHES": str(record.mismatches),
        },
    )
