"""What the LEDs and the metrics show: facts read from state and the job lanes.

:class:`Observer` turns state (sqlite reads only) and the lanes' running jobs
into :class:`coffre.core.health.Facts`. It never runs borg and never waits for a
job: a scrape or a light refresh in the middle of a backup reads what the
last write left. What it reads from the database is cached until state
writes again (``State.generation``), so a scrape of an unchanged state costs
no query; what depends on the time (retention slots by the calendar, the
disk rotation) is derived again at each call.

The guard's part: its open incidents and each target's latest night figures
(state's meta, cached with the rest), and whether the clock is
NTP-synchronised, asked of the ``ntp`` collaborator at most every
:data:`NTP_EVERY` (it may run ``timedatectl``; a scrape must stay cheap).

The restore-time estimate's part (``coffre.proof.restore_estimate``): each
target's last restore drill, read from state's meta (cached with the rest),
and :meth:`Observer.restore_estimates`, derived again at each call (a drill
turns stale with the calendar).

The daemon's side, which starts the exporter and the LEDs on these facts, is
``coffre.observe.observability``: the metrics import this module, never the reverse.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Protocol, TypeVar

from coffre.consistency.quiet import Consistency
from coffre.consistency.survey import SURVEY_KEY, survey_from_json
from coffre.core import retention
from coffre.core.clock import Clock
from coffre.core.config_types import Config, LocalTarget
from coffre.core.errors import ERROR_KINDS
from coffre.core.health import (
    CheckFacts,
    DiskFacts,
    Facts,
    IncidentFacts,
    JobFacts,
    NightFacts,
    TargetFacts,
    TargetKind,
)
from coffre.core.model import Archive, RunStats
from coffre.core.rotation import rotation
from coffre.guard.incidents import IncidentStore, MetaStore
from coffre.jobs.backup import consistency_key
from coffre.jobs.change_watch import figures_key
from coffre.jobs.queue import Job, JobQueue
from coffre.jobs.supervision import Incidents, Unrecorded
from coffre.observe.share_series import ShareFacts
from coffre.proof.check_ledger import CheckLedger, kinds_for
from coffre.proof.drill_ledger import DrillLedger, DrillRecord
from coffre.proof.restore_estimate import FullSize, RestoreEstimate, estimate
from coffre.storage.state import FAILED, DiskRecord, RunRecord, State
from coffre.targets.offsite.repository import status_of as offsite_status

_E = TypeVar("_E")

#: The kind a failed run is counted under when state holds a kind this coffre
#: does not know (written by another version): labels stay a bounded set.
UNKNOWN_KIND = "internal"

#: How long an answer of ``ntp`` is used before it is asked again.
NTP_EVERY = timedelta(minutes=1)

#: Whether the box's clock is NTP-synchronised; None when it cannot tell.
NtpProbe = Callable[[], bool | None]


# --- the restore-time estimate's inputs ---------------------------------------------------------


def read_drill(meta: MetaStore, target: str) -> DrillRecord | None:
    """The last drill of ``target`` in ``meta`` (None: none, or unreadable), as the drill
    ledger keeps it. Raises nothing but what ``meta.get_meta`` raises."""
    return DrillLedger(meta).last(target)


def full_size(stats: RunStats | None) -> FullSize | None:
    """What a full restore writes, from the stats of the run that made the latest archive:
    its original bytes and files (not the deduplicated repository: extract writes each file
    whole). None without an archive."""
    return None if stats is None else FullSize(stats.original_bytes, stats.nfiles)


class BorgVersion(Protocol):
    """What the exporter needs of the borg runner (``BorgRunner.version``)."""

    async def version(self) -> str: ...


@dataclass(frozen=True)
class _Stored:
    """What the database said at one generation of state."""

    targets: tuple[TargetFacts, ...]
    archives: dict[str, list[Archive] | None]
    disks: tuple[DiskRecord, ...]
    errors: dict[tuple[str, str], int]
    warnings: dict[str, int]
    incidents: tuple[IncidentFacts, ...] = ()
    nights: tuple[NightFacts, ...] = ()


def read_incidents(meta: MetaStore) -> tuple[IncidentFacts, ...]:
    """The guard's open incidents in ``meta`` (state), as facts: kind, since when, reasons."""
    return tuple(
        IncidentFacts(i.kind, i.opened_at, i.reasons) for i in IncidentStore(meta).open_incidents()
    )


def read_night(meta: MetaStore, target: str) -> NightFacts | None:
    """The latest night's figures of ``target`` in ``meta`` (None: none, or unreadable).

    Kept by ``coffre.jobs.change_watch`` as JSON ``{"at": iso, name: number...}``:
    every number is taken, whatever its name; anything else is left out.
    """
    raw = meta.get_meta(figures_key(target))
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    try:
        at = datetime.fromisoformat(body["at"]) if isinstance(body.get("at"), str) else None
    except ValueError:
        at = None
    figures = {
        str(name): number
        for name, number in body.items()
        if isinstance(number, int | float) and not isinstance(number, bool)
    }
    return NightFacts(target, at, figures)


# --- the scheduled checks (issue 13) ---------------------------------------------------


def read_checks(ledger: CheckLedger, target: str, kind: TargetKind) -> tuple[CheckFacts, ...]:
    """The checks coffre runs on ``target`` (a ``kind`` one), as the ledger has them."""
    found = []
    for check in kinds_for(kind):
        last = ledger.last_attempt(target, check)
        damage = ledger.damage(target, check)
        found.append(
            CheckFacts(
                kind=check,
                last_attempt=None if last is None else last.at,
                last_ok=None if last is None else last.ok,
                last_success=ledger.last_success(target, check),
                damage_at=None if damage is None else damage.at,
                last_error=None if last is None else last.error,
            )
        )
    return tuple(found)


# --- the lanes' jobs ---------------------------------------------------------------------


def _job(job: Job | None) -> JobFacts | None:
    if job is None:
        return None
    return JobFacts(job.request.kind, job.request.targets, job.progress)


def _failed_run(unrecorded: Unrecorded) -> RunRecord:
    """The run state could not record, as a run record (id 0: it has none)."""
    return RunRecord(
        id=0,
        target=unrecorded.target,
        kind=unrecorded.kind,
        started_at=unrecorded.at,
        finished_at=unrecorded.at,
        outcome=FAILED,
        error_kind=unrecorded.error_kind,
        error_message=unrecorded.message,
        stats=None,
    )


class Observer:
    """Reads :class:`Facts` from ``state`` and the job lanes ``main``, ``network``, ``reads``.

    Used from the event loop only, like State. The lanes may be given after
    construction (the daemon makes them after). ``free_bytes`` holds the free
    space of local targets' filesystems, measured by :meth:`measure` (after
    jobs, never at a scrape).
    """

    def __init__(
        self,
        config: Config,
        state: State,
        clock: Clock,
        *,
        main: JobQueue | None = None,
        network: JobQueue | None = None,
        reads: JobQueue | None = None,
        incidents: Incidents | None = None,
        ntp: NtpProbe | None = None,
    ) -> None:
        self._config = config
        self._state = state
        self._clock = clock
        self._incidents = incidents or Incidents()
        self.main = main
        self.network = network
        self.reads = reads
        self._stored: tuple[int, _Stored] | None = None
        #: By target: the day and archive list the slots were derived from, and the slots.
        self._slots: dict[str, tuple[date, list[Archive], dict[str, bool]]] = {}
        self._targets: tuple[object, tuple[TargetFacts, ...]] | None = None
        self.free_bytes: dict[str, int] = {}
        self._ntp = ntp
        self._ntp_asked: tuple[datetime, bool | None] | None = None
        self._drills: tuple[int, dict[str, DrillRecord]] | None = None
        self._share: tuple[int, ShareFacts] | None = None

    def clock_synchronised(self) -> bool | None:
        """Whether the clock is NTP-synchronised (None: unknown, or no ``ntp`` given).

        ``ntp`` is asked at most every :data:`NTP_EVERY`; an error of it reads
        as unknown (a probe that fails must not cost a scrape).
        """
        if self._ntp is None:
            return None
        now = self._clock.now()
        asked = self._ntp_asked
        if asked is None or not timedelta(0) <= now - asked[0] < NTP_EVERY:
            try:
                answer = self._ntp()
            except Exception:  # noqa: BLE001 - unknown, shown as such, never a failed scrape
                answer = None
            asked = self._ntp_asked = (now, answer)
        return asked[1]

    # --- restore drills (coffre.proof) ---

    def drills(self) -> dict[str, DrillRecord]:
        """Each target's and disk's last drill, from state; cached until state writes again.

        Raises StateError or sqlite3.Error when state cannot be read.
        """
        generation = self._state.generation
        if self._drills is None or self._drills[0] != generation:
            ledger = DrillLedger(self._state)
            names = [t.name for t in self._config.targets] + [d.name for d in self._state.disks()]
            found = {name: r for name in names if (r := ledger.last(name)) is not None}
            self._drills = (generation, found)
        return self._drills[1]

    # --- the share's snapshots (coffre.consistency) ---

    def share(self) -> ShareFacts:
        """The share's last survey and each target's last read, from state's meta; cached
        until state writes again, as the drills are.

        Raises StateError or sqlite3.Error when state cannot be read.
        """
        generation = self._state.generation
        if self._share is None or self._share[0] != generation:
            state = self._state
            names = [t.name for t in self._config.targets] + [d.name for d in state.disks()]
            kept = {n: Consistency.from_json(state.get_meta(consistency_key(n))) for n in names}
            reads = {n: read for n, read in kept.items() if read is not None}
            found = ShareFacts(survey_from_json(state.get_meta(SURVEY_KEY)), reads)
            self._share = (generation, found)
        return self._share[1]

    def facts(self) -> Facts:
        """The facts now. Raises StateError or sqlite3.Error when state cannot be read."""
        now = self._clock.now()
        tz = self._config.schedule.timezone
        generation = self._state.generation
        if self._stored is None or self._stored[0] != generation:
            self._stored = (generation, self._read())
        stored = self._stored[1]
        today = now.astimezone(tz).date()
        key = (generation, today, sorted(self.free_bytes.items()))
        if self._targets is None or self._targets[0] != key:
            self._targets = (key, self._with_slots(stored, today, now))
        targets = self._with_unrecorded(self._targets[1])
        disks = []
        for disk in stored.disks:
            where = rotation(disk, stored.disks, now, self._config.usb)
            disks.append(
                DiskFacts(
                    name=disk.name,
                    present=disk.present,
                    safe_to_remove=disk.safe_to_remove,
                    last_seen=disk.last_seen,
                    free_bytes=disk.free_bytes,
                    swap_due=where.swap_due,
                    missing=where.missing,
                    days_since_seen=where.days_since_seen,
                )
            )
        return Facts(
            now=now,
            tz=tz,
            targets=targets,
            disks=tuple(disks),
            main_job=_job(self.main.running if self.main else None),
            network_job=_job(self.network.running if self.network else None),
            read_job=_job(self.reads.running if self.reads else None),
            errors=self._with_crashes(stored.errors),
            warnings=stored.warnings,
            problems=self._incidents.failures(),
            incidents=stored.incidents,
            nights=stored.nights,
            clock_synchronised=self.clock_synchronised(),
        )

    def restore_estimates(self, facts: Facts) -> tuple[RestoreEstimate, ...]:
        """Each target's restore-time estimate at ``facts.now`` (``coffre.proof.restore_estimate``).

        ``facts``: what :meth:`facts` just gave (the targets' kind and latest
        archive's stats); the drills are :meth:`drills`'. Raises what it raises.
        """
        drills = self.drills()
        return tuple(
            estimate(
                target.name,
                target.kind,
                drills.get(target.name),
                full_size(target.last_stats),
                facts.now,
            )
            for target in facts.targets
        )

    def _with_unrecorded(self, targets: tuple[TargetFacts, ...]) -> tuple[TargetFacts, ...]:
        """``targets`` whose last backup attempt is, where state could not record it (its
        disk full), the failed one kept in the incidents: the metrics then say it failed."""
        unrecorded = {
            u.target: u for u in self._incidents.unrecorded_failures if u.kind == "backup"
        }
        if not unrecorded:
            return targets
        return tuple(
            replace(target, last_attempt=_failed_run(unrecorded[target.name]))
            if target.name in unrecorded
            else target
            for target in targets
        )

    def _with_crashes(self, errors: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
        """State's failed runs, plus the unexpected errors of jobs outside its runs (reads)."""
        crashes = self._incidents.internal_errors()
        if not crashes:
            return errors
        merged = dict(errors)
        for target, count in crashes.items():
            key = (target, UNKNOWN_KIND)
            merged[key] = merged.get(key, 0) + count
        return merged

    def measure(self) -> None:
        """Measure the free space of each local target's filesystem (a statvfs each).

        A repository not there yet (before ``coffre target init``) is left out.
        """
        for target in self._config.targets:
            if not isinstance(target, LocalTarget):
                continue
            try:
                found = os.statvfs(target.path)
            except OSError:
                self.free_bytes.pop(target.name, None)
                continue
            self.free_bytes[target.name] = found.f_bavail * found.f_frsize

    def _read(self) -> _Stored:
        state = self._state
        disks = tuple(state.disks())
        kinds: dict[str, TargetKind] = {t.name: t.kind for t in self._config.targets}
        for disk in disks:
            kinds.setdefault(disk.name, "usb")
        targets = []
        archives: dict[str, list[Archive] | None] = {}
        for name, kind in kinds.items():
            known = state.archives(name)
            archives[name] = known
            enrolled = next((d for d in disks if d.name == name), None)
            targets.append(self._target(name, kind, known, enrolled))
        errors: dict[tuple[str, str], int] = {}
        for (target, error_kind), count in state.error_counts().items():
            if target in kinds:
                key = (target, error_kind if error_kind in ERROR_KINDS else UNKNOWN_KIND)
                errors[key] = errors.get(key, 0) + count
        warnings = {t: n for t, n in state.warning_counts("backup").items() if t in kinds}
        nights = (read_night(state, name) for name in kinds)
        return _Stored(
            tuple(targets),
            archives,
            disks,
            errors,
            warnings,
            incidents=read_incidents(state),
            nights=tuple(n for n in nights if n is not None),
        )

    def _target(
        self,
        name: str,
        kind: TargetKind,
        known: list[Archive] | None,
        enrolled: DiskRecord | None,
    ) -> TargetFacts:
        """What state says of the target ``name`` (``enrolled``: its disk record, if a disk)."""
        state = self._state
        prefix = self._config.retention.prefix + "-"
        # With warnings too: its archive exists (lateness, restore points).
        success = state.last_completed(name, "backup")
        with_stats = (
            success
            if success is not None and success.stats is not None
            else state.last_run_with_stats(name)
        )
        ours = [a.time for a in known or () if a.name.startswith(prefix) and not a.is_checkpoint]
        reachable = None
        if kind == "offsite":
            reachable = offsite_status(state, name)["reachable"]
        repository_id = enrolled.repository_id if enrolled else state.repository_id(name)
        return TargetFacts(
            name=name,
            kind=kind,
            last_success=success,
            last_attempt=state.last_finished_run(name, "backup"),
            last_stats=None if with_stats is None else with_stats.stats,
            last_prune=state.last_finished_run(name, "prune"),
            checks=read_checks(CheckLedger(state), name, kind),
            archives=None if known is None else len(known),
            oldest_archive=min(ours, default=None),
            reachable=reachable,
            free_bytes=enrolled.free_bytes if enrolled else None,
            key_exported=None
            if repository_id is None
            else state.key_exported_at(repository_id) is not None,
            warnings_in_a_row=state.warnings_in_a_row(name, "backup"),
        )

    def _with_slots(self, stored: _Stored, today: date, now: datetime) -> tuple[TargetFacts, ...]:
        """The stored targets with today's retention slots and the measured free space."""
        return tuple(
            replace(
                target,
                slots=self._slots_of(target.name, stored.archives.get(target.name), today, now),
                free_bytes=self.free_bytes.get(target.name, target.free_bytes),
            )
            for target in stored.targets
        )

    def _slots_of(
        self, name: str, known: list[Archive] | None, today: date, now: datetime
    ) -> dict[str, bool]:
        # Derived again only when the day or the target's archive list changed.
        if known is None:
            return {}
        cached = self._slots.get(name)
        if cached is not None and cached[0] == today and cached[1] == known:
            return cached[2]
        policy = self._config.retention
        slots = retention.slots_present(
            known,
            prefix=policy.prefix,
            daily=policy.daily,
            monthly=policy.monthly,
            now=now,
            tz=self._config.schedule.timezone,
        )
        self._slots[name] = (today, known, slots)
        return slots
