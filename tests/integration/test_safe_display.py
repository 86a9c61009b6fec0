"""Names from a hostile share reach the terminal and the daemon's log escaped; --json keeps them.

A workstation can name a file with escape sequences: printed raw, such a
name sets the support engineer's terminal title and colours, or reverses
what is read (bidi overrides). Here, with the real borg and daemon, a share
holding such names is backed up, found, restored and audited: every line a
person reads shows the escapes (``\\x1b``...), ``--json`` gives back the exact
names, and the daemon's log lines never hold the raw bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from coffre.core.restore_plan import folder_name
from tests.integration.faulty_share import faulty_share
from tests.integration.harness import Daemon, Practice, daemon_running, fill_share

#: Sets the terminal's title to "pwned", then writes in red.
HOSTILE = "Patients/\x1b]0;pwned\x07\x1b[31mrouge.txt"
HOSTILE_SHOWN = "Patients/\\x1b]0;pwned\\x07\\x1b[31mrouge.txt"
#: Reads "facturefdp.exe" as "facture" + "exe.pdf" reversed on a terminal honouring U+202E.
REVERSED = "Compta/facture\u202efdp.exe"
REVERSED_SHOWN = "Compta/facture\\u202efdp.exe"
#: What a raw name would put on a terminal: ESC, BEL, CSI (C1), the right-to-left override.
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def _raw_in(text: str) -> list[str]:
    return [char for char in RAW if char in text]


def _log_holds_no_raw_name(daemon: Daemon) -> None:
    log = daemon.log.read_bytes()
    assert b"\x1b" not in log and b"\x07" not in log and "\u202e".encode() not in log


@pytest.fixture
def practice(tmp_path: Path) -> Practice:
    p = Practice(tmp_path)
    fill_share(p.share, files=10)
    for name in (HOSTILE, REVERSED):
        (p.share / name).parent.mkdir(parents=True, exist_ok=True)
        (p.share / name).write_bytes(name.encode() * 50)
    p.share.chmod(0o2770)
    return p


def test_find_restore_and_audit_print_hostile_names_escaped_and_json_keeps_them(
    practice: Practice, daemon: Daemon
) -> None:
    practice.coffre("target", "init", "local", check=True)
    practice.coffre("backup", "--wait", check=True)
    archive = practice.status()["targets"]["local"]["last_success"]["archive"]

    found = practice.coffre("find", "rouge", check=True)
    assert not _raw_in(found.stdout + found.stderr)
    assert f"{practice.share}/{HOSTILE_SHOWN}" in found.stdout
    reversed_found = practice.coffre("find", "facture", check=True)
    assert not _raw_in(reversed_found.stdout) and REVERSED_SHOWN in reversed_found.stdout

    as_json = practice.coffre("find", "rouge", "--json", check=True)
    assert [h["path"] for h in json.loads(as_json.stdout)["hits"]] == [
        f"{practice.share}/{HOSTILE}"
    ]

    # A path typed with a control character is refused (request_check): the file
    # comes back with its folder; a bidi override can be typed, and is shown escaped.
    restored = practice.coffre("restore", "Patients", REVERSED, check=True)
    assert not _raw_in(restored.stdout + restored.stderr)
    out = practice.share / "_restaurations" / folder_name(archive)
    assert f"{out}/Patients" in restored.stdout
    assert f"{out}/{REVERSED_SHOWN}" in restored.stdout
    assert (out / HOSTILE).read_bytes() == HOSTILE.encode() * 50  # the exact name, restored

    # Again: the files are in the way, and the error names them escaped.
    refused = practice.coffre("restore", "Patients")
    assert refused.returncode == 6, refused.stderr
    assert not _raw_in(refused.stdout + refused.stderr)
    assert f"{out}/{HOSTILE_SHOWN}" in refused.stderr

    # The audit log holds the paths asked, as typed: the bidi override among them.
    audited = practice.coffre("audit", check=True)
    assert not _raw_in(audited.stdout) and REVERSED_SHOWN in audited.stdout
    recorded = json.loads(practice.coffre("audit", "--json", check=True).stdout)
    assert any(REVERSED in path for entry in recorded for path in entry["paths"])

    _log_holds_no_raw_name(daemon)


def test_a_non_utf8_name_is_found_as_borg_lists_it_never_raw(
    practice: Practice, daemon: Daemon
) -> None:
    # A name written by an old workstation in Latin-1. borg 1.4's JSON lists it
    # with "?" for each byte that is not UTF-8 (its remove_surrogates): coffre
    # shows and gives that, and no raw byte reaches the terminal.
    (practice.share / os.fsdecode(b"Patients/compte-rendu-\xe9t\xe9.odt")).write_bytes(b"c" * 99)
    practice.coffre("target", "init", "local", check=True)
    practice.coffre("backup", "--wait", check=True)
    found = practice.coffre("find", "compte-rendu", check=True)
    assert found.stdout.isascii() and "Patients/compte-rendu-?t?.odt" in found.stdout
    hits = json.loads(practice.coffre("find", "compte-rendu", "--json", check=True).stdout)
    assert [h["path"] for h in hits["hits"]] == [f"{practice.share}/Patients/compte-rendu-?t?.odt"]


def test_borg_warnings_naming_a_hostile_file_reach_the_log_escaped(tmp_path: Path) -> None:
    practice = Practice(tmp_path)
    source = tmp_path / "disque-du-partage"
    fill_share(source, files=10)
    (source / HOSTILE).parent.mkdir(parents=True, exist_ok=True)
    (source / HOSTILE).write_bytes(b"x" * 100)
    with (
        faulty_share(source, practice.share, {HOSTILE: "eacces"}),
        daemon_running(practice) as daemon,
    ):
        practice.coffre("target", "init", "local", check=True)
        done = practice.coffre("backup", "--wait")
        assert done.returncode == 7, done.stdout + done.stderr  # a warning: the file not saved
        assert not _raw_in(done.stdout + done.stderr)
    lines = [line for line in daemon.logs().splitlines() if "backup of local: file " in line]
    assert len(lines) == 1 and f"{practice.share}/{HOSTILE_SHOWN}" in lines[0], lines
    _log_holds_no_raw_name(daemon)
