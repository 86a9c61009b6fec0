"""The scheduled borg checks of one repository: run, judge, record (issue 13).

:func:`check_at` runs the check of one kind on a repository the caller has
opened (the local one, an offsite one over SSH with its own services, a USB
disk mounted inside its disk job), judges what borg said
(``coffre.proof.check_outcome``) and records it in the check ledger
(``coffre.proof.check_ledger``), which status, metrics, the lights and the
alerts read. Reaching a target by its name is ``coffre.targets.checking``'s
(it needs the targets, which sit above the jobs).

- ``repository``: ``borg check --repository-only``; with a ``budget`` a
  rolling slice of ``--max-duration`` seconds that resumes where the last
  one stopped (borg keeps its place in the repository's config), complete
  when borg says it read the last segment.
- ``archives``: ``borg check --archives-only`` (metadata only: on an offsite
  target it runs from the box, and what it reads crosses the uplink).
- ``data``: without a budget, ``borg check --verify-data`` (every chunk, one
  run); with one, archive by archive (``coffre.proof.data_pass``), newest
  first, until the budget is spent; the next run goes on with the others.

Damage found is returned (``ok`` False, ``damage`` True), never raised: the
check did its job. A check borg could not run (a lock, a host that does not
answer) is recorded, then its error raised. A check cancelled (a backup, a
disk or a restore needs the repository) is recorded as an incomplete pass
that found nothing wrong so far, and the cancellation goes on.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from coffre.borg import argv
from coffre.core.errors import BorgIntegrityError, CoffreError
from coffre.jobs.archive_list import list_archives
from coffre.jobs.services import Services
from coffre.proof import check_outcome
from coffre.proof.check_ledger import CheckKind, CheckLedger, CheckRecord
from coffre.proof.check_outcome import Finding
from coffre.proof.data_pass import to_verify

#: Nothing found, pass not over: a slice, a run stopped by its budget or cancelled.
UNFINISHED = Finding(ok=True, complete=False, damage=False, error=None, archive=None)


async def check_at(
    services: Services,
    target: str,
    target_kind: str,
    location: str,
    kind: CheckKind,
    *,
    budget: float | None,
) -> CheckRecord:
    """Run the ``kind`` check of ``target`` (a ``target_kind`` one) at ``location``, opened.

    ``budget``: seconds it may take (None: no limit; see the module doc).
    Returns the record written to the ledger. Raises the CoffreError that kept
    borg from checking (after recording it), and CancelledError as it comes.
    """
    ledger = CheckLedger(services.state)
    started = services.clock.now()
    failure: CoffreError | None = None
    try:
        finding = await _run(services, target, target_kind, location, kind, budget, ledger)
    except CoffreError as error:
        failure = error
        finding = check_outcome.from_error(target, target_kind, kind, error)
    except asyncio.CancelledError:
        _record(services, ledger, target, kind, started, UNFINISHED)
        raise
    record = _record(services, ledger, target, kind, started, finding)
    if failure is not None and not finding.damage:
        raise failure
    return record


def _record(
    services: Services,
    ledger: CheckLedger,
    target: str,
    kind: CheckKind,
    started: datetime,
    finding: Finding,
) -> CheckRecord:
    """Write ``finding`` to the ledger and the journal; the record written."""
    now = services.clock.now()
    record = CheckRecord(
        at=now,
        ok=finding.ok,
        complete=finding.complete,
        error=finding.error,
        archive=finding.archive,
        seconds=max((now - started).total_seconds(), 0.0),
        damage=finding.damage,
    )
    ledger.record(target, kind, record)
    # Counts and names of targets only in the fields; the sentence may quote borg (escaped).
    fields = {"COFFRE_TARGET": target, "COFFRE_CHECK_KIND": kind, "COFFRE_CHECK_OK": int(record.ok)}
    if finding.damage:
        services.logger.error("check: %s", record.error, extra=fields)
    elif not record.ok:
        services.logger.warning("check: %s", record.error, extra=fields)
    else:
        services.logger.info(
            "check: the %s of %s found nothing wrong (%s, %.0f s)",
            check_outcome.check_name(kind),
            target,
            "its pass is complete" if record.complete else "part of a pass",
            record.seconds,
            extra=fields,
        )
    return record


async def _run(
    services: Services,
    target: str,
    target_kind: str,
    location: str,
    kind: CheckKind,
    budget: float | None,
    ledger: CheckLedger,
) -> Finding:
    """The borg run(s) of one check, judged. Raises what borg raises."""
    if kind == "data" and budget is not None:
        return await _data_by_archives(services, target, target_kind, location, budget, ledger)
    if kind == "repository":
        # borg's slice is in whole seconds; a budget below one still reads one segment.
        slice_ = None if budget is None else max(1, int(budget))
        result = await services.borg.run(argv.check_repository(location, max_duration=slice_))
        return check_outcome.from_run(
            target, target_kind, kind, result.rc, result.logs, partial=slice_ is not None
        )
    command = argv.check_archives(location) if kind == "archives" else argv.check_data(location)
    try:
        async with asyncio.timeout(budget):
            result = await services.borg.run(command)
    except TimeoutError:
        # Stopped at its budget (the runner stopped borg): nothing found, nothing complete.
        return UNFINISHED
    return check_outcome.from_run(target, target_kind, kind, result.rc, result.logs)


async def _data_by_archives(
    services: Services,
    target: str,
    target_kind: str,
    location: str,
    budget: float,
    ledger: CheckLedger,
) -> Finding:
    """Verify the archives the data pass still lacks, newest first, within ``budget`` seconds.

    Each archive verified is remembered at once (a cut loses no more than the
    archive under way). Returns the finding (complete once none is left).
    """
    clock = services.clock
    deadline = clock.now() + timedelta(seconds=budget)
    archives = await list_archives(services, target, location)
    for name in to_verify(archives, ledger.verified(target)):
        left = (deadline - clock.now()).total_seconds()
        if left <= 0:
            break
        try:
            async with asyncio.timeout(left):
                result = await services.borg.run(argv.verify_archive(location, name))
        except TimeoutError:
            break
        except BorgIntegrityError as error:
            return check_outcome.from_error(target, target_kind, "data", error, archive=name)
        if result.rc != 0:
            return check_outcome.from_run(
                target, target_kind, "data", result.rc, result.logs, archive=name
            )
        ledger.add_verified(target, name, clock.now())
    complete = not to_verify(archives, ledger.verified(target))
    return Finding(ok=True, complete=complete, damage=False, error=None, archive=None)
