"""(b) The nightly job against borgmatic 2.x doing create, prune and compact.

borgmatic gets its own repository, built with the same history, the same
share and the same borg options (compression, checkpoint interval,
one file system, caches excluded), and ``keep_daily: 3, keep_monthly: 2``.
Its prune is borg's (the *last* archive of a month, where coffre keeps the
first): the archives it drops may differ, the figure is the time. coffre's
night must take 0.75 times borgmatic's or less.

borgmatic's ``bootstrap.store_config_files`` is turned off so that its
archives hold the share alone, as the other sides' do (it would add its
configuration and a manifest to each archive: more work for borgmatic).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.harness import PASSPHRASE

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
    venv_binary,
)
from benchmarks.history import History
from benchmarks.nightly import Nights, check_night, comparison

TARGET = 0.75
VERSION = "2.1.10"
ACTIONS = ("create", "prune", "compact")


@dataclass
class BorgmaticSide:
    """``borgmatic create prune compact`` on its own repository."""

    root: Path
    share: Path
    history: History
    borg: str
    name: str = "borgmatic"
    last_archive: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.borgmatic = venv_binary("borgmatic")
        self.repo = self.root / "repo"
        self.base = self.root / "borg"
        self.config = self.root / "borgmatic.yaml"
        self.snapshot = Snapshot(
            self.root.parent / "saved" / self.name,
            {"repo": self.repo, "base": self.base, "state": self.root / "state"},
        )

    def version(self) -> str:
        return run([self.borgmatic, "--version"], os.environ).stdout.strip()

    def write_config(self, borg: str) -> None:
        """borgmatic's configuration (JSON is YAML), running ``borg``."""
        for directory in ("run", "state", "home"):
            (self.root / directory).mkdir(parents=True, exist_ok=True)
        config = {
            "source_directories": [str(self.share)],
            "repositories": [{"path": str(self.repo), "label": "local"}],
            "encryption_passphrase": PASSPHRASE,
            "archive_name_format": PREFIX + "-{now:%Y-%m-%dT%H:%M:%S}",
            "match_archives": f"sh:{PREFIX}-*",
            "keep_daily": 3,
            "keep_monthly": 2,
            "compression": COMPRESSION,
            "checkpoint_interval": CHECKPOINT_INTERVAL,
            "one_file_system": True,
            "exclude_caches": True,
            "local_path": borg,
            "borg_base_directory": str(self.base),
            "user_runtime_directory": str(self.root / "run"),
            "user_state_directory": str(self.root / "state"),
            "bootstrap": {"store_config_files": False},
        }
        self.config.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        self.config.chmod(0o600)

    def _env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("BORG_", "NOTIFY_", "WATCHDOG_", "XDG_"))
        }
        return {**env, "HOME": str(self.root / "home"), "TZ": TIMEZONE, "LANG": "C.UTF-8"}

    def build(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        env = borg_env(self.base)
        run([self.borg, "init", "--encryption=repokey-blake2", str(self.repo)], env)
        make_history(self.borg, env, self.repo, self.share, self.history.archives)
        self.write_config(self.borg)
        self.snapshot.take()

    def reset(self) -> None:
        self.snapshot.restore()

    def night(self) -> Night:
        watch = Stopwatch()
        run([self.borgmatic, "--config", str(self.config), *ACTIONS], self._env())
        return watch.stop()

    def check(self) -> str:
        names = archive_names(self.borg, borg_env(self.base), self.repo)
        tonight = names - {a.name for a in self.history.archives}
        self.last_archive = next(iter(tonight)) if len(tonight) == 1 else ""
        return check_night(names, self.history, self.last_archive, self.name)

    def count(self, wrapper: Wrapper) -> tuple[list[BorgCall], Night]:
        self.write_config(str(wrapper.path))
        try:
            wrapper.calls()
            night = self.night()
            calls = wrapper.calls()
            self.check()
        finally:
            self.write_config(self.borg)
            self.reset()
        return calls, night


def figures(nights: Nights) -> list[Figure]:
    label = f"(b) nightly job vs borgmatic {VERSION}"
    return comparison(nights, label, "coffre", "borgmatic", TARGET)
