"""Runs one job of the queue: its steps on each target, state, logs and events.

Each target is a run of its own in state: one target failing stops neither
the others nor the job. Errors are typed: a CoffreError becomes a failed run
with its kind; anything else (a bug, or a failure coffre has no type for)
becomes a failed run of kind ``internal``, its traceback in the journal, and
the job goes on with its next target. A failure state cannot record (its
filesystem full) is kept in :class:`coffre.jobs.supervision.Incidents`, so the
lights and the metrics show it all the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from coffre.borg.runner import Progress
from coffre.consistency.read_point import SharedPoint
from coffre.core.errors import (
    CoffreError,
    DiskAbsent,
    StateError,
    TargetNotInitialised,
    UsageError,
)
from coffre.core.job_events import OutcomeDetails, TargetOutcome, succeeded
from coffre.core.messages import ErrorInfo, error_info
from coffre.core.printable import controls_escaped
from coffre.core.retention import Plan
from coffre.jobs.backup import create_archive
from coffre.jobs.lanes import NETWORK, lane_of
from coffre.jobs.maintenance import EntryPoints, checks_asked, failed, run_maintenance
from coffre.jobs.pruning import apply_retention
from coffre.jobs.queue import (
    READ_KINDS,
    Job,
    JobResult,
    Preemption,
    TargetHolds,
    maintains,
)
from coffre.jobs.services import Services
from coffre.jobs.supervision import Incidents, unexpected
from coffre.storage import logs
from coffre.storage.state import RunStats
from coffre.support.drill_job import drill_job
from coffre.support.read_jobs import (
    ReadContext,
    WaitPlugged,
    browse_job,
    find_job,
    key_export_job,
    restore_job,
)
from coffre.targets.base import RemovableDisk, Repository
from coffre.targets.init import init_target
from coffre.targets.usb import devices
from coffre.targets.usb.enroll import enroll_disk
from coffre.targets.usb.job import PowerOff, run_disk_job


def error_event(error: CoffreError) -> ErrorInfo:
    """The JSON form of an error, as sent to the CLI."""
    return error_info(error)


def plan_event(plan: Plan) -> OutcomeDetails:
    """The JSON form of a retention plan: archives kept with reasons, deleted, ignored."""
    return {
        "keep": [{"name": k.archive.name, "reasons": list(k.reasons)} for k in plan.keep],
        "delete": [a.name for a in plan.delete],
        "ignored": [a.name for a in plan.ignored],
    }


_READ_JOBS: Mapping[
    str, Callable[[ReadContext, Repository, str, Job], Awaitable[OutcomeDetails]]
] = {
    "restore": restore_job,
    "find": find_job,
    "key_export": key_export_job,
    "drill": drill_job,
}


async def _never_plugged(name: str, within: float) -> None:
    raise DiskAbsent(f"disk {name} is not plugged in", hint="plug it in, then ask again")


_BACKUP_LOG_IDS = (logs.MSG_BACKUP_STARTED, logs.MSG_BACKUP_SUCCEEDED, logs.MSG_BACKUP_FAILED)


class Executor:
    """Turns a Job into borg work on its targets (the queue's ``execute``)."""

    def __init__(
        self,
        services: Services,
        repositories: Mapping[str, Repository],
        *,
        power_off: PowerOff = devices.power_off,
        wait_plugged: WaitPlugged | None = None,
        incidents: Incidents | None = None,
        maintenance: EntryPoints | None = None,
    ) -> None:
        self._services = services
        #: The check and the drill (None: this daemon runs none; a check job fails, saying so).
        self._maintenance = maintenance
        self._incidents = incidents or Incidents()
        self._repositories = repositories
        self._power_off = power_off
        self._wait_plugged = wait_plugged or _never_plugged
        # The lanes run side by side (a restore during a USB disk's backup):
        # one job per repository is kept here, whatever lane a job runs in.
        self._holds = TargetHolds()

    async def __call__(self, job: Job) -> JobResult:
        # The job's targets read the share as one: the run's point, or the job's own.
        own = None if job.request.shared is not None else SharedPoint()
        try:
            return await self._targets(job, job.request.shared or own)
        finally:
            if own is not None:
                own.close()

    async def _targets(self, job: Job, point: SharedPoint | None) -> JobResult:
        results: dict[str, TargetOutcome] = {}
        # A check or a drill is never in the way: it holds its target yielding.
        yielding = maintains(job.request)
        for target in job.request.targets:
            async with self._holds.hold(target, job, yielding=yielding) as preemption:
                job.current_target = target
                job.progress = None
                job.counters = {}
                job.publish({"event": "target_started", "target": target})
                if yielding:
                    outcome = await self._maintain(job, target, preemption)
                else:
                    outcome = await self._run_target(job, target, point)
            results[target] = outcome
            job.publish({"event": "target_done", "target": target, **outcome})
        job.current_target = None
        return {
            "event": "result",
            "ok": all(r["ok"] for r in results.values()),
            "kind": job.request.kind,
            "targets": results,
        }

    async def _run_target(self, job: Job, target: str, point: SharedPoint | None) -> TargetOutcome:
        kind = job.request.kind
        if kind == "enroll":
            return await self._step(
                target, "enroll", lambda: self._enroll(job, target), log_ids=None
            )
        repo = self._repositories[target]
        if kind in READ_KINDS:
            return await self._read(job, repo)
        removable = repo.as_disk()
        if removable is not None and kind in ("disk", "backup"):
            # Asked by name (`coffre backup --target DISK`), a disk makes a new
            # archive even if it has today's; either way it ends powered off.
            force = kind == "backup"
            return await self._step(
                target,
                "backup",
                lambda: self._disk(repo, removable, job, force),
                log_ids=_BACKUP_LOG_IDS,
            )
        if kind == "init":
            return await self._step(target, "init", lambda: self._init(repo, job), log_ids=None)
        if kind == "prune":
            return await self._step(target, "prune", lambda: self._prune(repo, job), log_ids=None)
        backup = await self._step(
            target,
            "backup",
            lambda: self._backup(repo, job, point),
            log_ids=_BACKUP_LOG_IDS,
        )
        if backup["ok"]:
            pruned = await self._step(target, "prune", lambda: self._prune(repo, job), log_ids=None)
            backup["retention"] = pruned
            backup["ok"] = pruned["ok"]
        return backup

    async def _read(self, job: Job, repo: Repository) -> TargetOutcome:
        """A job reading ``repo`` for a person: not a run in state (the audit log has it)."""
        services = self._services_for(repo)
        ctx = ReadContext(services, self._wait_plugged, self._power_off)
        try:
            if job.request.kind == "restore" and services.share is not None:
                # A restore writes into the share: old Previous Versions give it room first.
                await services.share.make_room_quietly()
            expected = self._expected_id(repo.name)
            if job.request.kind == "browse":
                details = await browse_job(
                    ctx,
                    repo,
                    expected,
                    job,
                    mountpoint=services.config.paths.runtime / "browse" / repo.name,
                )
            else:
                details = await _READ_JOBS[job.request.kind](ctx, repo, expected, job)
        except CoffreError as error:
            return {"ok": False, "error": error_event(error)}
        except Exception as error:  # noqa: BLE001 - one read fails, not the reads lane
            where = f"{job.request.kind} of {repo.name}"
            internal = unexpected(error, where, self._services.logger)
            self._incidents.crashed(repo.name)
            return {"ok": False, "error": error_event(internal)}
        return succeeded(details)

    async def _maintain(self, job: Job, target: str, preemption: Preemption) -> TargetOutcome:
        """A check or a drill of ``target``, let go at once when another job asks for it.

        Not a run in state: the check and drill ledgers record it (an
        interruption is no failure). Raises nothing but cancellation.
        """
        entries = self._maintenance
        options = job.request.options
        try:
            if entries is None:
                raise UsageError(
                    "this daemon runs no checks nor drills", hint="update coffre on this box"
                )
            offsite = lane_of(self._services.config, target) == NETWORK
            work = None if job.request.kind == "drill" else checks_asked(options.checks, offsite)
            return await run_maintenance(
                entries, self._services, target, work, preemption, budget=options.budget
            )
        except CoffreError as error:
            return failed(error)
        except Exception as error:  # noqa: BLE001 - one check fails, not the maintenance lane
            internal = unexpected(error, f"{job.request.kind} of {target}", self._services.logger)
            self._incidents.crashed(target)
            return failed(internal)

    async def _step(
        self,
        target: str,
        kind: str,
        work: Callable[[], Awaitable[tuple[RunStats | None, OutcomeDetails]]],
        *,
        log_ids: tuple[str, str, str] | None,
    ) -> TargetOutcome:
        """Run ``work`` as a run of ``kind`` on ``target`` in state, with its log lines.

        Returns the step's outcome (``ok``, and ``error`` or the work's
        details); raises nothing but cancellation: a CoffreError fails the
        run with its kind, anything else with kind ``internal`` (traceback
        logged), and a run state cannot record is kept in the incidents.
        """
        services = self._services
        logger = services.logger
        run_id: int | None = None
        try:
            run_id = services.state.start_run(target, kind, services.clock.now())
            if log_ids:
                logger.info("%s of %s started", kind, target, extra={"MESSAGE_ID": log_ids[0]})
            stats, details = await work()
        except CoffreError as error:
            self._failed(run_id, target, kind, error, log_ids)
            return {"ok": False, "error": error_event(error)}
        except Exception as error:  # noqa: BLE001 - one run fails, not the job or its lane
            internal = unexpected(error, f"{kind} of {target}", logger)
            self._failed(run_id, target, kind, internal, log_ids)
            return {"ok": False, "error": error_event(internal)}
        assert run_id is not None  # set before the work ran
        try:
            services.state.finish_run(run_id, services.clock.now(), stats=stats)
        except StateError as error:
            # The work is done (an archive made): only its record is missing.
            logger.error(
                "%s of %s succeeded but state could not record it: %s", kind, target, error
            )
        else:
            self._incidents.recorded(target, kind)
        if log_ids:
            self._log_success(target, kind, stats, log_ids)
        outcome = succeeded(details)
        # borg's warnings: the archive is made but lacks (or doubts) files, never "succeeded".
        warned = stats.warnings if stats is not None else None
        if warned is not None:
            outcome["outcome"] = "warning"
            outcome["not_backed_up"] = warned.not_backed_up
            outcome["warning_summary"] = warned.summary
        return outcome

    def _log_success(
        self, target: str, kind: str, stats: RunStats | None, log_ids: tuple[str, str, str]
    ) -> None:
        """Say in the journal that ``kind`` of ``target`` succeeded, or made its archive
        with borg's warnings (never called a success)."""
        logger = self._services.logger
        warned = stats.warnings if stats is not None else None
        if warned is not None:
            logger.warning(
                "%s of %s ended with warnings: archive %s; %s",
                kind,
                target,
                stats.archive if stats else None,
                warned.summary,
                extra={
                    "MESSAGE_ID": logs.MSG_BACKUP_WARNING,
                    "COFFRE_FILES_NOT_BACKED_UP": str(warned.not_backed_up),
                },
            )
        else:
            logger.info(
                "%s of %s succeeded%s",
                kind,
                target,
                f": archive {stats.archive}" if stats else "",
                extra={"MESSAGE_ID": log_ids[1]},
            )

    def _failed(
        self,
        run_id: int | None,
        target: str,
        kind: str,
        error: CoffreError,
        log_ids: tuple[str, str, str] | None,
    ) -> None:
        """Record and log the failed ``kind`` run of ``target``; raises nothing."""
        services = self._services
        now = services.clock.now()
        try:
            if run_id is None:
                raise StateError("the run could not be recorded at its start")
            services.state.finish_run(run_id, now, error=error)
        except StateError as unrecorded:
            services.logger.error("state cannot record the failure: %s", unrecorded)
            self._incidents.unrecorded(target, kind, now, error)
        else:
            self._incidents.recorded(target, kind)
        services.logger.error(
            "%s of %s failed: %s",
            kind,
            target,
            controls_escaped(str(error)),  # borg's words may quote a name from the share
            extra={
                "MESSAGE_ID": log_ids[2] if log_ids else "",
                "COFFRE_ERROR_KIND": error.kind,
            },
        )

    def _expected_id(self, target: str) -> str:
        expected = self._services.state.repository_id(target)
        repo = self._repositories.get(target)
        if expected is None and repo is not None:
            repo.require_ready()  # e.g. not enrolled says more than "not initialised"
        if expected is None:
            raise TargetNotInitialised(
                f"target {target} has no repository recorded",
                hint=f"create it with `coffre target init {target}`",
            )
        return expected

    def _progress(self, repo: Repository, job: Job) -> Callable[[Progress], None]:
        """The progress callback of a create on ``repo``: the job's counters and events."""
        previous = self._services.state.last_run(repo.name, "backup", outcome="success")
        expected_files = previous.stats.nfiles if previous and previous.stats else 0

        def progress(p: Progress) -> None:
            # Borg cannot know the total: last night's file count is the best guess.
            if expected_files:
                job.progress = min(p.nfiles / expected_files, 0.99)
            job.counters = {
                "nfiles": p.nfiles,
                "original_size": p.original_size,
                "deduplicated_size": p.deduplicated_size,
            }
            job.publish(
                {
                    "event": "progress",
                    "target": repo.name,
                    "ratio": job.progress,
                    "nfiles": p.nfiles,
                    "original_size": p.original_size,
                    "deduplicated_size": p.deduplicated_size,
                }
            )

        return progress

    async def _disk(
        self, repo: Repository, disk: RemovableDisk, job: Job, force: bool
    ) -> tuple[RunStats | None, OutcomeDetails]:
        return await run_disk_job(
            repo.job_services(self._services),
            disk,
            self._expected_id(repo.name),
            power_off=self._power_off,
            on_progress=self._progress(repo, job),
            force_create=force,
        )

    async def _enroll(self, job: Job, name: str) -> tuple[None, OutcomeDetails]:
        uuid, repository_id, done = await enroll_disk(
            self._services,
            job.request.options.device,
            name,
            format_disk=job.request.options.format,
            adopt=job.request.options.adopt,
        )
        self._services.logger.info(
            "disk %s (%s): repository %s %s", name, uuid, repository_id, done
        )
        return None, {"fs_uuid": uuid, "repository_id": repository_id, "done": done}

    def _services_for(self, repo: Repository) -> Services:
        """The services of jobs on ``repo``: an offsite one brings its own (borg over SSH)."""
        return repo.job_services(self._services)

    async def _backup(
        self, repo: Repository, job: Job, point: SharedPoint | None
    ) -> tuple[RunStats, OutcomeDetails]:
        expected = self._expected_id(repo.name)
        progress = self._progress(repo, job)
        async with repo.opened(expected) as location:
            stats = await create_archive(
                self._services_for(repo),
                repo.name,
                location,
                expected,
                on_progress=progress,
                point=point,
            )
        job.progress = 1.0
        return stats, {
            "archive": stats.archive,
            "nfiles": stats.nfiles,
            "original_size": stats.original_bytes,
            "deduplicated_size": stats.deduplicated_bytes,
        }

    async def _prune(self, repo: Repository, job: Job) -> tuple[None, OutcomeDetails]:
        expected = self._expected_id(repo.name)
        dry_run = job.request.options.dry_run
        async with repo.opened(expected) as location:
            done = await apply_retention(
                self._services_for(repo),
                repo.name,
                location,
                dry_run=dry_run,
                refresh=job.request.options.refresh,
                compacts=repo.compacts,
            )
        plan = done.plan
        self._services.logger.info(
            "retention of %s: %d kept, %d %s",
            repo.name,
            len(plan.keep),
            len(plan.delete) if dry_run else len(done.deleted),
            "to delete (dry run)" if dry_run else "deleted",
            extra={"MESSAGE_ID": logs.MSG_PRUNE_DONE},
        )
        details: OutcomeDetails = {"dry_run": dry_run, **plan_event(plan)}
        if done.frozen_by and not dry_run:
            # What retention would have deleted is held: it stays, named apart.
            details["held"] = details.get("delete", [])
            details["delete"] = []
            details["frozen_by"] = [i.kind for i in done.frozen_by]
        return None, details

    async def _init(self, repo: Repository, job: Job) -> tuple[None, OutcomeDetails]:
        repository_id, done = await init_target(
            self._services_for(repo),
            repo,
            adopt=job.request.options.adopt,
            replace=job.request.options.replace,
        )
        self._services.logger.info("target %s: repository %s %s", repo.name, repository_id, done)
        return None, {"repository_id": repository_id, "done": done, "location": repo.location}
