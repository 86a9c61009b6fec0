"""The ransomware signal on the real borg 1.4.5: 60 normal days give none, an attack gives one."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffre.borg import argv, parse
from coffre.borg.env import BorgEnvironment
from coffre.borg.runner import BorgResult, BorgRunner
from coffre.core.config_types import GuardConfig
from coffre.guard.canaries import CanaryRecord
from coffre.guard.night import Assessment, Baseline, assess
from tests.integration.practice_share import PracticeShare
from tests.parts import binary

pytestmark = pytest.mark.borg

START = datetime(2026, 10, 1, 1, 30, tzinfo=UTC)


class Nights:
    """Nightly backups of one share to one repository, each judged like coffre judges it."""

    def __init__(self, tmp_path: Path, share: PracticeShare) -> None:
        self.share = share
        self.cache = tmp_path / "borg-cache"
        env = BorgEnvironment(binary("borg"), tmp_path / "borg-base", self.cache)
        passphrase = secrets.token_urlsafe(24).encode()
        self.runner = BorgRunner(
            env,
            lambda: passphrase,
            lock_wait=1,
            stop_timeout=30.0,
            logger=logging.getLogger("coffre.test.signal"),
        )
        self.repo = str(tmp_path / "repo")
        asyncio.run(self.runner.run(argv.init(self.repo, encryption="repokey-blake2")))
        self.baseline: Baseline | None = None
        self.canaries: CanaryRecord | None = None
        self.rng = random.Random(12)
        self.last: BorgResult | None = None

    def night(self, day: int) -> Assessment:
        """Back the share up as on night ``day`` and assess it; the next night's baseline."""
        now = START + timedelta(days=day)
        args = argv.create(
            self.repo,
            f"cabinet-{day:03d}",
            [str(self.share.root)],
            compression="lz4",
            checkpoint_interval=1800,
            progress=False,
            list_changed=True,
        )
        self.last = asyncio.run(self.runner.run(args))
        stats = parse.create(self.last.json())
        result = assess(
            GuardConfig(),
            [self.share.root],
            files=stats.nfiles,
            original_bytes=stats.original_size,
            new_bytes=stats.deduplicated_size,
            statuses=self.last.file_statuses,
            baseline=self.baseline,
            canaries=self.canaries,
            now=now,
            rng=self.rng,
        )
        self.baseline = Baseline(stats.nfiles, now)
        self.canaries = result.canaries
        return result

    def lose_files_cache(self) -> None:
        """Remove borg's files cache, as a rebuilt cache directory would."""
        caches = list(self.cache.rglob("files"))
        assert caches, "no files cache found"
        for path in caches:
            path.unlink()


@pytest.fixture
def share(tmp_path: Path) -> PracticeShare:
    made = PracticeShare(tmp_path / "partage", random.Random(2026))
    made.build()
    return made


def test_the_runner_keeps_borgs_statuses_of_changed_files(
    tmp_path: Path, share: PracticeShare
) -> None:
    nights = Nights(tmp_path, share)
    before = share.files()
    nights.night(0)  # the canaries are planted after this backup
    first = nights.last
    assert first is not None
    # Every regular file of the share is new to the first backup; paths as given (absolute).
    assert Counter(s.status for s in first.file_statuses) == {"A": len(before)}
    assert {s.path for s in first.file_statuses} == {str(share.root / p) for p in before}
    assert parse.create(first.json()).nfiles == len(before)
    edited = share.files()[10]
    (share.root / edited).write_bytes(share.content("txt"))
    nights.night(1)
    assert nights.last is not None
    statuses = {s.path: s.status for s in nights.last.file_statuses}
    assert statuses[str(share.root / edited)] == "M"
    # The canaries planted after the first night are new to the second.
    assert sum(1 for p in statuses if "!COFFRE-TEMOIN" in p) == 5


def test_sixty_days_of_normal_churn_give_no_signal(tmp_path: Path, share: PracticeShare) -> None:
    nights = Nights(tmp_path, share)
    false_positives = []
    most_rewritten = 0.0
    for day in range(61):
        if day == 20:
            share.software_update(500)
        elif day > 0:
            share.normal_day(day)
        if day == 40:
            nights.lose_files_cache()
        result = nights.night(day)
        if result.signal is not None:
            false_positives.append((day, result.signal.reasons, result.signal.figures))
        figures = result.figures
        if day and day != 40:
            most_rewritten = max(most_rewritten, (figures.added + figures.modified) / figures.files)
        if day == 40:
            assert figures.lost_files_cache, figures
        if day == 60:
            assert figures.canaries_checked == 5 and figures.sampled > 0
    assert false_positives == []
    # The software update is the busiest night, and it stays under the 30 % rule.
    assert 0.15 < most_rewritten < 0.30


def test_a_ransomware_night_gives_a_signal_with_every_reason(
    tmp_path: Path, share: PracticeShare
) -> None:
    nights = Nights(tmp_path, share)
    assert nights.night(0).signal is None
    share.normal_day(1)
    assert nights.night(1).signal is None
    victims = share.ransomware(0.5)
    assert sum(1 for v in victims if v.name.startswith("!COFFRE")) == 5
    result = nights.night(2)
    assert result.signal is not None
    assert result.signal.reasons == (
        "canary",
        "encrypted_sample",
        "rewritten",
        "vanished",
        "new_data",
    )
    figures = result.figures
    assert figures.canaries_touched == 5
    assert figures.sampled == GuardConfig().sample_files
    # Nearly all: a file borg lists A although untouched (the newest ctime of the last
    # night is never memorised) may be drawn, and is rightly not suspect.
    assert figures.suspects >= 0.95 * figures.sampled
    assert figures.vanished >= len(victims) - 5
    assert any(line.startswith("canary missing: ") for line in result.evidence)
    # No file name in what leaves the box.
    assert all(isinstance(v, int | float) for v in result.signal.figures.values())
