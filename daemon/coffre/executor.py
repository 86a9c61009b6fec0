"""Runs one job of the queue: its steps on each target, state, logs and events.

Each target is a run of its own in state: one target failing stops neither
the others nor the job. Errors are typed: a CoffreError becomes a failed run
with its kind; anything else is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from coffre import logs
from coffre.backup import create_archive
from coffre.borg.runner import Progress
from coffre.errors import CoffreError, TargetNotInitialised
from coffre.jobs import Job, JobEvent
from coffre.pruning import apply_retention
from coffre.retention import Plan
from coffre.services import Services
from coffre.state import RunStats
from coffre.target_init import init_target
from coffre.targets.base import Repository


def error_event(error: CoffreError) -> dict[str, Any]:
    """The JSON form of an error, as sent to the CLI."""
    return {
        "kind": error.kind,
        "message": error.message,
        "hint": error.hint,
        "exit_code": error.exit_code,
    }


def plan_event(plan: Plan) -> dict[str, Any]:
    """The JSON form of a retention plan: archives kept with reasons, deleted, ignored."""
    return {
        "keep": [{"name": k.archive.name, "reasons": list(k.reasons)} for k in plan.keep],
        "delete": [a.name for a in plan.delete],
        "ignored": [a.name for a in plan.ignored],
    }


class Executor:
    """Turns a Job into borg work on its targets (the queue's ``execute``)."""

    def __init__(self, services: Services, repositories: Mapping[str, Repository]) -> None:
        self._services = services
        self._repositories = repositories

    async def __call__(self, job: Job) -> JobEvent:
        results: dict[str, Any] = {}
        for target in job.request.targets:
            job.current_target = target
            job.progress = None
            job.counters = {}
            job.publish({"event": "target_started", "target": target})
            outcome = await self._run_target(job, target)
            results[target] = outcome
            job.publish({"event": "target_done", "target": target, **outcome})
        job.current_target = None
        return {
            "event": "result",
            "ok": all(r["ok"] for r in results.values()),
            "kind": job.request.kind,
            "targets": results,
        }

    async def _run_target(self, job: Job, target: str) -> dict[str, Any]:
        kind = job.request.kind
        repo = self._repositories[target]
        if kind == "init":
            return await self._step(target, "init", lambda: self._init(repo, job), log_ids=None)
        if kind == "prune":
            return await self._step(target, "prune", lambda: self._prune(repo, job), log_ids=None)
        backup = await self._step(
            target,
            "backup",
            lambda: self._backup(repo, job),
            log_ids=(logs.MSG_BACKUP_STARTED, logs.MSG_BACKUP_SUCCEEDED, logs.MSG_BACKUP_FAILED),
        )
        if backup["ok"]:
            pruned = await self._step(target, "prune", lambda: self._prune(repo, job), log_ids=None)
            backup["retention"] = pruned
            backup["ok"] = pruned["ok"]
        return backup

    async def _step(
        self,
        target: str,
        kind: str,
        work: Callable[[], Any],
        *,
        log_ids: tuple[str, str, str] | None,
    ) -> dict[str, Any]:
        """Run ``work`` as a run of ``kind`` on ``target`` in state, with its log lines."""
        services = self._services
        logger = services.logger
        run_id = services.state.start_run(target, kind, services.clock.now())
        if log_ids:
            logger.info("%s of %s started", kind, target, extra={"MESSAGE_ID": log_ids[0]})
        try:
            stats, details = await work()
        except CoffreError as error:
            services.state.finish_run(run_id, services.clock.now(), error=error)
            logger.error(
                "%s of %s failed: %s",
                kind,
                target,
                error,
                extra={
                    "MESSAGE_ID": log_ids[2] if log_ids else "",
                    "COFFRE_ERROR_KIND": error.kind,
                },
            )
            return {"ok": False, "error": error_event(error)}
        services.state.finish_run(run_id, services.clock.now(), stats=stats)
        if log_ids:
            logger.info(
                "%s of %s succeeded%s",
                kind,
                target,
                f": archive {stats.archive}" if stats else "",
                extra={"MESSAGE_ID": log_ids[1]},
            )
        return {"ok": True, **details}

    def _expected_id(self, target: str) -> str:
        expected = self._services.state.repository_id(target)
        if expected is None:
            raise TargetNotInitialised(
                f"target {target} has no repository recorded",
                hint=f"create it with `coffre target init {target}`",
            )
        return expected

    async def _backup(self, repo: Repository, job: Job) -> tuple[RunStats, dict[str, Any]]:
        expected = self._expected_id(repo.name)
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
                {"event": "progress", "target": repo.name, "ratio": job.progress, **job.counters}
            )

        async with repo.opened(expected) as location:
            stats = await create_archive(
                self._services, repo.name, location, expected, on_progress=progress
            )
        job.progress = 1.0
        return stats, {
            "archive": stats.archive,
            "nfiles": stats.nfiles,
            "original_size": stats.original_bytes,
            "deduplicated_size": stats.deduplicated_bytes,
        }

    async def _prune(self, repo: Repository, job: Job) -> tuple[None, dict[str, Any]]:
        expected = self._expected_id(repo.name)
        dry_run = bool(job.request.option("dry_run", False))
        async with repo.opened(expected) as location:
            plan = await apply_retention(
                self._services,
                repo.name,
                location,
                dry_run=dry_run,
                refresh=bool(job.request.option("refresh", False)),
            )
        self._services.logger.info(
            "retention of %s: %d kept, %d %s",
            repo.name,
            len(plan.keep),
            len(plan.delete),
            "to delete (dry run)" if dry_run else "deleted",
            extra={"MESSAGE_ID": logs.MSG_PRUNE_DONE},
        )
        return None, {"dry_run": dry_run, **plan_event(plan)}

    async def _init(self, repo: Repository, job: Job) -> tuple[None, dict[str, Any]]:
        repository_id, done = await init_target(
            self._services,
            repo,
            adopt=bool(job.request.option("adopt", False)),
            replace=bool(job.request.option("replace", False)),
        )
        self._services.logger.info("target %s: repository %s %s", repo.name, repository_id, done)
        return None, {"repository_id": repository_id, "done": done, "location": repo.location}
