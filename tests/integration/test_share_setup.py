"""`coffre share setup`, the real command, on a real btrfs volume (and on the tmp filesystem)."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from coffre.storage import btrfs
from tests.integration.btrfs_volume import btrfs_volume


@pytest.fixture(scope="module")
def volume() -> Iterator[Path]:
    with btrfs_volume(512) as point:
        yield point


@pytest.fixture
def parent(volume: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh parent folder (as /srv/coffre) on the volume for each test."""
    folder = volume / str(request.node.name)
    folder.mkdir(mode=0o755)
    return folder


def setup(share: Path, tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m coffre.cli share setup` with a configuration backing up ``share``."""
    config = tmp_path / "coffre.toml"
    config.write_text(
        f'[source]\npaths = ["{share}"]\n[schedule]\ndaily = "01:30"\n'
        'timezone = "Europe/Paris"\n[retention]\nprefix = "cabinet"\n'
        f'[encryption]\npassphrase_file = "{tmp_path / "pass"}"\n'
        f'[[target]]\nname = "local"\nkind = "local"\npath = "{tmp_path / "repo"}"\n',
        encoding="utf-8",
    )
    return subprocess.run(
        [sys.executable, "-m", "coffre.cli", "share", "setup", "--config", str(config), *options],
        capture_output=True,
        text=True,
        timeout=120,
    )


def is_subvolume(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        return btrfs.is_subvolume(fd)
    finally:
        os.close(fd)


def owner_group_mode(path: Path) -> tuple[int, int, int]:
    found = os.lstat(path)
    return found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)


def assert_layout(share: Path) -> None:
    versions = share.parent / ".coffre-versions"
    assert owner_group_mode(versions) == (0, 0, 0o755)
    assert owner_group_mode(versions / share.name) == (0, 0, 0o755)
    assert owner_group_mode(versions / ".vues") == (0, 0, 0o700)


def digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def test_a_missing_share_is_made_a_subvolume_with_the_packages_mode(
    parent: Path, tmp_path: Path
) -> None:
    share = parent / "partage"
    result = setup(share, tmp_path)
    assert result.returncode == 0, result.stderr
    assert is_subvolume(share)
    assert owner_group_mode(share)[2] == 0o2770
    assert owner_group_mode(share)[0] == 0
    assert_layout(share)
    again = setup(share, tmp_path)  # a second run keeps it all
    assert again.returncode == 0, again.stderr
    assert "keep the subvolume" in again.stdout


def test_an_empty_folder_becomes_a_subvolume_with_its_owner_group_and_mode(
    parent: Path, tmp_path: Path
) -> None:
    share = parent / "partage"
    share.mkdir()
    os.chown(share, 1234, 5678)
    share.chmod(0o2750)
    result = setup(share, tmp_path)
    assert result.returncode == 0, result.stderr
    assert is_subvolume(share)
    assert owner_group_mode(share) == (1234, 5678, 0o2750)
    assert_layout(share)


def test_a_folder_with_files_is_refused_without_convert(parent: Path, tmp_path: Path) -> None:
    share = parent / "partage"
    (share / "dossier").mkdir(parents=True)
    (share / "dossier" / "lettre.odt").write_bytes(b"lettre")
    result = setup(share, tmp_path)
    assert result.returncode != 0
    assert "--convert" in result.stderr
    assert not is_subvolume(share)
    assert [entry.name for entry in parent.iterdir()] == ["partage"]  # nothing else made


def test_convert_copies_the_files_byte_identical_and_keeps_the_old_folder(
    parent: Path, tmp_path: Path
) -> None:
    share = parent / "partage"
    (share / "dossier").mkdir(parents=True)
    for index in range(20):
        (share / "dossier" / f"scan-{index}.pdf").write_bytes(os.urandom(50_000 + index))
    (share / "lien").symlink_to("/etc/shadow")  # copied as a link, never followed
    os.chown(share, 0, 0)
    share.chmod(0o2770)
    before = digests(share)
    result = setup(share, tmp_path, "--convert")
    assert result.returncode == 0, result.stderr
    assert is_subvolume(share)
    assert digests(share) == before
    assert (share / "lien").readlink() == Path("/etc/shadow")
    assert owner_group_mode(share) == (0, 0, 0o2770)
    old = parent / "partage.avant-coffre"
    assert digests(old) == before
    assert "partage.avant-coffre" in result.stdout
    assert_layout(share)


def test_a_link_in_place_of_the_versions_folder_is_refused_and_nothing_touched(
    parent: Path, tmp_path: Path
) -> None:
    share = parent / "partage"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (parent / ".coffre-versions").symlink_to(elsewhere)
    result = setup(share, tmp_path)
    assert result.returncode != 0
    assert ".coffre-versions" in result.stderr and "symbolic link" in result.stderr
    assert not share.exists()
    assert list(elsewhere.iterdir()) == []


def test_dry_run_says_what_it_would_do_and_does_nothing(parent: Path, tmp_path: Path) -> None:
    share = parent / "partage"
    result = setup(share, tmp_path, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would create the subvolume" in result.stdout
    assert list(parent.iterdir()) == []


def test_off_btrfs_it_warns_and_changes_nothing(tmp_path: Path) -> None:
    share = tmp_path / "partage"
    share.mkdir()
    result = setup(share, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "not on btrfs" in result.stderr
    assert "Previous Versions" in result.stderr
    assert not (tmp_path / ".coffre-versions").exists()
