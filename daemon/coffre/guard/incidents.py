"""Incidents: what froze pruning, kept in state until it is cleared.

Two kinds, each open at most once (a new sighting while open is added to it):

- ``ransomware``: the change signal of a backup (:mod:`coffre.guard.night`)
  saw mass encryption, renaming or deletion, or a canary touched. Only a
  person clears it (``coffre incident clear``, audited): nothing on the box
  can tell a practice's recovery from the attack going on.
- ``clock``: the clock guard (:mod:`coffre.guard.clock`) saw an archive dated
  in the future or the clock leap far ahead. It closes by itself once the
  clock is sane again, or when a person clears it (the archives then in the
  future are acknowledged: retention sets them aside, the guard no longer
  counts them).

While an incident is open, no archive is deleted on any target (local, USB
disks, offsite): see :mod:`coffre.guard.freeze`. Backups, restores and
browsing go on.

An incident keeps counts and figures (shown in status, metrics and the
journal) apart from its evidence: human lines that may name files of the
share, shown only on the box by ``coffre incident show``.

Stored as JSON in state's meta table (``guard.incident.<kind>``): a few
kilobytes, bounded by MAX_SIGHTINGS and MAX_EVIDENCE.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

RANSOMWARE = "ransomware"
CLOCK = "clock"
KINDS = (RANSOMWARE, CLOCK)

#: Sightings kept per incident: the first (what opened it) and the latest ones.
MAX_SIGHTINGS = 30
#: Evidence lines kept per incident (the first ones: what opened it matters most).
MAX_EVIDENCE = 400

Figures = Mapping[str, int | float]

_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


class MetaStore(Protocol):
    """The part of :class:`coffre.storage.state.State` incidents are kept in."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class Sighting:
    """One time the guard saw it: when, on which target, why, with which figures."""

    at: datetime
    target: str
    reasons: tuple[str, ...]
    figures: Mapping[str, int | float]

    def as_json(self) -> dict[str, Any]:
        """JSON form (times ISO 8601)."""
        return {
            "at": self.at.isoformat(),
            "target": self.target,
            "reasons": list(self.reasons),
            "figures": dict(self.figures),
        }


@dataclass(frozen=True)
class Incident:
    """An open incident: its kind, when it opened, its sightings (first first), its evidence."""

    kind: str
    opened_at: datetime
    sightings: tuple[Sighting, ...]
    evidence: tuple[str, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """Every reason seen, in the order first seen."""
        seen: dict[str, None] = {}
        for sighting in self.sightings:
            seen.update(dict.fromkeys(sighting.reasons))
        return tuple(seen)

    @property
    def latest(self) -> Sighting:
        """The latest sighting."""
        return self.sightings[-1]

    def as_json(self, *, with_evidence: bool) -> dict[str, Any]:
        """JSON form; ``with_evidence`` adds the evidence lines (for the box only)."""
        body: dict[str, Any] = {
            "kind": self.kind,
            "opened_at": self.opened_at.isoformat(),
            "reasons": list(self.reasons),
            "sightings": [s.as_json() for s in self.sightings],
        }
        if with_evidence:
            body["evidence"] = list(self.evidence)
        return body


class IncidentStore:
    """The open incidents, in state. Raises StateError (from state) on a failed write."""

    def __init__(self, meta: MetaStore) -> None:
        self._meta = meta

    def get(self, kind: str) -> Incident | None:
        """The open incident of ``kind``, or None. A damaged record counts as open.

        A record state cannot read back must not silently resume pruning: it
        reads as an incident whose only reason is ``unreadable``.
        """
        raw = self._meta.get_meta(_key(kind))
        if not raw:
            return None
        try:
            return _incident(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            unread = Sighting(_EPOCH, "", ("unreadable",), {})
            return Incident(kind, _EPOCH, (unread,), ())

    def open_incidents(self) -> tuple[Incident, ...]:
        """Every open incident (ransomware first)."""
        found = (self.get(kind) for kind in KINDS)
        return tuple(i for i in found if i is not None)

    def sight(
        self,
        kind: str,
        *,
        at: datetime,
        target: str,
        reasons: Sequence[str],
        figures: Figures,
        evidence: Sequence[str] = (),
    ) -> tuple[Incident, bool]:
        """Record a sighting of ``kind``: opens the incident, or adds to the open one.

        Returns the incident as stored and whether it was just opened.
        Raises ValueError for an unknown kind, StateError when state cannot write.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown incident kind {kind!r}")
        sighting = Sighting(at, target, tuple(reasons), dict(figures))
        current = self.get(kind)
        if current is None:
            incident = Incident(kind, at, (sighting,), tuple(evidence)[:MAX_EVIDENCE])
        else:
            sightings = (*current.sightings, sighting)
            if len(sightings) > MAX_SIGHTINGS:
                sightings = (sightings[0], *sightings[-(MAX_SIGHTINGS - 1) :])
            room = MAX_EVIDENCE - len(current.evidence)
            # The same archive ahead is seen at every retention: said once.
            known = set(current.evidence)
            fresh = [line for line in evidence if line not in known]
            incident = Incident(
                kind,
                current.opened_at,
                sightings,
                (*current.evidence, *fresh[: max(room, 0)]),
            )
        self._meta.set_meta(_key(kind), json.dumps(incident.as_json(with_evidence=True)))
        return incident, current is None

    def close(self, kind: str) -> Incident | None:
        """Close the incident of ``kind``; return what it was (None: none was open)."""
        current = self.get(kind)
        if current is not None:
            self._meta.set_meta(_key(kind), "")
        return current


def _key(kind: str) -> str:
    return f"guard.incident.{kind}"


def _incident(body: Mapping[str, Any]) -> Incident:
    sightings = tuple(
        Sighting(
            datetime.fromisoformat(s["at"]),
            str(s["target"]),
            tuple(str(r) for r in s["reasons"]),
            {str(k): v for k, v in dict(s["figures"]).items() if isinstance(v, int | float)},
        )
        for s in body["sightings"]
    )
    return Incident(
        str(body["kind"]),
        datetime.fromisoformat(body["opened_at"]),
        sightings,
        tuple(str(line) for line in body.get("evidence", ())),
    )
