"""coffre.config.loader: TOML in, Config out, every problem named with its key path."""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import tomllib
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coffre.config import loader as config
from coffre.core.config_types import (
    DEFAULT_CONFIG_PATH,
    BorgConfig,
    Config,
    EncryptionConfig,
    LocalTarget,
    PathsConfig,
    RetentionConfig,
    ScheduleConfig,
    SourceConfig,
)
from coffre.core.errors import ConfigError

HOST = "nas"

MINIMAL = """
[source]
paths = ["/srv/share"]

[encryption]
passphrase_file = "/etc/coffre/passphrase"

[[target]]
name = "disk"
kind = "local"
path = "/var/backups/coffre"
"""

FULL = """
[source]
paths = ["/srv/share", "/srv/scans"]
exclude = ["*.tmp", "/srv/share/Corbeille"]

[schedule]
daily = "23:05"
timezone = "America/Martinique"

[retention]
daily = 5
monthly = 0
prefix = "cabinet.dupont"

[encryption]
passphrase_file = "/etc/coffre/passphrase"
mode = "keyfile"

[paths]
state = "/data/state"
cache = "/data/cache"
runtime = "/run/other"

[borg]
binary = "/opt/borg/bin/borg"
lock_wait = 0
checkpoint_interval = 600
compression = "auto,lzma,6"
stop_timeout = 30

[[target]]
name = "disk"
kind = "local"
path = "/var/backups/coffre"

[[target]]
name = "usb_2-b"
kind = "local"
path = "/mnt/other"
"""


def toml(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def problems_of(raw: dict[str, Any], hostname: str = HOST) -> list[str]:
    """The problems parse() reports for ``raw``, as the lines a person reads."""
    with pytest.raises(ConfigError) as raised:
        config.parse(raw, hostname=hostname)
    return [str(problem) for problem in raised.value.problems]


def with_section(name: str, **keys: Any) -> dict[str, Any]:
    """The minimal config with section ``name`` set (or replaced) to ``keys``."""
    raw = toml(MINIMAL)
    raw[name] = keys
    return raw


def with_target(**keys: Any) -> dict[str, Any]:
    """The minimal config with one more target."""
    raw = toml(MINIMAL)
    raw["target"].append(keys)
    return raw


# --- valid configurations ----------------------------------------------------


def test_minimal_config_gets_the_defaults() -> None:
    assert config.parse(toml(MINIMAL), hostname=HOST) == Config(
        source=SourceConfig(paths=(Path("/srv/share"),), exclude=()),
        schedule=ScheduleConfig(daily=time(1, 30), timezone=ZoneInfo("Europe/Paris")),
        retention=RetentionConfig(prefix="nas", daily=3, monthly=2),
        encryption=EncryptionConfig(Path("/etc/coffre/passphrase"), mode="repokey-blake2"),
        paths=PathsConfig(Path("/var/lib/coffre"), Path("/var/cache/coffre"), Path("/run/coffre")),
        borg=BorgConfig(
            binary="", lock_wait=60, checkpoint_interval=1800, compression="zstd,3", stop_timeout=60
        ),
        targets=(LocalTarget(name="disk", path=Path("/var/backups/coffre")),),
        source_file=None,
    )


def test_full_config_sets_every_key() -> None:
    assert config.parse(toml(FULL), hostname=HOST) == Config(
        source=SourceConfig(
            paths=(Path("/srv/share"), Path("/srv/scans")),
            exclude=("*.tmp", "/srv/share/Corbeille"),
        ),
        schedule=ScheduleConfig(daily=time(23, 5), timezone=ZoneInfo("America/Martinique")),
        retention=RetentionConfig(prefix="cabinet.dupont", daily=5, monthly=0),
        encryption=EncryptionConfig(Path("/etc/coffre/passphrase"), mode="keyfile"),
        paths=PathsConfig(Path("/data/state"), Path("/data/cache"), Path("/run/other")),
        borg=BorgConfig(
            binary="/opt/borg/bin/borg",
            lock_wait=0,
            checkpoint_interval=600,
            compression="auto,lzma,6",
            stop_timeout=30,
        ),
        targets=(
            LocalTarget(name="disk", path=Path("/var/backups/coffre")),
            LocalTarget(name="usb_2-b", path=Path("/mnt/other")),
        ),
    )


def test_toml_local_time_is_accepted_as_time_of_day() -> None:
    raw = toml("[schedule]\ndaily = 07:45:00\n" + MINIMAL)
    assert config.parse(raw, hostname=HOST).schedule.daily == time(7, 45)


@pytest.mark.parametrize(
    ("hostname", "prefix"),
    [
        ("nas-dupont.local", "nas-dupont.local"),
        ("Cabinet Dupont (RDC)", "Cabinet-Dupont-RDC"),
        ("_box::1/", "box-1"),
        ("x" * 70, "x" * 64),
        ("!!!", "coffre"),
    ],
)
def test_default_prefix_is_the_hostname_made_safe(hostname: str, prefix: str) -> None:
    assert config.parse(toml(MINIMAL), hostname=hostname).retention.prefix == prefix


@pytest.mark.parametrize(
    "compression",
    ["none", "lz4", "zstd", "zstd,1", "zstd,22", "zlib,0", "lzma,9", "auto,zstd,10", "auto,lz4"],
)
def test_borg_compressions_accepted(compression: str) -> None:
    raw = with_section("borg", compression=compression)
    assert config.parse(raw, hostname=HOST).borg.compression == compression


# --- wrong types and values --------------------------------------------------


def test_wrong_type_says_what_was_expected_and_got() -> None:
    assert problems_of(with_section("retention", daily="three")) == [
        'retention.daily: expected an integer >= 1, got "three"'
    ]


@pytest.mark.parametrize(("value", "shown"), [(True, "true"), (2.0, "2.0"), (0, "0")])
def test_bool_float_and_too_small_are_not_integers_here(value: object, shown: str) -> None:
    assert problems_of(with_section("retention", daily=value)) == [
        f"retention.daily: expected an integer >= 1, got {shown}"
    ]


def test_integer_minimums_per_key() -> None:
    raw = with_section("borg", lock_wait=-1, checkpoint_interval=9, stop_timeout=0)
    assert problems_of(raw) == [
        "borg.lock_wait: expected an integer >= 0, got -1",
        "borg.checkpoint_interval: expected an integer >= 10, got 9",
        "borg.stop_timeout: expected an integer >= 1, got 0",
    ]


def test_wrong_type_of_section_and_of_list() -> None:
    raw = toml(MINIMAL)
    raw["schedule"] = "01:30"
    raw["source"]["exclude"] = "*.tmp"
    assert problems_of(raw) == [
        'source.exclude: expected a list of strings, got "*.tmp"',
        'schedule: expected a table ([schedule]), got "01:30"',
    ]


@pytest.mark.parametrize(
    "compression", ["zstd,0", "zstd,23", "lz4,1", "zlib,10", "auto", "auto,auto,lz4", "brotli"]
)
def test_bad_compression(compression: str) -> None:
    assert problems_of(with_section("borg", compression=compression)) == [
        'borg.compression: expected "none", "lz4", "zstd[,1-22]", "zlib[,0-9]" or "lzma[,0-9]", '
        f'optionally after "auto,", got "{compression}"'
    ]


def test_bad_prefix() -> None:
    assert problems_of(with_section("retention", prefix="a::b")) == [
        'retention.prefix: expected 1 to 64 letters, digits, ".", "_" or "-", starting with a '
        'letter or digit, got "a::b"'
    ]


@pytest.mark.parametrize("mode", ["none", "authenticated", "authenticated-blake2"])
def test_unencrypted_modes_are_refused_for_health_data(mode: str) -> None:
    raw = toml(MINIMAL)
    raw["encryption"]["mode"] = mode
    assert problems_of(raw) == [
        f'encryption.mode: "{mode}" is refused: the backups hold health data and must be '
        'encrypted; expected one of "repokey-blake2", "repokey", "keyfile-blake2", "keyfile"'
    ]


def test_unknown_encryption_mode() -> None:
    raw = toml(MINIMAL)
    raw["encryption"]["mode"] = "aes"
    assert problems_of(raw) == [
        'encryption.mode: expected one of "repokey-blake2", "repokey", "keyfile-blake2", '
        '"keyfile", got "aes"'
    ]


# --- unknown and missing keys ------------------------------------------------


def test_unknown_key_suggests_the_close_one() -> None:
    assert problems_of(with_section("retention", dayly=3)) == [
        'retention.dayly: unknown key; did you mean "daily"?'
    ]


def test_unknown_key_without_close_match_lists_the_known_ones() -> None:
    assert problems_of(with_section("schedule", weekly="mon")) == [
        'schedule.weekly: unknown key; known keys are "daily", "timezone"'
    ]


def test_unknown_key_in_a_target() -> None:
    assert problems_of(with_target(name="usb", kind="local", path="/mnt/usb", pth="/x")) == [
        'target[1].pth: unknown key; did you mean "path"?'
    ]


def test_unknown_odd_key_is_quoted_in_its_key_path() -> None:
    raw = toml(MINIMAL)
    raw["target"][0]["the path"] = "/x"
    assert problems_of(raw) == ['target[0]."the path": unknown key; did you mean "path"?']


def test_unknown_section_suggests_the_close_one() -> None:
    raw = toml(MINIMAL)
    raw["retentoin"] = {"daily": 3}
    assert problems_of(raw) == ['retentoin: unknown section; did you mean "retention"?']


def test_missing_required_key() -> None:
    raw = toml(MINIMAL)
    del raw["source"]["paths"]
    assert problems_of(raw) == ["source.paths: required key is missing"]


def test_missing_required_sections() -> None:
    assert problems_of({}) == [
        "source: required section is missing",
        "encryption: required section is missing",
        "target: required section is missing",
    ]


# --- schedule ----------------------------------------------------------------


def test_unknown_timezone_suggests_the_close_one() -> None:
    assert problems_of(with_section("schedule", timezone="Europe/Pariss")) == [
        'schedule.timezone: unknown timezone "Europe/Pariss"; did you mean "Europe/Paris"?'
    ]


@pytest.mark.parametrize(
    ("daily", "shown"),
    [("25:00", '"25:00"'), ("7h", '"7h"'), ("24:00", '"24:00"'), ("7:30", '"7:30"'), (730, "730")],
)
def test_bad_time_of_day(daily: object, shown: str) -> None:
    assert problems_of(with_section("schedule", daily=daily)) == [
        f'schedule.daily: expected a time of day "HH:MM" (00:00 to 23:59), got {shown}'
    ]


# --- paths ---------------------------------------------------------------------


def test_relative_paths_are_refused_with_their_index() -> None:
    raw = toml(MINIMAL)
    raw["source"]["paths"] = ["/srv/share", "srv/scans"]
    raw["encryption"]["passphrase_file"] = "passphrase"
    raw["paths"] = {"state": "var/lib/coffre"}
    raw["target"][0]["path"] = "./backups"
    assert problems_of(raw) == [
        'source.paths[1]: expected an absolute path (starting with "/"), got "srv/scans"',
        'encryption.passphrase_file: expected an absolute path (starting with "/"), '
        'got "passphrase"',
        'paths.state: expected an absolute path (starting with "/"), got "var/lib/coffre"',
        'target[0].path: expected an absolute path (starting with "/"), got "./backups"',
    ]


def test_source_paths_must_be_a_non_empty_list() -> None:
    raw = toml(MINIMAL)
    raw["source"]["paths"] = []
    assert problems_of(raw) == ["source.paths: expected a non-empty list of absolute paths, got []"]


# --- targets -------------------------------------------------------------------


def test_duplicate_target_names() -> None:
    raw = with_target(name="usb", kind="local", path="/mnt/usb1")
    raw["target"].append({"name": "usb", "kind": "local", "path": "/mnt/usb2"})
    assert problems_of(raw) == ['target[2].name: duplicate target name "usb"']


@pytest.mark.parametrize("name", ["USB", "usb 1", "-usb", "", "x" * 33])
def test_bad_target_name(name: str) -> None:
    assert problems_of(with_target(name=name, kind="local", path="/mnt/usb")) == [
        'target[1].name: expected 1 to 32 lowercase letters, digits, "_" or "-", starting with '
        f"a letter or digit, got {json.dumps(name)}"
    ]


def test_unknown_target_kind() -> None:
    assert problems_of(with_target(name="far", kind="nfs", host="x")) == [
        'target[1].kind: unknown kind "nfs"; expected one of "local", "offsite"'
    ]


def test_target_must_be_an_array_of_tables() -> None:
    raw = toml(MINIMAL)
    raw["target"] = {"name": "disk", "kind": "local", "path": "/mnt/disk"}
    assert problems_of(raw) == [
        'target: expected one or more [[target]] tables, got {name = "disk", kind = "local", '
        'path = "/mnt/disk"}'
    ]


@pytest.mark.parametrize("path", ["/srv/share/backups", "/srv/share", "/srv/other/../share/b"])
def test_target_inside_or_equal_to_a_source_is_refused(path: str) -> None:
    assert problems_of(with_target(name="loop", kind="local", path=path)) == [
        f"target[1].path: {path} is inside source.paths[0]: "
        "the repository would back itself up every night"
    ]


def test_two_targets_on_one_repository() -> None:
    assert problems_of(with_target(name="again", kind="local", path="/var/backups/coffre/")) == [
        "target[1].path: /var/backups/coffre is already the repository of target[0]; "
        "each target needs its own repository"
    ]


# --- several problems ----------------------------------------------------------


def test_several_problems_are_reported_together() -> None:
    raw = toml(MINIMAL)
    raw["retention"] = {"daily": "three"}
    raw["schedule"] = {"timezone": "Mars/Olympus"}
    raw["target"][0]["kind"] = "nfs"
    with pytest.raises(ConfigError) as raised:
        config.parse(raw, hostname=HOST, source_name="/etc/coffre/coffre.toml")
    assert [str(problem) for problem in raised.value.problems] == [
        'schedule.timezone: unknown timezone "Mars/Olympus"',
        'retention.daily: expected an integer >= 1, got "three"',
        'target[0].kind: unknown kind "nfs"; expected one of "local", "offsite"',
    ]
    assert str(raised.value).startswith("/etc/coffre/coffre.toml: invalid configuration\n")


# --- values borg, or a job, would refuse later ---------------------------------------
# Each passed `coffre config check` and then failed every backup (or broke a lane).


def test_an_empty_exclude_is_refused_where_the_backup_would_fail() -> None:
    raw = toml(MINIMAL)
    raw["source"]["exclude"] = ["*.tmp", ""]
    assert problems_of(raw) == [
        'source.exclude[1]: an empty pattern; remove it, or write one such as "*.tmp"'
    ]


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (
            "xx:*.tmp",
            '"xx:*.tmp" starts with "xx:", a pattern style borg does not know (it knows "fm:", '
            '"sh:", "re:", "pp:", "pf:"); with no prefix a pattern is fnmatch',
        ),
        ("re:", '"re:" has nothing after "re:"; write what to exclude after it'),
        ("sh:", '"sh:" has nothing after "sh:"; write what to exclude after it'),
        (
            "re:(",
            '"re:(" is not a regular expression (missing ), unterminated subpattern at '
            'position 0); fix it, or use a shell pattern ("sh:**/*.tmp")',
        ),
        (
            "*.tmp\t",
            '"*.tmp\\t" contains a control character (a tab): retype the pattern '
            "(one pasted with a tab or a trailing CR?)",
        ),
    ],
)
def test_an_exclude_borg_would_refuse_or_misread_is_refused(pattern: str, problem: str) -> None:
    raw = toml(MINIMAL)
    raw["source"]["exclude"] = [pattern]
    assert problems_of(raw) == [f"source.exclude[0]: {problem}"]


@pytest.mark.parametrize(
    "pattern",
    ["*.tmp", "*/~$*", "sh:**/*.tmp", "re:\\.tmp$", "pp:/srv/share/Corbeille", "a:b", "C:x"],
)
def test_excludes_borg_takes_are_kept_as_written(pattern: str) -> None:
    raw = toml(MINIMAL)
    raw["source"]["exclude"] = [pattern]
    assert config.parse(raw, hostname=HOST).source.exclude == (pattern,)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        (
            "/mnt/usb::1",
            '"/mnt/usb::1" contains "::", which borg reads as the start of an archive name; '
            'choose a folder whose name has no "::"',
        ),
        (
            "/mnt/{hostname}",
            '"/mnt/{hostname}" contains a brace, which borg would expand as a placeholder '
            '("{hostname}", "{now}"); choose a folder whose name has no "{" or "}"',
        ),
        ("/mnt/x}", '"/mnt/x}" contains a brace'),
        (
            "/mnt/usb\r",
            '"/mnt/usb\\r" contains a control character (a carriage return): retype the path '
            "(one pasted with a tab or a trailing CR?)",
        ),
        ("/mnt/a\x85b", '"/mnt/a\\u0085b" contains a control character (U+0085)'),
        ("/mnt/a\x7fb", '"/mnt/a\\u007fb" contains a control character (U+007F)'),
        ("/mnt/a\0b", '"/mnt/a\\u0000b" contains a control character (a NUL)'),
    ],
)
def test_a_repository_path_borg_would_misread_is_refused(path: str, problem: str) -> None:
    [found] = problems_of(with_target(name="usb", kind="local", path=path))
    assert found.startswith(f"target[1].path: {problem}")


def test_the_runtime_folder_usb_disks_are_mounted_under_is_a_location_too() -> None:
    assert problems_of(with_section("paths", runtime="/run/{coffre}")) == [
        'paths.runtime: "/run/{coffre}" contains a brace, which borg would expand as a '
        'placeholder ("{hostname}", "{now}"); choose a folder whose name has no "{" or "}"'
    ]


def test_a_source_path_with_a_control_character_or_dot_dot_is_refused() -> None:
    raw = toml(MINIMAL)
    raw["source"]["paths"] = ["/srv/share\t", "/srv/share/../scans"]
    assert problems_of(raw) == [
        'source.paths[0]: "/srv/share\\t" contains a control character (a tab): retype the '
        "path (one pasted with a tab or a trailing CR?)",
        'source.paths[1]: "/srv/share/../scans" contains "..": write the folder itself, /srv/scans',
    ]


def test_braces_and_colons_are_fine_in_a_source_path() -> None:
    # borg takes source paths as they are; only locations expand placeholders.
    raw = toml(MINIMAL)
    raw["source"]["paths"] = ["/srv/{share}", "/srv/a::b"]
    assert config.parse(raw, hostname=HOST).source.paths == (
        Path("/srv/{share}"),
        Path("/srv/a::b"),
    )


def test_a_source_path_given_twice_or_inside_another_is_refused() -> None:
    raw = toml(MINIMAL)
    raw["source"]["paths"] = [
        "/srv/share/Patients",
        "/srv/share",
        "/srv/scans",
        "/srv//share/",
        "/srv/scans2",
        "/srv/./scans",
    ]
    assert problems_of(raw) == [
        "source.paths[0]: /srv/share/Patients is inside source.paths[1] (/srv/share): "
        "its files would be backed up twice; remove it",
        "source.paths[3]: /srv/share is source.paths[1] again; remove one of them",
        "source.paths[5]: /srv/scans is source.paths[2] again; remove one of them",
    ]


def test_nested_sources_are_said_even_beside_a_path_refused_on_its_own() -> None:
    raw = toml(MINIMAL)
    raw["source"]["paths"] = ["/srv/share", "srv/relative", "/srv/share/x"]
    assert problems_of(raw) == [
        'source.paths[1]: expected an absolute path (starting with "/"), got "srv/relative"',
        "source.paths[2]: /srv/share/x is inside source.paths[0] (/srv/share): "
        "its files would be backed up twice; remove it",
    ]


def test_a_borg_binary_with_a_control_character_is_refused() -> None:
    assert problems_of(with_section("borg", binary="/opt/borg/bin/borg\r")) == [
        'borg.binary: "/opt/borg/bin/borg\\r" contains a control character (a carriage '
        "return): retype the path (one pasted with a tab or a trailing CR?)"
    ]


OFFSITE = {"name": "hds1", "kind": "offsite", "url": "ssh://cabinet@hds1.example.fr/srv/borg"}


def with_integer(key: str, value: int) -> dict[str, Any]:
    """The minimal config (plus an offsite target with a window) with ``key`` set to ``value``."""
    raw = with_target(**OFFSITE, upload_window=[{"from": "08:00", "to": "19:00", "limit_kbps": 1}])
    section, _, leaf = key.rpartition(".")
    if section == "target":
        raw["target"][1][leaf] = value
    elif section == "target.upload_window":
        raw["target"][1]["upload_window"][0][leaf] = value
    else:
        raw.setdefault(section, {})[leaf] = value
    return raw


def key_path(key: str) -> str:
    return key.replace("target.upload_window.", "target[1].upload_window[0].").replace(
        "target.", "target[1]."
    )


@pytest.mark.parametrize("key", sorted(config.INTEGER_BOUNDS))
def test_every_integer_takes_its_maximum_and_not_one_more(key: str) -> None:
    bound = config.INTEGER_BOUNDS[key]
    config.parse(with_integer(key, bound.maximum), hostname=HOST)
    assert problems_of(with_integer(key, bound.maximum + 1)) == [
        f"{key_path(key)}: {bound.maximum + 1} is more than {bound.maximum}, the most allowed "
        f"({bound.why}); write a number from {bound.minimum} to {bound.maximum}"
    ]
    assert problems_of(with_integer(key, bound.minimum - 1)) == [
        f"{key_path(key)}: expected an integer >= {bound.minimum}, got {bound.minimum - 1}"
    ]


def test_a_hundred_billion_monthly_restore_points_are_refused() -> None:
    assert problems_of(with_section("retention", monthly=100_000_000_000)) == [
        "retention.monthly: 100000000000 is more than 240, the most allowed (20 years, the "
        "time a French medical record is kept; each is a metric series); "
        "write a number from 0 to 240"
    ]


def test_every_integer_key_has_a_bound_and_defaults_fit_in_them() -> None:
    defaults = config.parse(with_integer("target.retry_for", 360), hostname=HOST)
    offsite = defaults.targets[1]
    values = {
        **{f"retention.{k}": getattr(defaults.retention, k) for k in ("daily", "monthly")},
        **{
            f"borg.{k}": getattr(defaults.borg, k)
            for k in ("lock_wait", "checkpoint_interval", "stop_timeout")
        },
        **{
            f"usb.{k}": getattr(defaults.usb, k)
            for k in ("swap_after_days", "missing_after_days", "check_max_duration")
        },
        **{
            f"restore.{k}": getattr(defaults.restore, k)
            for k in ("disk_wait", "browse_idle", "browse_max", "find_max_results", "rto_hours")
        },
        **{
            f"target.{k}": getattr(offsite, k)
            for k in ("retry_for", "retry_delay", "connect_timeout")
        },
        **{
            f"guard.{f.name}": getattr(defaults.guard, f.name)
            for f in dataclasses.fields(defaults.guard)
            if f.type == "int"
        },
        **{
            f"drills.{f.name}": getattr(defaults.drills, f.name)
            for f in dataclasses.fields(defaults.drills)
        },
        "target.upload_window.limit_kbps": 2000,
        **{
            f"checks.{f.name}": getattr(defaults.checks, f.name)
            for f in dataclasses.fields(defaults.checks)
        },
        **{
            f"{section}.{f.name}": getattr(getattr(defaults, section), f.name)
            for section in ("snapshots", "quiescence")
            for f in dataclasses.fields(getattr(defaults, section))
            if f.type == "int"
        },
    }
    assert set(values) == set(config.INTEGER_BOUNDS)
    for key, value in values.items():
        bound = config.INTEGER_BOUNDS[key]
        assert bound.minimum <= value <= bound.maximum, key


def test_the_readme_shows_every_bound_on_its_key_line() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    reference = readme.split("## Configuration reference", 1)[1].split("```toml", 1)[1]
    reference = reference.split("```", 1)[0]
    lines: dict[str, str] = {}
    section = ""
    for line in reference.splitlines():
        if header := re.match(r"\[\[?([a-z_.]+)\]\]?", line):
            section = header[1]
        elif assigned := re.match(r"#?\s*([a-z_]+) =", line):
            lines.setdefault(f"{section}.{assigned[1]}", line)
    for key, bound in config.INTEGER_BOUNDS.items():
        assert f"{bound.minimum} to {bound.maximum}" in lines[key], (key, lines.get(key))


def test_every_new_problem_of_a_file_is_reported_at_once() -> None:
    raw = with_target(name="usb", kind="local", path="/mnt/{now}")
    raw["source"]["paths"] = ["/srv/share", "/srv/share/Patients"]
    raw["source"]["exclude"] = [""]
    raw["retention"] = {"monthly": 100_000_000_000}
    assert [p.split(":")[0] for p in problems_of(raw)] == [
        "source.exclude[0]",
        "source.paths[1]",
        "retention.monthly",
        "target[1].path",
    ]


# --- resolve_path ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cli", "environ", "expected"),
    [
        ("/cli.toml", {"COFFRE_CONFIG": "/env.toml"}, Path("/cli.toml")),
        (None, {"COFFRE_CONFIG": "/env.toml"}, Path("/env.toml")),
        (None, {}, DEFAULT_CONFIG_PATH),
        (None, {"COFFRE_CONFIG": ""}, DEFAULT_CONFIG_PATH),
    ],
)
def test_resolve_path_precedence(cli: str | None, environ: dict[str, str], expected: Path) -> None:
    assert config.resolve_path(cli, environ) == expected


# --- load and check_environment -----------------------------------------------


class Box:
    """A practice's box in tmp_path: a share, a 0600 passphrase file, a config file."""

    def __init__(self, root: Path) -> None:
        self.share = root / "share"
        self.share.mkdir()
        self.passphrase = root / "passphrase"
        self.passphrase.write_text("correct horse battery staple\n")
        self.passphrase.chmod(0o600)
        self.repository = root / "backups"
        self.config_file = root / "coffre.toml"
        self.write()

    def write(self, extra: str = "", target_path: Path | None = None) -> Path:
        path = target_path or self.repository
        self.config_file.write_text(
            f"[source]\npaths = [{json.dumps(str(self.share))}]\n"
            f"[encryption]\npassphrase_file = {json.dumps(str(self.passphrase))}\n"
            f'[[target]]\nname = "disk"\nkind = "local"\npath = {json.dumps(str(path))}\n' + extra
        )
        return self.config_file

    def load_problems(self) -> list[str]:
        with pytest.raises(ConfigError) as raised:
            config.load(self.config_file, hostname=HOST)
        assert raised.value.path == str(self.config_file)
        return [str(problem) for problem in raised.value.problems]


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def test_load_sets_the_source_file(box: Box) -> None:
    loaded = config.load(box.config_file, hostname=HOST)
    assert loaded.source_file == box.config_file
    assert loaded.targets == (LocalTarget(name="disk", path=box.repository),)
    assert config.check_environment(loaded) == []


def test_load_takes_the_prefix_from_the_hostname(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "cabinet-dupont")
    assert config.load(box.config_file).retention.prefix == "cabinet-dupont"


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        config.load(tmp_path / "nope.toml")
    assert [str(p) for p in raised.value.problems] == [
        "no such file (another one can be given with --config or COFFRE_CONFIG)"
    ]


def test_load_accepts_a_byte_order_mark(box: Box) -> None:
    box.config_file.write_bytes(b"\xef\xbb\xbf" + box.config_file.read_bytes())
    assert config.load(box.config_file, hostname=HOST).source.paths == (box.share,)


def test_load_config_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        config.load(tmp_path)
    assert [str(p) for p in raised.value.problems] == ["cannot be read: Is a directory"]


def test_load_toml_syntax_error_gives_the_line(box: Box) -> None:
    box.config_file.write_text('[source]\npaths = ["/srv"]\nexclude = [\n[encryption\n')
    [problem] = box.load_problems()
    assert re.fullmatch(r"TOML syntax error: .+ \(at line 4, column \d+\)", problem), problem


def test_load_file_not_utf8(box: Box) -> None:
    box.config_file.write_bytes(b'[source]\npaths = ["/srv/\xe9"]\n')
    assert box.load_problems() == ["is not UTF-8 text (invalid byte on line 2)"]


def test_missing_passphrase_file(box: Box) -> None:
    box.passphrase.unlink()
    assert box.load_problems() == [f"encryption.passphrase_file: {box.passphrase} does not exist"]


@pytest.mark.parametrize(
    ("mode", "opened"),
    [
        (0o644, "readable"),
        (0o640, "readable"),
        (0o620, "writable"),
        (0o666, "readable and writable"),
    ],
)
def test_passphrase_file_open_to_group_or_others(box: Box, mode: int, opened: str) -> None:
    box.passphrase.chmod(mode)
    assert box.load_problems() == [
        f"encryption.passphrase_file: {box.passphrase} is {opened} by group or others "
        f"(mode {mode:04o}); run: chmod 600 {box.passphrase}"
    ]


def test_empty_passphrase_file(box: Box) -> None:
    box.passphrase.write_text("")
    assert box.load_problems() == [
        f"encryption.passphrase_file: {box.passphrase} is empty; write the passphrase in it"
    ]


def test_passphrase_file_not_a_regular_file(box: Box) -> None:
    box.passphrase.unlink()
    box.passphrase.mkdir(mode=0o700)
    assert box.load_problems() == [
        f"encryption.passphrase_file: {box.passphrase} is not a regular file"
    ]


def test_source_path_missing_or_not_a_directory(box: Box) -> None:
    box.share.rmdir()
    assert box.load_problems() == [f"source.paths[0]: {box.share} does not exist"]
    box.share.write_text("not a directory")
    assert box.load_problems() == [f"source.paths[0]: {box.share} is not a directory"]


def test_target_inside_source_through_a_symlink(box: Box, tmp_path: Path) -> None:
    (box.share / "backups").mkdir()
    link = tmp_path / "link"
    link.symlink_to(box.share / "backups")
    box.write(target_path=link)
    assert box.load_problems() == [
        f"target[0].path: {link} is inside source.paths[0] through symlinks: "
        "the repository would back itself up every night"
    ]


def test_load_reports_parse_and_environment_problems_together(box: Box) -> None:
    box.passphrase.chmod(0o644)
    box.write('[retention]\nmonthly = "two"\n')
    assert box.load_problems() == [
        'retention.monthly: expected an integer >= 0, got "two"',
        f"encryption.passphrase_file: {box.passphrase} is readable by group or others "
        f"(mode 0644); run: chmod 600 {box.passphrase}",
    ]


def test_snapshot_office_hours_are_checked_and_kept_as_written() -> None:
    assert problems_of(with_section("snapshots", office_days="lun-ven")) == [
        "snapshots.office_days: 'lun-ven': 'lun' is not a day; use mon, tue, wed, thu, fri, "
        'sat, sun, ranges such as "mon-fri", lists such as "sat,sun", or "all"'
    ]
    assert problems_of(with_section("snapshots", office_from="19:00", office_to="08:00")) == [
        "snapshots.office_to: '08:00' is not after office_from"
    ]
    raw = with_section("snapshots", office_days="mon-sat", office_to="24:00")
    snapshots = config.parse(raw, hostname=HOST).snapshots
    assert (snapshots.office_days, snapshots.office_from, snapshots.office_to) == (
        "mon-sat",
        "08:00",
        "24:00",
    )
