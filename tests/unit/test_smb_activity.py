"""Running smbstatus (consistency.smb_activity): its answers and failures, by stand-in programs.

Each stand-in prints what the real smbstatus 4.17 printed in that situation
(tests/unit/test_smb_opens.py has the captures); the real one is driven in
tests/integration/test_samba.py.
"""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import pytest

from coffre.consistency.smb_activity import open_for_writing
from coffre.core.errors import SmbStatusUnavailable
from tests.unit.test_smb_opens import HELD_FOR_WRITING, NO_LOCKING_DATABASE, NOTHING_OPEN

SHARE = Path("/tmp/smbexp/share")
NOT_INITIALISED = (
    "/run/samba/locking.tdb not initialised\n"
    "This is normal if an SMB client has never connected to your server.\n"
)


def stand_in(
    tmp_path: Path, *, out: str = "", err: str = "", rc: int = 0, hang: bool = False
) -> str:
    """A program that prints ``out`` and ``err`` and exits ``rc`` (or never exits); its path.

    It also records its arguments, in ``argv`` beside it.
    """
    program = tmp_path / "smbstatus"
    (tmp_path / "out").write_text(out, encoding="utf-8")
    (tmp_path / "err").write_text(err, encoding="utf-8")
    wait = "exec sleep 600\n" if hang else ""
    program.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {shlex.quote(str(tmp_path / "argv"))}\n'
        f"cat {shlex.quote(str(tmp_path / 'out'))}\n"
        f"cat {shlex.quote(str(tmp_path / 'err'))} >&2\n"
        f"{wait}exit {rc}\n",
        encoding="utf-8",
    )
    program.chmod(0o755)
    return str(program)


def count(program: str, config: str | None = None, timeout: float = 10) -> int:
    return asyncio.run(
        open_for_writing([SHARE], smbstatus=program, samba_config=config, timeout=timeout)
    )


def test_a_file_held_for_writing_in_the_share_counts_one(tmp_path: Path) -> None:
    assert count(stand_in(tmp_path, out=HELD_FOR_WRITING)) == 1


def test_the_writer_is_not_counted_under_another_root(tmp_path: Path) -> None:
    program = stand_in(tmp_path, out=HELD_FOR_WRITING)
    assert (
        asyncio.run(open_for_writing([Path("/srv/ailleurs")], smbstatus=program, samba_config=None))
        == 0
    )


def test_it_asks_for_locks_in_json_with_the_given_configuration(tmp_path: Path) -> None:
    count(stand_in(tmp_path, out=NOTHING_OPEN), "/etc/samba/cabinet.conf")
    argv = (tmp_path / "argv").read_text(encoding="utf-8").split()
    assert argv == ["--locks", "--json", "--configfile=/etc/samba/cabinet.conf"]
    count(stand_in(tmp_path, out=NOTHING_OPEN))
    assert (tmp_path / "argv").read_text(encoding="utf-8").split() == ["--locks", "--json"]


def test_smbd_that_never_ran_means_nobody_writes(tmp_path: Path) -> None:
    assert count(stand_in(tmp_path, out=NO_LOCKING_DATABASE, err=NOT_INITIALISED)) == 0


def test_a_configuration_smbstatus_cannot_load_is_a_failure_though_it_exits_0(
    tmp_path: Path,
) -> None:
    err = "Can't load /etc/samba/absent.conf - run testparm to debug it\n" + NOT_INITIALISED
    with pytest.raises(SmbStatusUnavailable, match="could not load") as raised:
        count(stand_in(tmp_path, out=NO_LOCKING_DATABASE, err=err), "/etc/samba/absent.conf")
    assert raised.value.kind == "smbstatus"
    assert "samba_config" in raised.value.hint


def test_no_open_files_without_a_reason_is_a_failure_not_a_quiet_share(tmp_path: Path) -> None:
    with pytest.raises(SmbStatusUnavailable, match="unreadable"):
        count(stand_in(tmp_path, out=NO_LOCKING_DATABASE))


def test_output_that_is_not_json_is_a_failure(tmp_path: Path) -> None:
    with pytest.raises(SmbStatusUnavailable, match="not JSON"):
        count(stand_in(tmp_path, out="Locked files:\n"))


def test_a_non_zero_exit_is_a_failure_with_its_first_line(tmp_path: Path) -> None:
    program = stand_in(tmp_path, err="\nInvalid option --locked: unknown option\n", rc=1)
    with pytest.raises(SmbStatusUnavailable, match="exited 1: Invalid option --locked"):
        count(program)


def test_a_missing_smbstatus_is_a_failure_that_says_to_install_samba(tmp_path: Path) -> None:
    with pytest.raises(SmbStatusUnavailable, match="cannot run") as raised:
        count(str(tmp_path / "absent" / "smbstatus"))
    assert "apt install samba" in raised.value.hint


def test_a_hung_smbstatus_is_killed_at_the_timeout(tmp_path: Path) -> None:
    with pytest.raises(SmbStatusUnavailable, match=r"did not answer within 0\.2 s"):
        count(stand_in(tmp_path, out=NOTHING_OPEN, hang=True), timeout=0.2)


def test_its_errors_never_quote_a_file_name(tmp_path: Path) -> None:
    broken = HELD_FOR_WRITING.replace('"0x00000003", "READ_DATA"', '"zz", "READ_DATA"')
    with pytest.raises(SmbStatusUnavailable) as raised:
        count(stand_in(tmp_path, out=broken))
    assert "a é.txt" not in str(raised.value)
