"""Values borg would refuse are refused at the edge: by `coffre config check`, by the socket.

Each of these reached borg's argv builder inside a job and broke it there (or
its lane): an empty exclude, a restore path pasted with a tab or a trailing
CR, an archive name `{now}`. Here they are usage errors (exit 2) before any
job, with the real daemon, CLI and borg.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from coffre.cli import client
from coffre.core.messages import MAX_REQUEST
from coffre.core.restore_plan import folder_name
from tests.integration.harness import (
    Daemon,
    Practice,
    daemon_running,
    fill_share,
    wait_for,
)
from tests.parts import binary

#: A refused request is answered at once; a job that hangs is a failure, not a wait.
REFUSED_WITHIN = 60


@pytest.fixture
def practice(tmp_path: Path) -> Practice:
    p = Practice(tmp_path)
    fill_share(p.share, files=10)
    (p.share / "Patients" / "DUPONT Jean").mkdir(parents=True)
    (p.share / "Patients" / "DUPONT Jean" / "ordonnance 2026.pdf").write_bytes(os.urandom(3000))
    return p


@pytest.fixture
def archive(practice: Practice, daemon: Daemon) -> str:
    """The name of one archive of the share on target local."""
    practice.coffre("target", "init", "local", check=True)
    practice.coffre("backup", "--wait", check=True)
    return str(practice.status()["targets"]["local"]["last_success"]["archive"])


def ask_daemon(practice: Practice, message: dict[str, Any]) -> list[dict[str, Any]]:
    """The daemon's answer to ``message`` sent by a client that checks nothing (not the CLI)."""
    person = {"user": "support-test", "login": "root"}
    return list(
        client.request(practice.socket, {**message, "person": person}, timeout=REFUSED_WITHIN)
    )


def audit_log(practice: Practice) -> Path:
    return practice.state_dir / "audit.log"


def audit_entries(practice: Practice) -> list[dict[str, Any]]:
    lines = audit_log(practice).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


# --- coffre config check -----------------------------------------------------------------


def test_config_check_names_each_value_borg_would_refuse_with_its_key_path(
    practice: Practice,
) -> None:
    repos = practice.root / "repos"
    practice.config.write_text(
        f"""
[source]
paths = ["{practice.share}", "{practice.share}/Patients", "{practice.share}/../share"]
exclude = ["*.tmp", "", "re:"]

[retention]
monthly = 100000000000

[encryption]
passphrase_file = "{practice.passphrase}"

[borg]
lock_wait = 1000000

[[target]]
name = "local"
kind = "local"
path = "{repos}/a::b"

[[target]]
name = "usb"
kind = "local"
path = "{repos}/{{now}}"

[[target]]
name = "pasted"
kind = "local"
path = "{repos}/pasted\\r"
""",
        encoding="utf-8",
    )
    result = subprocess.run(
        [binary("coffre"), "config", "check", str(practice.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    problems = result.stderr
    assert 'source.exclude[1]: an empty pattern; remove it, or write one such as "*.tmp"' in (
        problems
    )
    assert 'source.exclude[2]: "re:" has nothing after "re:"' in problems
    assert (
        f"source.paths[1]: {practice.share}/Patients is inside source.paths[0] "
        f"({practice.share}): its files would be backed up twice; remove it" in problems
    )
    assert f'source.paths[2]: "{practice.share}/../share" contains ".."' in problems
    assert "retention.monthly: 100000000000 is more than 240, the most allowed" in problems
    assert "write a number from 0 to 240" in problems
    assert "borg.lock_wait: 1000000 is more than 3600" in problems
    assert f'target[0].path: "{repos}/a::b" contains "::"' in problems
    assert f'target[1].path: "{repos}/{{now}}" contains a brace' in problems
    assert (
        f'target[2].path: "{repos}/pasted\\r" contains a control character (a carriage return)'
        in problems
    )


def test_excludes_of_each_style_borg_knows_pass_the_check_and_work(practice: Practice) -> None:
    # The other side of the refusals: what borg takes is still taken, and does its job.
    (practice.share / "brouillon.tmp").write_bytes(b"x")
    (practice.share / "Corbeille").mkdir()
    (practice.share / "Corbeille" / "vieux.pdf").write_bytes(b"x")
    (practice.share / "lettre.odt~").write_bytes(b"x")
    corbeille = practice.share / "Corbeille"
    practice.config.write_text(
        practice.config.read_text().replace(
            f'paths = ["{practice.share}"]\n',
            f'paths = ["{practice.share}"]\nexclude = ["*.tmp", "pp:{corbeille}", "re:~$"]\n',
        )
    )
    check = practice.coffre("config", "check", str(practice.config))
    assert check.returncode == 0, check.stderr
    with daemon_running(practice):
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        archive = practice.status()["targets"]["local"]["last_success"]["archive"]
    listed = practice.borg("list", "--short", f"{practice.repository()}::{archive}").stdout
    assert "ordonnance 2026.pdf" in listed
    assert "brouillon.tmp" not in listed and "Corbeille" not in listed and "odt~" not in listed


# --- the control socket: control characters and archive names -------------------------------


def test_control_characters_sent_by_the_cli_are_exit_2_and_reads_go_on(
    practice: Practice, archive: str
) -> None:
    tab = practice.coffre("restore", "tab\tname.txt", timeout=REFUSED_WITHIN)
    assert tab.returncode == 2, tab.stdout + tab.stderr
    assert "error: path 'tab\\tname.txt' contains a tab" in tab.stderr
    assert "a path pasted with a tab or a trailing CR? retype it" in tab.stderr
    pasted = "Patients/DUPONT Jean/ordonnance 2026.pdf\r"
    cr = practice.coffre("restore", pasted, timeout=REFUSED_WITHIN)
    assert cr.returncode == 2, cr.stdout + cr.stderr
    assert f"error: path {pasted!r} contains a carriage return (CR)" in cr.stderr
    for args in (["browse", "--archive={now}"], ["browse", "--target=local", "--archive={now}"]):
        now = practice.coffre(*args, timeout=REFUSED_WITHIN)
        assert now.returncode == 2, now.stdout + now.stderr
        assert "error: --archive '{now}' contains a brace: borg would expand it" in now.stderr
    find = practice.coffre("find", "dup\tont", timeout=REFUSED_WITHIN)
    assert find.returncode == 2 and "the pattern 'dup\\tont' contains a tab" in find.stderr
    assert not audit_log(practice).exists()  # nothing was read: nothing to record

    # The same reads, well typed, work at once: no lane was harmed.
    found = practice.coffre("find", "dupont", check=True, timeout=REFUSED_WITHIN)
    assert "ordonnance 2026.pdf" in found.stdout
    practice.coffre("restore", pasted.rstrip("\r"), check=True, timeout=REFUSED_WITHIN)
    restored = practice.share / "_restaurations" / folder_name(archive) / pasted.rstrip("\r")
    assert restored.read_bytes() == (practice.share / pasted.rstrip("\r")).read_bytes()


#: Requests no job may take, as any client could send them, and how the daemon says so.
REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"op": "restore", "paths": ["tab\tname.txt"]}, "path 'tab\\tname.txt' contains a tab"),
    (
        {"op": "restore", "paths": ["dossier-1\r"], "target": "local"},
        "path 'dossier-1\\r' contains a carriage return (CR)",
    ),
    (
        {"op": "restore", "paths": ["dossier-1"], "to": "/tmp/ici\n"},
        "--to '/tmp/ici\\n' contains a line feed",
    ),
    (
        {"op": "restore", "paths": ["dossier-1"], "archive": "cabinet\x85"},
        "--archive 'cabinet\\x85' contains the control character U+0085",
    ),
    ({"op": "browse", "target": "local", "archive": "{now}"}, "--archive '{now}' contains a brace"),
    (
        {"op": "browse", "target": "local", "archive": "local::cabinet"},
        "--archive 'local::cabinet' contains '::' or '/'",
    ),
    ({"op": "find", "pattern": "dupont\x00"}, "the pattern 'dupont\\x00' contains a NUL"),
    (
        {"op": "find", "pattern": "dupont", "target": "local\t"},
        "--target 'local\\t' contains a tab",
    ),
    (
        {"op": "find", "pattern": "dupont", "since": "2026-01-01\r"},
        "--since '2026-01-01\\r' contains a carriage return (CR)",
    ),
    ({"op": "backup", "targets": ["local\x7f"]}, "--target 'local\\x7f' contains"),
]


def test_the_daemon_refuses_them_whatever_the_client_and_queues_nothing(
    practice: Practice, archive: str
) -> None:
    for message, said in REFUSED:
        [answer] = ask_daemon(practice, message)
        assert answer["event"] == "error" and answer["kind"] == "usage", (message, answer)
        assert answer["exit_code"] == 2 and answer["hint"], answer
        assert answer["message"].startswith(said), answer["message"]
    # Refused before the audit's "asked" line (nothing was done that could be an
    # access) and before any job: no backup ran, the last one is still the fixture's.
    assert not audit_log(practice).exists()
    assert practice.status()["targets"]["local"]["last_success"]["archive"] == archive
    # The reads lane serves the next request at once.
    [*_, found] = ask_daemon(practice, {"op": "find", "pattern": "dupont", "target": "local"})
    assert found["event"] == "result" and found["ok"], found
    hits = found["targets"]["local"]["hits"]
    assert any(hit["path"].endswith("ordonnance 2026.pdf") for hit in hits)
    # The outcome line is written once the answer is sent: wait for it.
    wait_for(lambda: len(audit_entries(practice)) >= 2, what="the find's outcome in the audit")
    assert [(entry["op"], entry["outcome"]) for entry in audit_entries(practice)] == [
        ("find", "asked"),
        ("find", "ok"),
    ]


# --- the control socket: a request over its size limit -----------------------------------------


def test_a_request_over_the_size_limit_is_answered_clearly(
    practice: Practice, daemon: Daemon
) -> None:
    many = [f"Patients/DUPONT Jean/scan-{n:04d}-{'x' * 80}.pdf" for n in range(1000)]
    assert len(json.dumps(many)) > MAX_REQUEST
    result = practice.coffre("restore", *many, timeout=REFUSED_WITHIN)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error: request too large: 65536 bytes at most; ask for fewer paths at once" in (
        result.stderr
    )
    assert "what to do: a folder restores everything under it" in result.stderr
    assert "closed the connection" not in result.stderr

    # A client still sending megabytes when the daemon answers reads that answer too.
    [answer] = ask_daemon(practice, {"op": "status", "pad": "x" * (8 << 20)})
    assert answer["kind"] == "usage" and answer["exit_code"] == 2
    assert answer["message"].startswith("request too large: 65536 bytes at most")
    # And the daemon goes on.
    assert practice.coffre("status", check=True, timeout=REFUSED_WITHIN).returncode == 0
