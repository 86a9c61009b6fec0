"""A real daemon makes its state and cache folders 0700 again at start and says what it
found; a link in the state folder's place stops it, named, before anything is written."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.integration.harness import Daemon, Practice, daemon_running


def test_an_open_state_folder_is_made_private_again_at_start(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    cache = tmp_path / "cache"
    for folder in (practice.state_dir, cache):
        folder.mkdir()
        folder.chmod(0o755)
    with daemon_running(practice) as daemon:
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in (practice.state_dir, cache)}
    assert modes == {"state": 0o700, "cache": 0o700}
    log = daemon.logs()
    assert f"state folder {practice.state_dir} was 0755; made 0700" in log
    assert f"cache folder {cache} was 0755; made 0700" in log


def test_a_link_in_place_of_the_state_folder_stops_the_daemon_by_name(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    elsewhere.chmod(0o755)
    practice.state_dir.symlink_to(elsewhere)
    daemon = Daemon(practice)
    try:
        code = daemon.process.wait(timeout=60)
    finally:
        daemon.stop()
    assert code == 1
    assert f"the state folder {practice.state_dir} is a symbolic link" in daemon.logs()
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o755
    assert list(elsewhere.iterdir()) == []
