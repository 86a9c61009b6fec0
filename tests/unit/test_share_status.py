"""Status's share part, its lines in `coffre status`, and the share's series."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from prometheus_client.metrics_core import Metric

from coffre.cli.share_status import share_lines
from coffre.consistency.quiet import Consistency
from coffre.consistency.survey import Survey, survey_from_json
from coffre.consistency.version_plan import Version
from coffre.jobs.backup import consistency_key
from coffre.observe.share_series import ShareFacts, share_series
from coffre.observe.share_status import share_view
from coffre.storage.state import State

T0 = datetime(2026, 12, 6, 0, 30, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
KEPT = (
    Version("@GMT-2026.12.04-07.00.00", datetime(2026, 12, 4, 7, tzinfo=UTC), "office"),
    Version("@GMT-2026.12.06-00.30.00", T0, "backup"),
)


def state_with_reads(tmp_path: Path) -> State:
    state = State.open(tmp_path / "state.db", logger=logging.getLogger("t"), now=T0)
    quiet = Consistency("snapshot", True, 3.0, 0, T0)
    stuck = Consistency("live", False, 900.0, 2, T0, why_live="off")
    state.set_meta(consistency_key("local"), json.dumps(quiet.to_json()))
    state.set_meta(consistency_key("hds"), json.dumps(stuck.to_json()))
    return state


def test_status_shows_the_versions_the_room_and_how_each_target_read_the_share(
    tmp_path: Path,
) -> None:
    view = share_view(
        Survey(T0, "", KEPT, 35_200_000_000, 100_000_000_000),
        state_with_reads(tmp_path),
        ["local", "hds", "disque-a"],
        PARIS,
    )
    assert view["snapshots"] and set(view["reads"]) == {"local", "hds"}
    assert view["versions"][1] == {
        "name": "@GMT-2026.12.06-00.30.00",
        "at": "2026-12-06T01:30:00+01:00",
        "kind": "backup",
    }
    lines = share_lines(view)
    assert lines[0].startswith(
        "btrfs snapshots: 2 Previous Version(s) (1 office hours', 1 backups')"
    )
    assert "35.2 GB free of 100.0 GB" in lines[0]
    assert (
        lines[1] == "last backup of local: from a snapshot of 2026-12-06 01:30:00, quiet after 3 s"
    )
    assert lines[2].startswith(
        "last backup of hds: from the live share of 2026-12-06 01:30:00, NOT"
    )
    assert "2 file(s) still open for writing over SMB" in lines[2]


def test_without_snapshots_status_says_why_and_what_the_practice_lacks(tmp_path: Path) -> None:
    why = "/srv/coffre/partage is not on a btrfs filesystem"
    view = share_view(Survey(T0, why, (), None, None), state_with_reads(tmp_path), [], PARIS)
    assert share_lines(view) == [
        f"no snapshots: {why}: backups wait for a quiet share, and the practice has no "
        "Previous Versions"
    ]


def samples(families: list[Metric]) -> dict[tuple[str, tuple[str, ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.values()))): s.value for f in families for s in f.samples
    }


def test_the_series_count_the_versions_by_kind_and_each_read_without_a_name(
    tmp_path: Path,
) -> None:
    survey = Survey(T0, "", KEPT, 1, 2)
    assert survey_from_json(survey.to_json()) == survey
    kept = {
        "local": Consistency("snapshot", True, 3.0, 0, T0),
        "hds": Consistency("live", False, 900.0, 2, T0, why_live="/srv/x"),
    }
    # As the observer gives them: read back from what state keeps.
    reads = {n: Consistency.from_json(json.dumps(c.to_json())) for n, c in kept.items()}
    assert reads == kept
    found = samples(share_series(ShareFacts(survey, kept)))
    assert found[("coffre_share_snapshots", ())] == 1
    assert found[("coffre_previous_versions", ("office",))] == 1
    assert found[("coffre_previous_versions", ("backup",))] == 1
    assert (
        found[("coffre_previous_versions_oldest_timestamp_seconds", ())]
        == KEPT[0].taken_at.timestamp()
    )
    assert found[("coffre_backup_read_quiet", ("hds",))] == 0
    assert found[("coffre_backup_read_snapshot", ("local",))] == 1
    assert found[("coffre_backup_quiet_wait_seconds", ("hds",))] == 900
    assert not any("/srv" in value for key in found for value in key[1])


def test_without_snapshots_only_the_switch_and_the_reads_are_exported() -> None:
    found = samples(share_series(ShareFacts(Survey(T0, "not btrfs", (), None, None), {})))
    assert found == {("coffre_share_snapshots", ()): 0}
    assert share_series(ShareFacts(None, {}))[0].samples == []
