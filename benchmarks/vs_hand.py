"""(a) The nightly job against the same borg work typed by hand.

By hand, a night is ``borg create`` then ``borg delete`` of the archive that
falls out (known beforehand): two borg processes, nothing else. coffre's
night may cost little more (target: 1.10 times): no needless borg call, the
archive list from state, ``compact`` only when it frees real space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from benchmarks.common import (
    CHECKPOINT_INTERVAL,
    COMPRESSION,
    PREFIX,
    TIMEZONE,
    BorgCall,
    Figure,
    Night,
    Snapshot,
    Stopwatch,
    Wrapper,
    archive_names,
    borg_env,
    make_history,
    run,
)
from benchmarks.history import History
from benchmarks.nightly import Nights, check_night, comparison
from coffre.jobs.backup import archive_name

TARGET = 1.10


@dataclass
class HandSide:
    """borg typed by a person: ``borg create``, then ``borg delete`` of the one that falls out."""

    root: Path
    share: Path
    history: History
    borg: str
    name: str = "hand"
    last_archive: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.repo = self.root / "repo"
        self.base = self.root / "borg"
        self.snapshot = Snapshot(
            self.root.parent / "saved" / self.name, {"repo": self.repo, "base": self.base}
        )

    def build(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        env = borg_env(self.base)
        run([self.borg, "init", "--encryption=repokey-blake2", str(self.repo)], env)
        make_history(self.borg, env, self.repo, self.share, self.history.archives)
        self.snapshot.take()

    def reset(self) -> None:
        self.snapshot.restore()

    def _night(self, borg: str) -> Night:
        env = borg_env(self.base)
        tz = ZoneInfo(TIMEZONE)
        self.last_archive = archive_name(
            PREFIX, datetime.now(tz), {a.name for a in self.history.archives}
        )
        watch = Stopwatch()
        run(
            [
                borg,
                "create",
                "--one-file-system",
                "--exclude-caches",
                f"--compression={COMPRESSION}",
                f"--checkpoint-interval={CHECKPOINT_INTERVAL}",
                f"{self.repo}::{self.last_archive}",
                str(self.share),
            ],
            env,
        )
        run([borg, "delete", str(self.repo), self.history.dropped.name], env)
        return watch.stop()

    def night(self) -> Night:
        return self._night(self.borg)

    def check(self) -> str:
        names = archive_names(self.borg, borg_env(self.base), self.repo)
        return check_night(names, self.history, self.last_archive, self.name)

    def count(self, wrapper: Wrapper) -> tuple[list[BorgCall], Night]:
        wrapper.calls()
        night = self._night(str(wrapper.path))
        calls = wrapper.calls()
        self.check()
        self.reset()
        return calls, night


def figures(nights: Nights) -> list[Figure]:
    return comparison(nights, "(a) nightly job vs borg by hand", "coffre", "hand", TARGET)


def calls_figure(coffre_calls: list[BorgCall]) -> Figure:
    """The borg processes of coffre's night: those typed by hand, no more.

    On an unchanged share a night frees a few kilobytes: no ``compact``; the
    archive list is state's: no ``list``.
    """
    commands = [c.command for c in coffre_calls]
    return Figure(
        "(a) borg calls of coffre's night",
        " ".join(commands) or "none",
        "create delete",
        commands == ["create", "delete"],
    )
