"""coffre.guard.change_signal: each rule fires at its threshold and not below it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from coffre.core.config_types import GuardConfig
from coffre.guard.change_signal import NightFigures, Thresholds, evaluate, has_baseline

T = Thresholds.from_config(GuardConfig())
SHARE = 20_000
MB = 1_000_000


def night(**changes: object) -> NightFigures:
    """A quiet night of a 20 000-file share backed up 24 h after the last one."""
    base = NightFigures(
        files=SHARE,
        previous_files=SHARE,
        added=20,
        modified=200,
        new_bytes=50 * MB,
        share_bytes=20_000 * MB,
        sampled=200,
        suspects=0,
        canaries_checked=5,
        canaries_touched=0,
        hours_since_previous=24.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def reasons(figures: NightFigures) -> tuple[str, ...]:
    signal = evaluate(figures, T)
    return () if signal is None else signal.reasons


def test_a_quiet_night_gives_no_signal() -> None:
    assert evaluate(night(), T) is None


def test_defaults_are_the_documented_ones() -> None:
    assert (T.rewritten_percent, T.vanished_percent, T.suspect_percent) == (30, 30, 30)
    assert (T.min_suspects, T.new_data_percent, T.min_files, T.compare_within_hours) == (
        10,
        25,
        50,
        48,
    )


def test_canary_fires_on_one_touched_canary_even_without_baseline() -> None:
    figures = night(canaries_touched=1, previous_files=None, hours_since_previous=None)
    assert reasons(figures) == ("canary",)


def test_rewritten_fires_at_its_percentage_and_not_below() -> None:
    at = SHARE * 30 // 100
    assert reasons(night(added=0, modified=at)) == ("rewritten",)
    assert reasons(night(added=0, modified=at - 1)) == ()


def test_renaming_half_the_share_fires_rewritten_and_vanished() -> None:
    # Each file written anew under "<name>.locked": A for the new path, the old path gone.
    half = SHARE // 2
    figures = night(added=half, modified=0, new_bytes=10_000 * MB)
    assert figures.vanished == half
    assert reasons(figures) == ("rewritten", "vanished", "new_data")


def test_vanished_fires_at_its_percentage_and_not_below() -> None:
    gone = SHARE * 30 // 100
    assert reasons(night(files=SHARE - gone, added=0, modified=0)) == ("vanished",)
    assert reasons(night(files=SHARE - gone + 1, added=0, modified=0)) == ()


def test_vanished_counts_new_files_against_the_fall() -> None:
    # 100 new scans and 100 deletions: the count is unchanged, 100 files vanished.
    assert night(files=SHARE, added=100, modified=0).vanished == 100


def test_encrypted_sample_fires_at_percentage_and_minimum() -> None:
    assert reasons(night(sampled=200, suspects=60)) == ("encrypted_sample",)
    assert reasons(night(sampled=200, suspects=59)) == ()
    # 30 % of a small sample, but fewer suspects than min_suspects: no signal.
    assert reasons(night(sampled=20, suspects=9)) == ()
    assert reasons(night(sampled=20, suspects=10)) == ("encrypted_sample",)


def test_new_data_needs_bytes_and_a_tenth_of_the_rewritten_files() -> None:
    three_percent = SHARE * 3 // 100
    figures = night(added=0, modified=three_percent, new_bytes=5_000 * MB)
    assert reasons(figures) == ("new_data",)
    assert reasons(replace(figures, new_bytes=5_000 * MB - 1)) == ()
    # One huge new file (a scanner's batch PDF, a dump) is not enough alone.
    assert reasons(replace(figures, modified=three_percent - 1)) == ()


def test_count_rules_need_a_baseline() -> None:
    wiped = night(files=100, added=0, modified=0, previous_files=None, hours_since_previous=None)
    assert reasons(wiped) == ()


@pytest.mark.parametrize(("hours", "judged"), [(48.0, True), (48.1, False), (-1.0, False)])
def test_count_rules_need_a_recent_baseline(hours: float, judged: bool) -> None:
    # A USB disk plugged after weeks sees weeks of churn; a baseline in the future is none.
    figures = night(files=SHARE // 2, added=0, modified=0, hours_since_previous=hours)
    assert has_baseline(figures, T) is judged
    assert reasons(figures) == (("vanished",) if judged else ())


def test_count_rules_need_min_files() -> None:
    small = night(files=10, previous_files=49, added=0, modified=10)
    assert reasons(small) == ()
    assert reasons(replace(small, previous_files=50)) == ("rewritten", "vanished")


def test_a_lost_files_cache_is_not_mass_renaming() -> None:
    # Every file "A", none modified, the chunks already in the repository.
    lost = night(added=SHARE, modified=0, new_bytes=40 * MB)
    assert lost.lost_files_cache
    assert lost.vanished == 0
    assert reasons(lost) == ()
    # The same statuses with as much new data as the share: everything rewritten.
    encrypted = replace(lost, new_bytes=20_000 * MB)
    assert not encrypted.lost_files_cache
    assert "rewritten" in reasons(encrypted)


def test_a_lost_files_cache_still_sees_a_fall_of_the_count() -> None:
    lost = night(files=SHARE // 2, added=SHARE // 2, modified=0, new_bytes=0)
    assert lost.lost_files_cache
    assert lost.vanished == SHARE // 2
    assert reasons(lost) == ("vanished",)


def test_figures_hold_numbers_only() -> None:
    signal = evaluate(night(canaries_touched=2), T)
    assert signal is not None
    assert all(isinstance(v, int | float) for v in signal.figures.values())
    assert signal.figures["canaries_touched"] == 2
    assert signal.figures["vanished"] == 20


def test_files_merely_added_replace_nothing_however_many() -> None:
    # A share that doubles in a night (a patient base imported, a scanner day on a
    # small share): nothing old was replaced, nothing vanished.
    grown = night(files=2 * SHARE, added=SHARE, modified=0, new_bytes=20_000 * MB)
    assert reasons(grown) == ()


def test_files_renamed_count_as_replaced() -> None:
    # Encrypted then renamed `.locked`: one A and one name gone for each, M none.
    renamed = night(added=SHARE * 30 // 100, modified=0)
    assert "rewritten" in reasons(renamed) and "vanished" in reasons(renamed)
