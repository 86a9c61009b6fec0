"""The pure borg argv builders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from coffre.borg import argv

REPO = "/srv/coffre/repo"


def test_init() -> None:
    assert argv.init(REPO, encryption="repokey-blake2") == (
        "init",
        "--encryption=repokey-blake2",
        "--make-parent-dirs",
        REPO,
    )


def test_init_refuses_unknown_encryption() -> None:
    with pytest.raises(ValueError, match="encryption"):
        argv.init(REPO, encryption="rot13")


def test_create_full() -> None:
    when = datetime(2024, 10, 27, 2, 30, tzinfo=ZoneInfo("Europe/Paris"), fold=1)
    assert argv.create(
        REPO,
        "cabinet-2024-10-27",
        ["/srv/share", "/srv/other"],
        excludes=["*.tmp", "-odd"],
        exclude_if_present=[".coffre-tag"],
        compression="zstd,3",
        checkpoint_interval=1800,
        timestamp=when,
    ) == (
        "create",
        "--json",
        "--progress",
        "--one-file-system",
        "--compression=zstd,3",
        "--checkpoint-interval=1800",
        "--exclude=*.tmp",
        "--exclude=-odd",
        "--exclude-if-present=.coffre-tag",
        # 02:30 CET (the second 02:30 of that night) is 01:30 UTC.
        "--timestamp=2024-10-27T01:30:00",
        f"{REPO}::cabinet-2024-10-27",
        "/srv/share",
        "/srv/other",
    )


def test_create_minimal_without_progress() -> None:
    result = argv.create(
        REPO, "a", ["/x"], compression="lz4", checkpoint_interval=60, progress=False
    )
    assert "--progress" not in result
    assert not any(a.startswith("--timestamp") or a.startswith("--exclude=") for a in result)
    assert result[-2:] == (f"{REPO}::a", "/x")


def test_create_timestamp_drops_microseconds_and_converts_to_utc() -> None:
    when = datetime(2024, 1, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=-5)))
    result = argv.create(
        REPO, "a", ["/x"], compression="lz4", checkpoint_interval=1, timestamp=when
    )
    assert "--timestamp=2024-01-01T17:00:00" in result


def test_create_refuses_naive_timestamp() -> None:
    with pytest.raises(ValueError, match="timezone"):
        argv.create(
            REPO,
            "a",
            ["/x"],
            compression="lz4",
            checkpoint_interval=1,
            timestamp=datetime(2024, 1, 1),
        )


@pytest.mark.parametrize(
    ("paths", "excludes", "compression", "interval"),
    [
        ([], [], "lz4", 1),
        (["-rf"], [], "lz4", 1),
        ([""], [], "lz4", 1),
        (["/x"], [""], "lz4", 1),
        (["/x"], [], "", 1),
        (["/x"], [], "lz4", -1),
    ],
)
def test_create_refuses_bad_values(
    paths: list[str], excludes: list[str], compression: str, interval: int
) -> None:
    with pytest.raises(ValueError):
        argv.create(
            REPO,
            "a",
            paths,
            excludes=excludes,
            compression=compression,
            checkpoint_interval=interval,
        )


@pytest.mark.parametrize(
    "name", ["", "a::b", "a/b", "-a", "{now}", "a}", "a\nb", "a\x00b", "a\x7fb"]
)
def test_archive_names_are_validated(name: str) -> None:
    with pytest.raises(ValueError):
        argv.create(REPO, name, ["/x"], compression="lz4", checkpoint_interval=1)
    with pytest.raises(ValueError):
        argv.extract(REPO, name)
    with pytest.raises(ValueError):
        argv.delete(REPO, ["ok", name])


@pytest.mark.parametrize("name", ["a", "cabinet-2024-01-01T00:00:00", "a.checkpoint.1", "é b"])
def test_valid_archive_names(name: str) -> None:
    argv.check_archive_name(name)


@pytest.mark.parametrize("repo", ["", "-repo", "/a::b", "/{hostname}/repo", "/a\nb"])
def test_repository_locations_are_validated(repo: str) -> None:
    for build in (
        argv.list_archives,
        argv.compact,
        argv.info_repository,
        argv.key_export,
        argv.key_import_paper,
        argv.key_export_paper,
    ):
        with pytest.raises(ValueError):
            build(repo)
    with pytest.raises(ValueError):
        argv.init(repo, encryption="repokey-blake2")
    with pytest.raises(ValueError):
        argv.check(repo)


def test_remote_locations_are_accepted() -> None:
    repo = "ssh://coffre@hds1.example:2222/./repo"
    assert argv.list_archives(repo) == ("list", "--json", "--consider-checkpoints", repo)


def test_list_archives() -> None:
    assert argv.list_archives(REPO) == ("list", "--json", "--consider-checkpoints", REPO)


def test_delete_several_archives_in_one_call() -> None:
    assert argv.delete(REPO, ["a", "b", "a"]) == ("delete", "--stats", REPO, "a", "b")


def test_delete_refuses_no_archive() -> None:
    # borg delete REPO without names would delete the whole repository.
    with pytest.raises(ValueError, match="repository"):
        argv.delete(REPO, [])


def test_compact() -> None:
    assert argv.compact(REPO) == ("compact", REPO)


def test_check() -> None:
    assert argv.check(REPO) == ("check", REPO)
    assert argv.check(REPO, repository_only=True) == ("check", "--repository-only", REPO)
    assert argv.check(REPO, repository_only=True, max_duration=600) == (
        "check",
        "--repository-only",
        "--max-duration=600",
        REPO,
    )


def test_check_max_duration_needs_repository_only() -> None:
    with pytest.raises(ValueError, match="repository_only"):
        argv.check(REPO, max_duration=600)
    with pytest.raises(ValueError):
        argv.check(REPO, repository_only=True, max_duration=0)


def test_extract() -> None:
    assert argv.extract(REPO, "a") == ("extract", f"{REPO}::a")
    assert argv.extract(REPO, "a", ["srv/share/x", "re:odd", "-y"], progress=True) == (
        "extract",
        "--progress",
        f"{REPO}::a",
        "pp:srv/share/x",
        "pp:re:odd",
        "pp:-y",
    )


def test_extract_refuses_empty_path() -> None:
    with pytest.raises(ValueError):
        argv.extract(REPO, "a", [""])


def test_info_and_key_export() -> None:
    assert argv.info_repository(REPO) == ("info", "--json", REPO)
    assert argv.key_export_paper(REPO) == ("key", "export", "--paper", REPO)
    # The recovery's: the stored key on stdout, and the paper key's lines on stdin.
    assert argv.key_export(REPO) == ("key", "export", REPO, "-")
    assert argv.key_import_paper(REPO) == ("key", "import", "--paper", REPO)


def test_format_timestamp() -> None:
    assert argv.format_timestamp(datetime(2024, 3, 31, 1, 30, tzinfo=UTC)) == "2024-03-31T01:30:00"


def test_list_contents_adds_the_format_keys_borg_puts_in_its_json_lines() -> None:
    assert argv.list_contents("/r", "a", ["srv/x"], keys=("ctime", "xxh64")) == (
        "list",
        "--json-lines",
        "--format={ctime}{xxh64}",
        "/r::a",
        "pp:srv/x",
    )
    assert argv.list_contents("/r", "a") == ("list", "--json-lines", "/r::a")
    with pytest.raises(ValueError, match="plain names"):
        argv.list_contents("/r", "a", keys=("x}{y",))
