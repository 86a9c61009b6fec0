"""coffre.guard.canaries and night.assess: witness files planted safely, checked, judged."""

from __future__ import annotations

import io
import os
import random
import stat
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffre.borg.records import FileStatus
from coffre.core.config_types import GuardConfig
from coffre.core.errors import SourceUnavailable
from coffre.guard.canaries import (
    CONTENTS,
    MODE,
    NAMES,
    CanaryRecord,
    check_canaries,
    ensure_canaries,
)
from coffre.guard.content_sample import classify
from coffre.guard.night import Baseline, assess, escape
from tests.parts import needs_root

NOW = datetime(2026, 12, 6, 1, 30, tzinfo=UTC)


@pytest.fixture
def roots(tmp_path: Path) -> list[Path]:
    made = [tmp_path / "partage", tmp_path / "scans"]
    for root in made:
        root.mkdir()
    return made


def test_every_canary_is_a_valid_file_of_its_type() -> None:
    for name, content in CONTENTS.items():
        suffix = name.rpartition(".")[2]
        assert classify(suffix, content).reason == "ok", name
        if suffix in ("docx", "xlsx"):
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                assert archive.testzip() is None
                assert "[Content_Types].xml" in archive.namelist()
    assert CONTENTS[f"{NAMES[0].rpartition('.')[0]}.pdf"].rstrip().endswith(b"%%EOF")
    assert all(name.startswith("!COFFRE-TEMOIN") for name in NAMES)
    assert b"Ne pas modifier" in CONTENTS[NAMES[-1]]


def test_plant_then_check_finds_all_intact(roots: list[Path]) -> None:
    record = ensure_canaries(roots, None, replant=False)
    assert {root: len(files) for root, files in record.roots.items()} == {
        str(r): len(NAMES) for r in roots
    }
    for root in roots:
        for name in NAMES:
            assert (root / name).read_bytes() == CONTENTS[name]
    check = check_canaries(roots, record)
    assert (check.checked, check.touched) == (2 * len(NAMES), ())


def test_canaries_belong_to_the_roots_owner_and_users_may_write_them(roots: list[Path]) -> None:
    needs_root("giving a file to the share's owner needs root")
    os.chown(roots[0], 1234, 4321)
    ensure_canaries(roots[:1], None, replant=False)
    for name in NAMES:
        info = (roots[0] / name).stat()
        assert (info.st_uid, info.st_gid) == (1234, 4321)
        assert stat.S_IMODE(info.st_mode) == MODE


def test_check_reports_missing_changed_and_not_regular(roots: list[Path]) -> None:
    record = ensure_canaries(roots, None, replant=False)
    docx, xlsx, pdf = NAMES[0], NAMES[1], NAMES[2]
    (roots[0] / docx).rename(roots[0] / f"{docx}.locked")
    (roots[1] / xlsx).write_bytes(os.urandom(len(CONTENTS[xlsx])))  # same size, new bytes
    (roots[1] / pdf).unlink()
    (roots[1] / pdf).mkdir()
    check = check_canaries(roots, record)
    assert {(t.root_index, t.name, t.what) for t in check.touched} == {
        (0, docx, "missing"),
        (1, xlsx, "changed"),
        (1, pdf, "not a regular file"),
    }


def test_a_symlink_in_place_of_a_canary_is_never_written_through(
    roots: list[Path], tmp_path: Path
) -> None:
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0\n")
    name = NAMES[0]
    (roots[0] / name).symlink_to(victim)
    (roots[0] / NAMES[1]).symlink_to(tmp_path / "nowhere")  # dangling
    record = ensure_canaries(roots[:1], None, replant=False)
    assert victim.read_text() == "root:x:0:0\n"
    assert not (tmp_path / "nowhere").exists()
    assert {f.name for f in record.roots[str(roots[0])]} == set(NAMES[2:])
    # Made a link after planting: reported, not followed.
    planted = ensure_canaries(roots[1:], None, replant=False)
    (roots[1] / NAMES[2]).unlink()
    (roots[1] / NAMES[2]).symlink_to(victim)
    check = check_canaries(roots[1:], planted)
    assert [(t.name, t.what) for t in check.touched] == [(NAMES[2], "not a regular file")]


def test_a_root_replaced_by_a_symlink_is_refused(roots: list[Path], tmp_path: Path) -> None:
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    roots[0].rmdir()
    roots[0].symlink_to(elsewhere)
    with pytest.raises(SourceUnavailable):
        ensure_canaries(roots, None, replant=False)
    assert list(elsewhere.iterdir()) == []


def test_a_name_taken_by_a_user_file_is_left_alone(roots: list[Path]) -> None:
    (roots[0] / NAMES[4]).write_text("mes notes")
    record = ensure_canaries(roots[:1], None, replant=False)
    assert (roots[0] / NAMES[4]).read_text() == "mes notes"
    assert NAMES[4] not in {f.name for f in record.roots[str(roots[0])]}


def test_touched_canaries_wait_for_replant_and_changed_ones_stay_as_evidence(
    roots: list[Path],
) -> None:
    record = ensure_canaries(roots[:1], None, replant=False)
    (roots[0] / NAMES[0]).unlink()
    (roots[0] / NAMES[1]).write_bytes(b"chiffre" * 100)
    # Without replant (every night): nothing replaced, the touch stays visible.
    again = ensure_canaries(roots[:1], record, replant=False)
    assert again == record
    assert not (roots[0] / NAMES[0]).exists()
    # After support clears: the missing one is planted, the changed one left and unwatched.
    cleared = ensure_canaries(roots[:1], record, replant=True)
    assert (roots[0] / NAMES[0]).read_bytes() == CONTENTS[NAMES[0]]
    assert (roots[0] / NAMES[1]).read_bytes() == b"chiffre" * 100
    assert NAMES[1] not in {f.name for f in cleared.roots[str(roots[0])]}
    assert check_canaries(roots[:1], cleared).touched == ()
    # Once support removed it, the next night plants it again.
    (roots[0] / NAMES[1]).unlink()
    later = ensure_canaries(roots[:1], cleared, replant=False)
    assert len(later.roots[str(roots[0])]) == len(NAMES)


def test_record_round_trips_through_json_and_drops_old_roots(roots: list[Path]) -> None:
    record = ensure_canaries(roots, None, replant=False)
    assert CanaryRecord.from_json(record.to_json()) == record
    assert list(ensure_canaries(roots[:1], record, replant=False).roots) == [str(roots[0])]
    with pytest.raises(ValueError):
        CanaryRecord.from_json("[]")


def test_escape_neutralises_terminal_controls() -> None:
    assert escape("Dupont\x1b[2J\r\n.pdf") == "Dupont\\x1b[2J\\x0d\\x0a.pdf"
    assert escape("\udce9t\u00e9\\") == "\\udce9t\u00e9\\\\"


def test_assess_plants_checks_and_judges(roots: list[Path]) -> None:
    share = roots[0]
    for i in range(60):
        (share / f"lettre{i}.docx").write_bytes(os.urandom(3000))  # encrypted in place
    statuses = [FileStatus("M", str(share / f"lettre{i}.docx")) for i in range(60)]
    first = assess(
        GuardConfig(),
        [share],
        files=60,
        original_bytes=180_000,
        new_bytes=1000,
        statuses=(),
        baseline=None,
        canaries=None,
        now=NOW,
        rng=random.Random(1),
    )
    assert first.signal is None
    assert first.figures.canaries_checked == len(NAMES)
    (share / NAMES[0]).write_bytes(b"x")
    second = assess(
        GuardConfig(),
        [share],
        files=60 + len(NAMES),
        original_bytes=180_000,
        new_bytes=180_000,
        statuses=statuses,
        baseline=Baseline(60, NOW - timedelta(hours=24)),
        canaries=first.canaries,
        now=NOW,
        rng=random.Random(1),
    )
    assert second.signal is not None
    assert second.signal.reasons == ("canary", "encrypted_sample", "rewritten", "new_data")
    assert second.figures.suspects == 60
    assert any(line.startswith("canary changed: ") for line in second.evidence)
    assert sum("looks encrypted" in line for line in second.evidence) == 50
    assert second.evidence[-1] == "... and 10 more suspect files"


def test_assess_without_canaries_plants_nothing(roots: list[Path]) -> None:
    result = assess(
        GuardConfig(canaries=False),
        roots,
        files=0,
        original_bytes=0,
        new_bytes=0,
        statuses=(),
        baseline=None,
        canaries=None,
        now=NOW,
        rng=random.Random(1),
    )
    assert result.canaries == CanaryRecord()
    assert all(list(root.iterdir()) == [] for root in roots)
