"""When a share is quiet, and how a backup says how it read the share."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from coffre.consistency.quiet import Consistency, Observation, is_quiet

AT = datetime(2026, 12, 6, 0, 30, tzinfo=UTC)


def test_quiet_needs_no_smb_writer_and_no_change_within_the_window() -> None:
    assert is_quiet(Observation(0, AT - timedelta(seconds=31), AT), 30)
    assert not is_quiet(Observation(1, AT - timedelta(hours=1), AT), 30)
    assert not is_quiet(Observation(0, AT - timedelta(seconds=5), AT), 30)
    # A change dated after the look (a clock oddity) is a change.
    assert not is_quiet(Observation(0, AT + timedelta(hours=1), AT), 30)
    # Samba could not tell: the changes still do.
    assert is_quiet(Observation(None, AT - timedelta(minutes=5), AT), 30)
    assert is_quiet(Observation(0, None, AT), 30)


def test_the_comment_says_snapshot_or_live_and_quiet_or_not_without_any_file_name() -> None:
    snap = Consistency("snapshot", True, 3.2, 0, AT)
    assert snap.comment() == (
        "coffre: read from a read-only btrfs snapshot taken 2026-12-06T00:30:00Z; "
        "share quiet after 3 s"
    )
    live = Consistency("live", False, 900, 2, AT, why_live="/srv/p is not on a btrfs filesystem")
    assert live.comment() == (
        "coffre: read from the live share from 2026-12-06T00:30:00Z (no snapshot: /srv/p is "
        "not on a btrfs filesystem); share NOT quiet after 900 s (2 file(s) open for writing "
        "over SMB, or changes still under way)"
    )
    assert live.to_json()["quiet"] is False


def test_a_kept_read_comes_back_whole_and_garbage_comes_back_as_none() -> None:
    read = Consistency("live", False, 900.0, None, AT, why_live="off")
    assert Consistency.from_json(json.dumps(read.to_json())) == read
    for raw in (
        None,
        "",
        "{",
        '{"method": "snapshot"}',
        json.dumps({**read.to_json(), "method": "x"}),
    ):
        assert Consistency.from_json(raw) is None
