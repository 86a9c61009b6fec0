"""The share's desk: read points for backups, the versions' schedule and room, with fake folders.

The folders are an in-memory stand-in for :class:`coffre.consistency.versions.VersionFolders`
(each version holds ``SIZE`` bytes of a ``TOTAL``-byte filesystem); the quiet wait is the
real :class:`Quiescence` with a fake SMB count, clock and sleep; state is a real sqlite.
What btrfs and the filesystem do is tested against the real thing in
tests/integration/test_snapshots.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffre.consistency.gmt_names import name_of, taken_at
from coffre.consistency.layout import layout_of
from coffre.consistency.quiescence import Quiescence
from coffre.consistency.share_desk import ShareDesk
from coffre.consistency.version_kinds import VersionKinds
from coffre.core.config_types import Config, LocalTarget, QuiescenceConfig
from coffre.core.errors import SnapshotError, SnapshotNoSpace
from coffre.storage.state import State
from tests.fakes import Clock, config

# Monday 7 December 2026, 10:20 in Paris: within the office hours.
NOW = datetime(2026, 12, 7, 9, 20, tzinfo=UTC)
TOTAL = 1000
SIZE = 100
LOG = logging.getLogger("test-share-desk")


class Folders:
    """In-memory versions: name -> bytes held; a TOTAL-byte filesystem with ``used`` bytes."""

    def __init__(self, share: Path, *, used: int = 0, unusable: str | None = None) -> None:
        self.layout = layout_of([share])
        self.versions: dict[str, int] = {}
        self.used = used
        self.why = unusable
        self.full = False
        self.fail: Exception | None = None
        self.views: list[str] = []

    def unusable(self) -> str | None:
        return self.why

    def listed(self) -> tuple[tuple[str, datetime], ...]:
        found = [(n, taken_at(n)) for n in sorted(self.versions)]
        return tuple((n, t) for n, t in found if t is not None)

    def take(self, at: datetime) -> str:
        if self.fail is not None:
            raise self.fail
        if self.full:
            raise SnapshotNoSpace("no room")
        name = name_of(at)
        self.versions.setdefault(name, SIZE)
        return name

    def remove(self, name: str) -> None:
        self.versions.pop(name, None)
        self.full = False

    def free(self) -> tuple[int, int]:
        return TOTAL - self.used - sum(self.versions.values()), TOTAL

    def wait_freed(self, timeout: float) -> bool:
        return True

    def newest_change(self, versions: object) -> int:
        return int((NOW - timedelta(hours=1)).timestamp() * 1e9)

    def make_view(self, name: str, target: str) -> Path:
        self.views.append(target)
        return self.layout.view_root(target)

    def drop_view(self, target: str) -> bool:
        self.views.remove(target)
        return True

    def drop_all_views(self) -> list[str]:
        left, self.views = self.views, []
        return left


async def no_writer() -> int | None:
    return 0


async def no_sleep(seconds: float) -> None:
    return None


def desk(
    tmp_path: Path, folders: Folders, *, min_free_percent: int = 10
) -> tuple[ShareDesk, State, Config]:
    cfg = config(tmp_path, LocalTarget("local", tmp_path / "repo"))
    snapshots = dataclasses.replace(cfg.snapshots, min_free_percent=min_free_percent)
    cfg = dataclasses.replace(cfg, snapshots=snapshots)
    state = State.open(tmp_path / "state.db", logger=LOG, now=NOW)
    quiet = Quiescence(
        QuiescenceConfig(max_wait_seconds=60, quiet_seconds=30),
        cfg.source.paths,
        LOG,
        writers=no_writer,
        sleep=no_sleep,
        wall=lambda: NOW,
    )
    return ShareDesk(cfg, state, Clock(NOW), LOG, quiet, folders=lambda: folders), state, cfg


def test_a_backup_reads_a_quiet_snapshot_held_until_released(tmp_path: Path) -> None:
    folders = Folders(tmp_path / "share")
    share, state, cfg = desk(tmp_path, folders)

    async def run() -> None:
        point = await share.take_for_backup()
        assert point.consistency.method == "snapshot" and point.consistency.quiet
        [name] = point.versions.values()
        assert VersionKinds(state).of(folders.listed())[0].kind == "backup"
        # Held: room-making never takes it, even on a filesystem short of room.
        folders.used = TOTAL
        assert await share.make_room() == []
        async with share.view(point, "local") as view:
            assert view.cwd == folders.layout.view_root("local")
            assert view.paths == (str(cfg.source.paths[0])[1:],)
            assert folders.views == ["local"]
        assert folders.views == []
        share.release(point)
        assert await share.make_room() == [name]

    asyncio.run(run())


def test_without_usable_snapshots_the_backup_reads_the_live_share_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "share").mkdir()
    folders = Folders(tmp_path / "share", unusable="/x is not on a btrfs filesystem")
    share, _, _ = desk(tmp_path, folders)
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        point = asyncio.run(share.take_for_backup())
    assert point.versions == {} and point.consistency.method == "live"
    assert point.consistency.why_live == "/x is not on a btrfs filesystem"
    assert "backup reads the live share: /x is not on a btrfs filesystem" in caplog.text
    survey = asyncio.run(share.survey())
    assert survey.why_not == "/x is not on a btrfs filesystem" and survey.versions == ()


def test_a_snapshot_that_fails_falls_back_to_the_live_share(tmp_path: Path) -> None:
    (tmp_path / "share").mkdir()
    folders = Folders(tmp_path / "share")
    folders.fail = SnapshotError("the ioctl said no")
    share, _, _ = desk(tmp_path, folders)
    point = asyncio.run(share.take_for_backup())
    assert point.consistency.method == "live"
    assert point.consistency.why_live == "the snapshot failed: the ioctl said no"


def test_a_full_filesystem_gives_one_version_up_and_the_snapshot_is_taken(tmp_path: Path) -> None:
    folders = Folders(tmp_path / "share")
    old = name_of(NOW - timedelta(hours=3))
    folders.versions[old] = SIZE
    folders.full = True
    share, _, _ = desk(tmp_path, folders)
    point = asyncio.run(share.take_for_backup())
    assert point.consistency.method == "snapshot"
    assert old not in folders.versions and list(point.versions.values()) == [name_of(NOW)]


def test_room_is_made_oldest_first_until_the_free_share_is_reached(tmp_path: Path) -> None:
    folders = Folders(tmp_path / "share", used=550)
    names = [name_of(NOW - timedelta(hours=h)) for h in (5, 4, 3, 2)]
    for name in names:
        folders.versions[name] = SIZE
    share, _, _ = desk(tmp_path, folders, min_free_percent=20)
    removed = asyncio.run(share.make_room())
    # 550 + 400 used: 50 free; each version gives 100 back; 200 free is 20 %.
    assert removed == names[:2]


def test_tending_takes_the_office_version_due_and_removes_the_expired_ones(
    tmp_path: Path,
) -> None:
    folders = Folders(tmp_path / "share")
    expired = name_of(NOW - timedelta(days=5))
    recent = name_of(NOW - timedelta(hours=5))
    folders.versions.update({expired: SIZE, recent: SIZE})
    share, state, _ = desk(tmp_path, folders)
    asyncio.run(share.tend())
    assert expired not in folders.versions and recent in folders.versions
    office = [v for v in VersionKinds(state).of(folders.listed()) if v.name == name_of(NOW)]
    assert office and office[0].kind == "office"
    # The same slot does not take a second one.
    before = dict(folders.versions)
    asyncio.run(share.tend())
    assert folders.versions == before


def test_a_killed_run_s_views_are_removed_at_start(tmp_path: Path) -> None:
    folders = Folders(tmp_path / "share")
    folders.views = ["local", "disque-a"]
    share, _, _ = desk(tmp_path, folders)
    asyncio.run(share.clean_up_at_start())
    assert folders.views == []


def test_no_office_version_is_taken_on_a_filesystem_short_of_room(tmp_path: Path) -> None:
    # The share's own data fills it: a new version would only push older ones out.
    folders = Folders(tmp_path / "share", used=950)
    share, _, _ = desk(tmp_path, folders)
    asyncio.run(share.tend())
    assert folders.versions == {}
