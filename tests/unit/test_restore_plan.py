"""Pure logic of restores and finds: paths, patterns, archive and target choice."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo

import pytest

from coffre.core.errors import UsageError
from coffre.core.model import Archive, Item
from coffre.core.restore_plan import (
    Candidate,
    Wanted,
    choose_target,
    destination,
    folder_name,
    matcher,
    newest_first,
    pick_archive,
    resolve,
    since_filter,
)

SHARE = PurePosixPath("/srv/coffre/partage")
PARIS = ZoneInfo("Europe/Paris")


def test_a_path_relative_to_the_share_and_its_absolute_form_are_the_same() -> None:
    relative = resolve("Patients/Dupont.pdf", [SHARE])
    absolute = resolve("/srv/coffre/partage/Patients/Dupont.pdf", [SHARE])
    assert relative == absolute == Wanted(SHARE, "srv/coffre/partage/Patients/Dupont.pdf")
    # Restored under <dest>/Patients/Dupont.pdf: the share's three folders stripped.
    assert relative.strip == 3
    # As copied from a Windows workstation's Explorer.
    assert resolve("Patients\\Dupont.pdf", [SHARE]) == relative


def test_a_second_backed_up_root_is_found_by_its_absolute_path() -> None:
    other = PurePosixPath("/srv/coffre/scans")
    assert resolve("/srv/coffre/scans/x.dcm", [SHARE, other]).root == other


@pytest.mark.parametrize("bad", ["", "/", "../etc/passwd", "Patients/../../x", "/etc/passwd"])
def test_paths_outside_the_share_or_empty_are_refused(bad: str) -> None:
    with pytest.raises(UsageError):
        resolve(bad, [SHARE])


def test_default_destination_is_the_restaurations_folder_of_the_share() -> None:
    assert destination(SHARE, "cab-1", None) == SHARE / "_restaurations" / "cab-1"
    assert destination(SHARE, "cab-1", PurePosixPath("/tmp/x")) == PurePosixPath("/tmp/x")


def test_the_restore_folder_has_a_name_windows_shows_as_is() -> None:
    """Over SMB, a name with ':' would show as a mangled CABIN~1 folder."""
    named = destination(SHARE, "cabinet-2026-11-29T01:30:00", None).name
    assert named == "cabinet-2026-11-29T01-30-00"
    assert folder_name('a<b>c:d"e\\f|g?h*i. ') == "a-b-c-d-e-f-g-h-i"


def test_a_plain_pattern_matches_anywhere_ignoring_case() -> None:
    test = matcher("dupont")
    assert test("srv/partage/Patients/DUPONT Jean/ordonnance.pdf")
    assert not test("srv/partage/Patients/MARTIN/bilan.odt")


def test_a_glob_matches_names_or_path_tails() -> None:
    assert matcher("*.PDF")("srv/partage/a/b.pdf")
    assert matcher("Patients/*/*.odt")("srv/partage/Patients/MARTIN/bilan.odt")
    assert not matcher("Patients/*.odt")("srv/partage/Patients/MARTIN/bilan.odt")
    with pytest.raises(UsageError):
        matcher("  ")


def test_patterns_ignore_accents_however_the_name_was_encoded() -> None:
    composed = "srv/partage/Patients/MARTIN L\u00e9a/bilan.odt"  # Windows: é is one code point
    decomposed = "srv/partage/Patients/MARTIN Le\u0301a/bilan.odt"  # a Mac: e + combining acute
    for path in (composed, decomposed):
        for pattern in ("lea", "L\u00c9A", "Le\u0301a", "martin l\u00e9a/*.odt", "*l?a/bilan*"):
            assert matcher(pattern)(path), (pattern, path)
    assert not matcher("leo")(composed)
    assert not matcher("*lea")(decomposed + "/x")


def _archive(name: str, when: str) -> Archive:
    return Archive(datetime.fromisoformat(when).replace(tzinfo=UTC), name)


ARCHIVES = [
    _archive("cab-2026-11-27T01:30:00", "2026-11-27T00:30:00"),
    _archive("cab-2026-11-28T01:30:00", "2026-11-28T00:30:00"),
    _archive("cab-2026-11-28T14:00:00", "2026-11-28T13:00:00"),
    _archive("cab-2026-11-29T01:30:00.checkpoint", "2026-11-29T00:30:00"),
    _archive("autre-2026-11-29", "2026-11-29T05:00:00"),
]


def test_latest_is_the_newest_complete_archive_of_ours() -> None:
    found = pick_archive(ARCHIVES, "cab", name=None, day=None, tz=PARIS)
    assert found is not None and found.name == "cab-2026-11-28T14:00:00"


def test_a_day_is_the_boxs_local_day_and_picks_its_last_archive() -> None:
    late = _archive("cab-2026-11-30T00:30:00", "2026-11-29T23:30:00")  # Paris: the 30th
    found = pick_archive([*ARCHIVES, late], "cab", name=None, day=date(2026, 11, 30), tz=PARIS)
    assert found == late
    day = pick_archive(ARCHIVES, "cab", name=None, day=date(2026, 11, 28), tz=PARIS)
    assert day is not None and day.name == "cab-2026-11-28T14:00:00"
    assert pick_archive(ARCHIVES, "cab", name=None, day=date(2026, 1, 1), tz=PARIS) is None


#: Three backups in one second: borg keeps their times to the second, so they tie.
SAME_SECOND = [
    _archive("cab-2026-11-28T14:00:00-10", "2026-11-28T13:00:00"),
    _archive("cab-2026-11-28T14:00:00", "2026-11-28T13:00:00"),
    _archive("cab-2026-11-28T14:00:00-9", "2026-11-28T13:00:00"),
    _archive("cab-2026-11-28T14:00:00-2", "2026-11-28T13:00:00"),
]
SAME_SECOND_NEWEST_FIRST = [
    "cab-2026-11-28T14:00:00-10",
    "cab-2026-11-28T14:00:00-9",
    "cab-2026-11-28T14:00:00-2",
    "cab-2026-11-28T14:00:00",
]


def _item(path: str) -> Item:
    return Item(path=path, kind="-", size=1, mtime=datetime(2026, 11, 28, tzinfo=UTC))


def test_find_groups_hits_by_archive_newest_first_when_archives_share_their_second() -> None:
    first, second = SAME_SECOND[1], SAME_SECOND[3]
    hits = [(a, _item(p)) for a in (first, second) for p in ("b/ordonnance.pdf", "a/radio.jpg")]
    ordered = [(a.name, i.path) for a, i in newest_first(hits)]
    assert ordered == [
        (second.name, "a/radio.jpg"),
        (second.name, "b/ordonnance.pdf"),
        (first.name, "a/radio.jpg"),
        (first.name, "b/ordonnance.pdf"),
    ]


def test_archives_of_one_second_are_ordered_by_the_counter_of_their_names() -> None:
    assert [a.name for a in since_filter(SAME_SECOND, None)] == SAME_SECOND_NEWEST_FIRST
    assert [a.name for a in since_filter(reversed(SAME_SECOND), None)] == (SAME_SECOND_NEWEST_FIRST)
    latest = pick_archive(SAME_SECOND, "cab", name=None, day=None, tz=PARIS)
    assert latest is not None and latest.name == "cab-2026-11-28T14:00:00-10"


def test_a_later_second_is_newer_whatever_the_names() -> None:
    later = _archive("cab-2026-11-28T14:00:01", "2026-11-28T13:00:01")
    assert since_filter([*SAME_SECOND, later], None)[0] == later


def test_a_name_is_taken_as_given_even_a_checkpoint() -> None:
    name = "cab-2026-11-29T01:30:00.checkpoint"
    found = pick_archive(ARCHIVES, "cab", name=name, day=None, tz=PARIS)
    assert found is not None and found.name == name


def test_the_fastest_available_target_holding_the_archive_wins() -> None:
    candidates = [
        Candidate("hds1", "offsite", True, ARCHIVES),
        Candidate("disque-a", "usb", True, ARCHIVES[:1]),
        Candidate("local", "local", True, ARCHIVES[1:]),
    ]
    assert choose_target(candidates, "cab", name=None, day=None, tz=PARIS)[0] == "local"
    old = "cab-2026-11-27T01:30:00"
    assert choose_target(candidates, "cab", name=old, day=None, tz=PARIS)[0] == "disque-a"
    away = [Candidate("disque-a", "usb", False, ARCHIVES), candidates[0]]
    assert choose_target(away, "cab", name=old, day=None, tz=PARIS)[0] == "hds1"


def test_no_target_holding_it_names_what_was_looked_at() -> None:
    candidates = [
        Candidate("local", "local", True, []),
        Candidate("disque-a", "usb", False, ARCHIVES),
        Candidate("hds1", "offsite", True, None),
    ]
    with pytest.raises(UsageError) as refused:
        choose_target(candidates, "cab", name=None, day=date(2026, 11, 28), tz=PARIS)
    message = refused.value.message
    assert "an archive of 2026-11-28" in message
    assert "local (not there)" in message and "disque-a (not available)" in message
    assert "hds1 (not listed yet)" in message
