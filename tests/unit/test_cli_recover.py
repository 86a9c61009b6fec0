"""`coffre recover`'s arguments live with the command, yet cost the other commands nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from coffre.cli import dispatch

# What a recovery needs and no other command does: loading them for `coffre --help`
# or `coffre status` would slow every command (paramiko and cryptography weigh ~15 MiB).
_HEAVY = (
    "asyncio",
    "paramiko",
    "cryptography",
    "coffre.borg",
    "coffre.recovery",
    "coffre.storage.audit",
    "coffre.support",
    "coffre.targets",
)


def test_building_the_parser_imports_nothing_of_the_recovery() -> None:
    # A fresh interpreter: this process has imported everything already.
    probe = (
        "import json, sys\n"
        "from coffre.cli import dispatch\n"
        "dispatch.build_parser()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in _HEAVY)]
    assert heavy == []
    assert "coffre.cli.recover" in loaded  # its parser is registered from the module itself


def test_the_recover_flags_parse() -> None:
    args = dispatch.build_parser().parse_args(
        [
            "recover",
            "--from",
            "ssh://cabinet@hds1.example.fr:22/srv/borg/cabinet",
            "--passphrase-file",
            "pass",
            "--paper-key",
            "key.txt",
            "--host-key",
            "SHA256:x",
            "--date",
            "2026-11-27",
            "--to",
            "/srv/x",
            "Patients",
        ]
    )
    assert args.command == "recover"
    assert (args.source, args.passphrase_file, args.paper_key) == (
        "ssh://cabinet@hds1.example.fr:22/srv/borg/cabinet",
        Path("pass"),
        Path("key.txt"),
    )
    assert (args.date, args.to, args.paths) == (date(2026, 11, 27), Path("/srv/x"), ["Patients"])
    assert (args.archive, args.list, args.overwrite, args.replace_key) == (
        None,
        False,
        False,
        False,
    )


def test_archive_and_date_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["recover", "--from", "u", "--passphrase-file", "p", "--paper-key", "k"]
    with pytest.raises(SystemExit) as exited:
        dispatch.build_parser().parse_args(
            [*base, "--host-key", "h", "--archive", "a", "--date", "2026-11-27"]
        )
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
