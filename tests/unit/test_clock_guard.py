"""coffre.guard.clock: when the clock is suspect, and the caller's loop over nights."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from coffre.core.model import Archive
from coffre.guard.clock import FUTURE, LEAP, ClockFinding, assess_clock, sane_reference

PARIS = ZoneInfo("Europe/Paris")
TOLERANCE = timedelta(minutes=60)
MAX_LEAP = timedelta(days=45)


def paris(text: str) -> datetime:
    """The aware instant of the Paris wall time ``text`` (``"2025-12-05 02:00"``)."""
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


def named(when: datetime, prefix: str = "box") -> Archive:
    """An archive made at ``when``, named as coffre names them (the local wall time)."""
    wall = when.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M:%S")
    return Archive(when.astimezone(UTC), f"{prefix}-{wall}")


@dataclass
class Box:
    """The lead's loop, simulated: a backup, then the guard, then ``last_sane`` updated."""

    tolerance: timedelta = TOLERANCE
    archives: list[Archive] = field(default_factory=list)
    last_sane: datetime | None = None
    acknowledged: frozenset[str] = frozenset()

    def check(self, now: datetime) -> ClockFinding | None:
        finding = assess_clock(
            self.archives,
            prefix="box",
            now=now,
            last_sane=self.last_sane,
            tolerance=self.tolerance,
            max_leap=MAX_LEAP,
            acknowledged=self.acknowledged,
        )
        self.last_sane = sane_reference(self.last_sane, now, finding)
        return finding

    def night(self, clock: datetime) -> ClockFinding | None:
        """The nightly backup at what the clock says, then the guard."""
        self.archives.append(named(clock))
        return self.check(clock + timedelta(minutes=20))

    def nights(self, first: date, count: int, at: str = "02:00") -> list[ClockFinding | None]:
        return [self.night(paris(f"{first + timedelta(days=k)} {at}")) for k in range(count)]


def quiet_box(first: date = date(2025, 11, 1), count: int = 10) -> Box:
    box = Box()
    assert box.nights(first, count) == [None] * count
    return box


# --- the scenarios, as the caller's loop lives them ----------------------------------------


def test_a_year_ahead_for_two_nights_then_back_fires_until_support_acknowledges() -> None:
    box = quiet_box()  # Nov 1 .. Nov 10, 2025
    before = box.last_sane
    year = timedelta(days=365)
    # Nov 11 and 12, the clock a year ahead: a leap from the last sane night, both times.
    ahead = [
        box.night(paris("2025-11-11 02:00") + year),
        box.night(paris("2025-11-12 02:00") + year),
    ]
    for finding in ahead:
        assert finding is not None
        assert finding.kinds == (LEAP,)
        assert finding.leap is not None and finding.leap > year
        assert finding.future_count == 0
    assert box.last_sane == before, "a suspect clock never becomes the reference"

    # Nov 13, the clock back: no leap, but the two archives made meanwhile are ahead.
    back = box.night(paris("2025-11-13 02:00"))
    assert back is not None
    assert back.kinds == (FUTURE,)
    assert back.future_count == 2
    assert timedelta(days=363) < back.future_ahead < timedelta(days=365)
    assert back.evidence == ("box-2026-11-12T02:00:00", "box-2026-11-11T02:00:00")
    assert box.night(paris("2025-11-14 02:00")) == ClockFinding(
        kinds=(FUTURE,),
        future_count=2,
        future_ahead=back.future_ahead - timedelta(days=1),
        leap=None,
        evidence=back.evidence,
    )

    # Support looks at them and acknowledges exactly those two names: clear, and it stays so.
    box.acknowledged = frozenset(back.evidence)
    assert box.nights(date(2025, 11, 15), 5) == [None] * 5


def test_a_box_booting_three_years_in_the_past_clears_when_ntp_sets_it_right() -> None:
    box = quiet_box()  # Nov 1 .. Nov 10, 2025
    # Nov 11, 01:00: the box boots without RTC at a date three years back and backs up.
    wrong = paris("2022-11-11 01:00")
    finding = box.night(wrong)
    assert finding is not None
    assert finding.kinds == (FUTURE,), "the clock went back: no leap"
    assert finding.future_count == 10
    assert finding.future_ahead > timedelta(days=3 * 365 - 1)
    # Every check while the clock is wrong says the same.
    assert box.check(wrong + timedelta(hours=1)) == ClockFinding(  # 40 min after the first
        kinds=(FUTURE,),
        future_count=10,
        future_ahead=finding.future_ahead - timedelta(minutes=40),
        leap=None,
        evidence=finding.evidence,
    )
    # NTP steps the clock to the true time: clear, no acknowledgement.
    assert box.acknowledged == frozenset()
    assert box.check(paris("2025-11-11 01:30")) is None
    assert box.nights(date(2025, 11, 11), 3) == [None] * 3


def test_a_practice_closed_four_weeks_in_august_is_no_finding() -> None:
    box = quiet_box(date(2025, 7, 1), 31)  # July, every night
    # Off from Aug 1 to Aug 28; back on Aug 29: 29 days since the last sane check.
    assert box.nights(date(2025, 8, 29), 5) == [None] * 5


def test_a_box_off_longer_than_max_leap_fires_once_and_support_clears_it() -> None:
    box = quiet_box(date(2025, 6, 1), 10)
    finding = box.night(paris("2025-08-01 02:00"))  # 51 days off
    assert finding is not None
    assert finding.kinds == (LEAP,)
    assert finding.figures()["leap_seconds"] > MAX_LEAP.total_seconds()
    # Support clears: the caller makes now the reference.
    box.last_sane = paris("2025-08-01 09:00")
    assert box.nights(date(2025, 8, 2), 3) == [None] * 3


def test_nights_across_both_dst_changes_and_an_ntp_step_are_no_finding() -> None:
    # Every night at 02:30 Paris from March 20 to November 5, 2026: 02:30 does not
    # exist on March 29 and happens twice on October 25.
    box = Box()
    assert box.nights(date(2026, 3, 20), 231, at="02:30") == [None] * 231
    # NTP corrects the clock two minutes back just after a backup.
    box.archives.append(named(paris("2026-11-06 02:30")))
    assert box.check(paris("2026-11-06 02:28")) is None
    assert box.nights(date(2026, 11, 7), 3, at="02:30") == [None] * 3


def test_without_a_tolerance_the_ntp_step_would_fire() -> None:
    # What the tolerance is for: the same two-minute step, none allowed.
    box = Box(tolerance=timedelta(0))
    box.archives.append(named(paris("2026-11-06 02:30")))
    finding = box.check(paris("2026-11-06 02:28"))
    assert finding is not None
    assert finding.kinds == (FUTURE,)
    assert finding.future_ahead == timedelta(minutes=2)


# --- assess_clock, one call at a time ----------------------------------------------------------


def assess(
    archives: list[Archive],
    now: datetime,
    last_sane: datetime | None = None,
    acknowledged: frozenset[str] = frozenset(),
) -> ClockFinding | None:
    return assess_clock(
        archives,
        prefix="box",
        now=now,
        last_sane=last_sane,
        tolerance=TOLERANCE,
        max_leap=MAX_LEAP,
        acknowledged=acknowledged,
    )


def test_both_findings_at_once() -> None:
    now = paris("2030-01-01 03:00")
    forged = named(paris("2031-06-01 02:00"))
    finding = assess([named(paris("2025-12-05 02:00")), forged], now, paris("2025-12-05 03:00"))
    assert finding is not None
    assert finding.kinds == (FUTURE, LEAP)
    assert finding.future_count == 1
    assert finding.future_ahead == forged.time - now
    assert finding.leap == now - paris("2025-12-05 03:00")


def test_the_figures_name_no_archive() -> None:
    now = paris("2025-12-05 03:00")
    forged = [named(paris("2030-01-01 02:00")), named(paris("2030-01-02 02:00"), "box")]
    finding = assess(forged, now, paris("2025-01-01 03:00"))
    assert finding is not None
    figures = finding.figures()
    assert set(figures) == {"future_archives", "future_ahead_seconds", "leap_seconds"}
    assert all(isinstance(v, int) for v in figures.values())
    assert figures["future_archives"] == 2
    assert figures["future_ahead_seconds"] == int((forged[1].time - now).total_seconds())
    assert figures["leap_seconds"] == int((now - paris("2025-01-01 03:00")).total_seconds())
    # The names are evidence on the box, apart.
    assert finding.evidence == tuple(a.name for a in reversed(forged))


def test_only_our_unacknowledged_archives_count_checkpoints_included() -> None:
    now = paris("2025-12-05 03:00")
    archives = [
        named(paris("2030-01-01 02:00"), "other"),
        named(paris("2030-01-01 02:00"), "boxer"),
        Archive(paris("2030-01-02 02:00"), "box-2030-01-02.checkpoint"),
        named(paris("2030-01-03 02:00")),
    ]
    finding = assess(archives, now)
    assert finding is not None
    assert finding.evidence == ("box-2030-01-03T02:00:00", "box-2030-01-02.checkpoint")
    acknowledged = frozenset({"box-2030-01-03T02:00:00", "other-2030-01-01T02:00:00"})
    finding = assess(archives, now, acknowledged=acknowledged)
    assert finding is not None
    assert finding.evidence == ("box-2030-01-02.checkpoint",)
    assert assess(archives, now, acknowledged=frozenset(a.name for a in archives)) is None


def test_the_edges_are_exclusive() -> None:
    now = paris("2025-12-05 03:00")
    at_tolerance = Archive(now + TOLERANCE, "box-x")
    assert assess([at_tolerance], now, now - MAX_LEAP) is None
    finding = assess([Archive(now + TOLERANCE + timedelta(seconds=1), "box-y")], now)
    assert finding is not None and finding.kinds == (FUTURE,)
    finding = assess([], now, now - MAX_LEAP - timedelta(seconds=1))
    assert finding is not None and finding.kinds == (LEAP,)


def test_never_seen_sane_is_no_leap() -> None:
    assert assess([named(paris("2025-12-05 02:00"))], paris("2030-01-01 03:00"), None) is None


def test_bad_arguments_are_refused() -> None:
    now = paris("2025-12-05 03:00")
    with pytest.raises(ValueError, match="aware"):
        assess([], datetime(2025, 12, 5, 3, 0))
    with pytest.raises(ValueError, match="aware"):
        assess([], now, datetime(2025, 12, 4, 3, 0))
    with pytest.raises(ValueError, match="aware"):
        assess([Archive(datetime(2025, 12, 5, 2, 0), "box-x")], now)
    with pytest.raises(ValueError, match="prefix"):
        assess_clock(
            [],
            prefix="",
            now=now,
            last_sane=None,
            tolerance=TOLERANCE,
            max_leap=MAX_LEAP,
            acknowledged=frozenset(),
        )
    for tolerance, max_leap in ((timedelta(seconds=-1), MAX_LEAP), (TOLERANCE, timedelta(0))):
        with pytest.raises(ValueError, match=r"negative|positive"):
            assess_clock(
                [],
                prefix="box",
                now=now,
                last_sane=None,
                tolerance=tolerance,
                max_leap=max_leap,
                acknowledged=frozenset(),
            )


# --- sane_reference -----------------------------------------------------------------------------


def test_the_reference_stays_while_suspect_and_follows_a_sane_clock_even_backwards() -> None:
    previous = paris("2025-12-05 03:00")
    finding = assess([], paris("2030-01-01 03:00"), previous)
    assert finding is not None
    assert sane_reference(previous, paris("2030-01-01 03:00"), finding) == previous
    assert sane_reference(previous, paris("2025-12-06 03:00"), None) == paris("2025-12-06 03:00")
    assert sane_reference(None, paris("2025-12-06 03:00"), None) == paris("2025-12-06 03:00")
    assert sane_reference(None, paris("2025-12-06 03:00"), finding) is None
    # Stepped back (a new box first seen in 2030, then set right): the reference follows,
    # so that the next jump ahead is measured from the true time.
    first_seen = paris("2030-01-01 03:00")
    assert sane_reference(first_seen, paris("2025-12-06 03:00"), None) == paris("2025-12-06 03:00")
    with pytest.raises(ValueError, match="aware"):
        sane_reference(None, datetime(2025, 12, 6, 3, 0), None)


def test_a_new_box_first_seen_ahead_then_set_right_still_sees_a_later_leap() -> None:
    box = Box()
    # A new box, its clock in 2030 at its first night: nothing to compare with.
    assert box.night(paris("2030-01-01 02:00")) is None
    # NTP sets it right; the 2030 archive is "future" until support acknowledges it.
    finding = box.check(paris("2025-12-05 03:00"))
    assert finding is not None and finding.kinds == (FUTURE,)
    box.acknowledged = frozenset(finding.evidence)
    assert box.nights(date(2025, 12, 6), 3) == [None] * 3
    assert box.last_sane is not None and box.last_sane < paris("2026-01-01 00:00")
    # Later the clock leaps a year ahead: seen, because the reference is the true time.
    later = box.night(paris("2026-12-09 02:00"))
    assert later is not None and later.kinds == (LEAP,)
