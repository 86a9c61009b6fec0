"""coffre.daemon.folders: the state and cache folders made 0700 again at each start, and
a link or another user's folder in their place refused by name."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from coffre.core.errors import StateError
from coffre.daemon.folders import make_private

UID = os.geteuid()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_missing_folder_is_made_0700_with_its_parents(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "lib" / "coffre"
    assert make_private(folder, "state folder", uid=UID) is None
    assert folder.is_dir() and _mode(folder) == 0o700


def test_an_open_folder_is_closed_again_and_its_old_mode_told(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    folder.chmod(0o755)
    assert make_private(folder, "state folder", uid=UID) == 0o755
    assert _mode(folder) == 0o700
    assert make_private(folder, "state folder", uid=UID) is None  # nothing to tell next time


def test_a_link_in_the_folders_place_is_refused_and_its_target_left_alone(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    elsewhere.chmod(0o755)
    link = tmp_path / "state"
    link.symlink_to(elsewhere)
    with pytest.raises(StateError, match=f"the state folder {link} is a symbolic link"):
        make_private(link, "state folder", uid=UID)
    assert _mode(elsewhere) == 0o755
    dangling = tmp_path / "cache"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(StateError, match=f"the cache folder {dangling} is a symbolic link"):
        make_private(dangling, "cache folder", uid=UID)


def test_a_file_in_the_folders_place_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "state"
    file.write_text("")
    with pytest.raises(StateError, match="is not a directory"):
        make_private(file, "state folder", uid=UID)


def test_a_folder_of_another_user_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    folder.chmod(0o755)
    with pytest.raises(StateError, match=f"belongs to uid {UID}, not to the daemon's"):
        make_private(folder, "state folder", uid=UID + 1)
    assert _mode(folder) == 0o755
