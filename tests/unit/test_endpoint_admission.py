"""Which connections the metrics endpoint keeps when too many are open (observe.admission)."""

from __future__ import annotations

import pytest

from coffre.observe.admission import Admission, Limits, Slots

LIMITS = Limits(per_peer=4, room=8, ceiling=12, fresh=0.25)
LOCAL = "127.0.0.1"


def _open(slots: Slots[str], keys: list[str], peer: str, at: float) -> list[Admission[str]]:
    return [slots.admit(key, peer, at) for key in keys]


def test_a_peer_at_its_cap_loses_its_own_oldest_waiting_connection_not_anothers() -> None:
    slots: Slots[str] = Slots(LIMITS)
    slots.admit("other", "192.0.2.9", 0.0)
    _open(slots, ["a1", "a2", "a3", "a4"], "192.0.2.1", 1.0)
    admission = slots.admit("a5", "192.0.2.1", 2.0)
    assert admission == Admission(True, ("a1",))
    assert "other" in slots and "a1" not in slots and len(slots) == 5


def test_past_the_room_the_oldest_waiting_connection_of_any_peer_is_dropped() -> None:
    slots: Slots[str] = Slots(LIMITS)
    for index in range(8):  # eight peers, one connection each: no peer at its cap
        slots.admit(f"c{index}", f"192.0.2.{index}", float(index))
    admission = slots.admit("new", "198.51.100.1", 10.0)
    assert admission == Admission(True, ("c0",))
    assert len(slots) == 8


def test_a_connection_being_answered_is_never_dropped() -> None:
    slots: Slots[str] = Slots(LIMITS)
    _open(slots, ["scrape", "w1", "w2", "w3"], LOCAL, 0.0)
    slots.answering("scrape")
    assert slots.admit("w4", LOCAL, 1.0) == Admission(True, ("w1",))
    assert "scrape" in slots


def test_fresh_connections_are_kept_past_the_room_and_refused_only_at_the_ceiling() -> None:
    slots: Slots[str] = Slots(LIMITS)
    # One accept batch: twelve connections at once, none has had its head read yet.
    admissions = _open(slots, [f"c{i}" for i in range(12)], LOCAL, 5.0)
    assert all(a == Admission(True, ()) for a in admissions)
    assert slots.admit("c12", LOCAL, 5.1) == Admission(False, ())
    assert "c12" not in slots and len(slots) == 12
    # Once they are stale, a newcomer takes the oldest one's place.
    assert slots.admit("c13", LOCAL, 5.3) == Admission(True, ("c0", "c1"))
    assert len(slots) == 12 - 2 + 1


def test_a_flood_from_the_scrapers_own_address_never_drops_the_scrape() -> None:
    """Fifty local clients hold half-written requests on 127.0.0.1 and reconnect as soon as
    dropped (or cut at the 2 s head deadline); the agent's scrape, from the same address,
    lands in the middle of an accept batch and stays until answered."""
    slots: Slots[str] = Slots(Limits())
    opened: dict[str, float] = {}
    serial, reconnecting, scrape_seen = 0, 50, False
    for step in range(400):  # 4 s in turns of the loop of 10 ms
        now = step * 0.01
        for key in [k for k, at in opened.items() if now - at >= 2.0 and k in slots]:
            slots.leave(key)  # the head deadline
            reconnecting += 1
        batch = [f"flood{serial + i}" for i in range(reconnecting)]
        serial, reconnecting = serial + len(batch), 0
        if step == 300:
            batch.insert(len(batch) // 2, "scrape")
        for key in batch:
            admission = slots.admit(key, LOCAL, now)
            assert admission.admitted, (step, key)
            opened[key] = now
            reconnecting += len(admission.dropped)
            assert "scrape" not in admission.dropped
        if step == 301:  # read in the turn after its accept: answered
            assert "scrape" in slots
            slots.answering("scrape")
            scrape_seen = True
    assert scrape_seen and "scrape" in slots
    assert len(slots) <= Limits().ceiling


def test_leave_forgets_and_ignores_the_unknown() -> None:
    slots: Slots[str] = Slots(LIMITS)
    slots.admit("a", LOCAL, 0.0)
    slots.leave("a")
    slots.leave("a")
    slots.leave("never")
    slots.answering("never")
    assert len(slots) == 0


def test_a_key_opened_twice_and_inconsistent_limits_are_refused() -> None:
    slots: Slots[str] = Slots(LIMITS)
    slots.admit("a", LOCAL, 0.0)
    with pytest.raises(ValueError, match="already open"):
        slots.admit("a", LOCAL, 1.0)
    with pytest.raises(ValueError, match="inconsistent"):
        Slots(Limits(room=10, ceiling=5))
    with pytest.raises(ValueError, match="inconsistent"):
        Slots(Limits(per_peer=0))
