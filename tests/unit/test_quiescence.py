"""The quiet wait: SMB writers and recent changes hold the snapshot back, within a bound."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from coffre.consistency.quiescence import Quiescence, Versions
from coffre.core.config_types import QuiescenceConfig

T0 = datetime(2026, 12, 6, 0, 30, tzinfo=UTC)
LOG = logging.getLogger("test")


class Time:
    """A fake monotonic and wall clock that only the fake sleep moves."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.elapsed

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.elapsed)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.elapsed += seconds


def counts(*values: int | None) -> Iterator[int | None]:
    yield from values
    while True:
        yield values[-1]


class Share:
    """Fake snapshots: each take is recorded; the newest change is what the test says."""

    def __init__(self, clock: Time, change_at: list[datetime]) -> None:
        self.clock, self.change_at = clock, change_at
        self.taken: list[datetime] = []
        self.dropped: list[Versions] = []

    async def take(self, at: datetime) -> Versions:
        self.taken.append(at)
        return {Path("/srv/p"): f"v{len(self.taken)}"}

    async def drop(self, versions: Versions) -> None:
        self.dropped.append(versions)

    def newest(self, versions: Versions) -> int:
        index = len(self.taken) - 1
        return int(self.change_at[min(index, len(self.change_at) - 1)].timestamp() * 1e9)


def waiting(clock: Time, writers: Iterator[int | None], **config: int) -> Quiescence:
    async def count() -> int | None:
        return next(writers)

    return Quiescence(
        QuiescenceConfig(**config),  # type: ignore[arg-type]
        [Path("/srv/p")],
        LOG,
        writers=count,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        wall=clock.wall,
    )


def test_the_snapshot_waits_for_the_last_smb_writer_then_is_taken_once() -> None:
    clock = Time()
    share = Share(clock, [T0 - timedelta(hours=1)])
    quiet = waiting(clock, counts(2, 1, 0), max_wait_seconds=900, quiet_seconds=30)
    point = asyncio.run(quiet.snapshot(share.take, share.drop, share.newest))
    assert len(share.taken) == 1 and share.taken[0] == T0 + timedelta(seconds=4)
    assert point.consistency.quiet and point.consistency.method == "snapshot"
    assert point.consistency.waited == 4 and point.versions == {Path("/srv/p"): "v1"}
    assert share.dropped == []


def test_a_snapshot_with_a_change_just_before_it_is_dropped_and_taken_again_once_quiet() -> None:
    clock = Time()
    # The first snapshot holds a change 10 s old; the second nothing newer.
    share = Share(clock, [T0 - timedelta(seconds=10), T0 - timedelta(seconds=10)])
    quiet = waiting(clock, counts(0), max_wait_seconds=900, quiet_seconds=30)
    point = asyncio.run(quiet.snapshot(share.take, share.drop, share.newest))
    assert share.dropped == [{Path("/srv/p"): "v1"}]
    assert clock.slept == [20.0]  # until the change is 30 s old, not a poll loop
    assert point.consistency.quiet and point.versions == {Path("/srv/p"): "v2"}


def test_past_the_bound_the_snapshot_is_taken_anyway_and_said_not_quiet() -> None:
    clock = Time()
    share = Share(clock, [T0 - timedelta(hours=1)])
    quiet = waiting(clock, counts(1), max_wait_seconds=10, quiet_seconds=30)
    point = asyncio.run(quiet.snapshot(share.take, share.drop, share.newest))
    assert not point.consistency.quiet and point.consistency.writers == 1
    assert point.consistency.waited >= 10 and len(share.taken) == 1
    assert sum(clock.slept) <= 10


def test_no_wait_at_all_when_the_bound_is_zero() -> None:
    clock = Time()
    share = Share(clock, [T0])
    quiet = waiting(clock, counts(3), max_wait_seconds=0, quiet_seconds=30)
    point = asyncio.run(quiet.snapshot(share.take, share.drop, share.newest))
    assert clock.slept == [] and not point.consistency.quiet


def test_the_live_share_is_quiet_once_its_newest_change_is_old_enough(tmp_path: Path) -> None:
    (tmp_path / "dossier").mkdir()
    (tmp_path / "dossier" / "lettre.odt").write_bytes(b"x")
    clock = Time()
    # The wall clock an hour after the files' real change times: they are old.
    quiet = live_waiting(tmp_path, clock, max_wait=60, ahead=timedelta(hours=1))
    read = asyncio.run(quiet.live("not btrfs"))
    assert read.quiet and read.method == "live" and read.why_live == "not btrfs"
    assert clock.slept == []


def test_the_live_share_just_written_is_waited_for_up_to_the_bound(tmp_path: Path) -> None:
    (tmp_path / "lettre.odt").write_bytes(b"x")
    clock = Time()
    quiet = live_waiting(tmp_path, clock, max_wait=5, ahead=timedelta(0))
    read = asyncio.run(quiet.live("not btrfs"))
    assert not read.quiet and read.waited >= 5 and sum(clock.slept) == 5


async def _none() -> int | None:
    return None


def live_waiting(share: Path, clock: Time, *, max_wait: int, ahead: timedelta) -> Quiescence:
    """The wait over the real folder ``share`` (Samba unknown), the wall clock ``ahead``
    of the kernel's, a 30 s quiet window."""
    return Quiescence(
        QuiescenceConfig(max_wait_seconds=max_wait, quiet_seconds=30),
        [share],
        LOG,
        writers=_none,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        wall=lambda: datetime.now(UTC) + ahead,
    )


def test_a_shorter_bound_given_for_a_disk_s_backup_wins_over_the_configured_one() -> None:
    clock = Time()
    share = Share(clock, [T0 - timedelta(hours=1)])
    quiet = waiting(clock, counts(1), max_wait_seconds=900, quiet_seconds=30)
    point = asyncio.run(quiet.snapshot(share.take, share.drop, share.newest, bound=6))
    assert not point.consistency.quiet and 6 <= point.consistency.waited < 900
    assert sum(clock.slept) <= 6
