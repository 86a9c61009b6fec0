"""coffre.config.cautions: a metrics endpoint beyond loopback is warned of, never refused;
`coffre config check` prints the warning and still says "valid"."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from coffre.cli.dispatch import main
from coffre.config.cautions import FIREWALL_NOTE, ConfigWarning, beyond_loopback, config_warnings
from coffre.core.config_types import LocalTarget, MetricsConfig
from tests.fakes import config


def _warnings(tmp_path: Path, listen: str, *, enabled: bool = True) -> list[ConfigWarning]:
    practice = config(tmp_path, LocalTarget("local", tmp_path / "repo"))
    metrics = MetricsConfig(enabled=enabled, listen=listen)
    return config_warnings(dataclasses.replace(practice, metrics=metrics))


@pytest.mark.parametrize(
    ("listen", "why"),
    [
        ("0.0.0.0:9101", "every address of the box"),
        ("[::]:9851", "every address of the box"),
        ("0:9851", "every address of the box"),  # what the system reads as 0.0.0.0
        ("192.168.1.20:9851", "192.168.1.20 is not a loopback address"),
        ("[fd00::20]:9851", "fd00::20 is not a loopback address"),
        ("[::ffff:192.168.1.20]:9851", "192.168.1.20 is not a loopback address"),
        ("nas.cabinet.lan:9851", "host name"),
    ],
)
def test_a_listen_address_beyond_loopback_is_warned_of_with_the_firewall_note(
    tmp_path: Path, listen: str, why: str
) -> None:
    (warning,) = _warnings(tmp_path, listen)
    assert warning.key == "metrics.listen"
    assert why in warning.message
    assert f'"{listen}" reaches beyond the box' in warning.message
    assert FIREWALL_NOTE in warning.message
    assert "no authentication" in warning.message
    assert str(warning).startswith("metrics.listen: ")


@pytest.mark.parametrize(
    "listen",
    [
        "127.0.0.1:9851",
        "127.0.0.53:9851",
        "127.1:9851",
        "[::1]:9851",
        "[::ffff:127.0.0.1]:9851",
        "localhost:9851",
        "LOCALHOST.:9851",
    ],
)
def test_a_loopback_listen_address_is_not_warned_of(tmp_path: Path, listen: str) -> None:
    assert _warnings(tmp_path, listen) == []


def test_an_endpoint_switched_off_is_not_warned_of(tmp_path: Path) -> None:
    assert _warnings(tmp_path, "0.0.0.0:9851", enabled=False) == []


def test_beyond_loopback_reads_numbers_as_the_system_does() -> None:
    assert beyond_loopback("0x7f.1") is None  # 127.0.0.1 for inet_aton, hence for bind
    assert beyond_loopback("10.1") == "10.0.0.1 is not a loopback address"


def test_config_check_prints_the_warning_and_still_says_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("secret\n")
    passphrase.chmod(0o600)
    path = tmp_path / "coffre.toml"
    path.write_text(
        f'[source]\npaths = ["{share}"]\n\n[encryption]\npassphrase_file = "{passphrase}"\n\n'
        f'[metrics]\nlisten = "0.0.0.0:9101"\n\n'
        f'[[target]]\nname = "local"\nkind = "local"\npath = "{tmp_path / "repo"}"\n'
    )
    assert main(["config", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert f"{path}: valid; targets: local (local)" in out
    assert err.startswith('warning: metrics.listen: "0.0.0.0:9101" reaches beyond the box')
    assert FIREWALL_NOTE in err
