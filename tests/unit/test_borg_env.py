"""The environment borg runs in."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from coffre.borg.env import BorgEnvironment, default_binary


def make(tmp_path: Path, **extra: str) -> BorgEnvironment:
    return BorgEnvironment("borg", tmp_path / "base", tmp_path / "cache", extra=extra)


def test_build_is_complete_and_does_not_inherit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/opt/bin:/usr/bin")
    monkeypatch.setenv("TZ", "Europe/Paris")
    monkeypatch.setenv("BORG_PASSPHRASE", "leaked")
    monkeypatch.setenv("SECRET_OF_THE_DAEMON", "x")
    base = tmp_path / "base"
    assert make(tmp_path).build() == {
        "PATH": "/opt/bin:/usr/bin",
        "LANG": "C.UTF-8",
        "HOME": str(base),
        "TZ": "UTC",
        "BORG_EXIT_CODES": "modern",
        "BORG_BASE_DIR": str(base),
        "BORG_CONFIG_DIR": str(base / "config"),
        "BORG_SECURITY_DIR": str(base / "security"),
        "BORG_KEYS_DIR": str(base / "keys"),
        "BORG_CACHE_DIR": str(tmp_path / "cache"),
        "BORG_RELOCATED_REPO_ACCESS_IS_OK": "no",
        "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "no",
        "BORG_CHECK_I_KNOW_WHAT_I_AM_DOING": "NO",
        "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING": "NO",
        "BORG_DISPLAY_PASSPHRASE": "no",
    }


def test_default_path_when_daemon_has_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATH", raising=False)
    assert "/usr/bin" in make(tmp_path).build()["PATH"].split(":")


def test_extra_is_added(tmp_path: Path) -> None:
    env = make(tmp_path, BORG_RSH="ssh -i /var/lib/coffre/id_ed25519").build()
    assert env["BORG_RSH"] == "ssh -i /var/lib/coffre/id_ed25519"


@pytest.mark.parametrize(
    "key", ["BORG_PASSPHRASE", "BORG_PASSCOMMAND", "BORG_PASSPHRASE_FD", "TZ", "BORG_EXIT_CODES"]
)
def test_extra_may_not_override_or_carry_secrets(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        make(tmp_path, **{key: "x"})


def test_default_binary_prefers_the_one_beside_python() -> None:
    beside = Path(sys.executable).parent / "borg"
    if beside.is_file() and os.access(beside, os.X_OK):
        assert default_binary() == str(beside)
    else:
        assert default_binary()


def test_default_binary_falls_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert default_binary() == "borg"
    fake = tmp_path / "borg"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert default_binary() == str(fake)
