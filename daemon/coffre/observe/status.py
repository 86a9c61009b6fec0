"""The status report: built from state and the queue, never from borg."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from coffre.core import retention
from coffre.core.clock import local_iso
from coffre.core.config_types import Config
from coffre.core.reports import (
    ArchivesReport,
    CheckView,
    DiskView,
    GuardView,
    IncidentView,
    KeyEscrowView,
    NightView,
    OffsiteView,
    RestoreEstimateView,
    RestoreView,
    RunView,
    StatusReport,
    TargetStatus,
)
from coffre.guard.incidents import Incident, IncidentStore
from coffre.jobs.queue import JobQueue
from coffre.observe.facts import full_size, read_drill, read_night
from coffre.proof.check_ledger import CheckLedger, kinds_for
from coffre.proof.restore_estimate import STALE_AFTER, RestoreEstimate, estimate
from coffre.storage.state import RunRecord, State
from coffre.targets.offsite.repository import status_of as offsite_status


def _run(run: RunRecord | None, tz: tzinfo) -> RunView | None:
    """A run as status shows it. A run with warnings (outcome "warning") says how many
    files its archive lacks and why, as counts only: file names stay in the journal."""
    if run is None:
        return None
    warnings = run.warnings
    return {
        "started_at": local_iso(run.started_at, tz),
        "finished_at": local_iso(run.finished_at, tz),
        "outcome": run.outcome,
        "duration": run.duration,
        "error_kind": run.error_kind,
        "error_message": run.error_message,
        "archive": run.stats.archive if run.stats else None,
        "nfiles": run.stats.nfiles if run.stats else None,
        "original_size": run.stats.original_bytes if run.stats else None,
        "deduplicated_size": run.stats.deduplicated_bytes if run.stats else None,
        "not_backed_up": None if warnings is None else warnings.not_backed_up,
        "warnings": None if warnings is None else warnings.as_dict(),
        "warning_summary": None if warnings is None else warnings.summary,
    }


def archives_report(config: Config, state: State, target: str, now: datetime) -> ArchivesReport:
    """The known archives of ``target``, newest first, each with its retention reasons."""
    known = state.archives(target)
    if known is None:
        return {"listed": False, "archives": [], "slots": {}}
    policy, tz = config.retention, config.schedule.timezone
    plan = retention.plan(
        known, prefix=policy.prefix, daily=policy.daily, monthly=policy.monthly, tz=tz
    )
    reasons = {k.archive.name: list(k.reasons) for k in plan.keep}
    return {
        "listed": True,
        "archives": [
            {
                "name": a.name,
                "time": local_iso(a.time, tz),
                "reasons": reasons.get(a.name, []),
                "ours": a.name.startswith(policy.prefix + "-"),
            }
            for a in sorted(known, reverse=True)
        ],
        "slots": retention.slots_present(
            known,
            prefix=policy.prefix,
            daily=policy.daily,
            monthly=policy.monthly,
            now=now,
            tz=tz,
        ),
    }


def key_escrow(config: Config, state: State, tz: tzinfo) -> list[KeyEscrowView]:
    """Each repository (targets and USB disks) and when its key was last printed (None: never).

    Until every one has been, the backups cannot be read after the box is
    lost: `coffre status` warns.
    """
    repositories = [(t.name, state.repository_id(t.name)) for t in config.targets]
    repositories += [(d.name, d.repository_id) for d in state.disks()]
    return [
        {
            "target": name,
            "repository_id": repository_id,
            "exported_at": local_iso(state.key_exported_at(repository_id), tz),
        }
        for name, repository_id in repositories
        if repository_id is not None
    ]


def build(
    config: Config,
    state: State,
    queue: JobQueue,
    now: datetime,
    next_nightly: datetime | None,
    *,
    network: JobQueue | None = None,
    reads: JobQueue | None = None,
    disks: Sequence[DiskView] = (),
    problems: Sequence[str] = (),
    clock_synchronised: bool | None = None,
) -> StatusReport:
    """Everything `coffre status` shows, as JSON-ready data.

    ``network`` is the lane of offsite uploads: its running job is
    ``uploading``; ``reads`` the lane of support's reads: its running job is
    ``reading``. Their queued jobs join ``queued``. ``disks`` and
    ``problems`` (what the box lacks, failures state could not record) are
    the daemon's, shown as given; so is ``clock_synchronised`` (whether the
    clock is NTP-synchronised; None: unknown), in the ``guard`` part.
    """
    tz = config.schedule.timezone
    return {
        "key_escrow": key_escrow(config, state, tz),
        "now": local_iso(now, tz),
        "timezone": tz.key,
        "next_nightly": local_iso(next_nightly, tz),
        "running": queue.running.describe() if queue.running else None,
        "queued": [
            job.describe()
            for lane in (queue, network, reads)
            if lane is not None
            for job in lane.pending
        ],
        "uploading": network.running.describe() if network and network.running else None,
        "reading": reads.running.describe() if reads and reads.running else None,
        "targets": _targets(config, state, now),
        "disks": list(disks),
        "problems": list(problems),
        "guard": guard_view(
            state,
            [t.name for t in config.targets] + [d.name for d in state.disks()],
            tz,
            clock_synchronised,
        ),
        "checks": checks_view(
            state,
            [(t.name, t.kind) for t in config.targets] + [(d.name, "usb") for d in state.disks()],
            tz,
        ),
        "restore": restore_view(config, state, now),
    }


def checks_view(
    state: State, targets: Sequence[tuple[str, str]], tz: tzinfo
) -> dict[str, list[CheckView]]:
    """Each check coffre runs on each of ``targets`` ((name, kind)), as the ledger has it.

    Raises what state's reads raise.
    """
    ledger = CheckLedger(state)
    views: dict[str, list[CheckView]] = {}
    for name, kind in targets:
        views[name] = []
        for check in kinds_for(kind):
            last = ledger.last_attempt(name, check)
            damage = ledger.damage(name, check)
            views[name].append(
                {
                    "kind": check,
                    "last_attempt": None if last is None else local_iso(last.at, tz),
                    "last_ok": None if last is None else last.ok,
                    "last_error": None if last is None else last.error,
                    "archive": None if last is None else last.archive,
                    "last_success": local_iso(ledger.last_success(name, check), tz),
                    "pass_started": local_iso(ledger.pass_started(name, check), tz),
                    "damage_at": None if damage is None else local_iso(damage.at, tz),
                }
            )
    return views


def _targets(config: Config, state: State, now: datetime) -> dict[str, TargetStatus]:
    """Each configured target in status: its repository, last runs and archives."""
    tz = config.schedule.timezone
    targets: dict[str, TargetStatus] = {}
    for target in config.targets:
        archives = archives_report(config, state, target.name, now)
        targets[target.name] = {
            "kind": target.kind,
            "location": target.location,
            "repository_id": state.repository_id(target.name),
            # The last archive made, complete or with warnings (its outcome says which).
            "last_success": _run(state.last_completed(target.name, "backup"), tz),
            "last_attempt": _run(state.last_run(target.name, "backup"), tz),
            "last_failure": _run(state.last_failure(target.name), tz),
            "listed": archives["listed"],
            "archives": archives["archives"],
            "slots": archives["slots"],
        }
        if target.kind == "offsite":
            targets[target.name]["offsite"] = _offsite(state, target.name, tz)
    return targets


def guard_view(
    state: State, targets: Sequence[str], tz: tzinfo, clock_synchronised: bool | None
) -> GuardView:
    """The guard's part of status: open incidents, frozen pruning, the clock, each night.

    ``targets``: whose latest night figures to show (a name given twice is
    shown once). Counts, reasons and times only: no evidence, no file name.
    Raises what state's reads raise.
    """
    incidents = IncidentStore(state).open_incidents()
    nights: dict[str, NightView] = {}
    for name in dict.fromkeys(targets):
        night = read_night(state, name)
        if night is not None:
            nights[name] = {"at": local_iso(night.at, tz), "figures": dict(night.figures)}
    return {
        "incidents": [_incident(incident, tz) for incident in incidents],
        "pruning_frozen": bool(incidents),
        "clock_synchronised": clock_synchronised,
        "nights": nights,
    }


def _incident(incident: Incident, tz: tzinfo) -> IncidentView:
    latest = incident.latest
    return {
        "kind": incident.kind,
        "opened_at": local_iso(incident.opened_at, tz),
        "reasons": list(incident.reasons),
        "sightings": len(incident.sightings),
        "latest_at": local_iso(latest.at, tz),
        "latest_target": latest.target,
        "figures": dict(latest.figures),
    }


def _offsite(state: State, name: str, tz: tzinfo) -> OffsiteView:
    """The offsite lines of target ``name``, the time of its last check in the box's timezone."""
    raw = offsite_status(state, name)
    checked = raw["checked_at"]
    return {
        "last_error_kind": raw["last_error_kind"],
        "reachable": raw["reachable"],
        # Stored in UTC; shown, as every time of status, in the box's timezone.
        "checked_at": None if checked is None else local_iso(datetime.fromisoformat(checked), tz),
        "preflight_error": raw["preflight_error"],
        "bytes_sent": raw["bytes_sent"],
    }


def restore_view(config: Config, state: State, now: datetime) -> RestoreView:
    """How long getting everything back from each target (and enrolled disk) takes.

    Each from its last drill and its latest archive's size
    (``coffre.proof.restore_estimate``), against ``restore.rto_hours``.
    Figures only. Raises what state's reads raise.
    """
    kinds: dict[str, str] = {t.name: t.kind for t in config.targets}
    for disk in state.disks():
        kinds.setdefault(disk.name, "usb")
    objective = config.restore.rto_hours
    estimates: dict[str, RestoreEstimateView] = {}
    for name, kind in kinds.items():
        made = state.last_run_with_stats(name)  # the latest archive
        size = full_size(None if made is None else made.stats)
        found = estimate(name, kind, read_drill(state, name), size, now)
        estimates[name] = _estimate_view(found, objective, config.schedule.timezone)
    return {
        "objective_hours": objective,
        "stale_after_days": STALE_AFTER.days,
        "estimates": estimates,
    }


def _estimate_view(found: RestoreEstimate, objective_hours: int, tz: tzinfo) -> RestoreEstimateView:
    return {
        "seconds": found.seconds,
        "unknown": found.unknown,
        "drill_at": local_iso(found.drill_at, tz),
        "rate": found.rate,
        "bytes": None if found.size is None else found.size.bytes,
        "files": None if found.size is None else found.size.files,
        "over_link": found.over_link,
        "stale": found.stale,
        "over_objective": found.over(objective_hours * 3600.0),
    }
