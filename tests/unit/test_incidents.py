"""The incident store: what froze pruning stays in state until it is cleared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coffre.guard.incidents import (
    CLOCK,
    MAX_EVIDENCE,
    MAX_SIGHTINGS,
    RANSOMWARE,
    IncidentStore,
)

T0 = datetime(2026, 12, 6, 1, 30, tzinfo=UTC)


class Meta:
    """State's meta table, in memory."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get_meta(self, key: str) -> str | None:
        return self.values.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self.values[key] = value


def test_a_first_sighting_opens_the_incident_and_a_second_adds_to_it() -> None:
    store = IncidentStore(Meta())
    first, opened = store.sight(
        RANSOMWARE, at=T0, target="local", reasons=("canary",), figures={"canaries_touched": 2}
    )
    assert opened and first.opened_at == T0 and first.reasons == ("canary",)
    second, opened = store.sight(
        RANSOMWARE,
        at=T0 + timedelta(days=1),
        target="hds",
        reasons=("encrypted_sample", "canary"),
        figures={"suspects": 40},
    )
    assert not opened
    assert second.opened_at == T0
    assert second.reasons == ("canary", "encrypted_sample")
    assert [s.target for s in second.sightings] == ["local", "hds"]
    assert store.open_incidents() == (second,)


def test_incidents_survive_a_new_store_over_the_same_state() -> None:
    meta = Meta()
    IncidentStore(meta).sight(
        CLOCK,
        at=T0,
        target="local",
        reasons=("future",),
        figures={"future_archives": 1},
        evidence=("archive dated in the future: cabinet-2030-01-01T01:30:00",),
    )
    again = IncidentStore(meta).get(CLOCK)
    assert again is not None
    assert again.latest.figures == {"future_archives": 1}
    assert again.evidence == ("archive dated in the future: cabinet-2030-01-01T01:30:00",)


def test_close_returns_what_was_open_and_the_store_forgets_it() -> None:
    store = IncidentStore(Meta())
    store.sight(RANSOMWARE, at=T0, target="local", reasons=("vanished",), figures={})
    closed = store.close(RANSOMWARE)
    assert closed is not None and closed.kind == RANSOMWARE
    assert store.get(RANSOMWARE) is None
    assert store.open_incidents() == ()
    assert store.close(RANSOMWARE) is None


def test_both_kinds_open_at_once_are_listed_ransomware_first() -> None:
    store = IncidentStore(Meta())
    store.sight(CLOCK, at=T0, target="local", reasons=("leap",), figures={})
    store.sight(RANSOMWARE, at=T0, target="local", reasons=("canary",), figures={})
    assert [i.kind for i in store.open_incidents()] == [RANSOMWARE, CLOCK]


def test_a_long_incident_keeps_its_first_sighting_and_the_latest_ones() -> None:
    store = IncidentStore(Meta())
    for day in range(MAX_SIGHTINGS + 10):
        incident, _ = store.sight(
            RANSOMWARE,
            at=T0 + timedelta(days=day),
            target="local",
            reasons=("rewritten",),
            figures={"day": day},
            evidence=[f"day {day} line {n}" for n in range(50)],
        )
    assert len(incident.sightings) == MAX_SIGHTINGS
    assert incident.sightings[0].figures == {"day": 0}
    assert incident.latest.figures == {"day": MAX_SIGHTINGS + 9}
    assert len(incident.evidence) == MAX_EVIDENCE
    assert incident.evidence[0] == "day 0 line 0"


def test_a_damaged_record_still_freezes_pruning() -> None:
    meta = Meta()
    meta.set_meta("guard.incident.ransomware", "{not json")
    found = IncidentStore(meta).get(RANSOMWARE)
    assert found is not None and found.reasons == ("unreadable",)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown incident kind"):
        IncidentStore(Meta()).sight("meteor", at=T0, target="local", reasons=(), figures={})


def test_evidence_seen_again_is_kept_once() -> None:
    store = IncidentStore(Meta())
    for day in range(3):
        incident, _ = store.sight(
            CLOCK,
            at=T0 + timedelta(days=day),
            target="local",
            reasons=("future",),
            figures={},
            evidence=("archive dated in the future: cabinet-2030-01-01T01:30:00",),
        )
    assert incident.evidence == ("archive dated in the future: cabinet-2030-01-01T01:30:00",)
    assert len(incident.sightings) == 3
