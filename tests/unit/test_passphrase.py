"""The passphrase file, read one way by the daemon and by `coffre recover`."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import pytest

from coffre.borg.passphrase import ON_THE_BOX, read_passphrase
from coffre.cli.support import iso_day
from coffre.core.errors import PassphraseUnavailable, UsageError
from coffre.recovery import inputs


@pytest.mark.parametrize("ending", [b"", b"\n", b"\r\n"])
def test_the_final_newline_is_not_part_of_the_passphrase(tmp_path: Path, ending: bytes) -> None:
    path = tmp_path / "passphrase"
    path.write_bytes(b" secret with spaces " + ending)
    assert read_passphrase(path) == b" secret with spaces "
    assert inputs.read_passphrase(path) == b" secret with spaces "


def test_the_daemon_says_to_put_the_file_back(tmp_path: Path) -> None:
    with pytest.raises(PassphraseUnavailable) as missing:
        read_passphrase(tmp_path / "absent")
    assert missing.value.kind == "passphrase"
    assert missing.value.message.startswith(f"cannot read the passphrase file {tmp_path}/absent")
    assert missing.value.hint == ON_THE_BOX.unreadable
    (tmp_path / "empty").write_bytes(b"\n")
    with pytest.raises(PassphraseUnavailable, match="is empty") as empty:
        read_passphrase(tmp_path / "empty")
    assert empty.value.hint == ON_THE_BOX.empty


def test_the_recovery_calls_it_a_bad_flag_and_says_to_type_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as missing:
        inputs.read_passphrase(tmp_path / "absent")
    assert missing.value.exit_code == 2
    assert "--passphrase-file" in missing.value.hint
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(UsageError, match="is empty"):
        inputs.read_passphrase(tmp_path / "empty")


def test_a_day_flag_takes_an_iso_date_only() -> None:
    assert iso_day("2026-11-27") == date(2026, 11, 27)
    with pytest.raises(argparse.ArgumentTypeError, match="expected a date YYYY-MM-DD"):
        iso_day("27/11/2026")
