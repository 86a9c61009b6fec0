"""The borg command lines of the scheduled checks (pure builders of coffre.borg.argv)."""

from __future__ import annotations

import pytest

from coffre.borg import argv

REPO = "/srv/coffre/depots/local"


def test_rolling_repository_check_is_time_boxed() -> None:
    assert argv.check_repository(REPO, max_duration=600) == (
        "check",
        "--info",
        "--repository-only",
        "--max-duration=600",
        REPO,
    )


def test_whole_repository_check_has_no_duration() -> None:
    assert argv.check_repository(REPO) == ("check", "--info", "--repository-only", REPO)


def test_repository_check_refuses_a_non_positive_duration() -> None:
    with pytest.raises(ValueError, match="max_duration"):
        argv.check_repository(REPO, max_duration=0)


def test_archives_check_all_or_the_last_few() -> None:
    assert argv.check_archives(REPO) == ("check", "--info", "--archives-only", REPO)
    assert argv.check_archives(REPO, last=3) == (
        "check",
        "--info",
        "--archives-only",
        "--last=3",
        REPO,
    )


def test_archives_check_refuses_last_zero() -> None:
    with pytest.raises(ValueError, match="last"):
        argv.check_archives(REPO, last=0)


def test_data_check_verifies_everything() -> None:
    assert argv.check_data(REPO) == ("check", "--info", "--verify-data", REPO)


def test_verify_archive_is_a_dry_run_extract_of_that_archive() -> None:
    assert argv.verify_archive(REPO, "cabinet-2026-12-01T01:30:00") == (
        "extract",
        "--dry-run",
        f"{REPO}::cabinet-2026-12-01T01:30:00",
    )


@pytest.mark.parametrize("repo", ["", "-x", "/a::b", "/{now}"])
def test_check_builders_refuse_a_location_borg_would_misread(repo: str) -> None:
    for build in (argv.check_repository, argv.check_archives, argv.check_data):
        with pytest.raises(ValueError):
            build(repo)


@pytest.mark.parametrize("name", ["", "-a", "a/b", "{now}"])
def test_verify_archive_refuses_a_name_borg_would_misread(name: str) -> None:
    with pytest.raises(ValueError):
        argv.verify_archive(REPO, name)
