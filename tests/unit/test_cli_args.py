"""The command line: the global ``--config`` is taken before or after any subcommand."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from coffre.cli import dispatch as cli

#: Each leaf of the subcommand tree, and what it needs besides its names to parse.
LEAVES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("daemon",): (),
    ("config", "check"): (),
    ("status",): (),
    ("backup",): (),
    ("archives",): (),
    ("prune",): (),
    ("disk", "enroll"): ("/dev/sdb1", "--name", "disque-a"),
    ("disk", "list"): (),
    ("disk", "forget"): ("disque-a",),
    ("offsite", "enroll"): ("hds-1",),
    ("find",): ("dupont",),
    ("restore",): ("agenda.db",),
    ("browse",): (),
    ("key", "export"): ("--paper",),
    ("audit",): ("verify",),
    ("check",): ("--kind", "data"),
    ("incident", "show"): (),
    ("drill",): (),
    ("incident", "clear"): ("--why", "share checked from a workstation"),
    ("recover",): (
        "--from",
        "ssh://coffre@hds.example:22/./cabinet",
        "--passphrase-file",
        "/root/pass",
        "--paper-key",
        "/root/key.txt",
        "--host-key",
        "SHA256:abc",
    ),
    ("target", "init"): ("local",),
    ("leds", "stopped"): (),
    ("share", "setup"): ("--dry-run",),
}


#: What argparse says of a mistyped subcommand (the CLI names those positionals COMMAND or
#: ACTION), with every name it knows there.
MISTYPED = re.compile(r"argument (?:COMMAND|ACTION): invalid choice: .*\(choose from (.*)\)")


def _leaves(path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every chain of subcommand names down to a command without subcommands, as the CLI
    tells them to whoever mistypes one."""
    said = io.StringIO()
    with contextlib.redirect_stderr(said), contextlib.suppress(SystemExit):
        cli.build_parser().parse_args([*path, "no-such-command"])
    named = MISTYPED.search(said.getvalue())
    if named is None:
        return {path}
    children = [name.strip().strip("'") for name in named.group(1).split(",")]
    return {leaf for name in children for leaf in _leaves((*path, name))}


def test_the_table_covers_every_subcommand() -> None:
    assert set(LEAVES) == _leaves()


@pytest.mark.parametrize("names", LEAVES, ids=" ".join)
def test_config_after_the_subcommand_is_the_global_option(names: tuple[str, ...]) -> None:
    command = (*names, *LEAVES[names])
    parser = cli.build_parser()
    assert parser.parse_args([*command, "--config", "/etc/other.toml"]).config == (
        "/etc/other.toml"
    )
    assert parser.parse_args(["--config", "/etc/before.toml", *command]).config == (
        "/etc/before.toml"
    )
    assert parser.parse_args(list(command)).config is None


@pytest.mark.parametrize("names", LEAVES, ids=" ".join)
def test_config_after_the_subcommand_wins_over_one_before(names: tuple[str, ...]) -> None:
    command = (*names, *LEAVES[names])
    args = cli.build_parser().parse_args(
        ["--config", "/etc/before.toml", *command, "--config", "/etc/after.toml"]
    )
    assert args.config == "/etc/after.toml"


def test_config_between_a_command_and_its_action_is_taken() -> None:
    args = cli.build_parser().parse_args(["disk", "--config", "/etc/other.toml", "list"])
    assert args.config == "/etc/other.toml"


def test_status_reads_the_configuration_named_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COFFRE_CONFIG", raising=False)
    named = tmp_path / "named-after-status.toml"
    assert cli.main(["status", "--config", str(named)]) == 2
    assert str(named) in capsys.readouterr().err
