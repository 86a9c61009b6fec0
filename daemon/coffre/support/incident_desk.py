"""``coffre incident show|clear``: what froze pruning, and a person resuming it; audited.

Showing an incident shows its evidence, which may name files of the share
(patient data): it is recorded in the audit log like any read. Clearing one
is a decision only a person makes, with a reason: the audit log records who
and why, before anything changes (an unrecordable clear is refused).

Clearing the ``ransomware`` incident makes the next backup of each target a
new baseline (a share restored after an attack is rewritten on purpose) and
plants again the canaries that are missing. Clearing the ``clock`` incident
acknowledges the archives dated in the future (retention keeps them aside;
the clock guard stops counting them) and takes now as a sane time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from coffre.core.clock import Clock
from coffre.core.config_types import Config
from coffre.core.errors import CoffreError, UsageError
from coffre.core.messages import Client, IncidentClearRequest, Person, Send
from coffre.guard import freeze
from coffre.guard.canaries import CanaryRecord, ensure_canaries
from coffre.guard.incidents import CLOCK, KINDS, RANSOMWARE, Incident, IncidentStore
from coffre.jobs.change_watch import CANARIES_KEY, CLEARED_KEY, figures_key
from coffre.jobs.pruning import all_targets
from coffre.jobs.services import Services
from coffre.storage import logs
from coffre.storage.audit import AuditLog, AuditUnavailable


class IncidentDesk:
    """Serves ``incident_show`` and ``incident_clear`` over state and the audit log."""

    def __init__(self, services: Services, audit: AuditLog) -> None:
        self._services = services
        self._audit = audit

    @property
    def _config(self) -> Config:
        return self._services.config

    @property
    def _clock(self) -> Clock:
        return self._services.clock

    @property
    def _logger(self) -> logging.Logger:
        return self._services.logger

    async def show(self, send: Send, client: Client) -> None:
        """Send the open incidents with their evidence, and each target's latest figures.

        Audited (the evidence may name patient files). Raises AuditUnavailable.
        """
        state = self._services.state
        self._record("incident_show", Person(), client, "ok", {})
        incidents = IncidentStore(state).open_incidents()
        nights: dict[str, Any] = {}
        for target in all_targets(self._services):
            raw = state.get_meta(figures_key(target))
            if raw:
                nights[target] = raw
        await send(
            {
                "event": "result",
                "ok": True,
                "incidents": [i.as_json(with_evidence=True) for i in incidents],
                "nights": nights,
            }
        )

    async def clear(self, request: IncidentClearRequest, send: Send, client: Client) -> None:
        """Clear the incident ``request`` names (or the only one open), for its reason.

        Raises UsageError (no incident open, an unknown kind, two open and
        none named) and AuditUnavailable when the request cannot be recorded
        (nothing cleared then); an outcome line that cannot be written after
        the clear is an ERROR log line, not a failure.
        """
        store = IncidentStore(self._services.state)
        incident = _chosen(store, request.kind)
        person = request.person or Person()
        details = {"kind": incident.kind, "why": request.why}
        self._record("incident_clear", person, client, "asked", details)
        store.close(incident.kind)
        done = self._after_clear(incident)
        self._logger.warning(
            "%s incident cleared by %s: %s; pruning may resume%s",
            incident.kind,
            person.user or person.login or f"uid {client.uid}",
            request.why,
            "" if not done else f" ({done})",
            extra={"MESSAGE_ID": logs.MSG_GUARD_CLEARED, "COFFRE_INCIDENT": incident.kind},
        )
        try:
            self._record("incident_clear", person, client, "ok", {**details, "done": done})
        except AuditUnavailable as error:
            # The clear happened and its "asked" line stands: saying "nothing was
            # done" now would be false. The missing outcome line is said loudly.
            self._logger.error("%s; the clear itself was done and its request recorded", error)
        await send({"event": "result", "ok": True, "cleared": incident.kind, "done": done})

    def _after_clear(self, incident: Incident) -> str:
        """What clearing ``incident`` does besides closing it; returns it said in words."""
        services, now = self._services, self._clock.now()
        state = services.state
        if incident.kind == CLOCK:
            future = freeze.acknowledge_future(
                state, self._config.guard, now, all_targets(services)
            )
            return f"{len(future)} archive(s) dated in the future acknowledged" if future else ""
        state.set_time(CLEARED_KEY, now)
        baseline = "the next backup of each target is the new baseline"
        if not self._config.guard.canaries:
            return baseline
        raw = state.get_meta(CANARIES_KEY)
        try:
            record = ensure_canaries(
                self._config.source.paths,
                CanaryRecord.from_json(raw) if raw else None,
                replant=True,
            )
        except CoffreError as error:
            # Cleared all the same (the person decided); the share is the backup's
            # business, which fails visibly while it cannot be read.
            return f"{baseline}; canaries NOT planted again: {error.message}"
        state.set_meta(CANARIES_KEY, record.to_json())
        return f"{baseline}; canaries planted again"

    def _record(
        self,
        op: str,
        person: Person,
        client: Client,
        outcome: str,
        details: Mapping[str, object],
    ) -> None:
        try:
            self._audit.record(
                op=op,
                at=self._clock.now(),
                person=person.audited(client.uid, client.pid),
                target=None,
                archive=None,
                paths=[],
                outcome=outcome,
                details=dict(details),
            )
        except OSError as error:
            raise AuditUnavailable.writing(op, self._audit.path, error) from error


def _chosen(store: IncidentStore, kind: str | None) -> Incident:
    """The incident a clear names, or the only one open. Raises UsageError."""
    if kind is not None and kind not in KINDS:
        raise UsageError(f"unknown incident kind {kind!r}", hint=f"write {RANSOMWARE} or {CLOCK}")
    open_now = store.open_incidents()
    if kind is not None:
        found = store.get(kind)
        if found is None:
            raise UsageError(f"no {kind} incident is open", hint="see `coffre incident show`")
        return found
    if not open_now:
        raise UsageError("no incident is open: pruning is not frozen", hint="nothing to clear")
    if len(open_now) > 1:
        raise UsageError(
            "a ransomware and a clock incident are both open",
            hint="clear them one at a time: "
            "`coffre incident clear --kind ransomware|clock --why ...`",
        )
    return open_now[0]
