"""``coffre drill``'s job: a restore drill on one target, asked by a person.

The drill itself (sample, extract, compare, audit, record) is
:func:`coffre.jobs.drilling.run_drill`; this job reaches the repository as
every read does (:func:`coffre.support.read_jobs.reachable`: a USB disk away
is waited for, mounted, and powered off after) and turns a drill that found
damage into the job's failure, so that the command exits 1 and names the
files (escaped).
"""

from __future__ import annotations

from coffre.core.errors import BorgIntegrityError
from coffre.core.job_events import OutcomeDetails
from coffre.jobs.drilling import run_drill
from coffre.jobs.queue import Job
from coffre.support.read_jobs import ReadContext, reachable
from coffre.targets.base import Repository


async def drill_job(
    ctx: ReadContext, repo: Repository, expected_id: str, job: Job
) -> OutcomeDetails:
    """Drill ``repo`` for whoever ``job`` says asked; the drill's figures.

    Raises BorgIntegrityError when files differ (its message names them,
    escaped, with the figures), and what :func:`run_drill` and ``reachable`` raise.
    """
    person = dict(job.request.options.asked_by) or None
    async with reachable(ctx, repo, expected_id, job) as location:
        report = await run_drill(ctx.services, repo.name, location, person=person)
    record = report.record
    if record.outcome != "ok":
        raise BorgIntegrityError(
            report.summary(),
            rc=0,
            hint=f"check the repository (`borg check --verify-data`; docs/); restore those "
            f"files from another archive or target than {repo.name} meanwhile",
        )
    return {
        "archive": record.archive,
        "nfiles": record.files,
        "nbytes": record.bytes,
        "extract_seconds": record.extract_seconds,
        "throughput": record.throughput,
        "by_bytes": report.by_bytes,
        "by_hash": report.by_hash,
        "mismatches": record.mismatches,
    }
